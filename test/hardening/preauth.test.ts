/**
 * Issue 10, point 3: nothing before auth grows faster than its input, on any listener, and strangers cannot starve
 * the owner. Each test waits with a generous liveness bound, never a speed assertion.
 *
 * - MessagePack is decoded without msgpackr's structured-clone reference extensions (0x69 id, 0x70 pointer) and
 *   without ext types the protocol does not use: one ~350-byte unauthenticated message of shared references
 *   otherwise expands into 2^40 nodes while the id is re-encoded, before the auth check.
 * - The id is bounded by its encoded size (MAX_ID_JSON_CHARS); a longer id is a parse error, id null.
 * - An unfinished line is held in one growing buffer: 256 KiB of a line arriving in 16-byte reads must not cost more
 *   than a few MiB (the issue measured 137-162 MiB for 0.95 MiB in 1-byte reads).
 * - Every listener has a connection cap, with tighter ones for connections that have not finished their WebSocket
 *   upgrade (WS_MAX_HANDSHAKES) or not authenticated, so strangers holding plain TCP connections to the WebSocket
 *   port cannot take every descriptor of a daemon whose RLIMIT_NOFILE is low and starve the owner's Unix socket.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, until } from '../helpers/daemon.js';
import { RpcClient } from '../helpers/rpc.js';
import { WsClient } from '../helpers/wire-clients.js';
import { LineSplitter } from '../../src/protocol/ndjson.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('pre-auth growth', () => {
  it('a MessagePack id of shared references (structured clone) is refused, not expanded (WebSocket binary)', async () => {
    const d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0'] });
    cleanup.push(() => d.stop());
    const port = Number((await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'ws'))[1]);
    // 22 levels of [a, a]: about 350 bytes on the wire, 2^22 leaves once expanded (a 33 MB id re-encoded). On the
    // Unix socket the MessageSplitter happens to cut such a value apart; a WebSocket message reaches the decoder whole.
    let id: unknown = ['x'];
    for (let i = 0; i < 22; i++) id = [id, id];
    const bomb = new Packr({ structuredClone: true, useRecords: false }).pack({ jsonrpc: '2.0', id, method: 'server.ping', auth: 'wrong' });
    expect(bomb.length).toBeLessThan(1024);
    const ws = await WsClient.connect(`ws://127.0.0.1:${port}/rpc`, 'wrong');
    cleanup.push(() => ws.ws.terminate());
    // The owner pings meanwhile: answered only while the daemon is not frozen decoding the stranger's message.
    const owner = await d.client();
    ws.ws.send(bomb);
    const pong = owner.request('server.ping');
    const reply = await ws.waitFor((x) => x.type !== 'stream', 10_000);
    expect(reply.error.code).toBe(-32700);
    expect((await pong).result).toEqual({ pong: true });
  });

  it('an id larger than the id bound is a parse error with id null, whatever the auth', async () => {
    const d = await Daemon.start();
    cleanup.push(() => d.stop());
    const c = await d.client();
    const big = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    c.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id: big, method: 'server.ping', auth: 'wrong' })}\n`);
    const r = await c.waitFor((m) => m.type !== 'stream', 10_000);
    expect(r.error?.code).toBe(-32700);
    expect(r.id).toBeNull();
  });

  it('an unfinished line arriving in 1-byte reads is held in one growing buffer, not one Buffer per read', () => {
    // What a 1-byte socket read hands the splitter: a Buffer of its own. 512 Ki of them make a 512 KiB line.
    const s = new LineSplitter();
    const before = process.memoryUsage();
    const reads = 512 * 1024;
    let open = true;
    for (let i = 0; i < reads; i++) open = s.push(Buffer.from([97]), () => {}) && open;
    expect(open).toBe(true);
    const after = process.memoryUsage();
    const growth = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(s.pendingBytes).toBe(reads);
    // One growing buffer holds 512 KiB in at most 1 MiB; a Buffer per read costs ~100 bytes of heap each (50+ MiB).
    expect(growth, `${(growth / 1048576).toFixed(1)} MiB held for ${reads} bytes pending`).toBeLessThan(8 * 1024 * 1024);
  });

  it('strangers holding unauthenticated connections on the WebSocket port cannot starve the owner on the Unix socket', async () => {
    // A low descriptor limit makes the starvation cheap to reach: 300 strangers against 256 descriptors.
    const d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0'], wrapper: ['prlimit', '--nofile=256:256'] });
    cleanup.push(() => d.stop());
    const port = Number((await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'ws'))[1]);
    // The strangers: uid 65534, plain TCP connections that never authenticate.
    const script = `const net=require('net');const a=[];for(let i=0;i<300;i++){const s=net.connect(${port},'127.0.0.1');s.on('error',()=>{});a.push(s)}setTimeout(()=>{},60000)`;
    const strangers = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { stdio: 'ignore' });
    cleanup.push(() => strangers.kill('SIGKILL'));
    await sleep(1500);
    const owner = await RpcClient.connect(d.socket, d.token);
    cleanup.push(() => owner.destroy());
    expect(await owner.call('server.ping')).toEqual({ pong: true });
    const c = await owner.request('process.spawn', { id: 'still', command: 'true' });
    expect(c.result?.success).toBe(true);
  });
});
