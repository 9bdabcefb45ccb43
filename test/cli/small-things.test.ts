/**
 * What a new user tripped on, each checked against the real executable: flags that do not apply, per-mode help,
 * single-dash spelling, socket paths that cannot work, the login-shell probe at start, a second -serve that says
 * what it replaces, the WebSocket URL in the banner, the metrics warning, and the log format and file.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BANNER, runCli, sandboxes } from '../helpers/cli.js';
import { Daemon, FIXTURES, until } from '../helpers/daemon.js';
import { freePort } from '../helpers/http.js';
import { processLive } from '../helpers/procfs.js';

const MODES = ['version', 'install', 'probe-cli', 'serve', 'bridge', 'stop', 'run', 'status', 'ps', 'kill', 'purge', 'service'];

describe('modes and flags', () => {
  it('a flag given with a mode it does not apply to is an error (exit 2), naming the modes it goes with', async () => {
    for (const [args, message] of [
      [['-status', '-keep-children'], '-keep-children does not apply to -status (it goes with -serve, -service)'],
      [['-ps', '-signal', 'KILL'], '-signal does not apply to -ps (it goes with -kill)'],
      [['-stop', '-json'], '-json does not apply to -stop (it goes with -status, -ps, -kill, -purge, -service, -audit-verify)'],
      [
        ['-version', '-socket', '/tmp/x.sock'],
        '-socket does not apply to -version (it goes with -serve, -stop, -restart, -bridge, -run, -attach, -logs, -status, -ps, -kill, -purge, -service, -audit-verify, -audit-tail)',
      ],
      [['-serve', '-force'], '-force does not apply to -serve (it goes with -purge)'],
      [['-install', '-cli-version', '1', '-drain-timeout', '1s'], '-drain-timeout does not apply to -install (it goes with -serve, -service)'],
      [['-status', 'extra'], '-status takes no arguments, but got "extra"'],
      [['-serve', '-token-file', '/x', '-token-fd', '3'], '-token-file and -token-fd: give one token source'],
      [['-serve', '-log-format', 'xml'], '-log-format xml: want text or json'],
      [['-serve', '-log-file', '-'], '-log-file - (stderr) needs -foreground: a detached daemon has no terminal; give a file path'],
      [['-serve', '-write-token=false'], '-write-token=false with a generated token: nobody could learn it; give -token-fd or -token-file'],
    ] as const) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(`claustrum: ${message}`);
    }
  });

  it('every mode has its own -help with only its flags; -help lists them all and CLAUSTRUM_LOG_LEVEL', async () => {
    for (const mode of MODES) {
      const r = await runCli([`-${mode}`, ...(mode === 'kill' || mode === 'probe-cli' || mode === 'service' ? ['x'] : []), '-help']);
      expect(r.code, mode).toBe(0);
      expect(r.stdout, mode).toMatch(new RegExp(`^Usage: claustrum -${mode}`));
      expect(r.stdout, mode).toContain(`  -${mode}`);
    }
    const serve = (await runCli(['-serve', '-help'])).stdout;
    expect(serve).toContain('  -foreground\n');
    expect(serve).toContain('  -drain-timeout duration\n');
    expect(serve).not.toContain('  -json');
    expect(serve).toContain('CLAUSTRUM_LOG_LEVEL');
    const ps = (await runCli(['-ps', '-help'])).stdout;
    expect(ps).toContain('  -json\n');
    expect(ps).not.toContain('  -foreground');
    const all = (await runCli(['-help'])).stdout;
    expect(all).toMatch(/\nEnvironment:\n {2}CLAUSTRUM_LOG_LEVEL\n\s+\tthe daemon's log threshold: debug, info, warn or error/);
  });

  it('spells flags with a single dash, as -help does, in help and in errors', async () => {
    const texts = [(await runCli(['-help'])).stdout, ...(await Promise.all(MODES.map(async (m) => (await runCli([`-${m}`, '-nope'])).stderr)))];
    texts.push((await runCli([])).stderr, (await runCli(['-serve', '-token-fd', '99', '-socket', '/tmp/cl-none/x.sock'])).stderr);
    for (const t of texts) {
      // Other programs' flags: the agent CLI's `--version` (-probe-cli runs it), `systemctl --user` (-service).
      const doubled = [...t.matchAll(/(^|[\s(`'"])--([a-z][a-z-]*)/g)].map((m) => m[2]).filter((f) => f !== 'version' && f !== 'user');
      expect(doubled, t.slice(0, 200)).toEqual([]);
    }
  });
});

describe('socket paths that cannot work', () => {
  const sandbox = sandboxes();

  it('/proc/x/rpc.sock fails at once (no recursive mkdir spinning), for -serve and for -run', async () => {
    for (const mode of [['-serve'], ['-run', '--', 'true']]) {
      const r = await runCli([mode[0]!, '-socket', '/proc/x/rpc.sock', ...mode.slice(1)], { timeoutMs: 15_000 });
      expect(r.code, mode[0]).toBe(mode[0] === '-run' ? 125 : 1);
      expect(r.stderr).toBe('claustrum: socket path /proc/x/rpc.sock: cannot create /proc/x: no such file or directory\n');
    }
  });

  it('a file where a directory should be says "not a directory"', async () => {
    const r = await runCli(['-serve', '-socket', '/etc/hostname/rpc.sock']);
    expect(r).toMatchObject({ code: 1, stderr: 'claustrum: socket path /etc/hostname/rpc.sock: /etc/hostname is not a directory\n' });
    const s = await runCli(['-status', '-socket', '/etc/hostname/rpc.sock']);
    expect(s.code).toBe(3);
  });

  it('an over-long path is refused before anything is created, by every mode', async () => {
    const sb = sandbox();
    const long = path.join(sb.root, 'made', `${'y'.repeat(110)}.sock`);
    for (const args of [['-serve'], ['-run', '--', 'true'], ['-status'], ['-purge']]) {
      const r = await runCli([args[0]!, '-socket', long, ...args.slice(1)]);
      expect(r.code, args[0]).toBe(args[0] === '-status' ? 4 : 1);
      expect(r.stderr).toContain(`socket path ${long} is ${Buffer.byteLength(long)} bytes; the limit is 107`);
    }
    expect(sb.exists('../made')).toBe(false);
  });
});

describe('-serve', () => {
  const sandbox = sandboxes();

  it('starts the login-shell PATH probe when the daemon starts, before any spawn', async () => {
    const sb = sandbox();
    await sb.start([], { env: { SHELL: path.join(FIXTURES, 'fake-login-shell.sh'), HOME: sb.root } });
    // No process was spawned: the probe ran on its own.
    await until(
      () => {
        try {
          return readFileSync(path.join(sb.root, 'login-shell-runs'), 'utf8') === 'run\n';
        } catch {
          return false;
        }
      },
      10_000,
      'the probe at start',
    );
  });

  it('a daemon stopped while its login-shell probe hangs ends the probe: no login shell outlives it', async () => {
    const sb = sandbox();
    await sb.start([], { env: { SHELL: path.join(FIXTURES, 'hanging-login-shell.sh'), HOME: sb.root } });
    const shell = await until(
      () => {
        try {
          return Number(readFileSync(path.join(sb.root, 'login-shell.pid'), 'utf8'));
        } catch {
          return undefined;
        }
      },
      10_000,
      'the probe at start',
    );
    sb.track(shell);
    expect(processLive(shell)).toBe(true);
    expect((await sb.stop()).stdout).toBe('stopped\n');
    await until(() => !processLive(shell), 10_000, 'the hanging shell killed');
  });

  it('a second -serve says what it takes over; the processes keep running and are adopted, with or without -keep-children', async () => {
    for (const keep of [false, true]) {
      const sb = sandbox();
      const first = await sb.start(keep ? ['-keep-children', '-no-login-path'] : ['-no-login-path']);
      const c = await sb.client();
      const kids: number[] = [];
      for (const id of ['a', 'b']) {
        const pid = (await c.call('process.spawn', { id, command: 'sleep', args: ['300'], wantPid: true })).pid as number;
        sb.track(pid);
        kids.push(pid);
        await until(() => sb.exists(`children/${pid}.json`), 10_000, 'the record');
      }
      const r = await sb.serve(['-no-login-path']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        new RegExp(
          `^claustrum: taking over from the daemon on ${sb.socket} \\(pid ${first.pid}, instance ${first.instanceId}, up \\S+\\): its 2 running process\\(es\\) keep running and are handed over\\n$`,
        ),
      );
      expect(kids.map(processLive)).toEqual([true, true]);
      const after = await sb.client();
      const listed = (await after.call('process.list', {})).processes;
      expect(listed.map((p: { id: string; pid: number; running: boolean; restarts: number }) => [p.id, p.pid, p.running, p.restarts])).toEqual([
        ['a', kids[0], true, 1],
        ['b', kids[1], true, 1],
      ]);
    }
  });

  it('prints the WebSocket URL in the banner, detached and in the foreground', async () => {
    const sb = sandbox();
    const r = await runCli(['-serve', '-socket', sb.socket, '-ws-addr', '127.0.0.1:0']);
    expect(r.code, r.stderr).toBe(0);
    const [banner, ws] = r.stdout.trimEnd().split('\n');
    const m = BANNER.exec(banner!);
    expect(m).not.toBeNull();
    sb.track(Number(m![2]), true);
    expect(ws).toMatch(/^WebSocket: ws:\/\/127\.0\.0\.1:\d+\/rpc$/);
    const d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0'] });
    try {
      expect(d.stdout).toMatch(/\nWebSocket: ws:\/\/127\.0\.0\.1:\d+\/rpc\n/);
    } finally {
      await d.stop();
    }
  });

  it('warns when the unauthenticated metrics listener binds every interface', async () => {
    const sb = sandbox();
    const port = await freePort();
    const r = await sb.serve(['-metrics-addr', `0.0.0.0:${port}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `claustrum: warning: -metrics-addr 0.0.0.0:${port} listens on every interface, and /metrics, /healthz, /readyz and /info have no authentication; bind a loopback or private address unless the network is yours\n`,
    );
  });

  it('-log-format json: one JSON object per line', async () => {
    const d = await Daemon.start({ args: ['-log-format', 'json'] });
    try {
      await (await d.client()).call('server.ping');
      await until(() => d.stderr.includes('New connection'), 10_000, 'a connection logged');
      const lines = d.stderr.trimEnd().split('\n');
      expect(lines.length).toBeGreaterThan(2);
      for (const line of lines) {
        const o = JSON.parse(line);
        expect(Object.keys(o)).toEqual(['time', 'level', 'component', 'msg']);
        expect(new Date(o.time).toISOString()).toBe(o.time);
        expect(['debug', 'info', 'warn', 'error']).toContain(o.level);
      }
      expect(lines.map((l) => JSON.parse(l).msg)).toContain(`listening on ${d.socket}`);
    } finally {
      await d.stop();
    }
  });

  it('-log-file: "-" is stderr in the foreground; a path takes the log, detached or not, and -status names it', async () => {
    const dash = await Daemon.start({ args: ['-log-file', '-'] });
    try {
      expect(dash.stderr).toContain('[Server] listening on');
    } finally {
      await dash.stop();
    }
    const sb = sandbox();
    const file = path.join(sb.root, 'daemon.log');
    const fg = await Daemon.start({ args: ['-log-file', file] });
    try {
      expect(dash.stderr).not.toBe('');
      expect(fg.stderr).toBe('');
      expect(readFileSync(file, 'utf8')).toContain('[Server] listening on');
    } finally {
      await fg.stop();
    }
    const other = path.join(sb.root, 'detached.log');
    await sb.start(['-log-file', other]);
    expect(readFileSync(other, 'utf8')).toContain('[Server] listening on');
    expect(sb.exists('remote-server.log')).toBe(false);
    const info = JSON.parse((await runCli(['-status', '-json', '-socket', sb.socket])).stdout).info;
    expect(info.log).toBe(other);
  });
});
