import ArrowBackIcon from '@mui/icons-material/ArrowBack';
import StopIcon from '@mui/icons-material/StopCircleOutlined';
import { Alert, Box, Button, LinearProgress, Link, Paper, Typography } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { cancelExecution, executionQuery, isFinal, taskQuery, type ExecutionRow } from '@/features/tasks/api/tasks';
import { ExecutionStateChip, ExecutionSummaryChip, StateCounts, useTaskLabels } from '@/features/tasks/components/labels';
import { NodeOutput } from '@/features/tasks/components/NodeOutput';
import { useCan } from '@/stores/auth';

const EXECUTION_ID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;

/** How long a node's run took (or has taken so far), as "850 ms", "12.3 s" or "4 m 05 s". */
export function duration(row: Pick<ExecutionRow, 'started_at' | 'finished_at'>, now = Date.now()): string {
  if (!row.started_at) return '-';
  const ms = (row.finished_at ? Date.parse(row.finished_at) : now) - Date.parse(row.started_at);
  if (!(ms >= 0)) return '-';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} m ${String(seconds % 60).padStart(2, '0')} s`;
}

/** One execution: its summary, each node's row, the chosen node's live output, and cancel. */
export function ExecutionPage() {
  const { t, i18n } = useTranslation();
  const { executionId = '' } = useParams();
  const queryClient = useQueryClient();
  const canCancel = useCan('task.execute');
  const canReadOutput = useCan('task.output');
  const { triggers } = useTaskLabels();
  const valid = EXECUTION_ID.test(executionId);
  const execution = useQuery({ ...executionQuery(executionId), enabled: valid });
  const data = execution.data;
  const task = useQuery({ ...taskQuery(data?.task_id ?? 0), enabled: Boolean(data) });
  const [chosen, setChosen] = useState<number | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const cancel = useMutation({
    mutationFn: () => cancelExecution(executionId),
    onSuccess: async (result) => {
      setConfirming(false);
      setNotice(t('tasks.cancelled', { cancelled: result.cancelled, signalled: result.signalled }));
      await queryClient.invalidateQueries({ queryKey: keys.execution(executionId) });
    },
  });

  const header = (
    <PageHeader
      title={t('tasks.executionTitle', { id: executionId.slice(0, 8) })}
      actions={
        <>
          {data ? (
            <Button startIcon={<ArrowBackIcon />} component={RouterLink} to={`/tasks/${data.task_id}`}>
              {t('tasks.backToTask')}
            </Button>
          ) : null}
          {canCancel && data?.status === 'running' ? (
            <Button color="warning" variant="outlined" startIcon={<StopIcon />} onClick={() => setConfirming(true)}>
              {t('tasks.cancel')}
            </Button>
          ) : null}
        </>
      }
    />
  );
  if (!valid || (execution.error instanceof ApiError && execution.error.status === 404)) {
    return (
      <Box>
        {header}
        <Empty message={t('tasks.executionNotFound')} />
      </Box>
    );
  }

  const rows = data?.nodes ?? [];
  const selected = rows.find((row) => row.node_id === chosen) ?? rows[0];
  const finals = rows.filter((row) => isFinal(row.status)).length;
  const columns: GridColDef<ExecutionRow>[] = [
    {
      field: 'node_name',
      headerName: t('tasks.node'),
      flex: 1,
      minWidth: 150,
      renderCell: (p) => (
        <Link component={RouterLink} to={`/nodes/${p.row.node_id}`} onClick={(e) => e.stopPropagation()}>
          {p.row.node_name ?? `#${p.row.node_id}`}
        </Link>
      ),
    },
    { field: 'status', headerName: t('tasks.statusLabel'), width: 110, renderCell: (p) => <ExecutionStateChip state={p.row.status} /> },
    { field: 'exit_code', headerName: t('tasks.exitCode'), width: 90, valueFormatter: (v: number | null) => (v === null ? '-' : String(v)) },
    { field: 'duration', headerName: t('tasks.duration'), width: 110, valueGetter: (_v, row) => duration(row) },
    { field: 'started_at', headerName: t('tasks.startedAt'), width: 170, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
    { field: 'error', headerName: t('tasks.error'), flex: 1, minWidth: 180 },
  ];

  return (
    <Box>
      {header}
      {notice ? (
        <Alert severity="info" onClose={() => setNotice(null)} sx={{ mb: 2 }}>
          {notice}
        </Alert>
      ) : null}
      {cancel.error ? (
        <Alert severity="error" sx={{ mb: 2 }} onClose={() => cancel.reset()}>
          {cancel.error instanceof ApiError ? `${cancel.error.message} (${cancel.error.code})` : t('common.saveFailed')}
        </Alert>
      ) : null}
      {execution.isPending ? <Loading /> : null}
      {execution.isError ? <ErrorState error={execution.error} onRetry={() => void execution.refetch()} /> : null}
      {data ? (
        <Box sx={{ display: 'grid', gap: 2 }}>
          <Paper sx={{ p: 2, display: 'grid', gap: 1.5 }} data-testid="execution-summary">
            <Box sx={{ display: 'flex', gap: 2, alignItems: 'center', flexWrap: 'wrap' }}>
              <ExecutionSummaryChip execution={data} />
              <Link component={RouterLink} to={`/tasks/${data.task_id}`} variant="subtitle1">
                {task.data?.name ?? `#${data.task_id}`}
              </Link>
              <Typography color="text.secondary" variant="body2">
                {t('tasks.triggeredAt', { trigger: triggers[data.triggered_by], time: formatDateTime(data.created_at, i18n.language) })}
              </Typography>
              <Typography color="text.secondary" variant="body2" sx={{ ml: 'auto' }}>
                {data.execution_id}
              </Typography>
            </Box>
            <Box sx={{ display: 'flex', alignItems: 'center', gap: 2 }}>
              <LinearProgress
                variant="determinate"
                value={data.total > 0 ? (100 * finals) / data.total : 100}
                sx={{ flex: 1, height: 8, borderRadius: 4 }}
                aria-label={t('tasks.progress')}
              />
              <Typography variant="body2" data-testid="execution-progress">
                {t('tasks.finishedOf', { done: finals, total: data.total })}
              </Typography>
            </Box>
            <Box>
              <StateCounts counts={data.counts} />
            </Box>
          </Paper>
          <Paper sx={{ height: Math.min(120 + rows.length * 52, 420) }}>
            <DataGrid
              rows={rows}
              columns={columns}
              rowSelectionModel={{ type: 'include', ids: new Set(selected ? [selected.id] : []) }}
              onRowClick={(p) => setChosen(p.row.node_id)}
              hideFooter={rows.length <= 100}
              disableColumnFilter
              sx={{ '& .MuiDataGrid-row': { cursor: 'pointer' } }}
              slots={{ noRowsOverlay: () => <Empty message={t('tasks.noNodes')} /> }}
            />
          </Paper>
          {selected ? (
            <Paper sx={{ p: 2 }}>
              {canReadOutput ? (
                <NodeOutput
                  key={`${executionId}:${selected.node_id}`}
                  executionId={executionId}
                  nodeId={selected.node_id}
                  nodeName={selected.node_name ?? `#${selected.node_id}`}
                />
              ) : (
                <Alert severity="info">{t('tasks.output.forbidden')}</Alert>
              )}
            </Paper>
          ) : null}
        </Box>
      ) : null}
      <ConfirmDialog
        open={confirming}
        title={t('tasks.cancel')}
        text={t('tasks.cancelText')}
        confirm={t('tasks.cancel')}
        busy={cancel.isPending}
        onConfirm={() => cancel.mutate()}
        onClose={() => setConfirming(false)}
      />
    </Box>
  );
}
