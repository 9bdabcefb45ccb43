/**
 * Figure 8: the memory bound. A child writes `total` bytes with no client attached (its spawning connection closes
 * at once), so every frame goes into the replay buffer and old ones are evicted at the 16 MiB cap. The figure is
 * the daemon's peak RSS growth over its RSS just before the spawn: the kernel's peak mark (VmHWM, reset through
 * /proc/<pid>/clear_refs first), cross-checked by sampling VmRSS every 5 ms. A fresh daemon per run.
 */
import { connect } from '../lib/client.mjs';
import { resetPeakRss, rssOf, startDaemon } from '../lib/daemon.mjs';
import { existsSync, readFileSync } from 'node:fs';
import { median, MiB, sleep } from '../lib/stats.mjs';

/** A child writing `total` bytes: `head -c <total> /dev/zero` (content is irrelevant to memory). */
function headChild(total) {
  return { command: 'head', args: ['-c', String(total), '/dev/zero'] };
}

function alive(pid) {
  // A zombie still has /proc/<pid>; it is gone once the daemon reaps it.
  return existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** @param {{ runs: number, total: number, log: (s: string) => void }} o */
export async function measureMemoryBound(o) {
  const growth = [];
  const rows = [];
  for (let r = 0; r < o.runs; r++) {
    const daemon = await startDaemon({ args: ['-no-login-path'] });
    try {
      const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
      await c.call('server.ping');
      await sleep(200);
      const before = rssOf(daemon.pids);
      const peakMarkReset = resetPeakRss(daemon.pids);
      let sampled = before;
      const t0 = performance.now();
      const child = headChild(o.total);
      const { pid } = await c.call('process.spawn', { id: 'big', command: child.command, args: child.args, wantPid: true });
      await c.close(); // no client attached from here on
      while (alive(pid)) {
        sampled = Math.max(sampled, rssOf(daemon.pids));
        await sleep(5);
      }
      const seconds = (performance.now() - t0) / 1000;
      await sleep(50);
      sampled = Math.max(sampled, rssOf(daemon.pids));
      const hwm = peakMarkReset ? rssOf(daemon.pids, 'VmHWM') : sampled;
      const peak = Math.max(hwm, sampled);
      const g = peak - before;
      growth.push(g);
      rows.push({ before, peak, growth: g, hwm: peakMarkReset ? hwm : undefined, sampledPeak: sampled, seconds });
      o.log(
        `  run ${r + 1}: RSS before ${(before / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB (VmHWM ${peakMarkReset ? (hwm / MiB).toFixed(1) : 'n/a'}, sampled ${(sampled / MiB).toFixed(1)}), growth ${(g / MiB).toFixed(1)} MiB; ${(o.total / MiB / seconds).toFixed(0)} MiB/s into the buffer`,
      );
    } finally {
      await daemon.stop();
    }
  }
  return { growth: median(growth), rows };
}
