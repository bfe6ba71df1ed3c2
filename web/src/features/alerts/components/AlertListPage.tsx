import { Autocomplete, Box, Button, Link, MenuItem, Paper, TextField, Typography } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useNavigate, useSearchParams } from 'react-router';

import { keys } from '@/api/keys';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { SeverityChip } from '@/components/StatusChip';
import {
  acknowledgeAlert,
  ALERT_STATUSES,
  alertListQuery,
  nodeSearchQuery,
  SEVERITIES,
  type Alert,
  type AlertStatus,
  type Severity,
} from '@/features/alerts/api/alerts';
import { AlertStateChips, alertValue } from '@/features/alerts/components/AlertChips';
import { AlertsTabs } from '@/features/alerts/components/AlertsTabs';
import { SilenceDialog, type SilencePreset } from '@/features/alerts/components/SilenceDialog';
import { useCan } from '@/stores/auth';

const PAGE_SIZES = [10, 20, 50, 100];

function positive(value: string | null): number | undefined {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Node filter: search by hostname; the URL keeps the id. */
function NodeFilter({ nodeId, onChange }: { nodeId: number | undefined; onChange: (id: string) => void }) {
  const { t } = useTranslation();
  const [keyword, setKeyword] = useState('');
  const found = useQuery({ ...nodeSearchQuery(keyword.trim()), placeholderData: keepPreviousData });
  const options = found.data?.items ?? [];
  const selected = options.find((node) => node.id === nodeId) ?? null;
  return (
    <Autocomplete
      size="small"
      sx={{ minWidth: 240 }}
      options={options}
      value={selected}
      getOptionLabel={(node) => `${node.hostname} (${node.ip})`}
      isOptionEqualToValue={(a, b) => a.id === b.id}
      filterOptions={(all) => all}
      onInputChange={(_e, value, reason) => reason === 'input' && setKeyword(value)}
      onChange={(_e, node) => onChange(node ? String(node.id) : '')}
      renderInput={(params) => (
        <TextField
          {...params}
          label={t('alerts.node')}
          placeholder={nodeId && !selected ? `#${nodeId}` : t('alerts.anyNode')}
          slotProps={{ inputLabel: { shrink: true } }}
        />
      )}
    />
  );
}

export function AlertListPage() {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const canAck = useCan('alert.acknowledge');
  const canSilence = useCan('alert.silence');
  const [params, setParams] = useSearchParams();
  const [silencing, setSilencing] = useState<SilencePreset | null>(null);
  const rawStatus = params.get('status') as AlertStatus | null;
  const status = rawStatus && ALERT_STATUSES.includes(rawStatus) ? rawStatus : '';
  const rawSeverity = params.get('severity') as Severity | null;
  const severity = rawSeverity && SEVERITIES.includes(rawSeverity) ? rawSeverity : '';
  const nodeId = positive(params.get('node_id'));
  const page = positive(params.get('page')) ?? 1;
  const pageSize = PAGE_SIZES.includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const alerts = useQuery({
    ...alertListQuery({
      status: status || undefined,
      severity: severity || undefined,
      node_id: nodeId,
      page,
      page_size: pageSize,
    }),
    placeholderData: keepPreviousData,
  });
  const ack = useMutation({
    mutationFn: (id: number) => acknowledgeAlert(id),
    onSuccess: () =>
      Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.alerts }),
        queryClient.invalidateQueries({ queryKey: keys.dashboard }),
      ]),
  });

  function update(patch: Record<string, string>) {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(patch)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    setParams(next);
  }

  // Severity and state share a column, and the value sits under the rule, so the list and its
  // actions fit a 1024 px screen; rows grow when the chips wrap.
  const columns: GridColDef<Alert>[] = [
    { field: 'fired_at', headerName: t('alerts.firedAt'), width: 150, valueFormatter: (v: string) => formatDateTime(v, i18n.language) },
    {
      field: 'status',
      headerName: t('alerts.status'),
      flex: 1,
      minWidth: 180,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', gap: 0.5, flexWrap: 'wrap', alignItems: 'center' }}>
          <SeverityChip severity={p.row.severity} />
          <AlertStateChips alert={p.row} />
        </Box>
      ),
    },
    {
      field: 'rule_name',
      headerName: t('alerts.rule'),
      flex: 1.2,
      minWidth: 160,
      renderCell: (p) => (
        <Box sx={{ lineHeight: 1.4 }}>
          <Typography variant="body2">{p.row.rule_name ?? t('alerts.deletedRule')}</Typography>
          <Typography variant="caption" color="text.secondary">
            {alertValue(p.row)}
          </Typography>
        </Box>
      ),
    },
    {
      field: 'hostname',
      headerName: t('alerts.node'),
      flex: 1,
      minWidth: 100,
      renderCell: (p) =>
        p.row.hostname ? (
          <Link component={RouterLink} to={`/nodes/${p.row.node_id}`} onClick={(e) => e.stopPropagation()}>
            {p.row.hostname}
          </Link>
        ) : (
          t('alerts.deletedNode')
        ),
    },
  ];
  if (canAck || canSilence) {
    columns.push({
      field: 'actions',
      headerName: t('common.actions'),
      width: 150,
      sortable: false,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', gap: 1, alignItems: 'center', height: '100%' }} onClick={(e) => e.stopPropagation()}>
          {canAck && !p.row.acknowledged_at ? (
            <Button
              size="small"
              variant="outlined"
              disabled={ack.isPending}
              aria-label={`${t('alerts.acknowledge')} #${p.row.id}`}
              onClick={() => ack.mutate(p.row.id)}
            >
              {t('alerts.acknowledge')}
            </Button>
          ) : null}
          {canSilence && !p.row.silenced ? (
            <Button
              size="small"
              aria-label={`${t('alerts.silenceNode')} #${p.row.id}`}
              onClick={() =>
                setSilencing({ targetType: 'node', targetValue: String(p.row.node_id), targetLabel: p.row.hostname ?? undefined })
              }
            >
              {t('alerts.silenceShort')}
            </Button>
          ) : null}
        </Box>
      ),
    });
  }

  return (
    <Box>
      <PageHeader title={t('alerts.title')} />
      <AlertsTabs />
      <Paper sx={{ p: 2, mb: 2, display: 'flex', gap: 2, flexWrap: 'wrap', alignItems: 'center' }}>
        <TextField
          select
          size="small"
          label={t('alerts.status')}
          value={status}
          onChange={(e) => update({ status: e.target.value, page: '' })}
          sx={{ minWidth: 140 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
          data-testid="filter-status"
        >
          <MenuItem value="">{t('alerts.allStatuses')}</MenuItem>
          <MenuItem value="firing">{t('alertStatus.firing')}</MenuItem>
          <MenuItem value="resolved">{t('alertStatus.resolved')}</MenuItem>
        </TextField>
        <TextField
          select
          size="small"
          label={t('alerts.severity')}
          value={severity}
          onChange={(e) => update({ severity: e.target.value, page: '' })}
          sx={{ minWidth: 140 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('alerts.allSeverities')}</MenuItem>
          <MenuItem value="critical">{t('severity.critical')}</MenuItem>
          <MenuItem value="warning">{t('severity.warning')}</MenuItem>
          <MenuItem value="info">{t('severity.info')}</MenuItem>
        </TextField>
        <NodeFilter nodeId={nodeId} onChange={(id) => update({ node_id: id, page: '' })} />
        {status || severity || nodeId ? (
          <Button onClick={() => setParams(new URLSearchParams())}>{t('common.reset')}</Button>
        ) : null}
      </Paper>
      {ack.isError ? <ErrorState error={ack.error} /> : null}
      {alerts.isError ? <ErrorState error={alerts.error} onRetry={() => void alerts.refetch()} /> : null}
      <Paper sx={{ height: 600 }}>
        <DataGrid
          rows={alerts.data?.items ?? []}
          columns={columns}
          loading={alerts.isFetching && !alerts.data}
          rowCount={alerts.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={PAGE_SIZES}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => update({ page: String(m.page + 1), page_size: String(m.pageSize) })}
          onRowClick={(p) => void navigate(`/alerts/${p.row.id}`)}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          getRowHeight={() => 'auto'}
          sx={{
            '& .MuiDataGrid-row': { cursor: 'pointer' },
            '& .MuiDataGrid-cell': { py: 1, display: 'flex', alignItems: 'center' },
          }}
          slots={{ noRowsOverlay: () => <Empty message={t('alerts.empty')} /> }}
        />
      </Paper>
      {silencing ? <SilenceDialog preset={silencing} onClose={() => setSilencing(null)} /> : null}
    </Box>
  );
}
