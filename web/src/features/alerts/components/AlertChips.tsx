import { Box, Chip } from '@mui/material';
import { useTranslation } from 'react-i18next';

import type { Alert, Delivery } from '@/features/alerts/api/alerts';

/** Firing or resolved, and whether someone acknowledged it or a silence covers it. */
export function AlertStateChips({ alert }: { alert: Alert }) {
  const { t } = useTranslation();
  return (
    <Box component="span" sx={{ display: 'inline-flex', gap: 0.5, flexWrap: 'wrap', alignItems: 'center' }}>
      <Chip
        size="small"
        color={alert.status === 'firing' ? 'error' : 'success'}
        label={alert.status === 'firing' ? t('alertStatus.firing') : t('alertStatus.resolved')}
        data-testid="alert-status"
      />
      {alert.acknowledged_at ? (
        <Chip size="small" variant="outlined" label={t('alerts.acknowledged')} data-testid="alert-acknowledged" />
      ) : null}
      {alert.silenced ? <Chip size="small" variant="outlined" color="warning" label={t('alerts.silenced')} /> : null}
    </Box>
  );
}

export function DeliveryStatusChip({ status }: { status: Delivery['status'] }) {
  const { t } = useTranslation();
  const known = {
    pending: [t('alerts.delivery.pending'), 'default'],
    sending: [t('alerts.delivery.sending'), 'info'],
    sent: [t('alerts.delivery.sent'), 'success'],
    failed: [t('alerts.delivery.failed'), 'error'],
  } as const;
  const [label, color] = known[status];
  return <Chip size="small" color={color} label={label} />;
}

/** `cpu_usage 97.5 / 90` for a metric rule; the condition's name for node_offline & co. */
export function alertValue(alert: Pick<Alert, 'metric' | 'current_value' | 'threshold'>): string {
  return `${alert.metric} ${alert.current_value} / ${alert.threshold}`;
}
