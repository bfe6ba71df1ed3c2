import ArrowBackIcon from '@mui/icons-material/ArrowBack';
import {
  Box,
  Button,
  Chip,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  Paper,
  Typography,
} from '@mui/material';
import Grid from '@mui/material/Grid';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useLocation, useNavigate, useParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { formatBytes, formatDateTime, formatPercent } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { AgentStatusChip, NodeStatusChip } from '@/components/StatusChip';
import { METRIC_RANGES, deleteNode, nodeQuery, type MetricRange, type Node } from '@/features/nodes/api/nodes';
import { NodeCommands } from '@/features/nodes/components/NodeCommands';
import { NodeConfig } from '@/features/nodes/components/NodeConfig';
import { NodeEditDialog } from '@/features/nodes/components/NodeEditDialog';
import { NodeMetricsCharts } from '@/features/nodes/components/NodeMetricsCharts';
import { NodeTimeline, NodeUpdateHistory } from '@/features/nodes/components/NodeTimeline';
import { useCan } from '@/stores/auth';

function Facts({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <Box component="dl" sx={{ display: 'grid', gridTemplateColumns: 'max-content 1fr', columnGap: 3, rowGap: 1, m: 0 }}>
      {rows.map(([label, value]) => (
        <Box key={label} sx={{ display: 'contents' }}>
          <Typography component="dt" color="text.secondary">
            {label}
          </Typography>
          <Typography component="dd" sx={{ m: 0, wordBreak: 'break-all' }}>
            {value ?? '-'}
          </Typography>
        </Box>
      ))}
    </Box>
  );
}

function NodeFacts({ node }: { node: Node }) {
  const { t, i18n } = useTranslation();
  const labels = Object.entries(node.labels);
  return (
    <Paper sx={{ p: 2, height: '100%' }}>
      <Typography variant="h6" gutterBottom>
        {t('nodeDetail.facts')}
      </Typography>
      <Facts
        rows={[
          [t('nodes.status'), <NodeStatusChip key="s" status={node.status} />],
          [t('nodes.ip'), node.ip],
          [t('nodeDetail.peerIp'), node.peer_ip ?? '-'],
          [t('nodeDetail.uuid'), node.uuid],
          [t('nodeDetail.platform'), [node.os, node.arch].filter(Boolean).join('/') || '-'],
          [t('nodeDetail.kernel'), node.kernel_version ?? '-'],
          [t('nodes.daemonVersion'), node.daemon_version ?? '-'],
          [t('nodeDetail.cpuCores'), node.cpu_cores ?? '-'],
          [t('nodeDetail.memory'), formatBytes(node.memory_total)],
          [t('nodeDetail.disk'), formatBytes(node.disk_total)],
          [t('nodes.group'), node.group?.name ?? '-'],
          [t('nodes.lastHeartbeat'), formatDateTime(node.last_heartbeat, i18n.language)],
          [t('nodeDetail.createdAt'), formatDateTime(node.created_at, i18n.language)],
          [
            t('nodes.tags'),
            node.tags.length ? (
              <Box component="span" sx={{ display: 'inline-flex', gap: 0.5, flexWrap: 'wrap' }}>
                {node.tags.map((tag) => (
                  <Chip key={tag} size="small" label={tag} />
                ))}
              </Box>
            ) : (
              '-'
            ),
          ],
          [
            t('nodes.labels'),
            labels.length ? (
              <Box component="span" sx={{ display: 'inline-flex', gap: 0.5, flexWrap: 'wrap' }}>
                {labels.map(([key, value]) => (
                  <Chip key={key} size="small" variant="outlined" label={`${key}=${value}`} />
                ))}
              </Box>
            ) : (
              '-'
            ),
          ],
        ]}
      />
    </Paper>
  );
}

function AgentFacts({ node }: { node: Node }) {
  const { t, i18n } = useTranslation();
  const agent = node.agent;
  return (
    <Paper sx={{ p: 2, height: '100%' }}>
      <Typography variant="h6" gutterBottom>
        {t('nodeDetail.agent')}
      </Typography>
      {agent ? (
        <Facts
          rows={[
            [t('nodes.agentStatus'), <AgentStatusChip key="a" status={agent.status} />],
            [t('nodes.agentVersion'), agent.version ?? '-'],
            [t('nodeDetail.pid'), agent.pid ?? '-'],
            [t('metrics.cpu'), formatPercent(agent.cpu_usage)],
            [t('metrics.memory'), formatBytes(agent.memory_usage)],
            [t('nodeDetail.restarts'), agent.restart_count],
            [t('nodeDetail.startedAt'), formatDateTime(agent.start_time, i18n.language)],
            [t('nodeDetail.lastError'), agent.last_error ?? '-'],
          ]}
        />
      ) : (
        <Empty message={t('nodeDetail.noAgent')} />
      )}
    </Paper>
  );
}

export function NodeDetailPage() {
  const { t } = useTranslation();
  const params = useParams();
  const id = Number(params.id);
  const navigate = useNavigate();
  const location = useLocation();
  const queryClient = useQueryClient();
  const canDelete = useCan('node.delete');
  const canEdit = useCan('node.edit');
  const canConfigure = useCan('config.manage');
  const [confirming, setConfirming] = useState(false);
  const [editing, setEditing] = useState(false);
  const [range, setRange] = useState<MetricRange>('1h');
  const valid = Number.isInteger(id) && id > 0;
  const node = useQuery({ ...nodeQuery(id), enabled: valid });
  const back = `/nodes${(location.state as { from?: string } | null)?.from ?? ''}`;
  const removal = useMutation({
    mutationFn: () => deleteNode(id),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: keys.nodes });
      void navigate(back);
    },
  });

  const header = (
    <PageHeader
      title={node.data ? node.data.hostname : t('nodeDetail.title')}
      actions={
        <>
          <Button startIcon={<ArrowBackIcon />} onClick={() => void navigate(back)}>
            {t('nodeDetail.back')}
          </Button>
          {node.data ? (
            <Button component={RouterLink} to={`/alerts?node_id=${id}`}>
              {t('alerts.ofNode')}
            </Button>
          ) : null}
          {canEdit && node.data ? (
            <Button variant="outlined" onClick={() => setEditing(true)}>
              {t('nodeEdit.open')}
            </Button>
          ) : null}
          {canDelete && node.data ? (
            <Button color="error" variant="outlined" onClick={() => setConfirming(true)}>
              {t('nodeDetail.delete')}
            </Button>
          ) : null}
        </>
      }
    />
  );

  if (!valid || (node.error instanceof ApiError && node.error.status === 404)) {
    return (
      <Box>
        {header}
        <Empty message={t('nodeDetail.notFound')} />
      </Box>
    );
  }

  return (
    <Box>
      {header}
      {node.isPending ? <Loading /> : null}
      {node.isError ? <ErrorState error={node.error} onRetry={() => void node.refetch()} /> : null}
      {node.data ? (
        <Grid container spacing={2}>
          <Grid size={{ xs: 12, md: 7 }}>
            <NodeFacts node={node.data} />
          </Grid>
          <Grid size={{ xs: 12, md: 5 }}>
            <AgentFacts node={node.data} />
          </Grid>
          <Grid size={12}>
            <NodeMetricsCharts nodeId={id} range={range} onRangeChange={setRange} />
          </Grid>
          <Grid size={{ xs: 12, md: 7 }}>
            <NodeTimeline nodeId={id} seconds={METRIC_RANGES[range]} />
          </Grid>
          <Grid size={{ xs: 12, md: 5 }}>
            <NodeCommands nodeId={id} />
          </Grid>
          <Grid size={12}>
            <NodeUpdateHistory nodeId={id} />
          </Grid>
          {canConfigure ? (
            <Grid size={12}>
              <NodeConfig nodeId={id} />
            </Grid>
          ) : null}
        </Grid>
      ) : null}
      {editing && node.data ? <NodeEditDialog node={node.data} open onClose={() => setEditing(false)} /> : null}
      <Dialog open={confirming} onClose={() => setConfirming(false)}>
        <DialogTitle>{t('nodeDetail.deleteTitle')}</DialogTitle>
        <DialogContent>
          <DialogContentText>{t('nodeDetail.deleteText', { name: node.data?.hostname ?? '' })}</DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirming(false)}>{t('common.cancel')}</Button>
          <Button color="error" disabled={removal.isPending} onClick={() => removal.mutate()}>
            {t('nodeDetail.delete')}
          </Button>
        </DialogActions>
      </Dialog>
    </Box>
  );
}
