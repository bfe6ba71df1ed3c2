import { Box, Chip, MenuItem, Paper, TextField } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { useSearchParams } from 'react-router';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';
import { formatBytes, formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';

type Version = Schemas['VersionRead'];
type Component = Version['component'];

export function VersionsPage() {
  const { t, i18n } = useTranslation();
  const [params, setParams] = useSearchParams();
  const component = (['daemon', 'agent'].includes(params.get('component') ?? '') ? params.get('component') : '') as Component | '';
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = [10, 20, 50, 100].includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const query = { component: component || undefined, page, page_size: pageSize };
  const versions = useQuery({
    queryKey: keys.versions(query),
    queryFn: () => unwrap(api.GET('/api/v1/versions', { params: { query } })),
    placeholderData: keepPreviousData,
  });

  function update(patch: Record<string, string>) {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(patch)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    setParams(next);
  }

  const columns: GridColDef<Version>[] = [
    { field: 'component', headerName: t('versions.component'), width: 110 },
    {
      field: 'version',
      headerName: t('versions.version'),
      width: 160,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', gap: 1, alignItems: 'center', height: '100%' }}>
          {p.row.version}
          {p.row.is_latest ? <Chip size="small" color="primary" label={t('versions.latest')} /> : null}
        </Box>
      ),
    },
    { field: 'platform', headerName: t('versions.platform'), width: 130, valueGetter: (_v, row) => `${row.os}/${row.arch}` },
    { field: 'file_size', headerName: t('versions.size'), width: 110, valueFormatter: (v: number) => formatBytes(v) },
    { field: 'hash_sha256', headerName: t('versions.sha256'), flex: 1, minWidth: 200 },
    { field: 'release_notes', headerName: t('versions.notes'), flex: 1, minWidth: 160 },
    { field: 'created_at', headerName: t('versions.createdAt'), width: 180, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
  ];

  return (
    <Box>
      <PageHeader title={t('versions.title')} />
      <Paper sx={{ p: 2, mb: 2 }}>
        <TextField
          select
          size="small"
          label={t('versions.component')}
          value={component}
          onChange={(e) => update({ component: e.target.value, page: '' })}
          sx={{ minWidth: 160 }}
          slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
        >
          <MenuItem value="">{t('versions.allComponents')}</MenuItem>
          <MenuItem value="daemon">daemon</MenuItem>
          <MenuItem value="agent">agent</MenuItem>
        </TextField>
      </Paper>
      {versions.isError ? <ErrorState error={versions.error} onRetry={() => void versions.refetch()} /> : null}
      <Paper sx={{ height: 560 }}>
        <DataGrid
          rows={versions.data?.items ?? []}
          columns={columns}
          loading={versions.isFetching && !versions.data}
          rowCount={versions.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={[10, 20, 50, 100]}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => update({ page: String(m.page + 1), page_size: String(m.pageSize) })}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          slots={{ noRowsOverlay: () => <Empty message={t('versions.empty')} /> }}
        />
      </Paper>
    </Box>
  );
}
