import { Autocomplete, Box, FormControlLabel, FormHelperText, MenuItem, Switch, TextField, Typography } from '@mui/material';
import { useTranslation } from 'react-i18next';

import { SERVICE_ACTIONS } from '@/features/tasks/api/tasks';
import { EnvEditor } from '@/features/tasks/components/EnvEditor';
import { languageOf, ScriptEditor } from '@/features/tasks/components/ScriptEditor';
import { INTERPRETERS, type TaskForm } from '@/features/tasks/components/taskForm';

type ProblemAt = (field: string) => string | undefined;
const mono = { htmlInput: { spellCheck: false, style: { fontFamily: 'monospace' } } };

/** The content fields of the form's task type. */
export function ContentFields({ form, onChange, problem }: { form: TaskForm; onChange: (form: TaskForm) => void; problem: ProblemAt }) {
  if (form.type === 'script') return <ScriptFields form={form} onChange={onChange} problem={problem} />;
  if (form.type === 'file') return <FileFields form={form} onChange={onChange} problem={problem} />;
  if (form.type === 'service') return <ServiceFields form={form} onChange={onChange} problem={problem} />;
  return <CustomFields form={form} onChange={onChange} problem={problem} />;
}

function ScriptFields({ form, onChange, problem }: { form: TaskForm; onChange: (form: TaskForm) => void; problem: ProblemAt }) {
  const { t } = useTranslation();
  const script = form.script;
  const set = (patch: Partial<TaskForm['script']>) => onChange({ ...form, script: { ...script, ...patch } });
  return (
    <Box sx={{ display: 'grid', gap: 2 }}>
      <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', md: '1fr 1fr' }, gap: 2 }}>
        <Autocomplete
          freeSolo
          options={INTERPRETERS}
          value={script.interpreter}
          onInputChange={(_e, interpreter) => set({ interpreter })}
          renderInput={(params) => (
            <TextField
              {...params}
              label={t('tasks.form.interpreter')}
              error={Boolean(problem('content.interpreter'))}
              helperText={problem('content.interpreter') ?? t('tasks.form.interpreterHint')}
            />
          )}
        />
        <TextField
          label={t('tasks.form.workdir')}
          value={script.workdir}
          onChange={(e) => set({ workdir: e.target.value })}
          placeholder="/tmp"
          error={Boolean(problem('content.workdir'))}
          helperText={problem('content.workdir') ?? t('tasks.form.workdirHint')}
          slotProps={mono}
        />
      </Box>
      <Box>
        <Typography variant="subtitle2" sx={{ mb: 0.5 }}>
          {t('tasks.form.script')}
        </Typography>
        <ScriptEditor value={script.script} onChange={(value) => set({ script: value })} language={languageOf(script.interpreter)} label={t('tasks.form.script')} />
        {problem('content.script') ? <FormHelperText error>{problem('content.script')}</FormHelperText> : null}
      </Box>
      <TextField
        label={t('tasks.form.args')}
        value={script.args}
        onChange={(e) => set({ args: e.target.value })}
        multiline
        minRows={2}
        error={Boolean(problem('content.args'))}
        helperText={problem('content.args') ?? t('tasks.form.argsHint')}
        slotProps={mono}
      />
      <EnvEditor rows={script.env} onChange={(env) => set({ env })} error={problem('content.env')} />
    </Box>
  );
}

function FileFields({ form, onChange, problem }: { form: TaskForm; onChange: (form: TaskForm) => void; problem: ProblemAt }) {
  const { t } = useTranslation();
  const file = form.file;
  const set = (patch: Partial<TaskForm['file']>) => onChange({ ...form, file: { ...file, ...patch } });
  return (
    <Box sx={{ display: 'grid', gap: 2 }}>
      <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', md: '2fr 1fr 1fr' }, gap: 2 }}>
        <TextField
          label={t('tasks.form.dest')}
          value={file.dest}
          onChange={(e) => set({ dest: e.target.value })}
          placeholder="/etc/app/app.conf"
          error={Boolean(problem('content.dest'))}
          helperText={problem('content.dest')}
          slotProps={mono}
        />
        <TextField
          label={t('tasks.form.mode')}
          value={file.mode}
          onChange={(e) => set({ mode: e.target.value })}
          error={Boolean(problem('content.mode'))}
          helperText={problem('content.mode')}
          slotProps={mono}
        />
        <TextField
          label={t('tasks.form.owner')}
          value={file.owner}
          onChange={(e) => set({ owner: e.target.value })}
          placeholder="root:root"
          error={Boolean(problem('content.owner'))}
          helperText={problem('content.owner')}
          slotProps={mono}
        />
      </Box>
      <TextField
        label={t('tasks.form.fileContent')}
        value={file.content}
        onChange={(e) => set({ content: e.target.value })}
        multiline
        minRows={8}
        error={Boolean(problem('content.content'))}
        helperText={problem('content.content')}
        slotProps={mono}
      />
      <FormControlLabel control={<Switch checked={file.overwrite} onChange={(e) => set({ overwrite: e.target.checked })} />} label={t('tasks.form.overwrite')} />
    </Box>
  );
}

function ServiceFields({ form, onChange, problem }: { form: TaskForm; onChange: (form: TaskForm) => void; problem: ProblemAt }) {
  const { t } = useTranslation();
  const service = form.service;
  const set = (patch: Partial<TaskForm['service']>) => onChange({ ...form, service: { ...service, ...patch } });
  const actions: Record<(typeof SERVICE_ACTIONS)[number], string> = {
    start: t('tasks.action.start'),
    stop: t('tasks.action.stop'),
    restart: t('tasks.action.restart'),
    status: t('tasks.action.status'),
    enable: t('tasks.action.enable'),
    disable: t('tasks.action.disable'),
  };
  return (
    <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', md: '2fr 1fr' }, gap: 2 }}>
      <TextField
        label={t('tasks.form.serviceName')}
        value={service.name}
        onChange={(e) => set({ name: e.target.value })}
        placeholder="nginx"
        error={Boolean(problem('content.name'))}
        helperText={problem('content.name')}
        slotProps={mono}
      />
      <TextField select label={t('tasks.form.serviceAction')} value={service.action} onChange={(e) => set({ action: e.target.value })}>
        {SERVICE_ACTIONS.map((action) => (
          <MenuItem key={action} value={action}>
            {actions[action]}
          </MenuItem>
        ))}
      </TextField>
    </Box>
  );
}

function CustomFields({ form, onChange, problem }: { form: TaskForm; onChange: (form: TaskForm) => void; problem: ProblemAt }) {
  const { t } = useTranslation();
  const custom = form.custom;
  const set = (patch: Partial<TaskForm['custom']>) => onChange({ ...form, custom: { ...custom, ...patch } });
  return (
    <Box sx={{ display: 'grid', gap: 2 }}>
      <TextField
        label={t('tasks.form.handler')}
        value={custom.handler}
        onChange={(e) => set({ handler: e.target.value })}
        placeholder="cache.flush"
        error={Boolean(problem('content.handler'))}
        helperText={problem('content.handler') ?? t('tasks.form.handlerHint')}
        slotProps={mono}
      />
      <TextField
        label={t('tasks.form.params')}
        value={custom.params}
        onChange={(e) => set({ params: e.target.value })}
        multiline
        minRows={6}
        error={Boolean(problem('content.params'))}
        helperText={problem('content.params') ?? t('tasks.form.paramsHint')}
        slotProps={mono}
      />
    </Box>
  );
}
