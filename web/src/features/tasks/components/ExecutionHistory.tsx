import { Box, Paper, Typography } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { useNavigate, useSearchParams } from 'react-router';

import { formatDateTime } from '@/components/format';
import { Empty, ErrorState } from '@/components/PageState';
import { taskExecutionsQuery, type ExecutionSummary, type Trigger } from '@/features/tasks/api/tasks';
import { ExecutionSummaryChip, StateCounts, useTaskLabels } from '@/features/tasks/components/labels';

const PAGE_SIZES = [10, 20, 50];

/** A task's executions, newest first, paged by the API (the page is kept in the URL). */
export function ExecutionHistory({ taskId }: { taskId: number }) {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const { triggers } = useTaskLabels();
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = PAGE_SIZES.includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 10;
  const executions = useQuery({ ...taskExecutionsQuery(taskId, { page, page_size: pageSize }), placeholderData: keepPreviousData });

  const columns: GridColDef<ExecutionSummary>[] = [
    { field: 'created_at', headerName: t('tasks.startedAt'), width: 170, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
    { field: 'triggered_by', headerName: t('tasks.triggeredBy'), width: 110, valueFormatter: (v: Trigger) => triggers[v] },
    { field: 'status', headerName: t('tasks.statusLabel'), width: 120, renderCell: (p) => <ExecutionSummaryChip execution={p.row} /> },
    { field: 'total', headerName: t('tasks.nodeCount'), width: 90 },
    {
      field: 'counts',
      headerName: t('tasks.results'),
      flex: 1,
      minWidth: 240,
      sortable: false,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', alignItems: 'center', height: '100%' }}>
          <StateCounts counts={p.row.counts} />
        </Box>
      ),
    },
    { field: 'execution_id', headerName: t('tasks.executionId'), width: 300 },
  ];

  return (
    <Paper sx={{ p: 2 }}>
      <Typography variant="subtitle1" component="h2" sx={{ fontWeight: 600, mb: 1 }}>
        {t('tasks.history')}
      </Typography>
      {executions.isError ? <ErrorState error={executions.error} onRetry={() => void executions.refetch()} /> : null}
      <Box sx={{ height: 440 }}>
        <DataGrid
          rows={executions.data?.items ?? []}
          getRowId={(row) => row.execution_id}
          columns={columns}
          loading={executions.isFetching && !executions.data}
          rowCount={executions.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={PAGE_SIZES}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => {
            const next = new URLSearchParams(params);
            next.set('page', String(m.page + 1));
            next.set('page_size', String(m.pageSize));
            setParams(next);
          }}
          onRowClick={(p) => void navigate(`/executions/${p.row.execution_id}`)}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          sx={{ '& .MuiDataGrid-row': { cursor: 'pointer' } }}
          slots={{ noRowsOverlay: () => <Empty message={t('tasks.noExecutions')} /> }}
        />
      </Box>
    </Paper>
  );
}
