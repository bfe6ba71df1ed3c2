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
  Paper,
  TextField,
} from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { useCan } from '@/stores/auth';

type Token = Schemas['EnrollmentTokenRead'];

export function EnrollmentTokensPage() {
  const { t, i18n } = useTranslation();
  const queryClient = useQueryClient();
  const allowed = useCan('enrollment.manage');
  const [name, setName] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<Token | null>(null);
  const tokens = useQuery({
    queryKey: keys.enrollmentTokens,
    queryFn: () => unwrap(api.GET('/api/v1/enrollment-tokens')),
    enabled: allowed,
  });
  const invalidate = () => queryClient.invalidateQueries({ queryKey: keys.enrollmentTokens });
  const create = useMutation({
    mutationFn: (tokenName: string) => unwrap(api.POST('/api/v1/enrollment-tokens', { body: { name: tokenName } })),
    onSuccess: async (result) => {
      setName(null);
      setCreated(result.token);
      await invalidate();
    },
  });
  const revoke = useMutation({
    mutationFn: (id: number) => unwrap(api.DELETE('/api/v1/enrollment-tokens/{id}', { params: { path: { id } } })),
    onSuccess: async () => {
      setRevoking(null);
      await invalidate();
    },
  });

  if (!allowed) return <Empty message={t('common.forbidden')} />;

  const columns: GridColDef<Token>[] = [
    { field: 'name', headerName: t('enrollment.name'), flex: 1, minWidth: 140 },
    { field: 'token_prefix', headerName: t('enrollment.prefix'), width: 120 },
    { field: 'uses', headerName: t('enrollment.uses'), width: 110, valueGetter: (_v, row) => `${row.uses}${row.max_uses ? ` / ${row.max_uses}` : ''}` },
    { field: 'expires_at', headerName: t('enrollment.expiresAt'), width: 180, valueFormatter: (v: string | null) => (v ? formatDateTime(v, i18n.language) : t('enrollment.never')) },
    { field: 'last_used_at', headerName: t('enrollment.lastUsed'), width: 180, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
    {
      field: 'revoked_at',
      headerName: t('enrollment.state'),
      width: 130,
      renderCell: (p) =>
        p.row.revoked_at ? (
          <Chip size="small" label={t('enrollment.revoked')} />
        ) : (
          <Button size="small" color="error" onClick={() => setRevoking(p.row)}>
            {t('enrollment.revoke')}
          </Button>
        ),
    },
  ];

  return (
    <Box>
      <PageHeader
        title={t('enrollment.title')}
        actions={
          <Button variant="contained" startIcon={<AddIcon />} onClick={() => setName('')}>
            {t('enrollment.create')}
          </Button>
        }
      />
      {created ? (
        <Alert severity="success" onClose={() => setCreated(null)} sx={{ mb: 2, wordBreak: 'break-all' }}>
          {t('enrollment.createdOnce')} <code>{created}</code>
        </Alert>
      ) : null}
      {tokens.isError ? <ErrorState error={tokens.error} onRetry={() => void tokens.refetch()} /> : null}
      <Paper sx={{ height: 480 }}>
        <DataGrid
          rows={tokens.data ?? []}
          columns={columns}
          loading={tokens.isPending}
          disableColumnFilter
          disableRowSelectionOnClick
          slots={{ noRowsOverlay: () => <Empty /> }}
        />
      </Paper>
      <Dialog open={name !== null} onClose={() => setName(null)} fullWidth maxWidth="xs">
        <DialogTitle>{t('enrollment.create')}</DialogTitle>
        <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
          {create.isError ? (
            <Alert severity="error">{create.error instanceof ApiError ? create.error.message : t('common.saveFailed')}</Alert>
          ) : null}
          <TextField label={t('enrollment.name')} value={name ?? ''} onChange={(e) => setName(e.target.value)} autoFocus required />
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setName(null)}>{t('common.cancel')}</Button>
          <Button variant="contained" disabled={!name?.trim() || create.isPending} onClick={() => name && create.mutate(name.trim())}>
            {t('common.save')}
          </Button>
        </DialogActions>
      </Dialog>
      <ConfirmDialog
        open={revoking !== null}
        title={t('enrollment.revoke')}
        text={t('enrollment.revokeText', { name: revoking?.name ?? '' })}
        confirm={t('enrollment.revoke')}
        busy={revoke.isPending}
        onConfirm={() => revoking && revoke.mutate(revoking.id)}
        onClose={() => setRevoking(null)}
      />
    </Box>
  );
}
