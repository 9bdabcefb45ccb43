/**
 * process.reattach (claustrum-wire.md §4.8, issue 2 "Methods"): replay of the retained frames after fromSeq before
 * the reply, the reply shape, and the exclusive transfer that closes the previous receiver's connection without
 * losing or duplicating a frame.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture, until } from '../helpers/daemon.js';
import { firstFloodMismatch } from '../helpers/pattern.js';
import { b64, type RpcClient, type WireFrame } from '../helpers/rpc.js';
import { rawReply } from '../helpers/wire.js';

let d: Daemon;
beforeAll(async () => {
  d = await Daemon.start();
});
afterAll(() => d.stop());

let seq = 0;
/** Sends a reattach and resolves with its raw reply line and the index of that line on the connection. */
async function reattach(c: RpcClient, params: Record<string, unknown>): Promise<{ line: string; at: number; result: any }> {
  const id = `ra${++seq}`;
  c.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id, method: 'process.reattach', params, auth: d.token })}\n`);
  const line = await rawReply(c, id);
  return { line, at: c.lines.indexOf(line), result: JSON.parse(line).result };
}

function frameLines(c: RpcClient, id: string): string[] {
  return c.lines.filter((l) => l.startsWith(`{"type":"stream","processId":${JSON.stringify(id)},`));
}

function seqs(frames: WireFrame[]): number[] {
  return frames.map((f) => f.seq);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

describe('the reply', () => {
  it('an unknown id gets the all-zero shape, with or without wantPid', async () => {
    const c = await d.client();
    const zero = '"result":{"found":false,"running":false,"firstSeq":0,"lastSeq":0,"stdinApplied":0}}';
    expect((await reattach(c, { id: 'nobody' })).line.endsWith(zero)).toBe(true);
    expect((await reattach(c, { id: 'nobody', fromSeq: 5, wantPid: true })).line.endsWith(zero)).toBe(true);
  });

  it('requires an id', async () => {
    const c = await d.client();
    for (const params of [{}, { id: '' }, { fromSeq: 0 }]) {
      expect((await reattach(c, params)).line.endsWith('"error":{"code":-32602,"message":"Process ID is required"}}')).toBe(true);
    }
  });

  it('a silent process with 6 stdin bytes: firstSeq 0, lastSeq 0, stdinApplied 6, for fromSeq 0 and 2^64-1', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'silent', command: 'sleep', args: ['30'] });
    await c.call('process.stdin', { id: 'silent', data: b64('123456') });
    const want = '"result":{"found":true,"running":true,"firstSeq":0,"lastSeq":0,"stdinApplied":6}}';
    expect((await reattach(c, { id: 'silent', fromSeq: 0 })).line.endsWith(want)).toBe(true);
    c.sendRaw(
      `{"jsonrpc":"2.0","id":"max","method":"process.reattach","params":{"id":"silent","fromSeq":18446744073709551615},"auth":${JSON.stringify(d.token)}}\n`,
    );
    expect((await rawReply(c, 'max')).endsWith(want)).toBe(true);
    await c.call('process.kill', { id: 'silent', signal: 'KILL' });
  });

  it('with wantPid adds the pid and startTime the spawn returned, after stdinApplied', async () => {
    const c = await d.client();
    const spawned = await c.call('process.spawn', { id: 'w1', command: 'sh', args: ['-c', 'echo hi'], wantPid: true });
    await c.waitExit('w1');
    const { result } = await reattach(c, { id: 'w1', fromSeq: 0, wantPid: true });
    expect(Object.keys(result)).toEqual(['found', 'running', 'firstSeq', 'lastSeq', 'stdinApplied', 'pid', 'startTime']);
    expect(result).toEqual({ found: true, running: false, firstSeq: 1, lastSeq: 2, stdinApplied: 0, pid: spawned.pid, startTime: spawned.startTime });
  });
});

describe('replay and transfer', () => {
  it('replays every retained frame after fromSeq, byte-identical and in order, before the reply; the previous receiver is closed', async () => {
    const a = await d.client();
    await a.call('process.spawn', { id: 'em', command: 'sh', args: ['-c', 'for i in 1 2 3 4 5; do echo $i; sleep 0.01; done; echo err >&2'] });
    await a.waitExit('em');
    const original = frameLines(a, 'em');
    const last = JSON.parse(original.at(-1)!).seq;
    expect(seqs(a.frames('em'))).toEqual(range(1, last));

    const b = await d.client();
    const r = await reattach(b, { id: 'em', fromSeq: 0 });
    expect(r.result).toEqual({ found: true, running: false, firstSeq: 1, lastSeq: last, stdinApplied: 0 });
    expect(frameLines(b, 'em')).toEqual(original);
    expect(b.lines.slice(0, r.at)).toEqual(original);
    await a.closed;
    expect(d.log()).toContain('process em was reattached by another connection');

    // From the middle: only the frames after fromSeq.
    const c = await d.client();
    const r2 = await reattach(c, { id: 'em', fromSeq: 2 });
    expect(r2.result).toMatchObject({ firstSeq: 1, lastSeq: last });
    expect(c.lines.slice(0, r2.at)).toEqual(original.slice(2));
    await b.closed;

    // At or past lastSeq: nothing replayed, the stream still moves.
    const e = await d.client();
    const r3 = await reattach(e, { id: 'em', fromSeq: last });
    expect(r3.at).toBe(0);
    await c.closed;
    expect(e.isClosed).toBe(false);
  });

  it('a reattach from the connection that already receives closes nothing', async () => {
    const a = await d.client();
    await a.call('process.spawn', { id: 'self', command: 'cat' });
    await reattach(a, { id: 'self', fromSeq: 0 });
    await reattach(a, { id: 'self', fromSeq: 0 });
    await a.call('process.stdin', { id: 'self', data: b64('still here\n') });
    await until(() => a.output('self').toString() === 'still here\n', 10_000, 'the echo');
    expect(a.isClosed).toBe(false);
    await a.call('process.kill', { id: 'self' });
  });

  it('closing the previous receiver costs it its other streams too; those processes live on and can be reattached', async () => {
    const a = await d.client();
    await a.call('process.spawn', { id: 'x1', command: 'cat' });
    await a.call('process.spawn', { id: 'x2', command: 'cat' });
    const b = await d.client();
    await reattach(b, { id: 'x1', fromSeq: 0 });
    await a.closed;
    await b.call('process.stdin', { id: 'x2', data: b64('buffered\n') });
    const { result } = await reattach(b, { id: 'x2', fromSeq: 0 });
    expect(result).toMatchObject({ found: true, running: true, stdinApplied: 9 });
    await until(() => b.output('x2').toString() === 'buffered\n', 10_000, 'x2 output on b');
    await b.call('process.kill', { id: 'x1' });
    await b.call('process.kill', { id: 'x2' });
    await b.waitExit('x1');
    await b.waitExit('x2');
  });

  it('a process survives the disconnect of every connection', async () => {
    const a = await d.client();
    await a.call('process.spawn', { id: 'survivor', command: 'cat' });
    a.destroy();
    await a.closed;
    const b = await d.client();
    expect((await reattach(b, { id: 'survivor', fromSeq: 0 })).result).toMatchObject({ found: true, running: true });
    await b.call('process.stdin', { id: 'survivor', data: b64('alive\n') });
    await until(() => b.output('survivor').toString() === 'alive\n', 10_000, 'the echo');
    await b.call('process.kill', { id: 'survivor' });
    expect(await b.waitExit('survivor')).toMatchObject({ killedBy: 'client' });
  });

  it('a transfer away from a receiver that stopped reading releases the held child to the new one, from seq 1', async () => {
    const a = await d.client();
    await a.call('process.spawn', { id: 'jam', ...fixture('flood') });
    await until(() => a.frames('jam').length >= 10, 20_000, 'the flood to start');
    a.socket.pause(); // the daemon's backlog for `a` fills and the child is held
    const b = await d.client();
    const r = await reattach(b, { id: 'jam', fromSeq: 0 });
    expect(r.result).toMatchObject({ found: true, running: true, firstSeq: 1 });
    a.socket.resume(); // a paused socket would never notice the close
    await a.closed;
    await until(() => b.frames('jam').length >= r.result.lastSeq + 100, 20_000, 'the child to resume for the new receiver');
    await b.call('process.kill', { id: 'jam', signal: 'KILL' });
    const exit = await b.waitExit('jam');
    const frames = b.frames('jam');
    expect([...seqs(frames)].sort((x, y) => x - y)).toEqual(range(1, exit.seq));
    const out = Buffer.concat(
      [...frames]
        .sort((x, y) => x.seq - y.seq)
        .filter((f) => f.stream === 'stdout')
        .map((f) => Buffer.from(f.data!, 'base64')),
    );
    expect(firstFloodMismatch(out)).toBe(-1);
  });

  it('a transfer in the middle of a flood loses and duplicates nothing', async () => {
    const a = await d.client();
    await a.call('process.spawn', { id: 'fl', ...fixture('flood') });
    await until(() => a.frames('fl').length >= 40, 20_000, 'the flood to reach the first receiver');
    const k = a.frames('fl').at(-1)!.seq;

    const b = await d.client();
    const r = await reattach(b, { id: 'fl', fromSeq: k });
    expect(r.result).toMatchObject({ found: true, running: true });
    expect(r.result.firstSeq).toBeLessThanOrEqual(k + 1);
    expect(r.result.lastSeq).toBeGreaterThanOrEqual(k);
    await a.closed;

    // Let the new receiver take a few more MiB live, then end the flood.
    await until(() => b.frames('fl').length >= r.result.lastSeq - k + 120, 20_000, 'live frames on the new receiver');
    await b.call('process.kill', { id: 'fl', signal: 'KILL' });
    await b.waitExit('fl');

    const aFrames = a.frames('fl');
    const bFrames = b.frames('fl');
    // The old receiver got a gap-free prefix and nothing above the cut.
    expect(seqs(aFrames)).toEqual(range(1, aFrames.length));
    expect(aFrames.length).toBeLessThanOrEqual(r.result.lastSeq);
    // The new one got every frame after fromSeq exactly once, up to the exit frame.
    const exitSeq = bFrames.at(-1)!.seq;
    expect(bFrames.at(-1)).toMatchObject({ stream: 'exit', signal: 'SIGKILL' });
    expect([...seqs(bFrames)].sort((x, y) => x - y)).toEqual(range(k + 1, exitSeq));
    // The replayed part came before the reply.
    const replayed = b.lines.slice(0, r.at).map((l) => JSON.parse(l).seq);
    expect(replayed).toEqual(range(k + 1, r.result.lastSeq));
    // Where both saw a frame, it is the same frame.
    const bySeq = new Map(bFrames.map((f) => [f.seq, f]));
    for (const f of aFrames.filter((x) => x.seq > k)) expect(bySeq.get(f.seq)).toEqual(f);
    // Joined, the bytes are the flood's, every one in place.
    const joined = Buffer.concat(
      [...aFrames.filter((f) => f.seq <= k), ...[...bFrames].sort((x, y) => x.seq - y.seq)]
        .filter((f) => f.stream === 'stdout')
        .map((f) => Buffer.from(f.data!, 'base64')),
    );
    expect(joined.length).toBeGreaterThan(4 * 1024 * 1024);
    expect(firstFloodMismatch(joined)).toBe(-1);
  });
});
