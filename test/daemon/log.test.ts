/**
 * remote-server.log: mode, rotation, line format, threshold, no token, and a symlinked log declined.
 */
import { lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/cli.js';
import { RpcClient } from '../helpers/rpc.js';

const LINE = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} (DEBUG|INFO |WARN |ERROR) \[[\w.]+\] \S.*$/;

describe('remote-server.log', () => {
  const sandbox = sandboxes();

  it('is mode 0600, rotated to .old at the next start, and every line has the reference shape', async () => {
    const sb = sandbox();
    const first = await sb.start();
    expect(statSync(sb.file('remote-server.log')).mode & 0o777).toBe(0o600);
    expect((await sb.stop()).stdout).toBe('stopped\n');
    const firstLog = sb.log();
    expect(firstLog).toContain(`instance ${first.instanceId}`);

    const second = await sb.start();
    expect(sb.read('remote-server.log.old')).toBe(firstLog);
    expect(sb.log()).toContain(`instance ${second.instanceId}`);
    expect(sb.log()).not.toContain(first.instanceId);
    expect(statSync(sb.file('remote-server.log')).mode & 0o777).toBe(0o600);

    for (const line of firstLog.trimEnd().split('\n')) expect(line).toMatch(LINE);
    expect(firstLog).toMatch(/DEBUG \[Server\] New connection from: unix#1\n/);
    expect(firstLog).toMatch(/INFO {2}\[Server\] listening on /);
  });

  it('CLAUSTRUM_LOG_LEVEL=warn hides INFO and DEBUG lines', async () => {
    const sb = sandbox();
    await sb.start([], { env: { CLAUSTRUM_LOG_LEVEL: 'warn' } });
    const c = await sb.client();
    await c.call('process.spawn', { id: 'e', command: 'true' });
    await c.waitExit('e');
    await c.request('process.spawn', { id: 'bad', command: '/nonexistent/xyz' }); // an ERROR line
    await c.request('server.ping', undefined, { auth: 'wrong' }); // an unauthorized request
    expect((await sb.stop()).stdout).toBe('stopped\n');
    const log = sb.log();
    expect(log).toContain('ERROR [process.Manager] Failed to start process bad: fork/exec /nonexistent/xyz: no such file or directory');
    expect(log).not.toMatch(/ (INFO |DEBUG) /);
    for (const line of log.trimEnd().split('\n')) expect(line).toMatch(/ (WARN |ERROR) /);
  });

  it('the default level logs connections, spawns with pid, exits with code and signal, and unauthorized requests by method and id', async () => {
    const sb = sandbox();
    await sb.start();
    const c = await sb.client();
    const { pid } = await c.call('process.spawn', { id: 'sl', command: 'sleep', args: ['60'], wantPid: true });
    await c.call('process.kill', { id: 'sl', signal: 'KILL' });
    await c.waitExit('sl');
    await c.request('process.spawn', { id: 'x' }, { auth: 'nope', id: 'req-9' });
    expect((await sb.stop()).stdout).toBe('stopped\n');
    const log = sb.log();
    expect(log).toContain(`INFO  [process.Manager] Process sl started, PID=${pid}, command=sleep`);
    expect(log).toContain('INFO  [process.Manager] Process sl exited with code -1, terminated by SIGKILL, signalled at client request');
    expect(log).toContain('[Server] Unauthorized request: method=process.spawn, id="req-9"');
    expect(log).toMatch(/DEBUG \[Server\] Connection closed: unix#2/);
  });

  it('never contains the token, after a session full of bad requests', async () => {
    const sb = sandbox();
    const token = `tok-${Math.random().toString(36).slice(2)}-secret`;
    await sb.start(['-token-fd', '0', '-write-token'], { input: `${token}\n` });
    const c = await RpcClient.connect(sb.socket, token);
    const wrongs = [token.slice(0, -1), `${token}x`, token.toUpperCase(), '', null, `Bearer ${token}`, ` ${token}`];
    for (const auth of wrongs) await c.request('process.spawn', { id: 'a', command: 'true' }, { auth });
    // Mistyped auth members are parse errors; the token inside them must not be echoed to the log either.
    c.sendRaw(`{"jsonrpc":"2.0","id":"obj","method":"server.ping","auth":{"t":"${token}"}}\n`);
    c.sendRaw(`{"jsonrpc":"2.0","id":"arr","method":"server.ping","auth":["${token}"]}\n`);
    c.sendRaw(`{"jsonrpc":"2.0","id":"raw","method":"nope.nope","auth":"${token}"}\n`);
    c.sendRaw(`not json ${token}\n`);
    c.sendRaw(`{"jsonrpc":"1.0","id":"v","method":"server.ping","auth":"${token}"}\n`);
    await c.request('process.spawn', { id: 'p', command: `/nonexistent/${token}` });
    await c.request('process.spawn', { id: 'q', command: 'true', env: { SECRET: token } });
    await c.waitExit('q');
    c.destroy();
    expect((await sb.stop()).stdout).toBe('stopped\n');
    const log = sb.log();
    expect(log).toContain('Unauthorized request: method=process.spawn');
    const withoutEchoedCommand = log.replaceAll(`/nonexistent/${token}`, '<cmd>');
    expect(withoutEchoedCommand).not.toContain(token);
  });

  it('a symlinked remote-server.log is declined: the target is untouched and the daemon serves without a log', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const target = path.join(sb.root, 'precious.txt');
    writeFileSync(target, 'do not touch\n', { mode: 0o644 });
    symlinkSync(target, sb.file('remote-server.log'));
    const r = await sb.serve();
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`claustrum: warning: running without a log file: ${sb.file('remote-server.log')} is a symlink; not following it\n`);
    expect(readFileSync(target, 'utf8')).toBe('do not touch\n');
    expect(statSync(target).mode & 0o777).toBe(0o644);
    expect(lstatSync(sb.file('remote-server.log')).isSymbolicLink()).toBe(true);
    expect(sb.exists('remote-server.log.old')).toBe(false);
    const c = await sb.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect((await sb.stop()).stdout).toBe('stopped\n');
    expect(readFileSync(target, 'utf8')).toBe('do not touch\n');
  });
});
