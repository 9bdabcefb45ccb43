import { describe, expect, it } from 'vitest';
import { ReplayBuffer, REPLAY_CAP_BYTES } from '../../src/replay/buffer.js';
import { FrameOrigin, type Frame } from '../../src/replay/frame.js';

const origin = new FrameOrigin('p1');
const data = (seq: number, n: number) => origin.dataFrame(seq, 'stdout', Buffer.alloc(n, 0x41));

describe('ReplayBuffer', () => {
  it('reports 0/0 before anything was emitted', () => {
    const b = new ReplayBuffer();
    expect([b.firstSeq, b.lastSeq, b.length, b.bytes]).toEqual([0, 0, 0, 0]);
    expect(b.get(1)).toBeUndefined();
  });

  it('defaults to a 16 MiB cap', () => {
    expect(REPLAY_CAP_BYTES).toBe(16 * 1024 * 1024);
    expect(new ReplayBuffer().capBytes).toBe(REPLAY_CAP_BYTES);
  });

  it('keeps frames up to the cap exactly, then drops whole frames oldest first', () => {
    const size = data(1, 100).size;
    const b = new ReplayBuffer(size * 3);
    for (let seq = 1; seq <= 3; seq++) expect(b.append(data(seq, 100))).toBe(0);
    expect([b.firstSeq, b.lastSeq, b.bytes]).toEqual([1, 3, size * 3]); // at the cap: nothing dropped
    expect(b.append(data(4, 100))).toBe(size); // one over: the oldest goes
    expect([b.firstSeq, b.lastSeq, b.length]).toEqual([2, 4, 3]);
    expect(b.get(1)).toBeUndefined();
    expect(b.get(2)!.seq).toBe(2);
    expect(b.evictedFrames).toBe(1);
    expect(b.evictedBytes).toBe(size);
  });

  it('always keeps the newest frame, even one larger than the cap', () => {
    const b = new ReplayBuffer(50);
    b.append(data(1, 10));
    b.append(data(2, 1000));
    expect([b.firstSeq, b.lastSeq, b.length]).toEqual([2, 2, 1]);
    expect(b.bytes).toBeGreaterThan(50);
    b.append(data(3, 1));
    expect([b.firstSeq, b.lastSeq]).toEqual([3, 3]);
  });

  it('looks frames up by seq across compactions', () => {
    // Seqs of one width, so every frame has the same size.
    const b = new ReplayBuffer(data(10_001, 10).size * 100);
    for (let seq = 10_001; seq <= 20_000; seq++) b.append(data(seq, 10));
    expect(b.length).toBe(100);
    expect([b.firstSeq, b.lastSeq]).toEqual([19_901, 20_000]);
    for (const seq of [19_901, 19_950, 20_000]) expect(b.get(seq)!.seq).toBe(seq);
    expect(b.get(19_900)).toBeUndefined();
    expect(b.get(20_001)).toBeUndefined();
  });

  it('refuses a frame whose seq does not follow the newest', () => {
    const b = new ReplayBuffer();
    b.append(data(1, 1));
    expect(() => b.append(data(3, 1))).toThrow(/does not follow/);
  });
});

describe('frame sizes', () => {
  const cases: [string, Frame][] = [];
  for (const id of ['p1', 'ünï"\\\n', '𝄞'.repeat(20), '']) {
    const o = new FrameOrigin(id);
    for (const n of [0, 1, 2, 3, 4, 32 * 1024 - 1, 32 * 1024]) cases.push([id, o.dataFrame(7, 'stdout', Buffer.alloc(n, 0xff))]);
    cases.push([id, o.dataFrame(123456789, 'stderr', Buffer.from('x'))]);
    cases.push([id, o.exitFrame(1, 0, undefined, undefined)]);
    cases.push([id, o.exitFrame(99, -1, 'SIGTERM', 'client')]);
    cases.push([id, o.exitFrame(10, 255, undefined, 'shutdown')]);
  }

  it.each(cases)('counts the exact NDJSON line length (processId %j)', (id, frame) => {
    const line = new FrameOrigin(id).toJsonLine(frame);
    expect(frame.size).toBe(Buffer.byteLength(line));
    expect(line.endsWith('\n')).toBe(true);
    const parsed = JSON.parse(line);
    expect(Object.keys(parsed).slice(0, 4)).toEqual(['type', 'processId', 'stream', 'seq']);
    expect(parsed.processId).toBe(id);
  });

  it('writes the reference key order for exit frames', () => {
    const line = new FrameOrigin('c1').toJsonLine(new FrameOrigin('c1').exitFrame(3, -1, 'SIGKILL', 'shutdown'));
    expect(line).toBe('{"type":"stream","processId":"c1","stream":"exit","seq":3,"exitCode":-1,"signal":"SIGKILL","killedBy":"shutdown"}\n');
  });
});

describe('ReplayBuffer data storage', () => {
  it('keeps a copy of each data frame, so the reader may reuse its read buffer', () => {
    const origin = new FrameOrigin('p1');
    const b = new ReplayBuffer(1024 * 1024);
    const read = Buffer.from('first');
    b.append(origin.dataFrame(1, 'stdout', read));
    read.fill(0x2a);
    expect((b.get(1) as { data: Buffer }).data.toString()).toBe('first');
  });

  it('reads back every retained frame intact across ring growth, wrap-around and eviction', () => {
    const origin = new FrameOrigin('p1');
    const cap = 200_000;
    const b = new ReplayBuffer(cap);
    const sent = new Map<number, Buffer>();
    let seed = 7;
    for (let seq = 1; seq <= 3000; seq++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const bytes = Buffer.alloc(4 + (seed % 32765), seq & 0xff);
      bytes.writeUInt32LE(seq, 0);
      sent.set(seq, bytes);
      b.append(origin.dataFrame(seq, 'stdout', bytes));
      for (let s = b.firstSeq; s <= b.lastSeq; s += 7) {
        expect((b.get(s) as { data: Buffer }).data.equals(sent.get(s)!)).toBe(true);
      }
    }
    expect(b.bytes).toBeLessThanOrEqual(cap);
    b.append(origin.exitFrame(3001, 0, undefined, undefined));
    expect(b.get(3001)!.stream).toBe('exit');
  });
});
