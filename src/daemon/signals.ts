/**
 * What the daemon does with each signal whose default action would end it (issue 10, point 5; PROTOCOL.md,
 * "Signals"). No signal it can catch ends it without its teardown: each one either runs the graceful shutdown or is
 * ignored, and is logged.
 *
 * SIGUSR1 matters most: Node's default for it opens the inspector on 127.0.0.1:9229, through which any local user
 * (a TCP port has no file permissions) can run code as the daemon's user. A JavaScript listener replaces that
 * activation (verified on Node 20: with a listener, SIGUSR1 opens no socket; test/hardening/signals.test.ts).
 *
 * Not in the tables, by necessity: SIGKILL and SIGSTOP cannot be caught; SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT
 * report a crash, after which running JavaScript is unsafe (Node's own advice), so they keep their default; the
 * real-time signals (SIGRTMIN…SIGRTMAX) cannot be listened to from Node. Any of these ends the daemon without its
 * teardown, like a SIGKILL: the next start reaps the children from their records. SIGPIPE and SIGXFSZ are ignored by
 * Node itself (a failed write is then an EPIPE or EFBIG error, which every stream handles).
 */
import type { Logger } from '../log/logger.js';

/** Signals that run the graceful shutdown: the usual stop requests, and the warnings that precede a kill. */
export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGXCPU', 'SIGPWR'] as const;

/** Signals that are logged and otherwise ignored: none of them is a request to stop. */
export const IGNORED_SIGNALS = ['SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGVTALRM', 'SIGPROF', 'SIGSTKFLT', 'SIGIO', 'SIGSYS', 'SIGTRAP'] as const;

/** Go's names for the signals it logs (`received terminated`); the others are logged by their own name. */
const SIGNAL_NAMES: Readonly<Record<string, string>> = { SIGTERM: 'terminated', SIGINT: 'interrupt', SIGHUP: 'hangup', SIGQUIT: 'quit' };

/** Installs both tables; `shutdown` is called for every shutdown signal (the teardown must be idempotent). */
export function installSignalHandlers(
  log: Logger,
  keepChildren: boolean,
  shutdown: (signal: NodeJS.Signals) => void,
  /** Runs first; true when it handled the signal itself (SIGTERM with -drain-timeout starts the drain). */
  intercept?: (signal: NodeJS.Signals) => boolean,
): void {
  for (const sig of IGNORED_SIGNALS) {
    if (sig === 'SIGPROF' && profiling()) continue;
    process.on(sig, () => log.info('daemon', `received ${sig}; ignored${sig === 'SIGUSR1' ? ' (the inspector stays closed)' : ''}`));
  }
  for (const sig of SHUTDOWN_SIGNALS) {
    process.on(sig, () => {
      if (intercept?.(sig)) return;
      log.info('daemon', `received ${SIGNAL_NAMES[sig] ?? sig}; shutting down (children will be ${keepChildren ? 'kept' : 'killed'})`);
      shutdown(sig);
    });
  }
}

/**
 * Run under V8's sampling profiler (`node --cpu-prof`, `--prof`): SIGPROF is its clock, and a listener would take
 * the signal from it (the profile got a few hundred samples, and the log a line per sample).
 */
export function profiling(): boolean {
  return process.execArgv.some((a) => a.startsWith('--cpu-prof') || a === '--prof');
}
