import ArrowBackIcon from '@mui/icons-material/ArrowBack';
import {
  Box,
  Button,
  Link,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import Grid from '@mui/material/Grid';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useNavigate, useParams } from 'react-router';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { SeverityChip } from '@/components/StatusChip';
import { acknowledgeAlert, alertNotificationsQuery, alertQuery, type Alert } from '@/features/alerts/api/alerts';
import { AlertStateChips, DeliveryStatusChip, alertValue } from '@/features/alerts/components/AlertChips';
import { SilenceDialog, type SilencePreset } from '@/features/alerts/components/SilenceDialog';
import { useCan } from '@/stores/auth';

function Facts({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <Box component="dl" sx={{ display: 'grid', gridTemplateColumns: 'max-content 1fr', columnGap: 3, rowGap: 1, m: 0 }}>
      {rows.map(([label, value]) => (
        <Box key={label} sx={{ display: 'contents' }}>
          <Typography component="dt" color="text.secondary">
            {label}
          </Typography>
          <Typography component="dd" sx={{ m: 0, wordBreak: 'break-word' }}>
            {value}
          </Typography>
        </Box>
      ))}
    </Box>
  );
}

function AlertFacts({ alert }: { alert: Alert }) {
  const { t, i18n } = useTranslation();
  const when = (value: string | null | undefined) => formatDateTime(value, i18n.language);
  return (
    <Paper sx={{ p: 2, height: '100%' }}>
      <Typography variant="h6" gutterBottom>
        {t('alerts.detail.facts')}
      </Typography>
      <Facts
        rows={[
          [t('alerts.status'), <AlertStateChips key="s" alert={alert} />],
          [t('alerts.severity'), <SeverityChip key="v" severity={alert.severity} />],
          [t('alerts.rule'), alert.rule_name ?? t('alerts.deletedRule')],
          [
            t('alerts.node'),
            alert.hostname ? (
              <Link key="n" component={RouterLink} to={`/nodes/${alert.node_id}`}>
                {alert.hostname}
              </Link>
            ) : (
              t('alerts.deletedNode')
            ),
          ],
          [t('alerts.value'), alertValue(alert)],
          [t('alerts.firedAt'), when(alert.fired_at)],
          [t('alerts.detail.resolvedAt'), when(alert.resolved_at)],
          [
            t('alerts.detail.acknowledgedAt'),
            alert.acknowledged_at
              ? t('alerts.detail.acknowledgedBy', { when: when(alert.acknowledged_at), user: alert.acknowledged_by ?? '-' })
              : '-',
          ],
        ]}
      />
    </Paper>
  );
}

function Notifications({ alertId }: { alertId: number }) {
  const { t, i18n } = useTranslation();
  const deliveries = useQuery(alertNotificationsQuery(alertId));
  const events = { firing: t('alerts.detail.eventFiring'), resolved: t('alerts.detail.eventResolved'), test: t('alerts.detail.eventTest') };
  return (
    <Paper sx={{ p: 2 }} data-testid="alert-notifications">
      <Typography variant="h6" gutterBottom>
        {t('alerts.detail.notifications')}
      </Typography>
      {deliveries.isPending ? <Loading /> : null}
      {deliveries.isError ? <ErrorState error={deliveries.error} onRetry={() => void deliveries.refetch()} /> : null}
      {deliveries.data?.length === 0 ? <Empty message={t('alerts.detail.noNotifications')} /> : null}
      {deliveries.data && deliveries.data.length > 0 ? (
        <TableContainer>
          <Table size="small">
            <TableHead>
              <TableRow>
                <TableCell>{t('alerts.detail.channel')}</TableCell>
                <TableCell>{t('alerts.detail.event')}</TableCell>
                <TableCell>{t('alerts.status')}</TableCell>
                <TableCell>{t('alerts.detail.attempts')}</TableCell>
                <TableCell>{t('alerts.detail.lastError')}</TableCell>
                <TableCell>{t('alerts.detail.sentAt')}</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {deliveries.data.map((d) => (
                <TableRow key={d.id}>
                  <TableCell>{d.channel_name ? `${d.channel_name} (${d.channel_type ?? ''})` : t('alerts.detail.deletedChannel')}</TableCell>
                  <TableCell>{events[d.event]}</TableCell>
                  <TableCell>
                    <DeliveryStatusChip status={d.status} />
                  </TableCell>
                  <TableCell>{d.attempts}</TableCell>
                  <TableCell sx={{ maxWidth: 280, wordBreak: 'break-word' }}>{d.last_error ?? '-'}</TableCell>
                  <TableCell>
                    {d.sent_at
                      ? formatDateTime(d.sent_at, i18n.language)
                      : d.next_attempt_at
                        ? t('alerts.detail.nextAttempt', { when: formatDateTime(d.next_attempt_at, i18n.language) })
                        : '-'}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </TableContainer>
      ) : null}
    </Paper>
  );
}

export function AlertDetailPage() {
  const { t } = useTranslation();
  const id = Number(useParams().id);
  const valid = Number.isInteger(id) && id > 0;
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const canAck = useCan('alert.acknowledge');
  const canSilence = useCan('alert.silence');
  const [silencing, setSilencing] = useState<SilencePreset | null>(null);
  const alert = useQuery({ ...alertQuery(id), enabled: valid });
  const ack = useMutation({
    mutationFn: () => acknowledgeAlert(id),
    onSuccess: (updated) => {
      queryClient.setQueryData(keys.alert(id), updated);
      return Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.alerts }),
        queryClient.invalidateQueries({ queryKey: keys.dashboard }),
      ]);
    },
  });
  const data = alert.data;

  const header = (
    <PageHeader
      title={data ? t('alerts.detail.title', { id: data.id, rule: data.rule_name ?? t('alerts.deletedRule') }) : t('alerts.detail.heading')}
      actions={
        <>
          <Button startIcon={<ArrowBackIcon />} onClick={() => void navigate('/alerts')}>
            {t('alerts.detail.back')}
          </Button>
          {canAck && data && !data.acknowledged_at ? (
            <Button variant="contained" disabled={ack.isPending} onClick={() => ack.mutate()}>
              {t('alerts.acknowledge')}
            </Button>
          ) : null}
          {canSilence && data ? (
            <>
              <Button
                variant="outlined"
                onClick={() =>
                  setSilencing({ targetType: 'node', targetValue: String(data.node_id), targetLabel: data.hostname ?? undefined })
                }
              >
                {t('alerts.silenceNode')}
              </Button>
              <Button
                variant="outlined"
                onClick={() =>
                  setSilencing({ targetType: 'rule', targetValue: String(data.rule_id), targetLabel: data.rule_name ?? undefined })
                }
              >
                {t('alerts.silenceRule')}
              </Button>
            </>
          ) : null}
        </>
      }
    />
  );

  if (!valid || (alert.error instanceof ApiError && alert.error.status === 404)) {
    return (
      <Box>
        {header}
        <Empty message={t('alerts.detail.notFound')} />
      </Box>
    );
  }
  return (
    <Box>
      {header}
      {alert.isPending ? <Loading /> : null}
      {alert.isError ? <ErrorState error={alert.error} onRetry={() => void alert.refetch()} /> : null}
      {ack.isError ? <ErrorState error={ack.error} /> : null}
      {data ? (
        <Grid container spacing={2}>
          <Grid size={{ xs: 12, lg: 5 }}>
            <AlertFacts alert={data} />
          </Grid>
          <Grid size={{ xs: 12, lg: 7 }}>
            <Notifications alertId={id} />
          </Grid>
        </Grid>
      ) : null}
      {silencing ? <SilenceDialog preset={silencing} onClose={() => setSilencing(null)} /> : null}
    </Box>
  );
}
