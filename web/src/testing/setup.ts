import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach, beforeEach } from 'vitest';

import i18n from '@/i18n';
import { resetAuthStore } from '@/stores/auth';
import { resetUiStore } from '@/stores/ui';

// Zustand stores are module singletons: every test starts signed out, in the default language.
beforeEach(async () => {
  localStorage.clear();
  resetAuthStore();
  resetUiStore();
  await i18n.changeLanguage('zh-CN');
});

afterEach(() => {
  cleanup();
});
