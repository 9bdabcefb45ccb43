import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CUT_HOLD_MAX_BYTES,
  CUT_HOLD_MS,
  CUT_MAX_PIECE_BYTES,
  type CutPiece,
  FrameCutter,
  OutputCutter,
  VtScanner,
} from '../../src/terminal/cutter.js';
import { MAX_FRAME_DATA } from '../../src/replay/frame.js';
import { drawAltScreen } from '../fixtures/lib/drawing.mjs';
import { headlessTerminal } from '../helpers/screen.js';

/**
 * The oracle: xterm.js itself. For each end offset, a fresh terminal parses `bytes` up to it in one write, and the
 * answer is whether its parser is then in ground state with no partial UTF-8 character (internals of the pinned
 * 6.0.0, read only). One write per prefix: xterm.js 6.0.0 drops a character split across writes after a 0x80
 * continuation byte (xtermjs/xterm.js#6003, fixed after 6.0.0), which would make a piece-by-piece oracle wrong.
 */
async function xtermCleanAt(bytes: Uint8Array, ends: readonly number[]): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const end of ends) {
    const term = headlessTerminal(80, 24, 0);
    const handler = (term as any)._core._inputHandler;
    await new Promise<void>((resolve) => term.write(bytes.subarray(0, end), resolve));
    out.push(handler._parser.currentState === 0 && handler._utf8Decoder.interim[0] === 0);
    term.dispose();
  }
  return out;
}

/** Up to `n` of `items`, spread evenly (the oracle costs a terminal per check). */
function sample<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]!);
}

/** The end offsets of the pieces within the whole output, with their clean marks. */
function ends(pieces: readonly CutPiece[]): { end: number; clean: boolean }[] {
  let at = 0;
  return pieces.map((p) => ({ end: (at += p.data.length), clean: p.clean }));
}

function cutAll(cutter: FrameCutter, slices: readonly Uint8Array[]): { pieces: CutPiece[]; heldAfter: number[] } {
  const pieces: CutPiece[] = [];
  const heldAfter: number[] = [];
  for (const s of slices) {
    pieces.push(...cutter.push(s));
    heldAfter.push(cutter.heldBytes);
  }
  const tail = cutter.flush();
  if (tail) pieces.push(tail);
  return { pieces, heldAfter };
}

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    if (c > prev) out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}

const bytesOf = (s: string) => Buffer.from(s, 'latin1');

describe('FrameCutter: exact boundaries', () => {
  // Each sequence is split at every inner position: the part before the sequence goes out clean, the started
  // sequence is held, and the rest completes it.
  const sequences: [string, Buffer][] = [
    ['CSI SGR', Buffer.from('\x1b[1;38;5;208m')],
    ['CSI private mode', Buffer.from('\x1b[?1049h')],
    ['CSI with intermediate (DECSCUSR)', Buffer.from('\x1b[5 q')],
    ['OSC ended by BEL', Buffer.from('\x1b]0;a title\x07')],
    ['OSC ended by ST', Buffer.from('\x1b]8;;https://example.org\x1b\\')],
    ['DCS ended by ST', Buffer.from('\x1bP1$r0m\x1b\\')],
    ['APC ended by ST', Buffer.from('\x1b_Gf=100;AAAA\x1b\\')],
    ['PM ended by ST', Buffer.from('\x1b^private\x1b\\')],
    ['SOS ended by ST', Buffer.from('\x1bXstring\x1b\\')],
    ['two-byte ESC (DECSC)', Buffer.from('\x1b7')],
    ['charset designation', Buffer.from('\x1b(0')],
    ['ESC with two intermediates', Buffer.from('\x1b%@')],
    ['C1 CSI as UTF-8 (U+009B)', Buffer.from('\u009b31m')],
    ['C1 OSC as UTF-8 ended by C1 ST', Buffer.from('\u009d2;t\u009c')],
    ['two-byte UTF-8', Buffer.from('é')],
    ['three-byte UTF-8', Buffer.from('漢')],
    ['four-byte UTF-8', Buffer.from('🙂')],
  ];
  for (const [name, seq] of sequences) {
    it(`${name}: held while open, released whole`, () => {
      for (let k = 1; k < seq.length; k++) {
        const cutter = new FrameCutter();
        const first = cutter.push(Buffer.concat([bytesOf('ab'), seq.subarray(0, k)]));
        expect(first).toEqual([{ data: bytesOf('ab'), clean: true }]);
        expect(cutter.heldBytes).toBe(k);
        expect(cutter.clean).toBe(false);
        const second = cutter.push(Buffer.concat([seq.subarray(k), bytesOf('cd')]));
        expect(second).toEqual([{ data: Buffer.concat([seq, bytesOf('cd')]), clean: true }]);
        expect(cutter.heldBytes).toBe(0);
        expect(cutter.clean).toBe(true);
      }
    });
  }

  it('CAN and SUB abort a sequence: the position after them is clean', () => {
    for (const abort of ['\x18', '\x1a']) {
      const cutter = new FrameCutter();
      expect(cutter.push(bytesOf(`x\x1b[12${abort}`))).toEqual([{ data: bytesOf(`x\x1b[12${abort}`), clean: true }]);
    }
  });

  it('ESC inside an OSC ends it and starts a new sequence', () => {
    const cutter = new FrameCutter();
    expect(cutter.push(bytesOf('\x1b]0;t\x1b[3'))).toEqual([]);
    expect(cutter.heldBytes).toBe(8);
    expect(cutter.push(bytesOf('1m'))).toEqual([{ data: bytesOf('\x1b]0;t\x1b[31m'), clean: true }]);
  });

  it('a wrong UTF-8 continuation drops the partial character, as xterm.js does', () => {
    const cutter = new FrameCutter();
    expect(cutter.push(Buffer.from([0x41, 0xe6]))).toEqual([{ data: Buffer.from([0x41]), clean: true }]);
    expect(cutter.push(Buffer.from([0x42]))).toEqual([{ data: Buffer.from([0xe6, 0x42]), clean: true }]);
  });

  it('holds up to CUT_HOLD_MAX_BYTES, and past it lets the tail go marked not clean', () => {
    expect(CUT_HOLD_MAX_BYTES).toBe(8 * 1024);
    const open = bytesOf('\x1b]52;c;');
    const cutter = new FrameCutter();
    expect(cutter.push(Buffer.concat([open, Buffer.alloc(CUT_HOLD_MAX_BYTES - open.length, 0x41)]))).toEqual([]);
    expect(cutter.heldBytes).toBe(CUT_HOLD_MAX_BYTES); // exactly at the cap: still held
    const over = cutter.push(bytesOf('A'));
    expect(over).toHaveLength(1);
    expect(over[0]!.clean).toBe(false);
    expect(over[0]!.data.length).toBe(CUT_HOLD_MAX_BYTES + 1);
    expect(cutter.heldBytes).toBe(0);
    // The scanner is still inside the OSC: the next piece is clean only once the OSC ends.
    expect(cutter.push(bytesOf('AA'))).toEqual([]);
    expect(cutter.push(bytesOf('\x07z'))).toEqual([{ data: bytesOf('AA\x07z'), clean: true }]);
  });

  it('pieces are at most CUT_MAX_PIECE_BYTES (one frame), cut at a clean position when there is one', () => {
    expect(CUT_MAX_PIECE_BYTES).toBe(MAX_FRAME_DATA);
    const cutter = new FrameCutter();
    const exact = cutter.push(Buffer.alloc(CUT_MAX_PIECE_BYTES, 0x61));
    expect(exact.map((p) => [p.data.length, p.clean])).toEqual([[CUT_MAX_PIECE_BYTES, true]]);
    const over = cutter.push(Buffer.alloc(CUT_MAX_PIECE_BYTES + 1, 0x61));
    expect(over.map((p) => [p.data.length, p.clean])).toEqual([
      [CUT_MAX_PIECE_BYTES, true],
      [1, true],
    ]);
    // A sequence open across the piece limit: the piece ends at the last clean position before it.
    const text = Buffer.alloc(CUT_MAX_PIECE_BYTES - 4, 0x62);
    const mixed = cutter.push(Buffer.concat([text, bytesOf('\x1b[38;5;1m')]));
    expect(mixed.map((p) => [p.data.length, p.clean])).toEqual([
      [text.length, true],
      [9, true],
    ]);
  });

  it('a sequence longer than a piece goes out in full pieces marked not clean', () => {
    const cutter = new FrameCutter({ holdMaxBytes: 100, maxPieceBytes: 64 });
    const pieces = cutter.push(Buffer.concat([bytesOf('\x1bP'), Buffer.alloc(200, 0x71)]));
    expect(pieces.map((p) => [p.data.length, p.clean])).toEqual([
      [64, false],
      [64, false],
      [64, false],
    ]);
    expect(cutter.heldBytes).toBe(10);
  });
});

describe('FrameCutter: properties against xterm.js', () => {
  const real = drawAltScreen({ seed: 3, steps: 400, stay: true }).bytes;
  // Bytes that make escape sequences and UTF-8 likely, and anything else sometimes.
  const termByte = fc.oneof(
    fc.constantFrom(0x1b, 0x5b, 0x5d, 0x50, 0x5c, 0x07, 0x18, 0x1a, 0x3b, 0x31, 0x6d, 0x3f, 0x28, 0x30, 0x5f, 0x58, 0x5e, 0x20),
    fc.constantFrom(0xc2, 0x9b, 0x9c, 0x9d, 0x90, 0xe6, 0xbc, 0xa2, 0xf0, 0x9f, 0x99, 0x82, 0x80, 0xff),
    fc.integer({ min: 0, max: 255 }),
  );
  const limits = fc.record({ holdMaxBytes: fc.integer({ min: 0, max: 64 }), maxPieceBytes: fc.integer({ min: 1, max: 128 }) });

  it('random splits of real output: lossless and in order, every clean piece is clean to xterm.js, bounded', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 200 }), fc.option(limits, { nil: undefined }), async (cuts, lim) => {
        const cutter = new FrameCutter(lim ?? {});
        const { pieces, heldAfter } = cutAll(cutter, split(real, cuts));
        expect(Buffer.concat(pieces.map((p) => p.data)).equals(real)).toBe(true);
        for (const p of pieces) expect(p.data.length).toBeLessThanOrEqual(cutter.maxPieceBytes);
        for (const h of heldAfter) expect(h).toBeLessThanOrEqual(cutter.holdMaxBytes);
        const checked = sample(
          ends(pieces).filter((e) => e.clean),
          8,
        ).map((e) => e.end);
        expect(await xtermCleanAt(real, checked)).toEqual(checked.map(() => true));
      }),
      { numRuns: 12 },
    );
  });

  it('random bytes, random splits: the same, and nothing is held when xterm.js is in ground', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(termByte, { maxLength: 400 }), fc.array(fc.nat(), { maxLength: 40 }), limits, async (raw, cuts, lim) => {
        const bytes = Uint8Array.from(raw);
        const slices = split(bytes, cuts);
        const cutter = new FrameCutter(lim);
        const { pieces, heldAfter } = cutAll(cutter, slices);
        expect(Buffer.concat(pieces.map((p) => p.data)).equals(Buffer.from(bytes))).toBe(true);
        const checked = ends(pieces)
          .filter((e) => e.clean)
          .map((e) => e.end);
        expect(await xtermCleanAt(bytes, checked)).toEqual(checked.map(() => true));
        // Where xterm.js is clean after a slice, the cutter held nothing back.
        let at = 0;
        const sliceEnds = slices.map((sl) => (at += sl.length));
        const sliceOracle = await xtermCleanAt(bytes, sliceEnds);
        sliceOracle.forEach((clean, i) => {
          if (clean) expect(heldAfter[i]).toBe(0);
        });
      }),
      { numRuns: 80 },
    );
  });

  it('VtScanner agrees with xterm.js at 400 offsets of real output, clean or not', async () => {
    const scanner = new VtScanner();
    const prefix = real.subarray(0, 4000);
    const mine = Array.from(prefix, (b) => {
      scanner.step(b);
      return scanner.clean;
    });
    const offsets = sample(
      Array.from({ length: prefix.length }, (_, i) => i + 1),
      400,
    );
    expect(mine.filter((c, i) => offsets.includes(i + 1) && !c).length).toBeGreaterThan(50); // many inside sequences
    expect(await xtermCleanAt(prefix, offsets)).toEqual(offsets.map((end) => mine[end - 1]));
  });
});

describe('FrameCutter: whole characters for xterm.js', () => {
  it('a character split by a read reaches the renderer whole (xterm.js 6.0.0 drops it otherwise, xterm.js#6003)', async () => {
    const render = async (writes: Uint8Array[]) => {
      const term = headlessTerminal(20, 2, 0);
      for (const w of writes) await new Promise<void>((resolve) => term.write(w, resolve));
      const line = term.buffer.active.getLine(0)!.translateToString(true);
      term.dispose();
      return line;
    };
    const reads = [Buffer.from([0x61, 0xe2, 0x80]), Buffer.from([0x94, 0x62])]; // 'a—b' split after E2 80
    expect(await render(reads)).toBe('ab');
    const cutter = new FrameCutter();
    const pieces = reads.flatMap((r) => cutter.push(r)).map((p) => p.data);
    expect(await render(pieces)).toBe('a—b');
  });
});

describe('OutputCutter: the hold timer', () => {
  it('releases a held tail after holdMs, marked not clean; the next complete sequence is clean again', async () => {
    const pieces: CutPiece[] = [];
    const cutter = new OutputCutter((p) => pieces.push(p), { holdMs: 30 });
    expect(CUT_HOLD_MS).toBe(20);
    expect(new OutputCutter(() => {}).holdMs).toBe(CUT_HOLD_MS);
    cutter.push(bytesOf('ab\x1b['));
    expect(pieces).toEqual([{ data: bytesOf('ab'), clean: true }]);
    expect(cutter.heldBytes).toBe(2);
    await new Promise((r) => setTimeout(r, 120));
    expect(pieces).toEqual([
      { data: bytesOf('ab'), clean: true },
      { data: bytesOf('\x1b['), clean: false },
    ]);
    cutter.push(bytesOf('31mX'));
    expect(pieces[2]).toEqual({ data: bytesOf('31mX'), clean: true });
    cutter.dispose();
  });

  it('a tail completed by the next read never waits for the timer', async () => {
    const pieces: CutPiece[] = [];
    const cutter = new OutputCutter((p) => pieces.push(p), { holdMs: 10_000 });
    cutter.push(bytesOf('\x1b[3'));
    cutter.push(bytesOf('1mok'));
    expect(pieces).toEqual([{ data: bytesOf('\x1b[31mok'), clean: true }]);
    expect(cutter.heldBytes).toBe(0);
    cutter.dispose();
  });

  it('flush() at the end of output lets the tail go at once', () => {
    const pieces: CutPiece[] = [];
    const cutter = new OutputCutter((p) => pieces.push(p), { holdMs: 10_000 });
    cutter.push(Buffer.from([0x61, 0xe6, 0xbc]));
    cutter.flush();
    expect(pieces).toEqual([
      { data: Buffer.from([0x61]), clean: true },
      { data: Buffer.from([0xe6, 0xbc]), clean: false },
    ]);
  });
});
