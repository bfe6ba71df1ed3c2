import RefreshIcon from '@mui/icons-material/Refresh';
import {
  Box,
  Button,
  Chip,
  IconButton,
  MenuItem,
  Paper,
  TextField,
  Tooltip,
} from '@mui/material';
import { DataGrid, type GridColDef, type GridSortModel } from '@mui/x-data-grid';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useLocation } from 'react-router';

import { groupsQuery } from '@/api/groups';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { AgentStatusChip, NodeStatusChip } from '@/components/StatusChip';
import { nodeListQuery, type Node } from '@/features/nodes/api/nodes';
import { PAGE_SIZES, useNodeFilters } from '@/features/nodes/hooks/useNodeFilters';

function splitList(value: string): string[] {
  return value.split(',').map((part) => part.trim()).filter(Boolean);
}

export function NodeListPage() {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const location = useLocation();
  const { filters, setFilters, query } = useNodeFilters();
  const groups = useQuery(groupsQuery);
  const nodes = useQuery({ ...nodeListQuery(query), placeholderData: keepPreviousData });

  // The text fields are edited freely and applied together, so typing does not query per key.
  const labels = filters.labels.join(', ');
  const [draft, setDraft] = useState({ keyword: filters.keyword, tags: filters.tags, labels });
  useEffect(() => {
    setDraft({ keyword: filters.keyword, tags: filters.tags, labels });
  }, [filters.keyword, filters.tags, labels]);

  function apply(event: FormEvent) {
    event.preventDefault();
    setFilters({
      keyword: draft.keyword.trim(),
      tags: splitList(draft.tags).join(','),
      labels: splitList(draft.labels).filter((label) => label.includes('=')),
    });
  }

  const columns: GridColDef<Node>[] = [
    { field: 'hostname', headerName: t('nodes.hostname'), flex: 1, minWidth: 160 },
    { field: 'ip', headerName: t('nodes.ip'), width: 140 },
    {
      field: 'status',
      headerName: t('nodes.status'),
      width: 100,
      renderCell: (params) => <NodeStatusChip status={params.row.status} />,
    },
    {
      field: 'agent',
      headerName: t('nodes.agentStatus'),
      width: 120,
      sortable: false,
      renderCell: (params) => <AgentStatusChip status={params.row.agent?.status} />,
    },
    { field: 'daemon_version', headerName: t('nodes.daemonVersion'), width: 120, sortable: false },
    {
      field: 'agent_version',
      headerName: t('nodes.agentVersion'),
      width: 120,
      sortable: false,
      valueGetter: (_value, row) => row.agent?.version ?? '-',
    },
    {
      field: 'group',
      headerName: t('nodes.group'),
      width: 120,
      sortable: false,
      valueGetter: (_value, row) => row.group?.name ?? '-',
    },
    {
      field: 'tags',
      headerName: t('nodes.tags'),
      flex: 1,
      minWidth: 180,
      sortable: false,
      renderCell: (params) => (
        <Box sx={{ display: 'flex', gap: 0.5, alignItems: 'center', height: '100%', overflow: 'hidden' }}>
          {params.row.tags.slice(0, 3).map((tag) => (
            <Chip key={tag} label={tag} size="small" />
          ))}
          {params.row.tags.length > 3 ? <Chip label={`+${params.row.tags.length - 3}`} size="small" /> : null}
        </Box>
      ),
    },
    {
      field: 'last_heartbeat',
      headerName: t('nodes.lastHeartbeat'),
      width: 180,
      valueFormatter: (value: string | null) => formatDateTime(value, i18n.language),
    },
  ];

  // The same model while the sort is the same: a new one tells the grid the sort changed,
  // and the grid then goes back to the first page.
  const sortModel: GridSortModel = useMemo(
    () =>
      filters.sort ? [{ field: filters.sort.replace(/^-/, ''), sort: filters.sort.startsWith('-') ? 'desc' : 'asc' }] : [],
    [filters.sort],
  );

  return (
    <Box>
      <PageHeader
        title={t('nodes.title')}
        actions={
          <Tooltip title={t('common.refresh')}>
            <IconButton onClick={() => void nodes.refetch()} aria-label={t('common.refresh')}>
              <RefreshIcon />
            </IconButton>
          </Tooltip>
        }
      />
      <Paper component="form" onSubmit={apply} sx={{ p: 2, mb: 2, display: 'flex', gap: 2, flexWrap: 'wrap', alignItems: 'center' }}>
        <TextField
          size="small"
          label={t('nodes.keyword')}
          placeholder={t('nodes.keywordHint')}
          value={draft.keyword}
          onChange={(e) => setDraft({ ...draft, keyword: e.target.value })}
          slotProps={{ htmlInput: { 'data-testid': 'filter-keyword' } }}
        />
        <TextField
          select
          size="small"
          label={t('nodes.status')}
          value={filters.status}
          onChange={(e) => setFilters({ status: e.target.value as typeof filters.status })}
          sx={{ minWidth: 140 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('nodes.allStatuses')}</MenuItem>
          <MenuItem value="online">{t('status.node.online')}</MenuItem>
          <MenuItem value="offline">{t('status.node.offline')}</MenuItem>
          <MenuItem value="unknown">{t('status.node.unknown')}</MenuItem>
        </TextField>
        <TextField
          select
          size="small"
          label={t('nodes.group')}
          value={groups.data ? filters.groupId : ''}
          onChange={(e) => setFilters({ groupId: e.target.value })}
          sx={{ minWidth: 160 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('nodes.allGroups')}</MenuItem>
          {(groups.data ?? []).map((group) => (
            <MenuItem key={group.id} value={String(group.id)}>
              {group.name}
            </MenuItem>
          ))}
        </TextField>
        <TextField
          size="small"
          label={t('nodes.tags')}
          placeholder={t('nodes.tagsHint')}
          value={draft.tags}
          onChange={(e) => setDraft({ ...draft, tags: e.target.value })}
          slotProps={{ htmlInput: { 'data-testid': 'filter-tags' } }}
        />
        <TextField
          size="small"
          label={t('nodes.labels')}
          placeholder={t('nodes.labelsHint')}
          value={draft.labels}
          onChange={(e) => setDraft({ ...draft, labels: e.target.value })}
          slotProps={{ htmlInput: { 'data-testid': 'filter-labels' } }}
        />
        <Button type="submit" variant="contained">
          {t('common.search')}
        </Button>
        <Button
          onClick={() => setFilters({ keyword: '', status: '', groupId: '', tags: '', labels: [], sort: '' })}
        >
          {t('common.reset')}
        </Button>
      </Paper>
      {nodes.isError ? <ErrorState error={nodes.error} onRetry={() => void nodes.refetch()} /> : null}
      <Paper sx={{ height: 640 }}>
        <DataGrid
          rows={nodes.data?.items ?? []}
          columns={columns}
          loading={nodes.isFetching && !nodes.data}
          rowCount={nodes.data?.total ?? 0}
          paginationMode="server"
          sortingMode="server"
          filterMode="server"
          disableColumnFilter
          pageSizeOptions={PAGE_SIZES}
          paginationModel={{ page: filters.page - 1, pageSize: filters.pageSize }}
          onPaginationModelChange={(model) => {
            // Before the first answer the grid knows no row count and would clamp a linked page.
            if (!nodes.data) return;
            setFilters({ page: model.pageSize !== filters.pageSize ? 1 : model.page + 1, pageSize: model.pageSize });
          }}
          sortModel={sortModel}
          onSortModelChange={(model) => {
            const first = model[0];
            setFilters({ sort: first ? `${first.sort === 'desc' ? '-' : ''}${first.field}` : '' });
          }}
          onRowClick={(params) => void navigate(`/nodes/${params.id}`, { state: { from: location.search } })}
          disableRowSelectionOnClick
          slots={{ noRowsOverlay: () => <Empty message={t('nodes.empty')} /> }}
          sx={{ '& .MuiDataGrid-row': { cursor: 'pointer' } }}
        />
      </Paper>
    </Box>
  );
}
