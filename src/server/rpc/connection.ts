/**
 * One client connection, independent of its transport and wire format: it dispatches decoded requests, writes
 * replies and stream messages through a codec, and is the FrameWriter its subscriptions write to. It owns the
 * subscriptions its requests opened (src/replay/subscription.ts) and ends them when it closes.
 *
 * Memory per connection is bounded without any queue of its own:
 * - frames stop at the high-water mark: `writeFrame` returns false and the subscription waits for 'drain' (an owner's
 *   process holds its child meanwhile), which is emitted once the backlog is back under the low-water mark;
 * - requests stop being read while too many are in flight or while unread replies pile up past a larger mark;
 * - a receiver that makes no progress for the stall timeout while over the high-water mark is disconnected, which
 *   lets its children run on into their replay buffers.
 *
 * With the audit on (`-audit`), every request that passed the parse stage is admitted by the audit first (under
 * `-audit-full block` a full audit queue refuses it, untouched) and recorded once its reply is known: refused ones,
 * failed ones and those whose connection closed meanwhile included (src/audit/recorder.ts).
 */
import { performance } from 'node:perf_hooks';
import { type Caller, identify } from '../../audit/caller.js';
import type { Admission, AuditConnection, Wire } from '../../audit/recorder.js';
import type { Logger } from '../../log/logger.js';
import { failure } from '../../protocol/errors.js';
import type { Frame, FrameOrigin, ScreenFrame } from '../../replay/frame.js';
import type { FrameLog, FrameWriter, SubscribeOptions, Subscription } from '../../replay/subscription.js';
import { formatDuration } from '../../util/duration.js';
import type { WireCodec } from './codec/codec.js';
import { type CallContext, Dispatcher, type DispatchOptions } from './dispatch.js';
import type { Verdict } from './gate.js';
import { errorReply, type Reply } from './reply.js';
import { type DecodedRequest, NOT_A_REQUEST, NULL_ID } from './request.js';

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

export interface FlowLimits {
  /** Backlog at which subscriptions writing here wait (and an owner's child is held). Default 1 MiB. */
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

export class Connection implements FrameWriter {
  readonly label: string;
  readonly #out: Outbound;
  #codec: WireCodec;
  readonly #dispatcher: Dispatcher;
  readonly #dispatchOptions: DispatchOptions;
  readonly #limits: FlowLimits;
  readonly #log: Logger;
  readonly #hooks: ConnectionHooks;
  readonly #subscriptions = new Set<Subscription>();
  /** Subscriptions waiting for the backlog to fall under the low-water mark, in the order they asked. */
  #drainWaiters: (() => void)[] = [];
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
  /** This connection's audit (undefined while the audit is off). */
  readonly #audit: AuditConnection | undefined;
  /** Who the client acts for, as it declared with session.identify (asserted, not verified). */
  #caller: Caller | undefined;

  constructor(
    label: string,
    out: Outbound,
    codec: WireCodec,
    dispatcher: Dispatcher,
    dispatchOptions: DispatchOptions,
    limits: FlowLimits,
    log: Logger,
    hooks: ConnectionHooks = {},
    audit?: AuditConnection,
  ) {
    this.label = label;
    this.#out = out;
    this.#codec = codec;
    this.#dispatcher = dispatcher;
    this.#dispatchOptions = dispatchOptions;
    this.#limits = limits;
    this.#log = log;
    this.#hooks = hooks;
    this.#audit = audit;
    if (audit?.peerPending) {
      // A new connection is read once the audit knows its peer (the lookup is bounded by PEER_LOOKUP_TIMEOUT_MS).
      this.#syncInput();
      audit.onPeer(() => this.#syncInput());
    }
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

  /**
   * Handles one decoded message, which came in `wire` format (the audit records it). Parse and auth errors are
   * written before this returns.
   */
  handle(req: DecodedRequest | typeof NOT_A_REQUEST, wire: Wire = 'json'): void {
    if (this.#closed) return;
    if (req === NOT_A_REQUEST) {
      this.#writeReply(Dispatcher.parseError());
      return;
    }
    const audit = this.#audit;
    let admission: Admission | undefined;
    let verdict: Verdict | undefined;
    if (audit !== undefined) {
      admission = audit.admit(req.method, req.params);
      if (!admission.ok) {
        this.#writeReply(errorReply(req.id, failure('auditUnavailable', { reason: admission.reason })));
        return;
      }
      verdict = { authenticated: false, caller: undefined };
    }
    const after: (() => void)[] = [];
    const out = this.#dispatcher.dispatch(req, this.#context(after), this.#dispatchOptions, verdict);
    if (!(out instanceof Promise)) {
      if (admission?.ok) this.#record(admission, req, wire, verdict!, out);
      this.#writeReply(out, after);
      return;
    }
    this.#inflight++;
    this.#syncInput();
    void out.then((reply) => {
      this.#inflight--;
      if (admission?.ok) this.#record(admission, req, wire, verdict!, reply);
      if (reply.error !== undefined && reply.withdrawn === true) {
        // Another daemon has the processes: close with this request unanswered, so the client asks the successor.
        this.destroy();
        return;
      }
      this.#writeReply(reply, after);
      this.#syncInput();
      this.#endIfDone();
    });
  }

  /** The request's audit record: made when its reply is, whether or not the connection is still there to take it. */
  #record(admission: Extract<Admission, { ok: true }>, req: DecodedRequest, wire: Wire, verdict: Verdict, reply: Reply): void {
    this.#audit!.record(admission, {
      wire,
      authenticated: verdict.authenticated,
      method: req.method,
      idJson: req.id.json,
      params: req.params,
      literals: req.literals,
      caller: verdict.caller ?? this.#caller,
      reply,
    });
  }

  /** The client half-closed: replies still in flight are delivered, then the connection closes. */
  inputEnded(): void {
    this.#inputEnded = true;
    this.#endIfDone();
  }

  /** The transport is gone: end every subscription this connection opened. */
  transportClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#stallTimer);
    this.#drainWaiters = [];
    for (const sub of [...this.#subscriptions]) sub.close();
    this.#hooks.closed?.(this);
  }

  /** Closes after flushing (graceful shutdown). */
  close(): void {
    if (!this.#closed) this.#out.end();
  }

  get subscriptionCount(): number {
    return this.#subscriptions.size;
  }

  #context(after: (() => void)[]): CallContext {
    return {
      label: this.label,
      inOrder: (fn) => this.#inOrder(fn),
      subscribe: (log, options) => this.#subscribe(log, options, after),
      observation: (log) => this.#observation(log),
      afterReply: (fn) => after.push(fn),
      identify: (params) => {
        const out = identify(params, this.#caller);
        if (out.ok) this.#caller = out.caller;
        return out;
      },
    };
  }

  #inOrder<T>(fn: () => T | Promise<T>): T | Promise<T> {
    const run = this.#order === undefined ? fn() : this.#order.then(fn);
    if (!(run instanceof Promise)) return run;
    const tail: Promise<unknown> = run.then(noop, noop);
    this.#order = tail;
    void tail.then(() => {
      if (this.#order === tail) this.#order = undefined;
    });
    return run;
  }

  #subscribe(log: FrameLog, options: Omit<SubscribeOptions, 'onClose'>, after: (() => void)[]): Subscription {
    // One observation per process per connection: observing again replaces the earlier one.
    if (options.role === 'observer') this.#observation(log)?.close();
    const sub = log.subscribe(this, { ...options, onClose: (s) => this.#subscriptions.delete(s) });
    if (!sub.closed) this.#subscriptions.add(sub);
    if (options.holdAbove !== Number.POSITIVE_INFINITY) after.push(() => sub.release());
    return sub;
  }

  #observation(log: FrameLog): Subscription | undefined {
    for (const sub of this.#subscriptions) if (sub.log === log && sub.role === 'observer') return sub;
    return undefined;
  }

  #writeReply(reply: Reply, after?: (() => void)[]): void {
    if (!this.#closed) this.#write(this.#encodeReply(reply));
    if (after) for (const fn of after) fn();
  }

  /**
   * A reply the codec cannot write (MessagePack cannot echo every id a decoder accepts) becomes an error reply, with
   * the id if that encodes and null if not; the connection and the replies behind it carry on.
   */
  #encodeReply(reply: Reply): string | Buffer {
    try {
      return this.#codec.reply(reply);
    } catch (err) {
      const error = failure('replyNotEncodable', { detail: err instanceof Error ? err.message : String(err) });
      this.#log.warn('Server', `connection ${this.label}: ${error.message}`);
      try {
        return this.#codec.reply(errorReply(reply.id, error));
      } catch {
        return this.#codec.reply(errorReply(NULL_ID, error));
      }
    }
  }

  #endIfDone(): void {
    if (this.#inputEnded && this.#inflight === 0 && !this.#closed) this.#out.end();
  }

  // ---- stream messages (FrameWriter) ----

  writeFrame(origin: FrameOrigin, frame: Frame): boolean {
    return this.#write(this.#codec.frame(origin, frame));
  }

  writeScreen(origin: FrameOrigin, frame: ScreenFrame): boolean {
    return this.#write(this.#codec.screen(origin, frame));
  }

  writeGap(origin: FrameOrigin, fromSeq: number, toSeq: number): boolean {
    return this.#write(this.#codec.gap(origin, fromSeq, toSeq));
  }

  once(_event: 'drain', listener: () => void): this {
    if (!this.#closed) this.#drainWaiters.push(listener);
    return this;
  }

  evict(reason: string): void {
    this.#log.info('Server', `closing connection ${this.label}: ${reason}`);
    this.#out.destroy();
  }

  // ---- flow control ----

  /** Writes and returns whether more may follow before 'drain'. */
  #write(data: string | Buffer): boolean {
    if (this.#closed) return false;
    this.#lastActivity = performance.now();
    this.#out.write(data, this.#flushed);
    const backlog = this.#out.backlog;
    if (!this.#congested && backlog >= this.#limits.highWaterBytes) {
      this.#congested = true;
      this.#stallTimer = setTimeout(() => this.#stalled(), this.#limits.stallTimeoutMs);
    }
    if (backlog >= this.#limits.inputPauseBytes) this.#syncInput();
    return !this.#congested;
  }

  #onFlushed(): void {
    if (this.#closed) return;
    if (this.#congested) {
      this.#stallTimer?.refresh(); // progress
      if (this.#out.backlog <= this.#limits.lowWaterBytes) {
        this.#congested = false;
        clearTimeout(this.#stallTimer);
        this.#emitDrain();
      }
    }
    if (this.#inputPaused) this.#syncInput();
  }

  /** Wakes the waiting subscriptions in order; one that congests the connection again leaves the rest waiting. */
  #emitDrain(): void {
    const waiting = this.#drainWaiters;
    this.#drainWaiters = [];
    for (let i = 0; i < waiting.length; i++) {
      if (this.#congested || this.#closed) {
        this.#drainWaiters.unshift(...waiting.slice(i));
        return;
      }
      waiting[i]!();
    }
  }

  #syncInput(): void {
    const pause =
      this.#inflight >= this.#limits.maxInflight || this.#out.backlog >= this.#limits.inputPauseBytes || this.#audit?.peerPending === true;
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
