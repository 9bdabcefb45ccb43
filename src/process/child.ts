/**
 * One supervised child, as the daemon sees it: the keeper (src/keeper/) runs it and journals its frames; this object
 * reads the journal into the process's frame log, whose subscriptions deliver them (src/replay/subscription.ts), and
 * forwards stdin, signals and resizes to the keeper.
 *
 * Flow control crosses the process boundary: while the owner lags, the frame log asks the keeper to hold the child
 * (it stops reading the pipes or the terminal, so the child blocks on write as any piped program does). What the
 * frame log evicts, the keeper may drop from the journal; for a terminal, once a screen made of the evicted frames
 * is on disk (`screen.snap`), so that a daemon adopting the process later can still show the right screen.
 *
 * A terminal's screen model is created at the first eviction from its replay buffer (or from screen.snap when the
 * process is adopted) and fed each frame as it is evicted, so it always stands for exactly the frames a late reader
 * can no longer be sent.
 */
import { readFileSync, renameSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { KeeperLink } from '../keeper/link.js';
import type { KeptState, ReapInfo, TerminalSize } from '../keeper/protocol.js';
import type { Logger } from '../log/logger.js';
import { type ByteAccount, ReplayBuffer } from '../replay/buffer.js';
import { type ExitFrame, type Frame, FrameOrigin, type KilledBy, type ScreenFrame } from '../replay/frame.js';
import { JournalReader, type JournalRecord } from '../replay/journal.js';
import { FrameLog, type ScreenSource } from '../replay/subscription.js';
import type { ScreenKeeper, ScreenSnapshot } from '../terminal/screen.js';
import type { KillSignal } from './signals.js';
import type { StdinOutcome } from './stdin.js';

/** How long after the reap the exit frame waits for both pipes to reach EOF (the keeper's bound, kept for docs). */
export { EXIT_DRAIN_GRACE_MS } from '../keeper/kept.js';
/**
 * Journal bytes read for one process per turn of the event loop (256 KiB): a flood is read in slices, so a ping or a
 * reply waiting behind it is served within a slice's work, not after everything the keeper wrote meanwhile.
 */
export const JOURNAL_READ_SLICE_BYTES = 256 * 1024;
/**
 * Room a journal read needs in the replay buffer while the owner lags (512 KiB): a reader buffer (256 KiB) of frames,
 * counted as NDJSON (4/3 of the bytes, plus each frame's envelope), with room to spare.
 */
export const PULL_HEADROOM_BYTES = 2 * JOURNAL_READ_SLICE_BYTES;
/**
 * How many frames a lagging owner may be owed before the journal waits for it (16: about 512 KiB of 32 KiB frames,
 * plus the one read that crossed it).
 */
export const PULL_AHEAD_FRAMES = 16;
/** How often a journal read deferred by a lagging owner is tried again when no end of a hold will announce it (ms). */
export const PULL_RETRY_MS = 5;
/** A terminal's screen is written to disk for the journal's sake at most this often while it is being evicted. */
export const SCREEN_PERSIST_INTERVAL_MS = 1000;
export const SCREEN_FILE = 'screen.snap';

/** Hooks for metrics and the audit; every one optional. */
export interface ProcessObserver {
  output?(bytes: number): void;
  evicted?(frames: number, bytes: number): void;
  reaped?(proc: ManagedProcess): void;
  exited?(proc: ManagedProcess): void;
  drainTimedOut?(proc: ManagedProcess): void;
}

export interface ProcessSpec {
  readonly id: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string | undefined;
}

export interface ManagedOptions {
  readonly replayCapBytes: number;
  /** Where the buffer reports its byte count (the global budget). */
  readonly replayAccount?: ByteAccount;
}

/** The terminal half of a terminal process on the daemon's side: its screen keeper (xterm.js, loaded lazily). */
export interface TerminalSide {
  readonly keeper: ScreenKeeper;
  /** The size at the spawn: the size in force before the journal's first resize frame. */
  readonly spawnSize: TerminalSize;
}

export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly key: string;
  readonly origin: FrameOrigin;
  readonly pid: number;
  /** The reference's opaque `startTime` token: epoch seconds at the spawn. */
  readonly startTime: number;
  /** Epoch milliseconds of the start, for listings. */
  readonly startedAt: number;
  /** The instance id of the daemon that spawned it. */
  readonly spawnedBy: string;
  /** Daemons that adopted it after the one that spawned it. */
  readonly restarts: number;
  readonly log: FrameLog;
  /** Output bytes read from the journal, per stream (for the audit's exit records). */
  stdoutBytes = 0;
  stderrBytes = 0;

  readonly #link: KeeperLink;
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #observer: ProcessObserver;
  readonly #tty: TerminalSide | undefined;
  readonly #reader: JournalReader;
  /** The newest seq the keeper said is in the journal. */
  #available: number;
  #pulling = false;
  #pullRetry: NodeJS.Timeout | undefined;
  #reap: ReapInfo | undefined;
  #exitFrame: ExitFrame | undefined;
  #exitFrameAt = 0;
  #exitWaiters: (() => void)[] = [];
  #size: TerminalSize | undefined;
  #stdin = { applied: 0, ended: false, queued: 0 };
  #disposed = false;
  /** The highest seq the replay buffer evicted, and the highest the keeper was told it may drop. */
  #evictedThrough = 0;
  #droppedThrough = 0;
  #dropScheduled = false;
  #lastScreenPersist = 0;

  constructor(state: KeptState, link: KeeperLink, tty: TerminalSide | undefined, options: ManagedOptions, logger: Logger, observer: ProcessObserver) {
    this.spec = { id: state.id, command: state.command, args: state.args, cwd: state.cwd };
    this.key = state.key;
    this.origin = new FrameOrigin(state.id);
    this.pid = state.pid;
    this.startTime = state.startTime;
    this.startedAt = state.startedAt;
    this.spawnedBy = state.spawnedBy;
    this.restarts = state.restarts;
    this.#link = link;
    this.#dir = path.join(link.dir, 'procs', state.key);
    this.#logger = logger;
    this.#observer = observer;
    this.#tty = tty;
    this.#size = state.pty;
    this.#reap = state.reaped;
    this.#stdin = { ...state.stdin, queued: 0 };
    this.#available = state.lastSeq;
    this.log = new FrameLog(this.origin, new ReplayBuffer(options.replayCapBytes, options.replayAccount), (hold) => {
      if (this.#disposed) return;
      link.notify({ t: 'hold', key: this.key, hold });
      if (!hold) this.#pull(); // what the journal gained while the owner lagged
    });
    let fromSeq = 1;
    if (tty) {
      const snap = readScreenFile(this.#dir);
      if (snap) {
        tty.keeper.seed(snap);
        fromSeq = snap.seq + 1;
      }
      this.log.screen = this.#screenSource(tty);
    }
    this.log.buffer.onEvict((frame) => this.#evicted(frame));
    this.#reader = new JournalReader(this.#dir, fromSeq);
  }

  /** Reads what the journal holds now, all of it (a process being adopted, before the daemon listens). */
  load(): void {
    while (this.#reader.read(this.#available, Number.POSITIVE_INFINITY, (r) => this.#ingest(r))) {
      // (an unbounded budget reads to the end in one call; the loop is for form)
    }
  }

  get id(): string {
    return this.spec.id;
  }

  get replay(): ReplayBuffer {
    return this.log.buffer;
  }

  /** The terminal's current size, for a terminal process. */
  get terminalSize(): TerminalSize | undefined {
    return this.#tty ? this.#size : undefined;
  }

  /** False from the reap on, even while the exit frame still waits for the output to drain. */
  get running(): boolean {
    return this.#reap === undefined && this.#exitFrame === undefined;
  }

  get exited(): boolean {
    return this.#exitFrame !== undefined;
  }

  /** Epoch milliseconds of the reap (the exit as the OS saw it); 0 while running. */
  get reapedAt(): number {
    return this.#reap?.at ?? 0;
  }

  /** How the process ended, from the reap on. */
  get exitStatus(): { readonly exitCode: number; readonly signal: string | undefined } | undefined {
    if (this.#exitFrame) return { exitCode: this.#exitFrame.exitCode, signal: this.#exitFrame.signal };
    return this.#reap ? { exitCode: this.#reap.code ?? -1, signal: this.#reap.signal ?? undefined } : undefined;
  }

  /** Epoch milliseconds of the reap, from the reap on: an adopted process's exit may lie before this daemon started. */
  get exitedAt(): number | undefined {
    return this.#reap?.at;
  }

  get exitFrame(): ExitFrame | undefined {
    return this.#exitFrame;
  }

  /** performance.now() at the exit frame; 0 while running. */
  get exitFrameAt(): number {
    return this.#exitFrameAt;
  }

  /** True while the child's output is held because its owner is behind or congested. */
  get paused(): boolean {
    return this.log.held;
  }

  /** Frames above this seq are still owed to the owner (the budget must not evict them). */
  get owedAbove(): number {
    return this.log.owner?.cursor ?? Number.POSITIVE_INFINITY;
  }

  /** Its stdin as of the keeper's last answer: bytes accepted, whether closed, bytes not yet taken by the child. */
  get stdin(): { readonly applied: number; readonly ended: boolean; readonly queuedBytes: number } {
    return { applied: this.#stdin.applied, ended: this.#stdin.ended, queuedBytes: this.#stdin.queued };
  }

  /** Resolves when the exit frame has been read. */
  whenExited(): Promise<void> {
    if (this.#exitFrame) return Promise.resolve();
    return new Promise((resolve) => this.#exitWaiters.push(resolve));
  }

  // ---- from the keeper ----

  /** The keeper journalled frames up to `lastSeq`. */
  available(lastSeq: number): void {
    if (lastSeq > this.#available) this.#available = lastSeq;
    this.#pull();
  }

  /** The keeper reaped the child. */
  reaped(reap: ReapInfo): void {
    if (this.#reap) return;
    this.#reap = reap;
    this.#observer.reaped?.(this);
    this.log.seal(); // never hold the output after the reap: the drain must not wait on a slow client
  }

  /**
   * Whether the journal may be read into the buffer now. The keeper journals ahead of the daemon (up to
   * JOURNAL_HOLD_BYTES while the child runs, and everything after the reap, when nothing holds it), so while the
   * owner lags, a read that does not fit in the buffer would evict frames the owner was never sent: a seq gap on a
   * lossless stream (figure 1 saw one at seq 142 of a 16 MiB warm-up). The journal waits on disk instead; after the
   * reap the owner is the only one it waits for, and a stalled owner is disconnected by the stall timeout.
   */
  #mayPull(): boolean {
    const owner = this.log.owner;
    if (!this.log.held && owner?.lagging !== true) return true;
    // Only a little ahead of a lagging owner: what it is owed cannot be evicted, by the cap or by the global budget
    // (which counts on a lagging owner's part staying small), so 256 lagging owners must not hold 256 full buffers.
    const buffer = this.log.buffer;
    const owed = owner ? buffer.lastSeq - owner.cursor : 0;
    return owed < PULL_AHEAD_FRAMES && buffer.bytes + PULL_HEADROOM_BYTES <= buffer.capBytes;
  }

  #pull(): void {
    // (The owner's lag can start and end inside one read: delivering a frame re-evaluates it. A read runs to its end,
    // at most one reader buffer, and is never entered again from inside itself: #pulling.)
    if (this.#pulling || this.#disposed) return;
    if (!this.#mayPull()) {
      // Before the reap a lagging owner holds the log, and the hold's end calls #pull: nothing to poll (256 lagging
      // owners polling every 5 ms were 50,000 wakeups a second). After the reap nothing is held, so look again shortly.
      if (!this.log.sealed) return;
      this.#pullRetry ??= setTimeout(() => {
        this.#pullRetry = undefined;
        this.#pull();
      }, PULL_RETRY_MS);
      return;
    }
    this.#pulling = true;
    let more = false;
    try {
      more = this.#reader.read(this.#available, JOURNAL_READ_SLICE_BYTES, (r) => this.#ingest(r));
    } finally {
      if (!more) this.#pulling = false;
    }
    if (!more) return;
    // The rest next turn: whatever waits behind this flood (a ping, another child) goes first.
    setImmediate(() => {
      this.#pulling = false;
      this.#pull();
    });
  }

  #ingest(r: JournalRecord): void {
    switch (r.kind) {
      case 'data': {
        const n = r.data.length;
        if (r.stream === 'stdout') this.stdoutBytes += n;
        else this.stderrBytes += n;
        this.#observer.output?.(n);
        this.#emit(r.clean === undefined ? this.origin.dataFrame(r.seq, r.stream, r.data) : this.origin.terminalFrame(r.seq, r.data, r.clean));
        return;
      }
      case 'resize':
        this.#size = { cols: r.cols, rows: r.rows };
        this.#emit(this.origin.resizeFrame(r.seq, r.cols, r.rows));
        return;
      case 'exit': {
        const frame = this.origin.exitFrame(r.seq, r.exit.exitCode, r.exit.signal, r.exit.killedBy);
        this.#reap ??= { code: r.exit.exitCode, signal: r.exit.signal ?? null, at: r.exit.at };
        this.log.seal();
        this.#exitFrame = frame;
        this.#exitFrameAt = performance.now() - Math.max(0, Date.now() - r.exit.at);
        this.#emit(frame);
        // Nothing more will be written: the ring keeps what it holds and gives the rest back.
        this.log.buffer.compact();
        this.#reader.close();
        this.#observer.exited?.(this);
        for (const wake of this.#exitWaiters.splice(0)) wake();
        return;
      }
    }
  }

  #emit(frame: Frame): void {
    const framesBefore = this.log.buffer.evictedFrames;
    const evicted = this.log.append(frame);
    if (evicted > 0) this.#observer.evicted?.(this.log.buffer.evictedFrames - framesBefore, evicted);
  }

  // ---- eviction, and what the keeper may drop ----

  #evicted(frame: Frame): void {
    this.#tty?.keeper.evicted(screenFrameOf(frame));
    this.#evictedThrough = frame.seq;
    this.#scheduleDrop();
  }

  #scheduleDrop(): void {
    if (this.#dropScheduled || this.#disposed) return;
    this.#dropScheduled = true;
    if (this.#tty === undefined) {
      setImmediate(() => {
        this.#dropScheduled = false;
        this.#drop(this.#evictedThrough);
      });
      return;
    }
    // A terminal: its journal may only lose frames a screen on disk stands for.
    const wait = Math.max(0, this.#lastScreenPersist + SCREEN_PERSIST_INTERVAL_MS - performance.now());
    setTimeout(() => void this.#persistScreen(), wait).unref();
  }

  #drop(through: number): void {
    if (this.#disposed || through <= this.#droppedThrough) return;
    this.#droppedThrough = through;
    this.#link.notify({ t: 'drop', key: this.key, through });
  }

  async #persistScreen(): Promise<void> {
    this.#lastScreenPersist = performance.now();
    try {
      const snap = this.#disposed ? undefined : await this.log.screen?.snapshot();
      if (snap && !this.#disposed && snap.seq > this.#droppedThrough) {
        const temp = path.join(this.#dir, `.${SCREEN_FILE}.${process.pid}`);
        const header = JSON.stringify({ version: 1, seq: snap.seq, cols: snap.cols, rows: snap.rows });
        await writeFile(temp, Buffer.concat([Buffer.from(`${header}\n`), snap.data]), { mode: 0o600 });
        renameSync(temp, path.join(this.#dir, SCREEN_FILE));
        this.#drop(snap.seq);
      }
    } catch (err) {
      this.#logger.warn(
        'process.Manager',
        `Process ${this.id}: cannot save its screen (${(err as Error).message}); its journal keeps every frame until it can`,
      );
    } finally {
      this.#dropScheduled = false;
      // Evicted meanwhile, or the screen was not at a clean boundary yet: again, a little later.
      if (this.#evictedThrough > this.#droppedThrough) this.#scheduleDrop();
    }
  }

  // ---- terminals ----

  #screenSource(tty: TerminalSide): ScreenSource {
    const buffer = this.log.buffer;
    const log = this.log;
    return {
      get congested() {
        return tty.keeper.model?.congested === true;
      },
      async snapshot(): Promise<ScreenFrame | undefined> {
        const snap = await tty.keeper.snapshot((seq) => {
          const f = buffer.get(seq);
          return f === undefined ? undefined : screenFrameOf(f);
        });
        // A model that was congested has caught up: the producer may go on.
        log.flowChanged();
        return snap && { seq: snap.seq, stream: 'screen', cols: snap.cols, rows: snap.rows, data: Buffer.from(snap.data, 'utf8') };
      },
    };
  }

  /**
   * Resizes the terminal (the program gets SIGWINCH); the keeper records the size in the journal, so every reader,
   * and a later snapshot, knows the size in force from there on. False for a piped or reaped process.
   */
  async resize(cols: number, rows: number): Promise<boolean> {
    if (!this.#tty || !this.running) return false;
    return (await this.#link.request({ t: 'resize', key: this.key, cols, rows })).resized;
  }

  // ---- control ----

  /**
   * Sends a signal (the keeper's rules: src/keeper/kept.ts). Returns false without sending for a reaped child, since
   * its pid may already be someone else's, unless `afterReap` allows the exceptions, group signals while the exit
   * frame still waits on a pipe holder.
   */
  signal(sig: KillSignal, by: KilledBy, afterReap = false, group = false): boolean {
    if ((this.#reap && !afterReap) || this.#exitFrame || this.#disposed) return false;
    this.#link.request({ t: 'signal', key: this.key, signal: sig, by, afterReap, group }).catch((err: Error) => {
      this.#logger.warn('process.Manager', `Process ${this.id}: kill ${sig}: ${err.message}`);
    });
    return true;
  }

  /** Applies one stdin write under the offset rules (in the keeper, which holds the queue). */
  async writeStdin(data: Buffer, offset: number | undefined, eof = false): Promise<StdinOutcome> {
    this.#stdinSent++;
    try {
      const reply = await this.#link.request({ t: 'stdin', key: this.key, data, offset, eof });
      this.#stdin = { applied: reply.applied, ended: reply.ended, queued: reply.queued };
      return reply.outcome;
    } finally {
      // The keeper answers in the order it was asked, so answers count up to the writes sent.
      this.#stdinAnswered++;
      while (this.#stdinWaiters.length > 0 && this.#stdinWaiters[0]!.until <= this.#stdinAnswered) this.#stdinWaiters.shift()!.wake();
    }
  }

  /** Resolves once every stdin write sent so far has been answered: `stdin` then counts them all. */
  stdinSettled(): Promise<void> {
    const until = this.#stdinSent;
    if (this.#stdinAnswered >= until) return Promise.resolve();
    return new Promise((wake) => this.#stdinWaiters.push({ until, wake }));
  }
  #stdinSent = 0;
  #stdinAnswered = 0;
  readonly #stdinWaiters: { readonly until: number; readonly wake: () => void }[] = [];

  /** Forgets the buffered frames of a process being pruned, ending every subscription to it; the keeper forgets it. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    clearTimeout(this.#pullRetry);
    this.log.clear();
    this.#reader.close();
    this.#tty?.keeper.dispose();
    this.#link.notify({ t: 'forget', key: this.key });
  }
}

/** A stored frame as the screen model takes it. */
function screenFrameOf(frame: Frame): import('../terminal/screen.js').ScreenFrame {
  if (frame.stream === 'resize') return { seq: frame.seq, kind: 'resize', cols: frame.cols, rows: frame.rows };
  if (frame.stream === 'exit') return { seq: frame.seq, kind: 'other' };
  return { seq: frame.seq, kind: 'output', data: frame.data, clean: frame.clean !== false };
}

/** screen.snap: a JSON header line (version, seq, cols, rows), then the snapshot's UTF-8 text. */
function readScreenFile(dir: string): ScreenSnapshot | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync(path.join(dir, SCREEN_FILE));
  } catch {
    return undefined;
  }
  const nl = raw.indexOf(10);
  if (nl < 0) return undefined;
  try {
    const h = JSON.parse(raw.subarray(0, nl).toString('utf8')) as { version: number; seq: number; cols: number; rows: number };
    if (h.version !== 1) return undefined;
    return { seq: h.seq, cols: h.cols, rows: h.rows, data: raw.subarray(nl + 1).toString('utf8') };
  } catch {
    return undefined;
  }
}
