/**
 * serveFlagsOf: the flags `-restart` gives the new daemon, read from the running one's command line.
 */
import { describe, expect, it } from 'vitest';
import type { FlagSpec } from '../../src/cli/flags.js';
import { serveFlagsOf } from '../../src/cli/restart.js';
import { CliError } from '../../src/cli/connect.js';

const SPECS: FlagSpec[] = [
  { name: 'serve', kind: 'bool', usage: '', default: false },
  { name: 'foreground', kind: 'bool', usage: '', default: false },
  { name: 'socket', kind: 'string', usage: '', default: '' },
  { name: 'token-file', kind: 'string', usage: '', default: '' },
  { name: 'token-fd', kind: 'int', usage: '', default: -1 },
  { name: 'write-token', kind: 'bool', usage: '', default: true },
  { name: 'log-file', kind: 'string', usage: '', default: '' },
  { name: 'stall-timeout', kind: 'duration', usage: '', default: 30_000 },
  { name: 'keep-children', kind: 'bool', usage: '', default: false },
];

const line = (...args: string[]) => ['/usr/bin/node', '/opt/claustrum/dist/cmd/claustrum.js', ...args];

describe('serveFlagsOf', () => {
  it('keeps the daemon flags, with separate values joined, and drops the mode, the socket, the token and -log-file -', () => {
    const r = serveFlagsOf(
      line('-serve', '-foreground', '-socket', '/s/rpc.sock', '-token-file', '/t', '-stall-timeout', '7s', '--keep-children', '-log-file', '-'),
      SPECS,
    );
    expect(r).toEqual({ flags: ['-stall-timeout=7s', '-keep-children'], unknown: [], foreground: true });
    expect(serveFlagsOf(line('-serve', '-foreground=false', '-keep-children'), SPECS).foreground).toBe(false);
  });

  it('a token read from a descriptor stays off disk: -write-token=false is added unless the line says otherwise', () => {
    expect(serveFlagsOf(line('-serve', '-foreground', '-token-fd', '3'), SPECS).flags).toEqual(['-write-token=false']);
    expect(serveFlagsOf(line('-serve', '-token-fd=3', '-write-token=true'), SPECS).flags).toEqual(['-write-token=true']);
  });

  it('reports flags this build does not know instead of passing them on', () => {
    expect(serveFlagsOf(line('-serve', '-renamed-in-a-later-build=1', '-keep-children'), SPECS)).toEqual({
      flags: ['-keep-children'],
      unknown: ['-renamed-in-a-later-build=1'],
      foreground: false,
    });
  });

  it('refuses a line without the claustrum executable in it rather than restart with no flags', () => {
    expect(() => serveFlagsOf(['/usr/bin/node', '/opt/tool/cli.mjs', '-serve', '-keep-children'], SPECS)).toThrow(CliError);
    expect(() => serveFlagsOf(['/usr/bin/node', '/opt/tool/cli.mjs'], SPECS)).toThrow(/cannot find the claustrum executable/);
  });
});
