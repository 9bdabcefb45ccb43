import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { seeded } from '../../../helpers/random.js';
import { isMapHeader, MessageSplitter } from '../../../../src/protocol/msgpack.js';
import { decodeMessage, msgpackCodec } from '../../../../src/server/rpc/codec/msgpack.js';
import { NOT_A_REQUEST } from '../../../../src/server/rpc/request.js';
import { FrameOrigin } from '../../../../src/replay/frame.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Values that exercise every MessagePack header the splitter must measure. */
const values: unknown[] = [
  { a: 1 },
  { nested: { deep: [1, -1, 127, 128, -33, 65_536, -70_000, 2 ** 40, -(2 ** 40), 1.5, true, false, null] } },
  { s: 'x'.repeat(31), s8: 'y'.repeat(200), s16: 'z'.repeat(70_000), u: 'ünïcödé ✓' },
  { b8: Buffer.alloc(10, 1), b16: Buffer.alloc(300, 2), b32: Buffer.alloc(70_000, 3) },
  { arr16: Array.from({ length: 20 }, (_, i) => i), map16: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) },
  { big: 2n ** 63n, neg: -(2n ** 62n), f32: Math.fround(0.5), d: new Date(0) },
];

describe('MessageSplitter', () => {
  it('hands out values that later input cannot overwrite', () => {
    const a = packr.pack({ d: Buffer.alloc(50, 1) });
    const b = packr.pack({ d: Buffer.alloc(50, 2) });
    const s = new MessageSplitter();
    const got: Buffer[] = [];
    // Cut inside each value so both are assembled in the splitter's own buffer.
    s.push(a.subarray(0, 10), (m) => got.push(m));
    s.push(Buffer.concat([a.subarray(10), b.subarray(0, 10)]), (m) => got.push(m));
    s.push(b.subarray(10), (m) => got.push(m));
    expect(got.map((m) => m.equals(a) || m.equals(b))).toEqual([true, true]);
    expect(got[0]!.equals(a)).toBe(true);
  });

  const stream = Buffer.concat(values.map((v) => packr.pack(v)));
  const sizes = values.map((v) => packr.pack(v).length);

  it('finds every message boundary however the stream is cut', () => {
    for (const maxPiece of [1, 2, 3, 7, 100, 4096, 65_536, stream.length]) {
      for (let seed = 1; seed <= (maxPiece < 10 ? 2 : 10); seed++) {
        const rnd = seeded(seed * maxPiece);
        const s = new MessageSplitter();
        const got: number[] = [];
        let open = true;
        for (let at = 0; at < stream.length && open; ) {
          const n = 1 + Math.floor(rnd() * maxPiece);
          open = s.push(stream.subarray(at, at + n), (m) => got.push(m.length));
          at += n;
        }
        expect(open).toBe(true);
        expect(got).toEqual(sizes);
        expect(s.pendingBytes).toBe(0);
      }
    }
  });

  it('serves a message of exactly the cap and refuses one byte more', () => {
    const exact = (n: number) => {
      // {"p":"<pad>"} padded to exactly n bytes, whatever string header the padding needs.
      for (let pad = n - 10; pad <= n; pad++) {
        const msg = packr.pack({ p: 'x'.repeat(pad) });
        if (msg.length === n) return msg;
      }
      throw new Error(`no padding gives ${n} bytes`);
    };
    const ok = new MessageSplitter(1000);
    const seen: number[] = [];
    expect(ok.push(exact(1000), (m) => seen.push(m.length))).toBe(true);
    expect(seen).toEqual([1000]);
    const over = new MessageSplitter(1000);
    expect(over.push(exact(1001), () => {})).toBe(false);
  });

  it('refuses an unfinished message as soon as it passes the cap', () => {
    const s = new MessageSplitter(100);
    const big = packr.pack({ p: 'x'.repeat(500) });
    expect(s.push(big.subarray(0, 100), () => {})).toBe(true);
    expect(s.push(big.subarray(100, 101), () => {})).toBe(false);
  });

  it('does not wait forever on a header that promises more than the cap', () => {
    // map32 claiming 2^32-1 pairs, then nothing useful: the bytes pile up to the cap and the stream is refused.
    const s = new MessageSplitter(64);
    expect(s.push(Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]), () => {})).toBe(true);
    expect(s.push(Buffer.alloc(64, 0xc0), () => {})).toBe(false);
  });
});

describe('MessagePack requests and replies', () => {
  it('recognises map headers only', () => {
    for (const b of [0x80, 0x8f, 0xde, 0xdf]) expect(isMapHeader(b)).toBe(true);
    for (const b of [0x7b, 0x20, 0x90, 0xa0, 0xc0, 0xdc]) expect(isMapHeader(b)).toBe(false);
  });

  it('decodes the same envelope as JSON, keeping binary data and exact 64-bit integers', () => {
    const r = decodeMessage(
      packr.pack({ jsonrpc: '2.0', id: 7, method: 'process.stdin', params: { id: 'p', data: Buffer.from('hi'), offset: 2n ** 64n - 1n }, auth: 't' }),
    );
    expect(r).not.toBe(NOT_A_REQUEST);
    if (r === NOT_A_REQUEST) return;
    expect(r.id).toEqual({ json: '7', value: 7 });
    expect(r.method).toBe('process.stdin');
    const params = r.params as { data: Uint8Array; offset: bigint };
    expect(Buffer.from(params.data).toString()).toBe('hi');
    expect(params.offset).toBe(2n ** 64n - 1n);
  });

  it('treats a non-map value or garbage as a parse error', () => {
    expect(decodeMessage(packr.pack([1, 2]))).toBe(NOT_A_REQUEST);
    expect(decodeMessage(Buffer.from([0xc1]))).toBe(NOT_A_REQUEST);
  });

  it('never lets a __proto__ key set a prototype', () => {
    const msg = Buffer.concat([
      Buffer.from([0x82, 0xa9]),
      Buffer.from('__proto__'),
      Buffer.from([0x81, 0xa1, 0x78, 0x01]),
      packr.pack('method').subarray(0),
      packr.pack('a.b'),
    ]);
    const r = decodeMessage(msg);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(r === NOT_A_REQUEST || Object.getPrototypeOf(r) === Object.prototype).toBe(true);
  });

  it('encodes frames with raw binary data and the same keys', () => {
    const o = new FrameOrigin('p1');
    const decoded = new Packr({ useRecords: false }).unpack(msgpackCodec.frame(o, o.dataFrame(3, 'stdout', Buffer.from([0, 255, 1]))) as Buffer);
    expect(Object.keys(decoded)).toEqual(['type', 'processId', 'stream', 'seq', 'data']);
    expect(Buffer.from(decoded.data)).toEqual(Buffer.from([0, 255, 1]));
  });
});

describe('msgpackCodec data frames', () => {
  it('writes exactly the bytes packr writes for the frame object', () => {
    const packr = new Packr({ useRecords: false, variableMapSize: true });
    const ids = ['p1', '', 'ünï"\\\n', '𝄞'.repeat(20), 'x'.repeat(40), 'y'.repeat(300), 'z'.repeat(70_000)];
    const seqs = [1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, 2 ** 53 - 1];
    const sizes = [0, 1, 0xff, 0x100, 0xffff, 0x10000, 32 * 1024];
    for (const id of ids) {
      const o = new FrameOrigin(id);
      for (const seq of seqs) {
        for (const n of sizes) {
          for (const stream of ['stdout', 'stderr'] as const) {
            const frame = o.dataFrame(seq, stream, Buffer.alloc(n, seq & 0xff));
            const ours = msgpackCodec.frame(o, frame) as Buffer;
            expect(Buffer.compare(ours, packr.pack(o.toObject(frame))), `id ${id.length} seq ${seq} n ${n} ${stream}`).toBe(0);
          }
        }
      }
    }
  });

  it('hands out frames that stay intact while later frames are encoded', () => {
    const o = new FrameOrigin('p1');
    const frames = Array.from({ length: 100 }, (_, i) => msgpackCodec.frame(o, o.dataFrame(i + 1, 'stdout', Buffer.alloc(32 * 1024, i))) as Buffer);
    const unpackr = new Packr({ useRecords: false });
    frames.forEach((f, i) => {
      const v = unpackr.unpack(f) as { seq: number; data: Uint8Array };
      expect(v.seq).toBe(i + 1);
      expect(Buffer.from(v.data).equals(Buffer.alloc(32 * 1024, i))).toBe(true);
    });
  });
});
