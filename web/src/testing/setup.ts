import '@testing-library/jest-dom/vitest';
import { cleanup, configure } from '@testing-library/react';
import { afterEach, beforeEach } from 'vitest';

import i18n from '@/i18n';
import { resetAuthStore } from '@/stores/auth';
import { resetUiStore } from '@/stores/ui';

// findBy… and waitFor wait on a condition; 1 s (the default) is too short for a loaded CI
// machine rendering a data grid, and a condition met early costs nothing.
configure({ asyncUtilTimeout: 5000 });

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
