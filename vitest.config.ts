import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 90_000,
    hookTimeout: 60_000,
    pool: 'forks',
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
