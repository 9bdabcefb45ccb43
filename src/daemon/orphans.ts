/**
 * The orphan registry: a record per child in `<socket dir>/children/<pid>.json`, written by the keeper
 * (src/keeper/) that runs the child, so a keeper that dies without its teardown (SIGKILL, OOM, a crash) leaks no
 * children past the next daemon start, which reaps the children of dead keepers.
 *
 * A record names the child by pid and OS start time, and its keeper the same way (fields `daemonPid` and
 * `daemonStartTime`, named when the daemon itself was the parent); the reap signals a child only if that pair still
 * matches (a reused pid is never hit) and its keeper is gone. The children of a live keeper are the next daemon's to
 * adopt, never to reap.
 *
 * Durability (issue 10, point 1): a record is complete on disk before the keeper answers the spawn (so before the
 * daemon's reply). It is written to a temporary name and renamed into place, so a reader sees a whole record or none.
 * It is not fsynced: the records guard against the keeper dying, not the host (after a host crash no child is left
 * to reap), and the page cache outlives a SIGKILLed process; an fsync would put a disk flush on every spawn.
 *
 * Trust (issue 10, point 2): the reaper reads records only from a `children/` directory that is a real directory
 * owned by the daemon's user with mode 0700, and only records that are regular files (opened with O_NOFOLLOW) owned
 * by that user, of bounded size and the expected shape. Anything else is logged and left alone: a planted record
 * must never make the daemon signal a process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { close, constants, fstat, open, read, rename, unlink, write } from 'node:fs';
import { chmod, lstat, mkdir, readdir, unlink as unlinkFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { isSameProcess, readStat, signalPid, startTimeOf } from '../process/procfs.js';
import { errnoText, errorCode } from '../util/errno.js';

export const CHILDREN_DIR = 'children';
/** Per start, at most this many records are read and this many children signalled (reference bounds). */
export const REAP_MAX_RECORDS = 128;
export const REAP_MAX_CHILDREN = 64;
/** SIGTERM first; SIGKILL for what is left after this long. */
export const REAP_TERM_GRACE_MS = 2000;
/** A record is a few hundred bytes; a file larger than this (4096 bytes) in children/ is not one of ours. */
export const MAX_RECORD_BYTES = 4096;

/** The children/ directory cannot hold records safely (wrong owner, mode or type). */
export class RecordDirError extends Error {}

export interface ChildRecord {
  readonly pid: number;
  readonly startTime: string;
  readonly instance: string;
  readonly daemonPid: number;
  readonly daemonStartTime: string;
  readonly argv0: string;
  readonly at: number;
}

export class ChildRegistry {
  readonly dir: string;
  readonly #instance: string;
  readonly #daemonStartTime: string;
  readonly #log: Logger;
  /** The write of each record, so its removal never overtakes it. */
  readonly #writes = new Map<number, Promise<boolean>>();

  constructor(runDir: string, instance: string, daemonStartTime: string, log: Logger) {
    this.dir = path.join(runDir, CHILDREN_DIR);
    this.#instance = instance;
    this.#daemonStartTime = daemonStartTime;
    this.#log = log;
  }

  /** Creates children/ (0700), or checks the one there: ours, a real directory, no access for others. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const problem = await untrustedRecordDir(this.dir);
    if (problem === undefined) return;
    const st = await lstat(this.dir);
    if (st.isDirectory() && st.uid === process.geteuid?.()) {
      // Ours, only too open (an older daemon or a hand-made directory): narrowed, and said so.
      await chmod(this.dir, 0o700);
      this.#log.warn('daemon', `${this.dir} was mode ${(st.mode & 0o777).toString(8)}; narrowed to 0700`);
      return;
    }
    throw new RecordDirError(`${this.dir}: ${problem}; remove it (the daemon recreates it, mode 0700)`);
  }

  /**
   * Records a child just spawned, and resolves once the record is complete on disk under its final name; rejects
   * when it cannot be written (the caller then kills the child rather than acknowledge an unrecorded spawn).
   * Callback I/O, one step after another: this runs for every spawn, and the promise API's file handles cost a spawn
   * burst 15% of its rate (bench/RESULTS.md, figure 4).
   */
  add(pid: number, argv0: string): Promise<void> {
    const write = startTimeOf(pid).then((startTime) => {
      if (startTime === undefined) return false; // already gone: no record, nothing to remove
      const rec: ChildRecord = {
        pid,
        startTime,
        instance: this.#instance,
        daemonPid: process.pid,
        daemonStartTime: this.#daemonStartTime,
        argv0,
        at: Date.now(),
      };
      return writeAtomically(this.dir, `${pid}.json`, JSON.stringify(rec)).then(() => true);
    });
    // A failed write may have left nothing; removal then has nothing to do.
    this.#writes.set(
      pid,
      write.catch(() => false),
    );
    return write.then(
      () => undefined,
      (err: unknown) => {
        const code = errorCode(err);
        throw new Error(`cannot record child ${pid} in ${this.dir}: ${code ? errnoText(code) : (err as Error).message}`);
      },
    );
  }

  /** Removes a child's record: it exited, or -keep-children leaves it to the operator. */
  remove(pid: number): Promise<void> {
    const pending = this.#writes.get(pid) ?? Promise.resolve(true);
    this.#writes.delete(pid);
    return pending.then((written) => {
      if (!written) return;
      return new Promise<void>((resolve) => unlink(this.#file(pid), () => resolve()));
    });
  }

  #file(pid: number): string {
    return path.join(this.dir, `${pid}.json`);
  }
}

/** The temporary names records are written under: `.<final name>.<random>.tmp`; never read as records. */
const TEMP_RECORD = /^\.\d+\.json\.[0-9a-f]+\.tmp$/;

/** Writes `text` to `dir/name` through a temporary file and a rename: readers see all of it or nothing. */
function writeAtomically(dir: string, name: string, text: string): Promise<void> {
  const temp = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  return new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => unlink(temp, () => reject(err));
    open(temp, flags, 0o600, (err, fd) => {
      if (err) return reject(err);
      const bytes = Buffer.from(text);
      write(fd, bytes, 0, bytes.length, 0, (werr, n) => {
        close(fd, (cerr) => {
          const e = werr ?? cerr ?? (n !== bytes.length ? new Error(`short write (${n} of ${bytes.length} bytes)`) : null);
          if (e) return fail(e);
          rename(temp, path.join(dir, name), (rerr) => (rerr ? fail(rerr) : resolve()));
        });
      });
    });
  });
}

/** Why `dir` cannot be trusted with records, or undefined when it is a real directory of ours, mode 0700. */
async function untrustedRecordDir(dir: string): Promise<string | undefined> {
  let st;
  try {
    st = await lstat(dir);
  } catch (err) {
    return errnoText(errorCode(err));
  }
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid) return `belongs to uid ${st.uid}, not to the daemon's user (uid ${uid})`;
  if ((st.mode & 0o077) !== 0) return `has mode ${(st.mode & 0o777).toString(8)}, not 0700`;
  return undefined;
}

/**
 * Reads one record without following a link or blocking on a FIFO: the file must be a regular file of ours, at most
 * MAX_RECORD_BYTES, holding a record of the right shape. Returns the record or why it is not one.
 */
function readRecord(file: string): Promise<ChildRecord | string> {
  return new Promise((resolve) => {
    open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK, (err, fd) => {
      if (err) return resolve(err.code === 'ELOOP' ? 'is a symbolic link' : errnoText(err.code));
      const done = (v: ChildRecord | string) => close(fd, () => resolve(v));
      fstat(fd, (serr, st) => {
        if (serr) return done(errnoText(serr.code));
        if (!st.isFile()) return done('is not a regular file');
        const uid = process.geteuid?.();
        if (uid !== undefined && st.uid !== uid) return done(`belongs to uid ${st.uid}, not to the daemon's user`);
        if (st.size > MAX_RECORD_BYTES) return done(`is ${st.size} bytes, more than a record's ${MAX_RECORD_BYTES}`);
        const buf = Buffer.alloc(MAX_RECORD_BYTES + 1);
        read(fd, buf, 0, buf.length, 0, (rerr, n) => {
          if (rerr) return done(errnoText(rerr.code));
          done(parseRecord(buf.toString('utf8', 0, n)) ?? 'is not a complete record');
        });
      });
    });
  });
}

function parseRecord(text: string): ChildRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const pidOk = (x: unknown) => Number.isSafeInteger(x) && (x as number) > 1;
  const ticks = (x: unknown) => typeof x === 'string' && /^\d{1,20}$/.test(x);
  if (!pidOk(r.pid) || !ticks(r.startTime) || !pidOk(r.daemonPid) || !ticks(r.daemonStartTime)) return undefined;
  return {
    pid: r.pid as number,
    startTime: r.startTime as string,
    instance: typeof r.instance === 'string' ? r.instance : '',
    daemonPid: r.daemonPid as number,
    daemonStartTime: r.daemonStartTime as string,
    argv0: typeof r.argv0 === 'string' ? r.argv0 : '',
    at: typeof r.at === 'number' ? r.at : 0,
  };
}

/**
 * Reaps the recorded children of daemons that are gone: SIGTERM to each live child's process group, SIGKILL after
 * the grace to what survives, records removed. Resolves with the number of children signalled.
 */
export async function reapOrphans(runDir: string, log: Logger, termGraceMs = REAP_TERM_GRACE_MS): Promise<number> {
  const dir = path.join(runDir, CHILDREN_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const problem = await untrustedRecordDir(dir);
  if (problem !== undefined) {
    log.warn('daemon', `not reaping orphans: ${dir} ${problem}; its records are left alone`);
    return 0;
  }
  for (const name of names.filter((n) => TEMP_RECORD.test(n))) {
    // A daemon died between creating a record and renaming it, so that spawn was never acknowledged.
    log.warn('daemon', `incomplete child record ${path.join(dir, name)} (a daemon died while writing it); left alone`);
  }
  const victims: ChildRecord[] = [];
  for (const name of names.filter((n) => /^\d+\.json$/.test(n)).slice(0, REAP_MAX_RECORDS)) {
    const file = path.join(dir, name);
    const rec = await readRecord(file);
    if (typeof rec === 'string') {
      log.warn('daemon', `child record ${file} ${rec}; left alone`);
      continue;
    }
    if (`${rec.pid}.json` !== name) {
      log.warn('daemon', `child record ${file} names pid ${rec.pid}; left alone`);
      continue;
    }
    if (rec.daemonPid !== process.pid && (await isSameProcess(rec.daemonPid, rec.daemonStartTime))) continue; // a live daemon's
    if (victims.length < REAP_MAX_CHILDREN && (await isSameProcess(rec.pid, rec.startTime))) victims.push(rec);
    else await unlinkFile(file).catch(() => {});
  }
  for (const rec of victims) {
    log.info('daemon', `reaping orphaned child pid ${rec.pid} (${rec.argv0}) of dead keeper instance ${rec.instance}`);
    signalTree(rec, 'SIGTERM');
  }
  const deadline = Date.now() + termGraceMs;
  let alive = victims;
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = (await Promise.all(alive.map(async (r) => ((await isSameProcess(r.pid, r.startTime)) ? r : undefined)))).filter(
      (r): r is ChildRecord => r !== undefined,
    );
  }
  for (const rec of alive) {
    if (await isSameProcess(rec.pid, rec.startTime)) {
      log.warn('daemon', `orphaned child pid ${rec.pid} ignored SIGTERM for ${termGraceMs}ms; sending SIGKILL`);
      signalTree(rec, 'SIGKILL');
    }
  }
  await Promise.all(victims.map((r) => unlinkFile(path.join(dir, `${r.pid}.json`)).catch(() => {})));
  return victims.length;
}

/** The child's whole process group when it still leads one (it did at spawn), else the child alone. */
function signalTree(rec: ChildRecord, sig: NodeJS.Signals): void {
  void readStat(rec.pid).then((st) => signalPid(st && st.pgid === rec.pid ? -rec.pid : rec.pid, sig));
}
