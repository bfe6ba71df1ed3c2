import { Box, Chip, MenuItem, Paper, TextField } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { useNavigate, useSearchParams } from 'react-router';

import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { RolloutStatusChip } from '@/components/StatusChip';
import { ROLLOUT_STATUSES, rolloutListQuery, type Rollout, type RolloutStatus } from '@/features/rollouts/api/rollouts';
import { RolloutProgress } from '@/features/rollouts/components/RolloutProgress';

function tally(rollout: Rollout) {
  const c = rollout.counts ?? { pending: 0, downloading: 0, installing: 0, verifying: 0, success: 0, failed: 0, rollback: 0 };
  const success = c.success;
  const failed = c.failed + c.rollback;
  const pending = c.pending + c.downloading + c.installing + c.verifying;
  return { success, failed, total: success + failed + pending };
}

export function RolloutsPage() {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const raw = params.get('status') as RolloutStatus | null;
  const status = raw && ROLLOUT_STATUSES.includes(raw) ? raw : '';
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = [10, 20, 50, 100].includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const rollouts = useQuery({
    ...rolloutListQuery({ status: status || undefined, page, page_size: pageSize }),
    placeholderData: keepPreviousData,
  });
  const strategies = { all: t('deploy.strategyAll'), rolling: t('deploy.strategyRolling'), canary: t('deploy.strategyCanary') };
  const statusLabels: Record<RolloutStatus, string> = {
    running: t('status.rollout.running'),
    paused: t('status.rollout.paused'),
    cancelled: t('status.rollout.cancelled'),
    completed: t('status.rollout.completed'),
    failed: t('status.rollout.failed'),
  };

  function update(patch: Record<string, string>) {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(patch)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    setParams(next);
  }

  const columns: GridColDef<Rollout>[] = [
    { field: 'created_at', headerName: t('rollouts.createdAt'), width: 170, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
    {
      field: 'version',
      headerName: t('rollouts.version'),
      width: 190,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', gap: 1, alignItems: 'center', height: '100%' }}>
          {`${p.row.component} ${p.row.version}`}
          {p.row.rollback_of ? <Chip size="small" variant="outlined" label={t('rollouts.rollbackTag')} /> : null}
        </Box>
      ),
    },
    { field: 'strategy', headerName: t('deploy.strategy'), width: 110, valueFormatter: (v: Rollout['strategy']) => strategies[v] },
    { field: 'status', headerName: t('rollouts.status'), width: 110, renderCell: (p) => <RolloutStatusChip status={p.row.status} /> },
    { field: 'wave', headerName: t('rollouts.wave'), width: 90, valueGetter: (_v, row) => `${row.current_wave} / ${row.total_waves}` },
    {
      field: 'counts',
      headerName: t('rollouts.progress'),
      flex: 1,
      minWidth: 360,
      sortable: false,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', alignItems: 'center', height: '100%' }}>
          <RolloutProgress {...tally(p.row)} />
        </Box>
      ),
    },
    { field: 'batch_id', headerName: t('rollouts.batchId'), width: 290 },
  ];

  return (
    <Box>
      <PageHeader title={t('rollouts.title')} />
      <Paper sx={{ p: 2, mb: 2 }}>
        <TextField
          select
          size="small"
          label={t('rollouts.status')}
          value={status}
          onChange={(e) => update({ status: e.target.value, page: '' })}
          sx={{ minWidth: 160 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('rollouts.allStatuses')}</MenuItem>
          {ROLLOUT_STATUSES.map((value) => (
            <MenuItem key={value} value={value}>
              {statusLabels[value]}
            </MenuItem>
          ))}
        </TextField>
      </Paper>
      {rollouts.isError ? <ErrorState error={rollouts.error} onRetry={() => void rollouts.refetch()} /> : null}
      <Paper sx={{ height: 560 }}>
        <DataGrid
          rows={rollouts.data?.items ?? []}
          getRowId={(row) => row.batch_id}
          columns={columns}
          rowHeight={60}
          loading={rollouts.isFetching && !rollouts.data}
          rowCount={rollouts.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={[10, 20, 50, 100]}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => update({ page: String(m.page + 1), page_size: String(m.pageSize) })}
          onRowClick={(p) => void navigate(`/rollouts/${p.row.batch_id}`)}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          sx={{ '& .MuiDataGrid-row': { cursor: 'pointer' } }}
          slots={{ noRowsOverlay: () => <Empty message={t('rollouts.empty')} /> }}
        />
      </Paper>
    </Box>
  );
}
