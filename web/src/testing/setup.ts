import '@testing-library/jest-dom/vitest';
import { cleanup, configure } from '@testing-library/react';
import { afterEach, beforeEach } from 'vitest';

import i18n from '@/i18n';
import { resetAuthStore } from '@/stores/auth';
import { resetUiStore } from '@/stores/ui';

// findBy… and waitFor give up after this long: a second is too short on a busy 2-core machine.
configure({ asyncUtilTimeout: 5000 });

// CodeMirror measures text ranges, which jsdom (laying nothing out) does not implement.
Range.prototype.getClientRects ??= function getClientRects() {
  return Object.assign([], { item: () => null }) as unknown as DOMRectList;
};
Range.prototype.getBoundingClientRect ??= function getBoundingClientRect() {
  return new DOMRect();
};

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
