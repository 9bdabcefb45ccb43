import { describe, expect, it } from 'vitest';
import { TokenCheck } from '../../../src/server/rpc/gate.js';

describe('TokenCheck', () => {
  const check = new TokenCheck('s3cret-token');

  it('accepts the exact token only', () => {
    expect(check.matches('s3cret-token')).toBe(true);
    for (const bad of ['', 's3cret-toke', 's3cret-token ', 's3cret-token\n', 'S3cret-token', 'x'.repeat(10_000), '\u0000'])
      expect(check.matches(bad)).toBe(false);
  });

  it('never throws, whatever the length or content', () => {
    for (const s of ['a', 'é'.repeat(1000), '\ud800', 'x'.repeat(1 << 20)]) expect(() => check.matches(s)).not.toThrow();
  });

  it('refuses to be built with an empty token', () => {
    expect(() => new TokenCheck('')).toThrow(/empty/);
  });
});
