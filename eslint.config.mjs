// Lint: typescript-eslint's recommended and type-checked rules over the TypeScript tree (`npm test` runs it).
// Rules here are about correctness; formatting is left alone. Tests and the bench drive untyped things (Node-RED's
// test helper, JSON from processes and browsers), so the no-unsafe-* family and `any` are allowed there.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/', '.node-red/', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Abort reasons are passed on as given (AbortSignal.reason may be any value), and async methods that satisfy
      // an interface need no await: these two would only add noise.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/require-await': 'off',
      // Methods handed on as callbacks are arrow properties or bound where it matters; the rule cannot tell.
      '@typescript-eslint/unbound-method': 'off',
      // It flags assertions that are needed (its --fix removed one that broke the build) and contradicts
      // no-base-to-string; tsc's strict mode is the check on types.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      'prefer-const': ['error', { destructuring: 'all' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-require-imports': 'off',
      // Messages of assertions print values of any type.
      '@typescript-eslint/restrict-template-expressions': 'off',
      // node-red-node-test-helper's typings say void where it returns a promise.
      '@typescript-eslint/await-thenable': 'off',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
);
