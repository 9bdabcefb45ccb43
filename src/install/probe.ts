/**
 * `<cli> --version`, bounded: the runnability check of `-install` and the whole of `-probe-cli`
 * (PROTOCOL.md).
 *
 * The CLI runs in its own process group (spawned detached: a new session, so also a new group) with stdin, stdout
 * and stderr on the null device, so a process that inherits its output cannot hold the check open after the CLI
 * exits. When the bound passes first, the whole group gets SIGKILL: a wrapper script and whatever it forked die with
 * it (a descendant that started its own session is out of reach, as on the reference). The clock starts before the
 * spawn call, so a slow exec counts toward the bound, as measured on the reference.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export type RunResult = 'ok' | 'failed' | 'stopped';

/** SIGKILL to the child's process group, then to the child itself; quiet when either is already gone. */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is gone or was never made.
  }
  try {
    child.kill('SIGKILL');
  } catch {
    // Already reaped.
  }
}

/**
 * Runs `<path> --version` and resolves `ok` (exit 0 within the bound), `stopped` (still running at the bound, and
 * killed) or `failed` (missing, could not start, non-zero exit, or killed by a signal not of our making).
 */
export function runVersion(path: string, boundMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    let stopped = false;
    let settled = false;
    const settle = (r: RunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      stopped = true;
      killGroup(child);
    }, boundMs);
    let child: ChildProcess;
    try {
      child = spawn(path, ['--version'], { detached: true, stdio: 'ignore' });
    } catch {
      // Synchronous spawn failures (an argument Node refuses, such as a path with a NUL byte).
      settle('failed');
      return;
    }
    child.on('error', () => settle('failed'));
    child.on('exit', (code) => settle(stopped ? 'stopped' : code === 0 ? 'ok' : 'failed'));
  });
}

/** The `-probe-cli` verdict on stdout: nothing when the CLI answered, else one token line (§8). */
export function probeVerdictLine(result: RunResult): string {
  switch (result) {
    case 'ok':
      return '';
    case 'stopped':
      return '__CLI_HUNG__\n';
    case 'failed':
      return '__CLI_BAD__\n';
  }
}
