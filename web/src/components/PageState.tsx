import { Alert, Box, Button, CircularProgress, Typography } from '@mui/material';
import { useTranslation } from 'react-i18next';

import { ApiError } from '@/api/client';

export function Loading() {
  const { t } = useTranslation();
  return (
    <Box role="status" sx={{ display: 'flex', alignItems: 'center', gap: 2, p: 4 }}>
      <CircularProgress size={24} />
      <Typography color="text.secondary">{t('common.loading')}</Typography>
    </Box>
  );
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useTranslation();
  const detail = error instanceof ApiError ? `${error.message} (${error.code})` : null;
  return (
    <Alert
      severity="error"
      action={
        onRetry ? (
          <Button color="inherit" size="small" onClick={onRetry}>
            {t('common.retry')}
          </Button>
        ) : undefined
      }
    >
      {t('common.loadFailed')}
      {detail ? `: ${detail}` : ''}
    </Alert>
  );
}

export function Empty({ message }: { message?: string }) {
  const { t } = useTranslation();
  return (
    <Typography color="text.secondary" sx={{ p: 3, textAlign: 'center' }}>
      {message ?? t('common.empty')}
    </Typography>
  );
}
