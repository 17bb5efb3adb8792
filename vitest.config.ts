import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 90_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most of a test's time is spent waiting on the programs it runs (builds, PostgreSQL,
    // nginx, postfix), not on the CPU: three files at a time on 2 cores (vitest's default is
    // one fewer than the cores). Each worker picks its ports from a range of its own
    // (VITEST_POOL_ID, src/demo/ports.ts). VITEST_MAX_WORKERS overrides it.
    maxWorkers: 3,
    setupFiles: ['test/helpers/tmp.ts'],
    projects: [
      // The fast layer (npm run test:unit): no external program, no built binary.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'programs',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', '**/node_modules/**'],
          // Many of these run the built binary: built first when src/ is newer than the bundle.
          globalSetup: ['test/helpers/fresh-build.ts'],
        },
      },
    ],
  },
});
