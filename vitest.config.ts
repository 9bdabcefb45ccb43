import { defineConfig } from 'vitest/config';

// Two cores: more workers than that only adds scheduling noise to tests that spawn many processes.
const maxWorkers = 2;

export default defineConfig({
  test: {
    // Processes isolate tests that run real daemons and children better than threads do.
    pool: 'forks',
    maxWorkers,
    projects: [
      {
        // No daemon, no child process, no socket (test/setup/unit.ts enforces it): seconds, not minutes.
        test: {
          name: 'unit',
          include: ['test/**/*.unit.test.ts'],
          setupFiles: ['test/setup/unit.ts'],
          testTimeout: 20_000,
        },
      },
      {
        // The real daemon over real sockets, real children, the real executable.
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.unit.test.ts', 'test/bench/**'],
          testTimeout: 60_000,
          hookTimeout: 30_000,
        },
      },
      {
        // The benchmark suite at smoke sizes: minutes under load, so apart from npm test (npm run bench:smoke).
        test: {
          name: 'bench',
          include: ['test/bench/**/*.test.ts'],
          testTimeout: 240_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
