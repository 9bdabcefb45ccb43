/**
 * Figure 19: the global replay budget under many streaming children (issue 15; the budget is src/replay/budget.ts,
 * `-replay-budget`, 1 GiB by default). A fresh daemon per run with the budget given (the default at full size);
 * `children` children each write `each` bytes of random data (`cat` of a file) with no client attached (their
 * spawning connection closes once every spawn is answered), so all of it goes into replay buffers: `children × each`
 * is several times the budget. Meanwhile a second connection samples `server.info`'s replayBytes (the bytes the
 * budget counts, NDJSON-encoded) every 20 ms, and the daemon's peak RSS is the kernel's VmHWM, reset through
 * /proc/<pid>/clear_refs before the spawns, cross-checked by sampling VmRSS. Growth = peak − RSS before the spawns.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../lib/client.mjs';
import { resetPeakRss, rssOf, startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, sleep } from '../lib/stats.mjs';

/** Bytes of a size flag (`16MiB`, `1GiB`). */
export function sizeBytes(flag) {
  const m = /^(\d+)(KiB|MiB|GiB)$/.exec(flag);
  if (!m) throw new Error(`unsupported size ${flag}`);
  return Number(m[1]) * { KiB: 1024, MiB: MiB, GiB: 1024 * MiB }[m[2]];
}

/** @param {{ runs: number, children: number, each: number, budget: string, log: (s: string) => void }} o */
export async function measureBudget(o) {
  const dir = tempDir('clb-budget-');
  const fileSize = Math.min(o.each, 16 * MiB);
  if (o.each % fileSize !== 0) throw new Error('bytes per child must be a multiple of the file size');
  const file = path.join(dir, 'random.bin');
  writeFileSync(file, randomBytes(fileSize));
  const args = Array.from({ length: o.each / fileSize }, () => file);
  const budget = sizeBytes(o.budget);
  const rows = [];
  try {
    for (let r = 0; r < o.runs; r++) {
      const daemon = await startDaemon({ args: ['-no-login-path', '-replay-budget', o.budget] });
      try {
        const watcher = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
        await watcher.call('server.ping');
        await sleep(200);
        const before = rssOf(daemon.pids);
        const keeperBefore = rssOf(daemon.keeperPid);
        const peakMarkReset = resetPeakRss(daemon.pids);
        let sampledRss = before;
        let peakReplay = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            const info = await watcher.call('server.info');
            peakReplay = Math.max(peakReplay, info.replayBytes);
            sampledRss = Math.max(sampledRss, rssOf(daemon.pids));
            await sleep(20);
          }
        })();
        const t0 = performance.now();
        const spawner = await connect({ wire: 'msgpack', socket: daemon.socket, token: daemon.token });
        await Promise.all(Array.from({ length: o.children }, (_, i) => spawner.call('process.spawn', { id: `s-${i}`, command: 'cat', args })));
        await spawner.close(); // no client attached from here on
        let info;
        for (;;) {
          info = await watcher.call('server.info');
          if (info.processes.live === 0) break;
          if (performance.now() - t0 > 600_000) throw new Error(`${info.processes.live} children still running`);
          await sleep(50);
        }
        const seconds = (performance.now() - t0) / 1000;
        sampling = false;
        await sampler;
        peakReplay = Math.max(peakReplay, info.replayBytes);
        sampledRss = Math.max(sampledRss, rssOf(daemon.pids));
        const hwm = peakMarkReset ? rssOf(daemon.pids, 'VmHWM') : sampledRss;
        const peak = Math.max(hwm, sampledRss);
        // The keeper's part: it holds the children, their pipe reads and the journal writes (the files are page cache).
        const keeperGrowth = (peakMarkReset ? rssOf(daemon.keeperPid, 'VmHWM') : rssOf(daemon.keeperPid)) - keeperBefore;
        const row = {
          before,
          peak,
          growth: peak - before,
          keeperGrowth,
          peakReplay,
          endReplay: info.replayBytes,
          endRss: rssOf(daemon.pids),
          seconds,
        };
        rows.push(row);
        await watcher.close();
        o.log(
          `  run ${r + 1}: replay bytes peak ${(peakReplay / MiB).toFixed(0)} MiB (budget ${(budget / MiB).toFixed(0)} MiB), RSS ${(before / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB (+${(row.growth / MiB).toFixed(0)}, the keeper +${(keeperGrowth / MiB).toFixed(0)}), ${((o.children * o.each) / MiB / seconds).toFixed(0)} MiB/s written`,
        );
      } finally {
        await daemon.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const pick = (k) => median(rows.map((x) => x[k]));
  return {
    budget,
    peakReplay: pick('peakReplay'),
    growth: pick('growth'),
    keeperGrowth: pick('keeperGrowth'),
    before: pick('before'),
    endRss: pick('endRss'),
    rows,
  };
}
