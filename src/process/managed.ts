/**
 * One supervised child: its pipes, its seq counter, its replay buffer, its receiver, its stdin, its exit.
 *
 * Delivery is a cursor over the replay buffer. Every frame goes into the buffer first; the receiver (at most one
 * connection) holds the seq it has been sent up to, and `pump()` writes what lies beyond it while the receiver is
 * not congested. Live delivery and reattach replay are therefore the same loop, a slow receiver never needs a queue
 * of its own, and nothing is sent twice or skipped across a transfer.
 *
 * Flow control (lossless to an attached receiver): while the receiver is congested or behind, the child's pipes are
 * paused, so the child blocks on write like any piped program, and nothing is evicted that the receiver has not
 * been sent. With no receiver the child is never paused; old frames are evicted instead. After the reap the pipes
 * are never paused, so the exit drain cannot be held up by a slow client.
 */
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { type ExitFrame, type Frame, FrameOrigin, type KilledBy, MAX_FRAME_DATA, type OutputStream } from '../replay/frame.js';
import { ReplayBuffer } from '../replay/buffer.js';
import type { KillSignal } from './signals.js';
import { stdinVerdict } from './stdin.js';

/** How long after the reap the exit frame waits for both pipes to reach EOF (a grandchild may hold them). */
export const EXIT_DRAIN_GRACE_MS = 5000;

/** A connection that receives frames, as the supervisor sees it. Implemented by the server's connections. */
export interface FrameSink {
  readonly closed: boolean;
  /** True while the receiver's unsent backlog is above its high-water mark. */
  readonly congested: boolean;
  send(origin: FrameOrigin, frame: Frame): void;
  /** Asks for `proc.pump()` once the backlog is back under the low-water mark. */
  waitForDrain(proc: ManagedProcess): void;
  /** Bookkeeping so a closing connection can detach every process it receives. */
  adopt(proc: ManagedProcess): void;
  release(proc: ManagedProcess): void;
  /** Closes this receiver's whole connection: a reattach moved its stream elsewhere. */
  evict(reason: string): void;
}

/** Hooks for metrics and the orphan registry; every one optional. */
export interface ProcessObserver {
  output?(bytes: number): void;
  evicted?(frames: number, bytes: number): void;
  reaped?(proc: ManagedProcess): void;
  exited?(proc: ManagedProcess): void;
  drainTimedOut?(proc: ManagedProcess): void;
}

export type StdinOutcome =
  | { readonly kind: 'gap' }
  | { readonly kind: 'duplicate'; readonly applied: number }
  | { readonly kind: 'notRunning' }
  | { readonly kind: 'full' }
  | { readonly kind: 'closed' }
  | { readonly kind: 'accepted'; readonly applied: number; readonly bytes: number };

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

interface Receiver {
  readonly sink: FrameSink;
  /** Seq of the last frame written to the sink. */
  cursor: number;
  /** Frames above this seq wait: set while a reply must go out before them (spawn, reattach). */
  limit: number;
  /** Resolves a reattach waiting for its replay to be written. */
  caughtUp: (() => void) | undefined;
}

export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly origin: FrameOrigin;
  readonly pid: number;
  /** The daemon's clock right after the start, epoch seconds: the reference's opaque `startTime` token. */
  readonly startTime: number;
  /** Epoch milliseconds of the start, for listings. */
  readonly startedAt: number;
  readonly replay: ReplayBuffer;

  readonly #child: ChildProcess;
  readonly #log: Logger;
  readonly #observer: ProcessObserver;
  readonly #options: ManagedOptions;
  #seq = 0;
  #receiver: Receiver | undefined;
  #paused = false;
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
  #stdinApplied = 0;
  #stdinBroken = false;
  /** The client closed stdin (an `eof` write): no fresh bytes are accepted after it. */
  #stdinEnded = false;

  constructor(spec: ProcessSpec, child: ChildProcess, options: ManagedOptions, log: Logger, observer: ProcessObserver) {
    this.spec = spec;
    this.origin = new FrameOrigin(spec.id);
    this.pid = child.pid!;
    this.startedAt = Date.now();
    this.startTime = this.startedAt / 1000;
    this.replay = new ReplayBuffer(options.replayCapBytes);
    this.#child = child;
    this.#options = options;
    this.#log = log;
    this.#observer = observer;

    child.on('error', (err) => log.warn('process.Manager', `Process ${spec.id}: ${err.message}`));
    child.once('exit', (code, signal) => this.#onExit(code, signal));
    child.stdin!.on('error', (err) => {
      // EPIPE once the child closes its stdin or dies: drop what is queued, keep counting (reference behaviour).
      this.#stdinBroken = true;
      log.debug('process.Manager', `drainStdin ${spec.id}: write error: ${err.message}`);
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const pipe = child[stream]!;
      pipe.on('data', (chunk: Buffer) => this.#onOutput(stream, chunk));
      pipe.on('error', (err) => log.warn('process.Manager', `Process ${spec.id}: ${stream} read error: ${err.message}`));
      pipe.once('close', () => this.#onPipeClosed());
    }
  }

  get id(): string {
    return this.spec.id;
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

  get stdinApplied(): number {
    return this.#stdinApplied;
  }

  get stdinClosed(): boolean {
    return this.#stdinEnded;
  }

  /** True while the child's pipes are held because its receiver is behind or congested. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Stdin bytes accepted but not yet written into the child's pipe. */
  get stdinQueuedBytes(): number {
    const stdin = this.#child.stdin!;
    return this.#stdinBroken || stdin.destroyed ? 0 : stdin.writableLength;
  }

  /** Resolves when the exit frame has been emitted. */
  whenExited(): Promise<void> {
    if (this.#exitFrame) return Promise.resolve();
    return new Promise((resolve) => this.#exitWaiters.push(resolve));
  }

  // ---- receivers ----

  /**
   * Makes `sink` the sole receiver, writing every retained frame with seq > fromSeq (up to `limit`, while a reply
   * must precede later frames). A different previous receiver loses its whole connection (reference behaviour since
   * 90fca6e6), which also cuts its stream at a seq it has already been sent.
   */
  attach(sink: FrameSink, fromSeq: number, limit = Number.POSITIVE_INFINITY): void {
    const previous = this.#receiver;
    if (previous) {
      previous.caughtUp?.();
      if (previous.sink !== sink) {
        this.#receiver = undefined;
        previous.sink.release(this);
        if (!previous.sink.closed) previous.sink.evict(`process ${this.id} was reattached by another connection`);
      }
    }
    if (sink.closed) {
      this.#receiver = undefined;
      this.#updateFlow();
      return;
    }
    this.#receiver = { sink, cursor: Math.min(fromSeq, this.replay.lastSeq), limit, caughtUp: undefined };
    sink.adopt(this);
    this.pump();
  }

  /** Resolves once the receiver has been sent every frame up to its limit (or is gone). */
  caughtUp(sink: FrameSink): Promise<void> {
    const r = this.#receiver;
    if (!r || r.sink !== sink || r.cursor >= Math.min(r.limit, this.replay.lastSeq)) return Promise.resolve();
    return new Promise((resolve) => {
      r.caughtUp = resolve;
    });
  }

  /** Lifts the hold set by attach(): the reply has gone out, live frames may follow. */
  releaseLimit(sink: FrameSink): void {
    const r = this.#receiver;
    if (!r || r.sink !== sink) return;
    r.limit = Number.POSITIVE_INFINITY;
    this.pump();
  }

  /** Called by a sink that is closing or giving the process up. */
  detach(sink: FrameSink): void {
    const r = this.#receiver;
    if (!r || r.sink !== sink) return;
    this.#receiver = undefined;
    r.caughtUp?.();
    this.#updateFlow();
  }

  get receiver(): FrameSink | undefined {
    return this.#receiver?.sink;
  }

  /** Writes frames the receiver has not been sent, until it is congested or caught up. */
  pump(): void {
    const r = this.#receiver;
    if (!r) return;
    const { sink } = r;
    if (sink.closed) {
      this.detach(sink);
      return;
    }
    const target = Math.min(this.replay.lastSeq, r.limit);
    while (r.cursor < target) {
      if (sink.congested) {
        sink.waitForDrain(this);
        break;
      }
      const frame = this.replay.get(r.cursor + 1);
      if (frame === undefined) {
        // Evicted before it could be sent (no hold is possible once reaped): resume at the oldest retained frame.
        r.cursor = this.replay.firstSeq - 1;
        continue;
      }
      sink.send(this.origin, frame);
      r.cursor = frame.seq;
      if (sink.closed) break;
    }
    if (r.caughtUp && r.cursor >= Math.min(r.limit, this.replay.lastSeq)) {
      const done = r.caughtUp;
      r.caughtUp = undefined;
      done();
    }
    this.#updateFlow();
  }

  #updateFlow(): void {
    const r = this.#receiver;
    const hold = !this.#reaped && r !== undefined && !r.sink.closed && (r.cursor < this.replay.lastSeq || r.sink.congested);
    if (hold && r.sink.congested) r.sink.waitForDrain(this);
    if (hold === this.#paused) return;
    this.#paused = hold;
    for (const pipe of [this.#child.stdout!, this.#child.stderr!]) {
      if (hold) pipe.pause();
      else pipe.resume();
    }
  }

  // ---- output and exit ----

  #onOutput(stream: OutputStream, chunk: Buffer): void {
    this.#observer.output?.(chunk.length);
    for (let at = 0; at < chunk.length; at += MAX_FRAME_DATA) {
      const data = at === 0 && chunk.length <= MAX_FRAME_DATA ? chunk : chunk.subarray(at, at + MAX_FRAME_DATA);
      this.#emit(this.origin.dataFrame(++this.#seq, stream, data));
    }
  }

  #emit(frame: Frame): void {
    const framesBefore = this.replay.evictedFrames;
    const evicted = this.replay.append(frame);
    if (evicted > 0) this.#observer.evicted?.(this.replay.evictedFrames - framesBefore, evicted);
    this.pump();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#reaped = true;
    this.#exitCode = code;
    this.#exitSignal = signal;
    this.#reapedAt = Date.now();
    this.#observer.reaped?.(this);
    this.#updateFlow(); // never hold the pipes after the reap: the drain must not wait on a slow client
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
    this.#log.warn('process.Manager', `Process ${this.id}: pipe drain grace expired (grandchild holding stdio?); force-closing`);
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
    this.#log.info('process.Manager', line);
    this.#emit(frame);
    this.#observer.exited?.(this);
    for (const wake of this.#exitWaiters.splice(0)) wake();
  }

  // ---- control ----

  /**
   * Sends a signal: SIGKILL to the whole process group, anything else to the direct child only (reference width),
   * or to the group when `group` asks for it (extension: what a terminal does with Ctrl-C; a shell waiting for its
   * foreground child ignores a SIGINT that reaches it alone). A reaped child is never signalled, since its pid may
   * already be someone else's; `afterReap` allows the exceptions, group signals while the exit frame still waits on
   * a pipe holder (a group id cannot be reused while the group has members).
   */
  signal(sig: KillSignal, by: KilledBy, afterReap = false, group = false): boolean {
    if (this.#reaped && !afterReap) return false;
    if (this.#exitFrame) return false;
    try {
      process.kill(sig === 'SIGKILL' || group ? -this.pid : this.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
        this.#log.warn('process.Manager', `Process ${this.id}: kill ${sig}: ${(err as Error).message}`);
      }
    }
    this.#killedBy = by;
    return true;
  }

  /**
   * Applies one stdin write under the offset rules; never waits for the child to read. With `eof`, stdin is closed
   * once everything accepted has been written (an extension: a write is a duplicate only if its bytes are all
   * applied and, when it asks for EOF, stdin is already closed).
   */
  writeStdin(data: Buffer, offset: number | undefined, eof = false): StdinOutcome {
    const verdict = stdinVerdict(this.#stdinApplied, offset, data.length);
    if (verdict.kind === 'gap') return verdict;
    const eofPending = eof && !this.#stdinEnded;
    if (verdict.kind === 'duplicate' && !(eofPending && offset! + data.length === this.#stdinApplied)) {
      return { kind: 'duplicate', applied: this.#stdinApplied };
    }
    if (this.#reaped) return { kind: 'notRunning' };
    const fresh = verdict.kind === 'write' ? data.subarray(verdict.skip) : data.subarray(data.length);
    if (this.#stdinEnded && fresh.length > 0) return { kind: 'closed' };
    const queued = this.stdinQueuedBytes;
    if (queued > 0 && queued + fresh.length > this.#options.stdinQueueCapBytes) return { kind: 'full' };
    const stdin = this.#child.stdin!;
    const writable = !this.#stdinBroken && !stdin.destroyed;
    if (fresh.length > 0 && writable) stdin.write(fresh);
    this.#stdinApplied += fresh.length;
    if (eofPending) {
      this.#stdinEnded = true;
      if (writable) stdin.end(); // after the queued bytes
    }
    return { kind: 'accepted', applied: this.#stdinApplied, bytes: fresh.length };
  }

  /** Forgets the buffered frames of a process being pruned, and lets its receiver go. */
  dispose(): void {
    const r = this.#receiver;
    if (r) {
      r.sink.release(this);
      this.detach(r.sink);
    }
    this.replay.clear();
  }
}
