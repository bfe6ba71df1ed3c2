import { Alert, Box, Button, Paper, Typography } from '@mui/material';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { commandQuery, sendCommand, type CommandType } from '@/features/nodes/api/nodes';
import { useCan } from '@/stores/auth';

function CommandState({ id }: { id: string }) {
  const { t } = useTranslation();
  const command = useQuery(commandQuery(id));
  if (!command.data) return null;
  const state = {
    pending: t('commands.state.pending'),
    sent: t('commands.state.sent'),
    done: t('commands.state.done'),
    failed: t('commands.state.failed'),
    expired: t('commands.state.expired'),
  }[command.data.state];
  const severity = ({ pending: 'info', sent: 'info', done: 'success', failed: 'error', expired: 'warning' } as const)[
    command.data.state
  ];
  return (
    <Alert severity={severity} data-testid="command-state">
      {t('commands.status', { type: command.data.type, state })}
      {command.data.error ? ` — ${command.data.error}` : ''}
    </Alert>
  );
}

/** Commands an operator may send to the node's daemon; hidden from viewers. */
export function NodeCommands({ nodeId }: { nodeId: number }) {
  const { t } = useTranslation();
  const allowed = useCan('node.command');
  const [last, setLast] = useState<string | null>(null);
  const mutation = useMutation({
    mutationFn: (type: CommandType) => sendCommand(nodeId, type),
    onSuccess: (result) => setLast(result.ids[0] ?? null),
  });
  if (!allowed) return null;
  return (
    <Paper sx={{ p: 2 }}>
      <Typography variant="h6" gutterBottom>
        {t('commands.title')}
      </Typography>
      <Box sx={{ display: 'flex', gap: 1, mb: 1 }}>
        <Button variant="outlined" disabled={mutation.isPending} onClick={() => mutation.mutate('ping')}>
          {t('commands.ping')}
        </Button>
        <Button variant="outlined" color="warning" disabled={mutation.isPending} onClick={() => mutation.mutate('restart')}>
          {t('commands.restart')}
        </Button>
      </Box>
      {mutation.isError ? <Alert severity="error">{t('commands.sendFailed')}</Alert> : null}
      {last ? <CommandState id={last} /> : null}
    </Paper>
  );
}
