/**
 * What a `-serve` is about to replace: a second `-serve` on a socket whose daemon runs takes over from it. The
 * processes stay with the keeper and the new daemon adopts them; the old daemon exits without touching them. Said on
 * stderr before it happens. Judged without the token: the lock owner (pid and OS start time), and the orphan
 * registry for the keeper's children.
 */
import { formatDuration } from '../util/duration.js';
import { isSameProcess } from '../process/procfs.js';
import { keeperDirectory, readLockRecord } from '../keeper/paths.js';
import { readLock, verifyHolder } from './lock.js';
import { runDirectory } from '../protocol/paths.js';
import { liveChildren, scanChildRecords } from './records.js';

export interface Replacement {
  readonly pid: number;
  readonly instanceId: string | undefined;
  readonly startedAt: number | undefined;
  /** The running children its keeper holds, as recorded. */
  readonly children: number;
}

/** The live daemon a `-serve` on `socketPath` would evict, or undefined when there is none. */
export async function pendingReplacement(socketPath: string): Promise<Replacement | undefined> {
  const snap = await readLock(runDirectory(socketPath)).catch(() => undefined);
  const rec = snap?.record;
  if (!rec || (await verifyHolder(rec, socketPath)) !== 'ours') return undefined;
  const runDir = runDirectory(socketPath);
  const keeper = readLockRecord(keeperDirectory(runDir));
  let children = 0;
  if (keeper && (await isSameProcess(keeper.pid, keeper.startTime))) {
    const scan = await scanChildRecords(runDir);
    children = (await liveChildren(scan.records, { pid: keeper.pid, startTime: keeper.startTime })).length;
  }
  return { pid: rec.pid, instanceId: rec.instanceId, startedAt: rec.startedAt, children };
}

export function describeReplacement(socketPath: string, r: Replacement): string {
  const up = r.startedAt ? `, up ${formatDuration(Math.round((Date.now() - r.startedAt) / 1000) * 1000)}` : '';
  const who = `the daemon on ${socketPath} (pid ${r.pid}${r.instanceId ? `, instance ${r.instanceId}` : ''}${up})`;
  const what = r.children === 0 ? 'it has no running process' : `its ${r.children} running process(es) keep running and are handed over`;
  return `taking over from ${who}: ${what}`;
}
