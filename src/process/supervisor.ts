/**
 * The process table: spawning (through the keeper, src/keeper/), lookup by client-chosen id, adoption of the
 * processes a previous daemon left with the keeper, retention of exited processes, and the shutdown sweep.
 */
import { performance } from 'node:perf_hooks';
import type { KeeperLink } from '../keeper/link.js';
import type { KeeperNotice, KeptState, ReapInfo } from '../keeper/protocol.js';
import type { Logger } from '../log/logger.js';
import { REPLAY_CAP_BYTES } from '../replay/buffer.js';
import { type BudgetMember, DEFAULT_REPLAY_BUDGET_BYTES, ReplayBudget } from '../replay/budget.js';
import type { KilledBy } from '../replay/frame.js';
import { expandTilde } from '../util/paths.js';
import { checkWorkingDirectory, resolveCommand, SpawnError } from './command.js';
import { buildChildEnv } from './env.js';
import { ManagedProcess, type ProcessObserver, type TerminalSide } from './child.js';

/** How long an exited process and its replay buffer stay reachable after the exit frame (claustrum's value). */
export const EXITED_RETENTION_MS = 15 * 60_000;
/** How often exited processes past retention are swept (also done at every spawn). */
export const RETENTION_SWEEP_MS = 60_000;
/** Notices kept for processes whose spawn reply is being handled (see #pendingNotices): far more than spawns in flight. */
export const EARLY_NOTICES_MAX = 1024;
/** How long shutdown waits for the children it killed to be reaped. */
export const SHUTDOWN_KILL_WAIT_MS = 1000;

export interface SupervisorOptions {
  /** This daemon's instance id: the `instance` of the processes it spawns. */
  readonly instance: string;
  readonly replayCapBytes?: number;
  /** The budget of every replay buffer together (`-replay-budget`); DEFAULT_REPLAY_BUDGET_BYTES when absent. */
  readonly replayBudgetBytes?: number;
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
  /** A child was started (its orphan record and journal are on disk by now: the keeper wrote them). */
  spawned?(proc: ManagedProcess, latencyMs: number): void | Promise<void>;
  spawnFailed?(kind: string): void;
  /** Processes a previous daemon left with the keeper were adopted. */
  adopted?(count: number): void;
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
  /** Every process by the keeper's key, including ones whose table entry a respawn took. */
  readonly #byKey = new Map<string, ManagedProcess>();
  /** Every child not yet exited, including ones whose table entry a respawn took: shutdown must reach them all. */
  readonly #live = new Set<ManagedProcess>();
  /** Spawns in progress by id, so requests pipelined behind a spawn see its outcome rather than racing it. */
  readonly #pending = new Map<string, Promise<unknown>>();
  readonly #sweeper: NodeJS.Timeout;
  readonly budget: ReplayBudget;
  #link: KeeperLink | undefined;
  /** The screen module, loaded at the first terminal (xterm.js costs memory a daemon without terminals never pays). */
  #screens: typeof import('../terminal/screen.js') | undefined;
  /** Another daemon took the processes over (the keeper said so): this one must stop serving. */
  onSuperseded: (by: string) => void = () => {};
  /** The keeper went away: the children have lost their reader, and this daemon its processes. */
  onKeeperLost: (why: string) => void = () => {};

  constructor(log: Logger, options: SupervisorOptions) {
    this.#log = log;
    if (options.observer) this.#observers.push(options.observer);
    this.#options = {
      instance: options.instance,
      replayCapBytes: options.replayCapBytes ?? REPLAY_CAP_BYTES,
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

  /**
   * Takes the keeper link and adopts the processes the keeper holds (those a previous daemon left, or exited ones it
   * kept): each one's journal is read into its replay buffer before this resolves, so the daemon listens only once
   * every reattach can be answered from the right seq.
   */
  async attach(link: KeeperLink, processes: readonly KeptState[]): Promise<number> {
    this.#link = link;
    for (const p of processes) this.#adopting.add(p.key);
    link.onNotice = (n) => this.#onNotice(n);
    link.onLost = (why) => this.onKeeperLost(why);
    const sorted = [...processes].sort((a, b) => a.startedAt - b.startedAt);
    for (const state of sorted) {
      const proc = await this.#adopt(state);
      proc.load();
      // A later spawn of the same id replaces the earlier one in the table, as it did when both ran here.
      this.#table.set(state.id, proc);
      if (proc.exited && performance.now() - proc.exitFrameAt >= this.#options.retentionMs) {
        this.#table.delete(state.id);
        this.#forget(proc);
      }
    }
    this.#adopting.clear();
    if (sorted.length > 0) this.#observer.adopted?.(sorted.length);
    return sorted.length;
  }

  /**
   * Notices about a process whose spawn reply has arrived but not been handled yet: they come in the same read as the
   * reply (a child that exits at once), before the process is in the table. Kept until it is, bounded.
   */
  readonly #pendingNotices = new Map<string, { seq: number; reap: ReapInfo | undefined }>();
  /** The keys of the processes attach() is adopting: their early notices are kept whatever their number. */
  readonly #adopting = new Set<string>();

  #early(key: string): { seq: number; reap: ReapInfo | undefined } {
    let e = this.#pendingNotices.get(key);
    if (e === undefined) {
      // Besides the processes being adopted (bounded by the keeper's table), only a spawn in flight has notices
      // waiting: a handful at most; past this bound the others are stale. The adopted ones' must never go.
      if (this.#pendingNotices.size >= EARLY_NOTICES_MAX) {
        for (const k of this.#pendingNotices.keys()) if (!this.#adopting.has(k)) this.#pendingNotices.delete(k);
      }
      this.#pendingNotices.set(key, (e = { seq: 0, reap: undefined }));
    }
    return e;
  }

  async #adopt(state: KeptState): Promise<ManagedProcess> {
    const tty = state.spawnPty ? await this.#terminalSide(state.spawnPty) : undefined;
    const proc = new ManagedProcess(
      state,
      this.#link!,
      tty,
      { replayCapBytes: this.#options.replayCapBytes, replayAccount: this.budget.account },
      this.#log,
      this.#observer,
    );
    this.#byKey.set(state.key, proc);
    const early = this.#pendingNotices.get(state.key);
    if (early) {
      this.#pendingNotices.delete(state.key);
      if (early.reap) proc.reaped(early.reap);
      proc.available(early.seq);
    }
    if (!proc.exited) {
      this.#live.add(proc);
      void proc.whenExited().then(() => this.#live.delete(proc));
    }
    return proc;
  }

  async #terminalSide(size: { readonly cols: number; readonly rows: number }): Promise<TerminalSide> {
    this.#screens ??= await import('../terminal/screen.js');
    return { keeper: new this.#screens.ScreenKeeper({ cols: size.cols, rows: size.rows }), spawnSize: size };
  }

  #onNotice(n: KeeperNotice): void {
    switch (n.t) {
      case 'appended':
        for (const [key, seq] of n.procs) {
          const proc = this.#byKey.get(key);
          if (proc) proc.available(seq);
          else this.#early(key).seq = seq;
        }
        return;
      case 'reaped': {
        const proc = this.#byKey.get(n.key);
        if (proc) proc.reaped(n.reap);
        else this.#early(n.key).reap = n.reap;
        return;
      }
      case 'drainTimedOut': {
        const proc = this.#byKey.get(n.key);
        if (proc) this.#observer.drainTimedOut?.(proc);
        return;
      }
      case 'superseded':
        this.onSuperseded(n.by);
        return;
      case 'log':
        this.#log.relay(n.level, n.component, n.msg);
        return;
    }
  }

  *#budgetMembers(): Iterable<BudgetMember> {
    for (const proc of this.#byKey.values()) {
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
      const link = this.#link;
      if (!link) throw new SpawnError('forkExec', { path: file, reason: 'the daemon is not connected to its keeper' });
      const reply = await link.request({
        t: 'spawn',
        spec: {
          id: req.id,
          command: req.command,
          file,
          args: req.args,
          cwd,
          env,
          pty: req.pty,
          term: req.term,
          spawnedBy: this.#options.instance,
        },
      });
      if ('failure' in reply) {
        if (reply.failure.kind === 'ptyUnavailable') throw new SpawnError('ptyUnavailable', { reason: reply.failure.reason });
        throw new SpawnError('forkExec', { path: file, reason: reply.failure.reason });
      }
      const proc = await this.#adopt(reply.state);
      this.#table.set(req.id, proc);
      proc.available(reply.state.lastSeq);
      this.#log.info('process.Manager', `Process ${req.id} started, PID=${proc.pid}, command=${req.command}`);
      await this.#observer.spawned?.(proc, performance.now() - started);
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
        this.#forget(proc);
      }
    }
    // Superseded entries (a respawn took their id) are forgotten on the same terms.
    for (const proc of this.#byKey.values()) {
      if (proc.exited && this.#table.get(proc.id) !== proc && now - proc.exitFrameAt >= this.#options.retentionMs) this.#forget(proc);
    }
  }

  #forget(proc: ManagedProcess): void {
    this.#byKey.delete(proc.key);
    proc.dispose();
  }

  /**
   * The shutdown sweep (in the keeper): SIGKILL to every live child's process group (superseded ones included) and
   * to every descendant that left the group, then up to `waitMs` for their exit frames. Resolves with the number of
   * children signalled.
   */
  async killAll(by: KilledBy = 'shutdown', waitMs = SHUTDOWN_KILL_WAIT_MS): Promise<number> {
    const link = this.#link;
    if (!link || this.#live.size === 0) return 0;
    const victims = [...this.#live];
    const { count } = await link.request({ t: 'killAll', by, waitMs });
    await Promise.race([Promise.all(victims.map((p) => p.whenExited())), new Promise((r) => setTimeout(r, waitMs).unref())]);
    return count;
  }

  /** Every child still running. */
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
    // Awaited by the spawn: a hook that returns a promise is waited for.
    spawned: async (...args) => {
      for (const o of list) await o.spawned?.call(o, ...args);
    },
    reclaimed: each('reclaimed'),
    spawnFailed: each('spawnFailed'),
    adopted: each('adopted'),
  };
}
