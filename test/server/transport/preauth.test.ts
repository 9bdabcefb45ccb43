/**
 * Nothing before authentication grows faster than its input, on any listener (issue 10, point 3; point 9):
 * MessagePack extensions refused before decoding, the echoed id bounded, per-listener caps and a deadline for
 * connections that have not authenticated, and a reply that cannot be encoded costing one reply, not the connection.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ID_JSON_CHARS } from '../../../src/server/rpc/request.js';
import { WS_MAX_UNAUTHENTICATED } from '../../../src/server/transport/websocket.js';
import { Daemon, until } from '../../helpers/daemon.js';
import { MsgpackClient, packr, WsClient } from '../../helpers/wire-clients.js';

describe('MessagePack extensions', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('a request with a record or shared-reference extension is a parse error, decoded by nothing', async () => {
    const c = await MsgpackClient.connect(d.socket, d.token);
    // The first byte picks the format: a request first, so what follows is read as MessagePack.
    expect(await c.call('server.ping')).toEqual({ pong: true });
    // msgpackr's structured-clone encoding of one object referenced three times: records (0xd4 'r') and pointers
    // (0xd6 'p'). Decoders that honour them can be made to expand a small message into gigabytes.
    const bomb = Buffer.from('d4724093a76a736f6e727063a26964a66d6574686f64a3322e3093d66900000001d4724191a16101d67000000001d67000000001a178', 'hex');
    c.sendRaw(bomb);
    // Its top-level items are refused one by one (an extension, then values that are not maps): parse errors only.
    expect(await c.waitFor((m) => m.error?.code === -32700)).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    expect(await c.call('server.ping')).toEqual({ pong: true });
    const before = c.messages.filter((m) => m.error?.code === -32700).length;
    // A bigint extension as an id: refused the same way, and the replies pipelined behind it still come.
    const big = Buffer.concat([
      Buffer.from([0x84]),
      packr.pack('jsonrpc'),
      packr.pack('2.0'),
      packr.pack('id'),
      Buffer.from('c70942000000000000000001', 'hex'),
      packr.pack('method'),
      packr.pack('server.ping'),
      packr.pack('auth'),
      packr.pack(d.token),
    ]);
    c.sendRaw(big);
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect(c.messages.filter((m) => m.error?.code === -32700)).toHaveLength(before + 1);
  });

  it('undefined (fixext 1 of type 0, as JavaScript encoders write it) is still accepted', async () => {
    const c = await MsgpackClient.connect(d.socket, d.token);
    const msg = Buffer.concat([
      Buffer.from([0x85]),
      packr.pack('jsonrpc'),
      packr.pack('2.0'),
      packr.pack('id'),
      packr.pack(7),
      packr.pack('method'),
      packr.pack('process.list'),
      packr.pack('params'),
      Buffer.from([0x81]),
      packr.pack('unused'),
      Buffer.from([0xd4, 0, 0]),
      packr.pack('auth'),
      packr.pack(d.token),
    ]);
    c.sendRaw(msg);
    const reply = await c.waitFor((m) => m.id === 7);
    expect(reply.result.processes).toEqual([]);
  });
});

describe('the echoed id', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it(`is echoed up to ${MAX_ID_JSON_CHARS} characters of JSON; longer, the request is a parse error`, async () => {
    const c = await d.client();
    const fits = 'x'.repeat(MAX_ID_JSON_CHARS - 2); // the quotes make it exactly the limit
    expect((await c.request('server.ping', undefined, { id: fits })).result).toEqual({ pong: true });
    c.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id: `${fits}x`, method: 'server.ping', auth: d.token })}\n`);
    await c.waitFor((m) => m.error?.code === -32700);
    // The re-encoding grows `1e20` fivefold: a 20 KB line would echo 88 K characters. Refused, not built.
    c.sendRaw(`{"jsonrpc":"2.0","id":[${Array(4000).fill('1e20').join(',')}],"method":"server.ping","auth":"${d.token}"}\n`);
    await until(() => c.messages().filter((m) => m.error?.code === -32700).length === 2, 10_000, 'the second parse error');
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });
});

async function withWs(env: NodeJS.ProcessEnv = {}): Promise<{ d: Daemon; port: number }> {
  const d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0'], env });
  const m = await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'the websocket listener');
  return { d, port: Number(m[1]) };
}

describe('connections that have not authenticated', () => {
  let d: Daemon;
  let port: number;
  let e: { d: Daemon; port: number };
  beforeAll(async () => {
    ({ d, port } = await withWs());
    e = await withWs({ CLAUSTRUM_TEST_AUTH_DEADLINE_MS: '1500' });
  });
  afterAll(async () => {
    await d.stop();
    await e.d.stop();
  });

  it(`are capped at ${WS_MAX_UNAUTHENTICATED} per WebSocket listener; the owner on the Unix socket does not notice`, async () => {
    const url = `ws://127.0.0.1:${port}/rpc`;
    const strangers = await Promise.all(Array.from({ length: WS_MAX_UNAUTHENTICATED }, () => WsClient.connect(url, 'wrong')));
    const extra = await WsClient.connect(url, 'wrong');
    expect((await extra.closed).code).toBe(1006);
    const owner = await d.client();
    expect(await owner.call('server.ping')).toEqual({ pong: true });
    // One that authenticates leaves the count; its place can be taken.
    expect((await strangers[0]!.request('server.ping', undefined, { auth: d.token })).result).toEqual({ pong: true });
    const friend = await WsClient.connect(url, d.token);
    expect(await friend.call('server.ping')).toEqual({ pong: true });
    expect(d.log()).toMatch(/refusing ws#\d+ .*: 32 ws connections have not authenticated yet/);
    for (const s of strangers) s.ws.terminate();
    friend.ws.terminate();
  });

  it('are closed at their deadline; an authenticated one stays, on either listener', async () => {
    const { d, port } = e;
    const url = `ws://127.0.0.1:${port}/rpc`;
    const idle = await WsClient.connect(url, 'wrong');
    const refused = await WsClient.connect(url, 'wrong');
    expect((await refused.request('server.ping')).error.code).toBe(-32001);
    const authed = await WsClient.connect(url, d.token);
    await authed.call('server.ping');
    const unixIdle = await new Promise<net.Socket>((resolve) => {
      const s = net.connect(d.socket, () => resolve(s));
    });
    const unixClosed = new Promise<void>((resolve) => unixIdle.once('close', () => resolve()));
    expect((await idle.closed).code).toBe(1006);
    expect((await refused.closed).code).toBe(1006);
    await unixClosed;
    expect(d.log()).toMatch(/not authenticated within 1\.5s/);
    expect(await authed.call('server.ping')).toEqual({ pong: true });
    authed.ws.terminate();
  });
});
