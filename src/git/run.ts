/**
 * Running git for the git.* methods: an argument vector handed to the `git` executable (never a shell), in a
 * process group of its own, with its output captured up to a bound, and an optional deadline (`-git-timeout`,
 * divergence D5) that kills the whole group. Everything is asynchronous, so a slow git never blocks other requests.
 *
 * Every call carries two settings that keep a client-named repository from running code in the daemon:
 * `core.hooksPath=/dev/null` (no hooks, e.g. post-checkout on `worktree add`) and `core.fsmonitor=false` (no
 * fsmonitor command on `status`). `GIT_TERMINAL_PROMPT=0` and a closed stdin mean git never waits for input, and
 * `GIT_OPTIONAL_LOCKS=0` keeps read-only calls from taking the index lock.
 */
import { CatalogueError, type ErrorKey } from '../protocol/errors.js';
import { spawn } from 'node:child_process';
import { goSignalText } from '../util/gotext.js';
import { errnoText } from '../util/errno.js';

/** `-git-timeout` default: 0, no deadline (reference parity). */
export const DEFAULT_GIT_TIMEOUT_MS = 0;
/** The most bytes kept of each of git's output streams; the rest is read and dropped. */
export const GIT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/** How long after git exits its output may stay open (a descendant holding the pipes) before the call ends anyway. */
export const GIT_WAIT_DELAY_MS = 5000;

export const GIT_HARDENING: readonly string[] = ['-c', 'core.hooksPath=/dev/null', '-c', 'core.fsmonitor=false'];

export interface GitOptions {
  /** Kill git after this many milliseconds; 0 or less means no deadline. */
  readonly timeoutMs: number;
  readonly maxOutputBytes?: number;
  readonly waitDelayMs?: number;
  /** The executable; `git` from the daemon's PATH unless a test says otherwise. */
  readonly executable?: string;
}

/** Why a git call did not succeed, in terms Go's os/exec would report. */
export type GitExecFailure =
  | { readonly kind: 'exit'; readonly status: number }
  | { readonly kind: 'signal'; readonly signal: string }
  | { readonly kind: 'notFound'; readonly name: string }
  | { readonly kind: 'spawn'; readonly path: string; readonly reason: string };

export interface GitResult {
  readonly ok: boolean;
  readonly failure: GitExecFailure | undefined;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** The deadline fired and the group was killed. */
  readonly timedOut: boolean;
  /** Some output was dropped at the bound. */
  readonly truncated: boolean;
}

/** Go's error text for a failed exec: `exit status 128`, `signal: killed`, `exec: "git": executable file not found in $PATH`. */
export function execErrorText(f: GitExecFailure): string {
  switch (f.kind) {
    case 'exit':
      return `exit status ${f.status}`;
    case 'signal':
      return `signal: ${goSignalText(f.signal)}`;
    case 'notFound':
      return `exec: "${f.name}": executable file not found in $PATH`;
    case 'spawn':
      return `fork/exec ${f.path}: ${f.reason}`;
  }
}

/** A git failure a method reports as an error (git.status, git.list_branches): Go's exec error, from the catalogue. */
export class GitError extends CatalogueError {
  readonly failure: GitExecFailure;
  constructor(failure: GitExecFailure) {
    super(...catalogued(failure));
    this.name = 'GitError';
    this.failure = failure;
  }
}

function catalogued(f: GitExecFailure): [ErrorKey, never] {
  switch (f.kind) {
    case 'exit':
      return ['gitExitStatus', { status: String(f.status) } as never];
    case 'signal':
      return ['gitSignal', { signal: goSignalText(f.signal) } as never];
    case 'notFound':
      return ['executableNotFound', { name: f.name } as never];
    case 'spawn':
      return ['forkExec', { path: f.path, reason: f.reason } as never];
  }
}

/** Runs a command (git by default) with `args`, after the hardening settings when it is git. */
export function runCommand(file: string, args: readonly string[], options: GitOptions, env?: NodeJS.ProcessEnv): Promise<GitResult> {
  const maxOutput = options.maxOutputBytes ?? GIT_MAX_OUTPUT_BYTES;
  const waitDelay = options.waitDelayMs ?? GIT_WAIT_DELAY_MS;
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: env ?? process.env,
    });
    const out = new Capture(maxOutput);
    const err = new Capture(maxOutput);
    let timedOut = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    let deadline: NodeJS.Timeout | undefined;
    let drain: NodeJS.Timeout | undefined;

    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const finish = (result: GitResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(drain);
      resolve(result);
    };
    const finishWithExit = () => {
      const e = exit!;
      let failure: GitExecFailure | undefined;
      if (e.signal !== null) failure = { kind: 'signal', signal: e.signal };
      else if (e.code !== 0) failure = { kind: 'exit', status: e.code ?? -1 };
      finish({ ok: failure === undefined, failure, stdout: out.bytes(), stderr: err.bytes(), timedOut, truncated: out.truncated || err.truncated });
    };

    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      // The spawn itself failed (no such executable, no permission): Go's LookPath / fork/exec texts.
      const failure: GitExecFailure =
        e.code === 'ENOENT' && !file.includes('/') ? { kind: 'notFound', name: file } : { kind: 'spawn', path: file, reason: errnoText(e.code) };
      finish({ ok: false, failure, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), timedOut: false, truncated: false });
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Output still open after the exit belongs to a descendant; do not wait for it forever.
      drain = setTimeout(() => {
        killGroup();
        child.stdout.destroy();
        child.stderr.destroy();
        finishWithExit();
      }, waitDelay);
    });
    child.on('close', () => {
      if (exit !== undefined) finishWithExit();
    });
    if (options.timeoutMs > 0) {
      deadline = setTimeout(() => {
        timedOut = true;
        killGroup();
      }, options.timeoutMs);
    }
  });
}

/** `git -C <dir> <hardening> <args…>`; `-C ""` leaves git in the daemon's working directory, as Go's does. */
export function runGit(dir: string, args: readonly string[], options: GitOptions): Promise<GitResult> {
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' };
  return runCommand(options.executable ?? 'git', ['-C', dir, ...GIT_HARDENING, ...args], options, env);
}

/** Keeps the first `max` bytes of a stream. */
class Capture {
  readonly #max: number;
  readonly #parts: Buffer[] = [];
  #size = 0;
  truncated = false;

  constructor(max: number) {
    this.#max = max;
  }

  push(d: Buffer): void {
    const room = this.#max - this.#size;
    if (room <= 0) {
      if (d.length > 0) this.truncated = true;
      return;
    }
    const part = d.length > room ? d.subarray(0, room) : d;
    if (part.length < d.length) this.truncated = true;
    this.#parts.push(part);
    this.#size += part.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.#parts, this.#size);
  }
}
