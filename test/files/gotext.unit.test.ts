import { describe, expect, it } from 'vitest';
import { goQuote, goSignalText, goString, validUtf8Only } from '../../src/util/gotext.js';

describe('strconv.Quote', () => {
  it.each([
    ['/tmp/d', '"/tmp/d"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['\n\t\r\x07\b\f\v', '"\\n\\t\\r\\a\\b\\f\\v"'],
    ['\x00\x1f\x7f', '"\\x00\\x1f\\x7f"'],
    ['é~ü', '"é~ü"'],
    ['\u00a0\u200b', '"\\u00a0\\u200b"'],
    ['\u{e0001}', '"\\U000e0001"'],
    ['😀', '"😀"'],
  ])('%j quotes as %s', (s, q) => {
    expect(goQuote(s)).toBe(q);
  });
});

describe('bytes into a JSON string, as Go writes them', () => {
  it('keeps valid UTF-8', () => {
    expect(goString(Buffer.from('héllo 😀'))).toBe('héllo 😀');
  });
  it('writes one U+FFFD per byte of a truncated sequence (Node would write one for all)', () => {
    expect(goString(Buffer.from([0x61, 0xe2, 0x82, 0x62]))).toBe('a\uFFFD\uFFFDb');
    expect(goString(Buffer.from([0xf0, 0x9f, 0x98]))).toBe('\uFFFD\uFFFD\uFFFD');
  });
  it('refuses surrogates and overlongs byte by byte', () => {
    expect(goString(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\uFFFD\uFFFD\uFFFD');
    expect(goString(Buffer.from([0xc0, 0xaf]))).toBe('\uFFFD\uFFFD');
    expect(goString(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe('\uFFFD\uFFFD\uFFFD\uFFFD');
  });
  it('can drop invalid bytes instead', () => {
    expect(validUtf8Only(Buffer.from([0x61, 0xff, 0xe2, 0x82, 0xac, 0x62]))).toBe('a€b');
  });
});

describe('signal texts', () => {
  it('match Go', () => {
    expect(goSignalText('SIGKILL')).toBe('killed');
    expect(goSignalText('SIGTERM')).toBe('terminated');
    expect(goSignalText('SIGSEGV')).toBe('segmentation fault');
  });
});
