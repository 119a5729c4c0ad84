import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const pkg = (p: string) => fileURLToPath(new URL(`../../packages/${p}`, import.meta.url));

// The app is built from the sibling packages' TypeScript sources, so `npm start` needs no
// prior `tsc -b` and the bundle never pulls a Node-only entry.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  resolve: {
    alias: [
      { find: /^@parley\/(crypto|wire|protocol|client)$/, replacement: pkg('$1/src/index.ts') },
      { find: /^@parley\/pki\/portable$/, replacement: pkg('pki/src/portable.ts') },
      // Libraries written for React run on Preact's compatibility layer.
      { find: /^react(-dom)?$/, replacement: 'preact/compat' },
      { find: /^react\/jsx-runtime$/, replacement: 'preact/jsx-runtime' },
    ],
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // CSP forbids inline script: never inline the module preload polyfill or small assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
  },
});
