import { create } from 'zustand';
import { persist } from 'zustand/middleware';

export type Language = 'zh-CN' | 'en';
export type ColorMode = 'light' | 'dark';

interface UiState {
  language: Language;
  colorMode: ColorMode;
  sidebarOpen: boolean;
  setLanguage: (language: Language) => void;
  setColorMode: (mode: ColorMode) => void;
  toggleSidebar: () => void;
}

const defaults = { language: 'zh-CN' as Language, colorMode: 'light' as ColorMode, sidebarOpen: true };

export const useUiStore = create<UiState>()(
  persist(
    (set) => ({
      ...defaults,
      setLanguage: (language) => set({ language }),
      setColorMode: (colorMode) => set({ colorMode }),
      toggleSidebar: () => set((state) => ({ sidebarOpen: !state.sidebarOpen })),
    }),
    { name: 'ops-ui' },
  ),
);

export function resetUiStore(): void {
  useUiStore.setState(defaults);
}
