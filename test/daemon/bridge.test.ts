/**
 * `-bridge`: a plain stdio ↔ socket relay that adds no auth.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, until } from '../helpers/daemon.js';
import { runCli, sandboxes } from '../helpers/cli.js';

describe('-bridge', () => {
  const sandbox = sandboxes();

  it('relays requests in and replies and stream frames out, without adding auth', async () => {
    const sb = sandbox();
    await sb.start();
    const token = sb.token();
    const bridge = spawn(process.execPath, [BIN, '-bridge', '-socket', sb.socket], { stdio: ['pipe', 'pipe', 'pipe'] });
    sb.track(bridge.pid!);
    let out = '';
    let err = '';
    bridge.stdout.on('data', (d: Buffer) => (out += d.toString()));
    bridge.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => bridge.once('close', (code) => resolve(code)));
    const lines = () =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));

    // No auth injected: a tokenless request is refused.
    bridge.stdin.write('{"jsonrpc":"2.0","id":"noauth","method":"server.ping"}\n');
    await until(() => lines().find((m) => m.id === 'noauth'), 10_000, 'noauth reply');
    expect(lines().find((m) => m.id === 'noauth').error).toEqual({ code: -32001, message: 'Unauthorized: invalid or missing auth token' });

    bridge.stdin.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'process.spawn', params: { id: 'echo', command: 'echo', args: ['via bridge'] }, auth: token })}\n`,
    );
    await until(() => lines().find((m) => m.type === 'stream' && m.processId === 'echo' && m.stream === 'exit'), 10_000, 'exit frame');
    const msgs = lines();
    expect(msgs.find((m) => m.id === 1)).toEqual({ jsonrpc: '2.0', id: 1, result: { success: true } });
    const data = msgs.filter((m) => m.type === 'stream' && m.stream === 'stdout').map((m) => Buffer.from(m.data, 'base64').toString());
    expect(data.join('')).toBe('via bridge\n');
    expect(msgs.find((m) => m.stream === 'exit')).toMatchObject({ processId: 'echo', exitCode: 0 });

    // At stdin EOF it half-closes; the daemon answers what is in flight, closes, and the bridge exits 0.
    bridge.stdin.end(`${JSON.stringify({ jsonrpc: '2.0', id: 'last', method: 'server.ping', auth: token })}\n`);
    expect(await exited).toBe(0);
    expect(lines().find((m) => m.id === 'last')).toEqual({ jsonrpc: '2.0', id: 'last', result: { pong: true } });
    expect(err).toBe('');
    // The daemon is still up.
    const c = await sb.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });

  it('exits 0 when the daemon closes the connection, even with its stdin still open', async () => {
    const sb = sandbox();
    await sb.start();
    const bridge = spawn(process.execPath, [BIN, '-bridge', '-socket', sb.socket], { stdio: ['pipe', 'pipe', 'pipe'] });
    sb.track(bridge.pid!);
    let out = '';
    bridge.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let stdoutEnded = false;
    bridge.stdout.on('end', () => (stdoutEnded = true));
    const exited = new Promise<number | null>((resolve) => bridge.once('exit', (code) => resolve(code)));
    bridge.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server.ping', auth: sb.token() })}\n`);
    await until(() => out.includes('"pong":true'), 10_000, 'pong');
    expect((await sb.stop()).stdout).toBe('stopped\n');
    // An SSH client on the other end must learn that the daemon went away: the bridge ends, stdout reaches EOF.
    await until(() => stdoutEnded, 10_000, 'EOF on the bridge stdout');
    expect(await exited).toBe(0);
    bridge.stdin.destroy();
  });

  it('a one-shot through the bridge: piped request, reply, exit 0', async () => {
    const sb = sandbox();
    await sb.start();
    const r = await runCli(['-bridge', '-socket', sb.socket], {
      input: `${JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'server.ping', auth: sb.token() })}\n`,
    });
    expect(r).toMatchObject({ code: 0, stdout: '{"jsonrpc":"2.0","id":7,"result":{"pong":true}}\n', stderr: '' });
  });

  it('a dial failure prints the Go-shaped error and exits 1', async () => {
    const sb = sandbox();
    const r = await runCli(['-bridge', '-socket', sb.socket], { input: '' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`claustrum: dial server: dial unix ${sb.socket}: connect: no such file or directory\n`);
  });
});
