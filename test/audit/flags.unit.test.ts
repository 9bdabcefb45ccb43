/**
 * The -serve audit flags (for the lead to splice into cmd/claustrum.ts): defaults, `on`/`off`/a path, and every
 * bound at its boundary with the message a user sees.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_SERVE_FLAGS, AuditFlagError, auditServeOptions, DEFAULT_AUDIT_FILE } from '../../src/audit/cli.js';
import { DEFAULT_AUDIT_KEEP, DEFAULT_AUDIT_MAX_BYTES, MAX_AUDIT_KEEP, MIN_AUDIT_MAX_BYTES } from '../../src/audit/writer.js';

const base = { audit: 'on', maxBytes: DEFAULT_AUDIT_MAX_BYTES, keep: DEFAULT_AUDIT_KEEP, full: 'block' };

describe('auditServeOptions', () => {
  it('off by default; on means audit.jsonl in the state directory; a path is resolved against the launcher’s directory', () => {
    const defaults = Object.fromEntries(AUDIT_SERVE_FLAGS.map((f) => [f.name, f.default]));
    expect(defaults).toEqual({ audit: 'off', 'audit-max-bytes': DEFAULT_AUDIT_MAX_BYTES, 'audit-keep': DEFAULT_AUDIT_KEEP, 'audit-full': 'block' });
    expect(auditServeOptions({ ...base, audit: 'off' }, '/run/c')).toBeUndefined();
    expect(auditServeOptions(base, '/run/c')).toEqual({
      path: path.join('/run/c', DEFAULT_AUDIT_FILE),
      maxBytes: DEFAULT_AUDIT_MAX_BYTES,
      keep: DEFAULT_AUDIT_KEEP,
      full: 'block',
    });
    expect(auditServeOptions({ ...base, audit: 'logs/a.jsonl', full: 'drop' }, '/run/c', '/home/u')).toMatchObject({
      path: '/home/u/logs/a.jsonl',
      full: 'drop',
    });
    expect(auditServeOptions({ ...base, audit: './on' }, '/run/c', '/home/u')?.path).toBe('/home/u/on');
  });

  it('refuses bad values at their boundary, naming the flag', () => {
    const bad = (o: Partial<typeof base>) => () => auditServeOptions({ ...base, ...o }, '/run/c');
    expect(bad({ audit: '' })).toThrow(new AuditFlagError('-audit needs a path, "on" or "off"'));
    expect(bad({ full: 'sometimes' })).toThrow(new AuditFlagError('-audit-full "sometimes": use block or drop'));
    expect(bad({ maxBytes: MIN_AUDIT_MAX_BYTES - 1 })).toThrow(/^-audit-max-bytes 32767 is too small/);
    expect(bad({ maxBytes: MIN_AUDIT_MAX_BYTES })).not.toThrow();
    expect(bad({ keep: 0 })).toThrow(`-audit-keep 0 is out of range: 1 to ${MAX_AUDIT_KEEP}`);
    expect(bad({ keep: MAX_AUDIT_KEEP + 1 })).toThrow(/-audit-keep 1000 is out of range/);
    expect(bad({ keep: 1 })).not.toThrow();
    expect(bad({ keep: MAX_AUDIT_KEEP })).not.toThrow();
  });
});
