/** Running a real program on a real terminal (src/terminal/pty.ts) and watching what it prints. */
import { spawnTerminal, type Terminal, type TerminalExit } from '../../src/terminal/pty.js';

export interface TerminalRun {
  readonly terminal: Terminal;
  /** Every read, as the terminal delivered it. */
  readonly reads: Buffer[];
  /** Everything read so far. */
  output(): Buffer;
  /** Everything read so far as text, with the terminal's \r\n made \n. */
  text(): string;
  /** Resolves once the text so far matches; rejects after `ms` with what was printed. */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  readonly exited: Promise<TerminalExit>;
  /** Resolves when the leader is reaped (before the drain ends), with performance.now() then. */
  readonly leaderExited: Promise<number>;
}

export interface RunOptions {
  readonly cols?: number;
  readonly rows?: number;
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  readonly drainMs?: number;
}

export async function runTerminal(file: string, args: readonly string[], options: RunOptions = {}): Promise<TerminalRun> {
  const reads: Buffer[] = [];
  const waiters = new Set<() => void>();
  let resolveExit!: (exit: TerminalExit) => void;
  const exited = new Promise<TerminalExit>((resolve) => (resolveExit = resolve));
  let resolveLeader!: (at: number) => void;
  const leaderExited = new Promise<number>((resolve) => (resolveLeader = resolve));
  const terminal = await spawnTerminal({
    file,
    args,
    cwd: options.cwd,
    env: options.env ?? (process.env as Record<string, string>),
    cols: options.cols ?? 80,
    rows: options.rows ?? 24,
    drainMs: options.drainMs,
    onData: (bytes) => {
      reads.push(bytes);
      for (const w of waiters) w();
    },
    onLeaderExit: () => resolveLeader(performance.now()),
    onExit: (exit) => {
      resolveExit(exit);
      for (const w of waiters) w();
    },
  });
  const output = () => Buffer.concat(reads);
  const text = () => output().toString('utf8').replace(/\r\n/g, '\n');
  let done = false;
  void exited.then(() => (done = true));
  const waitFor = (pattern: RegExp, ms = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(text())) {
          cleanup();
          resolve();
        } else if (done) {
          cleanup();
          reject(new Error(`the program exited without printing ${pattern}; it printed:\n${text()}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${pattern} within ${ms} ms; the program printed:\n${text()}`));
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { terminal, reads, output, text, waitFor, exited, leaderExited };
}
