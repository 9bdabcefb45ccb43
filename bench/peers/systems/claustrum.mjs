/** claustrum itself, through the daemon and clients the suite uses (bench/lib/daemon.mjs, bench/lib/client.mjs). */
import { connect } from '../../lib/client.mjs';
import { rssOf, startDaemon } from '../../lib/daemon.mjs';
import { withTimeout } from '../../lib/stats.mjs';
import { registerPid, unregisterPid } from '../cleanup.mjs';
import { streamEnd } from '../common.mjs';

export const claustrum = {
  key: 'claustrum',
  label: 'claustrum',
  available: async () => ({ ok: true, version: 'this checkout (dist/)' }),

  async start() {
    const daemon = await startDaemon();
    registerPid(daemon.pid, 'claustrum daemon');
    const client = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    let seq = 0;
    const spawnTrue = async () => {
      const id = `t-${++seq}`;
      const t0 = performance.now();
      const exit = client.waitExit(id);
      await client.call('process.spawn', { id, command: 'true' });
      const f = await withTimeout(exit, 30_000, 'claustrum exit frame of true');
      if (f.exitCode !== 0) throw new Error(`true exited ${f.exitCode}`);
      return performance.now() - t0;
    };
    await spawnTrue(); // the login-shell PATH, read at the first spawn
    return {
      pid: daemon.pid,
      spawnTrue,
      /** One stream over `wire`; bytes counted as the client decodes them. */
      async stream(child, wire) {
        const c = await connect({ wire, socket: daemon.socket, token: daemon.token });
        const id = `s-${wire}-${++seq}`;
        let bytes = 0;
        let lastByte = 0;
        let resolveExit;
        const exited = new Promise((r) => (resolveExit = r));
        c.watch(id, (f) => {
          if (f.stream === 'exit') resolveExit(f);
          else {
            bytes += f.data.length;
            lastByte = performance.now();
          }
        });
        const t0 = performance.now();
        await c.call('process.spawn', { id, command: child.command, args: child.args });
        const end = await streamEnd({
          exited: withTimeout(exited, 600_000, 'claustrum stream'),
          count: () => bytes,
          expected: child.total,
          lastByteAt: () => lastByte,
        });
        await c.close();
        return { seconds: (end - t0) / 1000, bytes };
      },
      async holdIdle(n) {
        const idleRss = rssOf(daemon.pid);
        const t0 = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: 32 }, async () => {
            while (next < n) await client.call('process.spawn', { id: `idle-${next++}`, command: 'sleep', args: ['3600'] });
          }),
        );
        return { idleRss, startSeconds: (performance.now() - t0) / 1000, rss: () => rssOf(daemon.pid) };
      },
      async stop() {
        await client.close().catch(() => {});
        await daemon.stop(); // SIGTERM: a graceful shutdown kills every child's tree
        unregisterPid(daemon.pid);
      },
    };
  },
};
