import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/util/duration.js';

describe('parseDuration (Go time.ParseDuration)', () => {
  it.each([
    ['30s', 30_000],
    ['2s', 2000],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
    ['0', 0],
    ['100us', 0.1],
    ['-1s', -1000],
    ['1h2m3s4ms', 3_723_004],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', '30', 's', '1x', '1 s', '1s2', '.s'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/time: (invalid duration|unknown unit)/);
  });
});

describe('formatDuration', () => {
  it.each([
    [30_000, '30s'],
    [300_000, '5m0s'],
    [1500, '1.5s'],
    [250, '250ms'],
    [3_600_000, '1h0m0s'],
  ])('%d ms prints as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
