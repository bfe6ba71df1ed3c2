import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// The build lands inside the Python package, so the Manager serves it with no Node.js at run time.
const outDir = fileURLToPath(new URL('../src/opscaffold/manager/ui/static', import.meta.url));

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    outDir,
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        // Libraries change less often than the app: their chunks stay cached across releases.
        manualChunks: {
          react: ['react', 'react-dom', 'react-router', '@tanstack/react-query', 'zustand', 'i18next', 'react-i18next'],
          mui: ['@mui/material', '@emotion/react', '@emotion/styled'],
          grid: ['@mui/x-data-grid'],
          charts: ['@mui/x-charts'],
        },
      },
    },
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
    },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/testing/setup.ts'],
    restoreMocks: true,
    // DataGrid pages render slowly in jsdom on a busy 2-core machine.
    testTimeout: 20_000,
  },
});
