/**
 * The orphan registry: a record per child in `<socket dir>/children/<pid>.json`, so a daemon that dies without its
 * teardown (SIGKILL, OOM, a crash) leaks no children past the next start, which reaps the children of dead daemons.
 *
 * A record names the child by pid and OS start time, and its daemon the same way; the reap signals a child only if
 * that pair still matches (a reused pid is never hit) and its daemon is gone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { unlink, writeFile } from 'node:fs';
import { mkdir, readdir, readFile, unlink as unlinkFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { isSameProcess, readStat, signalPid, startTimeOf } from '../process/procfs.js';

export const CHILDREN_DIR = 'children';
/** Per start, at most this many records are read and this many children signalled (reference bounds). */
export const REAP_MAX_RECORDS = 128;
export const REAP_MAX_CHILDREN = 64;
/** SIGTERM first; SIGKILL for what is left after this long. */
export const REAP_TERM_GRACE_MS = 2000;

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

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Records a child just spawned; runs in the background, off the spawn's reply path. Callback I/O, one step after
   * another: this runs for every spawn, and the promise API's file handles cost a spawn burst 15% of its rate
   * (bench/RESULTS.md, figure 4).
   */
  add(pid: number, argv0: string): void {
    const write = new Promise<boolean>((resolve) => {
      void startTimeOf(pid).then((startTime) => {
        if (startTime === undefined) return resolve(false); // already gone: no record, nothing to remove
        const rec: ChildRecord = {
          pid,
          startTime,
          instance: this.#instance,
          daemonPid: process.pid,
          daemonStartTime: this.#daemonStartTime,
          argv0,
          at: Date.now(),
        };
        writeFile(this.#file(pid), JSON.stringify(rec), { mode: 0o600 }, (err) => {
          if (err) this.#log.warn('daemon', `child record ${pid}: ${err.message}`);
          resolve(true); // a failed write may still have created the file
        });
      });
    });
    this.#writes.set(pid, write);
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

/**
 * Reaps the recorded children of daemons that are gone: SIGTERM to each live child's process group, SIGKILL after
 * the grace to what survives, records removed. Resolves with the number of children signalled.
 */
export async function reapOrphans(runDir: string, log: Logger, termGraceMs = REAP_TERM_GRACE_MS): Promise<number> {
  const dir = path.join(runDir, CHILDREN_DIR);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^\d+\.json$/.test(n)).slice(0, REAP_MAX_RECORDS);
  } catch {
    return 0;
  }
  const victims: ChildRecord[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    let rec: ChildRecord;
    try {
      rec = JSON.parse(await readFile(file, 'utf8')) as ChildRecord;
    } catch {
      await unlinkFile(file).catch(() => {});
      continue;
    }
    if (rec.daemonPid !== process.pid && (await isSameProcess(rec.daemonPid, rec.daemonStartTime))) continue; // a live daemon's
    if (victims.length < REAP_MAX_CHILDREN && (await isSameProcess(rec.pid, rec.startTime))) victims.push(rec);
    else await unlinkFile(file).catch(() => {});
  }
  for (const rec of victims) {
    log.info('daemon', `reaping orphaned child pid ${rec.pid} (${rec.argv0}) of dead daemon instance ${rec.instance}`);
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
