/**
 * Requests pipelined behind a spawn apply in arrival order (an extension of the reference, which races them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../helpers/daemon.js';
import { b64 } from '../helpers/rpc.js';

describe('arrival order behind a pending spawn', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  const line = (token: string, id: number, method: string, params: unknown) =>
    `${JSON.stringify({ jsonrpc: '2.0', id, method, params, auth: token })}\n`;

  it('applies spawn → stdin → stdin → reattach → stats → kill in that order, in one write', async () => {
    for (let round = 0; round < 5; round++) {
      const c = await d.client();
      const pid = `o${round}`;
      c.sendRaw(
        line(d.token, 1, 'process.spawn', { id: pid, command: 'sleep', args: ['30'] }) +
          line(d.token, 2, 'process.stdin', { id: pid, data: b64('ab') }) +
          line(d.token, 3, 'process.stdin', { id: pid, data: b64('cde') }) +
          line(d.token, 4, 'process.reattach', { id: pid, fromSeq: 0 }) +
          line(d.token, 5, 'process.stats', { id: pid }) +
          line(d.token, 6, 'process.kill', { id: pid, signal: 'KILL' }),
      );
      const [, s1, s2, r, st, k] = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => c.waitFor((m) => m.id === id)));
      expect(s1.result).toEqual({ success: true, applied: 2 });
      expect(s2.result).toEqual({ success: true, applied: 5 });
      // Both writes were applied before the reattach looked: it reports all five bytes.
      expect(r.result).toMatchObject({ found: true, running: true, stdinApplied: 5 });
      // And the stats ran before the kill.
      expect(st.result).toMatchObject({ found: true, running: true });
      expect(k.result).toEqual({ success: true });
      expect((await c.waitExit(pid)).signal).toBe('SIGKILL');
      c.destroy();
    }
  });

  it('lets a killAndWait behind a spawn signal in order without holding later requests on the connection', async () => {
    const c = await d.client();
    c.sendRaw(
      line(d.token, 1, 'process.spawn', { id: 'kw', command: 'sleep', args: ['30'] }) +
        line(d.token, 2, 'process.killAndWait', { id: 'kw', signal: 'TERM' }) +
        line(d.token, 3, 'process.spawn', { id: 'kw2', command: 'true' }) +
        line(d.token, 4, 'process.stdin', { id: 'kw2' }),
    );
    const [, kw, , st] = await Promise.all([1, 2, 3, 4].map((id) => c.waitFor((m) => m.id === id)));
    expect(kw.result).toEqual({ found: true, died: true });
    expect(st.error === undefined || st.error.message === 'Process not running').toBe(true);
  });
});
