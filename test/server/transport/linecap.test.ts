/**
 * The 1 MiB line cap (claustrum-wire.md §1, issue 2 "Line cap"): a request line of up to 1,048,575 bytes (newline
 * excluded) is served; 1,048,576 bytes or more closes that connection with no reply, and nobody else notices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, sleep } from '../../helpers/daemon.js';
import type { RpcClient } from '../../helpers/rpc.js';

const MAX = 1_048_575;

let d: Daemon;
let bystander: RpcClient;
beforeAll(async () => {
  d = await Daemon.start();
  bystander = await d.client();
});
afterAll(() => d.stop());

/** A server.ping line of exactly `bytes` bytes (no newline), its padding in an ignored params member. */
function pingOfLength(bytes: number, id: string): string {
  const head = `{"jsonrpc":"2.0","id":"${id}","method":"server.ping","params":{"pad":"`;
  const tail = `"},"auth":${JSON.stringify(d.token)}}`;
  const text = head + 'x'.repeat(bytes - head.length - tail.length) + tail;
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

/** Writes `data` in chunks of `size` bytes, letting the socket drain between them. */
async function writeChunked(c: RpcClient, data: Buffer, size: number): Promise<void> {
  for (let at = 0; at < data.length; at += size) {
    if (!c.socket.write(data.subarray(at, at + size))) await new Promise((r) => c.socket.once('drain', r));
  }
}

async function expectClosedWithoutReply(c: RpcClient): Promise<void> {
  await c.closed;
  expect(c.lines).toEqual([]);
}

async function bystanderStillServed(): Promise<void> {
  expect(await bystander.call('server.ping')).toEqual({ pong: true });
}

describe('the line cap', () => {
  it('serves a line of 1,048,575 bytes', async () => {
    const c = await d.client();
    c.sendRaw(`${pingOfLength(MAX, 'max')}\n`);
    const reply = await c.waitFor((m) => m.id === 'max');
    expect(reply).toEqual({ jsonrpc: '2.0', id: 'max', result: { pong: true } });
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });

  it('serves a line of 1,048,575 bytes that arrives in 1 KiB pieces', async () => {
    const c = await d.client();
    await writeChunked(c, Buffer.from(`${pingOfLength(MAX, 'pieces')}\n`), 1024);
    expect(await c.waitFor((m) => m.id === 'pieces')).toMatchObject({ result: { pong: true } });
  });

  it('serves a line of 1,048,575 bytes ended by EOF instead of a newline', async () => {
    const c = await d.client();
    c.socket.end(pingOfLength(MAX, 'eof'));
    await c.closed;
    expect(c.lines.map((l) => JSON.parse(l))).toEqual([{ jsonrpc: '2.0', id: 'eof', result: { pong: true } }]);
  });

  it('closes the connection with no reply at 1,048,576 bytes; another connection is unaffected', async () => {
    const c = await d.client();
    c.sendRaw(`${pingOfLength(MAX + 1, 'over')}\n`);
    await expectClosedWithoutReply(c);
    await bystanderStillServed();
    expect(d.log()).toContain('request longer than 1048575 bytes');
  });

  it('closes at the cap before any newline arrives (input memory stays bounded)', async () => {
    const c = await d.client();
    await writeChunked(c, Buffer.from(pingOfLength(MAX + 1, 'nonl')), 64 * 1024);
    await expectClosedWithoutReply(c);
    await bystanderStillServed();
  });

  it('closes on a line ten times the cap, sent as fast as possible, while another connection keeps working', async () => {
    const c = await d.client();
    const big = Buffer.alloc(10 * (MAX + 1), 'y');
    c.socket.write(big);
    await Promise.all([expectClosedWithoutReply(c), bystanderStillServed()]);
    await bystanderStillServed();
  });

  it('answers the lines before the over-long one, then closes', async () => {
    const c = await d.client();
    c.sendRaw(`${pingOfLength(300, 'before')}\n${pingOfLength(MAX + 1, 'over2')}\n`);
    await c.closed;
    // The reply to "before" is written first; it may or may not beat the close, but nothing follows it.
    expect(c.lines.every((l) => JSON.parse(l).id === 'before')).toBe(true);
  });

  // The \r of a CRLF ending is part of the line for the cap (Go's scanner holds it in the same 1 MiB buffer).
  it('counts the \\r of a CRLF ending towards the cap', async () => {
    const ok = await d.client();
    ok.sendRaw(`${pingOfLength(MAX - 1, 'crlf-ok')}\r\n`);
    expect(await ok.waitFor((m) => m.id === 'crlf-ok')).toMatchObject({ result: { pong: true } });
    const over = await d.client();
    over.sendRaw(`${pingOfLength(MAX, 'crlf-over')}\r\n`);
    await expectClosedWithoutReply(over);
  });

  it('leaves the daemon and every other connection working', async () => {
    await sleep(50);
    await bystanderStillServed();
    expect(bystander.isClosed).toBe(false);
    expect(d.alive).toBe(true);
  });
});
