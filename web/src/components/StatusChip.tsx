import { Chip } from '@mui/material';
import { useTranslation } from 'react-i18next';

import type { Schemas } from '@/api/client';

type NodeStatus = Schemas['NodeRead']['status'];
type AgentStatus = Schemas['AgentRead']['status'];

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
