/**
 * The ring between the request side and the writer thread, both ends in one thread here (the recorder test runs
 * them across threads): every frame comes out once, in order, byte for byte, across many wraps; a full ring refuses
 * and takes again once drained; the smallest ring still takes the largest record; the shared counters read back.
 */
import { describe, expect, it } from 'vitest';
import { MAX_RECORD_BYTES } from '../../src/audit/record.js';
import { createRingMemory, MIN_RING_BYTES, RingConsumer, RingProducer, SharedStatsReader, SharedStatsWriter } from '../../src/audit/ring.js';
import { seeded } from '../helpers/random.js';

function drainAll(c: RingConsumer): string[] {
  const out: string[] = [];
  c.drain((data, start, end) => out.push(data.toString('utf8', start, end)));
  return out;
}

describe('the ring', () => {
  it('hands every frame over once, in order and intact, across many wraps', () => {
    const m = createRingMemory(MIN_RING_BYTES);
    const p = new RingProducer(m);
    const c = new RingConsumer(m);
    const next = seeded(42);
    const rnd = { int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) };
    const alphabet = ['a', 'é', '😀', '"', '\u0001', ',"k":1'];
    const sent: string[] = [];
    const got: string[] = [];
    let refusals = 0;
    for (let i = 0; i < 20_000; i++) {
      const len = rnd.int(0, 400);
      let text = `${i}:`;
      for (let k = 0; k < len; k++) text += alphabet[rnd.int(0, alphabet.length - 1)];
      while (!p.push(text)) {
        refusals++;
        got.push(...drainAll(c));
      }
      sent.push(text);
      if (rnd.int(0, 400) === 0) got.push(...drainAll(c));
    }
    got.push(...drainAll(c));
    expect(got.length).toBe(sent.length);
    expect(got).toEqual(sent);
    // 20,000 frames of up to ~1.6 KB went through 128 KiB: the ring was full many times, and wrapped many more.
    expect(refusals).toBeGreaterThan(10);
  });

  it('takes the largest record even when it is the smallest ring; refuses what it cannot ever hold', () => {
    const m = createRingMemory(MIN_RING_BYTES);
    const p = new RingProducer(m);
    const c = new RingConsumer(m);
    const largest = '\u00ff'.repeat(MAX_RECORD_BYTES);
    expect(p.maxTextChars).toBeGreaterThanOrEqual(MAX_RECORD_BYTES);
    for (let i = 0; i < 5; i++) {
      expect(p.push(largest)).toBe(true);
      expect(drainAll(c)).toEqual([largest]);
    }
    expect(p.push('x'.repeat(p.maxTextChars + 1))).toBe(false);
    expect(() => createRingMemory(MIN_RING_BYTES / 2)).toThrow(/at least 131072 bytes/);
    expect(() => createRingMemory(MIN_RING_BYTES + 4)).toThrow(/power of two/);
  });

  it('carries the writer thread’s counters and head to the request side, and what it wrote', () => {
    const m = createRingMemory(MIN_RING_BYTES);
    const w = new SharedStatsWriter(m);
    const r = new SharedStatsReader(m);
    expect(r.written).toBe(0);
    const head = { seq: 2 ** 40, hash: 'f'.repeat(64), log: '0123456789abcdef0123456789abcdef' };
    w.update({ records: 7, bytes: 3000, writes: 2, rotations: 1, writeErrors: 4, queueDepth: 5, failing: true, head }, 6);
    w.update({ records: 8, bytes: 3500, writes: 3, rotations: 1, writeErrors: 4, queueDepth: 0, failing: false, head }, 1);
    expect(r.read()).toEqual({ records: 8, bytes: 3500, writes: 3, rotations: 1, writeErrors: 4, queueDepth: 0, failing: false, head });
    expect(r.written).toBe(7);
  });
});
