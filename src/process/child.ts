/**
 * One supervised child: its pipes, its seq counter, its frame log, its stdin, its exit.
 *
 * The child only produces frames; who reads them, and at what pace, is the frame log's business
 * (src/replay/subscription.ts). The log asks the child to hold while its owner lags: the pipes pause and the child
 * blocks on write like any piped program. After the reap the log is sealed, so the exit drain never waits on a reader.
 */
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { ReplayBuffer } from '../replay/buffer.js';
import { type ExitFrame, type Frame, FrameOrigin, type KilledBy, MAX_FRAME_DATA, type OutputStream } from '../replay/frame.js';
import { FrameLog } from '../replay/subscription.js';
import type { KillSignal } from './signals.js';
import { type StdinOutcome, StdinWriter } from './stdin.js';

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
  readonly stdinQueueCapBytes: number;
  readonly drainGraceMs: number;
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

  readonly #child: ChildProcess;
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
  #drainTimer: NodeJS.Timeout | undefined;

  constructor(spec: ProcessSpec, child: ChildProcess, options: ManagedOptions, logger: Logger, observer: ProcessObserver) {
    this.spec = spec;
    this.origin = new FrameOrigin(spec.id);
    this.pid = child.pid!;
    this.startedAt = Date.now();
    this.startTime = this.startedAt / 1000;
    this.#child = child;
    this.#options = options;
    this.#logger = logger;
    this.#observer = observer;
    this.log = new FrameLog(this.origin, new ReplayBuffer(options.replayCapBytes), (hold) => this.#hold(hold));
    this.stdin = new StdinWriter(child.stdin!, options.stdinQueueCapBytes, (err) =>
      logger.debug('process.Manager', `drainStdin ${spec.id}: write error: ${err.message}`),
    );

    child.on('error', (err) => logger.warn('process.Manager', `Process ${spec.id}: ${err.message}`));
    child.once('exit', (code, signal) => this.#onExit(code, signal));
    for (const stream of ['stdout', 'stderr'] as const) {
      const pipe = child[stream]!;
      pipe.on('data', (chunk: Buffer) => this.#onOutput(stream, chunk));
      pipe.on('error', (err) => logger.warn('process.Manager', `Process ${spec.id}: ${stream} read error: ${err.message}`));
      pipe.once('close', () => this.#onPipeClosed());
    }
  }

  get id(): string {
    return this.spec.id;
  }

  get replay(): ReplayBuffer {
    return this.log.buffer;
  }

  /** False from the reap on, even while the exit frame still waits for the pipes to drain. */
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

  get exitFrame(): ExitFrame | undefined {
    return this.#exitFrame;
  }

  /** performance.now() at the exit frame; 0 while running. */
  get exitFrameAt(): number {
    return this.#exitFrameAt;
  }

  /** True while the child's pipes are held because its owner is behind or congested. */
  get paused(): boolean {
    return this.log.held;
  }

  /** Resolves when the exit frame has been emitted. */
  whenExited(): Promise<void> {
    if (this.#exitFrame) return Promise.resolve();
    return new Promise((resolve) => this.#exitWaiters.push(resolve));
  }

  // ---- output and exit ----

  #hold(hold: boolean): void {
    for (const pipe of [this.#child.stdout!, this.#child.stderr!]) {
      if (hold) pipe.pause();
      else pipe.resume();
    }
  }

  #onOutput(stream: OutputStream, chunk: Buffer): void {
    this.#observer.output?.(chunk.length);
    for (let at = 0; at < chunk.length; at += MAX_FRAME_DATA) {
      const data = at === 0 && chunk.length <= MAX_FRAME_DATA ? chunk : chunk.subarray(at, at + MAX_FRAME_DATA);
      this.#emit(this.origin.dataFrame(++this.#seq, stream, data));
    }
  }

  #emit(frame: Frame): void {
    const framesBefore = this.log.buffer.evictedFrames;
    const evicted = this.log.append(frame);
    if (evicted > 0) this.#observer.evicted?.(this.log.buffer.evictedFrames - framesBefore, evicted);
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#reaped = true;
    this.#exitCode = code;
    this.#exitSignal = signal;
    this.#reapedAt = Date.now();
    this.#observer.reaped?.(this);
    this.log.seal(); // never hold the pipes after the reap: the drain must not wait on a slow client
    if (this.#openPipes > 0) {
      this.#drainTimer = setTimeout(() => this.#forceDrain(), this.#options.drainGraceMs);
    }
    this.#finishIfDrained();
  }

  #onPipeClosed(): void {
    this.#openPipes--;
    this.#finishIfDrained();
  }

  #forceDrain(): void {
    this.#logger.warn('process.Manager', `Process ${this.id}: pipe drain grace expired (grandchild holding stdio?); force-closing`);
    this.#observer.drainTimedOut?.(this);
    this.#child.stdout!.destroy();
    this.#child.stderr!.destroy();
  }

  #finishIfDrained(): void {
    if (!this.#reaped || this.#openPipes > 0 || this.#exitFrame) return;
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
    this.#observer.exited?.(this);
    for (const wake of this.#exitWaiters.splice(0)) wake();
  }

  // ---- control ----

  /**
   * Sends a signal: SIGKILL to the whole process group, anything else to the direct child only (reference width).
   * A reaped child is never signalled, since its pid may already be someone else's; `afterReap` allows the one
   * exception, the group sweep after a killAndWait grace, while the exit frame still waits on a pipe holder.
   */
  signal(sig: KillSignal, by: KilledBy, afterReap = false): boolean {
    if (this.#reaped && !afterReap) return false;
    if (this.#exitFrame) return false;
    try {
      process.kill(sig === 'SIGKILL' ? -this.pid : this.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
        this.#logger.warn('process.Manager', `Process ${this.id}: kill ${sig}: ${(err as Error).message}`);
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
  }
}
