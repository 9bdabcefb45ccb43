/**
 * The daemon under fuzzed input, over the wire (reliability.md §3, claustrum's FuzzDispatch): on the Unix socket,
 * any line gets no reply (a blank line) or exactly one well-formed reply, and the daemon never dies; on the
 * WebSocket listener, any frames (fragments, control frames, bad opcodes, oversized lengths, unmasked frames) end in
 * replies or a closed connection, never a dead or unresponsive daemon. Methods with side effects (spawn, shutdown,
 * extract, worktrees, reads) are left out, as claustrum's fuzzer leaves them out.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, until } from '../helpers/daemon.js';
import { RpcClient } from '../helpers/rpc.js';
import { budget, FUZZ_TEST_TIMEOUT_MS } from './budget.js';

const SAFE_METHODS = [
  'server.ping',
  'server.capabilities',
  'process.list',
  'process.stats',
  'process.reattach',
  'process.kill',
  'process.stdin',
  'process.killAndWait',
  'files.stat',
  'files.validate',
  'nope.nope',
  'server.nope',
  'noDot',
  '',
];

function wellFormed(m: any): boolean {
  if (m === null || typeof m !== 'object' || m.jsonrpc !== '2.0' || !('id' in m)) return false;
  if ('result' in m === 'error' in m) return false;
  return !('error' in m) || (typeof m.error.code === 'number' && typeof m.error.message === 'string');
}

describe('the daemon under fuzzed requests', () => {
  let d: Daemon;
  let wsPort: number;
  beforeAll(async () => {
    d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0', '-no-login-path'] });
    const m = await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'the websocket listener');
    wsPort = Number(m[1]);
  });
  afterAll(() => d?.stop());

  it('NDJSON: any line gets no reply (blank) or exactly one well-formed reply', { timeout: FUZZ_TEST_TIMEOUT_MS }, async () => {
    const c = await RpcClient.connect(d.socket, d.token);
    let sentinel = 0;
    const request = fc.record(
      {
        jsonrpc: fc.oneof(fc.constant('2.0'), fc.jsonValue()),
        id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.jsonValue({ maxDepth: 2 })),
        method: fc.oneof(fc.constantFrom(...SAFE_METHODS), fc.string()),
        auth: fc.oneof(fc.constant(d.token), fc.string(), fc.jsonValue()),
        params: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record(
            { id: fc.string().map((s) => `fz-${s}`), fromSeq: fc.integer(), offset: fc.integer(), data: fc.base64String(), timeoutMs: fc.nat(50) },
            { requiredKeys: [] },
          ),
        ),
      },
      { requiredKeys: [] },
    );
    const line = fc.oneof(
      request.map((r) => JSON.stringify(r)),
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(line, async (raw) => {
        const text = raw.replace(/\n/g, ' ');
        const before = c.lines.length;
        const blank = text.replace(/\r$/, '') === '';
        c.sendRaw(`${text}\n`);
        if (!blank) await c.waitFor(() => c.lines.length > before, 10_000);
        // Then a sentinel: any second reply to the fuzzed line would arrive before the sentinel's.
        const id = `sentinel-${++sentinel}`;
        await c.request('server.ping', undefined, { id });
        const replies = c.lines.slice(before).map((l) => JSON.parse(l));
        const own = replies.filter((m) => m.id !== id);
        expect(own.length).toBe(blank ? 0 : 1);
        for (const m of own) expect(wellFormed(m), JSON.stringify(m).slice(0, 300)).toBe(true);
      }),
      budget(),
    );
    expect(d.alive).toBe(true);
    c.destroy();
  });

  it('WebSocket: any frames end in replies or a closed connection; the daemon stays up and answers', { timeout: FUZZ_TEST_TIMEOUT_MS }, async () => {
    const frame = fc.record({
      fin: fc.boolean(),
      rsv: fc.constantFrom(0, 0, 0, 1, 4),
      opcode: fc.constantFrom(0x0, 0x1, 0x2, 0x8, 0x9, 0xa, 0x3, 0xb),
      masked: fc.constantFrom(true, true, true, false),
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.constant(new Uint8Array(Buffer.from(`{"jsonrpc":"2.0","id":1,"method":"server.ping","auth":"${d.token}"}`))),
      ),
      // Announce a length other than the payload's (up to 2^40): an oversized or truncated frame.
      lie: fc.oneof(fc.constant(undefined), fc.constantFrom(126, 65_536, 2 ** 32, 2 ** 40)),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 8 }), async (frames) => {
        const s = await wsOpen(wsPort);
        for (const f of frames) s.write(encodeFrame(f));
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 100);
          s.once('close', () => {
            clearTimeout(t);
            resolve();
          });
        });
        s.destroy();
        expect(d.alive).toBe(true);
      }),
      budget(),
    );
    const c = await RpcClient.connect(d.socket, d.token);
    expect(await c.call('server.ping')).toEqual({ pong: true });
    c.destroy();
  });
});

/** A raw WebSocket connection after a valid upgrade on /rpc. */
function wsOpen(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      const key = randomBytes(16).toString('base64');
      s.write(
        `GET /rpc HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    s.on('error', () => {});
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
      else resolve(s);
    };
    s.on('data', onData);
  });
}

function encodeFrame(f: { fin: boolean; rsv: number; opcode: number; masked: boolean; payload: Uint8Array; lie: number | undefined }): Buffer {
  const len = f.lie ?? f.payload.length;
  const head: number[] = [(f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode];
  const mask = f.masked ? 0x80 : 0;
  if (len < 126) head.push(mask | len);
  else if (len < 65_536) head.push(mask | 126, len >> 8, len & 0xff);
  else {
    head.push(mask | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(len));
    head.push(...big);
  }
  const key = randomBytes(4);
  const body = Buffer.from(f.payload);
  if (f.masked) for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(head), f.masked ? key : Buffer.alloc(0), body]);
}
