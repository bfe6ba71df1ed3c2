import { Chip } from '@mui/material';
import { useTranslation } from 'react-i18next';

import type { Schemas } from '@/api/client';

type NodeStatus = Schemas['NodeRead']['status'];
type AgentStatus = Schemas['AgentRead']['status'];
type ChipColor = 'default' | 'primary' | 'info' | 'success' | 'warning' | 'error';

export function NodeStatusChip({ status }: { status: NodeStatus }) {
  const { t } = useTranslation();
  const label = {
    online: t('status.node.online'),
    offline: t('status.node.offline'),
    unknown: t('status.node.unknown'),
  }[status];
  const color = ({ online: 'success', offline: 'error', unknown: 'default' } as const)[status];
  return <Chip size="small" color={color} label={label} />;
}

export function AgentStatusChip({ status }: { status: AgentStatus | undefined }) {
  const { t } = useTranslation();
  const value = status ?? 'unknown';
  const label = {
    running: t('status.agent.running'),
    stopped: t('status.agent.stopped'),
    error: t('status.agent.error'),
    unknown: t('status.agent.unknown'),
  }[value];
  const color = ({ running: 'success', stopped: 'warning', error: 'error', unknown: 'default' } as const)[value];
  return <Chip size="small" variant="outlined" color={color} label={label} />;
}

/** The words for a node's update states, for chips and filters alike. */
export function useUpdateStateLabels(): Record<string, string> {
  const { t } = useTranslation();
  return {
    pending: t('status.update.pending'),
    downloading: t('status.update.downloading'),
    installing: t('status.update.installing'),
    verifying: t('status.update.verifying'),
    success: t('status.update.success'),
    failed: t('status.update.failed'),
    rollback: t('status.update.rollback'),
  };
}

const UPDATE_STATE_COLORS: Record<string, ChipColor> = {
  downloading: 'info',
  installing: 'info',
  verifying: 'info',
  success: 'success',
  failed: 'error',
  rollback: 'warning',
};

/** A node's update record: pending … success, failed or rollback (unknown values as sent). */
export function UpdateStatusChip({ status }: { status: string }) {
  const label = useUpdateStateLabels()[status] ?? status;
  return <Chip size="small" color={UPDATE_STATE_COLORS[status] ?? 'default'} label={label} />;
}

export function RolloutStatusChip({ status }: { status: Schemas['RolloutRead']['status'] }) {
  const { t } = useTranslation();
  const known: Record<Schemas['RolloutRead']['status'], [string, ChipColor]> = {
    running: [t('status.rollout.running'), 'info'],
    paused: [t('status.rollout.paused'), 'warning'],
    cancelled: [t('status.rollout.cancelled'), 'default'],
    completed: [t('status.rollout.completed'), 'success'],
    failed: [t('status.rollout.failed'), 'error'],
  };
  const [label, color] = known[status];
  return <Chip size="small" color={color} label={label} data-testid="rollout-status" />;
}

export function SeverityChip({ severity }: { severity: string }) {
  const { t } = useTranslation();
  const known: Record<string, [string, ChipColor]> = {
    critical: [t('severity.critical'), 'error'],
    warning: [t('severity.warning'), 'warning'],
    info: [t('severity.info'), 'info'],
  };
  const [label, color] = known[severity] ?? [severity, 'default'];
  return <Chip size="small" variant="outlined" color={color} label={label} />;
}
