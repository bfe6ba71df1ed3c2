import AddIcon from '@mui/icons-material/Add';
import DeleteIcon from '@mui/icons-material/DeleteOutline';
import { Box, Button, Checkbox, FormControlLabel, IconButton, TextField, Tooltip, Typography } from '@mui/material';
import { useTranslation } from 'react-i18next';

import type { EnvRow } from '@/features/tasks/components/taskForm';

/** Environment variables of a script; a secret one is typed blind and read back masked. */
export function EnvEditor({ rows, onChange, error }: { rows: EnvRow[]; onChange: (rows: EnvRow[]) => void; error?: string }) {
  const { t } = useTranslation();
  const change = (index: number, patch: Partial<EnvRow>) => onChange(rows.map((row, i) => (i === index ? { ...row, ...patch } : row)));
  return (
    <Box sx={{ display: 'grid', gap: 1 }}>
      <Typography variant="subtitle2">{t('tasks.form.env')}</Typography>
      {rows.map((row, index) => (
        <Box key={index} sx={{ display: 'grid', gridTemplateColumns: '1fr 1.5fr auto auto', gap: 1, alignItems: 'center' }} data-testid="env-row">
          <TextField
            size="small"
            label={t('tasks.form.envName')}
            value={row.name}
            onChange={(e) => change(index, { name: e.target.value })}
            slotProps={{ htmlInput: { spellCheck: false, style: { fontFamily: 'monospace' } } }}
          />
          <TextField
            size="small"
            label={t('tasks.form.envValue')}
            type={row.secret ? 'password' : 'text'}
            value={row.value}
            onChange={(e) => change(index, { value: e.target.value })}
            autoComplete="off"
          />
          <Tooltip title={t('tasks.form.secretHint')} describeChild>
            <FormControlLabel
              control={<Checkbox size="small" checked={row.secret} onChange={(e) => change(index, { secret: e.target.checked })} />}
              label={t('tasks.form.secret')}
            />
          </Tooltip>
          <IconButton aria-label={t('tasks.form.removeEnv', { name: row.name || index + 1 })} onClick={() => onChange(rows.filter((_r, i) => i !== index))}>
            <DeleteIcon fontSize="small" />
          </IconButton>
        </Box>
      ))}
      {error ? (
        <Typography variant="caption" color="error">
          {error}
        </Typography>
      ) : null}
      <Box>
        <Button size="small" startIcon={<AddIcon />} onClick={() => onChange([...rows, { name: '', value: '', secret: false }])}>
          {t('tasks.form.addEnv')}
        </Button>
      </Box>
    </Box>
  );
}
