/**
 * The per-process replay buffer: every frame a process emitted, oldest first, capped by the frames' NDJSON size.
 *
 * Seqs in the buffer are consecutive (every frame enters it, eviction only takes from the front), so a lookup by
 * seq is an index computation, and a reattach replays from any seq in O(1) to find its start.
 *
 * A data frame's bytes are copied into the buffer's own ring as it enters (see ring.ts for why), so what the
 * buffer holds is what the cap allows, not whatever the garbage collector has yet to free.
 */
import { type DataFrame, type Frame, MAX_FRAME_DATA } from './frame.js';
import { ByteRing } from './ring.js';

/** Per-process cap, counted as serialized NDJSON bytes including the newline (PROTOCOL.md). */
export const REPLAY_CAP_BYTES = 16 * 1024 * 1024;

/** Told of every change of a buffer's byte count (the global budget, src/replay/budget.ts). */
export type ByteAccount = (delta: number) => void;

function hasBytes(frame: Frame): frame is DataFrame {
  return frame.stream === 'stdout' || frame.stream === 'stderr';
}

export class ReplayBuffer {
  readonly capBytes: number;
  readonly #account: ByteAccount | undefined;
  #onEvict: ((frame: Frame) => void) | undefined;
  #frames: Frame[] = [];
  readonly #bytesOf: ByteRing;
  #head = 0;
  #bytes = 0;
  #evictedFrames = 0;
  #evictedBytes = 0;

  constructor(capBytes: number = REPLAY_CAP_BYTES, account?: ByteAccount) {
    this.capBytes = capBytes;
    this.#account = account;
    // A data frame's line is at least 4/3 of its bytes (base64), so the bytes retained stay under 3/4 of the cap;
    // room for one more frame arriving, and one wasted where the ring wraps.
    this.#bytesOf = new ByteRing(Math.ceil((capBytes * 3) / 4) + 2 * MAX_FRAME_DATA);
  }

  /** Seq of the oldest retained frame; 0 when nothing was ever emitted. */
  get firstSeq(): number {
    return this.#head < this.#frames.length ? this.#frames[this.#head]!.seq : 0;
  }

  /** Seq of the newest retained frame; 0 when nothing was ever emitted. */
  get lastSeq(): number {
    return this.#head < this.#frames.length ? this.#frames[this.#frames.length - 1]!.seq : 0;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get length(): number {
    return this.#frames.length - this.#head;
  }

  get evictedFrames(): number {
    return this.#evictedFrames;
  }

  get evictedBytes(): number {
    return this.#evictedBytes;
  }

  /**
   * Appends the next frame (its seq must follow the newest), then drops whole frames from the front while the total
   * is over the cap, always keeping the newest even if it alone is larger. Returns the bytes evicted.
   *
   * A data frame is stored as a copy whose `data` lives in the buffer's slabs: callers read frames back with get().
   */
  append(frame: Frame): number {
    const last = this.lastSeq;
    if (last !== 0 && frame.seq !== last + 1) throw new Error(`replay: seq ${frame.seq} does not follow ${last}`);
    this.#frames.push(hasBytes(frame) ? { ...frame, data: this.#bytesOf.store(frame.data, this.#moved) } : frame);
    this.#bytes += frame.size;
    this.#account?.(frame.size);
    return this.#evictWhile(() => this.#bytes > this.capBytes, Number.POSITIVE_INFINITY);
  }

  /**
   * Evicts the oldest frames until `bytes` bytes are freed, never a frame above `keepAbove` (one a reader still
   * needs) and never the newest. Returns the bytes freed. For the global budget.
   */
  trim(bytes: number, keepAbove = Number.POSITIVE_INFINITY): number {
    const target = this.#bytes - bytes;
    return this.#evictWhile(() => this.#bytes > target, keepAbove);
  }

  /** Gives back ring memory the frames no longer need (an exited process keeps exactly what it holds). */
  compact(): void {
    this.#bytesOf.compact(this.#moved);
  }

  /** Bytes allocated for the frames' data. */
  get allocatedBytes(): number {
    return this.#bytesOf.capacity;
  }

  #evictWhile(over: () => boolean, keepAbove: number): number {
    let evicted = 0;
    while (over() && this.length > 1 && this.#frames[this.#head]!.seq <= keepAbove) {
      const old = this.#frames[this.#head]!;
      // Told before the ring may reuse its bytes (a terminal's screen model reads them).
      this.#onEvict?.(old);
      this.#frames[this.#head++] = undefined as unknown as Frame; // let the bytes go now, not at compaction
      this.#bytes -= old.size;
      if (hasBytes(old)) this.#bytesOf.release();
      evicted += old.size;
      this.#evictedFrames++;
    }
    this.#evictedBytes += evicted;
    if (evicted > 0) this.#account?.(-evicted);
    // Compact once the dead prefix dominates, so the array never grows with total output.
    if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
    return evicted;
  }

  /** Hears every frame as it is evicted, in seq order, while its bytes are still valid (a terminal's screen model). */
  onEvict(listener: (frame: Frame) => void): void {
    this.#onEvict = listener;
  }

  /** The retained frame with this seq, if any. */
  get(seq: number): Frame | undefined {
    const first = this.firstSeq;
    if (first === 0 || seq < first || seq > this.lastSeq) return undefined;
    return this.#frames[this.#head + (seq - first)];
  }

  /** The ring grew: the live data frames, oldest first, now read from new views. */
  readonly #moved = (index: number, view: Buffer): void => {
    // The ring's views are the data frames' bytes, oldest first; resize and exit frames have none. Views move in
    // order from index 0, so the walk resumes where the previous view was found.
    if (index === 0) this.#movedAt = this.#head;
    while (!hasBytes(this.#frames[this.#movedAt]!)) this.#movedAt++;
    const at = this.#movedAt++;
    this.#frames[at] = { ...(this.#frames[at] as DataFrame), data: view };
  };
  #movedAt = 0;

  /** Drops every frame, for a process that is being forgotten. */
  clear(): void {
    this.#bytesOf.clear();
    this.#frames = [];
    this.#head = 0;
    if (this.#bytes > 0) this.#account?.(-this.#bytes);
    this.#bytes = 0;
  }
}
