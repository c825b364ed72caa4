import { defineConfig } from 'vitest/config';

// One run covers every workspace: unit tests beside the code, cross-app suites in test/.
// test/harness/global-setup.ts gives the run its own PostgreSQL database and Redis prefix.
export default defineConfig({
  test: {
    include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'test/**/*.test.ts', 'scripts/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '**/.next/**'],
    globalSetup: ['test/harness/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: ['default', './test/harness/summary-reporter.ts'],
    expect: {
      // A test without an assertion proves nothing: it fails.
      requireAssertions: true,
      // Browser and process suites poll what a page or a server shows; a busy 2-core host can
      // take longer than the 1 s default to get there, which is not what those tests are about.
      poll: { timeout: 15_000 },
    },
  },
});
