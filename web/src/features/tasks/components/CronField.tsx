import { Box, Chip, List, ListItem, ListItemText, TextField, Typography } from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';

import { ApiError } from '@/api/client';
import { formatDateTime } from '@/components/format';
import { scheduleQuery } from '@/features/tasks/api/tasks';
import { useDebounced } from '@/features/tasks/hooks/useDebounced';

const DEBOUNCE_MS = 400;

/** A cron expression, with presets and the next times it fires (asked of the Manager once the
 * typing pauses). A bad expression is named on the field; a Manager without the helper route
 * just shows no preview. */
export function CronField({ value, onChange, error }: { value: string; onChange: (value: string) => void; error?: string }) {
  const { t, i18n } = useTranslation();
  const settled = useDebounced(value.trim().replace(/\s+/g, ' '), DEBOUNCE_MS);
  const schedule = useQuery({ ...scheduleQuery(settled), enabled: settled !== '' });
  const refused = schedule.error instanceof ApiError && schedule.error.status === 400 ? schedule.error.message : undefined;
  const presets: [string, string][] = [
    ['*/5 * * * *', t('tasks.cron.every5Minutes')],
    ['0 * * * *', t('tasks.cron.hourly')],
    ['0 2 * * *', t('tasks.cron.daily')],
    ['0 3 * * 1', t('tasks.cron.weekly')],
  ];
  const shown = value.trim() !== '' && settled === value.trim().replace(/\s+/g, ' ') ? schedule.data : undefined;

  return (
    <Box sx={{ display: 'grid', gap: 1 }}>
      <TextField
        label={t('tasks.form.cron')}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        placeholder="*/5 * * * *"
        error={Boolean(error ?? refused)}
        helperText={error ?? refused ?? t('tasks.cron.hint')}
        slotProps={{ htmlInput: { spellCheck: false, style: { fontFamily: 'monospace' } } }}
      />
      <Box sx={{ display: 'flex', gap: 0.5, flexWrap: 'wrap' }}>
        {presets.map(([expr, label]) => (
          <Chip key={expr} size="small" variant={value.trim() === expr ? 'filled' : 'outlined'} label={label} onClick={() => onChange(expr)} />
        ))}
      </Box>
      {shown ? (
        <Box data-testid="cron-next-runs">
          <Typography variant="body2" color="text.secondary">
            {t('tasks.cron.nextRuns')}
          </Typography>
          <List dense disablePadding>
            {shown.next_runs.map((run) => (
              <ListItem key={run} disableGutters sx={{ py: 0 }}>
                <ListItemText primary={formatDateTime(run, i18n.language)} />
              </ListItem>
            ))}
          </List>
        </Box>
      ) : null}
      {value.trim() === '' ? (
        <Typography variant="body2" color="text.secondary">
          {t('tasks.cron.none')}
        </Typography>
      ) : null}
    </Box>
  );
}
