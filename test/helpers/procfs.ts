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

/** The OS start time of a pid (/proc/<pid>/stat field 22), or undefined when it does not exist. */
export function startTimeOfPid(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The keeper of a daemon's directory, as its lock names it, if that process still runs. */
export function liveKeeper(runDir: string): { pid: number; startTime: string } | undefined {
  let rec: { pid: number; startTime: string };
  try {
    rec = JSON.parse(readFileSync(`${runDir}/keeper/keeper.lock`, 'utf8'));
  } catch {
    return undefined;
  }
  return startTimeOfPid(rec.pid) === rec.startTime && processLive(rec.pid) ? rec : undefined;
}

/**
 * Ends the keeper a test's daemon left (a daemon SIGKILLed, or stopped with -keep-children): it is asked with
 * SIGTERM (it kills its children and exits), then SIGKILLed with its children's groups if it does not go.
 */
export async function stopKeeper(runDir: string): Promise<void> {
  const keeper = liveKeeper(runDir);
  if (!keeper) return;
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (startTimeOfPid(keeper.pid) !== keeper.startTime || !processLive(keeper.pid)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };
  // A keeper whose daemon stopped exits on its own at once.
  if (await gone(300)) return;
  try {
    process.kill(keeper.pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await gone(5000)) return;
  killQuietly(keeper.pid);
}

/** SIGKILLs the keeper of a daemon's directory (its children become orphans); returns its pid, or undefined. */
export async function killKeeper(runDir: string): Promise<number | undefined> {
  const keeper = liveKeeper(runDir);
  if (!keeper) return undefined;
  killQuietly(keeper.pid);
  const deadline = Date.now() + 10_000;
  while (processLive(keeper.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return keeper.pid;
}
