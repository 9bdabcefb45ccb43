/**
 * One daemon per socket: `daemon.lock` in the socket's directory (PROTOCOL.md, SECURITY.md).
 *
 * Node has no flock, so the lock is a file created with O_EXCL that exists exactly while a daemon owns the directory,
 * holding an owner record: pid, the OS start time of that pid, socket, then instanceId and startedAt once the daemon
 * listens. A record whose pid is no longer the process with that start time is stale (its daemon was SIGKILLed or
 * crashed) and is taken over. A live one is evicted, SIGTERM then SIGKILL, but only once the pid is verified to be
 * that same process and a claustrum daemon serving; an unverified pid is never signalled.
 *
 * Taking over a stale file races other newcomers, so it is renamed aside first (only one rename can win) and removed
 * only if it is still the very file that was judged stale.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { link, lstat, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { cmdlineOf, isSameProcess, signalPid, startTimeOf, waitGone } from '../process/procfs.js';
import { cleanPath } from '../util/paths.js';

export const LOCK_FILE = 'daemon.lock';
/** How long an evicted predecessor gets after SIGTERM (reference: 2 s), and after SIGKILL. */
export const EVICT_TERM_GRACE_MS = 2000;
export const EVICT_KILL_GRACE_MS = 1000;
/**
 * A holder whose command line reads empty is exiting (the kernel frees its memory, and with it argv, before it
 * becomes a zombie): a predecessor leaving, superseded, just as its successor looks. It gets this long to finish
 * before it is judged foreign (chaos lifecycle: the successor refused to start, and no daemon was left).
 */
export const EXITING_HOLDER_WAIT_MS = 1000;
/** A record still empty after this long was abandoned mid-creation. */
const UNWRITTEN_RECORD_GRACE_MS = 2000;

export interface OwnerRecord {
  readonly pid: number;
  /** OS start time of `pid` (/proc/<pid>/stat field 22). */
  readonly startTime: string;
  readonly socket: string;
  readonly role: 'serve';
  readonly instanceId?: string;
  readonly startedAt?: number;
}

export class LockError extends Error {}

export type HolderVerdict =
  /** The recorded process is alive and is a claustrum daemon serving this socket: safe to signal. */
  | 'ours'
  /** The recorded process is gone (or its pid now names another process): the record is stale. */
  | 'gone'
  /** The recorded process is alive but is not verifiably one of our daemons: never signal it. */
  | 'foreign';

/** Classifies the holder named by a record. */
export async function verifyHolder(record: OwnerRecord, socket: string): Promise<HolderVerdict> {
  if (!Number.isInteger(record.pid) || record.pid < 2 || typeof record.startTime !== 'string') return 'gone';
  if (!(await isSameProcess(record.pid, record.startTime))) return 'gone';
  if (record.pid === process.pid) return 'foreign';
  const argv = await cmdlineOf(record.pid);
  if (!argv) return (await waitGone(record.pid, record.startTime, EXITING_HOLDER_WAIT_MS)) ? 'gone' : 'foreign';
  if (!isServeArgv(argv)) return 'foreign';
  return cleanPath(path.resolve(record.socket)) === cleanPath(path.resolve(socket)) ? 'ours' : 'foreign';
}

/** A claustrum executable run with -serve. */
export function isServeArgv(argv: readonly string[]): boolean {
  return claustrumArgsOf(argv)?.some((a) => /^--?serve(=(true|1|t|T|TRUE|True))?$/.test(a)) ?? false;
}

/** The arguments a command line gives the claustrum executable in it, or undefined when it has none. */
export function claustrumArgsOf(argv: readonly string[]): readonly string[] | undefined {
  const exe = argv.findIndex((a) => /(^|\/)claustrum(\.js)?$/.test(a));
  return exe === -1 ? undefined : argv.slice(exe + 1);
}

export interface LockSnapshot {
  readonly record: OwnerRecord | undefined;
  readonly ino: number;
  readonly mtimeMs: number;
}

/** Reads the lock file; undefined when there is none. A file that is not a regular file is refused. */
export async function readLock(runDir: string): Promise<LockSnapshot | undefined> {
  const file = path.join(runDir, LOCK_FILE);
  let st;
  try {
    st = await lstat(file);
  } catch {
    return undefined;
  }
  if (!st.isFile()) throw new LockError(`${file} is not a regular file; remove it`);
  let record: OwnerRecord | undefined;
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as OwnerRecord;
    record = typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    record = undefined;
  }
  return { record, ino: st.ino, mtimeMs: st.mtimeMs };
}

export interface EvictionOptions {
  readonly termGraceMs?: number;
  readonly killGraceMs?: number;
}

/** What happened to a verified live holder: the words -stop prints. */
export type EvictionOutcome = 'terminated' | 'killed' | 'survivor';

/**
 * SIGTERM, wait, re-verify, SIGKILL, wait. The holder is re-verified before the SIGKILL: a pid that exited during
 * the grace may already belong to someone else.
 */
export async function evict(record: OwnerRecord, socket: string, log: Logger, opts: EvictionOptions = {}): Promise<EvictionOutcome> {
  const term = opts.termGraceMs ?? EVICT_TERM_GRACE_MS;
  const kill = opts.killGraceMs ?? EVICT_KILL_GRACE_MS;
  log.info('daemon', `serve: ${socket} is held by a live daemon, pid ${record.pid} (instance ${record.instanceId ?? '?'}); sending SIGTERM`);
  signalPid(record.pid, 'SIGTERM');
  if (await waitGone(record.pid, record.startTime, term)) return 'terminated';
  if ((await verifyHolder(record, socket)) !== 'ours') return 'terminated';
  log.warn('daemon', `serve: previous daemon pid ${record.pid} ignored SIGTERM for ${term}ms; sending SIGKILL`);
  signalPid(record.pid, 'SIGKILL');
  if (await waitGone(record.pid, record.startTime, kill)) return 'killed';
  return 'survivor';
}

export class RunDirLock {
  readonly file: string;
  readonly #handle: FileHandle;
  readonly #ino: number;
  #record: OwnerRecord;

  private constructor(file: string, handle: FileHandle, ino: number, record: OwnerRecord) {
    this.file = file;
    this.#handle = handle;
    this.#ino = ino;
    this.#record = record;
  }

  /**
   * Claims the directory of `socket`, evicting a verified live predecessor and taking over a stale record. Throws
   * LockError when a live holder cannot be removed or must not be signalled.
   */
  static async acquire(socket: string, log: Logger, opts: EvictionOptions = {}): Promise<RunDirLock> {
    const runDir = path.dirname(path.resolve(socket));
    const file = path.join(runDir, LOCK_FILE);
    const startTime = await startTimeOf('self');
    if (startTime === undefined) throw new LockError('cannot read this process start time from /proc');
    const record: OwnerRecord = { pid: process.pid, startTime, socket: path.resolve(socket), role: 'serve' };
    for (let attempt = 0; attempt < 50; attempt++) {
      let handle: FileHandle | undefined;
      try {
        handle = await open(file, 'wx', 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new LockError(`create ${file}: ${(err as Error).message}`);
      }
      if (handle) {
        await handle.writeFile(JSON.stringify(record));
        const st = await handle.stat();
        return new RunDirLock(file, handle, st.ino, record);
      }
      const seen = await readLock(runDir);
      if (!seen) continue; // released between our create and our read
      if (!seen.record) {
        // Created by another newcomer that has not written its record yet, or abandoned long ago.
        if (Date.now() - seen.mtimeMs < UNWRITTEN_RECORD_GRACE_MS) {
          await sleep(50);
          continue;
        }
        await takeOverStale(file, seen.ino);
        continue;
      }
      const verdict = await verifyHolder(seen.record, socket);
      if (verdict === 'foreign') {
        throw new LockError(
          `${file} is held by pid ${seen.record.pid}, which is not a claustrum daemon serving ${socket}; not signalling it (remove the file if that process is unrelated)`,
        );
      }
      if (verdict === 'ours') {
        const outcome = await evict(seen.record, socket, log, opts);
        log.info('daemon', `serve: previous owner of ${runDir}: ${outcome}`);
        if (outcome === 'survivor') throw new LockError(`daemon did not take over ${socket} (predecessor pid ${seen.record.pid} still owns it)`);
      }
      // Gone now, whether it was already dead or we just evicted it.
      await takeOverStale(file, seen.ino);
    }
    throw new LockError(`could not claim ${file}: it kept changing hands`);
  }

  get record(): OwnerRecord {
    return this.#record;
  }

  /** Completes the record once the daemon listens, in place. */
  async complete(instanceId: string, startedAt: number): Promise<void> {
    this.#record = { ...this.#record, instanceId, startedAt };
    const text = JSON.stringify(this.#record);
    await this.#handle.truncate(0);
    await this.#handle.write(text, 0);
  }

  /** Gives the directory up: the file goes, but only if it is still ours. */
  async release(): Promise<void> {
    try {
      const st = await lstat(this.file);
      if (st.ino === this.#ino) await unlink(this.file);
    } catch {
      // already gone
    }
    await this.#handle.close().catch(() => {});
  }
}

/** Removes a lock file judged stale, if it is still that same file (inode) once renamed aside. */
async function takeOverStale(file: string, ino: number): Promise<void> {
  const aside = `${file}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(file, aside);
  } catch {
    return; // someone else moved it first
  }
  const st = await lstat(aside).catch(() => undefined);
  if (st && st.ino !== ino) {
    // We moved a fresh lock another newcomer had just created: put it back (link fails if a third one exists).
    await link(aside, file).catch(() => {});
  }
  await unlink(aside).catch(() => {});
}
