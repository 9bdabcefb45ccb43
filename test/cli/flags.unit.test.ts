import { describe, expect, it } from 'vitest';
import { FlagError, flagValue, formatUsage, HelpRequested, parseFlags, type FlagSpec } from '../../src/cli/flags.js';

const specs: FlagSpec[] = [
  { name: 'serve', kind: 'bool', usage: 'serve' },
  { name: 'socket', kind: 'string', default: '/x.sock', usage: 'socket path' },
  { name: 'n', kind: 'int', default: 3, usage: 'a count' },
  { name: 'wait', kind: 'duration', default: '30s', usage: 'a duration' },
  { name: 'origin', kind: 'list', usage: 'repeatable' },
];

describe('parseFlags (Go flag semantics)', () => {
  it('takes -flag and --flag, =value and separate values', () => {
    const p = parseFlags(specs, ['--serve', '-socket', '/a', '--n=5', '-wait', '2s', '-origin', 'a', '--origin=b']);
    expect(Object.fromEntries(p.given)).toEqual({ serve: true, socket: '/a', n: 5, wait: 2000, origin: ['a', 'b'] });
  });

  it('lets bools take =false but not a separate value', () => {
    expect(parseFlags(specs, ['-serve=false']).given.get('serve')).toBe(false);
    const p = parseFlags(specs, ['-serve', 'false']);
    expect(p.given.get('serve')).toBe(true);
    expect(p.positionals).toEqual(['false']);
  });

  it('stops at -- and at the first non-flag argument', () => {
    expect(parseFlags(specs, ['-serve', '--', '-n', '1']).positionals).toEqual(['-n', '1']);
    expect(parseFlags(specs, ['cmd', '-serve']).positionals).toEqual(['cmd', '-serve']);
    expect(parseFlags(specs, ['-', 'x']).positionals).toEqual(['-', 'x']);
  });

  it('reports errors as Go does', () => {
    expect(() => parseFlags(specs, ['-nope'])).toThrow(new FlagError('flag provided but not defined: -nope'));
    expect(() => parseFlags(specs, ['-socket'])).toThrow('flag needs an argument: -socket');
    expect(() => parseFlags(specs, ['-n', 'x'])).toThrow('invalid value "x" for flag -n: parse error');
    expect(() => parseFlags(specs, ['-wait', '5'])).toThrow(/invalid value "5" for flag -wait/);
    expect(() => parseFlags(specs, ['---serve'])).toThrow('bad flag syntax: ---serve');
    expect(() => parseFlags(specs, ['-h'])).toThrow(HelpRequested);
    expect(() => parseFlags(specs, ['--help'])).toThrow(HelpRequested);
  });

  it('falls back to defaults', () => {
    const p = parseFlags(specs, []);
    expect(flagValue(specs, p, 'socket')).toBe('/x.sock');
    expect(flagValue(specs, p, 'n')).toBe(3);
    expect(flagValue(specs, p, 'wait')).toBe(30_000);
    expect(flagValue(specs, p, 'serve')).toBe(false);
    expect(flagValue(specs, p, 'origin')).toEqual([]);
  });

  it('prints every flag with its default', () => {
    const u = formatUsage(specs);
    for (const s of specs) expect(u).toContain(`-${s.name}`);
    expect(u).toContain('(default "/x.sock")');
    expect(u).toContain('(default 30s)');
  });
});
