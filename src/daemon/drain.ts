/**
 * `-drain-timeout <duration>`: what SIGTERM does when it is set. The daemon stops starting processes (process.spawn
 * answers `serverDraining`), reports not ready on `/readyz`, keeps serving everything else (output, reattach, stdin,
 * kill), and waits up to the timeout for its children to exit on their own; then it shuts down as it would have
 * without the flag (children still running are killed, or kept with -keep-children). A second SIGTERM, a SIGINT, a
 * SIGHUP or `server.shutdown` during the drain ends it at once. Off by default: SIGTERM shuts down at once.
 */
import type { Logger } from '../log/logger.js';
import { formatDuration } from '../util/duration.js';

export interface Drain {
  /** Resolves when the children are gone or the timeout passed (or `cut()` was called). */
  readonly done: Promise<'empty' | 'timeout' | 'cut'>;
  /** A child exited: see whether any is left. */
  check(): void;
  /** End the drain now. */
  cut(): void;
}

export function startDrain(timeoutMs: number, liveProcesses: () => number, log: Logger): Drain {
  let finish!: (how: 'empty' | 'timeout' | 'cut') => void;
  let finished = false;
  const done = new Promise<'empty' | 'timeout' | 'cut'>((resolve) => {
    finish = (how) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(how);
    };
  });
  const live = liveProcesses();
  log.info('daemon', `draining: refusing new processes; waiting up to ${formatDuration(timeoutMs)} for ${live} running process(es) to exit`);
  const timer = setTimeout(() => {
    log.warn('daemon', `drain timeout: ${liveProcesses()} process(es) still running after ${formatDuration(timeoutMs)}`);
    finish('timeout');
  }, timeoutMs);
  const check = () => {
    if (liveProcesses() === 0) {
      log.info('daemon', 'drained: no process left');
      finish('empty');
    }
  };
  check();
  return { done, check, cut: () => finish('cut') };
}
