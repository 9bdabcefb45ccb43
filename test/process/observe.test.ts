/**
 * process.observe and process.unobserve (extension, issue 11): any number of read-only subscriptions per process,
 * each its own cursor over the replay buffer; an observer never holds the child and never takes the process from
 * its owner; one that falls behind is told exactly which seqs it lost.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBlock } from '../fixtures/lib/pattern.mjs';
import { Daemon, fixture, until } from '../helpers/daemon.js';
import { b64, type RpcClient } from '../helpers/rpc.js';

let d: Daemon;
beforeAll(async () => {
  d = await Daemon.start();
});
afterAll(() => d.stop());

const MiB = 1024 * 1024;

function patternHash(total: number): string {
  const h = createHash('sha256');
  for (let at = 0; at < total; at += MiB) h.update(patternBlock(at, Math.min(MiB, total - at)));
  return h.digest('hex');
}

/** Sends process.observe and resolves with its reply (after the replayed frames). */
function observe(c: RpcClient, id: string, fromSeq?: number) {
  return c.call('process.observe', fromSeq === undefined ? { id } : { id, fromSeq });
}

describe('three observers and the owner of a flooding child', () => {
  it('each receive exactly the bytes the child wrote, in order, with no gap while they keep up', async () => {
    const total = 12 * MiB;
    const owner = await d.client({ keepFrames: false });
    const observers = await Promise.all([1, 2, 3].map(() => d.client({ keepFrames: false })));
    await owner.call('process.spawn', { id: 'flood3', ...fixture('flood', String(total)) });
    const replies = await Promise.all(observers.map((o) => observe(o, 'flood3')));
    for (const r of replies) expect(r).toMatchObject({ found: true });
    const want = patternHash(total);
    for (const c of [owner, ...observers]) {
      const t = c.tally('flood3');
      await until(() => t.exit, 30_000, 'the exit frame on every connection');
      expect(t.exit).toMatchObject({ exitCode: 0 });
      expect(t.jumps).toEqual([]);
      expect(t.gaps).toEqual([]);
      expect(t.ranges).toEqual([[1, t.exit!.seq]]);
      expect(t.stdoutBytes).toBe(total);
      expect(t.stdout.digest('hex')).toBe(want);
    }
    expect(owner.isClosed).toBe(false);
  });
});

describe('an observer that stops reading', () => {
  it('does not hold the child or the owner, and on resuming is told exactly which seqs were evicted, then gets the rest', async () => {
    // Far more than the 16 MiB replay buffer, so the paused observer's place is evicted while it sleeps.
    const total = 48 * MiB;
    const owner = await d.client({ keepFrames: false });
    const slow = await d.client({ keepFrames: false });
    await owner.call('process.spawn', { id: 'outrun', ...fixture('flood', String(total)) });
    await observe(slow, 'outrun');
    slow.socket.pause();
    const o = owner.tally('outrun');
    // The child finishes and the owner gets every byte while the observer reads nothing.
    await until(() => o.exit, 60_000, 'the owner to see the exit while the observer is paused');
    expect(o.stdoutBytes).toBe(total);
    expect(o.stdout.digest('hex')).toBe(patternHash(total));
    expect(o.jumps).toEqual([]);
    const { processes } = await owner.call('process.list', {});
    const entry = processes.find((p: { id: string }) => p.id === 'outrun');
    expect(entry.observers).toBe(1);
    const firstRetained: number = entry.firstSeq;
    expect(firstRetained).toBeGreaterThan(1);

    slow.socket.resume();
    const s = slow.tally('outrun');
    await until(() => s.exit, 60_000, 'the observer to reach the exit after resuming');
    expect(s.jumps).toEqual([]);
    expect(s.gaps).toHaveLength(1);
    const [gap] = s.gaps;
    const [before, after] = s.ranges;
    // Frames 1..a, then a notice naming a+1 .. (oldest retained - 1), then every retained frame to the exit.
    expect(before![0]).toBe(1);
    expect(gap!.fromSeq).toBe(before![1] + 1);
    expect(gap!.toSeq).toBe(firstRetained - 1);
    expect(after).toEqual([firstRetained, o.exit!.seq]);
    expect(s.ranges).toHaveLength(2);
    expect(owner.isClosed).toBe(false);
    expect(slow.isClosed).toBe(false);
  });
});

describe('observing', () => {
  it('never closes the owner connection, unlike a reattach', async () => {
    const owner = await d.client();
    await owner.call('process.spawn', { id: 'shared', command: 'cat' });
    const watcher = await d.client();
    expect(await observe(watcher, 'shared')).toEqual({ found: true, running: true, firstSeq: 0, lastSeq: 0 });
    await owner.call('process.stdin', { id: 'shared', data: b64('one\n') });
    const seen = (c: RpcClient) => c.output('shared').toString();
    await until(() => seen(watcher) === 'one\n' && seen(owner) === 'one\n', 10_000, 'both to see the line');
    expect(owner.isClosed).toBe(false);
    const thief = await d.client();
    await thief.call('process.reattach', { id: 'shared', fromSeq: 1 });
    await owner.closed; // reference behaviour for the owner's stream
    await thief.call('process.stdin', { id: 'shared', data: b64('two\n'), eof: true });
    await watcher.waitExit('shared');
    expect(seen(watcher)).toBe('one\ntwo\n');
    expect(watcher.isClosed).toBe(false);
  });

  it('replays what is retained before the reply, then follows live frames', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'twice', command: 'sh', args: ['-c', 'echo first; read x; echo second'] });
    await c.waitFor((m) => m.type === 'stream' && m.processId === 'twice');
    const o = await d.client();
    o.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id: 'ob', method: 'process.observe', params: { id: 'twice' }, auth: d.token })}\n`);
    await o.waitFor((m) => m.id === 'ob');
    const lines = o.messages();
    const replyAt = lines.findIndex((m) => m.id === 'ob');
    expect(lines.slice(0, replyAt).map((m) => m.seq)).toEqual([1]);
    expect(lines[replyAt].result).toEqual({ found: true, running: true, firstSeq: 1, lastSeq: 1 });
    await c.call('process.stdin', { id: 'twice', data: b64('go\n') });
    await o.waitExit('twice');
    expect(o.output('twice').toString()).toBe('first\nsecond\n');
  });

  it('an exited process replays up to its exit frame; fromSeq skips what was seen', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'done', command: 'sh', args: ['-c', 'echo a; echo b >&2; exit 4'] });
    await c.waitExit('done');
    const o = await d.client();
    const r = await observe(o, 'done');
    expect(r).toEqual({ found: true, running: false, firstSeq: 1, lastSeq: 3 });
    expect(o.frames('done').map((f) => f.seq)).toEqual([1, 2, 3]);
    expect(o.frames('done').at(-1)).toMatchObject({ stream: 'exit', exitCode: 4 });
    const o2 = await d.client();
    await observe(o2, 'done', 2);
    expect(o2.frames('done').map((f) => f.seq)).toEqual([3]);
  });

  it('an unknown id is not found; an id is required', async () => {
    const c = await d.client();
    expect(await observe(c, 'nobody')).toEqual({ found: false, running: false, firstSeq: 0, lastSeq: 0 });
    expect((await c.request('process.observe', {})).error).toEqual({ code: -32602, message: 'Process ID is required' });
    expect((await c.request('process.unobserve', { id: '' })).error).toEqual({ code: -32602, message: 'Process ID is required' });
    expect((await c.request('process.observe', { id: 'x', fromSeq: -1 })).error).toEqual({ code: -32602, message: 'Invalid params' });
  });

  it('unobserve ends the subscription; observing twice on one connection replaces the first', async () => {
    const owner = await d.client();
    await owner.call('process.spawn', { id: 'ticker', command: 'cat' });
    const o = await d.client();
    await observe(o, 'ticker');
    await observe(o, 'ticker'); // the same connection again: one subscription, not two
    const list = async () => (await owner.call('process.list', {})).processes.find((p: { id: string }) => p.id === 'ticker');
    expect((await list()).observers).toBe(1);
    await owner.call('process.stdin', { id: 'ticker', data: b64('x\n') });
    await until(() => o.output('ticker').length === 2, 10_000, 'the observer to see one copy of the line');
    expect(o.frames('ticker')).toHaveLength(1);
    expect(await o.call('process.unobserve', { id: 'ticker' })).toEqual({ found: true });
    expect(await o.call('process.unobserve', { id: 'ticker' })).toEqual({ found: false });
    expect((await list()).observers).toBe(0);
    await owner.call('process.stdin', { id: 'ticker', data: b64('y\n'), eof: true });
    await owner.waitExit('ticker');
    await o.call('server.ping');
    expect(o.frames('ticker')).toHaveLength(1);
  });

  it('closing the connection ends its observations', async () => {
    const owner = await d.client();
    await owner.call('process.spawn', { id: 'left', command: 'sleep', args: ['30'] });
    const o = await d.client();
    await observe(o, 'left');
    const count = async () => (await owner.call('process.list', {})).processes.find((p: { id: string }) => p.id === 'left').observers;
    expect(await count()).toBe(1);
    o.destroy();
    await until(async () => (await count()) === 0, 10_000, 'the observation to end with its connection');
    await owner.call('process.kill', { id: 'left', signal: 'KILL' });
  });
});
