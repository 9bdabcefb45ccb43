/**
 * Starting a child, in the keeper: piped (its own process group and session) or on a pseudo-terminal. The daemon has
 * resolved the command, checked the directory and built the environment; what can still fail here is the fork and
 * exec (and, for a terminal, the PTY), reported as the reference's `fork/exec <path>: <reason>`.
 */
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import { once } from 'node:events';
import { guardedStdio, prepareDescriptorGuard } from '../terminal/descriptors.js';
import { errnoText, syscallCode } from '../util/errno.js';
import { TerminalEvents, type TerminalParts } from './kept.js';
import type { SpawnFailure, SpawnSpec } from './protocol.js';

export class KeeperSpawnError extends Error {
  readonly failure: SpawnFailure;
  constructor(failure: SpawnFailure) {
    super(failure.reason);
    this.failure = failure;
  }
}

/**
 * Forks the child in its own process group (a new session: pgid = pid) with piped stdio. libuv reports most exec
 * failures through an 'error' event and some by throwing; both become Go's `fork/exec <path>: <reason>`.
 */
export async function startChild(spec: SpawnSpec): Promise<ChildProcess> {
  let child: ChildProcess;
  // A terminal's master is not close-on-exec (openpty): without the guard every piped child spawned while a terminal
  // lives inherits it (measured: /dev/ptmx at fds 21, 22, 25 of a piped `ls -l /proc/self/fd`).
  await prepareDescriptorGuard();
  try {
    child = spawnChild(spec.file, spec.args, {
      argv0: spec.command,
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: guardedStdio(['pipe', 'pipe', 'pipe']),
    });
  } catch (err) {
    // NUL in an argument or variable (ERR_INVALID_ARG_VALUE) is EINVAL to Go's exec.
    throw new KeeperSpawnError({ kind: 'forkExec', reason: errnoText(syscallCode(err)) });
  }
  if (child.pid !== undefined) return child;
  const [err] = (await once(child, 'error')) as [NodeJS.ErrnoException];
  for (const pipe of [child.stdin, child.stdout, child.stderr]) pipe?.destroy();
  throw new KeeperSpawnError({ kind: 'forkExec', reason: errnoText(err.code) });
}

/**
 * Starts a program on a pseudo-terminal, with the cutter that goes with it. The terminal modules load at the first
 * terminal: a keeper that never runs one pays nothing for them. A PTY package that cannot load fails this spawn only
 * (`ptyUnavailable`); piped processes are unaffected.
 */
export async function startTerminal(spec: SpawnSpec): Promise<{ tty: TerminalParts; events: TerminalEvents }> {
  const size = spec.pty!;
  const [{ spawnTerminal, PtyUnavailableError, TerminalSpawnError }, { OutputCutter }] = await Promise.all([
    import('../terminal/pty.js'),
    import('../terminal/cutter.js'),
  ]);
  const events = new TerminalEvents();
  let terminal: import('../terminal/pty.js').Terminal;
  try {
    terminal = await spawnTerminal({
      file: spec.file,
      args: spec.args,
      cwd: spec.cwd,
      env: spec.env,
      cols: size.cols,
      rows: size.rows,
      term: spec.term,
      onData: events.data,
      onLeaderExit: events.leaderExit,
      onExit: events.exit,
    });
  } catch (err) {
    if (err instanceof PtyUnavailableError) throw new KeeperSpawnError({ kind: 'ptyUnavailable', reason: err.message });
    if (err instanceof TerminalSpawnError) {
      if (err.reason === 'openpty') throw new KeeperSpawnError({ kind: 'ptyUnavailable', reason: err.message });
      throw new KeeperSpawnError({ kind: 'forkExec', reason: errnoText(err.reason) });
    }
    throw err;
  }
  return { tty: { terminal, cutter: new OutputCutter(events.piece) }, events };
}
