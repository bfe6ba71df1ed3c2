import { Box, Button, Chip, MenuItem, Paper, TextField } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { useSearchParams } from 'react-router';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { useCan } from '@/stores/auth';

type AuditLog = Schemas['AuditLogRead'];

export function AuditLogsPage() {
  const { t, i18n } = useTranslation();
  const allowed = useCan('audit.read');
  const [params, setParams] = useSearchParams();
  const status = params.get('status') === 'success' || params.get('status') === 'failed' ? (params.get('status') as 'success' | 'failed') : '';
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = [10, 20, 50, 100].includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const query = {
    username: params.get('username') || undefined,
    action: params.get('action') || undefined,
    resource_type: params.get('resource_type') || undefined,
    status: status || undefined,
    page,
    page_size: pageSize,
  };
  const [draft, setDraft] = useState({
    username: query.username ?? '',
    action: query.action ?? '',
    resource_type: query.resource_type ?? '',
  });
  const logs = useQuery({
    queryKey: keys.auditLogs(query),
    queryFn: () => unwrap(api.GET('/api/v1/system/audit-logs', { params: { query } })),
    placeholderData: keepPreviousData,
    enabled: allowed,
  });

  function update(patch: Record<string, string>) {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(patch)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    setParams(next);
  }

  function apply(event: FormEvent) {
    event.preventDefault();
    update({ ...draft, page: '' });
  }

  if (!allowed) return <Empty message={t('common.forbidden')} />;

  const columns: GridColDef<AuditLog>[] = [
    { field: 'created_at', headerName: t('audit.time'), width: 180, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
    { field: 'username', headerName: t('audit.user'), width: 130 },
    { field: 'action', headerName: t('audit.action'), width: 170 },
    { field: 'resource_type', headerName: t('audit.resourceType'), width: 130 },
    { field: 'resource_id', headerName: t('audit.resourceId'), width: 110 },
    {
      field: 'status',
      headerName: t('audit.status'),
      width: 110,
      renderCell: (p) => (
        <Chip size="small" color={p.row.status === 'success' ? 'success' : 'error'} label={p.row.status === 'success' ? t('audit.success') : t('audit.failed')} />
      ),
    },
    { field: 'ip', headerName: t('audit.ip'), width: 130 },
    { field: 'error_message', headerName: t('audit.error'), flex: 1, minWidth: 160 },
  ];

  return (
    <Box>
      <PageHeader title={t('audit.title')} />
      <Paper component="form" onSubmit={apply} sx={{ p: 2, mb: 2, display: 'flex', gap: 2, flexWrap: 'wrap' }}>
        <TextField size="small" label={t('audit.user')} value={draft.username} onChange={(e) => setDraft({ ...draft, username: e.target.value })} />
        <TextField size="small" label={t('audit.action')} placeholder="user.create" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })} />
        <TextField size="small" label={t('audit.resourceType')} value={draft.resource_type} onChange={(e) => setDraft({ ...draft, resource_type: e.target.value })} />
        <TextField
          select
          size="small"
          label={t('audit.status')}
          value={status}
          onChange={(e) => update({ status: e.target.value, page: '' })}
          sx={{ minWidth: 140 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('audit.allStatuses')}</MenuItem>
          <MenuItem value="success">{t('audit.success')}</MenuItem>
          <MenuItem value="failed">{t('audit.failed')}</MenuItem>
        </TextField>
        <Button type="submit" variant="contained">
          {t('common.search')}
        </Button>
      </Paper>
      {logs.isError ? <ErrorState error={logs.error} onRetry={() => void logs.refetch()} /> : null}
      <Paper sx={{ height: 600 }}>
        <DataGrid
          rows={logs.data?.items ?? []}
          columns={columns}
          loading={logs.isFetching && !logs.data}
          rowCount={logs.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={[10, 20, 50, 100]}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => update({ page: String(m.page + 1), page_size: String(m.pageSize) })}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          slots={{ noRowsOverlay: () => <Empty /> }}
        />
      </Paper>
    </Box>
  );
}
