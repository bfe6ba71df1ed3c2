import {
  Alert,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControlLabel,
  MenuItem,
  Switch,
  TextField,
} from '@mui/material';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, fieldErrors } from '@/api/client';
import { keys } from '@/api/keys';
import { CHANNEL_TYPES, createChannel, updateChannel, type Channel, type ChannelType } from '@/features/alerts/api/alerts';

const WITH_URL = new Set<ChannelType>(['webhook', 'dingtalk', 'wecom', 'feishu']);
const WITH_SECRET = new Set<ChannelType>(['webhook', 'dingtalk', 'feishu']);

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** The settings a channel of `type` is sent with; a secret left empty on an edit is kept. */
function config(type: ChannelType, url: string, secret: string, recipients: string): Record<string, unknown> {
  if (type === 'email') return { recipients: recipients.split(/[\s,;]+/).filter(Boolean) };
  return { url: url.trim(), ...(WITH_SECRET.has(type) && secret ? { secret } : {}) };
}

/** Add or edit a notification channel (admin), with the fields its type takes. */
export function ChannelDialog({ channel, onClose }: { channel: Channel | null; onClose: () => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const stored = channel?.config ?? {};
  const [name, setName] = useState(channel?.name ?? '');
  const [type, setType] = useState<ChannelType>(channel?.type ?? 'webhook');
  const [enabled, setEnabled] = useState(channel?.enabled ?? true);
  const [url, setUrl] = useState(text(stored.url));
  const [secret, setSecret] = useState('');
  const [recipients, setRecipients] = useState(Array.isArray(stored.recipients) ? stored.recipients.join(', ') : '');
  const save = useMutation({
    mutationFn: () => {
      const settings = config(type, url, secret, recipients);
      return channel
        ? updateChannel(channel.id, { name: name.trim(), enabled, config: settings })
        : createChannel({ name: name.trim(), type, enabled, config: settings });
    },
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: keys.alertChannels });
      onClose();
    },
  });
  const errors = fieldErrors(save.error);
  const about = (prefix: string) => Object.entries(errors).find(([k]) => k === prefix || k.startsWith(`${prefix}.`))?.[1];
  const shown = ['name', 'config.url', 'config.secret', 'config.recipients'].some((f) => about(f));
  const secretSet = stored.secret_set === true;
  const types: Record<ChannelType, string> = {
    webhook: t('alerts.channels.typeWebhook'),
    email: t('alerts.channels.typeEmail'),
    dingtalk: t('alerts.channels.typeDingtalk'),
    wecom: t('alerts.channels.typeWecom'),
    feishu: t('alerts.channels.typeFeishu'),
  };
  const secretHint =
    channel && secretSet
      ? t('alerts.channels.secretKept')
      : type === 'webhook'
        ? t('alerts.channels.secretWebhook')
        : t('alerts.channels.secretRobot');

  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="sm">
      <DialogTitle>{channel ? t('alerts.channels.edit') : t('alerts.channels.create')}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
        {save.isError && !shown ? (
          <Alert severity="error">{save.error instanceof ApiError ? save.error.message : t('common.saveFailed')}</Alert>
        ) : null}
        <TextField
          label={t('alerts.channels.name')}
          value={name}
          onChange={(e) => setName(e.target.value)}
          required
          error={Boolean(about('name'))}
          helperText={about('name')}
        />
        <TextField select label={t('alerts.channels.type')} value={type} disabled={channel !== null} onChange={(e) => setType(e.target.value as ChannelType)}>
          {CHANNEL_TYPES.map((value) => (
            <MenuItem key={value} value={value}>
              {types[value]}
            </MenuItem>
          ))}
        </TextField>
        {WITH_URL.has(type) ? (
          <TextField
            label={t('alerts.channels.url')}
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            required
            placeholder="https://"
            error={Boolean(about('config.url'))}
            helperText={about('config.url') ?? (type === 'webhook' ? t('alerts.channels.urlWebhook') : t('alerts.channels.urlRobot'))}
          />
        ) : null}
        {WITH_SECRET.has(type) ? (
          <TextField
            label={t('alerts.channels.secret')}
            type="password"
            autoComplete="new-password"
            value={secret}
            onChange={(e) => setSecret(e.target.value)}
            required={type === 'webhook' && !(channel && secretSet)}
            error={Boolean(about('config.secret'))}
            helperText={about('config.secret') ?? secretHint}
          />
        ) : null}
        {type === 'email' ? (
          <TextField
            label={t('alerts.channels.recipients')}
            value={recipients}
            onChange={(e) => setRecipients(e.target.value)}
            required
            multiline
            minRows={2}
            error={Boolean(about('config.recipients'))}
            helperText={about('config.recipients') ?? t('alerts.channels.recipientsHint')}
          />
        ) : null}
        <FormControlLabel control={<Switch checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />} label={t('alerts.channels.enabled')} />
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{t('common.cancel')}</Button>
        <Button variant="contained" disabled={!name.trim() || save.isPending} onClick={() => save.mutate()}>
          {t('common.save')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
