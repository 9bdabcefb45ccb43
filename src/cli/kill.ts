/**
 * `claustrum -kill <id> [-signal S] [-wait] [-socket p] [-token-fd n] [-json]`: signal one of the daemon's processes.
 *
 * The signal goes to the process's whole process group, as `kill %job` in a shell or a key on a terminal does (a
 * shell waiting for its foreground child ignores a signal that reaches it alone): `process.kill` with the `group`
 * extension. With `-wait`, `process.killAndWait`: up to 3 s for the exit, then SIGKILL to the group and up to 7 s
 * more. The daemon knows TERM, INT, HUP and KILL; any other name is refused here rather than sent as TERM.
 */
import type { Writable } from 'node:stream';
import type { Client, KillAndWaitResult, ProcessInfo } from '../client/index.js';
import { CliError, COMMAND_TIMEOUT_MS, connectRunning, withTimeout } from './connect.js';

export const KILL_USAGE = 'claustrum -kill <id> [-signal TERM|INT|HUP|KILL] [-wait] [-socket path] [-token-fd n] [-json]';
export const KILL_SIGNALS = ['TERM', 'INT', 'HUP', 'KILL'] as const;
export type KillSignalName = (typeof KILL_SIGNALS)[number];
/** killAndWait's longest answer: the 3 s grace, the 7 s after the SIGKILL, and room for the reply. */
const KILL_WAIT_TIMEOUT_MS = 15_000;

/** `term`, `SIGTERM`, `TERM` → `TERM`; anything the daemon cannot send → undefined. */
export function parseKillSignal(text: string): KillSignalName | undefined {
  const bare = text.toUpperCase().replace(/^SIG/, '');
  return (KILL_SIGNALS as readonly string[]).includes(bare) ? (bare as KillSignalName) : undefined;
}

export interface KillOptions {
  readonly socket: string;
  readonly tokenFd: number;
  readonly id: string;
  readonly signal: string;
  readonly wait: boolean;
  readonly json: boolean;
  readonly stdout: Writable;
}

export interface KillReport {
  readonly id: string;
  readonly pid: number;
  readonly signal: `SIG${KillSignalName}`;
  /** Sent to the process group (false: to the process alone, by a daemon without `process.kill.group`). */
  readonly group: boolean;
  /** False when the process had exited before: nothing was sent. */
  readonly sent: boolean;
  readonly exited: boolean;
  readonly escalated?: boolean;
  readonly exitCode?: number;
  readonly exitSignal?: string;
}

export async function runKill(o: KillOptions): Promise<number> {
  const sig = parseKillSignal(o.signal);
  if (sig === undefined) throw new CliError(`-signal ${o.signal}: the daemon sends TERM, INT, HUP or KILL (with or without SIG)`, 2);
  if (o.id === '') throw new CliError(`-kill needs a process id: ${KILL_USAGE}`, 2);
  const client = await connectRunning(o.socket, o.tokenFd);
  try {
    const report = await kill(client, o.id, sig, o.wait, o.socket);
    o.stdout.write(o.json ? `${JSON.stringify(report)}\n` : `${describe(report, o.wait)}\n`);
    return report.sent && o.wait && !report.exited ? 1 : 0;
  } finally {
    await client.close();
  }
}

async function find(client: Client, id: string): Promise<ProcessInfo | undefined> {
  const { processes } = await withTimeout(client.list(), COMMAND_TIMEOUT_MS, 'process.list');
  return processes.find((p) => p.id === id);
}

async function kill(client: Client, id: string, sig: KillSignalName, wait: boolean, socket: string): Promise<KillReport> {
  const before = await find(client, id);
  if (!before) throw new CliError(`no process ${id} on ${socket} (claustrum -ps lists them)`);
  const signal = `SIG${sig}` as const;
  if (!before.running) {
    return { id, pid: before.pid, signal, group: false, sent: false, exited: true, ...exitFacts(before) };
  }
  const group = client.serverCapabilities?.features.includes('process.kill.group') === true;
  const params = { id, signal: sig, ...(group ? { group: true } : {}) };
  if (!wait) {
    await withTimeout(client.call('process.kill', params), COMMAND_TIMEOUT_MS, 'process.kill');
    return { id, pid: before.pid, signal, group, sent: true, exited: false };
  }
  const r = await withTimeout(client.call<KillAndWaitResult>('process.killAndWait', params), KILL_WAIT_TIMEOUT_MS, 'process.killAndWait');
  const after = r.died ? await find(client, id) : undefined;
  return {
    id,
    pid: before.pid,
    signal,
    group,
    sent: true,
    exited: r.died,
    ...(r.escalated ? { escalated: true } : {}),
    ...(after ? exitFacts(after) : {}),
  };
}

function exitFacts(p: ProcessInfo): { exitCode?: number; exitSignal?: string } {
  return { ...(p.exitCode !== undefined ? { exitCode: p.exitCode } : {}), ...(p.signal ? { exitSignal: p.signal } : {}) };
}

function describe(r: KillReport, wait: boolean): string {
  const how = r.exitSignal ? `killed by ${r.exitSignal}` : r.exitCode !== undefined ? `exit code ${r.exitCode}` : 'exited';
  if (!r.sent) return `${r.id} (pid ${r.pid}) had already exited (${how}); nothing sent`;
  const target = r.group ? `the process group of ${r.id} (pid ${r.pid})` : `${r.id} (pid ${r.pid}, this daemon signals the process alone)`;
  if (!wait) return `sent ${r.signal} to ${target}`;
  if (!r.exited) return `sent ${r.signal} to ${target}, then SIGKILL to its group: still running`;
  return `sent ${r.signal} to ${target}${r.escalated ? ', which outlived it: SIGKILL to its group' : ''}; ${r.id} ended (${how})`;
}
