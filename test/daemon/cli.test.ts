/**
 * The executable's command line: -version, -help, no mode, unknown flags, the default socket.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon.js';
import { runCli, sandboxes } from '../helpers/cli.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const ALL_FLAGS = [
  'serve',
  'stop',
  'bridge',
  'version',
  'socket',
  'foreground',
  'token-file',
  'token-fd',
  'stall-timeout',
  'keep-children',
  'no-login-path',
  'metrics-addr',
  'install',
  'probe-cli',
  'cli-version',
  'cli-dir',
  'cli-url',
  'cli-checksum',
  'cli-zst',
  'cli-keep',
  'max-cli-bytes',
  'cli-download-timeout',
  'run',
];

describe('command line', () => {
  const sandbox = sandboxes();

  it('-version and --version print `claustrum <version> (built <ISO time>)`', async () => {
    for (const flag of ['-version', '--version']) {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      const m = /^claustrum (\S+) \(built (\S+)\)\n$/.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      expect(m![1]).toBe(VERSION);
      expect(new Date(m![2]!).toISOString()).toBe(m![2]);
    }
  });

  it('two modes at once are an error, whichever they are', async () => {
    for (const args of [
      ['-stop', '-version'],
      ['-serve', '-stop'],
      ['-status', '-ps'],
      ['-run', '-kill', 'x'],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^claustrum: -[a-z-]+ and -[a-z-]+ are different modes: give one\n$/);
    }
  });

  it('-help exits 0 and lists every flag, with the defaults that are not zero values', async () => {
    for (const flag of ['-help', '--help', '-h']) {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      for (const name of ALL_FLAGS) expect(r.stdout).toMatch(new RegExp(`^  -${name}( |$)`, 'm'));
      expect(r.stdout).toContain('(default 30s)');
      expect(r.stdout).toContain('(default -1)');
      expect(r.stdout).toContain('(default "$XDG_RUNTIME_DIR/claustrum/rpc.sock, else ~/.claustrum/rpc.sock")');
      expect(r.stdout).toContain('(default "~/.claustrum/cli")');
      expect(r.stdout).toContain('(default 3)');
      // The test-only timings are not operator flags.
      expect(r.stdout).not.toContain('CLAUSTRUM_TEST');
    }
  });

  it('no mode: the message naming the modes that exist, exit 2, no usage', async () => {
    const r = await runCli([]);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        'claustrum: one of -version/-install/-probe-cli/-serve/-bridge/-stop/-restart/-run/-attach/-logs/-status/-ps/-kill/-purge/-service/-audit-verify/-audit-tail is required (claustrum -help lists them)\n',
    });
    const s = await runCli(['-socket', '/tmp/x.sock', '-keep-children']);
    expect(s.code).toBe(2);
  });

  it('an unknown flag prints the error and the usage, exit 2', async () => {
    for (const flag of ['-bogus', '--no-such-flag=1']) {
      const r = await runCli([flag, '-serve']);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const name = flag.replace(/^-+/, '').split('=')[0];
      expect(r.stderr).toMatch(new RegExp(`^flag provided but not defined: -${name}\nUsage: claustrum `));
      for (const f of ALL_FLAGS) expect(r.stderr).toContain(`  -${f}`);
    }
  });

  it('a bad flag value is a usage error too (exit 2), and starts nothing', async () => {
    const sb = sandbox();
    const r = await runCli(['-serve', '-socket', sb.socket, '-stall-timeout', '5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^invalid value "5" for flag -stall-timeout/);
    expect(sb.exists('')).toBe(false);
  });

  it('without -socket the daemon uses $XDG_RUNTIME_DIR/claustrum/rpc.sock', async () => {
    const sb = sandbox();
    const env = { XDG_RUNTIME_DIR: sb.root };
    const expected = path.join(sb.root, 'claustrum', 'rpc.sock');
    const r = await runCli(['-serve'], { env });
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(/\(pid (\d+),/.exec(r.stdout)![1]);
    sb.track(pid, true);
    expect(r.stdout).toContain(`listening on ${expected} (pid`);
    expect((await runCli(['-stop'], { env })).stdout).toBe('stopped\n');
  });

  it('without -socket or $XDG_RUNTIME_DIR it is ~/.claustrum/rpc.sock', async () => {
    const sb = sandbox();
    const env = { XDG_RUNTIME_DIR: '', HOME: sb.root };
    // -stop reports on the default socket without starting anything: nothing is there.
    expect((await runCli(['-stop'], { env })).stdout).toBe('none\n');
    const r = await runCli(['-bridge'], { env, input: '' });
    expect(r.stderr).toBe(`claustrum: dial server: dial unix ${path.join(sb.root, '.claustrum', 'rpc.sock')}: connect: no such file or directory\n`);
  });
});
