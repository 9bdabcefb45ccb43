/**
 * Byte storage for the data frames of one replay buffer: a ring the buffer owns. A frame's bytes are copied in as
 * it enters the buffer and their space is reused once it has been evicted.
 *
 * Why copy: each pipe read arrives in a fresh ArrayBuffer that only V8's garbage collector frees. Held for the tens
 * of milliseconds a frame spends in a full buffer, those reads outlive young-generation collections, are promoted,
 * and are then freed only by a full collection, which V8 starts once tens of megabytes of external memory have
 * piled up: a child writing 2 GiB with no client attached grew the daemon by 80+ MiB for a 16 MiB cap
 * (bench/RESULTS.md, figure 8). Copied out, a read dies young, and retained bytes sit in one allocation per process
 * that is recycled rather than collected. The copy is a memcpy per read, small beside base64-encoding the frame.
 *
 * A stored view stays valid while its frame is in the buffer. Once released its bytes may be overwritten, so
 * whoever takes a frame's data must use it at once (every encoder copies it into its output synchronously).
 */

/** The first ring of a buffer: a process that prints a few lines does not reserve more. */
const FIRST_RING_BYTES = 4 * 1024;

export class ByteRing {
  /** The size growth stops doubling at: enough for everything the owner can retain at once, plus a wrap's waste. */
  readonly #roomy: number;
  #ring: Buffer = Buffer.alloc(0);
  /** Offsets and lengths of the live views, oldest first, as a queue from `#first`. */
  #starts: number[] = [];
  #lengths: number[] = [];
  #first = 0;
  /** Where the next view goes. */
  #tail = 0;

  constructor(roomy: number = Number.POSITIVE_INFINITY) {
    this.#roomy = roomy;
  }

  /** Bytes allocated for the ring. */
  get capacity(): number {
    return this.#ring.length;
  }

  get #live(): number {
    return this.#starts.length - this.#first;
  }

  /**
   * Copies `data` in and returns the stored view. `moved` is called, before it returns, with the new view of every
   * live one when the ring had to grow (the old ring is left to the collector with whatever still refers to it).
   */
  store(data: Buffer, moved: (index: number, view: Buffer) => void): Buffer {
    let at = this.#place(data.length);
    if (at === undefined) {
      this.#grow(data.length, moved);
      at = this.#place(data.length)!;
    }
    data.copy(this.#ring, at);
    this.#starts.push(at);
    this.#lengths.push(data.length);
    this.#tail = at + data.length;
    return this.#ring.subarray(at, at + data.length);
  }

  /** The oldest stored view is no longer needed (views are released in the order they were stored). */
  release(): void {
    if (this.#live === 0) return;
    this.#first++;
    if (this.#live === 0) {
      this.#starts = [];
      this.#lengths = [];
      this.#first = 0;
      this.#tail = 0;
    } else if (this.#first > 256 && this.#first * 2 > this.#starts.length) {
      this.#starts = this.#starts.slice(this.#first);
      this.#lengths = this.#lengths.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Moves the live views into a ring of exactly their size, or frees the ring when none are live. */
  compact(moved: (index: number, view: Buffer) => void): void {
    let live = 0;
    for (let i = this.#first; i < this.#starts.length; i++) live += this.#lengths[i]!;
    if (live === this.#ring.length) return;
    if (this.#live === 0) {
      this.clear();
      return;
    }
    this.#relocate(live, moved);
  }

  clear(): void {
    this.#ring = Buffer.alloc(0);
    this.#starts = [];
    this.#lengths = [];
    this.#first = 0;
    this.#tail = 0;
  }

  /** Where `n` bytes fit without touching a live view: after the newest, or wrapped to the front. */
  #place(n: number): number | undefined {
    if (this.#live === 0) return n <= this.#ring.length ? 0 : undefined;
    if (n === 0) return this.#tail;
    const head = this.#starts[this.#first]!;
    if (head <= this.#starts[this.#starts.length - 1]!) {
      // Not wrapped: live bytes run from head to tail; free space lies after tail, then before head.
      if (this.#tail + n <= this.#ring.length) return this.#tail;
      return n <= head ? 0 : undefined;
    }
    // Wrapped: live bytes run from head to where the ring wrapped and from 0 to tail; free space lies between.
    return this.#tail + n <= head ? this.#tail : undefined;
  }

  /** Moves the live views into a ring at least twice as large, oldest first from offset 0. */
  #grow(need: number, moved: (index: number, view: Buffer) => void): void {
    let live = 0;
    for (let i = this.#first; i < this.#starts.length; i++) live += this.#lengths[i]!;
    let size = Math.max(FIRST_RING_BYTES, this.#ring.length * 2);
    while (size < live + need) size *= 2;
    this.#relocate(Math.max(Math.min(size, this.#roomy), live + need), moved);
  }

  /** Copies the live views, oldest first, to the start of a new ring of `size` bytes. */
  #relocate(size: number, moved: (index: number, view: Buffer) => void): void {
    const ring = Buffer.allocUnsafeSlow(size);
    const starts: number[] = [];
    const lengths: number[] = [];
    let at = 0;
    for (let i = this.#first; i < this.#starts.length; i++) {
      const start = this.#starts[i]!;
      const length = this.#lengths[i]!;
      this.#ring.copy(ring, at, start, start + length);
      moved(i - this.#first, ring.subarray(at, at + length));
      starts.push(at);
      lengths.push(length);
      at += length;
    }
    this.#ring = ring;
    this.#starts = starts;
    this.#lengths = lengths;
    this.#first = 0;
    this.#tail = at;
  }
}
