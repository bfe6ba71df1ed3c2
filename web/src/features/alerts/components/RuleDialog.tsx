import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControlLabel,
  InputAdornment,
  MenuItem,
  Switch,
  TextField,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, fieldErrors } from '@/api/client';
import { groupsQuery } from '@/api/groups';
import { keys } from '@/api/keys';
import {
  BOOLEAN_METRICS,
  channelsQuery,
  createRule,
  METRICS,
  OPERATORS,
  RULE_TARGETS,
  SEVERITIES,
  updateRule,
  type Metric,
  type Operator,
  type Rule,
  type RuleCreate,
  type RuleTarget,
  type Severity,
} from '@/features/alerts/api/alerts';

interface Form {
  name: string;
  metric: Metric;
  operator: Operator;
  threshold: string;
  duration: string;
  keepFiringFor: string;
  severity: Severity;
  targetType: RuleTarget;
  targetValue: string[];
  targetText: string; // tags or node ids, comma separated
  channels: number[];
  enabled: boolean;
}

function initial(rule: Rule | null): Form {
  const listed = rule && (rule.target_type === 'tag' || rule.target_type === 'node');
  return {
    name: rule?.name ?? '',
    metric: (rule?.metric as Metric | undefined) ?? 'cpu_usage',
    operator: rule?.operator ?? 'gt',
    threshold: rule?.threshold != null ? String(rule.threshold) : '',
    duration: String(rule?.duration ?? 60),
    keepFiringFor: String(rule?.keep_firing_for ?? 0),
    severity: rule?.severity ?? 'warning',
    targetType: rule?.target_type ?? 'all',
    targetValue: rule?.target_type === 'group' ? rule.target_value : [],
    targetText: listed ? rule.target_value.join(', ') : '',
    channels: rule?.notification_channels ?? [],
    enabled: rule?.enabled ?? true,
  };
}

/** A number typed in a field; an empty one is sent as null so the server names the field. */
function num(text: string): number {
  return text.trim() === '' ? Number.NaN : Number(text);
}

function body(form: Form): RuleCreate {
  const boolean = BOOLEAN_METRICS.has(form.metric);
  const listed = form.targetText.split(',').map((v) => v.trim()).filter(Boolean);
  return {
    name: form.name.trim(),
    metric: form.metric,
    ...(boolean ? {} : { operator: form.operator, threshold: num(form.threshold) }),
    duration: num(form.duration),
    keep_firing_for: num(form.keepFiringFor),
    severity: form.severity,
    target_type: form.targetType,
    target_value: form.targetType === 'group' ? form.targetValue : form.targetType === 'all' ? [] : listed,
    notification_channels: form.channels,
    enabled: form.enabled,
  };
}

/** Create or edit an alert rule (admin); the server's complaints appear beside their fields. */
export function RuleDialog({ rule, onClose }: { rule: Rule | null; onClose: () => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [form, setForm] = useState<Form>(() => initial(rule));
  const groups = useQuery({ ...groupsQuery, enabled: form.targetType === 'group' });
  const channels = useQuery(channelsQuery);
  const save = useMutation({
    mutationFn: () => (rule ? updateRule(rule.id, body(form)) : createRule(body(form))),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: keys.alertRules });
      onClose();
    },
  });
  const errors = fieldErrors(save.error);
  const error = (field: string) => ({ error: Boolean(errors[field]), helperText: errors[field] });
  const shownFields = ['name', 'metric', 'operator', 'threshold', 'duration', 'keep_firing_for', 'severity', 'target_value', 'notification_channels'];
  const general = save.isError && !shownFields.some((field) => Object.keys(errors).some((k) => k === field || k.startsWith(`${field}.`)));
  const boolean = BOOLEAN_METRICS.has(form.metric);
  const set = (patch: Partial<Form>) => setForm({ ...form, ...patch });
  const targets: Record<RuleTarget, string> = {
    all: t('alerts.rules.targetAll'),
    group: t('alerts.rules.targetGroup'),
    tag: t('alerts.rules.targetTag'),
    node: t('alerts.rules.targetNode'),
  };
  const severities: Record<Severity, string> = {
    critical: t('severity.critical'),
    warning: t('severity.warning'),
    info: t('severity.info'),
  };
  const seconds = { input: { endAdornment: <InputAdornment position="end">{t('alerts.rules.seconds')}</InputAdornment> } };
  const channelError = Object.entries(errors).find(([k]) => k.startsWith('notification_channels'))?.[1];

  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="sm">
      <DialogTitle>{rule ? t('alerts.rules.edit') : t('alerts.rules.create')}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
        {general ? (
          <Alert severity="error" data-testid="rule-error">
            {save.error instanceof ApiError ? save.error.message : t('common.saveFailed')}
          </Alert>
        ) : null}
        <TextField label={t('alerts.rules.name')} value={form.name} onChange={(e) => set({ name: e.target.value })} required {...error('name')} />
        <Box sx={{ display: 'grid', gridTemplateColumns: boolean ? '1fr' : '2fr 1fr 1fr', gap: 2 }}>
          <TextField select label={t('alerts.rules.metric')} value={form.metric} onChange={(e) => set({ metric: e.target.value as Metric })} {...error('metric')}>
            {METRICS.map((metric) => (
              <MenuItem key={metric} value={metric}>
                {metric}
              </MenuItem>
            ))}
          </TextField>
          {boolean ? null : (
            <>
              <TextField select label={t('alerts.rules.operator')} value={form.operator} onChange={(e) => set({ operator: e.target.value as Operator })} {...error('operator')}>
                {Object.entries(OPERATORS).map(([value, symbol]) => (
                  <MenuItem key={value} value={value}>
                    {symbol}
                  </MenuItem>
                ))}
              </TextField>
              <TextField
                label={t('alerts.rules.threshold')}
                type="number"
                value={form.threshold}
                onChange={(e) => set({ threshold: e.target.value })}
                required
                {...error('threshold')}
              />
            </>
          )}
        </Box>
        <Box sx={{ display: 'grid', gridTemplateColumns: '1fr 1fr 1fr', gap: 2 }}>
          <TextField label={t('alerts.rules.duration')} type="number" value={form.duration} onChange={(e) => set({ duration: e.target.value })} slotProps={seconds} {...error('duration')} />
          <TextField
            label={t('alerts.rules.keepFiringFor')}
            type="number"
            value={form.keepFiringFor}
            onChange={(e) => set({ keepFiringFor: e.target.value })}
            slotProps={seconds}
            {...error('keep_firing_for')}
          />
          <TextField select label={t('alerts.severity')} value={form.severity} onChange={(e) => set({ severity: e.target.value as Severity })} {...error('severity')}>
            {SEVERITIES.map((value) => (
              <MenuItem key={value} value={value}>
                {severities[value]}
              </MenuItem>
            ))}
          </TextField>
        </Box>
        <Box sx={{ display: 'grid', gridTemplateColumns: '1fr 2fr', gap: 2 }}>
          <TextField
            select
            label={t('alerts.rules.target')}
            value={form.targetType}
            onChange={(e) => set({ targetType: e.target.value as RuleTarget, targetValue: [], targetText: '' })}
          >
            {RULE_TARGETS.map((value) => (
              <MenuItem key={value} value={value}>
                {targets[value]}
              </MenuItem>
            ))}
          </TextField>
          {form.targetType === 'group' ? (
            <TextField
              select
              label={t('alerts.rules.targetGroup')}
              value={groups.data ? form.targetValue : []}
              onChange={(e) => set({ targetValue: e.target.value as unknown as string[] })}
              slotProps={{ select: { multiple: true } }}
              {...error('target_value')}
            >
              {(groups.data ?? []).map((group) => (
                <MenuItem key={group.id} value={String(group.id)}>
                  {group.name}
                </MenuItem>
              ))}
            </TextField>
          ) : null}
          {form.targetType === 'tag' || form.targetType === 'node' ? (
            <TextField
              label={form.targetType === 'tag' ? t('alerts.rules.targetTag') : t('alerts.rules.targetNodeIds')}
              value={form.targetText}
              onChange={(e) => set({ targetText: e.target.value })}
              error={Boolean(errors.target_value)}
              helperText={errors.target_value ?? t('alerts.rules.commaHint')}
            />
          ) : null}
        </Box>
        <TextField
          select
          label={t('alerts.rules.channels')}
          value={channels.data ? form.channels : []}
          onChange={(e) => set({ channels: e.target.value as unknown as number[] })}
          slotProps={{ select: { multiple: true } }}
          error={Boolean(channelError)}
          helperText={channelError ?? (channels.data?.length === 0 ? t('alerts.rules.noChannels') : undefined)}
        >
          {(channels.data ?? []).map((channel) => (
            <MenuItem key={channel.id} value={channel.id}>
              {`${channel.name} (${channel.type})`}
            </MenuItem>
          ))}
        </TextField>
        <FormControlLabel
          control={<Switch checked={form.enabled} onChange={(e) => set({ enabled: e.target.checked })} />}
          label={t('alerts.rules.enabled')}
        />
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{t('common.cancel')}</Button>
        <Button variant="contained" disabled={!form.name.trim() || save.isPending} onClick={() => save.mutate()}>
          {t('common.save')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
