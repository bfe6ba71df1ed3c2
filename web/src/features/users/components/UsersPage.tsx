import AddIcon from '@mui/icons-material/Add';
import BlockIcon from '@mui/icons-material/Block';
import CheckCircleIcon from '@mui/icons-material/CheckCircleOutline';
import DeleteIcon from '@mui/icons-material/Delete';
import EditIcon from '@mui/icons-material/Edit';
import PasswordIcon from '@mui/icons-material/Password';
import {
  Alert,
  Box,
  Button,
  Chip,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  IconButton,
  MenuItem,
  Paper,
  TextField,
  Tooltip,
} from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, api, unwrap } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { createUser, deleteUser, updateUser, type User } from '@/features/users/api/users';
import { useAuthStore, useCan, type Role } from '@/stores/auth';

function errorText(error: unknown, fallback: string): string {
  return error instanceof ApiError ? `${error.message} (${error.code})` : fallback;
}

type Editing = { user: User; role: Role } | null;
type Resetting = { user: User; password: string } | null;
type Confirming = { user: User; action: 'delete' | 'disable' | 'enable' } | null;

export function UsersPage() {
  const { t, i18n } = useTranslation();
  const queryClient = useQueryClient();
  const allowed = useCan('user.manage');
  const [model, setModel] = useState({ page: 0, pageSize: 20 });
  const [creating, setCreating] = useState<{ username: string; password: string; role: Role } | null>(null);
  const query = { page: model.page + 1, page_size: model.pageSize };
  const users = useQuery({
    queryKey: keys.users(query),
    queryFn: () => unwrap(api.GET('/api/v1/system/users', { params: { query } })),
    placeholderData: keepPreviousData,
    enabled: allowed,
  });
  const me = useAuthStore((state) => state.user?.id);
  const [editing, setEditing] = useState<Editing>(null);
  const [resetting, setResetting] = useState<Resetting>(null);
  const [confirming, setConfirming] = useState<Confirming>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const invalidate = () => queryClient.invalidateQueries({ queryKey: keys.allUsers });
  const create = useMutation({
    mutationFn: (body: { username: string; password: string; role: Role }) => createUser({ ...body, status: 1 }),
    onSuccess: async () => {
      setCreating(null);
      await invalidate();
    },
  });
  const edit = useMutation({
    mutationFn: ({ id, role }: { id: number; role: Role }) => updateUser(id, { role }),
    onSuccess: async () => {
      setEditing(null);
      await invalidate();
    },
  });
  const reset = useMutation({
    mutationFn: ({ id, password }: { id: number; password: string }) => updateUser(id, { password }),
    onSuccess: async (user) => {
      setResetting(null);
      setNotice(t('users.passwordReset', { name: user.username }));
      await invalidate();
    },
  });
  const confirm = useMutation({
    mutationFn: ({ user, action }: NonNullable<Confirming>) =>
      action === 'delete' ? deleteUser(user.id) : updateUser(user.id, { status: action === 'enable' ? 1 : 0 }),
    onSuccess: async () => {
      setConfirming(null);
      await invalidate();
    },
  });
  const roles = { admin: t('role.admin'), operator: t('role.operator'), viewer: t('role.viewer') };

  if (!allowed) return <Empty message={t('common.forbidden')} />;

  const columns: GridColDef<User>[] = [
    { field: 'username', headerName: t('users.username'), flex: 1, minWidth: 140 },
    { field: 'role', headerName: t('users.role'), width: 120, valueFormatter: (v: Role) => roles[v] },
    {
      field: 'status',
      headerName: t('users.status'),
      width: 110,
      renderCell: (p) => (
        <Chip size="small" color={p.row.status === 1 ? 'success' : 'default'} label={p.row.status === 1 ? t('users.enabled') : t('users.disabled')} />
      ),
    },
    { field: 'email', headerName: t('users.email'), flex: 1, minWidth: 160 },
    { field: 'last_login_at', headerName: t('users.lastLogin'), width: 180, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
    {
      field: 'actions',
      headerName: t('common.actions'),
      width: 180,
      sortable: false,
      renderCell: (p) => {
        const self = p.row.id === me;
        const name = p.row.username;
        return (
          <Box sx={{ display: 'flex', alignItems: 'center', height: '100%' }}>
            <Tooltip title={t('users.editRole')}>
              <IconButton
                size="small"
                aria-label={`${t('users.editRole')} ${name}`}
                onClick={() => {
                  edit.reset();
                  setEditing({ user: p.row, role: p.row.role });
                }}
              >
                <EditIcon fontSize="small" />
              </IconButton>
            </Tooltip>
            <Tooltip title={t('users.resetPassword')}>
              <IconButton
                size="small"
                aria-label={`${t('users.resetPassword')} ${name}`}
                onClick={() => {
                  reset.reset();
                  setResetting({ user: p.row, password: '' });
                }}
              >
                <PasswordIcon fontSize="small" />
              </IconButton>
            </Tooltip>
            {self ? null : (
              <Tooltip title={p.row.status === 1 ? t('users.disable') : t('users.enable')}>
                <IconButton
                  size="small"
                  aria-label={`${p.row.status === 1 ? t('users.disable') : t('users.enable')} ${name}`}
                  onClick={() => {
                    confirm.reset();
                    setConfirming({ user: p.row, action: p.row.status === 1 ? 'disable' : 'enable' });
                  }}
                >
                  {p.row.status === 1 ? <BlockIcon fontSize="small" /> : <CheckCircleIcon fontSize="small" />}
                </IconButton>
              </Tooltip>
            )}
            {self ? null : (
              <Tooltip title={t('users.delete')}>
                <IconButton
                  size="small"
                  color="error"
                  aria-label={`${t('users.delete')} ${name}`}
                  onClick={() => {
                    confirm.reset();
                    setConfirming({ user: p.row, action: 'delete' });
                  }}
                >
                  <DeleteIcon fontSize="small" />
                </IconButton>
              </Tooltip>
            )}
          </Box>
        );
      },
    },
  ];
  const confirmTexts = {
    delete: [t('users.delete'), t('users.deleteText', { name: confirming?.user.username ?? '' })],
    disable: [t('users.disable'), t('users.disableText', { name: confirming?.user.username ?? '' })],
    enable: [t('users.enable'), t('users.enableText', { name: confirming?.user.username ?? '' })],
  } as const;
  const [confirmTitle, confirmText] = confirming ? confirmTexts[confirming.action] : ['', ''];

  return (
    <Box>
      <PageHeader
        title={t('users.title')}
        actions={
          <Button variant="contained" startIcon={<AddIcon />} onClick={() => setCreating({ username: '', password: '', role: 'viewer' })}>
            {t('users.create')}
          </Button>
        }
      />
      {notice ? (
        <Alert severity="success" onClose={() => setNotice(null)} sx={{ mb: 2 }}>
          {notice}
        </Alert>
      ) : null}
      {users.isError ? <ErrorState error={users.error} onRetry={() => void users.refetch()} /> : null}
      <Paper sx={{ height: 560 }}>
        <DataGrid
          rows={users.data?.items ?? []}
          columns={columns}
          loading={users.isFetching && !users.data}
          rowCount={users.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={[10, 20, 50, 100]}
          paginationModel={model}
          onPaginationModelChange={setModel}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          slots={{ noRowsOverlay: () => <Empty /> }}
        />
      </Paper>
      <Dialog open={creating !== null} onClose={() => setCreating(null)} fullWidth maxWidth="xs">
        <DialogTitle>{t('users.create')}</DialogTitle>
        <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
          {create.isError ? <Alert severity="error">{errorText(create.error, t('common.saveFailed'))}</Alert> : null}
          <TextField
            label={t('users.username')}
            value={creating?.username ?? ''}
            onChange={(e) => creating && setCreating({ ...creating, username: e.target.value })}
            required
          />
          <TextField
            label={t('login.password')}
            type="password"
            autoComplete="new-password"
            value={creating?.password ?? ''}
            onChange={(e) => creating && setCreating({ ...creating, password: e.target.value })}
            required
          />
          <TextField
            select
            label={t('users.role')}
            value={creating?.role ?? 'viewer'}
            onChange={(e) => creating && setCreating({ ...creating, role: e.target.value as Role })}
          >
            {(Object.keys(roles) as Role[]).map((role) => (
              <MenuItem key={role} value={role}>
                {roles[role]}
              </MenuItem>
            ))}
          </TextField>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setCreating(null)}>{t('common.cancel')}</Button>
          <Button
            variant="contained"
            disabled={!creating?.username || !creating.password || create.isPending}
            onClick={() => creating && create.mutate(creating)}
          >
            {t('common.save')}
          </Button>
        </DialogActions>
      </Dialog>
      <Dialog open={editing !== null} onClose={() => setEditing(null)} fullWidth maxWidth="xs">
        <DialogTitle>{t('users.editRoleOf', { name: editing?.user.username ?? '' })}</DialogTitle>
        <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
          {edit.isError ? <Alert severity="error">{errorText(edit.error, t('common.saveFailed'))}</Alert> : null}
          <TextField
            select
            label={t('users.role')}
            value={editing?.role ?? 'viewer'}
            onChange={(e) => editing && setEditing({ ...editing, role: e.target.value as Role })}
          >
            {(Object.keys(roles) as Role[]).map((role) => (
              <MenuItem key={role} value={role}>
                {roles[role]}
              </MenuItem>
            ))}
          </TextField>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setEditing(null)}>{t('common.cancel')}</Button>
          <Button
            variant="contained"
            disabled={!editing || edit.isPending}
            onClick={() => editing && edit.mutate({ id: editing.user.id, role: editing.role })}
          >
            {t('common.save')}
          </Button>
        </DialogActions>
      </Dialog>
      <Dialog open={resetting !== null} onClose={() => setResetting(null)} fullWidth maxWidth="xs">
        <DialogTitle>{t('users.resetPasswordOf', { name: resetting?.user.username ?? '' })}</DialogTitle>
        <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
          {reset.isError ? <Alert severity="error">{errorText(reset.error, t('common.saveFailed'))}</Alert> : null}
          <TextField
            label={t('users.newPassword')}
            type="password"
            autoComplete="new-password"
            value={resetting?.password ?? ''}
            onChange={(e) => resetting && setResetting({ ...resetting, password: e.target.value })}
            helperText={t('users.newPasswordHint')}
            required
          />
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setResetting(null)}>{t('common.cancel')}</Button>
          <Button
            variant="contained"
            disabled={!resetting?.password || reset.isPending}
            onClick={() => resetting && reset.mutate({ id: resetting.user.id, password: resetting.password })}
          >
            {t('common.save')}
          </Button>
        </DialogActions>
      </Dialog>
      <ConfirmDialog
        open={confirming !== null}
        title={confirmTitle}
        text={confirm.isError ? errorText(confirm.error, t('common.saveFailed')) : confirmText}
        confirm={confirmTitle}
        busy={confirm.isPending}
        onConfirm={() => confirming && confirm.mutate(confirming)}
        onClose={() => setConfirming(null)}
      />
    </Box>
  );
}
