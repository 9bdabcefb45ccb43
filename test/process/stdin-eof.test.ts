import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../helpers/daemon.js';
import { b64 } from '../helpers/rpc.js';

describe('process.stdin eof (extension)', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('closes stdin after the data, so cat exits 0 with everything echoed', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'e1', command: 'cat' });
    expect(await c.call('process.stdin', { id: 'e1', data: b64('one\n'), offset: 0 })).toEqual({ success: true, applied: 4 });
    expect(await c.call('process.stdin', { id: 'e1', data: b64('two\n'), offset: 4, eof: true })).toEqual({ success: true, applied: 8 });
    const exit = await c.waitExit('e1');
    expect(exit.exitCode).toBe(0);
    expect(c.output('e1').toString()).toBe('one\ntwo\n');
  });

  it('is idempotent: a retried EOF write is a duplicate, fresh bytes after it are refused', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'e2', command: 'sleep', args: ['30'] });
    expect(await c.call('process.stdin', { id: 'e2', data: b64('ab'), offset: 0 })).toEqual({ success: true, applied: 2 });
    // EOF with no data, exactly at applied: closes, not a duplicate.
    expect(await c.call('process.stdin', { id: 'e2', offset: 2, eof: true })).toEqual({ success: true, applied: 2 });
    expect(await c.call('process.stdin', { id: 'e2', offset: 2, eof: true })).toEqual({ success: true, applied: 2, duplicate: true });
    expect(await c.call('process.stdin', { id: 'e2', data: b64('ab'), offset: 0, eof: true })).toEqual({
      success: true,
      applied: 2,
      duplicate: true,
    });
    const fresh = await c.request('process.stdin', { id: 'e2', data: b64('c'), offset: 2 });
    expect(fresh.error).toEqual({ code: -32602, message: 'stdin is closed' });
    const r = await c.call('process.reattach', { id: 'e2' });
    expect(r).toEqual({ found: true, running: true, firstSeq: 0, lastSeq: 0, stdinApplied: 2, stdinClosed: true });
    await c.call('process.kill', { id: 'e2', signal: 'KILL' });
  });

  it('leaves reattach without stdinClosed when eof was never used', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'e3', command: 'true' });
    await c.waitExit('e3');
    expect(Object.keys(await c.call('process.reattach', { id: 'e3' }))).toEqual(['found', 'running', 'firstSeq', 'lastSeq', 'stdinApplied']);
  });
});
