/**
 * Process facts read from /proc, for tests that must know whether a pid outside the daemon is still alive.
 *
 * `kill(pid, 0)` is not enough here: a killed grandchild is re-parented, and if nothing reaps it (a container's
 * PID 1 often does not), it lingers as a zombie that `kill(pid, 0)` still reports as existing.
 */
import { readFileSync } from 'node:fs';

/** The one-letter state of a pid (`R`, `S`, `Z`, …), or undefined when it does not exist. */
export function processState(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
}

/** True while the pid is a live process (not gone, not a zombie). */
export function processLive(pid: number): boolean {
  const s = processState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X';
}

/** The process group of a pid, read from /proc; undefined when it does not exist. */
export function processGroup(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

/** SIGKILLs a pid left behind by a test, ignoring one that is already gone. */
export function killQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
