/**
 * `claustrum -purge [-force] [-socket p] [-token-fd n] [-json]`: stop the daemon on the socket and delete its state.
 *
 * What it destroys, in this order: the daemon (as `-stop` stops it, which kills its children unless it runs with
 * -keep-children); every recorded child still running, the daemon's or a dead daemon's, by SIGKILL to its process
 * group (each verified by pid and OS start time, from records trusted as src/daemon/records.ts says); then, in the
 * socket's directory, exactly these files: the socket (only a socket nobody accepts on), `daemon.token` and its
 * `daemon.token-*` temporaries, `daemon.lock` and its `daemon.lock.stale-*` leftovers, `remote-server.log` and
 * `remote-server.log.old`, `client-start.lock`, the socket's bind leftovers (`.<socket>.<hex>`), `children/*.json`
 * and `children/`; and the directory itself if nothing else is in it. Nothing else is touched, so a `-socket` in a
 * directory that holds other files leaves them (and the directory) alone.
 *
 * While processes run it refuses unless `-force`; with `-force` it also goes ahead when the state cannot be judged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { lstat, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { LOCK_FILE } from '../daemon/lock.js';
import { LOG_FILE } from '../daemon/logfile.js';
import type { ChildRecord } from '../daemon/orphans.js';
import { CHILDREN_DIR } from '../daemon/orphans.js';
import { runDirectory, TOKEN_FILE } from '../protocol/paths.js';
import { liveChildren, scanChildRecords } from '../daemon/records.js';
import { stopDaemon, type StopWord } from '../daemon/stop.js';
import { silentLogger } from '../log/logger.js';
import { isSameProcess, readStat, signalPid, waitGone } from '../process/procfs.js';
import { KEEPER_DIR, keeperDirectory, readLockRecord } from '../keeper/paths.js';
import { accepts } from '../server/index.js';
import { CliError, COMMAND_TIMEOUT_MS, connectRunning, withTimeout } from './connect.js';
import { printable } from './format.js';
import { probeDaemon } from './probe.js';

export const PURGE_USAGE = 'claustrum -purge [-force] [-socket path] [-token-fd n] [-json]';

/** The client library's start lock (src/client/daemon.ts START_LOCK_FILE). */
const CLIENT_START_LOCK = 'client-start.lock';
/** How long killed leftovers get to disappear before the files go. */
const KILL_WAIT_MS = 2000;

export interface PurgeOptions {
  readonly socket: string;
  readonly tokenFd: number;
  readonly force: boolean;
  readonly json: boolean;
  readonly stdout: Writable;
}

export interface PurgeReport {
  readonly socket: string;
  /** What stopping the daemon did (`-stop`'s word), or null when none was running. */
  readonly stopped: StopWord | null;
  readonly killed: readonly { readonly pid: number; readonly command: string }[];
  readonly removed: readonly string[];
  /** What was left in place, with why. */
  readonly kept: readonly string[];
}

interface Running {
  readonly label: string;
}

export async function runPurge(o: PurgeOptions): Promise<number> {
  const runDir = runDirectory(o.socket);
  const probe = await probeDaemon(o.socket);
  if (probe.kind === 'unknown' && !o.force) {
    throw new CliError(`-purge refused: cannot tell whether a daemon runs on ${o.socket}: ${probe.reason}. -purge -force goes ahead anyway`);
  }
  const scan = await scanChildRecords(runDir);
  const recorded = await liveChildren(scan.records);
  const running: Running[] = recorded.map((r) => ({ label: `pid ${r.pid} (${printable(r.argv0)})` }));
  if (probe.kind === 'running' && !o.force) {
    // With the token, the daemon's own list names them by id (it also knows processes a record was never written for).
    const listed = await runningIds(o.socket, o.tokenFd);
    if (listed.length > 0 && listed.length >= running.length) running.splice(0, running.length, ...listed.map((label) => ({ label })));
  }
  if (running.length > 0 && !o.force) {
    throw new CliError(
      `-purge refused: ${running.length} process(es) still run under ${o.socket}: ${running.map((r) => r.label).join(', ')}. ` +
        '-purge would stop the daemon and kill them: add -force, or end them first (claustrum -kill <id>)',
    );
  }

  let stopped: StopWord | null = null;
  if (probe.kind === 'running' || probe.kind === 'starting' || probe.kind === 'unreachable' || probe.kind === 'unknown') {
    stopped = await stopDaemon(o.socket, silentLogger);
    if (stopped === 'survivor') {
      throw new CliError(`-purge stopped: the daemon on ${o.socket} did not stop (or the lock names a process that is not one); nothing was removed`);
    }
  }
  const killed = await killLeftovers(recorded);
  const keeperStopped = await stopKeeper(runDir);
  const { removed, kept } = await removeState(o.socket);
  if (!keeperStopped) kept.push(`${path.join(runDir, KEEPER_DIR)}/: its keeper did not exit`);
  const report: PurgeReport = { socket: o.socket, stopped, killed: killed.map((r) => ({ pid: r.pid, command: r.argv0 })), removed, kept };
  o.stdout.write(o.json ? `${JSON.stringify(report)}\n` : render(report));
  return 0;
}

async function runningIds(socket: string, tokenFd: number): Promise<string[]> {
  try {
    const client = await connectRunning(socket, tokenFd);
    try {
      const { processes } = await withTimeout(client.list(), COMMAND_TIMEOUT_MS, 'process.list');
      return processes.filter((p) => p.running).map((p) => `${printable(p.id)} (pid ${p.pid})`);
    } finally {
      await client.close();
    }
  } catch {
    return []; // no token: the records tell
  }
}

/** SIGKILL to each recorded child still running (its group when it leads one); waits briefly for them to go. */
async function killLeftovers(records: readonly ChildRecord[]): Promise<ChildRecord[]> {
  const killed: ChildRecord[] = [];
  for (const rec of records) {
    if (!(await isSameProcess(rec.pid, rec.startTime))) continue;
    const st = await readStat(rec.pid);
    if (st && st.pgid === rec.pid) signalPid(-rec.pid, 'SIGKILL');
    signalPid(rec.pid, 'SIGKILL');
    killed.push(rec);
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  for (const rec of killed) {
    while (Date.now() < deadline && (await isSameProcess(rec.pid, rec.startTime))) await sleep(20);
  }
  return killed;
}

/**
 * Ends the keeper of `runDir`, if one runs (a daemon stopped with -keep-children left it): SIGTERM makes it kill
 * what it still keeps and exit; SIGKILL if it has not gone after KILL_WAIT_MS. True when none is left.
 */
async function stopKeeper(runDir: string): Promise<boolean> {
  const rec = readLockRecord(keeperDirectory(runDir));
  if (!rec || !(await isSameProcess(rec.pid, rec.startTime))) return true;
  signalPid(rec.pid, 'SIGTERM');
  if (await waitGone(rec.pid, rec.startTime, KILL_WAIT_MS)) return true;
  signalPid(rec.pid, 'SIGKILL');
  return waitGone(rec.pid, rec.startTime, KILL_WAIT_MS);
}

async function removeState(socket: string): Promise<{ removed: string[]; kept: string[] }> {
  const runDir = runDirectory(socket);
  const removed: string[] = [];
  const kept: string[] = [];
  const names = await readdir(runDir).catch(() => undefined);
  if (names === undefined) return { removed, kept };
  const base = path.basename(socket);
  const bindLeftover = new RegExp(`^(\\.${escapeRegExp(base)}\\.[0-9a-f]{8}|\\.[0-9a-f]{6})$`);
  const files = new Set([TOKEN_FILE, LOCK_FILE, LOG_FILE, `${LOG_FILE}.old`, CLIENT_START_LOCK]);
  for (const name of names.sort()) {
    const p = path.join(runDir, name);
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (name === base || bindLeftover.test(name)) {
      if (!st.isSocket()) {
        if (name === base) kept.push(`${p}: not a socket`);
        continue;
      }
      if (await accepts(p, 500)) {
        kept.push(`${p}: something still accepts on it`);
        continue;
      }
    } else if (name === KEEPER_DIR && st.isDirectory()) {
      // The keeper's own directory: its socket, lock, log and the processes' journals (their output goes with it).
      const journals = (await readdir(path.join(p, 'procs')).catch(() => [] as string[])).length;
      if (
        await rm(p, { recursive: true, force: true }).then(
          () => true,
          () => false,
        )
      )
        removed.push(`${p}/${journals > 0 ? ` (with the output of ${journals} process(es))` : ''}`);
      else kept.push(`${p}/: could not be removed`);
      continue;
    } else if (name === CHILDREN_DIR && st.isDirectory()) {
      const records = (await readdir(p).catch(() => [] as string[])).filter((n) => /^\d+\.json$/.test(n));
      for (const r of records) if (await remove(path.join(p, r))) removed.push(path.join(p, r));
      if (
        await rmdir(p).then(
          () => true,
          () => false,
        )
      )
        removed.push(`${p}/`);
      else kept.push(`${p}/: holds other files`);
      continue;
    } else if (!(files.has(name) || name.startsWith(`${TOKEN_FILE}-`) || name.startsWith(`${LOCK_FILE}.stale-`)) || st.isDirectory()) {
      continue;
    }
    if (await remove(p)) removed.push(p);
  }
  const rest = await readdir(runDir).catch(() => [] as string[]);
  if (
    rest.length === 0 &&
    (await rmdir(runDir).then(
      () => true,
      () => false,
    ))
  )
    removed.push(`${runDir}/`);
  else if (rest.length > 0) kept.push(`${runDir}/: holds other files (${rest.slice(0, 5).join(', ')}${rest.length > 5 ? ', …' : ''})`);
  return { removed, kept };
}

async function remove(p: string): Promise<boolean> {
  return unlink(p).then(
    () => true,
    () => false,
  );
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const STOPPED_TEXT: Readonly<Record<StopWord | 'null', string>> = {
  null: 'no daemon was running on <socket>',
  none: 'no daemon was running on <socket>',
  stopped: 'stopped the daemon on <socket>',
  terminated: 'the daemon on <socket> did not answer: ended it with SIGTERM',
  killed: 'the daemon on <socket> did not answer: ended it with SIGKILL',
  survivor: 'the daemon on <socket> did not stop',
};

function render(r: PurgeReport): string {
  const lines: string[] = [];
  lines.push(STOPPED_TEXT[r.stopped ?? 'null'].replace('<socket>', r.socket));
  if (r.killed.length > 0)
    lines.push(`killed ${r.killed.length} process(es) left running: ${r.killed.map((k) => `pid ${k.pid} (${printable(k.command)})`).join(', ')}`);
  if (r.removed.length === 0) lines.push('removed nothing: no state was left');
  else lines.push('removed:', ...r.removed.map((p) => `  ${printable(p)}`));
  if (r.kept.length > 0) lines.push('kept:', ...r.kept.map((p) => `  ${printable(p)}`));
  return `${lines.join('\n')}\n`;
}
