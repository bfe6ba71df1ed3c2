import {
  Alert,
  Autocomplete,
  Box,
  Button,
  Chip,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  MenuItem,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, type Schemas } from '@/api/client';
import { groupsQuery } from '@/api/groups';
import { deploy, nodeSearchQuery, type DeployPlan, type DeployRequest, type Version } from '@/features/versions/api/versions';

type TargetType = 'all' | 'group' | 'tag' | 'node';
type Strategy = DeployRequest['strategy'] & string;
type NodeOption = Schemas['NodeRead'];

// How long each wave's orders wait for offline nodes (the API's default).
const ORDER_WAIT_SECONDS = 3600;
const WAVE_CHIPS = 40; // a wave shows this many names, then a count of the rest

function asInt(text: string): number {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
}

function Plan({ plan }: { plan: DeployPlan }) {
  const { t } = useTranslation();
  return (
    <Box data-testid="deploy-plan" sx={{ display: 'grid', gap: 1 }}>
      <Typography variant="subtitle1">
        {t('deploy.planSummary', { nodes: plan.total_nodes, waves: plan.batches.length })}
      </Typography>
      {plan.batches.map((wave, index) => (
        <Box key={index} data-testid="deploy-wave">
          <Typography variant="body2" color="text.secondary">
            {t('deploy.wave', { number: index + 1, nodes: wave.length })}
          </Typography>
          <Box sx={{ display: 'flex', flexWrap: 'wrap', gap: 0.5, mt: 0.5 }}>
            {wave.slice(0, WAVE_CHIPS).map((node) => (
              <Chip
                key={node.id}
                size="small"
                variant={node.offline ? 'outlined' : 'filled'}
                color={node.offline ? 'warning' : 'default'}
                label={node.offline ? `${node.name} · ${t('deploy.offline')}` : node.name}
              />
            ))}
            {wave.length > WAVE_CHIPS ? <Chip size="small" label={t('deploy.more', { number: wave.length - WAVE_CHIPS })} /> : null}
          </Box>
        </Box>
      ))}
      {plan.ineligible.length > 0 ? (
        <Box>
          <Typography variant="subtitle2" sx={{ mt: 1 }}>
            {t('deploy.ineligible', { number: plan.ineligible.length })}
          </Typography>
          <Table size="small" data-testid="deploy-ineligible">
            <TableHead>
              <TableRow>
                <TableCell>{t('nodes.hostname')}</TableCell>
                <TableCell>{t('deploy.reason')}</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {plan.ineligible.map((node) => (
                <TableRow key={node.id}>
                  <TableCell>{node.name}</TableCell>
                  <TableCell>{node.reason}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Box>
      ) : null}
    </Box>
  );
}

/** Deploy a version: pick the target and the strategy, read the dry run's plan, then start. */
export function DeployDialog({ version, onClose, onStarted }: { version: Version; onClose: () => void; onStarted: (batchId: string) => void }) {
  const { t } = useTranslation();
  const [targetType, setTargetType] = useState<TargetType>('all');
  const [groupIds, setGroupIds] = useState<string[]>([]);
  const [tags, setTags] = useState('');
  const [nodes, setNodes] = useState<NodeOption[]>([]);
  const [keyword, setKeyword] = useState('');
  const [strategy, setStrategy] = useState<Strategy>('all');
  const [batchSize, setBatchSize] = useState('10');
  const [canarySize, setCanarySize] = useState('1');
  const [bakeSeconds, setBakeSeconds] = useState('300');
  const [maxFailures, setMaxFailures] = useState('0');
  const groups = useQuery({ ...groupsQuery, enabled: targetType === 'group' });
  const found = useQuery({ ...nodeSearchQuery(keyword.trim()), enabled: targetType === 'node', placeholderData: keepPreviousData });

  const targetValue: string[] = {
    all: [],
    group: groupIds,
    tag: tags.split(',').map((tag) => tag.trim()).filter(Boolean),
    node: nodes.map((node) => String(node.id)),
  }[targetType];
  const numbers = {
    batch_size: asInt(batchSize),
    canary_size: asInt(canarySize),
    bake_seconds: asInt(bakeSeconds),
    max_failures: asInt(maxFailures),
  };
  const invalid = {
    batch_size: strategy !== 'all' && !(numbers.batch_size >= 1),
    canary_size: strategy === 'canary' && !(numbers.canary_size >= 1),
    bake_seconds: strategy === 'canary' && !(numbers.bake_seconds >= 0),
    max_failures: !(numbers.max_failures >= 0),
  };
  const ready = !Object.values(invalid).some(Boolean) && (targetType === 'all' || targetValue.length > 0);
  const body: DeployRequest = {
    component: version.component,
    version_id: version.id,
    target_type: targetType,
    target_value: targetValue,
    strategy,
    max_failures: numbers.max_failures,
    expires_in_seconds: ORDER_WAIT_SECONDS,
    dry_run: false,
    // Settings a strategy does not use go with the API's defaults.
    batch_size: strategy !== 'all' ? numbers.batch_size : 10,
    canary_size: strategy === 'canary' ? numbers.canary_size : 1,
    bake_seconds: strategy === 'canary' ? numbers.bake_seconds : 300,
  };
  const fingerprint = JSON.stringify(body);

  const preview = useMutation({
    mutationFn: (request: DeployRequest) => deploy({ ...request, dry_run: true }).then((plan) => ({ plan, fingerprint: JSON.stringify(request) })),
  });
  const start = useMutation({
    mutationFn: (request: DeployRequest) => deploy({ ...request, dry_run: false }),
    onSuccess: (plan) => {
      if (plan.batch_id) onStarted(plan.batch_id);
    },
  });
  // A plan is shown (and may be started) only for the settings it was made for.
  const plan = preview.data && preview.data.fingerprint === fingerprint ? preview.data.plan : null;
  const failure = start.error ?? (preview.data?.fingerprint === fingerprint || !preview.data ? preview.error : null);

  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="md">
      <DialogTitle>{t('deploy.title', { component: version.component, version: version.version, platform: `${version.os}/${version.arch}` })}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
        <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', sm: '200px 1fr' }, gap: 2 }}>
          <TextField select label={t('deploy.target')} value={targetType} onChange={(e) => setTargetType(e.target.value as TargetType)}>
            <MenuItem value="all">{t('deploy.targetAll')}</MenuItem>
            <MenuItem value="group">{t('deploy.targetGroup')}</MenuItem>
            <MenuItem value="tag">{t('deploy.targetTag')}</MenuItem>
            <MenuItem value="node">{t('deploy.targetNode')}</MenuItem>
          </TextField>
          {targetType === 'all' ? (
            <Typography color="text.secondary" sx={{ alignSelf: 'center' }}>
              {t('deploy.allHint')}
            </Typography>
          ) : null}
          {targetType === 'group' ? (
            <TextField
              select
              label={t('deploy.groups')}
              value={groupIds}
              onChange={(e) => setGroupIds(e.target.value as unknown as string[])}
              slotProps={{ select: { multiple: true } }}
              helperText={t('deploy.groupsHint')}
              data-testid="deploy-groups"
            >
              {(groups.data ?? []).map((group) => (
                <MenuItem key={group.id} value={String(group.id)}>
                  {group.name}
                </MenuItem>
              ))}
            </TextField>
          ) : null}
          {targetType === 'tag' ? (
            <TextField label={t('deploy.tags')} value={tags} onChange={(e) => setTags(e.target.value)} helperText={t('deploy.tagsHint')} />
          ) : null}
          {targetType === 'node' ? (
            <Autocomplete
              multiple
              options={found.data?.items ?? []}
              value={nodes}
              onChange={(_e, value) => setNodes(value)}
              inputValue={keyword}
              onInputChange={(_e, value) => setKeyword(value)}
              filterOptions={(options) => options}
              getOptionLabel={(node) => `${node.hostname} (${node.ip})`}
              isOptionEqualToValue={(a, b) => a.id === b.id}
              loading={found.isFetching}
              noOptionsText={t('deploy.noNodes')}
              renderInput={(params) => <TextField {...params} label={t('deploy.nodes')} helperText={t('deploy.nodesHint')} />}
            />
          ) : null}
        </Box>
        <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr 1fr', md: 'repeat(5, 1fr)' }, gap: 2 }}>
          <TextField select label={t('deploy.strategy')} value={strategy} onChange={(e) => setStrategy(e.target.value as Strategy)}>
            <MenuItem value="all">{t('deploy.strategyAll')}</MenuItem>
            <MenuItem value="rolling">{t('deploy.strategyRolling')}</MenuItem>
            <MenuItem value="canary">{t('deploy.strategyCanary')}</MenuItem>
          </TextField>
          {strategy === 'canary' ? (
            <TextField label={t('deploy.canarySize')} value={canarySize} onChange={(e) => setCanarySize(e.target.value)} error={invalid.canary_size} inputMode="numeric" />
          ) : null}
          {strategy === 'canary' ? (
            <TextField label={t('deploy.bakeSeconds')} value={bakeSeconds} onChange={(e) => setBakeSeconds(e.target.value)} error={invalid.bake_seconds} inputMode="numeric" />
          ) : null}
          {strategy !== 'all' ? (
            <TextField label={t('deploy.batchSize')} value={batchSize} onChange={(e) => setBatchSize(e.target.value)} error={invalid.batch_size} inputMode="numeric" />
          ) : null}
          <TextField
            label={t('deploy.maxFailures')}
            value={maxFailures}
            onChange={(e) => setMaxFailures(e.target.value)}
            error={invalid.max_failures}
            inputMode="numeric"
          />
        </Box>
        <Typography variant="body2" color="text.secondary">
          {{ all: t('deploy.strategyAllHint'), rolling: t('deploy.strategyRollingHint'), canary: t('deploy.strategyCanaryHint') }[strategy]}
        </Typography>
        {failure ? (
          <Alert severity="error" data-testid="deploy-error">
            {failure instanceof ApiError ? `${failure.message} (${failure.code})` : t('common.saveFailed')}
          </Alert>
        ) : null}
        {plan ? <Plan plan={plan} /> : null}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{t('common.cancel')}</Button>
        <Button variant="outlined" disabled={!ready || preview.isPending} onClick={() => preview.mutate(body)}>
          {t('deploy.preview')}
        </Button>
        <Button variant="contained" disabled={!ready || !plan || start.isPending} onClick={() => start.mutate(body)}>
          {t('deploy.start')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
