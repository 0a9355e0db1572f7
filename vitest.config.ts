import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Reports which test held a worker's event loop for 20 s or more (see the file).
    setupFiles: ['test/helpers/loop-stall.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: heavy interop tests run one file at a time to keep timings sane.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
