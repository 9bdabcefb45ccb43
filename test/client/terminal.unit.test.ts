/**
 * TerminalScreen (src/client/terminal.ts) on its own: items drawn in order, answers to replayed output dropped and
 * answers to live output passed on, a resize applied after the output before it, a screen resetting everything.
 */
import { describe, expect, it } from 'vitest';
import { type OutputItem, renderScreen, TerminalScreen } from '../../src/client/index.js';

const out = (seq: number, text: string, replay = false): OutputItem => ({
  type: 'stdout',
  seq,
  data: Buffer.from(text),
  ...(replay ? { replay: true as const } : {}),
});

describe('TerminalScreen', () => {
  it("drops the emulator's answers to replayed queries and passes on those to live ones", async () => {
    const answers: string[] = [];
    const screen = new TerminalScreen({ cols: 20, rows: 4, onAnswer: (a) => answers.push(a.toString()) });
    screen.apply(out(1, 'old\x1b[c\x1b[6n', true));
    screen.apply(out(2, '\r\nnew\x1b[6n'));
    await screen.flushed();
    expect(screen.droppedAnswers).toBe(2);
    expect(answers).toEqual(['\x1b[2;4R']); // the live question only, answered where the cursor is
    expect(screen.lines()).toEqual(['old', 'new', '', '']);
    screen.dispose();
  });

  it('a screen item resets to its size and content, and its answers are dropped too', async () => {
    const answers: string[] = [];
    const screen = new TerminalScreen({ cols: 20, rows: 4, onAnswer: (a) => answers.push(a.toString()) });
    screen.apply(out(1, 'before'));
    screen.apply({ type: 'screen', seq: 9, cols: 10, rows: 3, data: Buffer.from('\x1b[1;31mred\x1b[0m\x1b[c') });
    screen.apply(out(10, ' after'));
    await screen.flushed();
    expect(screen.read()).toMatchObject({ cols: 10, rows: 3, lines: ['red after', '', ''], cursor: { x: 9, y: 0 }, alternate: false });
    expect(answers).toEqual([]);
    screen.dispose();
  });

  it('a resize takes effect after the output before it, not when it was applied', async () => {
    const screen = new TerminalScreen({ cols: 10, rows: 2 });
    // 15 characters wrap at 10 columns: drawn before the resize, they stay wrapped.
    screen.apply(out(1, 'abcdefghijklmno'));
    screen.apply({ type: 'resize', seq: 2, cols: 20, rows: 2 });
    screen.apply(out(3, '\r\n12345678901234567890'));
    await screen.flushed();
    expect(screen.cols).toBe(20);
    expect(screen.lines()).toEqual(['klmno', '12345678901234567890']);
    screen.dispose();
  });

  it('renderScreen draws a list of items into text; gaps change nothing', async () => {
    const items: OutputItem[] = [out(1, '\x1b[?1049h\x1b[Halt screen'), { type: 'gap', fromSeq: 2, toSeq: 3 }, out(4, '\x1b[2;3Hok')];
    const r = await renderScreen(items, { cols: 12, rows: 3 });
    expect(r).toEqual({ text: 'alt screen\n  ok\n', lines: ['alt screen', '  ok', ''], cursor: { x: 4, y: 1 }, alternate: true, cols: 12, rows: 3 });
  });
});
