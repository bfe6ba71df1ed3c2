import i18n from 'i18next';
import { initReactI18next } from 'react-i18next';

import en from '@/i18n/locales/en.json';
import zhCN from '@/i18n/locales/zh-CN.json';
import { useUiStore } from '@/stores/ui';

export const resources = {
  'zh-CN': { translation: zhCN },
  en: { translation: en },
} as const;

void i18n.use(initReactI18next).init({
  resources,
  lng: useUiStore.getState().language,
  fallbackLng: false,
  interpolation: { escapeValue: false },
  returnNull: false,
});

function applyLanguage(language: string): void {
  if (i18n.language !== language) void i18n.changeLanguage(language);
  if (typeof document !== 'undefined') document.documentElement.lang = language;
}

applyLanguage(useUiStore.getState().language);
useUiStore.subscribe((state) => applyLanguage(state.language));

export default i18n;
