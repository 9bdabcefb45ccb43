/**
 * Socket activation as systemd does it: a listening Unix socket passed as fd 3 with LISTEN_FDS=1 and LISTEN_PID set
 * to the daemon's own pid. The daemon serves it instead of binding, never passes it (or the variables) to children,
 * leaves the socket file in place at shutdown, and refuses a socket bound to a path other than -socket.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, sandboxes, type Sandbox } from '../helpers/cli.js';
import { BIN, FIXTURES, until } from '../helpers/daemon.js';
import { RpcClient } from '../helpers/rpc.js';
import { processLive } from '../helpers/procfs.js';

interface Activated {
  readonly pid: number;
  stdout: string;
  stderr: string;
}

/**
 * Starts `claustrum -serve -foreground` as systemd would (test/fixtures/socket-activate.mjs): a listener bound at
 * `bindPath` on fd 3, LISTEN_FDS=1, LISTEN_PID its own pid unless `listenPid` says otherwise.
 */
async function activate(sb: Sandbox, bindPath: string, token: string, listenPid?: string): Promise<Activated> {
  const tokenFile = path.join(sb.root, 'token-in');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const args = [
    path.join(FIXTURES, 'socket-activate.mjs'),
    bindPath,
    process.execPath,
    BIN,
    '-serve',
    '-foreground',
    '-no-login-path',
    '-socket',
    sb.socket,
    '-token-file',
    tokenFile,
  ];
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(listenPid !== undefined ? { LISTEN_PID_OVERRIDE: listenPid } : {}) },
  });
  const out = { stdout: '', stderr: '' };
  proc.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const pid = Number(await until(() => /^activated (\d+)$/m.exec(out.stdout)?.[1], 15_000, 'the activated daemon'));
  sb.track(pid, true);
  return Object.assign(out, { pid });
}

describe('socket activation (LISTEN_FDS)', () => {
  const sandbox = sandboxes();

  it('serves the inherited socket, keeps it from children, and leaves the file at shutdown', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const token = `act-${Math.random().toString(36).slice(2)}`;
    const d = await activate(sb, sb.socket, token);
    await until(() => d.stdout.includes('listening on'), 15_000, 'the banner');
    expect(d.stderr).toContain('(socket from systemd)');

    const c = await RpcClient.connect(sb.socket, token);
    expect(await c.call('server.ping')).toEqual({ pong: true });
    const info = await c.call('server.info');
    expect(info).toMatchObject({ socketActivated: true, socket: sb.socket, pid: d.pid });
    // The listener's identity, and what a child holds open.
    const listener = readlinkSync(`/proc/${d.pid}/fd/3`);
    expect(listener).toMatch(/^socket:\[\d+\]$/);
    const script =
      "const fs=require('fs');const out={};for(const f of fs.readdirSync('/proc/self/fd')){try{out[f]=fs.readlinkSync('/proc/self/fd/'+f)}catch{}}" +
      'console.log(JSON.stringify({fds:out,env:Object.keys(process.env).filter(k=>k.startsWith("LISTEN_"))}))';
    await c.call('process.spawn', { id: 'fds', command: process.execPath, args: ['-e', script] });
    await c.waitExit('fds');
    const seen = JSON.parse(c.output('fds').toString());
    expect(Object.values(seen.fds)).not.toContain(listener);
    expect(seen.env).toEqual([]);
    c.destroy();

    process.kill(d.pid, 'SIGTERM');
    await until(() => !processLive(d.pid), 15_000, 'the daemon to exit');
    expect(d.stderr).toContain('[Server] cleanup: closed');
    // systemd's socket stays for the next activation; the daemon's own files are gone.
    expect(existsSync(sb.socket)).toBe(true);
    expect(sb.exists('daemon.lock')).toBe(false);
    expect(sb.exists('daemon.token')).toBe(false);
    unlinkSync(sb.socket);
  });

  it('-status reports a socket-activated daemon', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const d = await activate(sb, sb.socket, 'tok-status');
    await until(() => d.stdout.includes('listening on'), 15_000, 'the banner');
    const r = await runCli(['-status', '-socket', sb.socket, '-token-fd', '3'], { extraFds: ['pipe'], fd3: 'tok-status\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`  socket       ${sb.socket} (from systemd)\n`);
  });

  it('refuses a passed socket bound to another path than -socket, and starts nothing', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const elsewhere = path.join(sb.dir, 'other.sock');
    const d = await activate(sb, elsewhere, 'tok');
    await until(() => !processLive(d.pid), 15_000, 'the refusal');
    expect(d.stderr).toContain(
      `claustrum: the socket systemd passed (fd 3) is bound to ${elsewhere}, not to -socket ${sb.socket}: make ListenStream= and -socket agree`,
    );
    expect(sb.exists('daemon.lock')).toBe(false);
    unlinkSync(elsewhere);
  });

  it('ignores sockets meant for another process (LISTEN_PID differs) and binds -socket itself', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const elsewhere = path.join(sb.dir, 'other.sock');
    const d = await activate(sb, elsewhere, 'tok-own', '1');
    await until(() => d.stdout.includes('listening on'), 15_000, 'the banner');
    const c = await RpcClient.connect(sb.socket, 'tok-own');
    expect((await c.call('server.info')).socketActivated).toBe(false);
    c.destroy();
  });
});
