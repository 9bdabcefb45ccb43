import { describe, expect, it } from 'vitest';
import { ByteRing } from '../../src/replay/ring.js';

/** A reference model: the views a ByteRing hands out must always read back what was stored, oldest first. */
function check(live: { view: Buffer; bytes: Buffer }[]): void {
  for (const { view, bytes } of live) expect(view.equals(bytes)).toBe(true);
}

describe('ByteRing', () => {
  it('stores copies: the caller may reuse its buffer at once', () => {
    const ring = new ByteRing();
    const src = Buffer.from('hello');
    const view = ring.store(src, () => {});
    src.fill(0);
    expect(view.toString()).toBe('hello');
  });

  it('starts small and grows by moving live views, oldest first', () => {
    const ring = new ByteRing();
    const live: { view: Buffer; bytes: Buffer }[] = [];
    for (let i = 0; i < 20; i++) {
      const bytes = Buffer.alloc(1000, i);
      const view = ring.store(bytes, (index, moved) => {
        live[index]!.view = moved;
      });
      live.push({ view, bytes });
      check(live);
    }
    expect(ring.capacity).toBe(32 * 1024);
  });

  it('reuses released space, wrapping to the front, without touching live views', () => {
    const ring = new ByteRing(10_000);
    const live: { view: Buffer; bytes: Buffer }[] = [];
    let seed = 1;
    for (let i = 0; i < 1500; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const bytes = Buffer.alloc(1 + (seed % 700), i & 0xff);
      const view = ring.store(bytes, (index, moved) => {
        live[index]!.view = moved;
      });
      live.push({ view, bytes });
      // Keep at most ~6,000 bytes live, as a capped replay buffer does.
      let total = live.reduce((n, l) => n + l.bytes.length, 0);
      while (total > 6000) {
        total -= live.shift()!.bytes.length;
        ring.release();
      }
      check(live);
    }
    expect(ring.capacity).toBeLessThanOrEqual(10_000);
  });

  it('takes zero-length views and releases them in order', () => {
    const ring = new ByteRing();
    const a = ring.store(Buffer.from('ab'), () => {});
    const empty = ring.store(Buffer.alloc(0), () => {});
    const b = ring.store(Buffer.from('cd'), () => {});
    expect([a.toString(), empty.length, b.toString()]).toEqual(['ab', 0, 'cd']);
    ring.release();
    ring.release();
    expect(b.toString()).toBe('cd');
  });

  it('holds a view larger than its preferred size', () => {
    const ring = new ByteRing(100);
    const big = Buffer.alloc(5000, 7);
    const view = ring.store(big, () => {});
    expect(view.equals(big)).toBe(true);
    expect(ring.capacity).toBeGreaterThanOrEqual(5000);
  });

  it('starts over empty after clear()', () => {
    const ring = new ByteRing();
    ring.store(Buffer.alloc(10_000), () => {});
    ring.clear();
    expect(ring.capacity).toBe(0);
    expect(ring.store(Buffer.from('x'), () => {}).toString()).toBe('x');
  });
});
