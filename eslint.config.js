// Lint rules that guard the architecture: no import cycles, no undeclared
// dependencies, no floating promises, no console in library code, no Math.random.
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '**/*.d.ts'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: {
        project: ['packages/*/tsconfig*.json', 'apps/*/tsconfig.json', 'tsconfig.test.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.test.json' })],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
      'import-x/no-extraneous-dependencies': [
        'error',
        { includeInternal: false, packageDir: ['.', import.meta.dirname] },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Use crypto randomness (CryptoProvider.randomBytes).',
        },
      ],
    },
  },
  {
    // Library code logs through a named logger, never the console.
    files: ['packages/*/src/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    // Portable packages must run in browsers: no Node globals or built-ins.
    files: ['packages/{crypto,wire,protocol,client}/src/**/*.ts'],
    ignores: ['packages/*/src/node/**'],
    rules: {
      'no-restricted-globals': [
        'error',
        'Buffer',
        'process',
        '__dirname',
        'require',
        'window',
        'document',
      ],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['node:*'], message: 'Portable package: no Node built-ins.' }] },
      ],
    },
  },
  {
    files: ['**/test/**', 'bench/**', '**/*.config.*'],
    rules: { 'import-x/no-extraneous-dependencies': 'off', 'no-console': 'off' },
  },
);
