/**
 * The process table: spawning, lookup by client-chosen id, retention of exited processes, and the shutdown sweep.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { REPLAY_CAP_BYTES } from '../replay/buffer.js';
import { type BudgetMember, DEFAULT_REPLAY_BUDGET_BYTES, ReplayBudget } from '../replay/budget.js';
import { errnoText, syscallCode } from '../util/errno.js';
import { expandTilde } from '../util/paths.js';
import { checkWorkingDirectory, resolveCommand, SpawnError } from './command.js';
import { buildChildEnv } from './env.js';
import { EXIT_DRAIN_GRACE_MS, ManagedProcess, type ProcessObserver, TerminalEvents, type TerminalParts } from './child.js';
import { descendantsOf, processTable, signalPid } from './procfs.js';
import { guardedStdio, prepareDescriptorGuard } from '../terminal/descriptors.js';
import { guardSpawnDescriptorLeak } from './spawn-guard.js';
import { STDIN_QUEUE_CAP_BYTES } from './stdin.js';
import type { KilledBy } from '../replay/frame.js';

/** How long an exited process and its replay buffer stay reachable after the exit frame (claustrum's value). */
export const EXITED_RETENTION_MS = 15 * 60_000;
/** How often exited processes past retention are swept (also done at every spawn). */
export const RETENTION_SWEEP_MS = 60_000;
/** How long shutdown waits for the children it killed to be reaped. */
export const SHUTDOWN_KILL_WAIT_MS = 1000;

export interface SupervisorOptions {
  readonly replayCapBytes?: number;
  /** The budget of every replay buffer together (`-replay-budget`); DEFAULT_REPLAY_BUDGET_BYTES when absent. */
  readonly replayBudgetBytes?: number;
  readonly stdinQueueCapBytes?: number;
  readonly drainGraceMs?: number;
  readonly retentionMs?: number;
  /** The base environment of children; the daemon's own by default. */
  readonly environment?: NodeJS.ProcessEnv;
  /** The PATH children get instead of the daemon's (the login shell's), resolved at the first spawn. */
  readonly childPath?: () => Promise<string | undefined>;
  readonly observer?: ProcessObserver & SupervisorObserver;
}

export interface SupervisorObserver {
  /** The replay budget evicted this many bytes to stay under its limit. */
  reclaimed?(bytes: number): void;
  /**
   * A child was started. A returned promise is awaited before the spawn resolves (so before its reply leaves): the
   * daemon writes the child's orphan record here. If it rejects, the child is killed and the spawn fails.
   */
  spawned?(proc: ManagedProcess, latencyMs: number): void | Promise<void>;
  spawnFailed?(kind: string): void;
}

export interface SpawnRequest {
  readonly id: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>> | undefined;
  /** Run on a pseudo-terminal of this size. */
  readonly pty?: { readonly cols: number; readonly rows: number } | undefined;
  /** TERM for a terminal program (`xterm-256color` by default). */
  readonly term?: string | undefined;
  /** Extension `clearEnv`: the child gets `env` alone, not merged over the daemon's environment. */
  readonly clearEnv?: boolean;
}

export class Supervisor {
  readonly #log: Logger;
  readonly #options: Required<Omit<SupervisorOptions, 'childPath' | 'observer' | 'replayBudgetBytes'>> & Pick<SupervisorOptions, 'childPath'>;
  /** Every observer added, called in order through one stable object the processes hold. */
  readonly #observers: (ProcessObserver & SupervisorObserver)[] = [];
  readonly #observer: ProcessObserver & SupervisorObserver = fanOut(this.#observers);
  /** Client id → process. A respawn of a live id replaces the entry and leaves the old child running. */
  readonly #table = new Map<string, ManagedProcess>();
  /** Every child not yet exited, including ones whose table entry a respawn took: shutdown must reach them all. */
  readonly #live = new Set<ManagedProcess>();
  /** Spawns in progress by id, so requests pipelined behind a spawn see its outcome rather than racing it. */
  readonly #pending = new Map<string, Promise<unknown>>();
  readonly #sweeper: NodeJS.Timeout;
  readonly budget: ReplayBudget;

  constructor(log: Logger, options: SupervisorOptions = {}) {
    guardSpawnDescriptorLeak();
    this.#log = log;
    if (options.observer) this.#observers.push(options.observer);
    this.#options = {
      replayCapBytes: options.replayCapBytes ?? REPLAY_CAP_BYTES,
      stdinQueueCapBytes: options.stdinQueueCapBytes ?? STDIN_QUEUE_CAP_BYTES,
      drainGraceMs: options.drainGraceMs ?? EXIT_DRAIN_GRACE_MS,
      retentionMs: options.retentionMs ?? EXITED_RETENTION_MS,
      environment: options.environment ?? process.env,
      childPath: options.childPath,
    };
    this.budget = new ReplayBudget(
      options.replayBudgetBytes ?? DEFAULT_REPLAY_BUDGET_BYTES,
      () => this.#budgetMembers(),
      (bytes) => this.#observer.reclaimed?.(bytes),
    );
    this.#sweeper = setInterval(() => this.sweep(), RETENTION_SWEEP_MS);
    this.#sweeper.unref();
  }

  /** Adds an observer of every process event (metrics, registries); the ones given at construction come first. */
  addObserver(observer: ProcessObserver & SupervisorObserver): void {
    this.#observers.push(observer);
  }

  *#budgetMembers(): Iterable<BudgetMember> {
    // Superseded live processes are in #live only; retained ones in #table only; most in both.
    const seen = new Set<ManagedProcess>();
    for (const proc of [...this.#table.values(), ...this.#live]) {
      if (seen.has(proc)) continue;
      seen.add(proc);
      yield { buffer: proc.replay, live: !proc.exited, exitedAt: proc.exitFrameAt, keepAbove: proc.owedAbove };
    }
  }

  get(id: string): ManagedProcess | undefined {
    return this.#table.get(id);
  }

  /** The spawn of `id` still in progress, if any. */
  pendingSpawn(id: string): Promise<unknown> | undefined {
    return this.#pending.get(id);
  }

  /** Processes in the table, oldest first. */
  list(): ManagedProcess[] {
    return [...this.#table.values()].sort((a, b) => a.startedAt - b.startedAt);
  }

  get liveCount(): number {
    return this.#live.size;
  }

  get retainedCount(): number {
    return this.#table.size;
  }

  /** Spawns a child. Rejects with SpawnError carrying the reference's failure, in the reference's check order. */
  spawn(req: SpawnRequest): Promise<ManagedProcess> {
    const before = this.#pending.get(req.id);
    const run = (before ? before.then(noop, noop) : Promise.resolve()).then(() => this.#spawn(req));
    const settled = run.then(noop, noop);
    this.#pending.set(req.id, settled);
    void settled.then(() => {
      if (this.#pending.get(req.id) === settled) this.#pending.delete(req.id);
    });
    return run;
  }

  async #spawn(req: SpawnRequest): Promise<ManagedProcess> {
    const started = performance.now();
    this.sweep();
    try {
      const cwd = req.cwd ? expandTilde(req.cwd) : undefined;
      if (cwd !== undefined) await checkWorkingDirectory(cwd);
      const file = await resolveCommand(req.command, this.#options.environment.PATH);
      // A request that brings its own PATH in its own environment has no use for the login shell's.
      const loginPath = req.clearEnv && req.env?.PATH !== undefined ? undefined : await this.#options.childPath?.();
      const env = buildChildEnv(req.clearEnv ? {} : this.#options.environment, req.env, loginPath);
      const source = req.pty
        ? await startTerminal(file, req.args, cwd, env, req.pty, req.term)
        : { child: await startChild(file, req.command, req.args, cwd, env) };
      const proc = new ManagedProcess(
        { id: req.id, command: req.command, args: req.args, cwd },
        source,
        {
          replayCapBytes: this.#options.replayCapBytes,
          replayAccount: this.budget.account,
          stdinQueueCapBytes: this.#options.stdinQueueCapBytes,
          drainGraceMs: this.#options.drainGraceMs,
        },
        this.#log,
        this.#observer,
      );
      this.#table.set(req.id, proc);
      this.#live.add(proc);
      void proc.whenExited().then(() => this.#live.delete(proc));
      this.#log.info('process.Manager', `Process ${req.id} started, PID=${proc.pid}, command=${req.command}`);
      try {
        await this.#observer.spawned?.(proc, performance.now() - started);
      } catch (err) {
        // Unrecorded, the child would outlive a daemon crash unseen: it is not acknowledged, it is killed.
        this.#log.error('process.Manager', `Process ${req.id}: ${(err as Error).message}; killing it`);
        proc.signal('SIGKILL', 'shutdown');
        if (this.#table.get(req.id) === proc) this.#table.delete(req.id);
        throw new SpawnError('forkExec', { path: file, reason: `${(err as Error).message} (the child was killed)` });
      }
      return proc;
    } catch (err) {
      if (err instanceof SpawnError) this.#observer.spawnFailed?.(err.key);
      throw err;
    }
  }

  /** Forgets exited processes whose retention has passed. Running processes are never pruned. */
  sweep(now = performance.now()): void {
    for (const [id, proc] of this.#table) {
      if (proc.exited && now - proc.exitFrameAt >= this.#options.retentionMs) {
        this.#table.delete(id);
        proc.dispose();
      }
    }
  }

  /**
   * The shutdown sweep: SIGKILL to every live child's process group (superseded ones included) and to every
   * descendant that left the group, then up to SHUTDOWN_KILL_WAIT_MS for their exits. Resolves with the number of
   * children signalled.
   */
  async killAll(by: KilledBy = 'shutdown', waitMs = SHUTDOWN_KILL_WAIT_MS): Promise<number> {
    const victims = [...this.#live];
    if (victims.length === 0) return 0;
    // Read the tree before killing anything: once a parent dies its descendants are re-parented and untraceable.
    const table = await processTable();
    const strays: number[] = [];
    for (const proc of victims) {
      for (const pid of descendantsOf(proc.pid, table)) if (table.get(pid)?.pgid !== proc.pid) strays.push(pid);
    }
    // A child reaped while a grandchild holds its pipes still has a group worth killing: a group id cannot be
    // reused while it has members, and the table shows whether it has any.
    const groups = new Set([...table.values()].map((st) => st.pgid));
    for (const proc of victims) proc.signal('SIGKILL', by, groups.has(proc.pid));
    // Descendants that left the group (setsid, setpgid): by pid, as read a moment ago.
    for (const pid of strays) signalPid(pid, 'SIGKILL');
    await Promise.race([Promise.all(victims.map((p) => p.whenExited())), sleep(waitMs, undefined, { ref: false })]);
    return victims.length;
  }

  /** Every child still running, for a shutdown that keeps them. */
  liveProcesses(): ManagedProcess[] {
    return [...this.#live];
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}

function noop(): void {}

/** One observer calling each of `list`'s hooks in order; `list` may grow later. */
function fanOut(list: readonly (ProcessObserver & SupervisorObserver)[]): ProcessObserver & SupervisorObserver {
  const each =
    <K extends keyof (ProcessObserver & SupervisorObserver)>(name: K) =>
    (...args: Parameters<NonNullable<(ProcessObserver & SupervisorObserver)[K]>>) => {
      for (const o of list) (o[name] as ((...a: typeof args) => void) | undefined)?.call(o, ...args);
    };
  return {
    output: each('output'),
    evicted: each('evicted'),
    reaped: each('reaped'),
    exited: each('exited'),
    drainTimedOut: each('drainTimedOut'),
    // Awaited by the spawn (the orphan record before the reply): a hook that returns a promise is waited for.
    spawned: async (...args) => {
      for (const o of list) await o.spawned?.call(o, ...args);
    },
    reclaimed: each('reclaimed'),
    spawnFailed: each('spawnFailed'),
  };
}

/**
 * Starts a program on a pseudo-terminal, with the cutter and the screen keeper that go with it. The terminal modules
 * (the native PTY package, xterm.js) load at the first terminal: a daemon that never runs one pays nothing for them.
 * A PTY package that cannot load fails this spawn only (`ptyUnavailable`); piped processes are unaffected.
 */
async function startTerminal(
  file: string,
  args: readonly string[],
  cwd: string | undefined,
  env: Record<string, string>,
  size: { readonly cols: number; readonly rows: number },
  term: string | undefined,
): Promise<{ tty: TerminalParts; events: TerminalEvents }> {
  const [{ spawnTerminal, PtyUnavailableError, TerminalSpawnError }, { OutputCutter }, { ScreenKeeper }] = await Promise.all([
    import('../terminal/pty.js'),
    import('../terminal/cutter.js'),
    import('../terminal/screen.js'),
  ]);
  const events = new TerminalEvents();
  let terminal: import('../terminal/pty.js').Terminal;
  try {
    terminal = await spawnTerminal({
      file,
      args,
      cwd,
      env,
      cols: size.cols,
      rows: size.rows,
      term,
      onData: events.data,
      onLeaderExit: events.leaderExit,
      onExit: events.exit,
    });
  } catch (err) {
    if (err instanceof PtyUnavailableError) throw new SpawnError('ptyUnavailable', { reason: err.message });
    if (err instanceof TerminalSpawnError) {
      if (err.reason === 'openpty') throw new SpawnError('ptyUnavailable', { reason: err.message });
      throw new SpawnError('forkExec', { path: file, reason: errnoText(err.reason) });
    }
    throw err;
  }
  return { tty: { terminal, cutter: new OutputCutter(events.piece), keeper: new ScreenKeeper({ cols: size.cols, rows: size.rows }) }, events };
}

/**
 * Forks the child in its own process group (a new session: pgid = pid) with piped stdio. libuv reports most exec
 * failures through an 'error' event and some by throwing; both become Go's `fork/exec <path>: <reason>`.
 */
async function startChild(
  file: string,
  argv0: string,
  args: readonly string[],
  cwd: string | undefined,
  env: Record<string, string>,
): Promise<ChildProcess> {
  let child: ChildProcess;
  // A terminal's master is not close-on-exec (openpty): without the guard every piped child spawned while a terminal
  // lives inherits it (measured: /dev/ptmx at fds 21, 22, 25 of a piped `ls -l /proc/self/fd`).
  await prepareDescriptorGuard();
  try {
    child = spawnChild(file, args, { argv0, cwd, env, detached: true, stdio: guardedStdio(['pipe', 'pipe', 'pipe']) });
  } catch (err) {
    // NUL in an argument or variable (ERR_INVALID_ARG_VALUE) is EINVAL to Go's exec.
    throw new SpawnError('forkExec', { path: file, reason: errnoText(syscallCode(err)) });
  }
  if (child.pid !== undefined) return child;
  const [err] = (await once(child, 'error')) as [NodeJS.ErrnoException];
  for (const pipe of [child.stdin, child.stdout, child.stderr]) pipe?.destroy();
  throw new SpawnError('forkExec', { path: file, reason: errnoText(err.code) });
}
