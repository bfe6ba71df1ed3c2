import {
  Box,
  Card,
  CardContent,
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
import { useTranslation } from 'react-i18next';
import { Link as RouterLink } from 'react-router';

import { formatDateTime } from '@/components/format';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { useDashboard, type DashboardData } from '@/features/dashboard/api/useDashboard';

function StatCard({ title, value, to, testId }: { title: string; value: number; to: string; testId: string }) {
  return (
    <Card component={RouterLink} to={to} sx={{ textDecoration: 'none', display: 'block' }}>
      <CardContent>
        <Typography color="text.secondary" gutterBottom>
          {title}
        </Typography>
        <Typography variant="h4" data-testid={testId}>
          {value}
        </Typography>
      </CardContent>
    </Card>
  );
}

function Trend({ data }: { data: DashboardData['trend'] }) {
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

export function DashboardPage() {
  const { t, i18n } = useTranslation();
  const query = useDashboard();
  return (
    <Box>
      <PageHeader title={t('dashboard.title')} />
      {query.isPending ? <Loading /> : null}
      {query.isError ? <ErrorState error={query.error} onRetry={() => void query.refetch()} /> : null}
      {query.data ? (
        <Grid container spacing={2}>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard title={t('dashboard.totalNodes')} value={query.data.nodes.total} to="/nodes" testId="count-total" />
          </Grid>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard title={t('dashboard.onlineNodes')} value={query.data.nodes.online} to="/nodes?status=online" testId="count-online" />
          </Grid>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard title={t('dashboard.offlineNodes')} value={query.data.nodes.offline} to="/nodes?status=offline" testId="count-offline" />
          </Grid>
          <Grid size={{ xs: 12, sm: 6, md: 3 }}>
            <StatCard title={t('dashboard.unknownNodes')} value={query.data.nodes.unknown} to="/nodes?status=unknown" testId="count-unknown" />
          </Grid>
          <Grid size={{ xs: 12, md: 5 }}>
            <Paper sx={{ p: 2, height: '100%' }}>
              <Typography variant="h6" gutterBottom>
                {t('dashboard.statusDistribution')}
              </Typography>
              {query.data.nodes.total === 0 ? (
                <Empty message={t('dashboard.noNodes')} />
              ) : (
                <PieChart
                  height={240}
                  series={[
                    {
                      innerRadius: 50,
                      data: [
                        { id: 'online', value: query.data.nodes.online, label: t('status.node.online'), color: '#2e7d32' },
                        { id: 'offline', value: query.data.nodes.offline, label: t('status.node.offline'), color: '#d32f2f' },
                        { id: 'unknown', value: query.data.nodes.unknown, label: t('status.node.unknown'), color: '#9e9e9e' },
                      ],
                    },
                  ]}
                />
              )}
            </Paper>
          </Grid>
          <Grid size={{ xs: 12, md: 7 }}>
            <Paper sx={{ p: 2, height: '100%' }}>
              <Typography variant="h6" gutterBottom>
                {t('dashboard.latestVersions')}
              </Typography>
              {query.data.latestVersions.length === 0 ? (
                <Empty message={t('dashboard.noVersions')} />
              ) : (
                <Table size="small">
                  <TableHead>
                    <TableRow>
                      <TableCell>{t('versions.component')}</TableCell>
                      <TableCell>{t('versions.version')}</TableCell>
                      <TableCell>{t('versions.platform')}</TableCell>
                      <TableCell>{t('versions.createdAt')}</TableCell>
                    </TableRow>
                  </TableHead>
                  <TableBody>
                    {query.data.latestVersions.map((version) => (
                      <TableRow key={version.id}>
                        <TableCell>{version.component}</TableCell>
                        <TableCell>{version.version}</TableCell>
                        <TableCell>{`${version.os}/${version.arch}`}</TableCell>
                        <TableCell>{formatDateTime(version.created_at, i18n.language)}</TableCell>
                      </TableRow>
                    ))}
                  </TableBody>
                </Table>
              )}
            </Paper>
          </Grid>
          <Grid size={12}>
            <Paper sx={{ p: 2 }}>
              <Typography variant="h6" gutterBottom>
                {t('dashboard.trend')}
              </Typography>
              <Trend data={query.data.trend} />
            </Paper>
          </Grid>
        </Grid>
      ) : null}
    </Box>
  );
}
