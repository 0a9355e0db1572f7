import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Turns each worker's event loop between tests; names a test that held it for 20 s (see the file).
    setupFiles: ['test/helpers/loop-stall.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: heavy interop tests run one file at a time to keep timings sane.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
