import { defineConfig } from 'vitest/config';

// Three on two cores: most integration tests wait on children, timers and graces rather than compute. Measured on
// this machine kind (2026-11-30, idle): the integration half took 519 s with two workers and 398 s with three, every
// test passing in both; four would add scheduling noise to the tests that time children.
const maxWorkers = 3;

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
