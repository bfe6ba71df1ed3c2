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

/** A node's update record: pending … success, failed or rollback (unknown values as sent). */
export function UpdateStatusChip({ status }: { status: string }) {
  const { t } = useTranslation();
  const known: Record<string, [string, ChipColor]> = {
    pending: [t('status.update.pending'), 'default'],
    downloading: [t('status.update.downloading'), 'info'],
    installing: [t('status.update.installing'), 'info'],
    verifying: [t('status.update.verifying'), 'info'],
    success: [t('status.update.success'), 'success'],
    failed: [t('status.update.failed'), 'error'],
    rollback: [t('status.update.rollback'), 'warning'],
  };
  const [label, color] = known[status] ?? [status, 'default'];
  return <Chip size="small" color={color} label={label} />;
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
