import { Box, Button, Typography } from '@mui/material';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink } from 'react-router';

export function NotFoundPage() {
  const { t } = useTranslation();
  return (
    <Box sx={{ p: 4, textAlign: 'center' }}>
      <Typography variant="h5" gutterBottom>
        {t('notFound.title')}
      </Typography>
      <Button component={RouterLink} to="/">
        {t('notFound.home')}
      </Button>
    </Box>
  );
}
