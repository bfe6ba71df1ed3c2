import { Chip } from '@mui/material';
import { useTranslation } from 'react-i18next';

import type { ExecutionState, ExecutionSummary, TargetType, TaskStatus, TaskType, Trigger } from '@/features/tasks/api/tasks';

type ChipColor = 'default' | 'primary' | 'info' | 'success' | 'warning' | 'error';

/** The words for the task feature's value sets, in the user's language. */
export function useTaskLabels() {
  const { t } = useTranslation();
  const types: Record<TaskType, string> = {
    script: t('tasks.type.script'),
    file: t('tasks.type.file'),
    service: t('tasks.type.service'),
    custom: t('tasks.type.custom'),
  };
  const targets: Record<TargetType, string> = {
    all: t('tasks.target.all'),
    group: t('tasks.target.group'),
    tag: t('tasks.target.tag'),
    node: t('tasks.target.node'),
  };
  const statuses: Record<TaskStatus, string> = { enabled: t('tasks.status.enabled'), disabled: t('tasks.status.disabled') };
  const triggers: Record<Trigger, string> = {
    manual: t('tasks.trigger.manual'),
    schedule: t('tasks.trigger.schedule'),
    api: t('tasks.trigger.api'),
  };
  const states: Record<ExecutionState, string> = {
    pending: t('tasks.state.pending'),
    running: t('tasks.state.running'),
    success: t('tasks.state.success'),
    failed: t('tasks.state.failed'),
    timeout: t('tasks.state.timeout'),
    cancelled: t('tasks.state.cancelled'),
  };
  return { types, targets, statuses, triggers, states };
}

export const STATE_COLORS: Record<ExecutionState, ChipColor> = {
  pending: 'default',
  running: 'info',
  success: 'success',
  failed: 'error',
  timeout: 'warning',
  cancelled: 'default',
};

export function ExecutionStateChip({ state }: { state: ExecutionState }) {
  const { states } = useTaskLabels();
  return <Chip size="small" color={STATE_COLORS[state]} label={states[state]} data-testid="execution-state" />;
}

export function TaskStatusChip({ status }: { status: TaskStatus }) {
  const { statuses } = useTaskLabels();
  return <Chip size="small" variant="outlined" color={status === 'enabled' ? 'success' : 'default'} label={statuses[status]} />;
}

/** An execution as a whole: running; or finished, failed if a node failed or timed out. */
export function ExecutionSummaryChip({ execution }: { execution: Pick<ExecutionSummary, 'status' | 'counts'> }) {
  const { t } = useTranslation();
  const { status, counts } = execution;
  const [label, color]: [string, ChipColor] =
    status === 'running'
      ? [t('tasks.execution.running'), 'info']
      : counts.failed + counts.timeout > 0
        ? [t('tasks.execution.failed'), 'error']
        : counts.cancelled > 0
          ? [t('tasks.execution.cancelled'), 'default']
          : [t('tasks.execution.succeeded'), 'success'];
  return <Chip size="small" color={color} label={label} data-testid="execution-status" />;
}

/** The count of nodes in each state, the ones with none left out. */
export function StateCounts({ counts }: { counts: ExecutionSummary['counts'] }) {
  const { states } = useTaskLabels();
  const shown = (Object.keys(STATE_COLORS) as ExecutionState[]).filter((state) => counts[state] > 0);
  return (
    <>
      {shown.map((state) => (
        <Chip key={state} size="small" variant="outlined" color={STATE_COLORS[state]} label={`${states[state]} ${counts[state]}`} sx={{ mr: 0.5 }} />
      ))}
    </>
  );
}
