/**
 * Figure 10: what observers cost the owner. A child writes `total` bytes of random data (`cat` of a file) to its
 * owner, which decodes every frame over MessagePack; the owner's throughput is measured with no observer, with one
 * observer that never reads (it connects, observes, and pauses its socket: it falls behind and is left behind), and
 * with three observers reading as fast as they can (raw connections that discard their bytes, so the measuring
 * process spends nothing on them). Runs of the three conditions are interleaved, so a noisy moment
 * of a shared machine hits them alike; each ratio is the median of per-round ratios against the round's no-observer
 * run.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import { connect } from '../lib/client.mjs';
import { startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, withTimeout } from '../lib/stats.mjs';
import { catChild } from './throughput.mjs';

const CONDITIONS = ['none', 'paused', 'three'];

/** @param {{ runs: number, total: number, log: (s: string) => void }} o */
export async function measureObservers(o) {
  const dir = tempDir('clb-ob-');
  const daemon = await startDaemon();
  const child = catChild(dir, o.total);
  const samples = Object.fromEntries(CONDITIONS.map((c) => [c, []]));
  const ratios = { paused: [], three: [] };
  let n = 0;
  try {
    // One warm-up round, not counted.
    for (let round = 0; round <= o.runs; round++) {
      const rate = {};
      for (const cond of CONDITIONS) {
        const id = `ob-${++n}`;
        const owner = await connect({ wire: 'msgpack', socket: daemon.socket, token: daemon.token });
        const watchers = [];
        let bytes = 0;
        const done = new Promise((resolve) =>
          owner.watch(id, (f) => {
            if (f.stream === 'exit') resolve();
            else bytes += f.data.length;
          }),
        );
        // The owner's spawn reply precedes every frame; observers join right after, before the first frame is read.
        const t0 = performance.now();
        await owner.call('process.spawn', { id, command: child.command, args: child.args });
        if (cond !== 'none') {
          const count = cond === 'three' ? 3 : 1;
          for (let k = 0; k < count; k++) watchers.push(await rawObserver(daemon, id, cond === 'paused'));
        }
        await withTimeout(done, 120_000, `flood under condition ${cond}`);
        const seconds = (performance.now() - t0) / 1000;
        if (bytes !== o.total) throw new Error(`owner decoded ${bytes} of ${o.total} bytes under condition ${cond}`);
        rate[cond] = o.total / seconds;
        for (const w of watchers) w.destroy();
        await owner.close();
        o.log(`round ${round} ${cond}: ${(rate[cond] / MiB).toFixed(0)} MiB/s`);
      }
      if (round === 0) continue;
      for (const cond of CONDITIONS) samples[cond].push(rate[cond]);
      ratios.paused.push(rate.paused / rate.none);
      ratios.three.push(rate.three / rate.none);
    }
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    none: median(samples.none),
    paused: median(samples.paused),
    three: median(samples.three),
    pausedRatio: median(ratios.paused),
    threeRatio: median(ratios.three),
  };
}

/**
 * An observer on its own NDJSON connection that discards what it reads (or, `paused`, reads nothing once the observe
 * is sent), so the measuring process spends no CPU on it: what the figure shows is the daemon's cost.
 */
function rawObserver(daemon, id, paused) {
  return new Promise((resolve, reject) => {
    const s = net.connect(daemon.socket);
    s.once('error', reject);
    s.once('connect', () => {
      s.on('error', () => {});
      s.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'process.observe', params: { id }, auth: daemon.token })}\n`);
      if (paused) s.pause();
      else s.on('data', () => {});
      resolve(s);
    });
  });
}
