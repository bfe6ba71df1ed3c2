import { Alert, Box, Button } from '@mui/material';
import { useTranslation } from 'react-i18next';
import { useRouteError } from 'react-router';

/** A page that threw (or a page's code that failed to load, e.g. after a new release). */
export function RouteError() {
  const { t } = useTranslation();
  const error = useRouteError();
  return (
    <Box sx={{ p: 4 }}>
      <Alert
        severity="error"
        action={
          <Button color="inherit" onClick={() => window.location.reload()}>
            {t('routeError.reload')}
          </Button>
        }
      >
        {t('routeError.message')}
        {error instanceof Error ? `: ${error.message}` : ''}
      </Alert>
    </Box>
  );
}
