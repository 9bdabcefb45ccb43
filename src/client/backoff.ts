/**
 * Reconnection delays: exponential, capped, with "equal jitter" (half fixed, half random), so a crowd of clients
 * cut at the same moment spreads out without any of them waiting near zero after the first attempt.
 */
export interface BackoffOptions {
  /** The first retry's delay scale. Default 50 ms. */
  readonly initialDelayMs?: number;
  /** The cap. Default 2000 ms. */
  readonly maxDelayMs?: number;
  /** A source of randomness in [0, 1); Math.random by default (tests seed their own). */
  readonly random?: () => number;
}

/** The delay before reconnect attempt `attempt` (0 for the first retry after a drop). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? 50;
  const max = options.maxDelayMs ?? 2000;
  const random = options.random ?? Math.random;
  const scale = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(scale / 2 + (random() * scale) / 2);
}
