import { Alert, Button, Dialog, DialogActions, DialogContent, DialogTitle, MenuItem, TextField } from '@mui/material';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, fieldErrors } from '@/api/client';
import { keys } from '@/api/keys';
import { createSilence, SILENCE_TARGETS, type SilenceTarget } from '@/features/alerts/api/alerts';

export const SILENCE_HOURS = [1, 4, 24, 72, 168] as const;

export interface SilencePreset {
  targetType: SilenceTarget;
  targetValue: string;
  /** What the target is called (a hostname, a rule's name), shown instead of its id. */
  targetLabel?: string;
}

/** Mute a rule, a node, a group or a tag for a while; fixed when opened from an alert. */
export function SilenceDialog({ preset, onClose }: { preset?: SilencePreset; onClose: () => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [targetType, setTargetType] = useState<SilenceTarget>(preset?.targetType ?? 'node');
  const [targetValue, setTargetValue] = useState(preset?.targetValue ?? '');
  const [hours, setHours] = useState<number>(4);
  const [reason, setReason] = useState('');
  const save = useMutation({
    mutationFn: () =>
      createSilence({
        target_type: targetType,
        target_value: targetValue.trim(),
        reason: reason.trim(),
        ends_at: new Date(Date.now() + hours * 3600_000).toISOString(),
      }),
    onSuccess: async () => {
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.alertSilences }),
        queryClient.invalidateQueries({ queryKey: keys.alerts }),
      ]);
      onClose();
    },
  });
  const errors = fieldErrors(save.error);
  const general = save.isError && Object.keys(errors).length === 0;
  const targets: Record<SilenceTarget, string> = {
    rule: t('alerts.silence.targetRule'),
    node: t('alerts.silence.targetNode'),
    group: t('alerts.silence.targetGroup'),
    tag: t('alerts.silence.targetTag'),
  };
  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="xs">
      <DialogTitle>{t('alerts.silence.title')}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
        {general ? (
          <Alert severity="error">{save.error instanceof ApiError ? save.error.message : t('common.saveFailed')}</Alert>
        ) : null}
        <TextField
          select
          label={t('alerts.silence.targetType')}
          value={targetType}
          disabled={preset !== undefined}
          onChange={(e) => setTargetType(e.target.value as SilenceTarget)}
        >
          {SILENCE_TARGETS.map((value) => (
            <MenuItem key={value} value={value}>
              {targets[value]}
            </MenuItem>
          ))}
        </TextField>
        <TextField
          label={t('alerts.silence.targetValue')}
          value={preset?.targetLabel ?? targetValue}
          disabled={preset !== undefined}
          onChange={(e) => setTargetValue(e.target.value)}
          error={Boolean(errors.target_value)}
          helperText={errors.target_value ?? (preset ? undefined : t('alerts.silence.targetHint'))}
          required
        />
        <TextField
          select
          label={t('alerts.silence.duration')}
          value={hours}
          onChange={(e) => setHours(Number(e.target.value))}
          error={Boolean(errors.ends_at)}
          helperText={errors.ends_at}
        >
          {SILENCE_HOURS.map((value) => (
            <MenuItem key={value} value={value}>
              {value < 24 ? t('alerts.silence.hours', { n: value }) : t('alerts.silence.days', { n: value / 24 })}
            </MenuItem>
          ))}
        </TextField>
        <TextField
          label={t('alerts.silence.reason')}
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          error={Boolean(errors.reason)}
          helperText={errors.reason}
          required
          multiline
          minRows={2}
        />
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{t('common.cancel')}</Button>
        <Button
          variant="contained"
          disabled={!reason.trim() || !targetValue.trim() || save.isPending}
          onClick={() => save.mutate()}
        >
          {t('alerts.silence.submit')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
