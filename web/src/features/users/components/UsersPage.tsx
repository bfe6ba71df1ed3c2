import AddIcon from '@mui/icons-material/Add';
import {
  Alert,
  Box,
  Button,
  Chip,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  MenuItem,
  Paper,
  TextField,
} from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { useCan, type Role } from '@/stores/auth';

type User = Schemas['UserRead'];

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
  const create = useMutation({
    mutationFn: (body: { username: string; password: string; role: Role }) =>
      unwrap(api.POST('/api/v1/system/users', { body: { ...body, status: 1 } })),
    onSuccess: async () => {
      setCreating(null);
      await queryClient.invalidateQueries({ queryKey: ['users'] });
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
  ];

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
          {create.isError ? (
            <Alert severity="error">{create.error instanceof ApiError ? create.error.message : t('common.saveFailed')}</Alert>
          ) : null}
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
    </Box>
  );
}
