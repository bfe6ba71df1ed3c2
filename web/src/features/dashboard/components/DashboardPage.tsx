import {
  Box,
  Card,
  CardActionArea,
  CardContent,
  Link,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import Grid from '@mui/material/Grid';
import { LineChart } from '@mui/x-charts/LineChart';
import { PieChart } from '@mui/x-charts/PieChart';
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink } from 'react-router';

import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { SeverityChip } from '@/components/StatusChip';
import { useDashboard, type DashboardData } from '@/features/dashboard/api/useDashboard';

function StatCard({ title, value, to, testId, detail }: { title: string; value: number; to?: string; testId: string; detail?: ReactNode }) {
  const content = (
    <CardContent>
      <Typography color="text.secondary" gutterBottom>
        {title}
      </Typography>
      <Typography variant="h4" data-testid={testId}>
        {value}
      </Typography>
      {detail ? (
        <Typography variant="body2" color="text.secondary">
          {detail}
        </Typography>
      ) : null}
    </CardContent>
  );
  return (
    <Card sx={{ height: '100%' }}>
      {to ? (
        <CardActionArea component={RouterLink} to={to} sx={{ height: '100%' }}>
          {content}
        </CardActionArea>
      ) : (
        content
      )}
    </Card>
  );
}

function Trend({ data }: { data: DashboardData['resource_trend'] }) {
  const { t, i18n } = useTranslation();
  const points = data.filter((point) => point.timestamp);
  if (points.length === 0) return <Empty message={t('dashboard.noTrend')} />;
  return (
    <LineChart
      height={280}
      xAxis={[
        {
          scaleType: 'time',
          data: points.map((point) => new Date(point.timestamp as string)),
          valueFormatter: (value: Date) =>
            value.toLocaleTimeString(i18n.language, { hour: '2-digit', minute: '2-digit', hour12: false }),
        },
      ]}
      yAxis={[{ min: 0, max: 100 }]}
      series={[
        { label: t('metrics.cpu'), data: points.map((p) => p.cpu_usage_avg), showMark: false },
        { label: t('metrics.memory'), data: points.map((p) => p.memory_usage_avg), showMark: false },
        { label: t('metrics.disk'), data: points.map((p) => p.disk_usage_avg), showMark: false },
      ]}
    />
  );
}

type Slice = { id: string; value: number; label: string; color?: string };

function Distribution({ title, slices, empty, testId }: { title: string; slices: Slice[]; empty: string; testId: string }) {
  return (
    <Paper sx={{ p: 2, height: '100%' }} data-testid={testId}>
      <Typography variant="h6" gutterBottom>
        {title}
      </Typography>
      {slices.every((slice) => slice.value === 0) ? (
        <Empty message={empty} />
      ) : (
        <PieChart height={220} series={[{ innerRadius: 45, data: slices }]} />
      )}
    </Paper>
  );
}

function RecentAlerts({ alerts }: { alerts: DashboardData['recent_alerts'] }) {
  const { t, i18n } = useTranslation();
  if (alerts.length === 0) return <Empty message={t('dashboard.noAlerts')} />;
  const statuses: Record<string, string> = { firing: t('alertStatus.firing'), resolved: t('alertStatus.resolved') };
  return (
    <Table size="small" data-testid="recent-alerts">
      <TableHead>
        <TableRow>
          <TableCell>{t('dashboard.alertFiredAt')}</TableCell>
          <TableCell>{t('dashboard.alertSeverity')}</TableCell>
          <TableCell>{t('dashboard.alertRule')}</TableCell>
          <TableCell>{t('dashboard.alertNode')}</TableCell>
          <TableCell>{t('dashboard.alertValue')}</TableCell>
          <TableCell>{t('dashboard.alertStatus')}</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {alerts.map((alert) => (
          <TableRow key={alert.id}>
            <TableCell>
              <Link component={RouterLink} to={`/alerts/${alert.id}`}>
                {formatDateTime(alert.fired_at, i18n.language)}
              </Link>
            </TableCell>
            <TableCell>
              <SeverityChip severity={alert.severity} />
            </TableCell>
            <TableCell>
              <Link component={RouterLink} to={`/alerts/${alert.id}`}>
                {alert.rule_name ?? t('dashboard.deletedRule')}
              </Link>
            </TableCell>
            <TableCell>
              {alert.node_name ? (
                <Link component={RouterLink} to={`/nodes/${alert.node_id}`}>
                  {alert.node_name}
                </Link>
              ) : (
                t('dashboard.deletedNode')
              )}
            </TableCell>
            <TableCell>{`${alert.metric} ${alert.current_value} / ${alert.threshold}`}</TableCell>
            <TableCell>
              {statuses[alert.status] ?? alert.status}
              {alert.acknowledged ? ` · ${t('dashboard.acknowledged')}` : ''}
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

function versionSlices(shares: DashboardData['agent_version_distribution'], unknown: string): Slice[] {
  return shares.map((share) => ({
    id: share.value,
    value: share.count,
    label: share.value === 'unknown' ? unknown : share.value,
  }));
}

export function DashboardPage() {
  const { t, i18n } = useTranslation();
  const query = useDashboard();
  const data = query.data;
  const statusLabels: Record<string, [string, string]> = {
    online: [t('status.node.online'), '#2e7d32'],
    offline: [t('status.node.offline'), '#d32f2f'],
    unknown: [t('status.node.unknown'), '#9e9e9e'],
  };
  return (
    <Box>
      <PageHeader
        title={t('dashboard.title')}
        actions={
          data?.generated_at ? (
            <Typography color="text.secondary" variant="body2" data-testid="generated-at">
              {t('dashboard.asOf', { time: formatDateTime(data.generated_at, i18n.language) })}
            </Typography>
          ) : null
        }
      />
      {query.isPending ? <Loading /> : null}
      {query.isError ? <ErrorState error={query.error} onRetry={() => void query.refetch()} /> : null}
      {data ? (
        <Grid container spacing={2}>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard title={t('dashboard.totalNodes')} value={data.total_nodes} to="/nodes" testId="count-total" />
          </Grid>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard
              title={t('dashboard.onlineNodes')}
              value={data.online_nodes}
              to="/nodes?status=online"
              testId="count-online"
              detail={t('dashboard.notOnline', { number: data.offline_nodes })}
            />
          </Grid>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard title={t('dashboard.runningAgents')} value={data.running_agents} testId="count-agents" />
          </Grid>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard
              title={t('dashboard.activeAlerts')}
              value={data.active_alerts}
              testId="count-alerts"
              detail={t('dashboard.bySeverity', {
                critical: data.active_alerts_by_severity.critical ?? 0,
                warning: data.active_alerts_by_severity.warning ?? 0,
                info: data.active_alerts_by_severity.info ?? 0,
              })}
            />
          </Grid>
          <Grid size={{ xs: 12, md: 4 }}>
            <Distribution
              title={t('dashboard.statusDistribution')}
              testId="status-distribution"
              empty={t('dashboard.noNodes')}
              slices={data.node_status_distribution.map((share) => {
                const [label, color] = statusLabels[share.value] ?? [share.value, '#607d8b'];
                return { id: share.value, value: share.count, label, color };
              })}
            />
          </Grid>
          <Grid size={{ xs: 12, md: 4 }}>
            <Distribution
              title={t('dashboard.agentVersions')}
              testId="agent-versions"
              empty={t('dashboard.noAgents')}
              slices={versionSlices(data.agent_version_distribution, t('dashboard.unknownVersion'))}
            />
          </Grid>
          <Grid size={{ xs: 12, md: 4 }}>
            <Distribution
              title={t('dashboard.daemonVersions')}
              testId="daemon-versions"
              empty={t('dashboard.noNodes')}
              slices={versionSlices(data.daemon_version_distribution, t('dashboard.unknownVersion'))}
            />
          </Grid>
          <Grid size={12}>
            <Paper sx={{ p: 2 }}>
              <Typography variant="h6" gutterBottom>
                {t('dashboard.trend')}
              </Typography>
              <Trend data={data.resource_trend} />
            </Paper>
          </Grid>
          <Grid size={12}>
            <Paper sx={{ p: 2 }}>
              <Box sx={{ display: 'flex', justifyContent: 'space-between', alignItems: 'baseline' }}>
                <Typography variant="h6" gutterBottom>
                  {t('dashboard.recentAlerts')}
                </Typography>
                <Link component={RouterLink} to="/alerts?status=firing">
                  {t('alerts.viewAll')}
                </Link>
              </Box>
              <RecentAlerts alerts={data.recent_alerts} />
            </Paper>
          </Grid>
        </Grid>
      ) : null}
    </Box>
  );
}
