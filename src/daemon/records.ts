/**
 * Reading the orphan registry (`children/<pid>.json`, written by src/daemon/orphans.ts) for the operator commands:
 * `-status` counts the children a dead daemon left running, a second `-serve` says how many children the daemon it
 * replaces holds, and `-purge -force` kills what is left.
 *
 * Because `-purge` signals what a record names, a record is trusted only as SSH trusts an authorized_keys file:
 * `children/` must be a directory owned by this user with no access for others, and each record a regular file (not
 * a symlink) owned by this user. Anything else is reported, never acted on. A record names a child by pid and OS
 * start time, and only a live process with that very start time counts.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isSameProcess } from '../process/procfs.js';
import { CHILDREN_DIR, type ChildRecord } from './orphans.js';

/** The most records one command reads (a registry holds one per running child; the daemon reaps 128 per start). */
export const MAX_RECORDS_READ = 4096;

export interface RecordScan {
  readonly records: readonly ChildRecord[];
  /** Files and directories not trusted, each with the reason. */
  readonly refused: readonly string[];
  /** Record file names, trusted or not, so a purge can remove them. */
  readonly files: readonly string[];
}

export async function scanChildRecords(runDir: string): Promise<RecordScan> {
  const dir = path.join(runDir, CHILDREN_DIR);
  const uid = process.getuid?.();
  const st = await lstat(dir).catch(() => undefined);
  if (!st) return { records: [], refused: [], files: [] };
  if (!st.isDirectory()) return { records: [], refused: [`${dir} is not a directory`], files: [] };
  if (uid !== undefined && st.uid !== uid) return { records: [], refused: [`${dir} belongs to uid ${st.uid}`], files: [] };
  if ((st.mode & 0o077) !== 0) return { records: [], refused: [`${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)})`], files: [] };
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d+\.json$/.test(n)).slice(0, MAX_RECORDS_READ);
  const records: ChildRecord[] = [];
  const refused: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const fst = await lstat(file).catch(() => undefined);
    if (!fst) continue;
    if (!fst.isFile()) {
      refused.push(`${file} is not a regular file`);
      continue;
    }
    if (uid !== undefined && fst.uid !== uid) {
      refused.push(`${file} belongs to uid ${fst.uid}`);
      continue;
    }
    const rec = parseRecord(await readFile(file, 'utf8').catch(() => ''));
    if (rec) records.push(rec);
    else refused.push(`${file} is not a child record`);
  }
  return { records, refused, files: names };
}

function parseRecord(text: string): ChildRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = v as Partial<ChildRecord> | null;
  if (typeof r !== 'object' || r === null) return undefined;
  if (!Number.isSafeInteger(r.pid) || r.pid! < 2 || typeof r.startTime !== 'string') return undefined;
  if (!Number.isSafeInteger(r.daemonPid) || typeof r.daemonStartTime !== 'string') return undefined;
  return {
    pid: r.pid!,
    startTime: r.startTime,
    instance: typeof r.instance === 'string' ? r.instance : '',
    daemonPid: r.daemonPid!,
    daemonStartTime: r.daemonStartTime,
    argv0: typeof r.argv0 === 'string' ? r.argv0 : '',
    at: typeof r.at === 'number' ? r.at : 0,
  };
}

/** The records whose child is still that very process, optionally only those of one daemon (pid and start time). */
export async function liveChildren(records: readonly ChildRecord[], daemon?: { pid: number; startTime: string }): Promise<ChildRecord[]> {
  const mine = daemon ? records.filter((r) => r.daemonPid === daemon.pid && r.daemonStartTime === daemon.startTime) : records;
  const alive = await Promise.all(mine.map((r) => isSameProcess(r.pid, r.startTime)));
  return mine.filter((_, i) => alive[i]);
}
