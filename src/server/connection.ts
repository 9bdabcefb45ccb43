/**
 * One client connection, independent of its transport and wire format: it dispatches decoded requests, writes
 * replies and frames through a codec, and is the frame receiver (FrameSink) the supervisor pumps into.
 *
 * Memory per connection is bounded without any queue of its own:
 * - frames stop at the high-water mark, because the processes it receives pause their children until the backlog
 *   is back under the low-water mark;
 * - requests stop being read while too many are in flight or while unread replies pile up past a larger mark;
 * - a receiver that makes no progress for the stall timeout while over the high-water mark is disconnected, which
 *   lets its children run on into their replay buffers.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import type { FrameSink, ManagedProcess } from '../process/managed.js';
import type { Frame, FrameOrigin } from '../replay/frame.js';
import { formatDuration } from '../util/duration.js';
import { type CallContext, Dispatcher, type DispatchOptions, type Peer } from './dispatch.js';
import { NOT_A_REQUEST, type DecodedRequest } from './request.js';
import type { Reply } from './wire.js';

/** Bytes out, however they travel. */
export interface Outbound {
  /** Queues data; `flushed` runs once it has left user space. */
  write(data: string | Buffer, flushed: () => void): void;
  /** Bytes queued and not yet flushed. */
  readonly backlog: number;
  /** Closes after flushing what is queued. */
  end(): void;
  /** Closes now. */
  destroy(): void;
  pauseInput(): void;
  resumeInput(): void;
}

/** How replies and frames are encoded for one connection. */
export interface WireCodec {
  reply(reply: Reply): string | Buffer;
  frame(origin: FrameOrigin, frame: Frame): string | Buffer;
}

export interface FlowLimits {
  /** Backlog at which children feeding this connection are paused. Default 1 MiB. */
  readonly highWaterBytes: number;
  /** Backlog under which they resume. Default 256 KiB. */
  readonly lowWaterBytes: number;
  /** Backlog at which this connection's requests stop being read (unread replies). Default 4 MiB. */
  readonly inputPauseBytes: number;
  /** Requests in progress at which reading stops until one completes. Default 256. */
  readonly maxInflight: number;
  /** How long a congested receiver may make no progress before it is dropped. Default 30 s. */
  readonly stallTimeoutMs: number;
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = {
  highWaterBytes: 1024 * 1024,
  lowWaterBytes: 256 * 1024,
  inputPauseBytes: 4 * 1024 * 1024,
  maxInflight: 256,
  stallTimeoutMs: 30_000,
};

export interface ConnectionHooks {
  stalled?(): void;
  closed?(conn: Connection): void;
}

export class Connection implements Peer, FrameSink {
  readonly label: string;
  readonly #out: Outbound;
  #codec: WireCodec;
  readonly #dispatcher: Dispatcher;
  readonly #dispatchOptions: DispatchOptions;
  readonly #limits: FlowLimits;
  readonly #log: Logger;
  readonly #hooks: ConnectionHooks;
  readonly #received = new Set<ManagedProcess>();
  readonly #waiting = new Set<ManagedProcess>();
  readonly #flushed = () => this.#onFlushed();
  #closed = false;
  #congested = false;
  #stallTimer: NodeJS.Timeout | undefined;
  #inflight = 0;
  #inputEnded = false;
  #inputPaused = false;
  #order: Promise<unknown> | undefined;
  /** performance.now() of the last byte read or written, for the idle-connection close. */
  #lastActivity = performance.now();

  constructor(
    label: string,
    out: Outbound,
    codec: WireCodec,
    dispatcher: Dispatcher,
    dispatchOptions: DispatchOptions,
    limits: FlowLimits,
    log: Logger,
    hooks: ConnectionHooks = {},
  ) {
    this.label = label;
    this.#out = out;
    this.#codec = codec;
    this.#dispatcher = dispatcher;
    this.#dispatchOptions = dispatchOptions;
    this.#limits = limits;
    this.#log = log;
    this.#hooks = hooks;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Switches the wire format; done once, when the first byte of a Unix connection names it. */
  useCodec(codec: WireCodec): void {
    this.#codec = codec;
  }

  get congested(): boolean {
    return this.#congested;
  }

  get inflight(): number {
    return this.#inflight;
  }

  get lastActivity(): number {
    return this.#lastActivity;
  }

  /** Something was read: the connection is not idle, even if no request is complete yet. */
  touch(): void {
    this.#lastActivity = performance.now();
  }

  /** Closes now, dropping what is queued. */
  destroy(): void {
    this.#out.destroy();
  }

  // ---- requests ----

  /** Handles one decoded message. Parse and auth errors are written before this returns. */
  handle(req: DecodedRequest | typeof NOT_A_REQUEST): void {
    if (this.#closed) return;
    if (req === NOT_A_REQUEST) {
      this.#writeReply(Dispatcher.parseError());
      return;
    }
    const after: (() => void)[] = [];
    const ctx: CallContext = { peer: this, afterReply: (fn) => after.push(fn) };
    const out = this.#dispatcher.dispatch(req, ctx, this.#dispatchOptions);
    if (!(out instanceof Promise)) {
      this.#writeReply(out, after);
      return;
    }
    this.#inflight++;
    this.#syncInput();
    void out.then((reply) => {
      this.#inflight--;
      this.#writeReply(reply, after);
      this.#syncInput();
      this.#endIfDone();
    });
  }

  /** The client half-closed: replies still in flight are delivered, then the connection closes. */
  inputEnded(): void {
    this.#inputEnded = true;
    this.#endIfDone();
  }

  /** The transport is gone: let go of every process this connection received. */
  transportClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#stallTimer);
    this.#waiting.clear();
    for (const proc of [...this.#received]) proc.detach(this);
    this.#received.clear();
    this.#hooks.closed?.(this);
  }

  /** Closes after flushing (graceful shutdown). */
  close(): void {
    if (!this.#closed) this.#out.end();
  }

  inOrder<T>(fn: () => T | Promise<T>): T | Promise<T> {
    const run = this.#order === undefined ? fn() : this.#order.then(fn);
    if (!(run instanceof Promise)) return run;
    const tail: Promise<unknown> = run.then(noop, noop);
    this.#order = tail;
    void tail.then(() => {
      if (this.#order === tail) this.#order = undefined;
    });
    return run;
  }

  #writeReply(reply: Reply, after?: (() => void)[]): void {
    if (!this.#closed) this.#write(this.#codec.reply(reply));
    if (after) for (const fn of after) fn();
  }

  #endIfDone(): void {
    if (this.#inputEnded && this.#inflight === 0 && !this.#closed) this.#out.end();
  }

  // ---- frames (FrameSink) ----

  send(origin: FrameOrigin, frame: Frame): void {
    this.#write(this.#codec.frame(origin, frame));
  }

  waitForDrain(proc: ManagedProcess): void {
    this.#waiting.add(proc);
  }

  adopt(proc: ManagedProcess): void {
    this.#received.add(proc);
  }

  release(proc: ManagedProcess): void {
    this.#received.delete(proc);
    this.#waiting.delete(proc);
  }

  evict(reason: string): void {
    this.#log.info('Server', `closing connection ${this.label}: ${reason}`);
    this.#out.destroy();
  }

  // ---- flow control ----

  #write(data: string | Buffer): void {
    if (this.#closed) return;
    this.#lastActivity = performance.now();
    this.#out.write(data, this.#flushed);
    const backlog = this.#out.backlog;
    if (!this.#congested && backlog >= this.#limits.highWaterBytes) {
      this.#congested = true;
      this.#stallTimer = setTimeout(() => this.#stalled(), this.#limits.stallTimeoutMs);
    }
    if (backlog >= this.#limits.inputPauseBytes) this.#syncInput();
  }

  #onFlushed(): void {
    if (this.#closed) return;
    if (this.#congested) {
      this.#stallTimer?.refresh(); // progress
      if (this.#out.backlog <= this.#limits.lowWaterBytes) {
        this.#congested = false;
        clearTimeout(this.#stallTimer);
        const waiting = [...this.#waiting];
        this.#waiting.clear();
        for (const proc of waiting) {
          // A pump that congests the connection again re-registers itself; the rest must keep their place.
          if (this.#congested) this.#waiting.add(proc);
          else proc.pump();
        }
      }
    }
    if (this.#inputPaused) this.#syncInput();
  }

  #syncInput(): void {
    const pause = this.#inflight >= this.#limits.maxInflight || this.#out.backlog >= this.#limits.inputPauseBytes;
    if (pause === this.#inputPaused || this.#closed) return;
    this.#inputPaused = pause;
    if (pause) this.#out.pauseInput();
    else this.#out.resumeInput();
  }

  #stalled(): void {
    if (this.#closed) return;
    this.#log.warn(
      'frameSink',
      `receiver ${this.label} made no progress for ${formatDuration(this.#limits.stallTimeoutMs)} with ${this.#out.backlog} bytes unsent; dropping it`,
    );
    this.#hooks.stalled?.();
    this.#out.destroy();
  }
}

function noop(): void {}
