/**
 * The filters between the local terminal and a remote terminal process (src/cli/terminal-input.ts): the detach
 * escape, and the gate that drops the terminal's answers to replayed queries.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AnswerGate,
  DEFAULT_ESCAPE_CHAR,
  EscapeFilter,
  escapeName,
  GATE_QUERY,
  parseEscapeChar,
  REPLAY_ANSWER_WAIT_MS,
} from '../../src/cli/terminal-input.js';
import { seeded } from '../helpers/random.js';

const TILDE = 0x7e;
const b = (s: string) => Buffer.from(s, 'latin1');

/** Feeds `text` in the given pieces and returns what went through and whether it detached. */
function typed(filter: EscapeFilter, pieces: string[]): { sent: string; detach: boolean; help: number } {
  let sent = '';
  let help = 0;
  for (const p of pieces) {
    const r = filter.push(b(p));
    sent += r.data.toString('latin1');
    if (r.help) help++;
    if (r.detach) return { sent, detach: true, help };
  }
  return { sent, detach: false, help };
}

describe('-escape-char', () => {
  it('takes one ASCII character, ^X for a control character, or none', () => {
    expect(parseEscapeChar(DEFAULT_ESCAPE_CHAR)).toBe(TILDE);
    expect(parseEscapeChar('%')).toBe(0x25);
    expect(parseEscapeChar('^]')).toBe(0x1d);
    expect(parseEscapeChar('^a')).toBe(0x01);
    expect(parseEscapeChar('^?')).toBe(0x7f);
    expect(parseEscapeChar('none')).toBeUndefined();
    for (const bad of ['', '~~', '.', 'é', '^1', '\r']) expect(() => parseEscapeChar(bad), bad).toThrow(/one ASCII character/);
    expect(escapeName(0x1d)).toBe('^]');
    expect(escapeName(TILDE)).toBe('~');
  });
});

describe('the detach escape (Enter ~ .)', () => {
  it('detaches at the start and after Enter, and sends what came before', () => {
    expect(typed(new EscapeFilter(TILDE), ['~.'])).toEqual({ sent: '', detach: true, help: 0 });
    expect(typed(new EscapeFilter(TILDE), ['ls\r~.rest'])).toEqual({ sent: 'ls\r', detach: true, help: 0 });
    expect(typed(new EscapeFilter(TILDE), ['ls\n', '~', '.'])).toEqual({ sent: 'ls\n', detach: true, help: 0 });
  });

  it('is an ordinary character elsewhere, and ~~ sends one ~', () => {
    expect(typed(new EscapeFilter(TILDE), ['cd ~.'])).toEqual({ sent: 'cd ~.', detach: false, help: 0 });
    expect(typed(new EscapeFilter(TILDE), ['~~.'])).toEqual({ sent: '~.', detach: false, help: 0 });
    expect(typed(new EscapeFilter(TILDE), ['~x'])).toEqual({ sent: '~x', detach: false, help: 0 });
    // After ~ and a character, the line is no longer at its start: a following ~. is text.
    expect(typed(new EscapeFilter(TILDE), ['~x~.'])).toEqual({ sent: '~x~.', detach: false, help: 0 });
    // ~ then Enter sends both, and the next line starts fresh.
    expect(typed(new EscapeFilter(TILDE), ['~\r~.'])).toEqual({ sent: '~\r', detach: true, help: 0 });
  });

  it('holds an escape at the end of a chunk until the next one says what it was', () => {
    const f = new EscapeFilter(TILDE);
    expect(f.push(b('a\r~')).data.toString()).toBe('a\r');
    expect(f.holding).toBe(true);
    expect(f.push(b('b')).data.toString()).toBe('~b');
    expect(f.holding).toBe(false);
  });

  it('~? asks for the list and leaves an escape possible right after', () => {
    expect(typed(new EscapeFilter(TILDE), ['~?~.'])).toEqual({ sent: '', detach: true, help: 1 });
  });

  it('with none, nothing is special', () => {
    expect(typed(new EscapeFilter(undefined), ['~.', '\r~.'])).toEqual({ sent: '~.\r~.', detach: false, help: 0 });
  });

  it('a different character works the same and leaves ~ alone', () => {
    expect(typed(new EscapeFilter(0x1d), ['~.\r\x1d.'])).toEqual({ sent: '~.\r', detach: true, help: 0 });
  });

  it('any split of any input sends the same bytes as the whole (random splits)', () => {
    const rand = seeded(99);
    const alphabet = ['~', '.', '\r', '\n', 'a', '?', '~~'];
    for (let run = 0; run < 300; run++) {
      let text = '';
      for (let n = Math.floor(rand() * 30); n > 0; n--) text += alphabet[Math.floor(rand() * alphabet.length)];
      const whole = typed(new EscapeFilter(TILDE), [text]);
      const pieces: string[] = [];
      for (let at = 0; at < text.length; ) {
        const n = 1 + Math.floor(rand() * 4);
        pieces.push(text.slice(at, at + n));
        at += n;
      }
      const split = typed(new EscapeFilter(TILDE), pieces);
      // (`help` is per chunk: two ~? in one chunk ask once.)
      expect({ ...split, help: split.help > 0 }, JSON.stringify(pieces)).toEqual({ ...whole, help: whole.help > 0 });
    }
  });
});

describe('the answer gate', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is open until a replay is written', () => {
    const g = new AnswerGate();
    expect(g.open).toBe(true);
    expect(g.input(b('ls\r')).toString()).toBe('ls\r');
    expect(g.finish()).toBeUndefined(); // nothing was replayed: no query of its own
  });

  it("drops every answer to a replay's queries, up to its own query's answer; typed characters pass meanwhile", () => {
    const g = new AnswerGate();
    g.replayed(b('hello\x1b[c\x1b[6nworld\x1b[?6n'));
    expect(g.replaying).toBe(true);
    // Answers during the replay are dropped; keys typed meanwhile are not.
    expect(g.input(b('\x1b[?1;2cls')).toString()).toBe('ls');
    expect(g.finish()).toBe(GATE_QUERY);
    // Two cursor-position answers to the replay, then the gate's own, then keys in the same chunk.
    expect(g.input(b('\x1b[3;7R')).length).toBe(0);
    expect(g.input(b('\x1b]11;rgb:0000/0000/0000\x1b\\x\x1b[?3;12;1R\x1bP>|tmux\x1b\\\x1b[')).toString()).toBe('x');
    expect(g.open).toBe(false);
    expect(g.input(b('5;1R\x1b[A\r')).toString()).toBe('\x1b[A\r');
    expect(g.open).toBe(true);
    expect(g.input(b('\x1b[1;5R')).toString()).toBe('\x1b[1;5R'); // open: a key is a key
    const answers = ['\x1b[?1;2c', '\x1b[3;7R', '\x1b]11;rgb:0000/0000/0000\x1b\\', '\x1b[?3;12;1R', '\x1bP>|tmux\x1b\\', '\x1b[5;1R'];
    expect(g.dropped).toBe(answers.join('').length);
  });

  it('drops keys that are escape sequences while closed (an arrow), and a lone Alt-key', () => {
    const g = new AnswerGate();
    g.replayed(b('x'));
    expect(g.input(b('a\x1b[Ab\x1bOPc\x1bxd')).toString()).toBe('abcd');
  });

  it('counts a query split across two replayed chunks once', () => {
    const g = new AnswerGate();
    g.replayed(b('a\x1b['));
    g.replayed(b('6nb'));
    g.finish();
    expect(g.input(b('\x1b[1;1R')).length).toBe(0);
    expect(g.open).toBe(false);
    expect(g.input(b('\x1b[1;1Rx')).toString()).toBe('x');
  });

  it('opens after REPLAY_ANSWER_WAIT_MS when the terminal never answers', () => {
    vi.useFakeTimers();
    const g = new AnswerGate();
    g.replayed(b('no queries'));
    g.finish();
    vi.advanceTimersByTime(REPLAY_ANSWER_WAIT_MS - 1);
    expect(g.open).toBe(false);
    vi.advanceTimersByTime(1);
    expect(g.open).toBe(true);
    expect(g.input(b('k')).toString()).toBe('k');
  });

  it('a second replay while closing waits for its own answers too', () => {
    const g = new AnswerGate();
    g.replayed(b('\x1b[6n'));
    g.finish();
    g.replayed(b('\x1b[6n'));
    g.finish();
    for (let i = 0; i < 3; i++) expect(g.input(b('\x1b[2;2R')).length).toBe(0);
    expect(g.input(b('\x1b[2;2Rz')).toString()).toBe('z');
  });
});
