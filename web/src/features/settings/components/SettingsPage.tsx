import { Box, Chip, Paper, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import Grid from '@mui/material/Grid';
import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';

import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { systemSettingsQuery, type SystemSettings } from '@/features/settings/api/settings';
import { useCan } from '@/stores/auth';

function Section({ title, children, testId }: { title: string; children: ReactNode; testId?: string }) {
  return (
    <Paper sx={{ p: 2, height: '100%' }} data-testid={testId}>
      <Typography variant="h6" gutterBottom>
        {title}
      </Typography>
      {children}
    </Paper>
  );
}

function Figures({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <Box component="dl" sx={{ display: 'grid', gridTemplateColumns: 'max-content 1fr', columnGap: 3, rowGap: 1, m: 0 }}>
      {rows.map(([label, value]) => (
        <Box key={label} sx={{ display: 'contents' }}>
          <Typography component="dt" color="text.secondary">
            {label}
          </Typography>
          <Typography component="dd" sx={{ m: 0 }}>
            {value}
          </Typography>
        </Box>
      ))}
    </Box>
  );
}

const mono = { fontFamily: 'monospace', wordBreak: 'break-all' } as const;

function Keys({ settings }: { settings: SystemSettings }) {
  const { t } = useTranslation();
  return (
    <Section title={t('settings.keys')} testId="settings-keys">
      <Typography variant="body2" color="text.secondary" sx={{ mb: 1 }}>
        {t('settings.keysHint')}
      </Typography>
      <Table size="small">
        <TableHead>
          <TableRow>
            <TableCell>{t('settings.fingerprint')}</TableCell>
            <TableCell>{t('settings.source')}</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {settings.package_keys.map((key) => (
            <TableRow key={key.fingerprint}>
              <TableCell sx={mono}>{key.fingerprint}</TableCell>
              <TableCell>
                {key.own ? <Chip size="small" color="primary" label={t('settings.ownKey')} /> : <Box component="span" sx={mono}>{key.source}</Box>}
              </TableCell>
            </TableRow>
          ))}
          <TableRow>
            <TableCell sx={mono} data-testid="task-key">
              {settings.task_key_fingerprint}
            </TableCell>
            <TableCell>
              <Chip size="small" variant="outlined" label={t('settings.taskKey')} />
            </TableCell>
          </TableRow>
        </TableBody>
      </Table>
    </Section>
  );
}

/** The Manager's settings an administrator checks: key fingerprints, retention, node defaults. */
export function SettingsPage() {
  const { t } = useTranslation();
  const admin = useCan('settings.read');
  const settings = useQuery({ ...systemSettingsQuery, enabled: admin });
  if (!admin) {
    return (
      <Box>
        <PageHeader title={t('settings.title')} />
        <Empty message={t('common.forbidden')} />
      </Box>
    );
  }
  const data = settings.data;
  return (
    <Box>
      <PageHeader title={t('settings.title')} />
      {settings.isPending ? <Loading /> : null}
      {settings.isError ? <ErrorState error={settings.error} onRetry={() => void settings.refetch()} /> : null}
      {data ? (
        <Grid container spacing={2}>
          <Grid size={12}>
            <Keys settings={data} />
          </Grid>
          <Grid size={{ xs: 12, md: 6 }}>
            <Section title={t('settings.retention')} testId="settings-retention">
              <Figures
                rows={[
                  [t('settings.rawMetrics'), t('settings.days', { n: data.retention.raw_metrics_days })],
                  [t('settings.rollups'), t('settings.days', { n: data.retention.metric_rollups_days })],
                ]}
              />
            </Section>
          </Grid>
          <Grid size={{ xs: 12, md: 6 }}>
            <Section title={t('settings.nodes')}>
              <Figures
                rows={[
                  [t('settings.heartbeatTimeout'), t('settings.seconds', { n: data.timing.heartbeat_timeout_seconds })],
                  [t('settings.offlineCheck'), t('settings.seconds', { n: data.timing.offline_check_seconds })],
                  [t('settings.alertEvaluation'), t('settings.seconds', { n: data.timing.alert_evaluation_seconds })],
                ]}
              />
            </Section>
          </Grid>
          <Grid size={12}>
            <Section title={t('settings.defaults')} testId="settings-defaults">
              <Typography variant="body2" color="text.secondary" sx={{ mb: 1 }}>
                {t('settings.defaultsHint')}
              </Typography>
              <Table size="small">
                <TableHead>
                  <TableRow>
                    <TableCell>{t('config.key')}</TableCell>
                    <TableCell>{t('config.value')}</TableCell>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {Object.entries(data.node_defaults).map(([key, value]) => (
                    <TableRow key={key}>
                      <TableCell sx={mono}>{key}</TableCell>
                      <TableCell sx={mono}>{value}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </Section>
          </Grid>
        </Grid>
      ) : null}
    </Box>
  );
}
