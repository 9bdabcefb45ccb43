import { SerializeAddon } from '@xterm/addon-serialize';
import { describe, expect, it } from 'vitest';
import { type CutPiece, FrameCutter } from '../../src/terminal/cutter.js';
import {
  SCREEN_LINE_BYTES_PER_COLUMN,
  SCREEN_SCROLLBACK_BYTES,
  SCREEN_SCROLLBACK_LINES,
  ScreenKeeper,
  ScreenModel,
  type ScreenFrame,
  scrollbackFor,
} from '../../src/terminal/screen.js';
import { drawAltScreen } from '../fixtures/lib/drawing.mjs';
import { seeded } from '../helpers/random.js';
import { feed, headlessTerminal, type Outcome, outcomeOf, screenOf } from '../helpers/screen.js';

/** Feeds `before` to a model, snapshots, and plays snapshot + `after` on a fresh terminal. */
async function viaSnapshot(before: (Uint8Array | string)[], after: (Uint8Array | string)[], cols: number, rows: number) {
  const model = new ScreenModel({ cols, rows });
  before.forEach((c, i) => {
    model.output(i + 1, typeof c === 'string' ? Buffer.from(c) : c, true);
  });
  const snap = await model.snapshot();
  model.dispose();
  expect(snap).toBeDefined();
  return { snap: snap!, outcome: await outcomeOf([snap!.data, ...after], cols, rows) };
}

/** The same with the serializer alone, as @xterm/addon-serialize 0.14 does it. */
async function viaAddon(before: string, after: string, cols: number, rows: number): Promise<Outcome> {
  const term = headlessTerminal(cols, rows);
  await feed(term, [before]);
  const addon = new SerializeAddon();
  term.loadAddon(addon);
  const data = addon.serialize();
  term.dispose();
  return outcomeOf([data, after], cols, rows);
}

describe('snapshots: what the serializer leaves out, and the completed snapshot', () => {
  // Each case: output before the snapshot, output after it. The completed snapshot must reproduce the uninterrupted
  // screen; `addonAlone` records whether the serializer by itself does (false: a defect the snapshot works around).
  const cases: { name: string; before: string; after: string; addonAlone: boolean }[] = [
    { name: 'plain text and colours', before: 'hello\r\n\x1b[1;31mred', after: ' more\x1b[0m!', addonAlone: true },
    { name: 'a full row leaves a pending wrap', before: 'x'.repeat(20), after: 'Y', addonAlone: true },
    {
      name: 'a full row, cursor put back on its last cell (xtermjs/xterm.js#6165)',
      before: `${'x'.repeat(20)}\x1b[1;20H`,
      after: 'Y',
      addonAlone: false,
    },
    { name: 'DEC line-drawing charset (G0)', before: '\x1b(0lqq', after: 'qqk\x1b(Bq', addonAlone: false },
    { name: 'charset shifted in G1 (SO)', before: '\x1b)0\x0elqq', after: 'qk\x0fq', addonAlone: false },
    { name: 'saved cursor (DECSC) on the normal screen', before: 'ab\x1b[32m\x1b7\x1b[4;4H\x1b[0mzz', after: '\x1b8Q', addonAlone: false },
    { name: 'saved cursor on the alternate screen', before: 'hello\x1b[?1049h\x1b[3;3H\x1b7\x1b[1;1H', after: '\x1b8S', addonAlone: false },
    { name: 'scroll region', before: '1\r\n2\r\n3\r\n4\r\n5\r\n6\x1b[2;4r\x1b[4;1H', after: '\nA\nB', addonAlone: false },
    { name: 'origin mode in a region', before: '\x1b[2;4r\x1b[?6h\x1b[2;3H', after: 'O\x1b[1;1HP', addonAlone: false },
    { name: 'tab stops', before: '\x1b[3g\x1b[5G\x1bH\x1b[1G', after: '\tT', addonAlone: false },
    { name: 'hidden cursor', before: 'x\x1b[?25l', after: 'y', addonAlone: false },
    { name: 'insert mode', before: 'abc\x1b[4h\x1b[1G', after: 'Z', addonAlone: true },
    {
      name: 'alternate screen drawn while the pen is bold and inverse',
      before: 'normal\x1b[?1049h\x1b[2;1H\x1b[0mplain \x1b[32mgreen\x1b[1;7;34m',
      after: 'X',
      addonAlone: false,
    },
    { name: 'alternate screen over scrollback', before: `${'line\r\n'.repeat(10)}\x1b[?1049hALT`, after: '\x1b[?1049lN', addonAlone: true },
  ];
  for (const c of cases) {
    it(`${c.name}: the snapshot reproduces the screen${c.addonAlone ? '' : ' (the serializer alone does not)'}`, async () => {
      const want = await outcomeOf([c.before, c.after], 20, 6);
      const got = await viaSnapshot([c.before], [c.after], 20, 6);
      expect(got.outcome).toEqual(want);
      const alone = await viaAddon(c.before, c.after, 20, 6);
      expect(JSON.stringify(alone) === JSON.stringify(want)).toBe(c.addonAlone);
    });
  }

  it('keeps the SGR mouse encoding and the cursor style, which the serializer drops', async () => {
    const { snap } = await viaSnapshot(['\x1b[?1000h\x1b[?1006h\x1b[5 q'], [], 20, 6);
    expect(snap.data).toContain('\x1b[?1000h');
    expect(snap.data).toContain('\x1b[?1006h');
    expect(snap.data).toContain('\x1b[5 q');
  });

  it('carries no terminal query: drawing a snapshot makes a terminal answer nothing', async () => {
    const { snap } = await viaSnapshot(['before \x1b[c\x1b[6n\x1b[>c after'], [], 20, 6);
    const term = headlessTerminal(20, 6);
    const answers: string[] = [];
    term.onData((d) => answers.push(d));
    await feed(term, [snap.data]);
    term.dispose();
    expect(answers).toEqual([]);
  });
});

describe('the round trip over the drawing, at other sizes and seeds (the program itself runs in screen-roundtrip.test.ts)', () => {
  for (const [seed, cols, rows] of [
    [9, 37, 11],
    [12, 120, 40],
    [13, 23, 7],
  ] as const) {
    it(`${cols}x${rows}, seed ${seed}: 5 random clean points`, async () => {
      const { bytes } = drawAltScreen({ seed, steps: 800, cols, rows, stay: seed % 2 === 0 });
      const rand = seeded(seed);
      const cutter = new FrameCutter();
      const pieces: CutPiece[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 700);
        pieces.push(...cutter.push(bytes.subarray(at, at + n)));
        at += n;
      }
      const tail = cutter.flush();
      if (tail) pieces.push(tail);
      const whole = await outcomeOf(
        pieces.map((p) => p.data),
        cols,
        rows,
      );
      const clean = pieces.map((p, i) => (p.clean ? i : -1)).filter((i) => i >= 0);
      const mismatches: number[] = [];
      for (let trial = 0; trial < 5; trial++) {
        const k = clean[Math.floor(rand() * clean.length)]!;
        const model = new ScreenModel({ cols, rows });
        for (let i = 0; i <= k; i++) model.output(i + 1, pieces[i]!.data, pieces[i]!.clean);
        const snap = (await model.snapshot())!;
        model.dispose();
        const got = await outcomeOf([snap.data, ...pieces.slice(k + 1).map((p) => p.data)], cols, rows);
        if (JSON.stringify(got) !== JSON.stringify(whole)) mismatches.push(k);
      }
      expect(mismatches).toEqual([]);
    });
  }
});

describe('ScreenModel', () => {
  it('refuses a snapshot after a frame that did not end clean, and gives one after the next clean frame', async () => {
    const model = new ScreenModel({ cols: 20, rows: 4 });
    model.output(1, Buffer.from('ab\x1b[3'), false);
    expect(await model.snapshot()).toBeUndefined();
    model.output(2, Buffer.from('1mc'), true);
    const snap = await model.snapshot();
    expect(snap?.seq).toBe(2);
    model.dispose();
  });

  it('applies a resize frame after the output before it, and snapshots at the new size', async () => {
    const model = new ScreenModel({ cols: 20, rows: 4 });
    model.output(1, Buffer.from('x'.repeat(30)), true);
    model.resize(2, 10, 3);
    model.output(3, Buffer.from('\r\nend'), true);
    const snap = (await model.snapshot())!;
    expect([snap.seq, snap.cols, snap.rows]).toEqual([3, 10, 3]);
    const want = await (async () => {
      const t = headlessTerminal(20, 4);
      await feed(t, ['x'.repeat(30)]);
      t.resize(10, 3);
      await feed(t, ['\r\nend']);
      const s = screenOf(t);
      t.dispose();
      return s;
    })();
    const t = headlessTerminal(10, 3);
    await feed(t, [snap.data]);
    expect(screenOf(t)).toEqual(want);
    t.dispose();
    model.dispose();
  });

  it('copies what it is fed: the frame data may be a view into a ring that is reused before parsing', async () => {
    const model = new ScreenModel({ cols: 20, rows: 2 });
    const ring = Buffer.from('first');
    model.output(1, ring, true);
    ring.fill(0x58); // the slot is reused at once, as a replay buffer's ring does after an eviction
    await model.whenParsed();
    expect(screenOf(model.terminal).lines[0]).toBe('first');
    model.dispose();
  });

  it('takes frames in seq order only', () => {
    const model = new ScreenModel({ cols: 20, rows: 4 });
    model.output(5, Buffer.from('a'), true);
    expect(() => model.output(5, Buffer.from('b'), true)).toThrow(/does not follow 5/);
    model.dispose();
  });

  it('keeps SCREEN_SCROLLBACK_LINES lines, fewer when the width makes them pass SCREEN_SCROLLBACK_BYTES', () => {
    expect(SCREEN_SCROLLBACK_LINES).toBe(1000);
    expect(SCREEN_SCROLLBACK_BYTES).toBe(4 * 1024 * 1024);
    const widest = Math.floor(SCREEN_SCROLLBACK_BYTES / (SCREEN_SCROLLBACK_LINES * SCREEN_LINE_BYTES_PER_COLUMN));
    expect(scrollbackFor(widest)).toBe(SCREEN_SCROLLBACK_LINES); // exactly at the byte limit
    expect(scrollbackFor(widest + 1)).toBe(Math.floor(SCREEN_SCROLLBACK_BYTES / ((widest + 1) * SCREEN_LINE_BYTES_PER_COLUMN)));
    expect(scrollbackFor(widest + 1)).toBeLessThan(SCREEN_SCROLLBACK_LINES);
  });

  it('bounds the scrollback it keeps', async () => {
    const model = new ScreenModel({ cols: 20, rows: 4, scrollbackLines: 10 });
    model.output(1, Buffer.from(Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\r\n')), true);
    await model.whenParsed();
    expect(model.terminal.buffer.normal.length).toBe(14); // 10 of scrollback + 4 on screen
    model.dispose();
  });

  it('shortens the serialized scrollback until the snapshot fits snapshotMaxBytes', async () => {
    const text = Array.from({ length: 200 }, (_, i) => `line ${String(i).padStart(4, '0')} ${'z'.repeat(40)}`).join('\r\n');
    const roomy = new ScreenModel({ cols: 60, rows: 5 });
    roomy.output(1, Buffer.from(text), true);
    const full = (await roomy.snapshot())!;
    roomy.dispose();
    expect(full.data).toContain('line 0000');
    const cap = Math.floor(Buffer.byteLength(full.data) / 2);
    const tight = new ScreenModel({ cols: 60, rows: 5, snapshotMaxBytes: cap });
    tight.output(1, Buffer.from(text), true);
    const cut = (await tight.snapshot())!;
    tight.dispose();
    expect(Buffer.byteLength(cut.data)).toBeLessThanOrEqual(cap);
    expect(cut.data).not.toContain('line 0000');
    expect(cut.data).toContain('line 0199'); // the screen itself is always there
  });
});

describe('ScreenKeeper: the model is created at the first eviction and fed evicted frames', () => {
  const out = (seq: number, text: string, clean = true): ScreenFrame => ({ seq, kind: 'output', data: Buffer.from(text), clean });

  it('has no model and no snapshot until something is evicted', async () => {
    const keeper = new ScreenKeeper({ cols: 20, rows: 4 });
    expect(keeper.model).toBeUndefined();
    expect(await keeper.snapshot(() => undefined)).toBeUndefined();
  });

  it('snapshots as of the last evicted frame, so the retained frames follow it', async () => {
    const frames = [out(1, 'one\r\n'), { seq: 2, kind: 'resize', cols: 30, rows: 4 } as const, out(3, 'two\r\n'), out(4, 'three')];
    const keeper = new ScreenKeeper({ cols: 20, rows: 4 });
    keeper.evicted(frames[0]!);
    keeper.evicted(frames[1]!);
    keeper.evicted(frames[2]!);
    const snap = (await keeper.snapshot((seq) => frames[seq - 1]))!;
    expect([snap.seq, snap.cols]).toEqual([3, 30]);
    const a = headlessTerminal(30, 4);
    await feed(a, [snap.data, 'three']);
    expect(screenOf(a).lines.slice(0, 3)).toEqual(['one', 'two', 'three']);
    a.dispose();
    keeper.dispose();
  });

  it('feeds forward over retained frames to the first clean one when the last evicted frame was not clean', async () => {
    const frames = [out(1, 'a\x1b]0;ti', false), out(2, 'tle', false), out(3, '\x07b'), out(4, 'c')];
    const keeper = new ScreenKeeper({ cols: 20, rows: 4 });
    keeper.evicted(frames[0]!);
    const snap = (await keeper.snapshot((seq) => frames[seq - 1]))!;
    expect(snap.seq).toBe(3);
    // A later eviction of a frame the model already has is skipped.
    keeper.evicted(frames[1]!);
    keeper.evicted(frames[2]!);
    expect(keeper.model!.seq).toBe(3);
    keeper.evicted(frames[3]!);
    expect(keeper.model!.seq).toBe(4);
    keeper.dispose();
  });

  it('answers undefined while the sequence is still open at the newest frame', async () => {
    const frames = [out(1, 'a\x1bP', false), out(2, 'qqq', false)];
    const keeper = new ScreenKeeper({ cols: 20, rows: 4 });
    keeper.evicted(frames[0]!);
    expect(await keeper.snapshot((seq) => frames[seq - 1])).toBeUndefined();
    keeper.dispose();
  });
});
