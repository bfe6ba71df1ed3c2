import ArrowBackIcon from '@mui/icons-material/ArrowBack';
import { Alert, Box, Button, LinearProgress, Link, MenuItem, Paper, TextField, Typography } from '@mui/material';
import Grid from '@mui/material/Grid';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useNavigate, useParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { RolloutStatusChip, UpdateStatusChip, useUpdateStateLabels } from '@/components/StatusChip';
import {
  controlRollout,
  rollbackRollout,
  rolloutStatusQuery,
  UPDATE_STATES,
  type RecordPage,
  type RolloutAction,
  type UpdateRecord,
  type UpdateState,
} from '@/features/rollouts/api/rollouts';
import { RolloutProgress } from '@/features/rollouts/components/RolloutProgress';
import { useCan } from '@/stores/auth';

const BATCH_ID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;
type Confirming = 'cancel' | 'rollback' | null;

export function RolloutDetailPage() {
  const { t, i18n } = useTranslation();
  const { batchId = '' } = useParams();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const canControl = useCan('rollout.control');
  const stateLabels = useUpdateStateLabels();
  const valid = BATCH_ID.test(batchId);
  const [records, setRecords] = useState<RecordPage>({ page: 1, page_size: 50 });
  const status = useQuery({ ...rolloutStatusQuery(batchId, records), enabled: valid, placeholderData: keepPreviousData });
  const [confirming, setConfirming] = useState<Confirming>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: keys.rollouts });
  const control = useMutation({
    mutationFn: (action: RolloutAction) => controlRollout(batchId, action),
    onSuccess: async () => {
      setConfirming(null);
      await refresh();
    },
  });
  const rollback = useMutation({
    mutationFn: () => rollbackRollout(batchId),
    onSuccess: async (result) => {
      setConfirming(null);
      await refresh();
      setNotice(t('rollouts.rollbackStarted', { nodes: result.total_nodes, rollouts: result.batch_ids.length }));
      const first = result.batch_ids[0];
      if (first) void navigate(`/rollouts/${first}`);
    },
  });
  const failure = control.error ?? rollback.error;
  const data = status.data;

  const header = (
    <PageHeader
      title={t('rollouts.detailTitle', { id: batchId.slice(0, 8) })}
      actions={
        <>
          <Button startIcon={<ArrowBackIcon />} component={RouterLink} to="/rollouts">
            {t('rollouts.back')}
          </Button>
          {canControl && data?.status === 'running' ? (
            <Button variant="outlined" disabled={control.isPending} onClick={() => control.mutate('pause')}>
              {t('rollouts.pause')}
            </Button>
          ) : null}
          {canControl && data?.status === 'paused' ? (
            <Button variant="outlined" disabled={control.isPending} onClick={() => control.mutate('resume')}>
              {t('rollouts.resume')}
            </Button>
          ) : null}
          {canControl && (data?.status === 'running' || data?.status === 'paused') ? (
            <Button variant="outlined" color="warning" onClick={() => setConfirming('cancel')}>
              {t('rollouts.cancel')}
            </Button>
          ) : null}
          {canControl && data && data.success > 0 ? (
            <Button variant="outlined" color="error" onClick={() => setConfirming('rollback')}>
              {t('rollouts.rollback')}
            </Button>
          ) : null}
        </>
      }
    />
  );

  if (!valid || (status.error instanceof ApiError && status.error.status === 404)) {
    return (
      <Box>
        {header}
        <Empty message={t('rollouts.notFound')} />
      </Box>
    );
  }

  const columns: GridColDef<UpdateRecord>[] = [
    {
      field: 'node_name',
      headerName: t('rollouts.node'),
      flex: 1,
      minWidth: 150,
      renderCell: (p) => (
        <Link component={RouterLink} to={`/nodes/${p.row.node_id}`}>
          {p.row.node_name ?? `#${p.row.node_id}`}
        </Link>
      ),
    },
    { field: 'wave', headerName: t('rollouts.wave'), width: 70 },
    { field: 'versions', headerName: t('rollouts.fromTo'), width: 170, valueGetter: (_v, row) => `${row.from_version ?? '-'} → ${row.to_version}` },
    { field: 'status', headerName: t('rollouts.status'), width: 110, renderCell: (p) => <UpdateStatusChip status={p.row.status} /> },
    {
      field: 'progress',
      headerName: t('rollouts.nodeProgress'),
      width: 150,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, height: '100%' }}>
          <LinearProgress variant="determinate" value={p.row.progress} sx={{ flex: 1 }} aria-label={t('rollouts.nodeProgress')} />
          <Typography variant="caption">{`${p.row.progress}%`}</Typography>
        </Box>
      ),
    },
    { field: 'error_message', headerName: t('rollouts.error'), flex: 1, minWidth: 200 },
    { field: 'started_at', headerName: t('rollouts.startedAt'), width: 170, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
    { field: 'finished_at', headerName: t('rollouts.finishedAt'), width: 170, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
  ];

  return (
    <Box>
      {header}
      {notice ? (
        <Alert severity="info" onClose={() => setNotice(null)} sx={{ mb: 2 }}>
          {notice}
        </Alert>
      ) : null}
      {failure ? (
        <Alert severity="error" sx={{ mb: 2 }} onClose={() => {
            control.reset();
            rollback.reset();
          }}>
          {failure instanceof ApiError ? `${failure.message} (${failure.code})` : t('common.saveFailed')}
        </Alert>
      ) : null}
      {status.isPending ? <Loading /> : null}
      {status.isError ? <ErrorState error={status.error} onRetry={() => void status.refetch()} /> : null}
      {data ? (
        <Grid container spacing={2}>
          <Grid size={12}>
            <Paper sx={{ p: 2, display: 'grid', gap: 1 }}>
              <Box sx={{ display: 'flex', gap: 2, alignItems: 'center', flexWrap: 'wrap' }}>
                <RolloutStatusChip status={data.status} />
                <Typography>{t('rollouts.waveOf', { current: data.current_wave, total: data.total_waves })}</Typography>
                {data.records[0] ? <Typography color="text.secondary">{t('rollouts.toVersion', { version: data.records[0].to_version })}</Typography> : null}
                <Typography color="text.secondary" variant="body2" sx={{ ml: 'auto' }}>
                  {data.batch_id}
                </Typography>
              </Box>
              {data.reason ? <Alert severity={data.status === 'failed' ? 'error' : 'info'}>{data.reason}</Alert> : null}
              <RolloutProgress total={data.total} success={data.success} failed={data.failed} testId="rollout-progress" />
            </Paper>
          </Grid>
          <Grid size={12}>
            <Paper sx={{ p: 2, mb: 2 }}>
              <TextField
                select
                size="small"
                label={t('rollouts.recordStatus')}
                value={records.record_status ?? ''}
                onChange={(e) => {
                  const value = e.target.value as UpdateState | '';
                  setRecords({ page: 1, page_size: records.page_size, ...(value ? { record_status: value } : {}) });
                }}
                sx={{ minWidth: 180 }}
                slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
              >
                <MenuItem value="">{t('rollouts.allStatuses')}</MenuItem>
                {UPDATE_STATES.map((value) => (
                  <MenuItem key={value} value={value}>
                    {stateLabels[value]}
                  </MenuItem>
                ))}
              </TextField>
            </Paper>
            <Paper sx={{ height: 520 }}>
              <DataGrid
                rows={data.records}
                columns={columns}
                rowCount={data.records_total}
                paginationMode="server"
                paginationModel={{ page: records.page - 1, pageSize: records.page_size }}
                onPaginationModelChange={(m) => setRecords({ ...records, page: m.page + 1, page_size: m.pageSize })}
                loading={status.isFetching && status.isPlaceholderData}
                disableRowSelectionOnClick
                disableColumnFilter
                disableColumnSorting
                pageSizeOptions={[25, 50, 100]}
                slots={{ noRowsOverlay: () => <Empty /> }}
              />
            </Paper>
          </Grid>
        </Grid>
      ) : null}
      <ConfirmDialog
        open={confirming === 'cancel'}
        title={t('rollouts.cancel')}
        text={t('rollouts.cancelText')}
        confirm={t('rollouts.cancel')}
        busy={control.isPending}
        onConfirm={() => control.mutate('cancel')}
        onClose={() => setConfirming(null)}
      />
      <ConfirmDialog
        open={confirming === 'rollback'}
        title={t('rollouts.rollback')}
        text={t('rollouts.rollbackText')}
        confirm={t('rollouts.rollback')}
        busy={rollback.isPending}
        onConfirm={() => rollback.mutate()}
        onClose={() => setConfirming(null)}
      />
    </Box>
  );
}
