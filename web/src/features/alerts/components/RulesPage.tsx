import AddIcon from '@mui/icons-material/Add';
import DeleteIcon from '@mui/icons-material/Delete';
import EditIcon from '@mui/icons-material/Edit';
import { Box, Button, Chip, IconButton, Paper, Tooltip } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useSearchParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { SeverityChip } from '@/components/StatusChip';
import { BOOLEAN_METRICS, channelsQuery, deleteRule, OPERATORS, ruleListQuery, type Metric, type Rule } from '@/features/alerts/api/alerts';
import { AlertsTabs } from '@/features/alerts/components/AlertsTabs';
import { RuleDialog } from '@/features/alerts/components/RuleDialog';
import { useCan } from '@/stores/auth';

const PAGE_SIZES = [10, 20, 50, 100];

export function condition(rule: Rule): string {
  if (BOOLEAN_METRICS.has(rule.metric as Metric) || !rule.operator) return rule.metric;
  return `${rule.metric} ${OPERATORS[rule.operator]} ${rule.threshold}`;
}

export function RulesPage() {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const admin = useCan('alert.manage');
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = PAGE_SIZES.includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const rules = useQuery({ ...ruleListQuery({ page, page_size: pageSize }), placeholderData: keepPreviousData });
  const channels = useQuery({ ...channelsQuery, enabled: admin });
  const [editing, setEditing] = useState<Rule | null | 'new'>(null);
  const [deleting, setDeleting] = useState<Rule | null>(null);
  const removal = useMutation({
    mutationFn: (id: number) => deleteRule(id),
    onSuccess: async () => {
      setDeleting(null);
      await queryClient.invalidateQueries({ queryKey: keys.alertRules });
    },
  });
  const channelNames = new Map((channels.data ?? []).map((c) => [c.id, c.name]));
  const targets = {
    all: t('alerts.rules.targetAll'),
    group: t('alerts.rules.targetGroup'),
    tag: t('alerts.rules.targetTag'),
    node: t('alerts.rules.targetNode'),
  };

  const columns: GridColDef<Rule>[] = [
    { field: 'name', headerName: t('alerts.rules.name'), flex: 1, minWidth: 140 },
    {
      field: 'metric',
      headerName: t('alerts.rules.condition'),
      flex: 1,
      minWidth: 180,
      valueGetter: (_v, row) => `${condition(row)} · ${t('alerts.rules.forSeconds', { n: row.duration })}`,
    },
    { field: 'severity', headerName: t('alerts.severity'), width: 100, renderCell: (p) => <SeverityChip severity={p.row.severity} /> },
    {
      field: 'target_type',
      headerName: t('alerts.rules.target'),
      width: 150,
      valueGetter: (_v, row) => (row.target_type === 'all' ? targets.all : `${targets[row.target_type]}: ${row.target_value.join(', ')}`),
    },
    {
      field: 'notification_channels',
      headerName: t('alerts.rules.channels'),
      width: 150,
      valueGetter: (_v, row) =>
        row.notification_channels.length === 0 ? '-' : row.notification_channels.map((id) => channelNames.get(id) ?? `#${id}`).join(', '),
    },
    {
      field: 'enabled',
      headerName: t('alerts.rules.enabled'),
      width: 100,
      renderCell: (p) => (
        <Chip size="small" variant="outlined" color={p.row.enabled ? 'success' : 'default'} label={p.row.enabled ? t('alerts.rules.on') : t('alerts.rules.off')} />
      ),
    },
  ];
  if (admin) {
    columns.push({
      field: 'actions',
      headerName: t('common.actions'),
      width: 110,
      sortable: false,
      renderCell: (p) => (
        <>
          <Tooltip title={t('alerts.rules.edit')}>
            <IconButton aria-label={`${t('alerts.rules.edit')} ${p.row.name}`} onClick={() => setEditing(p.row)}>
              <EditIcon />
            </IconButton>
          </Tooltip>
          <Tooltip title={t('alerts.rules.delete')}>
            <IconButton aria-label={`${t('alerts.rules.delete')} ${p.row.name}`} onClick={() => setDeleting(p.row)}>
              <DeleteIcon />
            </IconButton>
          </Tooltip>
        </>
      ),
    });
  }

  return (
    <Box>
      <PageHeader
        title={t('alerts.title')}
        actions={
          admin ? (
            <Button variant="contained" startIcon={<AddIcon />} onClick={() => setEditing('new')}>
              {t('alerts.rules.create')}
            </Button>
          ) : null
        }
      />
      <AlertsTabs />
      {rules.isError ? <ErrorState error={rules.error} onRetry={() => void rules.refetch()} /> : null}
      <Paper sx={{ height: 560 }}>
        <DataGrid
          rows={rules.data?.items ?? []}
          columns={columns}
          loading={rules.isFetching && !rules.data}
          rowCount={rules.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={PAGE_SIZES}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => setParams({ page: String(m.page + 1), page_size: String(m.pageSize) })}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          slots={{ noRowsOverlay: () => <Empty message={t('alerts.rules.empty')} /> }}
        />
      </Paper>
      {editing ? <RuleDialog rule={editing === 'new' ? null : editing} onClose={() => setEditing(null)} /> : null}
      <ConfirmDialog
        open={deleting !== null}
        title={t('alerts.rules.delete')}
        text={
          removal.isError
            ? removal.error instanceof ApiError
              ? removal.error.message
              : t('common.saveFailed')
            : t('alerts.rules.deleteText', { name: deleting?.name ?? '' })
        }
        confirm={t('alerts.rules.delete')}
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
