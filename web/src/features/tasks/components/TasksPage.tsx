import AddIcon from '@mui/icons-material/Add';
import { Box, Button, MenuItem, Paper, TextField, Typography } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useNavigate, useSearchParams } from 'react-router';

import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { TARGET_TYPES, TASK_STATUSES, TASK_TYPES, taskListQuery, type Task, type TargetType, type TaskStatus, type TaskType } from '@/features/tasks/api/tasks';
import { TaskStatusChip, useTaskLabels } from '@/features/tasks/components/labels';
import { useDebounced } from '@/features/tasks/hooks/useDebounced';
import { useCan } from '@/stores/auth';

const PAGE_SIZES = [10, 20, 50, 100];

function oneOf<T extends string>(value: string | null, allowed: readonly T[]): T | '' {
  return value && (allowed as readonly string[]).includes(value) ? (value as T) : '';
}

/** The task list: filters and paging live in the URL, the API pages and filters. */
export function TasksPage() {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const canEdit = useCan('task.edit');
  const { types, targets } = useTaskLabels();
  const [params, setParams] = useSearchParams();
  const type = oneOf<TaskType>(params.get('type'), TASK_TYPES);
  const status = oneOf<TaskStatus>(params.get('status'), TASK_STATUSES);
  const targetType = oneOf<TargetType>(params.get('target_type'), TARGET_TYPES);
  const name = params.get('name') ?? '';
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = PAGE_SIZES.includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const [typed, setTyped] = useState(name);
  const settledName = useDebounced(typed.trim(), 300);
  const tasks = useQuery({
    ...taskListQuery({ name: name || undefined, type: type || undefined, status: status || undefined, target_type: targetType || undefined, page, page_size: pageSize }),
    placeholderData: keepPreviousData,
  });

  function update(patch: Record<string, string>) {
    setParams((current) => {
      const next = new URLSearchParams(current);
      for (const [key, value] of Object.entries(patch)) {
        if (value) next.set(key, value);
        else next.delete(key);
      }
      return next;
    });
  }

  useEffect(() => {
    if (settledName !== name) update({ name: settledName, page: '' });
    // Only the typing moves the URL; a URL changed elsewhere (back button) is read above.
  }, [settledName]);

  const columns: GridColDef<Task>[] = [
    { field: 'name', headerName: t('tasks.name'), flex: 1, minWidth: 180 },
    { field: 'type', headerName: t('tasks.typeLabel'), width: 100, valueFormatter: (v: TaskType) => types[v] },
    { field: 'status', headerName: t('tasks.statusLabel'), width: 100, renderCell: (p) => <TaskStatusChip status={p.row.status} /> },
    {
      field: 'target_type',
      headerName: t('tasks.targetLabel'),
      width: 150,
      valueGetter: (_v, row) => (row.target_type === 'all' ? targets.all : `${targets[row.target_type]} · ${row.target_value?.length ?? 0}`),
    },
    {
      field: 'cron_expr',
      headerName: t('tasks.schedule'),
      width: 200,
      sortable: false,
      renderCell: (p) =>
        p.row.cron_expr ? (
          <Box sx={{ lineHeight: 1.3, display: 'flex', flexDirection: 'column', justifyContent: 'center', height: '100%' }}>
            <Typography variant="body2" sx={{ fontFamily: 'monospace' }}>
              {p.row.cron_expr}
            </Typography>
            {p.row.next_run_at ? (
              <Typography variant="caption" color="text.secondary">
                {t('tasks.nextRunAt', { time: formatDateTime(p.row.next_run_at, i18n.language) })}
              </Typography>
            ) : null}
          </Box>
        ) : (
          '-'
        ),
    },
    { field: 'timeout', headerName: t('tasks.timeout'), width: 100, valueFormatter: (v: number) => t('tasks.seconds', { value: v }) },
    { field: 'updated_at', headerName: t('tasks.updatedAt'), width: 170, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
  ];

  return (
    <Box>
      <PageHeader
        title={t('tasks.title')}
        actions={
          canEdit ? (
            <Button variant="contained" startIcon={<AddIcon />} component={RouterLink} to="/tasks/new">
              {t('tasks.create')}
            </Button>
          ) : null
        }
      />
      <Paper sx={{ p: 2, mb: 2, display: 'flex', gap: 2, flexWrap: 'wrap' }}>
        <TextField size="small" label={t('tasks.searchName')} value={typed} onChange={(e) => setTyped(e.target.value)} sx={{ minWidth: 220 }} />
        <TextField
          select
          size="small"
          label={t('tasks.typeLabel')}
          value={type}
          onChange={(e) => update({ type: e.target.value, page: '' })}
          sx={{ minWidth: 140 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('tasks.any')}</MenuItem>
          {TASK_TYPES.map((value) => (
            <MenuItem key={value} value={value}>
              {types[value]}
            </MenuItem>
          ))}
        </TextField>
        <TextField
          select
          size="small"
          label={t('tasks.statusLabel')}
          value={status}
          onChange={(e) => update({ status: e.target.value, page: '' })}
          sx={{ minWidth: 140 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('tasks.any')}</MenuItem>
          <MenuItem value="enabled">{t('tasks.status.enabled')}</MenuItem>
          <MenuItem value="disabled">{t('tasks.status.disabled')}</MenuItem>
        </TextField>
        <TextField
          select
          size="small"
          label={t('tasks.targetLabel')}
          value={targetType}
          onChange={(e) => update({ target_type: e.target.value, page: '' })}
          sx={{ minWidth: 140 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('tasks.any')}</MenuItem>
          {TARGET_TYPES.map((value) => (
            <MenuItem key={value} value={value}>
              {targets[value]}
            </MenuItem>
          ))}
        </TextField>
      </Paper>
      {tasks.isError ? <ErrorState error={tasks.error} onRetry={() => void tasks.refetch()} /> : null}
      <Paper sx={{ height: 600 }}>
        <DataGrid
          rows={tasks.data?.items ?? []}
          columns={columns}
          rowHeight={56}
          loading={tasks.isFetching && !tasks.data}
          rowCount={tasks.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={PAGE_SIZES}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => update({ page: String(m.page + 1), page_size: String(m.pageSize) })}
          onRowClick={(p) => void navigate(`/tasks/${p.row.id}`)}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          sx={{ '& .MuiDataGrid-row': { cursor: 'pointer' } }}
          slots={{ noRowsOverlay: () => <Empty message={t('tasks.empty')} /> }}
        />
      </Paper>
    </Box>
  );
}
