import { beforeAll, describe, expect, it } from 'vitest';
import { type CutPiece, FrameCutter } from '../../src/terminal/cutter.js';
import { ScreenModel } from '../../src/terminal/screen.js';
import { seeded } from '../helpers/random.js';
import { type Outcome, outcomeOf } from '../helpers/screen.js';
import { runTerminal } from '../helpers/terminal.js';

/** The title draw-alt-screen sets when it has drawn everything (OSC 2 ; drawn BEL). */
const DRAWN = new RegExp(`${String.fromCharCode(0x1b)}\\]2;drawn${String.fromCharCode(7)}`);

describe('the round trip at random clean points of a real program on a real terminal', () => {
  const cols = 80;
  const rows = 24;
  let reads: Buffer[] = [];
  const pieces: CutPiece[] = [];
  let whole: Outcome;

  beforeAll(async () => {
    // draw-alt-screen on a PTY, read as the supervisor reads it.
    const run = await runTerminal(process.execPath, ['test/fixtures/draw-alt-screen.mjs', '11', '4000', '0', 'stay'], { cols, rows });
    await run.waitFor(DRAWN, 30_000);
    run.terminal.close();
    await run.exited;
    reads = run.reads;
    // Cut as the supervisor cuts, but fed in slices of 1 B to 1 KiB: reads here are up to 32 KiB, and smaller
    // slices give the test hundreds of clean points to choose from, in the middle of the program's sequences too.
    const rand = seeded(7);
    const bytes = Buffer.concat(reads);
    const cutter = new FrameCutter();
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + Math.floor(rand() * 1024);
      pieces.push(...cutter.push(bytes.subarray(at, at + n)));
      at += n;
    }
    const tail = cutter.flush();
    if (tail) pieces.push(tail);
    whole = await outcomeOf(
      pieces.map((p) => p.data),
      cols,
      rows,
    );
  }, 60_000);

  it('the run means something: over 100 KB in many reads, reads that end inside a sequence, the alternate screen up', () => {
    expect(Buffer.concat(reads).length).toBeGreaterThan(100_000);
    // A wakeup reads at most PTY_READ_BURST_BYTES (32 KiB): over 100 KB takes several.
    expect(reads.length).toBeGreaterThan(3);
    const cutter = new FrameCutter();
    let heldAtReadEnd = 0;
    for (const read of reads) {
      cutter.push(read);
      if (cutter.heldBytes > 0) heldAtReadEnd++;
    }
    expect(heldAtReadEnd).toBeGreaterThan(0);
    expect(pieces.filter((p) => p.clean).length).toBeGreaterThan(200);
    expect(whole.screen.alternate).toBe(true);
  });

  it('snapshot at 50 random clean points + the frames after it draws exactly the uninterrupted screen', async () => {
    const rand = seeded(6165);
    const clean = pieces.map((p, i) => (p.clean ? i : -1)).filter((i) => i >= 0);
    const points = new Set<number>();
    while (points.size < 50) points.add(clean[Math.floor(rand() * clean.length)]!);
    const mismatches: number[] = [];
    for (const k of points) {
      const model = new ScreenModel({ cols, rows });
      for (let i = 0; i <= k; i++) model.output(i + 1, pieces[i]!.data, pieces[i]!.clean);
      const snap = await model.snapshot();
      model.dispose();
      expect(snap?.seq).toBe(k + 1);
      const got = await outcomeOf([snap!.data, ...pieces.slice(k + 1).map((p) => p.data)], cols, rows);
      if (JSON.stringify(got) !== JSON.stringify(whole)) mismatches.push(k);
    }
    expect(mismatches).toEqual([]);
  });
});
