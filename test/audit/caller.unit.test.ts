/**
 * Caller identity validation: the boundaries of every bound, and session.identify's once-per-connection rule.
 */
import { describe, expect, it } from 'vitest';
import { identify, MAX_CALLER_FIELDS, MAX_CALLER_NAME_BYTES, MAX_CALLER_VALUE_BYTES, parseCaller } from '../../src/audit/caller.js';

const base = { driver: 'windmill', identity: 'alice@example.com' };

describe('parseCaller', () => {
  it('accepts driver, identity, runId and other short string members', () => {
    const r = parseCaller({ ...base, runId: 'job_948f93', host: 'ci-7' });
    expect(r.ok).toBe(true);
    if (r.ok) expect({ ...r.caller }).toEqual({ ...base, runId: 'job_948f93', host: 'ci-7' });
  });

  it('needs driver and identity', () => {
    expect(parseCaller({ identity: 'a' })).toEqual({ ok: false, reason: 'driver is required' });
    expect(parseCaller({ driver: 'a' })).toEqual({ ok: false, reason: 'identity is required' });
  });

  it(`takes values of exactly ${MAX_CALLER_VALUE_BYTES} bytes and refuses one byte more`, () => {
    expect(parseCaller({ ...base, identity: 'é'.repeat(MAX_CALLER_VALUE_BYTES / 2) }).ok).toBe(true);
    expect(parseCaller({ ...base, identity: `${'é'.repeat(MAX_CALLER_VALUE_BYTES / 2 - 1)}abc` }).ok).toBe(false);
    expect(parseCaller({ ...base, identity: 'x'.repeat(MAX_CALLER_VALUE_BYTES + 1) })).toEqual({
      ok: false,
      reason: `identity is ${MAX_CALLER_VALUE_BYTES + 1} bytes; at most ${MAX_CALLER_VALUE_BYTES} are allowed`,
    });
  });

  it(`takes ${MAX_CALLER_FIELDS} members and refuses ${MAX_CALLER_FIELDS + 1}`, () => {
    const extra = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, 'v']));
    expect(parseCaller({ ...base, ...extra(MAX_CALLER_FIELDS - 2) }).ok).toBe(true);
    expect(parseCaller({ ...base, ...extra(MAX_CALLER_FIELDS - 1) }).ok).toBe(false);
  });

  it(`takes names of ${MAX_CALLER_NAME_BYTES} bytes, refuses longer ones and names that are not identifiers`, () => {
    expect(parseCaller({ ...base, ['n'.repeat(MAX_CALLER_NAME_BYTES)]: 'v' }).ok).toBe(true);
    for (const name of ['n'.repeat(MAX_CALLER_NAME_BYTES + 1), '1abc', 'a-b', '', '__proto__x!']) {
      expect(parseCaller({ ...base, [name]: 'v' }).ok, name).toBe(false);
    }
  });

  it('refuses non-strings, empty strings, control characters and non-objects, with a reason', () => {
    expect(parseCaller({ ...base, runId: 5 })).toEqual({ ok: false, reason: 'runId must be a string' });
    expect(parseCaller({ ...base, runId: '' })).toEqual({ ok: false, reason: 'runId must not be empty' });
    expect(parseCaller({ ...base, identity: 'a\nb' })).toEqual({ ok: false, reason: 'identity contains a control character' });
    expect(parseCaller({ ...base, identity: 'a\u0085b' }).ok).toBe(false);
    for (const v of [null, 'alice', ['a'], 5, new Uint8Array(2)]) expect(parseCaller(v).ok).toBe(false);
  });

  it('a __proto__ member can reach no prototype', () => {
    const r = parseCaller(JSON.parse('{"driver":"d","identity":"i","__proto__":"x"}'));
    // `__proto__` is not an identifier by our rule (it starts with _), so it is refused outright.
    expect(r.ok).toBe(false);
  });
});

describe('identify', () => {
  it('declares a caller once per connection', () => {
    const first = identify({ caller: base }, undefined);
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(identify({ caller: { driver: 'x', identity: 'y' } }, first.caller)).toEqual({ ok: false, error: 'callerAlreadyDeclared' });
  });

  it('reads params as the daemon reads every key (case-insensitively) and refuses what is not a caller', () => {
    expect(identify({ Caller: base }, undefined).ok).toBe(true);
    expect(identify(undefined, undefined)).toEqual({ ok: false, error: 'invalidParams' });
    expect(identify([], undefined)).toEqual({ ok: false, error: 'invalidParams' });
    expect(identify({}, undefined)).toEqual({ ok: false, error: 'invalidCaller', reason: 'caller is required' });
    expect(identify({ caller: { driver: 'x' } }, undefined)).toEqual({ ok: false, error: 'invalidCaller', reason: 'identity is required' });
  });
});
