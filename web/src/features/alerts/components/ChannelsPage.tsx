import AddIcon from '@mui/icons-material/Add';
import DeleteIcon from '@mui/icons-material/Delete';
import EditIcon from '@mui/icons-material/Edit';
import SendIcon from '@mui/icons-material/Send';
import {
  Alert,
  Box,
  Button,
  Chip,
  IconButton,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  Tooltip,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { PageHeader } from '@/components/PageHeader';
import { Empty, ErrorState, Loading } from '@/components/PageState';
import { channelsQuery, deleteChannel, testChannel, type Channel, type ChannelTestResult } from '@/features/alerts/api/alerts';
import { AlertsTabs } from '@/features/alerts/components/AlertsTabs';
import { ChannelDialog } from '@/features/alerts/components/ChannelDialog';
import { useCan } from '@/stores/auth';

/** Where a channel delivers: its URL's host, or its recipients. */
function destination(channel: Channel): string {
  const { url, recipients } = channel.config;
  if (Array.isArray(recipients)) return recipients.join(', ');
  if (typeof url !== 'string') return '-';
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export function ChannelsPage() {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const admin = useCan('alert.manage');
  const channels = useQuery({ ...channelsQuery, enabled: admin });
  const [editing, setEditing] = useState<Channel | null | 'new'>(null);
  const [deleting, setDeleting] = useState<Channel | null>(null);
  const [tested, setTested] = useState<{ name: string; result: ChannelTestResult } | null>(null);
  const removal = useMutation({
    mutationFn: (id: number) => deleteChannel(id),
    onSuccess: async () => {
      setDeleting(null);
      await queryClient.invalidateQueries({ queryKey: keys.alertChannels });
    },
  });
  const test = useMutation({
    mutationFn: (channel: Channel) => testChannel(channel.id),
    onMutate: () => setTested(null),
    onSuccess: (result, channel) => setTested({ name: channel.name, result }),
  });
  const types = {
    webhook: t('alerts.channels.typeWebhook'),
    email: t('alerts.channels.typeEmail'),
    dingtalk: t('alerts.channels.typeDingtalk'),
    wecom: t('alerts.channels.typeWecom'),
    feishu: t('alerts.channels.typeFeishu'),
  };

  if (!admin) {
    return (
      <Box>
        <PageHeader title={t('alerts.title')} />
        <AlertsTabs />
        <Empty message={t('common.forbidden')} />
      </Box>
    );
  }
  return (
    <Box>
      <PageHeader
        title={t('alerts.title')}
        actions={
          <Button variant="contained" startIcon={<AddIcon />} onClick={() => setEditing('new')}>
            {t('alerts.channels.create')}
          </Button>
        }
      />
      <AlertsTabs />
      {tested ? (
        <Alert
          severity={tested.result.status === 'sent' ? 'success' : 'error'}
          onClose={() => setTested(null)}
          sx={{ mb: 2 }}
          data-testid="channel-test-result"
        >
          {tested.result.status === 'sent'
            ? t('alerts.channels.testSent', { name: tested.name })
            : t('alerts.channels.testFailed', { name: tested.name, error: tested.result.error ?? '-' })}
        </Alert>
      ) : null}
      {test.isError ? <ErrorState error={test.error} /> : null}
      <Paper>
        {channels.isPending ? <Loading /> : null}
        {channels.isError ? <ErrorState error={channels.error} onRetry={() => void channels.refetch()} /> : null}
        {channels.data?.length === 0 ? <Empty message={t('alerts.channels.empty')} /> : null}
        {channels.data && channels.data.length > 0 ? (
          <TableContainer>
            <Table>
              <TableHead>
                <TableRow>
                  <TableCell>{t('alerts.channels.name')}</TableCell>
                  <TableCell>{t('alerts.channels.type')}</TableCell>
                  <TableCell>{t('alerts.channels.destination')}</TableCell>
                  <TableCell>{t('alerts.channels.enabled')}</TableCell>
                  <TableCell align="right">{t('common.actions')}</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {channels.data.map((channel) => (
                  <TableRow key={channel.id}>
                    <TableCell>{channel.name}</TableCell>
                    <TableCell>{types[channel.type]}</TableCell>
                    <TableCell sx={{ wordBreak: 'break-all' }}>{destination(channel)}</TableCell>
                    <TableCell>
                      <Chip
                        size="small"
                        variant="outlined"
                        color={channel.enabled ? 'success' : 'default'}
                        label={channel.enabled ? t('alerts.rules.on') : t('alerts.rules.off')}
                      />
                    </TableCell>
                    <TableCell align="right" sx={{ whiteSpace: 'nowrap' }}>
                      <Button
                        size="small"
                        startIcon={<SendIcon />}
                        disabled={test.isPending}
                        aria-label={`${t('alerts.channels.test')} ${channel.name}`}
                        onClick={() => test.mutate(channel)}
                      >
                        {t('alerts.channels.test')}
                      </Button>
                      <Tooltip title={t('alerts.channels.edit')}>
                        <IconButton aria-label={`${t('alerts.channels.edit')} ${channel.name}`} onClick={() => setEditing(channel)}>
                          <EditIcon />
                        </IconButton>
                      </Tooltip>
                      <Tooltip title={t('alerts.channels.delete')}>
                        <IconButton aria-label={`${t('alerts.channels.delete')} ${channel.name}`} onClick={() => setDeleting(channel)}>
                          <DeleteIcon />
                        </IconButton>
                      </Tooltip>
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </TableContainer>
        ) : null}
      </Paper>
      {editing ? <ChannelDialog channel={editing === 'new' ? null : editing} onClose={() => setEditing(null)} /> : null}
      <ConfirmDialog
        open={deleting !== null}
        title={t('alerts.channels.delete')}
        text={
          removal.isError && removal.error instanceof ApiError
            ? removal.error.message
            : t('alerts.channels.deleteText', { name: deleting?.name ?? '' })
        }
        confirm={t('alerts.channels.delete')}
        busy={removal.isPending}
        onConfirm={() => deleting && removal.mutate(deleting.id)}
        onClose={() => {
          setDeleting(null);
          removal.reset();
        }}
      />
    </Box>
  );
}
