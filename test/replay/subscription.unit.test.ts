/**
 * Subscriptions and the frame log (src/replay/subscription.ts) on their own: cursors over a real replay buffer,
 * written to a writer that accepts a set number of frames before asking to wait for 'drain'.
 */
import { describe, expect, it } from 'vitest';
import { ReplayBuffer } from '../../src/replay/buffer.js';
import { type Frame, FrameOrigin } from '../../src/replay/frame.js';
import { FrameLog, type FrameWriter } from '../../src/replay/subscription.js';

/** A writer with room for `room` frames before it asks to wait; `drain()` empties it. */
class TestWriter implements FrameWriter {
  closed = false;
  room: number;
  readonly seen: (number | string)[] = [];
  evicted: string | undefined;
  #pending = 0;
  #drain: (() => void)[] = [];

  constructor(room = Number.POSITIVE_INFINITY) {
    this.room = room;
  }

  writeFrame(_origin: FrameOrigin, frame: Frame): boolean {
    this.seen.push(frame.seq);
    return ++this.#pending < this.room;
  }

  writeGap(_origin: FrameOrigin, fromSeq: number, toSeq: number): boolean {
    this.seen.push(`gap ${fromSeq}-${toSeq}`);
    return ++this.#pending < this.room;
  }

  once(_event: 'drain', listener: () => void): this {
    this.#drain.push(listener);
    return this;
  }

  evict(reason: string): void {
    this.evicted = reason;
    this.closed = true;
  }

  drain(): void {
    this.#pending = 0;
    for (const fn of this.#drain.splice(0)) fn();
  }
}

const origin = new FrameOrigin('p');
/** A log whose frames are 10-byte reads, with a cap that holds `capFrames` of them. */
function log(capFrames = 1000): { log: FrameLog; holds: boolean[]; emit: (n?: number) => void } {
  const frameSize = origin.dataFrame(1, 'stdout', Buffer.alloc(10)).size;
  const holds: boolean[] = [];
  const l = new FrameLog(origin, new ReplayBuffer(frameSize * capFrames + 8), (h) => holds.push(h));
  let seq = 0;
  const emit = (n = 1) => {
    for (let i = 0; i < n; i++) l.append(origin.dataFrame(++seq, 'stdout', Buffer.alloc(10, seq)));
  };
  return { log: l, holds, emit };
}

describe('an owner', () => {
  it('gets every frame live, and holds the producer exactly while it waits for drain', () => {
    const { log: l, holds, emit } = log();
    const w = new TestWriter(3);
    l.subscribe(w, { role: 'owner', fromSeq: 0, holdAbove: Number.POSITIVE_INFINITY });
    emit(5);
    // Three written, the third one asked to wait: held, and the rest wait in the buffer.
    expect(w.seen).toEqual([1, 2, 3]);
    expect(holds).toEqual([true]);
    w.drain();
    // Caught up with room to spare: released.
    expect(w.seen).toEqual([1, 2, 3, 4, 5]);
    expect(holds).toEqual([true, false]);
    // Caught up but the last write asked to wait: held until the drain.
    emit(1);
    expect(holds).toEqual([true, false, true]);
    w.drain();
    expect(holds).toEqual([true, false, true, false]);
  });

  it('holds frames above holdAbove until released, and caughtUp resolves once the replay is written', async () => {
    const { log: l, emit } = log();
    emit(4);
    const w = new TestWriter();
    const sub = l.subscribe(w, { role: 'owner', fromSeq: 1, holdAbove: 3 });
    await sub.caughtUp();
    emit(2);
    expect(w.seen).toEqual([2, 3]);
    sub.release();
    expect(w.seen).toEqual([2, 3, 4, 5, 6]);
  });

  it('a new owner on another writer evicts the previous one; on the same writer it replaces it quietly', () => {
    const { log: l, emit } = log();
    const a = new TestWriter();
    const b = new TestWriter();
    l.subscribe(a, { role: 'owner', fromSeq: 0, holdAbove: Number.POSITIVE_INFINITY });
    emit(2);
    const again = l.subscribe(a, { role: 'owner', fromSeq: 2, holdAbove: Number.POSITIVE_INFINITY });
    expect(a.evicted).toBeUndefined();
    l.subscribe(b, { role: 'owner', fromSeq: 2, holdAbove: Number.POSITIVE_INFINITY });
    expect(a.evicted).toMatch(/reattached by another connection/);
    expect(again.closed).toBe(true);
    emit(1);
    expect(b.seen).toEqual([3]);
  });

  it('after the seal never holds, and skips evicted frames silently (the seq jump tells its client)', () => {
    const { log: l, holds, emit } = log(4);
    const w = new TestWriter(1);
    l.subscribe(w, { role: 'owner', fromSeq: 0, holdAbove: Number.POSITIVE_INFINITY });
    l.seal();
    emit(10);
    expect(holds.at(-1) ?? false).toBe(false);
    w.drain();
    expect(w.seen[0]).toBe(1);
    expect(w.seen.slice(1).every((s) => typeof s === 'number')).toBe(true);
    expect(w.seen[1]).toBeGreaterThan(2);
  });
});

describe('an observer', () => {
  it('never holds the producer, and names exactly the seqs it lost when it falls behind', () => {
    const { log: l, holds, emit } = log(5);
    const w = new TestWriter(2);
    l.subscribe(w, { role: 'observer', fromSeq: 0, holdAbove: Number.POSITIVE_INFINITY });
    emit(12);
    expect(holds).toEqual([]);
    expect(w.seen).toEqual([1, 2]);
    // Frames 8..12 are retained (cap 5): 3..7 are gone.
    expect(l.buffer.firstSeq).toBe(8);
    w.room = Number.POSITIVE_INFINITY;
    w.drain();
    expect(w.seen).toEqual([1, 2, 'gap 3-7', 8, 9, 10, 11, 12]);
  });

  it('from seq 0 after an eviction starts with the gap; coexists with an owner, who keeps its place', () => {
    const { log: l, emit } = log(3);
    const owner = new TestWriter();
    l.subscribe(owner, { role: 'owner', fromSeq: 0, holdAbove: Number.POSITIVE_INFINITY });
    emit(6);
    const o = new TestWriter();
    l.subscribe(o, { role: 'observer', fromSeq: 0, holdAbove: Number.POSITIVE_INFINITY });
    expect(o.seen).toEqual(['gap 1-3', 4, 5, 6]);
    expect(l.observerCount).toBe(1);
    expect(owner.evicted).toBeUndefined();
    emit(1);
    expect(owner.seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(o.seen.at(-1)).toBe(7);
  });

  it('ends with clear(), and close() is idempotent and calls onClose once', () => {
    const { log: l } = log();
    let closes = 0;
    const sub = l.subscribe(new TestWriter(), { role: 'observer', fromSeq: 0, holdAbove: Number.POSITIVE_INFINITY, onClose: () => closes++ });
    l.clear();
    sub.close();
    expect(sub.closed).toBe(true);
    expect(closes).toBe(1);
    expect(l.observerCount).toBe(0);
  });
});
