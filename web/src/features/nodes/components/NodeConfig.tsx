import { Alert, Box, Button, Chip, Paper, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { groupsQuery } from '@/api/groups';
import { keys } from '@/api/keys';
import { ConfigEditorDialog } from '@/components/ConfigEditor';
import { formatDateTime } from '@/components/format';
import { ErrorState, Loading } from '@/components/PageState';
import {
  effectiveConfigQuery,
  nodeConfigQuery,
  setNodeConfig,
  type ConfigDelivery,
} from '@/features/nodes/api/nodes';

/** Whether the node's daemon has applied the configuration last sent to it. */
function DeliveryState({ delivery }: { delivery: ConfigDelivery | null | undefined }) {
  const { t, i18n } = useTranslation();
  if (!delivery) {
    return (
      <Alert severity="info" data-testid="config-delivery">
        {t('config.delivery.none')}
      </Alert>
    );
  }
  const when = formatDateTime(delivery.done_at ?? delivery.created_at, i18n.language);
  const shown = {
    pending: ['info', t('config.delivery.pending')],
    sent: ['info', t('config.delivery.sent')],
    done: ['success', t('config.delivery.done', { when })],
    failed: ['error', t('config.delivery.failed', { error: delivery.error ?? '-' })],
    expired: ['warning', t('config.delivery.expired')],
  } as const;
  const [severity, text] = shown[delivery.state];
  return (
    <Alert severity={severity} data-testid="config-delivery">
      {text}
      {delivery.current ? '' : ` ${t('config.delivery.stale')}`}
    </Alert>
  );
}

/** The node's effective configuration, where each key comes from, and its own level's editor. */
export function NodeConfig({ nodeId }: { nodeId: number }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const effective = useQuery(effectiveConfigQuery(nodeId));
  const groups = useQuery(groupsQuery);
  const [editing, setEditing] = useState(false);
  const own = useQuery({ ...nodeConfigQuery(nodeId), enabled: editing });
  const save = useMutation({
    mutationFn: (config: Record<string, string>) => setNodeConfig(nodeId, config),
    onSuccess: async () => {
      setEditing(false);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.nodeConfig(nodeId) }),
        queryClient.invalidateQueries({ queryKey: keys.nodeEffectiveConfig(nodeId) }),
      ]);
    },
  });
  const groupNames = new Map((groups.data ?? []).map((group) => [`group:${group.id}`, group.name]));
  const source = (value: string) => {
    if (value === 'default') return t('config.sourceDefault');
    if (value === 'node') return t('config.sourceNode');
    return t('config.sourceGroup', { name: groupNames.get(value) ?? value.slice('group:'.length) });
  };
  const entries = Object.entries(effective.data?.config ?? {}).sort(([a], [b]) => a.localeCompare(b));

  return (
    <Paper sx={{ p: 2 }} data-testid="node-config">
      <Box sx={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', mb: 1 }}>
        <Typography variant="h6">{t('config.title')}</Typography>
        <Button variant="outlined" size="small" onClick={() => setEditing(true)}>
          {t('config.editNode')}
        </Button>
      </Box>
      {effective.isPending ? <Loading /> : null}
      {effective.isError ? <ErrorState error={effective.error} onRetry={() => void effective.refetch()} /> : null}
      {effective.data ? (
        <>
          <DeliveryState delivery={effective.data.delivery} />
          <Table size="small" sx={{ mt: 1 }}>
            <TableHead>
              <TableRow>
                <TableCell>{t('config.key')}</TableCell>
                <TableCell>{t('config.value')}</TableCell>
                <TableCell>{t('config.source')}</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {entries.map(([key, value]) => (
                <TableRow key={key}>
                  <TableCell sx={{ fontFamily: 'monospace' }}>{key}</TableCell>
                  <TableCell sx={{ fontFamily: 'monospace', wordBreak: 'break-all' }}>{value}</TableCell>
                  <TableCell>
                    <Chip size="small" variant="outlined" label={source(effective.data.sources[key] ?? 'default')} />
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </>
      ) : null}
      {editing && own.isPending ? <Loading /> : null}
      {editing && own.isError ? <ErrorState error={own.error} /> : null}
      {editing && own.data ? (
        <ConfigEditorDialog
          title={t('config.editNode')}
          description={t('config.nodeHint')}
          config={own.data.config}
          saving={save.isPending}
          error={save.error}
          onSave={(config) => save.mutate(config)}
          onClose={() => {
            setEditing(false);
            save.reset();
          }}
        />
      ) : null}
    </Paper>
  );
}
