import { Alert, Button, Dialog, DialogActions, DialogContent, DialogTitle, FormControlLabel, Radio, RadioGroup } from '@mui/material';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { executeTask, type Task } from '@/features/tasks/api/tasks';
import { NodePicker } from '@/features/tasks/components/NodePicker';

/** Run a task now, on its own target or on nodes chosen for this run. */
export function ExecuteDialog({ task, onClose, onStarted }: { task: Task; onClose: () => void; onStarted: (executionId: string) => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [where, setWhere] = useState<'target' | 'nodes'>('target');
  const [nodes, setNodes] = useState<string[]>([]);
  const run = useMutation({
    mutationFn: () => executeTask(task.id, where === 'nodes' ? nodes.map(Number) : undefined),
    onSuccess: async (result) => {
      await queryClient.invalidateQueries({ queryKey: keys.task(task.id) });
      onStarted(result.execution_id);
    },
  });
  const ready = where === 'target' || nodes.length > 0;
  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="sm">
      <DialogTitle>{t('tasks.executeTitle', { name: task.name })}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2 }}>
        <RadioGroup value={where} onChange={(e) => setWhere(e.target.value as 'target' | 'nodes')}>
          <FormControlLabel value="target" control={<Radio />} label={t('tasks.executeOnTarget')} />
          <FormControlLabel value="nodes" control={<Radio />} label={t('tasks.executeOnNodes')} />
        </RadioGroup>
        {where === 'nodes' ? <NodePicker value={nodes} onChange={setNodes} label={t('tasks.form.nodes')} helperText={t('tasks.form.nodesHint')} /> : null}
        {task.status === 'disabled' ? <Alert severity="info">{t('tasks.disabledHint')}</Alert> : null}
        {run.error ? (
          <Alert severity="error" data-testid="execute-error">
            {run.error instanceof ApiError ? `${run.error.message} (${run.error.code})` : t('common.saveFailed')}
          </Alert>
        ) : null}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{t('common.cancel')}</Button>
        <Button variant="contained" disabled={!ready || run.isPending} onClick={() => run.mutate()}>
          {t('tasks.executeNow')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
