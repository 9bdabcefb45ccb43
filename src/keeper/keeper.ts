/**
 * The keeper: the parent of every child, and the only process that must never die for them to live. It holds their
 * pipes and terminals, writes their output into the frame journal (src/replay/journal.ts), applies their stdin under
 * the offset rules, and records their exits. It serves one daemon (the front) at a time over keeper.sock and knows
 * nothing of clients, tokens or wires, so it changes rarely: a daemon of a newer build talks to the keeper that is
 * running, and a daemon that dies (SIGKILL, OOM, a crash) or hands over to a newer one loses nothing it held.
 *
 * One front at a time: the newest hello wins. The previous front is told it is superseded and may no longer act on
 * the processes (so a daemon evicted by its successor's start cannot kill what its successor adopts); it closes its
 * listeners and exits. With no front connected, output goes on being journalled: a piped process's oldest segments
 * are dropped past the per-process bound, a terminal's output waits (its early frames can only be let go of once a
 * daemon has made a screen of them).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildRegistry } from '../daemon/orphans.js';
import type { Logger } from '../log/logger.js';
import { descendantsOf, processTable, signalPid } from '../process/procfs.js';
import { parseSignal } from '../process/signals.js';
import { STDIN_QUEUE_CAP_BYTES } from '../process/stdin.js';
import type { KilledBy } from '../protocol/messages.js';
import { REPLAY_CAP_BYTES } from '../replay/buffer.js';
import { DEFAULT_REPLAY_BUDGET_BYTES } from '../replay/budget.js';
import { journalEnd, sealJournal } from '../replay/journal.js';
import { EXIT_DRAIN_GRACE_MS, KeptProcess, type KeptMeta, makeProcessDir, META_FILE, META_VERSION, writeMetaFile } from './kept.js';
import {
  asBuffer,
  encodeMessage,
  type FrontMessage,
  type FrontRequest,
  KEEPER_PROTOCOL,
  type KeeperErrorBody,
  type KeeperMessage,
  type KeptState,
  KeeperStreamError,
  MessageReader,
  type ReplyBodies,
} from './protocol.js';
import { KeeperSpawnError, startChild, startTerminal } from './spawn.js';

export const PROCS_DIR = 'procs';
/**
 * While a front is connected, a process's journal may hold this much (two replay caps) before the child is held: the
 * front drops what its buffer let go of, so only a front that stopped reading lets a journal reach it.
 */
export const JOURNAL_HOLD_BYTES = 2 * REPLAY_CAP_BYTES;
/**
 * While no front is connected, a piped process's journal keeps this much (one replay cap, 16 MiB): older segments
 * are dropped, which a client reattaching later sees as a gap. A terminal's output waits at this bound instead.
 */
export const JOURNAL_ALONE_BYTES = REPLAY_CAP_BYTES;
/** With no front, exited processes are forgotten this long after their exit (the daemon's retention). */
export const KEEPER_RETENTION_MS = 15 * 60_000;
/** How often the keeper sweeps and checks whether it is still needed. */
export const KEEPER_SWEEP_MS = 30_000;
/** With no front and no process, the keeper exits after this long (a front about to say hello gets the chance). */
export const KEEPER_IDLE_EXIT_MS = 5_000;
/** killAll waits this long for the children it killed. */
export const KILL_ALL_WAIT_MS = 1000;

/** A process of a previous keeper: its journal and meta, on disk; it is not this keeper's child. */
interface Relic {
  readonly key: string;
  readonly dir: string;
  readonly state: KeptState;
  readonly bytes: number;
}

interface Front {
  readonly socket: net.Socket;
  instance: string | undefined;
  superseded: boolean;
  /** Said goodbye: its disconnect is not a crash. */
  left: boolean;
}

export interface KeeperOptions {
  readonly dir: string;
  readonly runDir: string;
  readonly instance: string;
  readonly build: string;
  readonly log: Logger;
  /** Called when the keeper has nothing left to keep: the caller closes the listener and exits. */
  readonly onIdle: () => void;
}

export class Keeper {
  readonly #o: KeeperOptions;
  readonly #log: Logger;
  readonly #procs = new Map<string, KeptProcess>();
  readonly #relics = new Map<string, Relic>();
  /** Children whose spawn failed after the fork (no record could be written): killed, forgotten once they exit. */
  readonly #abandoned = new Set<KeptProcess>();
  readonly #registry: ChildRegistry;
  readonly #startedAt = Date.now();
  #front: Front | undefined;
  #token: string | undefined;
  #budgetBytes = DEFAULT_REPLAY_BUDGET_BYTES;
  readonly #dirty = new Set<KeptProcess>();
  #flushing = false;
  /** A front asked to stop with the processes (bye without keep): forget each as it exits, then exit. */
  #stopping = false;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: KeeperOptions, registry: ChildRegistry) {
    this.#o = options;
    this.#log = options.log;
    this.#registry = registry;
    this.#sweeper = setInterval(() => this.#sweep(), KEEPER_SWEEP_MS);
    this.#sweeper.unref();
    // One log tells a process's story: what the keeper logs goes to the daemon's log too, while one is connected.
    this.#log.setTap((level, component, msg) => this.#notify({ t: 'log', level, component, msg }));
  }

  get procsDir(): string {
    return path.join(this.#o.dir, PROCS_DIR);
  }

  /**
   * Adopts the journals left on disk: processes of this state directory whose keeper died (their exit is unknown:
   * sealed with an exit frame saying so) or that exited before their keeper went. Throws when a journal was written
   * by a newer claustrum: guessing at it could lose a user's output, so the keeper refuses to start.
   */
  adoptRelics(): void {
    let names: string[];
    try {
      names = readdirSync(this.procsDir);
    } catch {
      return;
    }
    for (const key of names) {
      const dir = path.join(this.procsDir, key);
      let meta: KeptMeta;
      try {
        meta = JSON.parse(readFileSync(path.join(dir, META_FILE), 'utf8')) as KeptMeta;
      } catch {
        // A spawn that failed before its meta was written leaves nothing worth keeping.
        this.#log.warn('keeper', `removing ${dir}: no readable ${META_FILE}`);
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (typeof meta.version !== 'number' || meta.version > META_VERSION) {
        throw new Error(
          `${path.join(dir, META_FILE)} is state version ${String(meta.version)}; this claustrum reads up to version ${META_VERSION}. A newer claustrum wrote it: run that one, or remove ${this.procsDir} (it holds the output of ${names.length} process(es))`,
        );
      }
      const sealed = meta.exit === undefined;
      const end = sealed ? sealJournal(dir, { exitCode: -1, killedBy: 'lost', at: Date.now() }) : journalEnd(dir);
      const exit =
        meta.exit ?? (end.exit ? { exitCode: end.exit.exitCode, signal: end.exit.signal, killedBy: end.exit.killedBy, at: end.exit.at } : undefined);
      if (sealed) {
        this.#log.warn('keeper', `process ${meta.id} (pid ${meta.pid}) was left by a keeper that died: its exit is unknown; its output is kept`);
        writeMetaFile(dir, { ...meta, exit });
      }
      this.#relics.set(key, {
        key,
        dir,
        bytes: end.bytes,
        state: {
          key,
          id: meta.id,
          command: meta.command,
          args: meta.args,
          cwd: meta.cwd,
          pid: meta.pid,
          startTime: meta.startTime,
          startedAt: meta.startedAt,
          pty: meta.pty,
          spawnPty: meta.spawnPty,
          spawnedBy: meta.spawnedBy,
          restarts: meta.restarts,
          reaped: { code: exit?.exitCode ?? -1, signal: exit?.signal ?? null, at: exit?.at ?? Date.now() },
          exit,
          lastSeq: end.lastSeq,
          stdin: { applied: 0, ended: false },
        },
      });
    }
    this.#checkIdle();
  }

  /** A connection on keeper.sock: a front. */
  accept(socket: net.Socket): void {
    const front: Front = { socket, instance: undefined, superseded: false, left: false };
    const reader = new MessageReader();
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (msg) => this.#onMessage(front, msg as FrontMessage));
      } catch (err) {
        const why = err instanceof KeeperStreamError ? err.message : (err as Error).stack;
        this.#log.error('keeper', `closing a front connection: ${why}`);
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose(front));
  }

  // ---- messages ----

  #onMessage(front: Front, msg: FrontMessage): void {
    if (typeof msg !== 'object' || msg === null || typeof msg.t !== 'string') throw new KeeperStreamError('a message without a type');
    if ('rid' in msg) {
      void this.#request(front, msg).then(
        (body) => this.#send(front, { t: 'reply', rid: msg.rid, ok: true, body }),
        (err: unknown) => {
          const error: KeeperErrorBody =
            err instanceof KeeperRefusal ? err.body : { code: 'badRequest', message: (err as Error).message ?? String(err) };
          if (!(err instanceof KeeperRefusal)) this.#log.error('keeper', `${msg.t}: ${(err as Error).stack ?? String(err)}`);
          this.#send(front, { t: 'reply', rid: msg.rid, ok: false, error });
        },
      );
      return;
    }
    if (front.superseded || front !== this.#front) return;
    switch (msg.t) {
      case 'hold':
        this.#procs.get(msg.key)?.holdForFront(msg.hold);
        return;
      case 'drop': {
        const proc = this.#procs.get(msg.key);
        if (proc) {
          proc.journal.dropThrough(msg.through);
          if (proc.journal.bytes <= JOURNAL_HOLD_BYTES) proc.holdForJournal(false);
        }
        return;
      }
      case 'forget':
        this.#forget(msg.key);
        return;
      case 'token':
        this.#token = msg.token;
        return;
    }
  }

  async #request(front: Front, msg: FrontRequest): Promise<ReplyBodies[keyof ReplyBodies]> {
    if (msg.t === 'hello') return this.#hello(front, msg);
    if (front.superseded || front !== this.#front) {
      if (msg.t === 'bye') return { live: this.#liveCount() };
      throw new KeeperRefusal({ code: 'superseded', message: 'another daemon took over these processes' });
    }
    switch (msg.t) {
      case 'spawn':
        return this.#spawn(msg.spec);
      case 'stdin': {
        const proc = this.#need(msg.key);
        const outcome = proc.writeStdin(asBuffer(msg.data), msg.offset, msg.eof);
        return { outcome, applied: proc.stdin.applied, ended: proc.stdin.ended, queued: proc.stdin.queuedBytes };
      }
      case 'signal': {
        const proc = this.#need(msg.key);
        return { sent: proc.signal(parseSignal(msg.signal), msg.by, msg.afterReap, msg.group) };
      }
      case 'resize':
        return { resized: this.#need(msg.key).resize(msg.cols, msg.rows) };
      case 'killAll':
        return { count: await this.#killAll(msg.by, Math.min(msg.waitMs, 10_000)) };
      case 'bye':
        return this.#bye(front, msg.keep);
    }
  }

  #hello(front: Front, msg: Extract<FrontRequest, { t: 'hello' }>): ReplyBodies['hello'] {
    if (msg.protocol !== KEEPER_PROTOCOL) {
      throw new KeeperRefusal({
        code: 'protocolMismatch',
        protocol: KEEPER_PROTOCOL,
        message: `the keeper (pid ${process.pid}, claustrum ${this.#o.build}) speaks keeper protocol ${KEEPER_PROTOCOL}, this daemon ${msg.protocol}`,
      });
    }
    const previous = this.#front;
    let superseded: string | undefined;
    if (previous && previous !== front && !previous.superseded) {
      previous.superseded = true;
      superseded = previous.instance;
      this.#send(previous, { t: 'superseded', by: msg.instance });
      this.#log.info('keeper', `daemon ${msg.instance} takes over from daemon ${previous.instance ?? '?'}`);
    } else {
      this.#log.info('keeper', `daemon ${msg.instance} (claustrum ${msg.build}) connected`);
    }
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#stopping = false;
    front.instance = msg.instance;
    this.#front = front;
    this.#budgetBytes = msg.budgetBytes;
    const token = this.#token;
    if (msg.token !== undefined) this.#token = msg.token;
    // Every process here outlived the daemon that had it (the new one adopts it).
    for (const proc of this.#procs.values()) {
      proc.restarts++;
      proc.holdForFront(false);
      proc.holdForJournal(proc.journal.bytes > JOURNAL_HOLD_BYTES);
    }
    return {
      protocol: KEEPER_PROTOCOL,
      keeper: { pid: process.pid, instance: this.#o.instance, build: this.#o.build, startedAt: this.#startedAt },
      token,
      superseded,
      processes: [...[...this.#relics.values()].map((r) => r.state), ...[...this.#procs.values()].map((p) => p.state())],
    };
  }

  async #spawn(spec: Extract<FrontRequest, { t: 'spawn' }>['spec']): Promise<ReplyBodies['spawn']> {
    const key = `${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
    const dir = path.join(this.procsDir, key);
    makeProcessDir(dir);
    let proc: KeptProcess;
    try {
      const source = spec.pty ? await startTerminal(spec) : { child: await startChild(spec) };
      proc = new KeptProcess(key, dir, spec, source, { stdinQueueCapBytes: STDIN_QUEUE_CAP_BYTES, drainGraceMs: EXIT_DRAIN_GRACE_MS }, this.#log, {
        appended: (p) => this.#appended(p),
        reaped: (p, reap) => {
          void this.#registry.remove(p.pid);
          this.#notify({ t: 'reaped', key: p.key, reap });
        },
        exited: (p) => this.#exited(p),
        drainTimedOut: (p) => this.#notify({ t: 'drainTimedOut', key: p.key }),
      });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      if (err instanceof KeeperSpawnError) return { failure: err.failure };
      throw err;
    }
    this.#procs.set(key, proc);
    try {
      proc.writeMeta();
      // The orphan record: if this keeper dies, the next daemon start finds and reaps the child.
      await this.#registry.add(proc.pid, spec.command);
    } catch (err) {
      // Unrecorded, the child would outlive a keeper crash unseen: it is not acknowledged, it is killed, and
      // forgotten once it has exited.
      this.#log.error('process.Manager', `Process ${spec.id}: ${(err as Error).message}; killing it`);
      this.#procs.delete(key);
      this.#abandoned.add(proc);
      proc.signal('SIGKILL', 'shutdown');
      return { failure: { kind: 'forkExec', reason: `${(err as Error).message} (the child was killed)` } };
    }
    // (The daemon logs the start, with its id and command, once it has the reply.)
    this.#log.debug('keeper', `process ${spec.id} is ${key}, pid ${proc.pid}`);
    return { state: proc.state() };
  }

  /**
   * SIGKILL to every live child's process group and to every descendant that left the group, then up to `waitMs`
   * for their exits. Resolves with the number of children signalled.
   */
  async #killAll(by: KilledBy, waitMs: number): Promise<number> {
    const victims = [...this.#procs.values()].filter((p) => p.exit === undefined);
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
    for (const pid of strays) signalPid(pid, 'SIGKILL');
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && victims.some((p) => p.exit === undefined)) await sleep(10);
    return victims.length;
  }

  #bye(front: Front, keep: boolean): ReplyBodies['bye'] {
    front.left = true;
    const live = this.#liveCount();
    if (keep) {
      this.#log.info('keeper', `daemon ${front.instance ?? '?'} left; keeping ${live} running process(es) for the next one`);
    } else {
      this.#log.info('keeper', `daemon ${front.instance ?? '?'} stopped; forgetting every process`);
      this.#stopping = true;
      for (const key of [...this.#relics.keys(), ...this.#procs.keys()]) {
        const proc = this.#procs.get(key);
        if (proc === undefined || proc.exit !== undefined) this.#forget(key);
      }
    }
    return { live };
  }

  #need(key: string): KeptProcess {
    const proc = this.#procs.get(key);
    if (!proc) throw new KeeperRefusal({ code: 'notFound', message: `no process ${key}` });
    return proc;
  }

  // ---- output ----

  #appended(proc: KeptProcess): void {
    this.#dirty.add(proc);
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(() => this.#flush());
    }
    const bytes = proc.journal.bytes;
    if (this.#front) {
      if (bytes > JOURNAL_HOLD_BYTES) proc.holdForJournal(true);
    } else if (bytes > JOURNAL_ALONE_BYTES) {
      this.#alone(proc);
    }
  }

  /** No front reads this journal: bound it. */
  #alone(proc: KeptProcess): void {
    if (proc.isTerminal) {
      proc.holdForJournal(true);
      return;
    }
    while (proc.journal.bytes > JOURNAL_ALONE_BYTES && proc.journal.dropOldest() > 0) {
      // (dropped one segment; a reattach will see the gap)
    }
    if (this.#diskBytes() > this.#budgetBytes) this.#reclaim();
  }

  #flush(): void {
    this.#flushing = false;
    if (this.#dirty.size === 0) return;
    const procs = [...this.#dirty].map((p) => [p.key, p.lastSeq] as const);
    this.#dirty.clear();
    this.#notify({ t: 'appended', procs });
  }

  #exited(proc: KeptProcess): void {
    if (this.#abandoned.delete(proc)) {
      proc.dispose();
      rmSync(proc.dir, { recursive: true, force: true });
      return;
    }
    if (this.#stopping) this.#forget(proc.key);
    this.#checkIdle();
  }

  #diskBytes(): number {
    let total = 0;
    for (const p of this.#procs.values()) total += p.journal.bytes;
    for (const r of this.#relics.values()) total += r.bytes;
    return total;
  }

  /** Over the budget with no front: exited processes' journals go first (oldest exit first), then the largest. */
  #reclaim(): void {
    const exited = [...this.#relics.values()].sort((a, b) => (a.state.exit?.at ?? 0) - (b.state.exit?.at ?? 0));
    for (const r of exited) {
      if (this.#diskBytes() <= this.#budgetBytes) return;
      this.#log.warn('keeper', `journal budget: forgetting the output of exited process ${r.state.id}`);
      this.#forget(r.key);
    }
    const piped = [...this.#procs.values()].filter((p) => !p.isTerminal).sort((a, b) => b.journal.bytes - a.journal.bytes);
    for (const p of piped) {
      while (this.#diskBytes() > this.#budgetBytes && p.journal.dropOldest() > 0) {
        // one segment at a time, largest journal first
      }
    }
  }

  // ---- life-cycle ----

  #forget(key: string): void {
    const proc = this.#procs.get(key);
    const relic = this.#relics.get(key);
    if (!proc && !relic) return;
    if (proc && proc.exit === undefined) return; // never forget a running child
    proc?.dispose();
    this.#procs.delete(key);
    this.#relics.delete(key);
    rmSync(path.join(this.procsDir, key), { recursive: true, force: true });
    this.#checkIdle();
  }

  #onClose(front: Front): void {
    if (front !== this.#front) return;
    this.#front = undefined;
    if (!front.left) {
      this.#log.warn(
        'keeper',
        `daemon ${front.instance ?? '?'} disconnected without a word (it died?); keeping ${this.#liveCount()} running process(es) for the next one`,
      );
    }
    for (const proc of this.#procs.values()) {
      proc.holdForFront(false);
      proc.holdForJournal(false);
      if (proc.journal.bytes > JOURNAL_ALONE_BYTES) this.#alone(proc);
    }
    this.#checkIdle();
  }

  #sweep(): void {
    if (this.#front) return; // the front forgets what it sweeps
    const now = Date.now();
    for (const [key, r] of this.#relics) if (now - (r.state.exit?.at ?? now) >= KEEPER_RETENTION_MS) this.#forget(key);
    for (const [key, p] of this.#procs) if (p.exit && now - p.exit.at >= KEEPER_RETENTION_MS) this.#forget(key);
  }

  #liveCount(): number {
    let n = 0;
    for (const p of this.#procs.values()) if (p.running) n++;
    return n;
  }

  /** With no front and nothing kept, the keeper is not needed: it exits after a grace. */
  #checkIdle(): void {
    const idle = this.#front === undefined && this.#procs.size === 0 && this.#relics.size === 0;
    if (!idle) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
      return;
    }
    // A stopped daemon's keeper goes at once; otherwise a daemon about to say hello gets a moment.
    this.#idleTimer ??= setTimeout(
      () => {
        if (this.#front === undefined && this.#procs.size === 0 && this.#relics.size === 0) {
          this.#log.info('keeper', 'no daemon and no process: exiting');
          clearInterval(this.#sweeper);
          this.#o.onIdle();
        }
      },
      this.#stopping ? 0 : KEEPER_IDLE_EXIT_MS,
    );
  }

  #notify(msg: KeeperMessage): void {
    if (this.#front && !this.#front.superseded) this.#send(this.#front, msg);
  }

  #send(front: Front, msg: KeeperMessage): void {
    if (!front.socket.destroyed) front.socket.write(encodeMessage(msg));
  }

  /** The keeper was told to stop (SIGTERM): its children go with it, and so does what it kept. */
  async stopAll(): Promise<void> {
    await this.#killAll('shutdown', KILL_ALL_WAIT_MS);
    this.#stopping = true;
    for (const key of [...this.#relics.keys(), ...this.#procs.keys()]) this.#forget(key);
  }

  close(): void {
    clearInterval(this.#sweeper);
    clearTimeout(this.#idleTimer);
  }
}

class KeeperRefusal extends Error {
  readonly body: KeeperErrorBody;
  constructor(body: KeeperErrorBody) {
    super(body.message);
    this.body = body;
  }
}

/** True when a process directory of this keeper layout exists (for tools that must not touch a live state). */
export function hasState(dir: string): boolean {
  return existsSync(path.join(dir, PROCS_DIR)) && statSync(path.join(dir, PROCS_DIR)).isDirectory();
}
