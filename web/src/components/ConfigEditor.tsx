import AddIcon from '@mui/icons-material/Add';
import DeleteIcon from '@mui/icons-material/Delete';
import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  IconButton,
  TextField,
  Tooltip,
} from '@mui/material';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError, fieldErrors } from '@/api/client';

export type ConfigMap = Record<string, string>;
interface Row {
  id: number;
  key: string;
  value: string;
}

const KEY = /^[a-z0-9_.]{1,64}$/;
const MAX_VALUE = 1024;
let nextId = 0;

function rowsOf(config: ConfigMap): Row[] {
  return Object.entries(config).map(([key, value]) => ({ id: nextId++, key, value }));
}

/** What is wrong with each row before it is sent (the server checks known keys' values). */
function problems(rows: Row[], messages: { key: string; duplicate: string; value: string }): Map<number, string> {
  const found = new Map<number, string>();
  const seen = new Set<string>();
  for (const row of rows) {
    if (!KEY.test(row.key)) found.set(row.id, messages.key);
    else if (seen.has(row.key)) found.set(row.id, messages.duplicate);
    else if (row.value.length > MAX_VALUE) found.set(row.id, messages.value);
    seen.add(row.key);
  }
  return found;
}

/**
 * Edit one level's configuration (a map of keys to text values) as rows. Saving replaces the
 * whole map; the server's complaints about a key (`config.heartbeat_interval`) show on its row.
 */
export function ConfigEditorDialog({
  title,
  description,
  config,
  saving,
  error,
  onSave,
  onClose,
}: {
  title: string;
  description: string;
  config: ConfigMap;
  saving: boolean;
  error: unknown;
  onSave: (config: ConfigMap) => void;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const [rows, setRows] = useState<Row[]>(() => rowsOf(config));
  const local = problems(rows, {
    key: t('config.badKey'),
    duplicate: t('config.duplicateKey'),
    value: t('config.longValue'),
  });
  const server = fieldErrors(error);
  const serverFor = (key: string) => server[`config.${key}`];
  const placed = rows.some((row) => serverFor(row.key));
  const set = (id: number, patch: Partial<Row>) => setRows(rows.map((row) => (row.id === id ? { ...row, ...patch } : row)));

  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="md">
      <DialogTitle>{title}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2 }}>
        <DialogContentText>{description}</DialogContentText>
        {error && !placed ? (
          <Alert severity="error" data-testid="config-error">
            {error instanceof ApiError ? error.message : t('common.saveFailed')}
          </Alert>
        ) : null}
        {rows.length === 0 ? <Alert severity="info">{t('config.noKeys')}</Alert> : null}
        {rows.map((row, index) => {
          const problem = local.get(row.id);
          const refused = serverFor(row.key);
          return (
            <Box key={row.id} sx={{ display: 'grid', gridTemplateColumns: 'minmax(160px, 1fr) 2fr auto', gap: 1, alignItems: 'start' }}>
              <TextField
                size="small"
                label={t('config.key')}
                value={row.key}
                onChange={(e) => set(row.id, { key: e.target.value })}
                error={Boolean(problem)}
                helperText={problem}
                slotProps={{ htmlInput: { 'aria-label': `${t('config.key')} ${index + 1}` } }}
              />
              <TextField
                size="small"
                label={t('config.value')}
                value={row.value}
                onChange={(e) => set(row.id, { value: e.target.value })}
                error={Boolean(refused)}
                helperText={refused}
                slotProps={{ htmlInput: { 'aria-label': `${t('config.value')} ${row.key || index + 1}` } }}
              />
              <Tooltip title={t('config.remove')}>
                <IconButton aria-label={`${t('config.remove')} ${row.key || index + 1}`} onClick={() => setRows(rows.filter((r) => r.id !== row.id))}>
                  <DeleteIcon />
                </IconButton>
              </Tooltip>
            </Box>
          );
        })}
        <Box>
          <Button startIcon={<AddIcon />} onClick={() => setRows([...rows, { id: nextId++, key: '', value: '' }])}>
            {t('config.add')}
          </Button>
        </Box>
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{t('common.cancel')}</Button>
        <Button
          variant="contained"
          disabled={saving || local.size > 0}
          onClick={() => onSave(Object.fromEntries(rows.map((row) => [row.key, row.value])))}
        >
          {t('common.save')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
