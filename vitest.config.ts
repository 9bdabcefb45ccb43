import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests run real daemons and children; processes isolate them better than threads do.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Two cores: more workers than that only adds scheduling noise to tests that spawn many processes.
    maxWorkers: 2,
  },
});
