import { Box, Paper, ToggleButton, ToggleButtonGroup, Typography } from '@mui/material';
import Grid from '@mui/material/Grid';
import { ChartsReferenceLine } from '@mui/x-charts/ChartsReferenceLine';
import { LineChart } from '@mui/x-charts/LineChart';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';

import { Empty, ErrorState, Loading } from '@/components/PageState';
import { METRIC_RANGES, nodeMetricsQuery, nodeTimelineQuery, type MetricRange } from '@/features/nodes/api/nodes';
import { KIND_COLORS, useKindLabels, type TimelineKind } from '@/features/nodes/components/NodeTimeline';

/** The node's charts over a range; the timeline's events of that range are marked on the usage chart. */
export function NodeMetricsCharts({ nodeId, range, onRangeChange }: { nodeId: number; range: MetricRange; onRangeChange: (range: MetricRange) => void }) {
  const { t, i18n } = useTranslation();
  const metrics = useQuery(nodeMetricsQuery(nodeId, range));
  const timeline = useQuery(nodeTimelineQuery(nodeId, METRIC_RANGES[range]));
  const kinds = useKindLabels();
  const points = (metrics.data ?? []).filter((point) => point.timestamp);
  const times = points.map((point) => new Date(point.timestamp as string));
  const first = times[0]?.getTime() ?? 0;
  const last = times[times.length - 1]?.getTime() ?? 0;
  // Only events inside the drawn span: a line outside the axis would be drawn off the chart.
  const markers = (timeline.data?.events ?? [])
    .filter((event) => event.at)
    .map((event) => ({ at: new Date(event.at as string), kind: event.kind }))
    .filter((marker) => marker.at.getTime() >= first && marker.at.getTime() <= last);
  const shownKinds = [...new Set(markers.map((marker) => marker.kind))] as TimelineKind[];
  const long = METRIC_RANGES[range] > 86400;
  const xAxis = [
    {
      scaleType: 'time' as const,
      data: times,
      valueFormatter: (value: Date) =>
        long
          ? value.toLocaleString(i18n.language, { month: '2-digit', day: '2-digit', hour: '2-digit', hour12: false })
          : value.toLocaleTimeString(i18n.language, { hour: '2-digit', minute: '2-digit', hour12: false }),
    },
  ];
  const rangeLabels: Record<MetricRange, string> = {
    '1h': t('metrics.range.1h'),
    '6h': t('metrics.range.6h'),
    '24h': t('metrics.range.24h'),
    '7d': t('metrics.range.7d'),
  };

  return (
    <Paper sx={{ p: 2 }}>
      <Box sx={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', mb: 1 }}>
        <Typography variant="h6">{t('metrics.title')}</Typography>
        <ToggleButtonGroup
          size="small"
          exclusive
          value={range}
          onChange={(_event, value: MetricRange | null) => value && onRangeChange(value)}
          aria-label={t('metrics.rangeLabel')}
        >
          {(Object.keys(METRIC_RANGES) as MetricRange[]).map((key) => (
            <ToggleButton key={key} value={key}>
              {rangeLabels[key]}
            </ToggleButton>
          ))}
        </ToggleButtonGroup>
      </Box>
      {metrics.isPending ? <Loading /> : null}
      {metrics.isError ? <ErrorState error={metrics.error} onRetry={() => void metrics.refetch()} /> : null}
      {metrics.isSuccess && points.length === 0 ? <Empty message={t('metrics.empty')} /> : null}
      {points.length > 0 ? (
        <Grid container spacing={2} data-testid="metric-charts">
          <Grid size={{ xs: 12, lg: 6 }}>
            <Typography variant="subtitle2">{t('metrics.usage')}</Typography>
            <LineChart
              height={240}
              xAxis={xAxis}
              yAxis={[{ min: 0, max: 100 }]}
              series={[
                { label: t('metrics.cpu'), data: points.map((p) => p.cpu_usage), showMark: false },
                { label: t('metrics.memory'), data: points.map((p) => p.memory_usage), showMark: false },
                { label: t('metrics.disk'), data: points.map((p) => p.disk_usage), showMark: false },
              ]}
            >
              {markers.map((marker, index) => (
                <ChartsReferenceLine
                  key={index}
                  x={marker.at}
                  lineStyle={{ stroke: KIND_COLORS[marker.kind], strokeDasharray: '4 3', strokeWidth: 1.5 }}
                />
              ))}
            </LineChart>
            {shownKinds.length > 0 ? (
              <Box sx={{ display: 'flex', gap: 2, flexWrap: 'wrap' }} data-testid="timeline-markers">
                <Typography variant="caption" color="text.secondary">
                  {t('timeline.markers', { number: markers.length })}
                </Typography>
                {shownKinds.map((kind) => (
                  <Typography key={kind} variant="caption" sx={{ color: KIND_COLORS[kind] }}>
                    {`┆ ${kinds[kind]}`}
                  </Typography>
                ))}
              </Box>
            ) : null}
          </Grid>
          <Grid size={{ xs: 12, lg: 6 }}>
            <Typography variant="subtitle2">{t('metrics.load')}</Typography>
            <LineChart
              height={240}
              xAxis={xAxis}
              series={[
                { label: t('metrics.load1'), data: points.map((p) => p.load_avg_1), showMark: false },
                { label: t('metrics.load5'), data: points.map((p) => p.load_avg_5), showMark: false },
                { label: t('metrics.load15'), data: points.map((p) => p.load_avg_15), showMark: false },
              ]}
            />
          </Grid>
          <Grid size={{ xs: 12, lg: 6 }}>
            <Typography variant="subtitle2">{t('metrics.network')}</Typography>
            <LineChart
              height={240}
              xAxis={xAxis}
              series={[
                { label: t('metrics.rx'), data: points.map((p) => p.network_rx), showMark: false },
                { label: t('metrics.tx'), data: points.map((p) => p.network_tx), showMark: false },
              ]}
            />
          </Grid>
          <Grid size={{ xs: 12, lg: 6 }}>
            <Typography variant="subtitle2">{t('metrics.processes')}</Typography>
            <LineChart
              height={240}
              xAxis={xAxis}
              series={[
                { label: t('metrics.processCount'), data: points.map((p) => p.process_count), showMark: false },
                { label: t('metrics.tcp'), data: points.map((p) => p.tcp_connections), showMark: false },
              ]}
            />
          </Grid>
        </Grid>
      ) : null}
    </Paper>
  );
}
