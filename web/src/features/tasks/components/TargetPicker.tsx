import { Autocomplete, Box, MenuItem, TextField, Typography } from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';

import { groupsQuery } from '@/api/groups';
import { TARGET_TYPES, type TargetType } from '@/features/tasks/api/tasks';
import { useTaskLabels } from '@/features/tasks/components/labels';
import { NodePicker } from '@/features/tasks/components/NodePicker';

/** Where a task runs: chosen nodes, groups (with their sub-groups), nodes with tags, or all. */
export function TargetPicker({
  type,
  value,
  onChange,
  error,
}: {
  type: TargetType;
  value: string[];
  onChange: (type: TargetType, value: string[]) => void;
  error?: string;
}) {
  const { t } = useTranslation();
  const { targets } = useTaskLabels();
  const groups = useQuery({ ...groupsQuery, enabled: type === 'group' });
  const hint = error ?? { node: t('tasks.form.nodesHint'), group: t('tasks.form.groupsHint'), tag: t('tasks.form.tagsHint'), all: '' }[type];

  return (
    <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', md: '200px 1fr' }, gap: 2, alignItems: 'start' }}>
      <TextField select label={t('tasks.form.targetType')} value={type} onChange={(e) => onChange(e.target.value as TargetType, [])}>
        {TARGET_TYPES.map((value) => (
          <MenuItem key={value} value={value}>
            {targets[value]}
          </MenuItem>
        ))}
      </TextField>
      {type === 'all' ? (
        <Typography color="text.secondary" sx={{ alignSelf: 'center' }}>
          {t('tasks.form.allHint')}
        </Typography>
      ) : null}
      {type === 'node' ? (
        <NodePicker value={value} onChange={(ids) => onChange('node', ids)} label={t('tasks.form.nodes')} helperText={hint} error={Boolean(error)} />
      ) : null}
      {type === 'group' ? (
        <TextField
          select
          label={t('tasks.form.groups')}
          value={value}
          onChange={(e) => onChange('group', e.target.value as unknown as string[])}
          slotProps={{ select: { multiple: true } }}
          helperText={hint}
          error={Boolean(error)}
        >
          {(groups.data ?? []).map((group) => (
            <MenuItem key={group.id} value={String(group.id)}>
              {group.name}
            </MenuItem>
          ))}
        </TextField>
      ) : null}
      {type === 'tag' ? (
        <Autocomplete
          multiple
          freeSolo
          autoSelect
          options={[] as string[]}
          slotProps={{ chip: { size: 'small' } }}
          value={value}
          onChange={(_e, tags) => onChange('tag', [...new Set(tags.map((tag) => tag.trim()).filter(Boolean))])}
          renderInput={(params) => <TextField {...params} label={t('tasks.form.tags')} helperText={hint} error={Boolean(error)} />}
        />
      ) : null}
    </Box>
  );
}
