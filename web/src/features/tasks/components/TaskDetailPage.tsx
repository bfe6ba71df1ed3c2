import ArrowBackIcon from '@mui/icons-material/ArrowBack';
import DeleteIcon from '@mui/icons-material/DeleteOutline';
import EditIcon from '@mui/icons-material/Edit';
import PlayArrowIcon from '@mui/icons-material/PlayArrow';
import { Alert, Box, Button, Paper, Typography } from '@mui/material';
import Grid from '@mui/material/Grid';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useNavigate, useParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { deleteTask, taskQuery, type Task } from '@/features/tasks/api/tasks';
import { ExecuteDialog } from '@/features/tasks/components/ExecuteDialog';
import { ExecutionHistory } from '@/features/tasks/components/ExecutionHistory';
import { TaskStatusChip, useTaskLabels } from '@/features/tasks/components/labels';
import { Field, FieldGrid, TargetView, TaskContentView } from '@/features/tasks/components/TaskContentView';
import { useCan } from '@/stores/auth';

function Summary({ task }: { task: Task }) {
  const { t, i18n } = useTranslation();
  const { types } = useTaskLabels();
  return (
    <FieldGrid>
      <Field label={t('tasks.typeLabel')}>{types[task.type]}</Field>
      <Field label={t('tasks.statusLabel')}>
        <TaskStatusChip status={task.status} />
      </Field>
      <Field label={t('tasks.targetLabel')}>
        <TargetView task={task} />
      </Field>
      <Field label={t('tasks.timeout')}>{t('tasks.seconds', { value: task.timeout })}</Field>
      <Field label={t('tasks.retries')}>
        {task.retry_count > 0 ? t('tasks.retryPolicy', { times: task.retry_count, interval: task.retry_interval }) : t('tasks.noRetry')}
      </Field>
      <Field label={t('tasks.schedule')}>
        {task.cron_expr ? (
          <>
            <Typography component="span" sx={{ fontFamily: 'monospace' }}>
              {task.cron_expr}
            </Typography>
            {task.next_run_at ? (
              <Typography component="span" color="text.secondary" sx={{ ml: 1 }} data-testid="task-next-run">
                {t('tasks.nextRunAt', { time: formatDateTime(task.next_run_at, i18n.language) })}
              </Typography>
            ) : null}
          </>
        ) : (
          t('tasks.cron.none')
        )}
      </Field>
      <Field label={t('tasks.form.description')}>{task.description || '-'}</Field>
      <Field label={t('tasks.updatedAt')}>{formatDateTime(task.updated_at, i18n.language)}</Field>
    </FieldGrid>
  );
}

/** A task: what it runs and where, the actions the user's role allows, and its executions. */
export function TaskDetailPage() {
  const { t } = useTranslation();
  const { id = '' } = useParams();
  const taskId = /^\d+$/.test(id) ? Number(id) : 0;
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const canEdit = useCan('task.edit');
  const canExecute = useCan('task.execute');
  const canDelete = useCan('task.delete');
  const task = useQuery({ ...taskQuery(taskId), enabled: taskId > 0 });
  const [dialog, setDialog] = useState<'execute' | 'delete' | null>(null);
  const remove = useMutation({
    mutationFn: () => deleteTask(taskId),
    onSuccess: async () => {
      setDialog(null);
      queryClient.removeQueries({ queryKey: keys.task(taskId) });
      await queryClient.invalidateQueries({ queryKey: keys.tasks });
      void navigate('/tasks');
    },
  });
  const data = task.data;

  const header = (
    <PageHeader
      title={data ? data.name : t('tasks.detailTitle')}
      actions={
        <>
          <Button startIcon={<ArrowBackIcon />} component={RouterLink} to="/tasks">
            {t('tasks.back')}
          </Button>
          {data && canDelete ? (
            <Button color="error" variant="outlined" startIcon={<DeleteIcon />} onClick={() => setDialog('delete')}>
              {t('tasks.delete')}
            </Button>
          ) : null}
          {data && canEdit ? (
            <Button variant="outlined" startIcon={<EditIcon />} component={RouterLink} to={`/tasks/${taskId}/edit`}>
              {t('tasks.edit')}
            </Button>
          ) : null}
          {data && canExecute ? (
            <Button variant="contained" startIcon={<PlayArrowIcon />} onClick={() => setDialog('execute')}>
              {t('tasks.execute')}
            </Button>
          ) : null}
        </>
      }
    />
  );

  if (taskId === 0 || (task.error instanceof ApiError && task.error.status === 404)) {
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
      {task.isPending ? <Loading /> : null}
      {task.isError ? <ErrorState error={task.error} onRetry={() => void task.refetch()} /> : null}
      {remove.error ? (
        <Alert severity="error" sx={{ mb: 2 }} onClose={() => remove.reset()}>
          {remove.error instanceof ApiError ? `${remove.error.message} (${remove.error.code})` : t('common.saveFailed')}
        </Alert>
      ) : null}
      {data ? (
        <Grid container spacing={2}>
          <Grid size={{ xs: 12, lg: 5 }}>
            <Paper sx={{ p: 2, height: '100%' }}>
              <Summary task={data} />
            </Paper>
          </Grid>
          <Grid size={{ xs: 12, lg: 7 }}>
            <Paper sx={{ p: 2, height: '100%' }} data-testid="task-content">
              <TaskContentView task={data} />
            </Paper>
          </Grid>
          <Grid size={12}>
            <ExecutionHistory taskId={data.id} />
          </Grid>
        </Grid>
      ) : null}
      {dialog === 'execute' && data ? (
        <ExecuteDialog task={data} onClose={() => setDialog(null)} onStarted={(executionId) => void navigate(`/executions/${executionId}`)} />
      ) : null}
      <ConfirmDialog
        open={dialog === 'delete'}
        title={t('tasks.delete')}
        text={t('tasks.deleteText', { name: data?.name ?? '' })}
        confirm={t('tasks.delete')}
        busy={remove.isPending}
        onConfirm={() => remove.mutate()}
        onClose={() => setDialog(null)}
      />
    </Box>
  );
}
