import { Alert, Button, Dialog, DialogActions, DialogContent, DialogTitle, MenuItem, TextField } from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError } from '@/api/client';
import { groupsQuery } from '@/api/groups';
import { keys } from '@/api/keys';
import { updateNode, type Node } from '@/features/nodes/api/nodes';

function parseLabels(text: string): Record<string, string> | null {
  const labels: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf('=');
    if (at <= 0) return null;
    labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return labels;
}

/** Group, tags and labels of a node (admin and operator). */
export function NodeEditDialog({ node, open, onClose }: { node: Node; open: boolean; onClose: () => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const groups = useQuery(groupsQuery);
  const [groupId, setGroupId] = useState(node.group_id ? String(node.group_id) : '');
  const [tags, setTags] = useState(node.tags.join(', '));
  const [labels, setLabels] = useState(
    Object.entries(node.labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(', '),
  );
  const parsedLabels = parseLabels(labels);
  const save = useMutation({
    mutationFn: () =>
      updateNode(node.id, {
        group_id: groupId ? Number(groupId) : null,
        tags: tags.split(',').map((tag) => tag.trim()).filter(Boolean),
        labels: parsedLabels ?? {},
      }),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: keys.nodes });
      onClose();
    },
  });
  return (
    <Dialog open={open} onClose={onClose} fullWidth maxWidth="sm">
      <DialogTitle>{t('nodeEdit.title')}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
        {save.isError ? (
          <Alert severity="error">{save.error instanceof ApiError ? save.error.message : t('common.saveFailed')}</Alert>
        ) : null}
        <TextField
          select
          label={t('nodes.group')}
          value={groups.data ? groupId : ''}
          onChange={(e) => setGroupId(e.target.value)}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('nodeEdit.noGroup')}</MenuItem>
          {(groups.data ?? []).map((group) => (
            <MenuItem key={group.id} value={String(group.id)}>
              {group.name}
            </MenuItem>
          ))}
        </TextField>
        <TextField label={t('nodes.tags')} helperText={t('nodes.tagsHint')} value={tags} onChange={(e) => setTags(e.target.value)} />
        <TextField
          label={t('nodes.labels')}
          helperText={parsedLabels ? t('nodes.labelsHint') : t('nodeEdit.badLabels')}
          error={!parsedLabels}
          value={labels}
          onChange={(e) => setLabels(e.target.value)}
        />
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{t('common.cancel')}</Button>
        <Button variant="contained" disabled={!parsedLabels || save.isPending} onClick={() => save.mutate()}>
          {t('common.save')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
