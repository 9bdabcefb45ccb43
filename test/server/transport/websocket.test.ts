import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES } from '../../../src/protocol/ndjson.js';
import { Daemon, fixture, until } from '../../helpers/daemon.js';
import { WsClient } from '../../helpers/wire-clients.js';

async function startWithWs(extra: string[] = []): Promise<{ d: Daemon; port: number }> {
  const d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0', ...extra] });
  const m = await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'the websocket listener');
  return { d, port: Number(m[1]) };
}

/** A raw upgrade request, so headers (Host, Origin) can be anything; resolves with the status line. */
function rawUpgrade(port: number, headers: Record<string, string>, path = '/rpc'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      const lines = [
        `GET ${path} HTTP/1.1`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      ];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      s.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    let text = '';
    s.on('data', (d) => {
      text += d.toString();
      if (text.includes('\r\n')) {
        resolve(text.split('\r\n')[0]!);
        s.destroy();
      }
    });
    s.on('error', reject);
  });
}

describe('WebSocket transport', () => {
  let d: Daemon;
  let url: string;
  let port: number;
  beforeAll(async () => {
    ({ d, port } = await startWithWs(['-ws-allow-origin', 'https://app.example']));
    url = `ws://127.0.0.1:${port}/rpc`;
  });
  afterAll(() => d.stop());

  it('answers text with text and binary with binary, following the last message', async () => {
    const c = await WsClient.connect(url, d.token);
    expect(await c.call('server.ping')).toEqual({ pong: true });
    c.binary = true;
    expect(await c.call('server.ping')).toEqual({ pong: true });
    c.binary = false;
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect(c.kinds).toEqual(['text', 'binary', 'text']);
    const caps = await c.call('server.capabilities');
    expect(caps.features).toContain('transport.websocket');
    c.ws.close();
  });

  it('streams frames of a spawned process (base64 over text, raw bytes over binary)', async () => {
    const t = await WsClient.connect(url, d.token);
    await t.call('process.spawn', { id: 'w1', command: 'sh', args: ['-c', 'printf hello; printf oops >&2; exit 4'] });
    expect((await t.waitExit('w1')).exitCode).toBe(4);
    expect(t.output('w1').toString()).toBe('hello');
    expect(typeof t.frames('w1')[0].data).toBe('string');
    const b = await WsClient.connect(url, d.token);
    b.binary = true;
    await b.call('process.reattach', { id: 'w1', fromSeq: 0 });
    expect(b.output('w1').toString()).toBe('hello');
    expect(b.output('w1', 'stderr').toString()).toBe('oops');
    expect(typeof b.frames('w1')[0].data).not.toBe('string');
    // t lost the stream to b: its whole connection was closed, as on the Unix socket.
    await t.closed;
    b.ws.close();
  });

  it('requires auth on every request, server.shutdown included', async () => {
    const c = await WsClient.connect(url, d.token);
    expect((await c.request('server.ping', undefined, { auth: 'nope' })).error).toEqual({
      code: -32001,
      message: 'Unauthorized: invalid or missing auth token',
    });
    const r = await c.request('server.shutdown', undefined, { auth: undefined });
    expect(r.error.code).toBe(-32001);
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect(d.alive).toBe(true);
    c.ws.close();
  });

  it('refuses a foreign Origin and a foreign Host with 403, and serves only /rpc', async () => {
    await expect(WsClient.connect(url, d.token, { origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
    const ok = await WsClient.connect(url, d.token, { origin: 'https://app.example' });
    expect(await ok.call('server.ping')).toEqual({ pong: true });
    ok.ws.close();
    expect(await rawUpgrade(port, { Host: 'evil.example' })).toBe('HTTP/1.1 403 Forbidden');
    expect(await rawUpgrade(port, { Host: `127.0.0.1:${port}` })).toBe('HTTP/1.1 101 Switching Protocols');
    expect(await rawUpgrade(port, { Host: `localhost:${port}` })).toBe('HTTP/1.1 101 Switching Protocols');
    expect(await rawUpgrade(port, { Host: `127.0.0.1:${port}` }, '/other')).toBe('HTTP/1.1 404 Not Found');
  });

  it('caps a message at the request line cap', async () => {
    const c = await WsClient.connect(url, d.token);
    const msg = (n: number) => {
      const base = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'server.ping', auth: d.token, params: { pad: '' } });
      return base.replace('"pad":""', `"pad":"${'x'.repeat(n - base.length)}"`);
    };
    c.ws.send(msg(MAX_LINE_BYTES));
    expect((await c.waitFor((m) => m.id === 9)).result).toEqual({ pong: true });
    c.ws.send(msg(MAX_LINE_BYTES + 1));
    expect((await c.closed).code).toBe(1009);
  });

  it('stops with an authenticated server.shutdown', async () => {
    const { d: d2, port: p2 } = await startWithWs();
    const c = await WsClient.connect(`ws://127.0.0.1:${p2}/rpc`, d2.token);
    expect(await c.call('server.shutdown')).toEqual({ ok: true });
    expect(await d2.exited).toBe(0);
    await d2.stop();
  });
});

describe('WebSocket flow control', () => {
  it('drops a stalled receiver after the stall timeout and lets the child run on', async () => {
    const { d, port } = await startWithWs(['-stall-timeout', '1s']);
    try {
      const c = await WsClient.connect(`ws://127.0.0.1:${port}/rpc`, d.token);
      await c.call('process.spawn', { id: 'fl', ...fixture('flood', String(64 * 1024 * 1024)) });
      // Stop reading: the daemon's backlog to this socket rises past the high-water mark and makes no progress.
      (c.ws as unknown as { _socket: net.Socket })._socket.pause();
      await until(() => d.log().includes('made no progress for 1s'), 20_000, 'the stall log line');
      const other = await WsClient.connect(`ws://127.0.0.1:${port}/rpc`, d.token);
      const r = await other.call('process.reattach', { id: 'fl', fromSeq: 0 });
      expect(r.found).toBe(true);
      await other.waitExit('fl');
      other.ws.close();
    } finally {
      await d.stop();
    }
  });
});
