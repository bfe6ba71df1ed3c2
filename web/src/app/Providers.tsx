import { CssBaseline, ThemeProvider } from '@mui/material';
import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { useMemo, type ReactNode } from 'react';

import { useUiStore } from '@/stores/ui';
import { buildTheme } from '@/theme/theme';
import '@/i18n';

export function Providers({ client, children }: { client: QueryClient; children: ReactNode }) {
  const mode = useUiStore((state) => state.colorMode);
  const language = useUiStore((state) => state.language);
  const theme = useMemo(() => buildTheme(mode, language), [mode, language]);
  return (
    <QueryClientProvider client={client}>
      <ThemeProvider theme={theme}>
        <CssBaseline />
        {children}
      </ThemeProvider>
    </QueryClientProvider>
  );
}
