/**
 * The fuzz budget: a fixed seed and a few seconds per property inside `npm test`; `npm run fuzz` raises the time
 * (CLAUSTRUM_FUZZ_MS) and takes a random seed unless one is given (CLAUSTRUM_FUZZ_SEED). fast-check prints the seed
 * and the shrunk counterexample of a failure; replay with CLAUSTRUM_FUZZ_SEED=<seed>.
 */
import type { Parameters } from 'fast-check';

/** Per property: 2,000 ms inside npm test. */
export const FUZZ_MS = Number(process.env.CLAUSTRUM_FUZZ_MS ?? 2000);
const seedEnv = process.env.CLAUSTRUM_FUZZ_SEED;
/** 0x5eed inside npm test; `random` (npm run fuzz) draws one. */
export const FUZZ_SEED = seedEnv === undefined ? 0x5eed : seedEnv === 'random' ? (Math.random() * 2 ** 31) | 0 : Number(seedEnv);

/** fast-check parameters: as many runs as fit in the time budget, from the seed. */
export function budget<T>(extra: Parameters<T> = {}): Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: 1_000_000, interruptAfterTimeLimit: FUZZ_MS, markInterruptAsFailure: false, ...extra };
}

/** The vitest timeout of one property: its budget plus set-up and shrinking room. */
export const FUZZ_TEST_TIMEOUT_MS = FUZZ_MS + 60_000;
