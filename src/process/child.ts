/**
 * One supervised child: its output source (pipes, or a pseudo-terminal), its seq counter, its frame log, its stdin,
 * its exit.
 *
 * The child only produces frames; who reads them, and at what pace, is the frame log's business
 * (src/replay/subscription.ts). The log asks the child to hold while its owner lags: the pipes (or the terminal's
 * master) stop being read and the child blocks on write like any piped program. After the reap the log is sealed, so
 * the exit drain never waits on a reader.
 *
 * A terminal child's output is cut at clean boundaries (src/terminal/cutter.ts): no frame ends inside an escape
 * sequence or a character unless it says so, so a screen snapshot (src/terminal/screen.ts) is only ever taken between
 * frames that make sense on their own. Its screen model is created at the first eviction from its replay buffer and
 * fed each frame as it is evicted, so it always stands for exactly the frames a late reader can no longer be sent.
 */
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { type ByteAccount, ReplayBuffer } from '../replay/buffer.js';
import { type ExitFrame, type Frame, FrameOrigin, type KilledBy, MAX_FRAME_DATA, type OutputStream, type ScreenFrame } from '../replay/frame.js';
import { FrameLog, type ScreenSource } from '../replay/subscription.js';
import type { CutPiece } from '../terminal/cutter.js';
import type { Terminal, TerminalExit } from '../terminal/pty.js';
import type { ScreenKeeper } from '../terminal/screen.js';
import type { KillSignal } from './signals.js';
import { pipeSink, type StdinOutcome, type StdinSink, StdinWriter } from './stdin.js';

/** How long after the reap the exit frame waits for both pipes to reach EOF (a grandchild may hold them). */
export const EXIT_DRAIN_GRACE_MS = 5000;

/** Hooks for metrics and the orphan registry; every one optional. */
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
  readonly stdinQueueCapBytes: number;
  readonly drainGraceMs: number;
}

/** The terminal side of a terminal child: built by the supervisor, which starts the terminal and its helpers. */
export interface TerminalParts {
  readonly terminal: Terminal;
  /** Cuts the terminal's output at clean boundaries; its pieces come back through `piece`. */
  readonly cutter: { push(bytes: Uint8Array): void; flush(): void; dispose(): void };
  readonly keeper: ScreenKeeper;
}

/**
 * The callbacks a terminal child must be started with, before the process object exists (spawnTerminal takes them at
 * once): they forward to the ManagedProcess once it is built; nothing can arrive before that, since events come from
 * the event loop.
 */
export class TerminalEvents {
  #target: ManagedProcess | undefined;
  readonly data = (bytes: Buffer): void => this.#target?.terminalData(bytes);
  readonly piece = (piece: CutPiece): void => this.#target?.terminalPiece(piece);
  readonly leaderExit = (code: number | null, signal: NodeJS.Signals | null): void => this.#target?.reap(code, signal);
  readonly exit = (exit: TerminalExit): void => this.#target?.terminalEnded(exit);

  bind(target: ManagedProcess): void {
    this.#target = target;
  }
}

export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly origin: FrameOrigin;
  readonly pid: number;
  /** The daemon's clock right after the start, epoch seconds: the reference's opaque `startTime` token. */
  readonly startTime: number;
  /** Epoch milliseconds of the start, for listings. */
  readonly startedAt: number;
  readonly log: FrameLog;
  readonly stdin: StdinWriter;

  readonly #child: ChildProcess | undefined;
  readonly #tty: TerminalParts | undefined;
  readonly #logger: Logger;
  readonly #observer: ProcessObserver;
  readonly #options: ManagedOptions;
  #seq = 0;
  #reaped = false;
  #exitCode: number | null = null;
  #exitSignal: string | null = null;
  /** Epoch milliseconds of the reap; 0 while running. */
  #reapedAt = 0;
  #killedBy: KilledBy | undefined;
  #exitFrame: ExitFrame | undefined;
  #exitFrameAt = 0;
  #exitWaiters: (() => void)[] = [];
  #openPipes = 2;
  #outputEnded = false;
  #stdoutBytes = 0;
  #stderrBytes = 0;
  #drainTimer: NodeJS.Timeout | undefined;

  /** A piped child (`child`), or a terminal one (`tty`, with its events bound here). */
  constructor(
    spec: ProcessSpec,
    source: { readonly child: ChildProcess } | { readonly tty: TerminalParts; readonly events: TerminalEvents },
    options: ManagedOptions,
    logger: Logger,
    observer: ProcessObserver,
  ) {
    this.spec = spec;
    this.origin = new FrameOrigin(spec.id);
    this.startedAt = Date.now();
    this.startTime = this.startedAt / 1000;
    this.#options = options;
    this.#logger = logger;
    this.#observer = observer;
    this.log = new FrameLog(this.origin, new ReplayBuffer(options.replayCapBytes, options.replayAccount), (hold) => this.#hold(hold));
    let sink: StdinSink;
    if ('child' in source) {
      const child = source.child;
      this.#child = child;
      this.pid = child.pid!;
      sink = pipeSink(child.stdin!, (err) => logger.debug('process.Manager', `drainStdin ${spec.id}: write error: ${err.message}`));
      child.on('error', (err) => logger.warn('process.Manager', `Process ${spec.id}: ${err.message}`));
      child.once('exit', (code, signal) => this.reap(code, signal));
      for (const stream of ['stdout', 'stderr'] as const) {
        const pipe = child[stream]!;
        pipe.on('data', (chunk: Buffer) => this.#onOutput(stream, chunk));
        pipe.on('error', (err) => logger.warn('process.Manager', `Process ${spec.id}: ${stream} read error: ${err.message}`));
        pipe.once('close', () => this.#onPipeClosed());
      }
    } else {
      const { tty, events } = source;
      this.#tty = tty;
      this.pid = tty.terminal.pid;
      sink = terminalSink(tty.terminal);
      this.log.buffer.onEvict((frame) => tty.keeper.evicted(screenFrameOf(frame)));
      this.log.screen = this.#screenSource(tty);
      events.bind(this);
    }
    this.stdin = new StdinWriter(sink, options.stdinQueueCapBytes);
  }

  get id(): string {
    return this.spec.id;
  }

  get replay(): ReplayBuffer {
    return this.log.buffer;
  }

  /** The terminal's current size, for a terminal process. */
  get terminalSize(): { readonly cols: number; readonly rows: number } | undefined {
    const t = this.#tty?.terminal;
    return t ? { cols: t.cols, rows: t.rows } : undefined;
  }

  /** False from the reap on, even while the exit frame still waits for the output to drain. */
  get running(): boolean {
    return !this.#reaped;
  }

  get exited(): boolean {
    return this.#exitFrame !== undefined;
  }

  /** Epoch milliseconds of the reap (the exit as the OS saw it); 0 while running. */
  get reapedAt(): number {
    return this.#reapedAt;
  }

  /** How the process ended, from the reap on. */
  get exitStatus(): { readonly exitCode: number; readonly signal: string | undefined } | undefined {
    return this.#reaped ? { exitCode: this.#exitCode ?? -1, signal: this.#exitSignal ?? undefined } : undefined;
  }

  /** Raw bytes read from the child's stdout (a terminal's output counts here) and stderr, for its exit's audit record. */
  get stdoutBytes(): number {
    return this.#stdoutBytes;
  }

  get stderrBytes(): number {
    return this.#stderrBytes;
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

  /** Resolves when the exit frame has been emitted. */
  whenExited(): Promise<void> {
    if (this.#exitFrame) return Promise.resolve();
    return new Promise((resolve) => this.#exitWaiters.push(resolve));
  }

  // ---- output and exit ----

  #hold(hold: boolean): void {
    if (this.#tty) {
      if (hold) this.#tty.terminal.pause();
      else this.#tty.terminal.resume();
      return;
    }
    for (const pipe of [this.#child!.stdout!, this.#child!.stderr!]) {
      if (hold) pipe.pause();
      else pipe.resume();
    }
  }

  #onOutput(stream: OutputStream, chunk: Buffer): void {
    this.#observer.output?.(chunk.length);
    if (stream === 'stdout') this.#stdoutBytes += chunk.length;
    else this.#stderrBytes += chunk.length;
    for (let at = 0; at < chunk.length; at += MAX_FRAME_DATA) {
      const data = at === 0 && chunk.length <= MAX_FRAME_DATA ? chunk : chunk.subarray(at, at + MAX_FRAME_DATA);
      this.#emit(this.origin.dataFrame(++this.#seq, stream, data));
    }
  }

  /** @internal A terminal's read, before cutting. */
  terminalData(bytes: Buffer): void {
    this.#observer.output?.(bytes.length);
    this.#stdoutBytes += bytes.length;
    this.#tty!.cutter.push(bytes);
  }

  /** @internal A piece the cutter let through: one frame (pieces are at most MAX_FRAME_DATA). */
  terminalPiece(piece: CutPiece): void {
    this.#emit(this.origin.terminalFrame(++this.#seq, Buffer.from(piece.data.buffer, piece.data.byteOffset, piece.data.byteLength), piece.clean));
  }

  #emit(frame: Frame): void {
    const framesBefore = this.log.buffer.evictedFrames;
    const evicted = this.log.append(frame);
    if (evicted > 0) this.#observer.evicted?.(this.log.buffer.evictedFrames - framesBefore, evicted);
  }

  /** @internal The OS reaped the child (a terminal's leader, or the piped child). */
  reap(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#reaped) return;
    this.#reaped = true;
    this.#exitCode = code;
    this.#exitSignal = signal;
    this.#reapedAt = Date.now();
    this.#observer.reaped?.(this);
    this.log.seal(); // never hold the output after the reap: the drain must not wait on a slow client
    // A terminal bounds its own drain (it reports its end once the output reached EIO, or after its grace).
    if (this.#child && this.#openPipes > 0) {
      this.#drainTimer = setTimeout(() => this.#forceDrain(), this.#options.drainGraceMs);
    }
    this.#finishIfDrained();
  }

  /** @internal A terminal's output ended (EIO), or its drain grace ran out. */
  terminalEnded(exit: TerminalExit): void {
    this.#tty!.cutter.flush();
    if (!exit.drained) this.#observer.drainTimedOut?.(this);
    this.reap(exit.exitCode, exit.signal);
    this.#outputEnded = true;
    this.#finishIfDrained();
  }

  #onPipeClosed(): void {
    this.#openPipes--;
    if (this.#openPipes === 0) this.#outputEnded = true;
    this.#finishIfDrained();
  }

  #forceDrain(): void {
    this.#logger.warn('process.Manager', `Process ${this.id}: pipe drain grace expired (grandchild holding stdio?); force-closing`);
    this.#observer.drainTimedOut?.(this);
    this.#child!.stdout!.destroy();
    this.#child!.stderr!.destroy();
  }

  #finishIfDrained(): void {
    if (!this.#reaped || !this.#outputEnded || this.#exitFrame) return;
    clearTimeout(this.#drainTimer);
    const exitCode = this.#exitCode ?? -1;
    const signal = this.#exitSignal ?? undefined;
    const frame = this.origin.exitFrame(++this.#seq, exitCode, signal, this.#killedBy);
    this.#exitFrame = frame;
    this.#exitFrameAt = performance.now();
    let line = `Process ${this.id} exited with code ${exitCode}`;
    if (signal) line += `, terminated by ${signal}`;
    if (this.#killedBy) line += this.#killedBy === 'client' ? ', signalled at client request' : ', signalled at shutdown request';
    this.#logger.info('process.Manager', line);
    this.#emit(frame);
    // Nothing more will be written: the ring keeps what it holds and gives the rest back.
    this.log.buffer.compact();
    this.#tty?.terminal.close();
    this.#observer.exited?.(this);
    for (const wake of this.#exitWaiters.splice(0)) wake();
  }

  // ---- terminals ----

  #screenSource(tty: TerminalParts): ScreenSource {
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
   * Resizes the terminal (the program gets SIGWINCH) and records the size in the frame log, so every reader, and a
   * later snapshot, knows the size in force from here on. False for a piped process.
   */
  resize(cols: number, rows: number): boolean {
    const tty = this.#tty;
    if (!tty || this.#reaped) return false;
    tty.cutter.flush();
    tty.terminal.resize(cols, rows);
    this.#emit(this.origin.resizeFrame(++this.#seq, cols, rows));
    return true;
  }

  // ---- control ----

  /**
   * Sends a signal: SIGKILL to the whole process group, anything else to the direct child only (reference width),
   * or to the group when `group` asks for it (extension: what a terminal does with Ctrl-C; a shell waiting for its
   * foreground child ignores a SIGINT that reaches it alone). A terminal's INT, HUP and TERM go to its foreground
   * process group, as the terminal's own keys would, and KILL to its whole session. A reaped child is never
   * signalled, since its pid may already be someone else's; `afterReap` allows the exceptions, group signals while
   * the exit frame still waits on a pipe holder (a group id cannot be reused while the group has members).
   */
  signal(sig: KillSignal, by: KilledBy, afterReap = false, group = false): boolean {
    if (this.#reaped && !afterReap) return false;
    if (this.#exitFrame) return false;
    if (this.#tty) {
      void this.#tty.terminal
        .signal(sig)
        .catch((err: Error) => this.#logger.warn('process.Manager', `Process ${this.id}: kill ${sig}: ${err.message}`));
    } else {
      try {
        process.kill(sig === 'SIGKILL' || group ? -this.pid : this.pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
          this.#logger.warn('process.Manager', `Process ${this.id}: kill ${sig}: ${(err as Error).message}`);
        }
      }
    }
    this.#killedBy = by;
    return true;
  }

  /** Applies one stdin write under the offset rules; never waits for the child to read. */
  writeStdin(data: Buffer, offset: number | undefined, eof = false): StdinOutcome {
    return this.stdin.write(data, offset, eof, !this.#reaped);
  }

  /** Forgets the buffered frames of a process being pruned, ending every subscription to it. */
  dispose(): void {
    this.log.clear();
    if (this.#tty) {
      this.#tty.cutter.dispose();
      this.#tty.keeper.dispose();
      this.#tty.terminal.close();
    }
  }
}

/** A terminal's input as a stdin sink: every byte in order, paced by the terminal; no end of input. */
function terminalSink(terminal: Terminal): StdinSink {
  let broken = false;
  return {
    write: (data) => {
      if (!broken && !terminal.write(data)) broken = true;
    },
    end: () => {},
    get queuedBytes() {
      return terminal.queuedBytes;
    },
    get broken() {
      return broken;
    },
    endable: false,
  };
}

/** A stored frame as the screen model takes it. */
function screenFrameOf(frame: Frame): import('../terminal/screen.js').ScreenFrame {
  if (frame.stream === 'resize') return { seq: frame.seq, kind: 'resize', cols: frame.cols, rows: frame.rows };
  if (frame.stream === 'exit') return { seq: frame.seq, kind: 'other' };
  return { seq: frame.seq, kind: 'output', data: frame.data, clean: frame.clean !== false };
}
