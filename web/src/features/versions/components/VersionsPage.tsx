import DeleteIcon from '@mui/icons-material/Delete';
import RocketLaunchIcon from '@mui/icons-material/RocketLaunch';
import UploadIcon from '@mui/icons-material/Upload';
import { Alert, Box, Button, Chip, IconButton, MenuItem, Paper, TextField, Tooltip } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useSearchParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { formatBytes, formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import {
  ARCH_CHOICES,
  OS_CHOICES,
  deleteVersion,
  versionListQuery,
  type Component,
  type Version,
} from '@/features/versions/api/versions';
import { DeployDialog } from '@/features/versions/components/DeployDialog';
import { UploadVersionDialog } from '@/features/versions/components/UploadVersionDialog';
import { useCan } from '@/stores/auth';

function oneOf<T extends string>(value: string | null, choices: readonly T[]): T | '' {
  return choices.includes(value as T) ? (value as T) : '';
}

export function VersionsPage() {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const canUpload = useCan('version.upload');
  const canDelete = useCan('version.delete');
  const canDeploy = useCan('rollout.deploy');
  const [params, setParams] = useSearchParams();
  const [uploading, setUploading] = useState(false);
  const [uploaded, setUploaded] = useState<Version | null>(null);
  const [deploying, setDeploying] = useState<Version | null>(null);
  const [removing, setRemoving] = useState<Version | null>(null);
  // Values the API would refuse are dropped, so a hand-edited URL still shows a list.
  const component = oneOf(params.get('component'), ['daemon', 'agent'] as Component[]);
  const os = oneOf(params.get('os'), OS_CHOICES);
  const arch = oneOf(params.get('arch'), ARCH_CHOICES);
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = [10, 20, 50, 100].includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const query = { component: component || undefined, os: os || undefined, arch: arch || undefined, page, page_size: pageSize };
  const versions = useQuery({ ...versionListQuery(query), placeholderData: keepPreviousData });
  const removal = useMutation({
    mutationFn: (id: number) => deleteVersion(id),
    onSuccess: async () => {
      setRemoving(null);
      await queryClient.invalidateQueries({ queryKey: keys.allVersions });
    },
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
      width: 170,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', gap: 1, alignItems: 'center', height: '100%' }}>
          {p.row.version}
          {p.row.is_latest ? <Chip size="small" color="primary" label={t('versions.latest')} /> : null}
        </Box>
      ),
    },
    { field: 'platform', headerName: t('versions.platform'), width: 130, valueGetter: (_v, row) => `${row.os}/${row.arch}` },
    { field: 'file_size', headerName: t('versions.size'), width: 110, valueFormatter: (v: number) => formatBytes(v) },
    { field: 'hash_sha256', headerName: t('versions.sha256'), flex: 1, minWidth: 180 },
    { field: 'release_notes', headerName: t('versions.notes'), flex: 1, minWidth: 160 },
    { field: 'created_at', headerName: t('versions.createdAt'), width: 170, valueFormatter: (v: string | null) => formatDateTime(v, i18n.language) },
  ];
  if (canDeploy || canDelete) {
    columns.push({
      field: 'actions',
      headerName: t('common.actions'),
      width: 110,
      sortable: false,
      renderCell: (p) => (
        <Box sx={{ display: 'flex', height: '100%', alignItems: 'center' }}>
          {canDeploy ? (
            <Tooltip title={t('versions.deploy')}>
              <IconButton size="small" aria-label={`${t('versions.deploy')} ${p.row.component} ${p.row.version}`} onClick={() => setDeploying(p.row)}>
                <RocketLaunchIcon fontSize="small" />
              </IconButton>
            </Tooltip>
          ) : null}
          {canDelete ? (
            <Tooltip title={t('versions.delete')}>
              <IconButton
                size="small"
                color="error"
                aria-label={`${t('versions.delete')} ${p.row.component} ${p.row.version}`}
                onClick={() => {
                  removal.reset();
                  setRemoving(p.row);
                }}
              >
                <DeleteIcon fontSize="small" />
              </IconButton>
            </Tooltip>
          ) : null}
        </Box>
      ),
    });
  }

  const filters: [string, string, readonly string[], string][] = [
    ['os', os, OS_CHOICES, t('versions.os')],
    ['arch', arch, ARCH_CHOICES, t('versions.arch')],
  ];

  return (
    <Box>
      <PageHeader
        title={t('versions.title')}
        actions={
          canUpload ? (
            <Button variant="contained" startIcon={<UploadIcon />} onClick={() => setUploading(true)}>
              {t('versions.upload.open')}
            </Button>
          ) : null
        }
      />
      {uploaded ? (
        <Alert severity="success" onClose={() => setUploaded(null)} sx={{ mb: 2 }}>
          {t('versions.upload.done', { component: uploaded.component, version: uploaded.version })}
        </Alert>
      ) : null}
      <Paper sx={{ p: 2, mb: 2, display: 'flex', gap: 2, flexWrap: 'wrap' }}>
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
        {filters.map(([key, value, choices, label]) => (
          <TextField
            key={key}
            select
            size="small"
            label={label}
            value={value}
            onChange={(e) => update({ [key]: e.target.value, page: '' })}
            sx={{ minWidth: 140 }}
            slotProps={{ select: { displayEmpty: true }, inputLabel: { shrink: true } }}
          >
            <MenuItem value="">{t('versions.any')}</MenuItem>
            {choices.map((choice) => (
              <MenuItem key={choice} value={choice}>
                {choice}
              </MenuItem>
            ))}
          </TextField>
        ))}
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
      {uploading ? (
        <UploadVersionDialog
          open
          onClose={() => setUploading(false)}
          onUploaded={(version) => {
            setUploading(false);
            setUploaded(version);
          }}
        />
      ) : null}
      {deploying ? (
        <DeployDialog version={deploying} onClose={() => setDeploying(null)} onStarted={(batchId) => void navigate(`/rollouts/${batchId}`)} />
      ) : null}
      <ConfirmDialog
        open={removing !== null}
        title={t('versions.delete')}
        text={
          removal.error instanceof ApiError
            ? `${removal.error.message} (${removal.error.code})`
            : t('versions.deleteText', { component: removing?.component ?? '', version: removing?.version ?? '' })
        }
        confirm={t('versions.delete')}
        busy={removal.isPending}
        onConfirm={() => removing && removal.mutate(removing.id)}
        onClose={() => setRemoving(null)}
      />
    </Box>
  );
}
