// One lint setup for the whole repository. Beyond the recommended rules it enforces the
// boundaries docs/architecture.md draws, so crossing one fails `npm run lint` instead of review:
// apps never import apps, packages never import apps, and the gateway (the data plane) never
// reaches PostgreSQL, Stripe or Next.js.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const APPS = ['console', 'gateway', 'worker', 'demo-upstream', 'cli'];

const appImport = (app) => [`@tollgate/${app}`, `@tollgate/${app}/*`, `**/apps/${app}/**`, `../../${app}/**`, `../../../${app}/**`];

const GATEWAY_FORBIDDEN = {
  group: ['@prisma/*', 'prisma', '@tollgate/db', '@tollgate/db/*', 'stripe', 'stripe/*', 'next', 'next/*', 'pg', 'postgres'],
  message: 'The gateway runs on Redis and its own memory only: no PostgreSQL, Prisma, Stripe or Next.js (see docs/architecture.md).',
};
const DEEP_PACKAGE_IMPORT = {
  group: ['@tollgate/*/src/*', '@tollgate/*/src'],
  message: 'Import a workspace package by its name; its exports map is its public surface.',
};

const appPatterns = (app) => {
  const others = APPS.filter((a) => a !== app).flatMap(appImport);
  const patterns = [{ group: others, message: 'Apps never import other apps: move shared code into a package under packages/.' }];
  if (app === 'gateway') patterns.push(GATEWAY_FORBIDDEN);
  return patterns;
};
const halfImport = (half) => [
  `@/server/${half}`,
  `@/server/${half}/*`,
  `**/server/${half}/**`,
  `../${half}`,
  `../${half}/*`,
  `../../${half}/*`,
];
// Patterns are gitignore-style; `(` is literal there, so `@/app/(console)/**` names the group.
const groupImport = (group) => [`@/app/(${group})`, `@/app/(${group})/**`, `**/app/(${group})/**`];
const CONSOLE_ONLY = {
  group: [...halfImport('console'), ...groupImport('console')],
  message:
    'The developer portal (app/(portal), server/portal) and shared code import only server/shared: move what both halves need there.',
};
const PORTAL_ONLY = {
  group: [...halfImport('portal'), ...groupImport('portal')],
  message:
    'The owner console (app/(console), server/console) and shared code never import the developer portal: move what both need to server/shared.',
};

const boundaries = (files, patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, DEEP_PACKAGE_IMPORT] }] },
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.next/**',
      '**/.turbo/**',
      '**/coverage/**',
      '**/next-env.d.ts',
      'packages/db/src/generated/**',
      '.data/**',
      'test-results/**',
      'bench-results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'warn' },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/consistent-type-imports': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // Style, not bugs: reported, never a failed build.
      'prefer-const': 'warn',
      '@typescript-eslint/no-this-alias': 'warn',
      // Input validation legitimately matches control characters to reject them.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['apps/console/**/*.{ts,tsx,js,jsx,mjs}'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
  // App and package code logs through pino; console.* belongs to CLIs, scripts and tests.
  {
    files: ['apps/*/src/**/*.{ts,tsx}', 'packages/*/src/**/*.ts'],
    ignores: ['**/*.test.ts', '**/cli.ts', '**/cli/**', '**/testing/**'],
    rules: { 'no-console': 'error' },
  },
  ...APPS.map((app) => boundaries([`apps/${app}/**/*.{ts,tsx,js,jsx,mjs}`], appPatterns(app))),
  // The console's two halves, mirrored in app/ and server/: the owner console (app/(console),
  // server/console) and the developer portal (app/(portal), server/portal) each import only their
  // own half and server/shared, so the portal can't reach a member's powers by accident and the
  // console doesn't grow on portal internals. Shared code imports neither half.
  boundaries(
    ['apps/console/src/server/portal/**/*.{ts,tsx}', 'apps/console/src/app/(portal)/**/*.{ts,tsx}'],
    [...appPatterns('console'), CONSOLE_ONLY],
  ),
  boundaries(
    ['apps/console/src/server/console/**/*.{ts,tsx}', 'apps/console/src/app/(console)/**/*.{ts,tsx}'],
    [...appPatterns('console'), PORTAL_ONLY],
  ),
  boundaries(['apps/console/src/server/shared/**/*.{ts,tsx}'], [...appPatterns('console'), CONSOLE_ONLY, PORTAL_ONLY]),
  boundaries(['packages/**/*.{ts,tsx,js,mjs}'], [{ group: APPS.flatMap(appImport), message: 'Packages never import apps.' }]),
);
