import AddIcon from '@mui/icons-material/Add';
import DeleteIcon from '@mui/icons-material/Delete';
import EditIcon from '@mui/icons-material/Edit';
import FolderIcon from '@mui/icons-material/Folder';
import TuneIcon from '@mui/icons-material/Tune';
import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  IconButton,
  List,
  ListItem,
  ListItemIcon,
  ListItemText,
  MenuItem,
  Paper,
  TextField,
  Tooltip,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink } from 'react-router';

import { ApiError } from '@/api/client';
import { groupsQuery } from '@/api/groups';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { ConfigEditorDialog } from '@/components/ConfigEditor';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import {
  createGroup,
  deleteGroup,
  groupConfigQuery,
  groupTreeQuery,
  setGroupConfig,
  updateGroup,
  type GroupNode,
} from '@/features/groups/api/groups';
import { useCan } from '@/stores/auth';

interface Editing {
  id: number | null; // null: a new group
  name: string;
  parentId: string;
}

function descendants(group: GroupNode): number[] {
  return (group.children ?? []).flatMap((child) => [child.id, ...descendants(child)]);
}

function findGroup(tree: GroupNode[], id: number): GroupNode | undefined {
  for (const group of tree) {
    if (group.id === id) return group;
    const found = findGroup(group.children ?? [], id);
    if (found) return found;
  }
  return undefined;
}

function Tree({
  groups,
  depth,
  canManage,
  onEdit,
  onDelete,
  onConfigure,
}: {
  groups: GroupNode[];
  depth: number;
  canManage: boolean;
  onEdit: (group: GroupNode) => void;
  onDelete: (group: GroupNode) => void;
  onConfigure: (group: GroupNode) => void;
}) {
  const { t } = useTranslation();
  return (
    <>
      {groups.map((group) => (
        <Box key={group.id}>
          <ListItem
            sx={{ pl: 2 + depth * 3 }}
            secondaryAction={
              canManage ? (
                <>
                  <Tooltip title={t('config.editGroup')}>
                    <IconButton aria-label={`${t('config.editGroup')} ${group.name}`} onClick={() => onConfigure(group)}>
                      <TuneIcon />
                    </IconButton>
                  </Tooltip>
                  <Tooltip title={t('groups.edit')}>
                    <IconButton aria-label={`${t('groups.edit')} ${group.name}`} onClick={() => onEdit(group)}>
                      <EditIcon />
                    </IconButton>
                  </Tooltip>
                  <Tooltip title={t('groups.delete')}>
                    <IconButton aria-label={`${t('groups.delete')} ${group.name}`} onClick={() => onDelete(group)}>
                      <DeleteIcon />
                    </IconButton>
                  </Tooltip>
                </>
              ) : null
            }
          >
            <ListItemIcon>
              <FolderIcon />
            </ListItemIcon>
            <ListItemText
              primary={
                <RouterLink to={`/nodes?group_id=${group.id}`} style={{ color: 'inherit' }}>
                  {group.name}
                </RouterLink>
              }
              secondary={group.description}
            />
          </ListItem>
          <Tree
            groups={group.children ?? []}
            depth={depth + 1}
            canManage={canManage}
            onEdit={onEdit}
            onDelete={onDelete}
            onConfigure={onConfigure}
          />
        </Box>
      ))}
    </>
  );
}

/** A group's own configuration: its nodes and sub-groups' nodes inherit it. */
function GroupConfigDialog({ group, onClose }: { group: GroupNode; onClose: () => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const config = useQuery(groupConfigQuery(group.id));
  const save = useMutation({
    mutationFn: (values: Record<string, string>) => setGroupConfig(group.id, values),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: keys.groupConfig(group.id) });
      // Every node below the group may now run with something else.
      await queryClient.invalidateQueries({ queryKey: keys.nodes });
      onClose();
    },
  });
  if (config.isError) {
    return (
      <Dialog open onClose={onClose}>
        <DialogContent>
          <ErrorState error={config.error} onRetry={() => void config.refetch()} />
        </DialogContent>
      </Dialog>
    );
  }
  if (!config.data) return null;
  return (
    <ConfigEditorDialog
      title={t('config.groupTitle', { name: group.name })}
      description={t('config.groupHint')}
      config={config.data.config}
      saving={save.isPending}
      error={save.error}
      onSave={(values) => save.mutate(values)}
      onClose={onClose}
    />
  );
}

export function GroupsPage() {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const canManage = useCan('group.manage');
  const tree = useQuery(groupTreeQuery);
  const flat = useQuery(groupsQuery);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [deleting, setDeleting] = useState<GroupNode | null>(null);
  const [configuring, setConfiguring] = useState<GroupNode | null>(null);

  const invalidate = () => queryClient.invalidateQueries({ queryKey: keys.groups });
  const save = useMutation({
    mutationFn: (edit: Editing) => {
      const parent = edit.parentId ? Number(edit.parentId) : null;
      return edit.id === null
        ? createGroup({ name: edit.name.trim(), parent_id: parent })
        : updateGroup(edit.id, { name: edit.name.trim(), parent_id: parent });
    },
    onSuccess: async () => {
      setEditing(null);
      await invalidate();
    },
  });
  const removal = useMutation({
    mutationFn: (id: number) => deleteGroup(id),
    onSuccess: async () => {
      setDeleting(null);
      await invalidate();
    },
  });

  // A group cannot move under itself or one of its own sub-groups.
  const excluded = new Set<number>();
  if (editing?.id != null && tree.data) {
    const group = findGroup(tree.data, editing.id);
    excluded.add(editing.id);
    if (group) descendants(group).forEach((id) => excluded.add(id));
  }
  const parents = (flat.data ?? []).filter((group) => !excluded.has(group.id));
  const errorText = (error: unknown) => (error instanceof ApiError ? error.message : t('common.saveFailed'));

  return (
    <Box>
      <PageHeader
        title={t('groups.title')}
        actions={
          canManage ? (
            <Button variant="contained" startIcon={<AddIcon />} onClick={() => setEditing({ id: null, name: '', parentId: '' })}>
              {t('groups.create')}
            </Button>
          ) : null
        }
      />
      <Paper>
        {tree.isPending ? <Loading /> : null}
        {tree.isError ? <ErrorState error={tree.error} onRetry={() => void tree.refetch()} /> : null}
        {tree.data && tree.data.length === 0 ? <Empty message={t('groups.empty')} /> : null}
        {tree.data && tree.data.length > 0 ? (
          <List>
            <Tree
              groups={tree.data}
              depth={0}
              canManage={canManage}
              onEdit={(group) => setEditing({ id: group.id, name: group.name, parentId: group.parent_id ? String(group.parent_id) : '' })}
              onDelete={setDeleting}
              onConfigure={setConfiguring}
            />
          </List>
        ) : null}
      </Paper>
      <Dialog open={editing !== null} onClose={() => setEditing(null)} fullWidth maxWidth="xs">
        <DialogTitle>{editing?.id === null ? t('groups.create') : t('groups.edit')}</DialogTitle>
        <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
          {save.isError ? <Alert severity="error">{errorText(save.error)}</Alert> : null}
          <TextField
            label={t('groups.name')}
            value={editing?.name ?? ''}
            onChange={(e) => editing && setEditing({ ...editing, name: e.target.value })}
            autoFocus
            required
          />
          <TextField
            select
            label={t('groups.parent')}
            value={editing?.parentId ?? ''}
            onChange={(e) => editing && setEditing({ ...editing, parentId: e.target.value })}
            slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
          >
            <MenuItem value="">{t('groups.topLevel')}</MenuItem>
            {parents.map((group) => (
              <MenuItem key={group.id} value={String(group.id)}>
                {group.name}
              </MenuItem>
            ))}
          </TextField>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setEditing(null)}>{t('common.cancel')}</Button>
          <Button
            variant="contained"
            disabled={!editing?.name.trim() || save.isPending}
            onClick={() => editing && save.mutate(editing)}
          >
            {t('common.save')}
          </Button>
        </DialogActions>
      </Dialog>
      {configuring ? <GroupConfigDialog group={configuring} onClose={() => setConfiguring(null)} /> : null}
      <ConfirmDialog
        open={deleting !== null}
        title={t('groups.delete')}
        text={removal.isError ? errorText(removal.error) : t('groups.deleteText', { name: deleting?.name ?? '' })}
        confirm={t('groups.delete')}
        busy={removal.isPending}
        onConfirm={() => deleting && removal.mutate(deleting.id)}
        onClose={() => {
          setDeleting(null);
          removal.reset();
        }}
      />
    </Box>
  );
}
