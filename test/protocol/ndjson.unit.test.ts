import { describe, expect, it } from 'vitest';
import { seeded } from '../helpers/random.js';
import { LineSplitter, MAX_LINE_BYTES, stripCR } from '../../src/protocol/ndjson.js';

/** Feeds `input` in pieces cut at random points no larger than `maxPiece`; returns the lines and whether it closed. */
function feed(input: Buffer, maxPiece: number, rnd: () => number, cap = MAX_LINE_BYTES) {
  const s = new LineSplitter(cap);
  const lines: string[] = [];
  let open = true;
  for (let at = 0; at < input.length && open; ) {
    const n = 1 + Math.floor(rnd() * maxPiece);
    open = s.push(input.subarray(at, at + n), (l) => lines.push(l.toString('utf8')));
    at += n;
  }
  if (open) s.end((l) => lines.push(l.toString('utf8')));
  return { lines, open };
}

describe('LineSplitter', () => {
  it('reassembles the same lines whatever the chunk boundaries (random splits, several piece sizes)', () => {
    const lines = ['{"a":1}', '', 'ünïcödé ✓ 𝄞 split me', 'x'.repeat(5000), '\r', '{"b":2}\r', 'tail-without-newline'];
    const input = Buffer.from(lines.join('\n'));
    for (const maxPiece of [1, 2, 3, 7, 64, 512, 1024, 100_000]) {
      for (let seed = 1; seed <= 25; seed++) {
        const out = feed(input, maxPiece, seeded(seed * maxPiece));
        expect(out.open).toBe(true);
        expect(out.lines).toEqual(lines);
      }
    }
  });

  it('keeps a multi-byte character that a chunk boundary cuts in half', () => {
    const s = new LineSplitter();
    const bytes = Buffer.from('é\n'); // 0xc3 0xa9 0x0a
    const got: Buffer[] = [];
    s.push(bytes.subarray(0, 1), (l) => got.push(l));
    s.push(bytes.subarray(1), (l) => got.push(l));
    expect(got.map((b) => b.toString('utf8'))).toEqual(['é']);
  });

  it('serves a line of exactly MAX_LINE_BYTES (1,048,575) bytes', () => {
    const line = Buffer.alloc(MAX_LINE_BYTES, 0x61);
    const out = feed(Buffer.concat([line, Buffer.from('\nnext\n')]), 65536, seeded(7));
    expect(out.open).toBe(true);
    expect(out.lines.map((l) => l.length)).toEqual([MAX_LINE_BYTES, 4]);
  });

  it('refuses a line of MAX_LINE_BYTES + 1 bytes, with or without its newline yet', () => {
    for (const tail of ['\n', '']) {
      const input = Buffer.concat([Buffer.from('ok\n'), Buffer.alloc(MAX_LINE_BYTES + 1, 0x61), Buffer.from(tail)]);
      const out = feed(input, 65536, seeded(3));
      expect(out.open).toBe(false);
      expect(out.lines).toEqual(['ok']); // the line before the oversized one was delivered
    }
  });

  it('refuses as soon as the unfinished line passes the cap, holding at most the cap in memory', () => {
    const s = new LineSplitter(10);
    expect(s.push(Buffer.alloc(10, 0x61), () => {})).toBe(true);
    expect(s.pendingBytes).toBe(10);
    expect(s.push(Buffer.from('a'), () => {})).toBe(false);
    expect(s.pendingBytes).toBe(0);
  });

  it('counts a trailing \\r against the cap (it is part of the line until the newline)', () => {
    const s = new LineSplitter(4);
    const got: string[] = [];
    expect(s.push(Buffer.from('abc\r\n'), (l) => got.push(l.toString()))).toBe(true);
    expect(s.push(Buffer.from('abcd\r\n'), (l) => got.push(l.toString()))).toBe(false);
    expect(got).toEqual(['abc\r']);
  });

  it('delivers bytes left before EOF as one more line', () => {
    const s = new LineSplitter();
    const got: string[] = [];
    s.push(Buffer.from('a\nb'), (l) => got.push(l.toString()));
    s.end((l) => got.push(l.toString()));
    expect(got).toEqual(['a', 'b']);
  });

  it('delivers a thousand small requests from one chunk', () => {
    const input = Buffer.from(`${Array.from({ length: 1000 }, (_, i) => `{"id":${i}}`).join('\n')}\n`);
    const out = feed(input, input.length, () => 0.999999);
    expect(out.lines).toHaveLength(1000);
    expect(out.lines[999]).toBe('{"id":999}');
  });
});

describe('stripCR', () => {
  it('strips one trailing carriage return only', () => {
    expect(stripCR(Buffer.from('x\r')).toString()).toBe('x');
    expect(stripCR(Buffer.from('\r')).length).toBe(0);
    expect(stripCR(Buffer.from('x\r\r')).toString()).toBe('x\r');
    expect(stripCR(Buffer.from('x')).toString()).toBe('x');
  });
});

describe('LineSplitter memory', () => {
  it('copies an unfinished line into one buffer: no read it was given is held (a trickled line costs its bytes)', () => {
    const s = new LineSplitter(1024);
    const reads = Array.from({ length: 600 }, (_, i) => Buffer.from([0x61 + (i % 26)]));
    for (const r of reads) expect(s.push(r, () => {})).toBe(true);
    // Scribble over every read: the line assembled from them must be unaffected.
    for (const r of reads) r[0] = 0x21;
    let line = '';
    s.push(Buffer.from('\n'), (l) => (line = l.toString()));
    expect(line).toBe(Array.from({ length: 600 }, (_, i) => String.fromCharCode(0x61 + (i % 26))).join(''));
    expect(s.pendingBytes).toBe(0);
  });

  it('still refuses at the cap, and starts clean after the refusal', () => {
    const s = new LineSplitter(10);
    expect(s.push(Buffer.from('0123456789'), () => {})).toBe(true);
    expect(s.push(Buffer.from('a'), () => {})).toBe(false);
    expect(s.pendingBytes).toBe(0);
  });
});
