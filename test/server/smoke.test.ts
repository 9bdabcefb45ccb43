import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture } from '../helpers/daemon.js';
import { b64 } from '../helpers/rpc.js';

describe('smoke: the real daemon over its real socket', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('answers ping', async () => {
    const c = await d.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });

  it('spawns cat, feeds stdin, echoes it back', async () => {
    const c = await d.client();
    expect(await c.call('process.spawn', { id: 'cat1', command: 'cat' })).toEqual({ success: true });
    expect(await c.call('process.stdin', { id: 'cat1', data: b64('ping\n') })).toEqual({ success: true, applied: 5 });
    await c.waitFor((m) => m.type === 'stream' && m.stream === 'stdout');
    expect(c.output('cat1').toString()).toBe('ping\n');
    await c.call('process.kill', { id: 'cat1' });
    const exit = await c.waitExit('cat1');
    expect(exit).toMatchObject({ exitCode: -1, signal: 'SIGTERM', killedBy: 'client' });
  });

  it('streams a flood losslessly', async () => {
    const c = await d.client();
    const f = fixture('flood', String(3 * 1024 * 1024));
    await c.call('process.spawn', { id: 'fl', ...f });
    await c.waitExit('fl');
    expect(c.output('fl').length).toBe(3 * 1024 * 1024);
  });
});
