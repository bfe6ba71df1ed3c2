import { Box, LinearProgress, Typography } from '@mui/material';
import { useTranslation } from 'react-i18next';

/** How far a rollout is: a bar of the records that reached a final state, and the counts. */
export function RolloutProgress({ total, success, failed, testId }: { total: number; success: number; failed: number; testId?: string }) {
  const { t } = useTranslation();
  const done = success + failed;
  const percent = total > 0 ? Math.round((done / total) * 100) : 0;
  // Inside a grid cell the line height is the row's: set it back, or the bar drifts up.
  return (
    <Box sx={{ width: '100%', lineHeight: 1.4 }} data-testid={testId}>
      <LinearProgress
        variant="determinate"
        value={percent}
        color={failed > 0 ? 'warning' : 'primary'}
        aria-label={t('rollouts.progress')}
        sx={{ height: 8, borderRadius: 4 }}
      />
      <Typography variant="caption" component="div" color="text.secondary" sx={{ lineHeight: 1.4, mt: 0.5 }}>
        {t('rollouts.counts', { success, failed, pending: total - done, total })}
      </Typography>
    </Box>
  );
}
