import { Box, Chip, Link, Paper, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink } from 'react-router';

import { formatDateTime } from '@/components/format';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { SeverityChip, UpdateStatusChip } from '@/components/StatusChip';
import {
  UPDATE_HISTORY_SECONDS,
  nodeTimelineQuery,
  type TimelineEvent,
  type UpdateEvent,
} from '@/features/nodes/api/nodes';

export type TimelineKind = TimelineEvent['kind'];

/** One colour per kind, shared by the list's chips and the markers over the charts. */
export const KIND_COLORS: Record<TimelineKind, string> = {
  status: '#0288d1',
  alert: '#d32f2f',
  update: '#7b1fa2',
  task: '#ed6c02',
};

export function useKindLabels(): Record<TimelineKind, string> {
  const { t } = useTranslation();
  return {
    status: t('timeline.kind.status'),
    alert: t('timeline.kind.alert'),
    update: t('timeline.kind.update'),
    task: t('timeline.kind.task'),
  };
}

function Describe({ event }: { event: TimelineEvent }): ReactNode {
  const { t } = useTranslation();
  const alertStatuses: Record<string, string> = { firing: t('alertStatus.firing'), resolved: t('alertStatus.resolved') };
  switch (event.kind) {
    case 'status':
      return (
        <>
          {event.event}
          {event.from_status || event.to_status ? ` (${event.from_status ?? '-'} → ${event.to_status ?? '-'})` : ''}
        </>
      );
    case 'alert':
      return (
        <Box component="span" sx={{ display: 'inline-flex', gap: 1, alignItems: 'center', flexWrap: 'wrap' }}>
          <SeverityChip severity={event.severity} />
          {`${event.rule_name ?? t('dashboard.deletedRule')}: ${event.metric} ${event.current_value} / ${event.threshold}`}
          {` · ${alertStatuses[event.status] ?? event.status}`}
        </Box>
      );
    case 'update':
      return (
        <Box component="span" sx={{ display: 'inline-flex', gap: 1, alignItems: 'center', flexWrap: 'wrap' }}>
          <UpdateStatusChip status={event.status} />
          <Link component={RouterLink} to={`/rollouts/${event.batch_id}`}>
            {`${event.component} ${event.from_version ?? '-'} → ${event.to_version}`}
          </Link>
        </Box>
      );
    case 'task':
      return t('timeline.taskRun', {
        name: event.task_name ?? `#${event.task_id}`,
        status: event.status,
        code: event.exit_code ?? '-',
      });
  }
}

/** The node's timeline over the charts' range, newest first. */
export function NodeTimeline({ nodeId, seconds }: { nodeId: number; seconds: number }) {
  const { t, i18n } = useTranslation();
  const timeline = useQuery(nodeTimelineQuery(nodeId, seconds));
  const kinds = useKindLabels();
  const events = [...(timeline.data?.events ?? [])].reverse();
  return (
    <Paper sx={{ p: 2, height: '100%' }}>
      <Typography variant="h6" gutterBottom>
        {t('timeline.title')}
      </Typography>
      {timeline.isPending ? <Loading /> : null}
      {timeline.isError ? <ErrorState error={timeline.error} onRetry={() => void timeline.refetch()} /> : null}
      {timeline.isSuccess && events.length === 0 ? <Empty message={t('timeline.empty')} /> : null}
      {timeline.data?.truncated ? (
        <Typography variant="body2" color="text.secondary">
          {t('timeline.truncated', { number: events.length })}
        </Typography>
      ) : null}
      {events.length > 0 ? (
        <Box sx={{ maxHeight: 420, overflow: 'auto' }}>
          <Table size="small" stickyHeader data-testid="node-timeline">
            <TableHead>
              <TableRow>
                <TableCell>{t('timeline.at')}</TableCell>
                <TableCell>{t('timeline.kindLabel')}</TableCell>
                <TableCell>{t('timeline.what')}</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {events.map((event, index) => (
                <TableRow key={index}>
                  <TableCell sx={{ whiteSpace: 'nowrap' }}>{formatDateTime(event.at, i18n.language)}</TableCell>
                  <TableCell>
                    <Chip size="small" label={kinds[event.kind]} sx={{ bgcolor: KIND_COLORS[event.kind], color: '#fff' }} />
                  </TableCell>
                  <TableCell>
                    <Describe event={event} />
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Box>
      ) : null}
    </Paper>
  );
}

/** The node's updates of the last 30 days, from the timeline's update events. */
export function NodeUpdateHistory({ nodeId }: { nodeId: number }) {
  const { t, i18n } = useTranslation();
  const timeline = useQuery(nodeTimelineQuery(nodeId, UPDATE_HISTORY_SECONDS));
  const updates = (timeline.data?.events ?? []).filter((event): event is UpdateEvent => event.kind === 'update').reverse();
  return (
    <Paper sx={{ p: 2 }}>
      <Typography variant="h6" gutterBottom>
        {t('timeline.updates')}
      </Typography>
      {timeline.isPending ? <Loading /> : null}
      {timeline.isError ? <ErrorState error={timeline.error} onRetry={() => void timeline.refetch()} /> : null}
      {timeline.isSuccess && updates.length === 0 ? <Empty message={t('timeline.noUpdates')} /> : null}
      {updates.length > 0 ? (
        <Table size="small" data-testid="update-history">
          <TableHead>
            <TableRow>
              <TableCell>{t('timeline.at')}</TableCell>
              <TableCell>{t('versions.component')}</TableCell>
              <TableCell>{t('rollouts.fromTo')}</TableCell>
              <TableCell>{t('rollouts.status')}</TableCell>
              <TableCell>{t('rollouts.finishedAt')}</TableCell>
              <TableCell>{t('timeline.rollout')}</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {updates.map((update) => (
              <TableRow key={update.record_id}>
                <TableCell>{formatDateTime(update.at, i18n.language)}</TableCell>
                <TableCell>{update.component}</TableCell>
                <TableCell>{`${update.from_version ?? '-'} → ${update.to_version}`}</TableCell>
                <TableCell>
                  <UpdateStatusChip status={update.status} />
                </TableCell>
                <TableCell>{formatDateTime(update.finished_at, i18n.language)}</TableCell>
                <TableCell>
                  <Link component={RouterLink} to={`/rollouts/${update.batch_id}`}>
                    {update.batch_id.slice(0, 8)}
                  </Link>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      ) : null}
    </Paper>
  );
}
