/**
 * Figure 6: 1,000 live `sleep` children. The resident memory (VmRSS) of the daemon and its keeper once they all run,
 * the keeper's part apart, and the latency
 * of `server.ping` on a second connection (sequential round trips), each round a median/p99 of `pings` pings.
 */
import { connect } from '../lib/client.mjs';
import { rssOf, startDaemon } from '../lib/daemon.mjs';
import { median, MiB, percentile, sleep } from '../lib/stats.mjs';

export async function pingRound(client, n) {
  const t = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await client.call('server.ping');
    t.push(performance.now() - t0);
  }
  return { p50: percentile(t, 50), p99: percentile(t, 99) };
}

/** @param {{ runs: number, children: number, pings: number, log: (s: string) => void }} o */
export async function measureManyChildren(o) {
  const daemon = await startDaemon();
  try {
    const spawner = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    const pinger = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    await pingRound(pinger, 50);
    const idleRss = rssOf(daemon.pids);
    const idleKeeperRss = rssOf(daemon.keeperPid);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < o.children) {
          const id = `sleep-${next++}`;
          await spawner.call('process.spawn', { id, command: 'sleep', args: ['3600'] });
        }
      }),
    );
    const spawnSeconds = (performance.now() - t0) / 1000;
    const live = (await pinger.call('process.list', {})).processes.filter((p) => p.running).length;
    if (live !== o.children) throw new Error(`${live} children running, expected ${o.children}`);
    await sleep(500);
    const rounds = [];
    for (let r = 0; r < o.runs; r++) {
      const ping = await pingRound(pinger, o.pings);
      const rss = rssOf(daemon.pids);
      rounds.push({ ...ping, rss, keeperRss: rssOf(daemon.keeperPid) });
      o.log(`  round ${r + 1}: RSS ${(rss / MiB).toFixed(1)} MiB, ping p50 ${ping.p50.toFixed(3)} ms p99 ${ping.p99.toFixed(3)} ms`);
    }
    await spawner.close();
    await pinger.close();
    return {
      rss: median(rounds.map((x) => x.rss)),
      idleRss,
      // The keeper's part (it holds the children, their pipes and journals; the daemon their records and buffers).
      keeperRss: median(rounds.map((x) => x.keeperRss)),
      idleKeeperRss,
      p50: median(rounds.map((x) => x.p50)),
      p99: median(rounds.map((x) => x.p99)),
      spawnSeconds,
      rounds,
    };
  } finally {
    await daemon.stop();
  }
}
