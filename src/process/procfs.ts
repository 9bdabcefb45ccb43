/**
 * Process identity and process trees from /proc (Linux).
 *
 * A pid alone names a process only until it is reused; a pid with its OS start time (field 22 of /proc/<pid>/stat,
 * clock ticks since boot) names exactly one process for the life of the machine. Every place that may signal a pid
 * it did not just spawn (the lock eviction, -stop, the orphan reap) checks that pair first.
 *
 * The tree walk reads /proc once for all processes instead of running `ps` per process, as the tree-kill package
 * does: at a thousand children that is milliseconds instead of seconds (bench/ measures it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { close, open, read } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** The foreground process group of the controlling terminal, -1 when there is none. */
  readonly tpgid: number;
  /** Start time in clock ticks since boot, as text (it can pass 2^53 on long-lived machines only in theory). */
  readonly startTime: string;
  /** R, S, D, Z, T, … */
  readonly state: string;
}

/** Parses /proc/<pid>/stat text; the command name may contain spaces and parentheses, so fields follow the last `)`. */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close === -1) return undefined;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  if (f.length < 20) return undefined;
  return {
    pid,
    state: f[0]!,
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    sid: Number(f[3]),
    tpgid: Number(f[5]),
    startTime: f[19]!,
  };
}

/**
 * One open, one read, one close. procfs reports a size of 0, so a general readFile stats and reads twice; the stat
 * line always fits the buffer (the command name is at most 64 bytes). The orphan registry runs this for every
 * spawn, so each thread-pool round trip counts (bench/RESULTS.md, figure 4).
 */
export function readStat(pid: number | 'self'): Promise<ProcStat | undefined> {
  return new Promise((resolve) => {
    open(`/proc/${pid}/stat`, 'r', (err, fd) => {
      if (err) return resolve(undefined);
      const buf = Buffer.allocUnsafe(STAT_READ_BYTES);
      read(fd, buf, 0, STAT_READ_BYTES, 0, (readErr, n) => {
        close(fd, ignore);
        resolve(readErr ? undefined : parseStat(pid === 'self' ? process.pid : pid, buf.toString('utf8', 0, n)));
      });
    });
  });
}

const STAT_READ_BYTES = 4096;

function ignore(): void {}

/** The OS start time of a live (non-zombie) process, or undefined when it is gone. */
export async function startTimeOf(pid: number | 'self'): Promise<string | undefined> {
  const st = await readStat(pid);
  return st && st.state !== 'Z' ? st.startTime : undefined;
}

/** True when `pid` is still the process that had `startTime`. */
export async function isSameProcess(pid: number, startTime: string): Promise<boolean> {
  return pid > 1 && (await startTimeOf(pid)) === startTime;
}

/**
 * The argv of a process, or undefined when it is gone, unreadable, or has none left: an exiting process reads empty,
 * and one that blanked its title reads only NULs.
 */
export async function cmdlineOf(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (/^\0*$/.test(raw)) return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** One pass over /proc: every visible process. */
export async function processTable(): Promise<Map<number, ProcStat>> {
  const table = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return table;
  }
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        const st = await readStat(Number(n));
        if (st) table.set(st.pid, st);
      }),
  );
  return table;
}

/** Every descendant of `pid` (children, grandchildren, …) in the table, whatever group or session they moved to. */
export function descendantsOf(pid: number, table: ReadonlyMap<number, ProcStat>): number[] {
  const children = new Map<number, number[]>();
  for (const st of table.values()) {
    const list = children.get(st.ppid);
    if (list) list.push(st.pid);
    else children.set(st.ppid, [st.pid]);
  }
  const out: number[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Sends `signal` to a pid, ignoring a process that is already gone; returns false only when it is gone. */
export function signalPid(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Polls until `pid` is gone (or a zombie) or `ms` passes; true when it is gone. */
export async function waitGone(pid: number, startTime: string, ms: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!(await isSameProcess(pid, startTime))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
}
