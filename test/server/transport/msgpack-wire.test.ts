import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES } from '../../../src/protocol/ndjson.js';
import { Daemon, fixture } from '../../helpers/daemon.js';
import { b64, RpcClient } from '../../helpers/rpc.js';
import { MsgpackClient, packr } from '../../helpers/wire-clients.js';

describe('MessagePack on the Unix socket', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());
  const client = () => MsgpackClient.connect(d.socket, d.token);

  it('is chosen by the first byte and answers in MessagePack', async () => {
    const c = await client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
    const caps = await c.call('server.capabilities');
    expect(caps.features).toEqual(expect.arrayContaining(['wire.msgpack', 'process.list', 'process.stats', 'process.stdin.eof']));
    expect(caps.methods.slice(-7)).toEqual([
      'process.list',
      'process.stats',
      'process.observe',
      'process.unobserve',
      'process.resize',
      'session.identify',
      'server.info',
    ]);
  });

  it('takes binary stdin and sends binary frames, every byte value intact', async () => {
    const c = await client();
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await c.call('process.spawn', { id: 'bin', command: 'cat' });
    expect(await c.call('process.stdin', { id: 'bin', data: all, offset: 0 })).toEqual({ success: true, applied: 256 });
    // A base64 string still works on this wire.
    expect(await c.call('process.stdin', { id: 'bin', data: b64('tail'), offset: 256, eof: true })).toEqual({ success: true, applied: 260 });
    await c.waitExit('bin');
    expect(c.output('bin')).toEqual(Buffer.concat([all, Buffer.from('tail')]));
    expect(Buffer.isBuffer(c.frames('bin')[0].data) || c.frames('bin')[0].data instanceof Uint8Array).toBe(true);
  });

  it('applies every error as NDJSON does, ids echoed as values', async () => {
    const c = await client();
    expect((await c.request('process.stdin', { id: 'x', data: 'not base64!' }, { id: 'abc' })).error).toEqual({
      code: -32602,
      message: 'Invalid base64 data',
    });
    expect((await c.request('process.stdin', { id: 'nope', data: Buffer.from('x') })).error).toEqual({ code: -32602, message: 'Process not found' });
    expect((await c.request('server.ping', undefined, { auth: 'wrong' })).error.code).toBe(-32001);
    expect((await c.request('process.reattach', { id: 'p', fromSeq: -1 })).error).toEqual({ code: -32602, message: 'Invalid params' });
    const big = await c.request('process.reattach', { id: 'none', fromSeq: 2n ** 64n - 1n });
    expect(big.result).toEqual({ found: false, running: false, firstSeq: 0, lastSeq: 0, stdinApplied: 0 });
    // A value that is not a map is a parse error; the stream carries on.
    c.sendRaw(packr.pack([1, 2, 3]));
    expect(await c.waitFor((m) => m.error?.code === -32700)).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });

  it('serves a message of exactly the cap and closes the connection on one byte more', async () => {
    const sized = (n: number) => {
      for (let pad = n - 120; pad <= n; pad++) {
        const m = packr.pack({ jsonrpc: '2.0', id: 1, method: 'server.ping', auth: d.token, params: { pad: 'x'.repeat(pad) } });
        if (m.length === n) return m;
      }
      throw new Error('no padding fits');
    };
    const ok = await client();
    ok.sendRaw(sized(MAX_LINE_BYTES));
    expect((await ok.waitFor((m) => m.id === 1)).result).toEqual({ pong: true });
    const over = await client();
    const other = await client();
    over.sendRaw(sized(MAX_LINE_BYTES + 1));
    await over.closed;
    expect(over.messages).toEqual([]);
    expect(await other.call('server.ping')).toEqual({ pong: true });
  });

  it('replays one buffer to both formats: spawned over MessagePack, reattached over NDJSON, and back', async () => {
    const m = await client();
    await m.call('process.spawn', { id: 'x1', ...fixture('flood', '100000') });
    await m.waitExit('x1');
    const j = await RpcClient.connect(d.socket, d.token);
    const r = await j.call('process.reattach', { id: 'x1', fromSeq: 0 });
    expect(r.found).toBe(true);
    expect(j.output('x1')).toEqual(m.output('x1'));
    expect(j.frames('x1').map((f) => f.seq)).toEqual(m.frames('x1').map((f) => f.seq));

    await j.call('process.spawn', { id: 'x2', command: 'printf', args: ['\\001\\377abc'] });
    await j.waitExit('x2');
    const m2 = await client();
    await m2.call('process.reattach', { id: 'x2', fromSeq: 0 });
    expect(m2.output('x2')).toEqual(Buffer.from([1, 255, 0x61, 0x62, 0x63]));
    expect(m2.output('x2')).toEqual(j.output('x2'));
    j.destroy();
  });
});
