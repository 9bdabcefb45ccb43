/**
 * Delivery: a reader of a process's output is a cursor over its replay buffer (src/replay/buffer.ts).
 *
 * Every frame enters the buffer first; a subscription holds the seq it has written up to and writes what lies beyond
 * it while its writer accepts more. Live delivery and replay are therefore one loop, no reader needs a queue of its
 * own, and nothing is written twice or skipped across a handover.
 *
 * A process has at most one owner and any number of observers:
 * - The owner's delivery is lossless. While it is behind (unwritten frames, or its writer said "wait for drain") the
 *   frame log asks its producer to hold the child (the child's pipes pause, so the child blocks on write like any
 *   piped program), so nothing is evicted that the owner has not been written. After the reap the producer can no
 *   longer be held (`seal`): the exit drain must not wait for a slow client, and frames the owner had not been
 *   written may be evicted; it then resumes at the oldest retained frame, and its client sees the seq jump.
 * - An observer never holds the child and never takes the process from its owner. When it falls behind the oldest
 *   retained frame it is written a gap notice naming exactly the seqs it will never see, and continues from the
 *   oldest retained frame. A slow observer is never dropped here; its connection drops it only if it stalls.
 *
 * A subscription opened by a request whose reply must precede later frames (spawn, reattach, observe) holds the
 * frames above `holdAbove` until `release()`; the connection releases it right after writing that reply.
 */
import type { ReplayBuffer } from './buffer.js';
import type { Frame, FrameOrigin, ScreenFrame } from './frame.js';

/** Where a subscription writes (a connection), with Node's backpressure convention. */
export interface FrameWriter {
  readonly closed: boolean;
  /** Writes one frame; false once the writer wants nothing more until it emits 'drain'. */
  writeFrame(origin: FrameOrigin, frame: Frame): boolean;
  /** Writes an observer's gap notice (seqs `fromSeq`..`toSeq` are gone); the same convention. */
  writeGap(origin: FrameOrigin, fromSeq: number, toSeq: number): boolean;
  /** Writes a terminal's screen as of `frame.seq`, in place of the frames up to it; the same convention. */
  writeScreen(origin: FrameOrigin, frame: ScreenFrame): boolean;
  once(event: 'drain', listener: () => void): unknown;
  /** Ends the writer's whole connection: the process it owned was reattached elsewhere (reference behaviour). */
  evict(reason: string): void;
}

export type Role = 'owner' | 'observer';

export interface SubscribeOptions {
  readonly role: Role;
  /** Frames with a seq above this are written (clamped to the newest frame). */
  readonly fromSeq: number;
  /** Frames above this seq wait for `release()`; `Infinity` for none. */
  readonly holdAbove: number;
  /** Called once when the subscription ends, whoever ends it. */
  readonly onClose?: (sub: Subscription) => void;
  /** Terminals: start with the screen as it is, when frames it stands for were evicted (else the frames). */
  readonly screen?: boolean;
}

/**
 * A terminal's screen, for readers whose frames were evicted: the screen as of a seq at or after the oldest retained
 * frame minus one, so the frames after it complete it. Undefined when nothing was ever evicted (the frames from seq 1
 * are all there), or when no clean boundary has been reached yet.
 */
export interface ScreenSource {
  snapshot(): Promise<ScreenFrame | undefined>;
  /** True while the screen model lags far behind: the producer is held, as for a lagging owner. */
  readonly congested: boolean;
}

export class Subscription {
  readonly log: FrameLog;
  readonly writer: FrameWriter;
  readonly role: Role;
  #cursor: number;
  #holdAbove: number;
  #waiting = false;
  #closed = false;
  /** A screen snapshot is being made: nothing is written until it is (terminals). */
  #snapshotting = false;
  #caughtUp: (() => void) | undefined;
  readonly #onClose: ((sub: Subscription) => void) | undefined;
  readonly #drained = () => {
    this.#waiting = false;
    this.pump();
  };

  constructor(log: FrameLog, writer: FrameWriter, options: SubscribeOptions) {
    this.log = log;
    this.writer = writer;
    this.role = options.role;
    this.#cursor = Math.min(options.fromSeq, log.buffer.lastSeq);
    this.#holdAbove = options.holdAbove;
    this.#onClose = options.onClose;
  }

  /** Seq of the last frame written. */
  get cursor(): number {
    return this.#cursor;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while frames wait for this subscription: unwritten ones, or a writer that asked to wait for drain. */
  get lagging(): boolean {
    return !this.#closed && (this.#waiting || this.#snapshotting || this.#cursor < this.log.buffer.lastSeq);
  }

  /**
   * Replaces the frames this reader can no longer be written (evicted) by the terminal's screen as of a later seq,
   * then carries on with the frames after it. Used for a terminal's reader that starts, or falls, behind the buffer.
   */
  resync(): void {
    const screen = this.log.screen;
    if (screen === undefined || this.#snapshotting || this.#closed) return;
    this.#snapshotting = true;
    screen.snapshot().then(
      (snap) => {
        this.#snapshotting = false;
        if (this.#closed) return;
        // No screen to give (no clean boundary yet): this once, the gap or the jump, as for pipes.
        if (snap === undefined) this.#skipScreen = true;
        if (snap !== undefined && snap.seq > this.#cursor) {
          // More may have been evicted while the snapshot was made: then it no longer joins up; make another.
          if (snap.seq < this.log.buffer.firstSeq - 1) return this.resync();
          this.#cursor = snap.seq;
          if (!this.writer.writeScreen(this.log.origin, snap) && !this.writer.closed) {
            this.#waiting = true;
            this.writer.once('drain', this.#drained);
            return;
          }
        }
        this.pump();
      },
      () => {
        // A model that failed (disposed with its process): the frames, and a gap if need be, as for pipes.
        this.#snapshotting = false;
        this.#noScreen = true;
        this.pump();
      },
    );
  }
  /** Set once a snapshot failed: fall back to gaps for good. */
  #noScreen = false;
  /** The next eviction met is reported as for pipes (the last snapshot had nothing to give). */
  #skipScreen = false;

  /** Writes what the writer has not been written, until it asks to wait, is caught up, or reaches the hold. */
  pump(): void {
    if (this.#closed || this.#waiting || this.#snapshotting) return;
    if (this.writer.closed) {
      this.close();
      return;
    }
    const { buffer, origin } = this.log;
    while (this.#cursor < Math.min(buffer.lastSeq, this.#holdAbove)) {
      const next = this.#cursor + 1;
      const first = buffer.firstSeq;
      let accepted: boolean;
      if (next < first) {
        // Evicted before it could be written. A terminal's reader gets the screen instead (it makes the frames
        // after it render right); otherwise the owner's client sees the seq jump (the reference has no notice) and
        // an observer is told exactly what it lost.
        if (this.log.screen !== undefined && !this.#noScreen && !this.#skipScreen) {
          this.resync();
          if (this.#snapshotting) break;
        }
        this.#skipScreen = false;
        this.#cursor = first - 1;
        if (this.role === 'owner') continue;
        accepted = this.writer.writeGap(origin, next, first - 1);
      } else {
        accepted = this.writer.writeFrame(origin, buffer.get(next)!);
        this.#cursor = next;
      }
      if (this.writer.closed) break;
      if (!accepted) {
        this.#waiting = true;
        this.writer.once('drain', this.#drained);
        break;
      }
    }
    if (this.#caughtUp && !this.#pendingReplay()) {
      const done = this.#caughtUp;
      this.#caughtUp = undefined;
      done();
    }
    if (this.role === 'owner') this.log.flowChanged();
  }

  /** Lifts the hold: the reply has gone out, later frames may follow. */
  release(): void {
    if (this.#holdAbove === Number.POSITIVE_INFINITY) return;
    this.#holdAbove = Number.POSITIVE_INFINITY;
    this.pump();
  }

  /** Resolves once every frame up to the hold (as of now) has been written, or the subscription ended. */
  caughtUp(): Promise<void> {
    if (this.#closed || !this.#pendingReplay()) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#caughtUp;
      this.#caughtUp = () => {
        previous?.();
        resolve();
      };
    });
  }

  /** Ends the subscription; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.log.detach(this);
    const done = this.#caughtUp;
    this.#caughtUp = undefined;
    done?.();
    this.#onClose?.(this);
  }

  #pendingReplay(): boolean {
    return this.#snapshotting || this.#cursor < Math.min(this.#holdAbove, this.log.buffer.lastSeq);
  }
}

/** What a frame log asks of whatever produces its frames (the child's pipes). */
export type HoldListener = (hold: boolean) => void;

/**
 * One process's frames: its replay buffer and the subscriptions reading it, and the flow control that follows from
 * them (hold the producer while the owner lags, until sealed).
 */
export class FrameLog {
  readonly origin: FrameOrigin;
  readonly buffer: ReplayBuffer;
  readonly #onHold: HoldListener;
  /** A terminal's screen (see ScreenSource); undefined for piped processes. */
  screen: ScreenSource | undefined;
  #owner: Subscription | undefined;
  readonly #observers = new Set<Subscription>();
  #sealed = false;
  #held = false;

  constructor(origin: FrameOrigin, buffer: ReplayBuffer, onHold: HoldListener) {
    this.origin = origin;
    this.buffer = buffer;
    this.#onHold = onHold;
  }

  get owner(): Subscription | undefined {
    return this.#owner;
  }

  get observerCount(): number {
    return this.#observers.size;
  }

  /** True while the producer is asked to hold. */
  get held(): boolean {
    return this.#held;
  }

  /** True once the producer can no longer be held (the child was reaped). */
  get sealed(): boolean {
    return this.#sealed;
  }

  /** Appends the next frame and writes it to every subscription that can take it. Returns the bytes evicted. */
  append(frame: Frame): number {
    const evicted = this.buffer.append(frame);
    this.#owner?.pump();
    for (const sub of this.#observers) sub.pump();
    this.flowChanged();
    return evicted;
  }

  /**
   * Opens a subscription. A new owner replaces the previous one; when that one wrote to another connection, that
   * whole connection is closed (reference behaviour since 90fca6e6), which cuts its stream at a seq it was written.
   */
  subscribe(writer: FrameWriter, options: SubscribeOptions): Subscription {
    const sub = new Subscription(this, writer, options);
    if (options.role === 'owner') {
      const previous = this.#owner;
      this.#owner = sub;
      if (previous) {
        previous.close();
        if (previous.writer !== writer && !previous.writer.closed) {
          previous.writer.evict(`process ${this.origin.processId} was reattached by another connection`);
        }
      }
    } else {
      this.#observers.add(sub);
    }
    if (options.screen && this.screen !== undefined) sub.resync();
    sub.pump();
    if (options.role !== 'owner') this.flowChanged();
    return sub;
  }

  /** The producer can no longer be held (the child was reaped): the exit drain never waits on a reader. */
  seal(): void {
    this.#sealed = true;
    this.flowChanged();
  }

  /** Ends every subscription and drops every frame: the process is being forgotten. */
  clear(): void {
    this.#owner?.close();
    for (const sub of [...this.#observers]) sub.close();
    this.buffer.clear();
  }

  /** Called by a subscription that ends. */
  detach(sub: Subscription): void {
    if (this.#owner === sub) this.#owner = undefined;
    else this.#observers.delete(sub);
    this.flowChanged();
  }

  /** Re-evaluates the hold after anything that may change it. */
  flowChanged(): void {
    const hold = !this.#sealed && (this.#owner?.lagging === true || this.screen?.congested === true);
    if (hold === this.#held) return;
    this.#held = hold;
    this.#onHold(hold);
  }
}
