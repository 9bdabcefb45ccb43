/**
 * The daemon's leveled logger. Lines keep the reference's shape, `YYYY/MM/DD HH:MM:SS LEVEL  [Component] message`
 * (local time, level tag padded to five characters), so anything that greps for `[Server]` or
 * `[process.Manager]` keeps working.
 *
 * With `-log-format json` each line is one JSON object instead, `{"time","level","component","msg"}` (time in ISO 8601
 * UTC), for container log collectors.
 *
 * Writes go through a sink function so a log file can be swapped in after start-up; a failing sink (disk full,
 * closed fd) is swallowed here, because a logging failure must never take the daemon down.
 */
import { escapeLogText, LOG_LINE_MAX_CHARS, REFUSAL_LOG_BURST, REFUSAL_LOG_WINDOW_MS } from './escape.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };
const TAG: Readonly<Record<LogLevel, string>> = { debug: 'DEBUG', info: 'INFO ', warn: 'WARN ', error: 'ERROR' };

/** Maps `CLAUSTRUM_LOG_LEVEL`; empty or unknown means debug, so a typo never hides logs (reference behaviour). */
export function parseLogLevel(value: string | undefined): LogLevel {
  switch ((value ?? '').trim().toLowerCase()) {
    case 'info':
      return 'info';
    case 'warn':
    case 'warning':
      return 'warn';
    case 'error':
      return 'error';
    default:
      return 'debug';
  }
}

export type LogSink = (line: string) => void;

/** `-log-format`: the reference's text lines, or one JSON object per line. */
export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export class Logger {
  #threshold: number;
  #sink: LogSink;
  readonly #format: LogFormat;
  /** Refusals by kind: every one counted, the first REFUSAL_LOG_BURST of each window logged. */
  readonly #refusals = new Map<string, { total: number; logged: number; suppressed: number; timer: NodeJS.Timeout | undefined }>();

  constructor(level: LogLevel = 'debug', sink: LogSink = writeStderr, format: LogFormat = 'text') {
    this.#threshold = RANK[level];
    this.#sink = sink;
    this.#format = format;
  }

  setSink(sink: LogSink): void {
    this.#sink = sink;
  }

  /**
   * Also hands every entry logged, before formatting, to `tap` (the keeper passes its entries to the daemon it
   * serves, so one log tells the story of a process). Undefined removes it.
   */
  setTap(tap: ((level: LogLevel, component: string, message: string) => void) | undefined): void {
    this.#tap = tap;
  }
  #tap: ((level: LogLevel, component: string, message: string) => void) | undefined;

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.#threshold;
  }

  debug(component: string, message: string): void {
    this.#emit('debug', component, message);
  }
  info(component: string, message: string): void {
    this.#emit('info', component, message);
  }
  warn(component: string, message: string): void {
    this.#emit('warn', component, message);
  }
  error(component: string, message: string): void {
    this.#emit('error', component, message);
  }

  /**
   * A warning about a refused request of some `kind` (a stranger's doing, so repeatable at will): at most
   * REFUSAL_LOG_BURST per kind are logged in each REFUSAL_LOG_WINDOW_MS; the others are counted, and the count is
   * logged when the window closes (`<n> more refusals (<kind>) not logged in the last 10s`).
   */
  refusal(kind: string, component: string, message: string): void {
    let r = this.#refusals.get(kind);
    if (r === undefined) this.#refusals.set(kind, (r = { total: 0, logged: 0, suppressed: 0, timer: undefined }));
    r.total++;
    if (r.timer === undefined) {
      const state = r;
      state.timer = setTimeout(() => {
        state.timer = undefined;
        state.logged = 0;
        if (state.suppressed > 0) {
          this.#emit('warn', component, `${state.suppressed} more refusals (${kind}) not logged in the last ${REFUSAL_LOG_WINDOW_MS / 1000}s`);
        }
        state.suppressed = 0;
      }, REFUSAL_LOG_WINDOW_MS);
      state.timer.unref();
    }
    if (r.logged < REFUSAL_LOG_BURST) {
      r.logged++;
      this.#emit('warn', component, message);
    } else {
      r.suppressed++;
    }
  }

  /** Refusals counted so far, by kind (for metrics). */
  refusalCounts(): Record<string, number> {
    return Object.fromEntries([...this.#refusals].map(([k, v]) => [k, v.total]));
  }

  #emit(level: LogLevel, component: string, message: string): void {
    if (RANK[level] < this.#threshold) return;
    // Escaped and cut: nothing in a message can start a line of its own (src/log/escape.ts).
    const text = escapeLogText(message, LOG_LINE_MAX_CHARS);
    const now = new Date();
    const line =
      this.#format === 'json'
        ? `${JSON.stringify({ time: now.toISOString(), level, component, msg: text })}\n`
        : `${timestamp(now)} ${TAG[level]} [${component}] ${text}\n`;
    try {
      this.#sink(line);
    } catch {
      // A log write that fails (ENOSPC, EPIPE on a closed stderr) is dropped on purpose.
    }
    this.#tap?.(level, component, message);
  }

  /** Logs an entry that another process logged already (the keeper's): at its level, under its component. */
  relay(level: LogLevel, component: string, message: string): void {
    this.#emit(level, component, message);
  }
}

/** stderr, unless it is gone (a closed terminal or pipe): the daemon runs on without it. */
function writeStderr(line: string): void {
  if (!process.stderr.destroyed) process.stderr.write(line);
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A logger that discards everything, for library use and unit tests. */
export const silentLogger = new Logger('error', () => {});
