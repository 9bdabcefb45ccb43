/**
 * `-idle-exit <duration>`: a daemon with no live process and no connection for that long shuts down gracefully.
 * Off by default; the daemons that `claustrum -run` (and the client library) start on demand get
 * ON_DEMAND_IDLE_EXIT_MS, so a daemon nobody asked for does not stay forever.
 *
 * Checked on a timer of a quarter of the period (at most 30 s, the idle-connection watcher's cadence), so the
 * exit comes between 1 and 1.25 periods after the last activity. Activity between two checks is not missed: the
 * server reports how long it has been without a client, and every exit of a child counts as activity.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { formatDuration } from '../util/duration.js';

/** The `-idle-exit` an on-demand start passes (10 minutes): long enough to come back to a finished command's output. */
export const ON_DEMAND_IDLE_EXIT_MS = 10 * 60_000;
/** The longest interval between two idle checks. */
const MAX_CHECK_MS = 30_000;

export interface IdleSources {
  liveProcesses(): number;
  connections(): number;
  /** Milliseconds since the last connection closed (0 while one is open). */
  clientlessMs(): number;
}

export interface IdleWatch {
  /** Counts as activity now (a child exited). */
  touch(): void;
  stop(): void;
}

export function watchIdle(idleMs: number, sources: IdleSources, log: Logger, onIdle: () => void): IdleWatch {
  let lastBusy = performance.now();
  const timer = setInterval(
    () => {
      const now = performance.now();
      if (sources.liveProcesses() > 0 || sources.connections() > 0) {
        lastBusy = now;
        return;
      }
      const idleFor = Math.min(now - lastBusy, sources.clientlessMs());
      if (idleFor < idleMs) return;
      clearInterval(timer);
      log.info('daemon', `no process and no connection for ${formatDuration(idleMs)} (-idle-exit); shutting down`);
      onIdle();
    },
    Math.max(1, Math.min(idleMs / 4, MAX_CHECK_MS)),
  );
  timer.unref();
  return {
    touch: () => {
      lastBusy = performance.now();
    },
    stop: () => clearInterval(timer),
  };
}
