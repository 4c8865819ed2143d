// The dashboard's build: dashboard/ -> dashboard/dist (scripts/build-dashboard.js picks the outDir).
// `base: './'`: every asset URL is relative to the page, so the same build works at `/` and behind
// a reverse proxy under a path prefix (the app's routes live in the URL's hash, so the page's path
// is always the deployment's root).
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    target: 'es2022',
    assetsDir: 'assets',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
