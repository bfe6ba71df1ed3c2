import { Box, Chip, Typography } from '@mui/material';
import { useQueries, useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';

import { groupsQuery } from '@/api/groups';
import { nodeNameQuery, SECRET_MASK, type Task } from '@/features/tasks/api/tasks';
import { useTaskLabels } from '@/features/tasks/components/labels';
import { languageOf, ScriptEditor } from '@/features/tasks/components/ScriptEditor';
import { fromTask } from '@/features/tasks/components/taskForm';

const NAMED = 50;

/** A label and its value, one row of a detail card. */
export function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <>
      <Typography variant="body2" color="text.secondary">
        {label}
      </Typography>
      <Box sx={{ minWidth: 0, overflowWrap: 'anywhere' }}>{children}</Box>
    </>
  );
}

export function FieldGrid({ children }: { children: ReactNode }) {
  return <Box sx={{ display: 'grid', gridTemplateColumns: 'minmax(110px, max-content) 1fr', columnGap: 3, rowGap: 1, alignItems: 'baseline' }}>{children}</Box>;
}

const mono = { fontFamily: 'monospace', fontSize: 13 };

/** Where a task runs, with names for nodes and groups. */
export function TargetView({ task }: { task: Task }) {
  const { targets } = useTaskLabels();
  const values = task.target_value ?? [];
  const groups = useQuery({ ...groupsQuery, enabled: task.target_type === 'group' });
  const nodes = useQueries({ queries: task.target_type === 'node' ? values.slice(0, NAMED).map((id) => nodeNameQuery(Number(id))) : [] });
  const names = new Map<string, string>();
  for (const group of groups.data ?? []) names.set(String(group.id), group.name);
  for (const node of nodes) if (node.data) names.set(String(node.data.id), node.data.hostname);
  return (
    <Box sx={{ display: 'flex', gap: 0.5, flexWrap: 'wrap', alignItems: 'center' }} data-testid="task-target">
      <Typography variant="body2" sx={{ mr: 1 }}>
        {targets[task.target_type]}
      </Typography>
      {values.map((value) => (
        <Chip key={value} size="small" label={names.get(value) ?? (task.target_type === 'tag' ? value : `#${value}`)} />
      ))}
    </Box>
  );
}

/** A task's content, read-only, laid out by type. */
export function TaskContentView({ task }: { task: Task }) {
  const { t } = useTranslation();
  const form = fromTask(task);
  if (task.type === 'script') {
    const { interpreter, script, args, env, workdir } = form.script;
    return (
      <Box sx={{ display: 'grid', gap: 2 }}>
        <FieldGrid>
          <Field label={t('tasks.form.interpreter')}>
            <Typography sx={mono}>{interpreter}</Typography>
          </Field>
          <Field label={t('tasks.form.workdir')}>
            <Typography sx={mono}>{workdir || '-'}</Typography>
          </Field>
          <Field label={t('tasks.form.args')}>
            <Typography sx={mono}>{args ? args.split('\n').join(' ') : '-'}</Typography>
          </Field>
          <Field label={t('tasks.form.env')}>
            {env.length === 0 ? '-' : null}
            {env.map((row) => (
              <Typography key={row.name} sx={mono}>
                {`${row.name}=${row.secret ? SECRET_MASK : row.value}`}
              </Typography>
            ))}
          </Field>
        </FieldGrid>
        <ScriptEditor value={script} language={languageOf(interpreter)} label={t('tasks.form.script')} readOnly minHeight="120px" />
      </Box>
    );
  }
  if (task.type === 'file') {
    const { content, dest, mode, owner, overwrite } = form.file;
    return (
      <Box sx={{ display: 'grid', gap: 2 }}>
        <FieldGrid>
          <Field label={t('tasks.form.dest')}>
            <Typography sx={mono}>{dest}</Typography>
          </Field>
          <Field label={t('tasks.form.mode')}>
            <Typography sx={mono}>{mode}</Typography>
          </Field>
          <Field label={t('tasks.form.owner')}>
            <Typography sx={mono}>{owner || '-'}</Typography>
          </Field>
          <Field label={t('tasks.form.overwrite')}>{overwrite ? t('tasks.yes') : t('tasks.no')}</Field>
        </FieldGrid>
        <Box component="pre" sx={{ ...mono, m: 0, p: 1.5, bgcolor: 'action.hover', borderRadius: 1, overflow: 'auto', maxHeight: 360 }}>
          {content}
        </Box>
      </Box>
    );
  }
  if (task.type === 'service') {
    return (
      <FieldGrid>
        <Field label={t('tasks.form.serviceName')}>
          <Typography sx={mono}>{form.service.name}</Typography>
        </Field>
        <Field label={t('tasks.form.serviceAction')}>
          <Typography sx={mono}>{form.service.action}</Typography>
        </Field>
      </FieldGrid>
    );
  }
  return (
    <Box sx={{ display: 'grid', gap: 2 }}>
      <FieldGrid>
        <Field label={t('tasks.form.handler')}>
          <Typography sx={mono}>{form.custom.handler}</Typography>
        </Field>
      </FieldGrid>
      <Box component="pre" sx={{ ...mono, m: 0, p: 1.5, bgcolor: 'action.hover', borderRadius: 1, overflow: 'auto' }}>
        {form.custom.params}
      </Box>
    </Box>
  );
}
