import { Alert, Box, Chip, CircularProgress, Typography } from '@mui/material';
import { useEffect, useRef } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError } from '@/api/client';
import { ExecutionStateChip } from '@/features/tasks/components/labels';
import { useNodeOutput } from '@/features/tasks/hooks/useNodeOutput';

/** One node's output, live while it runs; kept scrolled to the end unless the reader scrolled up. */
export function NodeOutput({ executionId, nodeId, nodeName }: { executionId: string; nodeId: number; nodeName: string }) {
  const { t } = useTranslation();
  const output = useNodeOutput(executionId, nodeId);
  const box = useRef<HTMLPreElement>(null);
  const pinned = useRef(true);

  useEffect(() => {
    const element = box.current;
    if (element && pinned.current) element.scrollTop = element.scrollHeight;
  }, [output.text]);

  const live = !output.end && !output.error;
  return (
    <Box sx={{ display: 'grid', gap: 1 }} data-testid="node-output">
      <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, flexWrap: 'wrap' }}>
        <Typography variant="subtitle1" component="h2" sx={{ fontWeight: 600 }}>
          {t('tasks.output.title', { node: nodeName })}
        </Typography>
        {live ? (
          <Chip
            size="small"
            variant="outlined"
            color={output.reconnecting ? 'warning' : 'info'}
            icon={<CircularProgress size={12} />}
            label={output.reconnecting ? t('tasks.output.reconnecting') : output.mode === 'poll' ? t('tasks.output.polling') : t('tasks.output.live')}
          />
        ) : null}
        {output.end ? <ExecutionStateChip state={output.end.status} /> : null}
        {output.end && output.end.exit_code !== null ? (
          <Typography variant="body2" color="text.secondary" data-testid="output-exit-code">
            {t('tasks.exitCodeIs', { code: output.end.exit_code })}
          </Typography>
        ) : null}
      </Box>
      {output.error ? (
        <Alert severity={output.error instanceof ApiError && output.error.status === 403 ? 'info' : 'error'}>
          {output.error instanceof ApiError && output.error.status === 403
            ? t('tasks.output.forbidden')
            : output.error instanceof ApiError
              ? `${output.error.message} (${output.error.code})`
              : t('common.loadFailed')}
        </Alert>
      ) : null}
      {output.end?.truncated ? <Alert severity="warning">{t('tasks.output.truncated')}</Alert> : null}
      {output.end?.error ? <Alert severity="error">{output.end.error}</Alert> : null}
      <Box
        component="pre"
        ref={box}
        onScroll={(e) => {
          const el = e.currentTarget;
          pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
        aria-label={t('tasks.output.label', { node: nodeName })}
        data-testid="output-text"
        sx={{
          m: 0,
          p: 1.5,
          minHeight: 160,
          maxHeight: 480,
          overflow: 'auto',
          bgcolor: '#0f172a',
          color: '#e2e8f0',
          borderRadius: 1,
          fontFamily: 'monospace',
          fontSize: 13,
          whiteSpace: 'pre-wrap',
          wordBreak: 'break-all',
        }}
      >
        {output.text || (live ? t('tasks.output.waiting') : t('tasks.output.empty'))}
      </Box>
    </Box>
  );
}
