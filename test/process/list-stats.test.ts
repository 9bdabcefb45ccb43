import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture, until } from '../helpers/daemon.js';
import { b64 } from '../helpers/rpc.js';

describe('process.list and process.stats', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('lists running and retained exited processes, oldest first, with the documented keys', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'l1', command: 'sh', args: ['-c', 'echo hi; exit 7'], cwd: '/tmp' });
    await c.waitExit('l1');
    await c.call('process.spawn', { id: 'l2', command: 'sleep', args: ['30'] });
    await c.call('process.stdin', { id: 'l2', data: b64('abc') });
    await c.call('process.spawn', { id: 'l3', command: 'sleep', args: ['30'] });
    await c.call('process.kill', { id: 'l3', signal: 'KILL' });
    await c.waitExit('l3');
    const { processes } = await c.call('process.list', {});
    const mine = processes.filter((p: { id: string }) => ['l1', 'l2', 'l3'].includes(p.id));
    expect(mine.map((p: { id: string }) => p.id)).toEqual(['l1', 'l2', 'l3']);
    const [l1, l2, l3] = mine;
    expect(Object.keys(l1)).toEqual([
      'id',
      'running',
      'pid',
      'startTime',
      'command',
      'args',
      'cwd',
      'startedAt',
      'exitCode',
      'firstSeq',
      'lastSeq',
      'stdinApplied',
      'observers',
      'instance',
      'restarts',
    ]);
    expect(l1).toMatchObject({
      running: false,
      command: 'sh',
      args: ['-c', 'echo hi; exit 7'],
      cwd: '/tmp',
      exitCode: 7,
      firstSeq: 1,
      lastSeq: 2,
      stdinApplied: 0,
      observers: 0,
      restarts: 0,
    });
    expect(l1.instance).toMatch(/^[0-9a-f]{32}$/);
    expect(Object.keys(l2)).toEqual([
      'id',
      'running',
      'pid',
      'startTime',
      'command',
      'args',
      'cwd',
      'startedAt',
      'firstSeq',
      'lastSeq',
      'stdinApplied',
      'observers',
      'instance',
      'restarts',
    ]);
    expect(l2).toMatchObject({ running: true, stdinApplied: 3, firstSeq: 0, lastSeq: 0 });
    expect(l3).toMatchObject({ running: false, exitCode: -1, signal: 'SIGKILL' });
    expect(l2.startedAt).toBeGreaterThanOrEqual(l1.startedAt);
    expect(l2.startTime).toBeCloseTo(l2.startedAt / 1000, 3);
    await c.call('process.kill', { id: 'l2', signal: 'KILL' });
  });

  it('needs params like every process.* method', async () => {
    const c = await d.client();
    expect((await c.request('process.list')).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('process.stats', {})).error).toEqual({ code: -32602, message: 'Process ID is required' });
  });

  it('sums cpu and memory over a child and its descendants', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 's1', ...fixture('spawn-grandchild') });
    await c.waitFor((m) => m.type === 'stream' && m.processId === 's1');
    const s = await until(async () => {
      const r = await c.call('process.stats', { id: 's1' });
      return r.descendants >= 1 ? r : undefined;
    });
    expect(Object.keys(s)).toEqual(['found', 'running', 'pid', 'cpu', 'memory', 'elapsed', 'descendants']);
    expect(s).toMatchObject({ found: true, running: true, descendants: 1 });
    expect(s.memory).toBeGreaterThan(1024 * 1024); // a node child plus a sleep
    expect(typeof s.cpu).toBe('number');
    expect(s.elapsed).toBeGreaterThanOrEqual(0);
    await c.call('process.kill', { id: 's1', signal: 'KILL' });
    await c.waitExit('s1');
    expect(await c.call('process.stats', { id: 's1' })).toMatchObject({ found: true, running: false, cpu: 0, memory: 0, descendants: 0 });
    expect(await c.call('process.stats', { id: 'unknown' })).toEqual({ found: false });
  });
});
