/**
 * What lives in a socket's directory, judged without the token: the lock owner (by pid AND its OS start time, never
 * the pid alone), whether the socket accepts, and what a dead daemon left behind. `-status`, `-purge` and a second
 * `-serve` start from this.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { LockError, readLock, verifyHolder, type OwnerRecord } from '../daemon/lock.js';
import { LOG_FILE } from '../daemon/logfile.js';
import type { ChildRecord } from '../daemon/orphans.js';
import { runDirectory, TOKEN_FILE } from '../protocol/paths.js';
import { liveChildren, scanChildRecords } from '../daemon/records.js';
import { cmdlineOf, isSameProcess } from '../process/procfs.js';
import { keeperDirectory, readLockRecord } from '../keeper/paths.js';
import { accepts } from '../server/index.js';

/** How long a connect may take before the socket counts as not accepting. */
export const PROBE_CONNECT_MS = 1000;
/** A lock file still empty after this long was abandoned mid-creation (the lock's own grace: src/daemon/lock.ts). */
const UNWRITTEN_LOCK_MS = 2000;

export interface Leftovers {
  readonly lock: boolean;
  readonly socket: boolean;
  readonly token: boolean;
  /** Child records in children/. */
  readonly records: number;
  /** The log beside the socket, if there is one. */
  readonly log: string | undefined;
  /** Recorded children still running (each verified by pid and start time) whose keeper is gone. */
  readonly orphans: readonly ChildRecord[];
  /** A keeper still running here (a daemon stopped with -keep-children, or one that died), and the children it keeps. */
  readonly keeper: { readonly pid: number; readonly startTime: string; readonly kept: readonly ChildRecord[] } | undefined;
  /** Process journals in keeper/procs/ (their output, kept for the next daemon). */
  readonly journals: number;
  /** Record files not trusted (see src/daemon/records.ts). */
  readonly refused: readonly string[];
}

export type DaemonProbe =
  /** The socket accepts; the lock names a verified live daemon (or there is no lock: an old or foreign server). */
  | { readonly kind: 'running'; readonly holder: OwnerRecord | undefined }
  /** The lock's owner is alive and claimed the directory, but does not listen yet. */
  | { readonly kind: 'starting'; readonly holder: OwnerRecord }
  /** The lock's owner is a live daemon, but its socket does not accept. */
  | { readonly kind: 'unreachable'; readonly holder: OwnerRecord }
  /** No daemon, but files of one (and maybe children) are left. */
  | { readonly kind: 'stale'; readonly holder: OwnerRecord | undefined; readonly leftovers: Leftovers }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'unknown'; readonly reason: string };

export async function probeDaemon(socketPath: string): Promise<DaemonProbe> {
  const runDir = runDirectory(socketPath);
  let snap;
  try {
    snap = await readLock(runDir);
  } catch (err) {
    if (err instanceof LockError) return { kind: 'unknown', reason: err.message };
    return { kind: 'unknown', reason: `read ${path.join(runDir, 'daemon.lock')}: ${(err as Error).message}` };
  }
  const record = snap?.record;
  if (snap && record === undefined && Date.now() - snap.mtimeMs < UNWRITTEN_LOCK_MS) {
    return { kind: 'unknown', reason: `${path.join(runDir, 'daemon.lock')} is being written: a daemon is starting` };
  }
  const listening = await accepts(socketPath, PROBE_CONNECT_MS);
  if (record) {
    const verdict = await verifyHolder(record, socketPath);
    if (verdict === 'ours') {
      if (listening) return { kind: 'running', holder: record };
      return record.instanceId === undefined ? { kind: 'starting', holder: record } : { kind: 'unreachable', holder: record };
    }
    if (verdict === 'foreign') {
      if (listening) return { kind: 'running', holder: undefined };
      return {
        kind: 'unknown',
        reason: `daemon.lock names pid ${record.pid}, which is alive but not a claustrum daemon serving ${socketPath} (${await describe(record.pid)})`,
      };
    }
  }
  // A lock of a dead daemon, or none, with something serving the socket all the same (an older build, a proxy).
  if (listening) return { kind: 'running', holder: undefined };
  const leftovers = await findLeftovers(socketPath);
  const any =
    leftovers.lock ||
    leftovers.socket ||
    leftovers.token ||
    leftovers.records > 0 ||
    leftovers.refused.length > 0 ||
    leftovers.keeper !== undefined ||
    leftovers.journals > 0;
  return any ? { kind: 'stale', holder: record, leftovers } : { kind: 'stopped' };
}

/** The files a daemon that is gone left in the directory, and its children still running. */
export async function findLeftovers(socketPath: string): Promise<Leftovers> {
  const runDir = runDirectory(socketPath);
  const exists = async (p: string) => (await lstat(p).catch(() => undefined)) !== undefined;
  const sock = await lstat(socketPath).catch(() => undefined);
  const scan = await scanChildRecords(runDir);
  const live = await liveChildren(scan.records);
  const rec = readLockRecord(keeperDirectory(runDir));
  const keeper = rec && (await isSameProcess(rec.pid, rec.startTime)) ? rec : undefined;
  const kept = keeper ? live.filter((r) => r.daemonPid === keeper.pid && r.daemonStartTime === keeper.startTime) : [];
  return {
    lock: await exists(path.join(runDir, 'daemon.lock')),
    socket: sock?.isSocket() === true,
    token: await exists(path.join(runDir, TOKEN_FILE)),
    records: scan.files.length,
    log: await defaultLogPath(socketPath),
    orphans: live.filter((r) => !kept.includes(r)),
    keeper: keeper ? { pid: keeper.pid, startTime: keeper.startTime, kept } : undefined,
    journals: (await readdir(path.join(keeperDirectory(runDir), 'procs')).catch(() => [] as string[])).length,
    refused: scan.refused,
  };
}

/** The log beside the socket, when there is one. */
export async function defaultLogPath(socketPath: string): Promise<string | undefined> {
  const p = path.join(runDirectory(socketPath), LOG_FILE);
  return (await lstat(p).catch(() => undefined))?.isFile() ? p : undefined;
}

async function describe(pid: number): Promise<string> {
  const argv = await cmdlineOf(pid);
  return argv ? argv.join(' ').slice(0, 120) : 'command line unreadable';
}
