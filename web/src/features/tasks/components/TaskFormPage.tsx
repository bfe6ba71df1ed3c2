import ArrowBackIcon from '@mui/icons-material/ArrowBack';
import { Alert, Box, Button, FormControlLabel, MenuItem, Paper, Switch, TextField, Typography } from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useNavigate, useParams } from 'react-router';

import { ApiError, fieldErrors } from '@/api/client';
import { keys } from '@/api/keys';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { createTask, TASK_TYPES, taskQuery, updateTask, type Misfire, type Task, type TaskType } from '@/features/tasks/api/tasks';
import { ContentFields } from '@/features/tasks/components/ContentFields';
import { CronField } from '@/features/tasks/components/CronField';
import { useTaskLabels } from '@/features/tasks/components/labels';
import { TargetPicker } from '@/features/tasks/components/TargetPicker';
import { emptyForm, fromTask, problemAt, toBody, type Problem, type TaskForm } from '@/features/tasks/components/taskForm';
import { useCan } from '@/stores/auth';

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <Paper sx={{ p: 2, display: 'grid', gap: 2 }}>
      <Typography variant="subtitle1" component="h2" sx={{ fontWeight: 600 }}>
        {title}
      </Typography>
      {children}
    </Paper>
  );
}

/** Create a task (`/tasks/new`) or edit one (`/tasks/:id/edit`). */
export function TaskFormPage() {
  const { t } = useTranslation();
  const { id } = useParams();
  const taskId = Number(id);
  const editing = id !== undefined;
  const canEdit = useCan('task.edit');
  const task = useQuery({ ...taskQuery(taskId), enabled: editing && taskId > 0 });
  const title = editing ? t('tasks.editTitle', { name: task.data?.name ?? '' }) : t('tasks.createTitle');
  const back = editing ? `/tasks/${id}` : '/tasks';

  const header = (
    <PageHeader
      title={title}
      actions={
        <Button startIcon={<ArrowBackIcon />} component={RouterLink} to={back}>
          {t('tasks.back')}
        </Button>
      }
    />
  );
  if (!canEdit) {
    return (
      <Box>
        {header}
        <Alert severity="warning">{t('common.forbidden')}</Alert>
      </Box>
    );
  }
  if (editing && (!(taskId > 0) || (task.error instanceof ApiError && task.error.status === 404))) {
    return (
      <Box>
        {header}
        <Empty message={t('tasks.notFound')} />
      </Box>
    );
  }
  return (
    <Box>
      {header}
      {editing && task.isPending ? <Loading /> : null}
      {task.isError ? <ErrorState error={task.error} onRetry={() => void task.refetch()} /> : null}
      {!editing ? <TaskFormBody /> : null}
      {editing && task.data ? <TaskFormBody key={task.data.id} task={task.data} /> : null}
    </Box>
  );
}

function TaskFormBody({ task }: { task?: Task }) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const { types, statuses } = useTaskLabels();
  const [form, setForm] = useState<TaskForm>(() => (task ? fromTask(task) : emptyForm()));
  const [checked, setChecked] = useState(false);
  const { body, problems } = toBody(form);
  const save = useMutation({
    mutationFn: () => (task ? updateTask(task.id, body) : createTask(body)),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: keys.tasks });
      void navigate(`/tasks/${saved.id}`);
    },
  });
  const messages: Record<Problem, string> = {
    required: t('tasks.form.required'),
    wholeNumber: t('tasks.form.wholeNumber'),
    absolutePath: t('tasks.form.absolutePath'),
    jsonObject: t('tasks.form.jsonObject'),
    needTarget: t('tasks.form.needTarget'),
  };
  const fromServer = fieldErrors(save.error);
  const local: Record<string, string> = checked ? Object.fromEntries(Object.entries(problems).map(([field, problem]) => [field, messages[problem]])) : {};
  const problem = (field: string) => problemAt(local, field) ?? problemAt(fromServer, field);
  const set = (patch: Partial<TaskForm>) => setForm((current) => ({ ...current, ...patch }));

  function submit(event: React.FormEvent) {
    event.preventDefault();
    setChecked(true);
    if (Object.keys(problems).length === 0) save.mutate();
  }

  const failure = save.error;
  return (
    <Box component="form" onSubmit={submit} noValidate sx={{ display: 'grid', gap: 2 }} aria-label={t('tasks.form.label')}>
      <Section title={t('tasks.form.basics')}>
        <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', md: '2fr 1fr auto' }, gap: 2, alignItems: 'start' }}>
          <TextField
            label={t('tasks.form.name')}
            value={form.name}
            onChange={(e) => set({ name: e.target.value })}
            required
            error={Boolean(problem('name'))}
            helperText={problem('name')}
            slotProps={{ htmlInput: { maxLength: 128 } }}
          />
          <TextField
            select
            label={t('tasks.form.type')}
            value={form.type}
            onChange={(e) => set({ type: e.target.value as TaskType })}
            error={Boolean(problem('type'))}
            helperText={problem('type')}
          >
            {TASK_TYPES.map((type) => (
              <MenuItem key={type} value={type}>
                {types[type]}
              </MenuItem>
            ))}
          </TextField>
          <FormControlLabel
            sx={{ mt: 1 }}
            control={<Switch checked={form.status === 'enabled'} onChange={(e) => set({ status: e.target.checked ? 'enabled' : 'disabled' })} />}
            label={statuses[form.status]}
          />
        </Box>
        <TextField
          label={t('tasks.form.description')}
          value={form.description}
          onChange={(e) => set({ description: e.target.value })}
          error={Boolean(problem('description'))}
          helperText={problem('description')}
          slotProps={{ htmlInput: { maxLength: 255 } }}
        />
      </Section>
      <Section title={t('tasks.form.content', { type: types[form.type] })}>
        <ContentFields form={form} onChange={setForm} problem={problem} />
        {fromServer.content ? (
          <Typography color="error" variant="body2">
            {fromServer.content}
          </Typography>
        ) : null}
      </Section>
      <Section title={t('tasks.form.target')}>
        <TargetPicker type={form.target_type} value={form.target_value} onChange={(target_type, target_value) => set({ target_type, target_value })} error={problem('target_value')} />
      </Section>
      <Section title={t('tasks.form.policy')}>
        <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', md: 'repeat(3, 1fr)' }, gap: 2 }}>
          <TextField
            label={t('tasks.form.timeout')}
            value={form.timeout}
            onChange={(e) => set({ timeout: e.target.value })}
            error={Boolean(problem('timeout'))}
            helperText={problem('timeout') ?? t('tasks.form.timeoutHint')}
            slotProps={{ htmlInput: { inputMode: 'numeric' } }}
          />
          <TextField
            label={t('tasks.form.retryCount')}
            value={form.retry_count}
            onChange={(e) => set({ retry_count: e.target.value })}
            error={Boolean(problem('retry_count'))}
            helperText={problem('retry_count') ?? t('tasks.form.retryCountHint')}
            slotProps={{ htmlInput: { inputMode: 'numeric' } }}
          />
          <TextField
            label={t('tasks.form.retryInterval')}
            value={form.retry_interval}
            onChange={(e) => set({ retry_interval: e.target.value })}
            error={Boolean(problem('retry_interval'))}
            helperText={problem('retry_interval') ?? t('tasks.form.retryIntervalHint')}
            slotProps={{ htmlInput: { inputMode: 'numeric' } }}
          />
        </Box>
        <CronField value={form.cron_expr} onChange={(cron_expr) => set({ cron_expr })} error={problem('cron_expr')} />
        {form.cron_expr.trim() ? (
          <TextField
            select
            label={t('tasks.cron.misfire')}
            value={form.misfire}
            onChange={(e) => set({ misfire: e.target.value as Misfire })}
            helperText={t('tasks.cron.misfireHint')}
            sx={{ maxWidth: 360 }}
          >
            <MenuItem value="skip">{t('tasks.cron.misfireSkip')}</MenuItem>
            <MenuItem value="run_once">{t('tasks.cron.misfireRunOnce')}</MenuItem>
          </TextField>
        ) : null}
      </Section>
      {failure ? (
        <Alert severity="error" data-testid="task-save-error">
          {failure instanceof ApiError ? `${failure.message} (${failure.code})` : t('common.saveFailed')}
        </Alert>
      ) : null}
      {checked && Object.keys(problems).length > 0 ? <Alert severity="warning">{t('tasks.form.fixProblems')}</Alert> : null}
      <Box sx={{ display: 'flex', gap: 1, justifyContent: 'flex-end' }}>
        <Button component={RouterLink} to={task ? `/tasks/${task.id}` : '/tasks'}>
          {t('common.cancel')}
        </Button>
        <Button type="submit" variant="contained" disabled={save.isPending}>
          {task ? t('common.save') : t('tasks.create')}
        </Button>
      </Box>
    </Box>
  );
}
