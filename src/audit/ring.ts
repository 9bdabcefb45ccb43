/**
 * The path from the request side to the audit's writer thread: a ring of record bytes in shared memory, and a few
 * shared counters. One thread writes (RingProducer, on the event loop that serves requests), one reads
 * (RingConsumer, in the writer thread); neither ever waits for the other.
 *
 * Why not postMessage: it costs about 26 µs a message on this machine for a turn's worth of records (30 KB), and a
 * turn of a busy daemon often holds only a few records: several µs per request, more than all the rest of the
 * audit's work on the request path. Here a record costs one UTF-8 write into the ring and one atomic store; the
 * writer thread's acknowledgements are counters the request side reads when it needs them.
 *
 * Waking: while records come, the writer thread takes them every GROUP_COMMIT_MS (one write per interval, however
 * many records: a write per turn of a busy daemon cost more than the records themselves); only when it finds the
 * ring empty does it sleep on SIGNAL, after setting SLEEPING, and the producer wakes it (`Atomics.notify`, a system
 * call) only then. The check is race-free: the consumer sets SLEEPING, then looks at HEAD once more before it waits;
 * the producer stores HEAD, then looks at SLEEPING (all sequentially consistent), so one of them sees the other.
 *
 * Frames: `[u32 payload length][payload]`, padded to 4 bytes; the payload is a record's frame text in UTF-8 (its
 * body but `prev` and `seq`, in three pieces joined by NUL bytes: see record.ts, frameText). A frame that would not
 * fit before the end of the ring is preceded by WRAP and starts again at 0.
 *
 * Byte positions are counted modulo 2^32 (`>>> 0`); RING_BYTES is a power of two, so a position's place in the ring
 * is `position & (size - 1)`. The producer publishes a frame by storing HEAD after writing it (Atomics.store is
 * sequentially consistent, so the consumer that loads HEAD sees the bytes); the consumer frees space by storing
 * TAIL once it has copied what it read.
 */

/** The ring's default size: about 9,000 ping records, or 256 records of the largest size. */
export const DEFAULT_RING_BYTES = 4 * 1024 * 1024;

/**
 * While records keep coming, the writer thread takes them this often: at most 1,000 writes a second whatever the
 * request rate, and a record reaches the file at most about this long after it was made (plus the write itself).
 */
export const GROUP_COMMIT_MS = 5;

export const FRAME_HEADER_BYTES = 4;
const WRAP = 0xffffffff;

/** Slots of the shared Int32 control array. */
const Slot = {
  /** Bytes produced (position of the next frame), modulo 2^32. */
  Head: 0,
  /** Bytes consumed. */
  Tail: 1,
  /** Bumped by the producer when it wants the consumer awake; the consumer waits on it. */
  Signal: 2,
  /** Records appended by the request side that are on disk (a running count modulo 2^32). */
  Written: 3,
  /** Seqlock of the stats block: odd while the writer thread updates it. */
  StatsVersion: 4,
  /** 1 while the consumer waits on SIGNAL for the next frame. */
  Sleeping: 5,
  Count: 6,
} as const;

/** Float64 fields of the stats block. */
const Stat = {
  Records: 0,
  Bytes: 1,
  Writes: 2,
  Rotations: 3,
  WriteErrors: 4,
  HeadSeq: 5,
  /** Records queued in the writer thread and not yet written. */
  QueueDepth: 6,
  /** 1 while writes fail (the reason comes by message). */
  Failing: 7,
  Count: 8,
} as const;

/** The shared memory of one audit log: what the request side creates and hands to the writer thread. */
export interface RingMemory {
  readonly control: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
  /** Stat.Count Float64 values, then the head hash (64 ASCII bytes) and the log id (32 ASCII bytes). */
  readonly stats: SharedArrayBuffer;
}

const STATS_TEXT_OFFSET = Stat.Count * 8;

/** Node's own UTF-8 writer, which skips `Buffer.write`'s argument handling (present since Node 8; else `write`). */
const utf8Write = (Buffer.prototype as Buffer & { utf8Write?(s: string, offset: number, length: number): number }).utf8Write;

/**
 * The smallest ring: a frame may take half of it, and the largest record's frame (MAX_RECORD_BYTES of text, three
 * UTF-8 bytes per UTF-16 unit at most, and its header) must fit, or it would wait for room forever.
 */
export const MIN_RING_BYTES = 128 * 1024;

export function createRingMemory(ringBytes = DEFAULT_RING_BYTES): RingMemory {
  if (ringBytes < MIN_RING_BYTES || (ringBytes & (ringBytes - 1)) !== 0) {
    throw new Error(`the audit ring must be a power of two of at least ${MIN_RING_BYTES} bytes (got ${ringBytes})`);
  }
  return {
    control: new SharedArrayBuffer(Slot.Count * 4),
    data: new SharedArrayBuffer(ringBytes),
    stats: new SharedArrayBuffer(STATS_TEXT_OFFSET + 64 + 32),
  };
}

export class RingProducer {
  readonly #ctrl: Int32Array;
  readonly #data: Buffer;
  readonly #mask: number;
  readonly #size: number;
  #head = 0;

  constructor(m: RingMemory) {
    this.#ctrl = new Int32Array(m.control);
    this.#data = Buffer.from(m.data);
    this.#size = m.data.byteLength;
    this.#mask = this.#size - 1;
  }

  /** The most bytes of text one frame may carry: the ring must hold two of them. */
  get maxTextChars(): number {
    return Math.floor((this.#size / 2 - FRAME_HEADER_BYTES) / 3);
  }

  /**
   * Writes a record's frame and makes it visible to the consumer; false (nothing written) when the ring lacks the
   * room, or `text` is longer than maxTextChars.
   */
  push(text: string): boolean {
    const room = FRAME_HEADER_BYTES + text.length * 3;
    const pos = this.#reserve(room);
    if (pos < 0) return false;
    const d = this.#data;
    const n =
      utf8Write !== undefined
        ? utf8Write.call(d, text, pos + FRAME_HEADER_BYTES, text.length * 3)
        : d.write(text, pos + FRAME_HEADER_BYTES, text.length * 3, 'utf8');
    d.writeUInt32LE(n, pos);
    this.#advance(n);
    this.#publish();
    return true;
  }

  /** Makes the frames written so far visible, and wakes the consumer if it sleeps. */
  #publish(): void {
    const c = this.#ctrl;
    Atomics.store(c, Slot.Head, this.#head | 0);
    if (Atomics.load(c, Slot.Sleeping) === 1) {
      Atomics.store(c, Slot.Sleeping, 0);
      Atomics.add(c, Slot.Signal, 1);
      Atomics.notify(c, Slot.Signal);
    }
  }

  /** Where a frame of at most `room` bytes goes (wrapping first if it must), or -1 when the ring is full. */
  #reserve(room: number): number {
    if (room > this.#size / 2) return -1;
    const tail = Atomics.load(this.#ctrl, Slot.Tail) >>> 0;
    const used = (this.#head - tail) >>> 0;
    const pos = this.#head & this.#mask;
    const atEnd = this.#size - pos;
    const need = room + 4 <= atEnd ? room : atEnd + room;
    if (used + need + 4 > this.#size) return -1;
    if (room + 4 > atEnd) {
      this.#data.writeUInt32LE(WRAP, pos);
      this.#head = (this.#head + atEnd) >>> 0;
      return 0;
    }
    return pos;
  }

  #advance(payload: number): void {
    this.#head = (this.#head + ((FRAME_HEADER_BYTES + payload + 3) & ~3)) >>> 0;
  }
}

export class RingConsumer {
  readonly #ctrl: Int32Array;
  readonly #data: Buffer;
  readonly #mask: number;
  readonly #size: number;
  #tail = 0;

  constructor(m: RingMemory) {
    this.#ctrl = new Int32Array(m.control);
    this.#data = Buffer.from(m.data);
    this.#size = m.data.byteLength;
    this.#mask = this.#size - 1;
  }

  /** Wakes a `sleep()` of this thread (closing). */
  wake(): void {
    Atomics.add(this.#ctrl, Slot.Signal, 1);
    Atomics.notify(this.#ctrl, Slot.Signal);
  }

  /**
   * Waits for the next frame: `onFrame` gets every frame published meanwhile (drain's contract), and the promise
   * resolves once at least one came, or `wake()` was called.
   */
  async sleep(onFrame: Parameters<RingConsumer['drain']>[0]): Promise<void> {
    const c = this.#ctrl;
    const seen = Atomics.load(c, Slot.Signal);
    Atomics.store(c, Slot.Sleeping, 1);
    // A frame published before the producer could see SLEEPING: taken now, no wait.
    if (this.drain(onFrame) > 0) {
      Atomics.store(c, Slot.Sleeping, 0);
      return;
    }
    const w = Atomics.waitAsync(c, Slot.Signal, seen);
    if (w.async) await w.value;
    Atomics.store(c, Slot.Sleeping, 0);
  }

  /**
   * Reads every published frame, in order. Its payload is `data[start, end)` of the shared ring, valid only during
   * the call: what the callback keeps, it copies. Returns the number of frames read.
   */
  drain(onFrame: (data: Buffer, start: number, end: number) => void): number {
    const head = Atomics.load(this.#ctrl, Slot.Head) >>> 0;
    const d = this.#data;
    let tail = this.#tail;
    let frames = 0;
    while (tail !== head) {
      const pos = tail & this.#mask;
      const len = d.readUInt32LE(pos);
      if (len === WRAP) {
        tail = (tail + this.#size - pos) >>> 0;
        continue;
      }
      onFrame(d, pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + len);
      frames++;
      tail = (tail + ((FRAME_HEADER_BYTES + len + 3) & ~3)) >>> 0;
    }
    this.#tail = tail;
    Atomics.store(this.#ctrl, Slot.Tail, tail | 0);
    return frames;
  }
}

/** The writer thread's side of the shared counters. */
export class SharedStatsWriter {
  readonly #ctrl: Int32Array;
  readonly #f: Float64Array;
  readonly #text: Buffer;

  constructor(m: RingMemory) {
    this.#ctrl = new Int32Array(m.control);
    this.#f = new Float64Array(m.stats, 0, Stat.Count);
    this.#text = Buffer.from(m.stats, STATS_TEXT_OFFSET, 96);
  }

  /** `written`: records of the request side newly on disk. */
  update(
    s: {
      records: number;
      bytes: number;
      writes: number;
      rotations: number;
      writeErrors: number;
      queueDepth: number;
      failing: boolean;
      head: { seq: number; hash: string; log: string };
    },
    written: number,
  ): void {
    Atomics.add(this.#ctrl, Slot.StatsVersion, 1);
    const f = this.#f;
    f[Stat.Records] = s.records;
    f[Stat.Bytes] = s.bytes;
    f[Stat.Writes] = s.writes;
    f[Stat.Rotations] = s.rotations;
    f[Stat.WriteErrors] = s.writeErrors;
    f[Stat.HeadSeq] = s.head.seq;
    f[Stat.QueueDepth] = s.queueDepth;
    f[Stat.Failing] = s.failing ? 1 : 0;
    this.#text.write(s.head.hash, 0, 64, 'latin1');
    this.#text.write(s.head.log, 64, 32, 'latin1');
    Atomics.add(this.#ctrl, Slot.StatsVersion, 1);
    if (written > 0) Atomics.add(this.#ctrl, Slot.Written, written);
  }
}

export interface SharedStats {
  readonly records: number;
  readonly bytes: number;
  readonly writes: number;
  readonly rotations: number;
  readonly writeErrors: number;
  readonly queueDepth: number;
  readonly failing: boolean;
  readonly head: { readonly seq: number; readonly hash: string; readonly log: string };
}

/** The request side's view of the shared counters. */
export class SharedStatsReader {
  readonly #ctrl: Int32Array;
  readonly #f: Float64Array;
  readonly #text: Buffer;

  constructor(m: RingMemory) {
    this.#ctrl = new Int32Array(m.control);
    this.#f = new Float64Array(m.stats, 0, Stat.Count);
    this.#text = Buffer.from(m.stats, STATS_TEXT_OFFSET, 96);
  }

  /** Records of the request side on disk so far, modulo 2^32. */
  get written(): number {
    return Atomics.load(this.#ctrl, Slot.Written) >>> 0;
  }

  /** A consistent snapshot (the seqlock is retried while the writer thread is mid-update). */
  read(): SharedStats {
    for (;;) {
      const v1 = Atomics.load(this.#ctrl, Slot.StatsVersion);
      if ((v1 & 1) === 0) {
        const f = this.#f;
        const out: SharedStats = {
          records: f[Stat.Records]!,
          bytes: f[Stat.Bytes]!,
          writes: f[Stat.Writes]!,
          rotations: f[Stat.Rotations]!,
          writeErrors: f[Stat.WriteErrors]!,
          queueDepth: f[Stat.QueueDepth]!,
          failing: f[Stat.Failing] === 1,
          head: { seq: f[Stat.HeadSeq]!, hash: this.#text.toString('latin1', 0, 64), log: this.#text.toString('latin1', 64, 96) },
        };
        if (Atomics.load(this.#ctrl, Slot.StatsVersion) === v1) return out;
      }
    }
  }
}
