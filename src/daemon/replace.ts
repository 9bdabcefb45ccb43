/**
 * What a `-serve` is about to replace: a second `-serve` on a socket whose daemon runs evicts it (SIGTERM, whose
 * teardown kills the old daemon's children unless it runs with -keep-children). Said on stderr before it happens,
 * so nobody loses processes without a word. Judged without the token: the lock owner (pid and OS start time), its
 * command line for -keep-children, and the orphan registry for its children.
 */
import { formatDuration } from '../util/duration.js';
import { cmdlineOf } from '../process/procfs.js';
import { readLock, verifyHolder } from './lock.js';
import { runDirectory } from '../protocol/paths.js';
import { liveChildren, scanChildRecords } from './records.js';

export interface Replacement {
  readonly pid: number;
  readonly instanceId: string | undefined;
  readonly startedAt: number | undefined;
  /** Its running children, as recorded. */
  readonly children: number;
  readonly keepChildren: boolean;
}

/** The live daemon a `-serve` on `socketPath` would evict, or undefined when there is none. */
export async function pendingReplacement(socketPath: string): Promise<Replacement | undefined> {
  const snap = await readLock(runDirectory(socketPath)).catch(() => undefined);
  const rec = snap?.record;
  if (!rec || (await verifyHolder(rec, socketPath)) !== 'ours') return undefined;
  const argv = (await cmdlineOf(rec.pid)) ?? [];
  const keepChildren = argv.some((a) => /^--?keep-children(=(true|1|t|T|TRUE|True))?$/.test(a));
  const scan = await scanChildRecords(runDirectory(socketPath));
  const children = (await liveChildren(scan.records, { pid: rec.pid, startTime: rec.startTime })).length;
  return { pid: rec.pid, instanceId: rec.instanceId, startedAt: rec.startedAt, children, keepChildren };
}

export function describeReplacement(socketPath: string, r: Replacement): string {
  const up = r.startedAt ? `, up ${formatDuration(Math.round((Date.now() - r.startedAt) / 1000) * 1000)}` : '';
  const who = `the daemon on ${socketPath} (pid ${r.pid}${r.instanceId ? `, instance ${r.instanceId}` : ''}${up})`;
  const what =
    r.children === 0
      ? 'it has no running process'
      : r.keepChildren
        ? `its ${r.children} running process(es) are left running without their stdio (it runs with -keep-children)`
        : `its ${r.children} running process(es) will be killed`;
  return `replacing ${who}: ${what}`;
}
