/**
 * The global replay budget (src/replay/budget.ts) over real replay buffers: exited processes lose their output
 * first, oldest exit first; then the largest live buffers their oldest frames, never what the owner still needs.
 */
import { describe, expect, it } from 'vitest';
import { type BudgetMember, ReplayBudget } from '../../src/replay/budget.js';
import { ReplayBuffer } from '../../src/replay/buffer.js';
import { FrameOrigin } from '../../src/replay/frame.js';

const origin = new FrameOrigin('p');
const FRAME = origin.dataFrame(1, 'stdout', Buffer.alloc(1000)).size;

interface Proc extends BudgetMember {
  live: boolean;
  exitedAt: number;
  keepAbove: number;
  seq: number;
}

function setup(limitFrames: number) {
  const procs: Proc[] = [];
  const budget = new ReplayBudget(limitFrames * FRAME, () => procs);
  const add = (): Proc => {
    const p: Proc = { buffer: new ReplayBuffer(1000 * FRAME, budget.account), live: true, exitedAt: 0, keepAbove: Number.POSITIVE_INFINITY, seq: 0 };
    procs.push(p);
    return p;
  };
  const write = (p: Proc, n: number) => {
    for (let i = 0; i < n; i++) p.buffer.append(origin.dataFrame(++p.seq, 'stdout', Buffer.alloc(1000, p.seq)));
  };
  const exit = (p: Proc, at: number) => {
    p.buffer.append(origin.exitFrame(++p.seq, 0, undefined, undefined));
    p.live = false;
    p.exitedAt = at;
  };
  return { budget, add, write, exit, procs };
}

describe('the replay budget', () => {
  it('counts every buffer and stays under the limit', () => {
    const { budget, add, write } = setup(100);
    const a = add();
    write(a, 40);
    expect(budget.used).toBe(a.buffer.bytes);
    const b = add();
    write(b, 80);
    expect(budget.used).toBe(a.buffer.bytes + b.buffer.bytes);
    expect(budget.used).toBeLessThanOrEqual(100 * FRAME);
  });

  it('evicts exited processes first, oldest exit first, down to their exit frame', () => {
    const { budget, add, write, exit } = setup(100);
    const old = add();
    write(old, 30);
    exit(old, 1);
    const recent = add();
    write(recent, 30);
    exit(recent, 2);
    const live = add();
    write(live, 30);
    // 93 frames' worth; ten more live frames pass the limit.
    write(live, 10);
    expect(old.buffer.length).toBe(1);
    expect(old.buffer.get(old.seq)?.stream).toBe('exit');
    expect(recent.buffer.length).toBe(31);
    expect(live.buffer.length).toBe(40);
    expect(budget.used).toBeLessThanOrEqual(100 * FRAME);
  });

  it('then trims the largest live buffers, never past what the owner still needs', () => {
    const { budget, add, write } = setup(50);
    const big = add();
    big.keepAbove = 20; // its owner has been written frames 1..20 only
    write(big, 45);
    const small = add();
    write(small, 10);
    // Only as much as needed goes, from the largest buffer first.
    expect(big.buffer.firstSeq).toBeGreaterThan(1);
    expect(small.buffer.length).toBe(10);
    write(small, 30);
    // Frames 1..20 of the big buffer may go, 21..45 are owed to its owner; the rest comes out of the small one.
    expect(big.buffer.firstSeq).toBe(21);
    expect(small.buffer.length).toBeLessThan(40);
    expect(budget.used).toBe(big.buffer.bytes + small.buffer.bytes);
    expect(budget.used).toBeLessThanOrEqual(50 * FRAME);
  });

  it('an exited buffer gives its ring memory back', () => {
    const { add, write, exit } = setup(1000);
    const p = add();
    write(p, 200);
    const before = p.buffer.allocatedBytes;
    p.buffer.trim(p.buffer.bytes - 10 * FRAME);
    exit(p, 1);
    p.buffer.compact();
    expect(p.buffer.allocatedBytes).toBeLessThan(before);
    expect(p.buffer.allocatedBytes).toBe(9 * 1000);
  });
});
