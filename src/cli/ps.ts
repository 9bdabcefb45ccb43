/**
 * `claustrum -ps [-socket p] [-token-fd n] [-json]`: the daemon's processes, oldest first: id, pid, state, age, CPU
 * and memory (from `process.stats`, summed over each process and its descendants), terminal size for processes on a
 * terminal (`pty: {cols, rows}` in `process.list` entries, issue 13), observers (`observers` count, issue 11), and
 * the command line. Columns for terminals and observers appear once a daemon reports them.
 */
import type { Writable } from 'node:stream';
import type { Client, ProcessInfo, StatsResult } from '../client/index.js';
import { COMMAND_TIMEOUT_MS, connectRunning, withTimeout } from './connect.js';
import { commandLine, formatAge, formatBytes, table, type Column } from './format.js';

export const PS_USAGE = 'claustrum -ps [-socket path] [-token-fd n] [-json]';

/** process.stats requests in flight at once: each reads /proc in the daemon, and a listing must not flood it. */
export const PS_STATS_CONCURRENCY = 4;

/** A process.list entry, with what newer daemons add. */
type ListedProcess = ProcessInfo & {
  readonly pty?: { readonly cols: number; readonly rows: number };
  readonly observers?: number;
  readonly instance?: string;
  readonly restarts?: number;
};

export interface PsRow {
  readonly id: string;
  readonly pid: number;
  readonly state: 'running' | 'exited';
  readonly exitCode?: number;
  readonly signal?: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly startedAt: number;
  /** Milliseconds since the start (to the exit, once exited). */
  readonly elapsedMs: number;
  /** Percent of one core over the process and its descendants; null when not measured (exited, or gone meanwhile). */
  readonly cpu: number | null;
  /** Resident bytes over the process and its descendants; null when not measured. */
  readonly memory: number | null;
  readonly descendants: number | null;
  readonly pty?: { readonly cols: number; readonly rows: number };
  readonly observers?: number;
  /** The instance id of the daemon that spawned it (a daemon that reports it). */
  readonly instance?: string;
  /** Daemon restarts, upgrades and crashes it has outlived. */
  readonly restarts?: number;
}

export interface PsOptions {
  readonly socket: string;
  readonly tokenFd: number;
  readonly json: boolean;
  readonly stdout: Writable;
}

export async function runPs(o: PsOptions): Promise<number> {
  const client = await connectRunning(o.socket, o.tokenFd);
  try {
    const rows = await listProcesses(client);
    o.stdout.write(o.json ? `${JSON.stringify({ processes: rows })}\n` : renderPs(rows));
    return 0;
  } finally {
    await client.close();
  }
}

export async function listProcesses(client: Client): Promise<PsRow[]> {
  const { processes } = await withTimeout(client.list(), COMMAND_TIMEOUT_MS, 'process.list');
  const entries = processes as readonly ListedProcess[];
  const stats = await mapLimit(entries, PS_STATS_CONCURRENCY, (e) =>
    e.running ? withTimeout(client.stats(e.id), COMMAND_TIMEOUT_MS, 'process.stats').catch(() => undefined) : Promise.resolve(undefined),
  );
  const now = Date.now();
  return entries.map((e, i) => {
    const s = stats[i] as StatsResult | undefined;
    const measured = s?.found === true && s.running ? s : undefined;
    const elapsed = s?.found === true ? s.elapsed : now - e.startedAt;
    return {
      id: e.id,
      pid: e.pid,
      state: e.running ? 'running' : 'exited',
      ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
      ...(e.signal !== undefined ? { signal: e.signal } : {}),
      command: e.command,
      args: e.args,
      cwd: e.cwd,
      startedAt: e.startedAt,
      elapsedMs: elapsed,
      cpu: measured ? measured.cpu : null,
      memory: measured ? measured.memory : null,
      descendants: measured ? measured.descendants : null,
      ...(e.pty ? { pty: { cols: e.pty.cols, rows: e.pty.rows } } : {}),
      ...(typeof e.observers === 'number' ? { observers: e.observers } : {}),
      ...(typeof e.instance === 'string' ? { instance: e.instance } : {}),
      ...(typeof e.restarts === 'number' ? { restarts: e.restarts } : {}),
    };
  });
}

export function renderPs(rows: readonly PsRow[]): string {
  if (rows.length === 0) return 'no processes\n';
  const withPty = rows.some((r) => r.pty !== undefined);
  const withObservers = rows.some((r) => r.observers !== undefined);
  // Shown once a process has outlived a daemon: which daemon started it, and how many it has outlived.
  const withRestarts = rows.some((r) => (r.restarts ?? 0) > 0);
  const columns: Column[] = [
    { title: 'ID' },
    { title: 'PID', align: 'right' },
    { title: 'STATE' },
    { title: 'AGE', align: 'right' },
    { title: 'CPU%', align: 'right' },
    { title: 'MEM', align: 'right' },
    ...(withPty ? [{ title: 'TTY' }] : []),
    ...(withObservers ? [{ title: 'OBS', align: 'right' as const }] : []),
    ...(withRestarts ? [{ title: 'RESTARTS', align: 'right' as const }, { title: 'SPAWNED BY' }] : []),
    { title: 'COMMAND' },
  ];
  const body = rows.map((r) => [
    r.id,
    String(r.pid),
    stateText(r),
    formatAge(r.elapsedMs),
    r.cpu === null ? '-' : r.cpu.toFixed(1),
    r.memory === null ? '-' : formatBytes(r.memory),
    ...(withPty ? [r.pty ? `${r.pty.cols}x${r.pty.rows}` : '-'] : []),
    ...(withObservers ? [r.observers === undefined ? '-' : String(r.observers)] : []),
    ...(withRestarts ? [r.restarts === undefined ? '-' : String(r.restarts), r.instance ? r.instance.slice(0, 8) : '-'] : []),
    commandLine(r.command, r.args),
  ]);
  return table(columns, body);
}

function stateText(r: PsRow): string {
  if (r.state === 'running') return 'running';
  if (r.signal) return `killed (${r.signal})`;
  return `exited ${r.exitCode ?? '?'}`;
}

/** Runs `fn` over `items` with at most `limit` in flight, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
