import { createTheme, type Theme } from '@mui/material/styles';
import { enUS as coreEn, zhCN as coreZh } from '@mui/material/locale';
import { enUS as gridEn, zhCN as gridZh } from '@mui/x-data-grid/locales';

import type { ColorMode, Language } from '@/stores/ui';

const locales = {
  'zh-CN': [coreZh, gridZh],
  en: [coreEn, gridEn],
} as const;

export function buildTheme(mode: ColorMode, language: Language): Theme {
  const [core, grid] = locales[language];
  return createTheme(
    {
      palette: {
        mode,
        primary: { main: mode === 'light' ? '#1565c0' : '#90caf9' },
        background: mode === 'light' ? { default: '#f4f6f8' } : {},
      },
      shape: { borderRadius: 8 },
      components: {
        MuiPaper: { defaultProps: { variant: 'outlined' } },
      },
    },
    core,
    grid,
  );
}
