/**
 * process.stdin (claustrum-wire.md §4.5, issue 2 "Methods"): the offset rules, strict base64, the check order, the
 * 16 MiB queue cap, children that close their stdin or exit under a write, and arrival-order application.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture, until } from '../helpers/daemon.js';
import { b64, type RpcClient } from '../helpers/rpc.js';
import { rawReply } from '../helpers/wire.js';

let d: Daemon;
let c: RpcClient;
beforeAll(async () => {
  d = await Daemon.start();
  c = await d.client();
});
afterAll(() => d.stop());

let seq = 0;
/** Sends a process.stdin request and returns its raw reply's result or error member as JSON text. */
async function stdin(params: Record<string, unknown>): Promise<string> {
  const id = `in${++seq}`;
  c.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id, method: 'process.stdin', params, auth: d.token })}\n`);
  const raw = await rawReply(c, id);
  const prefix = `{"jsonrpc":"2.0","id":"${id}",`;
  expect(raw.startsWith(prefix)).toBe(true);
  return raw.slice(prefix.length, -1);
}

const ok = (applied: number) => `"result":{"success":true,"applied":${applied}}`;
const dup = (applied: number) => `"result":{"success":true,"applied":${applied},"duplicate":true}`;
const err = (code: number, message: string) => `"error":{"code":${code},"message":"${message}"}`;
const GAP = err(-32003, 'stdin offset gap: offset ahead of applied bytes');
const BAD_B64 = err(-32602, 'Invalid base64 data');
const NOT_FOUND = err(-32602, 'Process not found');
const NOT_RUNNING = err(-32602, 'Process not running');
const FULL = err(-32002, 'stdin backpressure: queue full');

async function applied(id: string): Promise<number> {
  return (await c.call('process.reattach', { id, fromSeq: 1e15 })).stdinApplied;
}

describe('the reference offset sequence, with cat', () => {
  it('AAA, BBB at 4, DUP at 4, PART at 6, a gap at 99; cat echoes exactly AAA\\nBBB\\nRT\\n', async () => {
    await c.call('process.spawn', { id: 'seq', command: 'cat' });
    expect(await stdin({ id: 'seq', data: b64('AAA\n') })).toBe(ok(4));
    expect(await stdin({ id: 'seq', data: b64('BBB\n'), offset: 4 })).toBe(ok(8));
    expect(await stdin({ id: 'seq', data: b64('DUP\n'), offset: 4 })).toBe(dup(8));
    expect(await stdin({ id: 'seq', data: b64('PART\n'), offset: 6 })).toBe(ok(11));
    expect(await stdin({ id: 'seq', data: b64('GAP\n'), offset: 99 })).toBe(GAP);
    expect(await stdin({ id: 'seq', data: b64('X'), offset: 12 })).toBe(GAP);
    expect(await stdin({ id: 'seq', data: '', offset: 11 })).toBe(dup(11));
    expect(await applied('seq')).toBe(11);
    await until(() => c.output('seq').length >= 11, 10_000, 'cat to echo 11 bytes');
    await c.call('process.kill', { id: 'seq' });
    await c.waitExit('seq');
    expect(c.output('seq').toString()).toBe('AAA\nBBB\nRT\n');
  });
});

describe('data is strict standard base64, checked before the lookup', () => {
  beforeAll(async () => {
    await c.call('process.spawn', { id: 'b64', command: 'cat' });
  });

  it.each(['QUF', 'QQ', 'QQ=', 'Q', '-_8=', 'QU-B', 'QU_B', 'QUFB====', 'QU FB', '=QUF', 'QQ==QQ==', 'QUFB=', 'Q===', '****', 'QUFB\t'])(
    '%j is Invalid base64 data',
    async (data) => {
      expect(await stdin({ id: 'b64', data })).toBe(BAD_B64);
    },
  );

  it('is checked before the id: an unknown or missing id with bad data gets Invalid base64 data', async () => {
    expect(await stdin({ id: 'nobody', data: 'QUF' })).toBe(BAD_B64);
    expect(await stdin({ data: '-_-_' })).toBe(BAD_B64);
    expect(await stdin({ id: 'nobody', data: 'QUFB' })).toBe(NOT_FOUND);
    expect(await stdin({ data: 'QUFB' })).toBe(NOT_FOUND);
    expect(await stdin({ id: '' })).toBe(NOT_FOUND);
  });

  it('accepts padded data, skips \\r and \\n inside it as Go does, and takes absent or empty data as zero bytes', async () => {
    expect(await applied('b64')).toBe(0);
    expect(await stdin({ id: 'b64', data: 'QQ==' })).toBe(ok(1));
    expect(await stdin({ id: 'b64', data: 'QkI=' })).toBe(ok(3));
    expect(await stdin({ id: 'b64', data: 'Q0ND\r\nREQK' })).toBe(ok(9));
    expect(await stdin({ id: 'b64', data: '' })).toBe(ok(9));
    expect(await stdin({ id: 'b64' })).toBe(ok(9));
    await until(() => c.output('b64').length >= 9, 10_000, 'cat to echo');
    expect(c.output('b64').toString()).toBe('ABBCCCDD\n');
    await c.call('process.kill', { id: 'b64', signal: 'KILL' });
    await c.waitExit('b64');
  });
});

describe('an exited process', () => {
  it('answers Process not running for fresh bytes, but still judges offsets first', async () => {
    await c.call('process.spawn', { id: 'gone', command: 'cat' });
    expect(await stdin({ id: 'gone', data: b64('abc') })).toBe(ok(3));
    await c.call('process.kill', { id: 'gone' });
    await c.waitExit('gone');
    expect(await stdin({ id: 'gone', data: b64('x') })).toBe(NOT_RUNNING);
    expect(await stdin({ id: 'gone' })).toBe(NOT_RUNNING);
    expect(await stdin({ id: 'gone', data: b64('abc'), offset: 0 })).toBe(dup(3));
    expect(await stdin({ id: 'gone', data: b64('bcd'), offset: 1 })).toBe(NOT_RUNNING);
    expect(await stdin({ id: 'gone', data: b64('x'), offset: 3 })).toBe(NOT_RUNNING);
    expect(await stdin({ id: 'gone', data: b64('x'), offset: 5 })).toBe(GAP);
    expect(await applied('gone')).toBe(3);
  });

  it('a process that exited by itself', async () => {
    await c.call('process.spawn', { id: 'quick', command: 'true' });
    await c.waitExit('quick');
    expect(await stdin({ id: 'quick', data: b64('late') })).toBe(NOT_RUNNING);
  });
});

describe('the 16 MiB queue cap', () => {
  it('refuses a write with -32002 once 16 MiB sit unwritten before a child that never reads, applied unchanged', async () => {
    await c.call('process.spawn', { id: 'slow', ...fixture('never-read-stdin') });
    await c.waitFor((m) => m.processId === 'slow' && m.stream === 'stdout');
    const CHUNK = 512 * 1024;
    const data = Buffer.alloc(CHUNK, 'q').toString('base64');
    let accepted = 0;
    let refusal = '';
    for (let i = 0; i < 40; i++) {
      const r = await stdin({ id: 'slow', data, offset: accepted * CHUNK });
      if (r !== ok((accepted + 1) * CHUNK)) {
        refusal = r;
        break;
      }
      accepted++;
    }
    expect(refusal).toBe(FULL);
    // The kernel pipe holds some bytes (64 KiB on Linux); the daemon holds the rest, capped at 16 MiB.
    expect(accepted * CHUNK).toBeGreaterThanOrEqual(16 * 1024 * 1024);
    expect(accepted * CHUNK).toBeLessThanOrEqual(16 * 1024 * 1024 + 1024 * 1024);
    expect(await applied('slow')).toBe(accepted * CHUNK);
    // Still refused, still unchanged; a duplicate is still a duplicate.
    expect(await stdin({ id: 'slow', data, offset: accepted * CHUNK })).toBe(FULL);
    expect(await stdin({ id: 'slow', data, offset: 0 })).toBe(dup(accepted * CHUNK));
    expect(await applied('slow')).toBe(accepted * CHUNK);
    // Another connection does not notice.
    expect(await (await d.client()).call('server.ping')).toEqual({ pong: true });
    await c.call('process.kill', { id: 'slow', signal: 'KILL' });
    await c.waitExit('slow');
    expect(await stdin({ id: 'slow', data: b64('x') })).toBe(NOT_RUNNING);
  });
});

describe('children that do not take their input', () => {
  it('a child that closed its stdin: writes still succeed and count, and nothing crashes', async () => {
    await c.call('process.spawn', { id: 'closed', ...fixture('close-stdin') });
    await c.waitFor((m) => m.processId === 'closed' && m.stream === 'stdout');
    const big = Buffer.alloc(512 * 1024, 'z').toString('base64');
    expect(await stdin({ id: 'closed', data: b64('x') })).toBe(ok(1));
    expect(await stdin({ id: 'closed', data: big })).toBe(ok(1 + 512 * 1024));
    expect(await stdin({ id: 'closed', data: big })).toBe(ok(1 + 2 * 512 * 1024));
    expect(await stdin({ id: 'closed', data: b64('y') })).toBe(ok(2 + 2 * 512 * 1024));
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect(await c.call('process.reattach', { id: 'closed', fromSeq: 1e15 })).toMatchObject({ running: true, stdinApplied: 2 + 2 * 512 * 1024 });
    await c.call('process.kill', { id: 'closed', signal: 'KILL' });
    await c.waitExit('closed');
    expect(d.alive).toBe(true);
  });

  it('a child that exits while a large write is pipelined behind its spawn', async () => {
    const big = Buffer.alloc(700 * 1024, 'w').toString('base64');
    for (let i = 0; i < 5; i++) {
      const id = `exit7-${i}`;
      const spawn = {
        jsonrpc: '2.0',
        id: `sp-${id}`,
        method: 'process.spawn',
        params: { id, command: process.execPath, args: ['-e', 'process.exit(7)'] },
        auth: d.token,
      };
      const write = { jsonrpc: '2.0', id: `wr-${id}`, method: 'process.stdin', params: { id, data: big }, auth: d.token };
      c.sendRaw(`${JSON.stringify(spawn)}\n${JSON.stringify(write)}\n`);
      const reply = JSON.parse(await rawReply(c, `wr-${id}`));
      if (reply.error) expect(reply.error).toEqual({ code: -32602, message: 'Process not running' });
      else expect(reply.result).toEqual({ success: true, applied: 700 * 1024 });
      expect(await c.waitExit(id)).toMatchObject({ exitCode: 7 });
    }
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });
});

describe('arrival order on one connection', () => {
  it('spawn, stdin at offsets 0, 1, 2 and kill, pipelined in one write, apply in that order', async () => {
    const lines = [
      { method: 'process.spawn', params: { id: 'piped', command: 'cat' } },
      { method: 'process.stdin', params: { id: 'piped', data: b64('a'), offset: 0 } },
      { method: 'process.stdin', params: { id: 'piped', data: b64('b'), offset: 1 } },
      { method: 'process.stdin', params: { id: 'piped', data: b64('c'), offset: 2 } },
      { method: 'process.kill', params: { id: 'piped', signal: 'SIGTERM' } },
    ].map((r, i) => JSON.stringify({ jsonrpc: '2.0', id: `pl${i}`, ...r, auth: d.token }));
    c.sendRaw(`${lines.join('\n')}\n`);
    const replies = await Promise.all([0, 1, 2, 3, 4].map((i) => c.waitFor((m) => m.id === `pl${i}`)));
    expect(replies.map((r) => r.result)).toEqual([
      { success: true },
      { success: true, applied: 1 },
      { success: true, applied: 2 },
      { success: true, applied: 3 },
      { success: true },
    ]);
    // The kill found the process: its exit frame says who ended it.
    expect(await c.waitExit('piped')).toMatchObject({ exitCode: -1, signal: 'SIGTERM', killedBy: 'client' });
  });

  it('a write pipelined behind a spawn that fails finds no process', async () => {
    const spawn = JSON.stringify({
      jsonrpc: '2.0',
      id: 'fs',
      method: 'process.spawn',
      params: { id: 'failed', command: 'no-such-command-xyz' },
      auth: d.token,
    });
    const write = JSON.stringify({ jsonrpc: '2.0', id: 'fw', method: 'process.stdin', params: { id: 'failed', data: b64('x') }, auth: d.token });
    c.sendRaw(`${spawn}\n${write}\n`);
    expect((await c.waitFor((m) => m.id === 'fs')).error).toEqual({
      code: -32603,
      message: 'exec: "no-such-command-xyz": executable file not found in $PATH',
    });
    expect((await c.waitFor((m) => m.id === 'fw')).error).toEqual({ code: -32602, message: 'Process not found' });
  });

  it('a hundred one-byte writes at consecutive offsets, pipelined, reach the child in order', async () => {
    const text = Array.from({ length: 100 }, (_, i) => String.fromCharCode(33 + (i % 90))).join('');
    const lines = [
      JSON.stringify({
        jsonrpc: '2.0',
        id: 'h-spawn',
        method: 'process.spawn',
        params: { id: 'hundred', command: 'head', args: ['-c', '100'] },
        auth: d.token,
      }),
    ];
    for (let i = 0; i < 100; i++) {
      lines.push(
        JSON.stringify({
          jsonrpc: '2.0',
          id: `h${i}`,
          method: 'process.stdin',
          params: { id: 'hundred', data: b64(text[i]!), offset: i },
          auth: d.token,
        }),
      );
    }
    c.sendRaw(`${lines.join('\n')}\n`);
    const last = await c.waitFor((m) => m.id === 'h99');
    expect(last.result).toEqual({ success: true, applied: 100 });
    expect(c.messages().filter((m) => typeof m.id === 'string' && /^h\d+$/.test(m.id) && m.error)).toEqual([]);
    expect(await c.waitExit('hundred')).toMatchObject({ exitCode: 0 });
    expect(c.output('hundred').toString()).toBe(text);
  });
});
