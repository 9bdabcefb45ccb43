import { describe, expect, it } from 'vitest';
import { decodeBase64Strict, stdinVerdict, STDIN_QUEUE_CAP_BYTES } from '../../src/process/stdin.js';
import { parseSignal } from '../../src/process/signals.js';

describe('stdinVerdict: the offset rules', () => {
  it('follows the reference sequence (AAA, BBB at 4, DUP at 4, PART at 6, gap at 99)', () => {
    let applied = 0;
    expect(stdinVerdict(applied, undefined, 4)).toEqual({ kind: 'write', skip: 0 });
    applied = 4;
    expect(stdinVerdict(applied, 4, 4)).toEqual({ kind: 'write', skip: 0 });
    applied = 8;
    expect(stdinVerdict(applied, 4, 4)).toEqual({ kind: 'duplicate' });
    expect(stdinVerdict(applied, 6, 5)).toEqual({ kind: 'write', skip: 2 }); // only "RT\n" is new
    applied = 11;
    expect(stdinVerdict(applied, 99, 1)).toEqual({ kind: 'gap' });
  });

  it('treats the exact boundaries right', () => {
    expect(stdinVerdict(10, 11, 0)).toEqual({ kind: 'gap' }); // one past applied
    expect(stdinVerdict(10, 10, 0)).toEqual({ kind: 'duplicate' }); // wholly applied (empty) data
    expect(stdinVerdict(10, 6, 4)).toEqual({ kind: 'duplicate' }); // ends exactly at applied
    expect(stdinVerdict(10, 6, 5)).toEqual({ kind: 'write', skip: 4 }); // one byte new
    expect(stdinVerdict(10, 10, 3)).toEqual({ kind: 'write', skip: 0 });
    expect(stdinVerdict(0, 2 ** 64 - 1, 1)).toEqual({ kind: 'gap' });
  });

  it('caps the queue at 16 MiB', () => {
    expect(STDIN_QUEUE_CAP_BYTES).toBe(16 * 1024 * 1024);
  });
});

describe('decodeBase64Strict: Go StdEncoding', () => {
  it('accepts padded standard base64 and skips CR/LF', () => {
    expect(decodeBase64Strict('cGluZwo=')!.toString()).toBe('ping\n');
    expect(decodeBase64Strict('')!.length).toBe(0);
    expect(decodeBase64Strict('cGlu\r\nZwo=')!.toString()).toBe('ping\n');
    expect(decodeBase64Strict('QQ==')!.toString()).toBe('A');
    expect(decodeBase64Strict('QUI=')!.toString()).toBe('AB');
    expect(decodeBase64Strict('+/+/')).toEqual(Buffer.from([0xfb, 0xff, 0xbf]));
  });

  it.each(['cGluZwo', 'QQ', 'QQ=', 'A===', '====', 'QQ==QQ==', 'Q=Q=', '-_-_', 'cGl uZwo=', 'cGluZwo=\0', '\u0141AAA', 'AA\u00e9A', 'AB=C'])(
    'refuses %j',
    (s) => {
      expect(decodeBase64Strict(s)).toBeUndefined();
    },
  );

  it('agrees with the alphabet-and-padding rule on random strings', () => {
    // The rule as a regular expression: what the decoder must accept, and nothing else.
    const rule = (s: string) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const odd = ['=', '-', '_', ' ', '!', '\u0141', '\u00e9', '\0', '\u0100', '\ud800'];
    let seed = 12345;
    const next = (k: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % k;
    for (let n = 0; n < 20_000; n++) {
      const length = next(4) === 0 ? next(13) : 4 * next(5);
      let s = '';
      for (let i = 0; i < length; i++) {
        const r = next(100);
        s += r < 85 ? alphabet[next(64)] : r < 95 ? '=' : odd[next(odd.length)];
      }
      const decoded = decodeBase64Strict(s);
      expect(decoded !== undefined, JSON.stringify(s)).toBe(rule(s));
      if (decoded) expect(decoded.equals(Buffer.from(s, 'base64'))).toBe(true);
    }
  });
});

describe('parseSignal', () => {
  it.each([
    ['KILL', 'SIGKILL'],
    ['SIGKILL', 'SIGKILL'],
    ['INT', 'SIGINT'],
    ['SIGINT', 'SIGINT'],
    ['HUP', 'SIGHUP'],
    ['SIGHUP', 'SIGHUP'],
    ['TERM', 'SIGTERM'],
    ['', 'SIGTERM'],
    [undefined, 'SIGTERM'],
    ['kill', 'SIGTERM'],
    ['sigkill', 'SIGTERM'],
    ['9', 'SIGTERM'],
    ['QUIT', 'SIGTERM'],
    ['SIGSIGKILL', 'SIGTERM'],
  ])('%j means %s', (name, sig) => {
    expect(parseSignal(name)).toBe(sig);
  });
});
