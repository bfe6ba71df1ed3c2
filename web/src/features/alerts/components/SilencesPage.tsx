import AddIcon from '@mui/icons-material/Add';
import { Box, Button, Chip, FormControlLabel, Paper, Switch } from '@mui/material';
import { DataGrid, type GridColDef } from '@mui/x-data-grid';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useSearchParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState } from '@/components/PageState';
import { allRulesQuery, deleteSilence, silenceListQuery, type Silence } from '@/features/alerts/api/alerts';
import { AlertsTabs } from '@/features/alerts/components/AlertsTabs';
import { SilenceDialog } from '@/features/alerts/components/SilenceDialog';
import { useCan } from '@/stores/auth';

const PAGE_SIZES = [10, 20, 50, 100];

export function SilencesPage() {
  const { t, i18n } = useTranslation();
  const queryClient = useQueryClient();
  const canEdit = useCan('alert.silence');
  const [params, setParams] = useSearchParams();
  const active = params.get('active') !== 'false';
  const page = Math.max(1, Number(params.get('page')) || 1);
  const pageSize = PAGE_SIZES.includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const silences = useQuery({ ...silenceListQuery({ active, page, page_size: pageSize }), placeholderData: keepPreviousData });
  const rules = useQuery(allRulesQuery);
  const [creating, setCreating] = useState(false);
  const [ending, setEnding] = useState<Silence | null>(null);
  const removal = useMutation({
    mutationFn: (id: number) => deleteSilence(id),
    onSuccess: async () => {
      setEnding(null);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.alertSilences }),
        queryClient.invalidateQueries({ queryKey: keys.alerts }),
      ]);
    },
  });
  const ruleNames = new Map((rules.data?.items ?? []).map((rule) => [String(rule.id), rule.name]));
  const targets = {
    rule: t('alerts.silence.targetRule'),
    node: t('alerts.silence.targetNode'),
    group: t('alerts.silence.targetGroup'),
    tag: t('alerts.silence.targetTag'),
  };
  const when = (value: string) => formatDateTime(value, i18n.language);

  const columns: GridColDef<Silence>[] = [
    {
      field: 'target_type',
      headerName: t('alerts.silence.target'),
      flex: 1,
      minWidth: 180,
      valueGetter: (_v, row) => {
        const name = row.target_type === 'rule' ? ruleNames.get(row.target_value) : undefined;
        return `${targets[row.target_type]}: ${name ?? row.target_value}`;
      },
    },
    { field: 'reason', headerName: t('alerts.silence.reason'), flex: 1, minWidth: 160 },
    { field: 'starts_at', headerName: t('alerts.silence.startsAt'), width: 170, valueFormatter: when },
    { field: 'ends_at', headerName: t('alerts.silence.endsAt'), width: 170, valueFormatter: when },
    {
      field: 'active',
      headerName: t('alerts.status'),
      width: 100,
      renderCell: (p) => (
        <Chip size="small" color={p.row.active ? 'warning' : 'default'} label={p.row.active ? t('alerts.silence.active') : t('alerts.silence.inactive')} />
      ),
    },
  ];
  if (canEdit) {
    columns.push({
      field: 'actions',
      headerName: t('common.actions'),
      width: 120,
      sortable: false,
      renderCell: (p) => (
        <Button size="small" color="error" aria-label={`${t('alerts.silence.end')} #${p.row.id}`} onClick={() => setEnding(p.row)}>
          {t('alerts.silence.end')}
        </Button>
      ),
    });
  }

  return (
    <Box>
      <PageHeader
        title={t('alerts.title')}
        actions={
          canEdit ? (
            <Button variant="contained" startIcon={<AddIcon />} onClick={() => setCreating(true)}>
              {t('alerts.silence.create')}
            </Button>
          ) : null
        }
      />
      <AlertsTabs />
      <Paper sx={{ p: 1, px: 2, mb: 2 }}>
        <FormControlLabel
          control={<Switch checked={active} onChange={(e) => setParams(e.target.checked ? {} : { active: 'false' })} />}
          label={t('alerts.silence.onlyActive')}
        />
      </Paper>
      {silences.isError ? <ErrorState error={silences.error} onRetry={() => void silences.refetch()} /> : null}
      <Paper sx={{ height: 520 }}>
        <DataGrid
          rows={silences.data?.items ?? []}
          columns={columns}
          loading={silences.isFetching && !silences.data}
          rowCount={silences.data?.total ?? 0}
          paginationMode="server"
          pageSizeOptions={PAGE_SIZES}
          paginationModel={{ page: page - 1, pageSize }}
          onPaginationModelChange={(m) => {
            const next = new URLSearchParams(params);
            next.set('page', String(m.page + 1));
            next.set('page_size', String(m.pageSize));
            setParams(next);
          }}
          disableColumnFilter
          disableColumnSorting
          disableRowSelectionOnClick
          slots={{ noRowsOverlay: () => <Empty message={t('alerts.silence.empty')} /> }}
        />
      </Paper>
      {creating ? <SilenceDialog onClose={() => setCreating(false)} /> : null}
      <ConfirmDialog
        open={ending !== null}
        title={t('alerts.silence.end')}
        text={removal.isError && removal.error instanceof ApiError ? removal.error.message : t('alerts.silence.endText')}
        confirm={t('alerts.silence.end')}
        busy={removal.isPending}
        onConfirm={() => ending && removal.mutate(ending.id)}
        onClose={() => {
          setEnding(null);
          removal.reset();
        }}
      />
    </Box>
  );
}
