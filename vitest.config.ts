import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}`, import.meta.url));

// Tests run against the TypeScript sources of sibling packages, not their dist/.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@parley\/crypto\/node$/, replacement: src('crypto/src/node/index.ts') },
      { find: /^@parley\/client-node$/, replacement: src('client-node/src/index.ts') },
      {
        find: /^@parley\/(crypto|wire|protocol|pki|server|client)$/,
        replacement: src('$1/src/index.ts'),
      },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.{ts,tsx}'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
