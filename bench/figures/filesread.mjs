/**
 * Figure 11: one request cannot stall the others (issue 10, point 8). Four connections each read the same file of
 * the largest size files.read serves (64 MiB, `maxBytes` at its ceiling), all at once; meanwhile a fifth connection
 * pings back to back. Reported: the ping p99 and worst round trip during the reads, the daemon's peak RSS above its
 * resting RSS (VmHWM after a clear_refs reset), and how long the four reads took.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../lib/client.mjs';
import { resetPeakRss, rssOf, startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, percentile } from '../lib/stats.mjs';

/** @param {{ runs: number, size: number, readers: number, log: (s: string) => void }} o */
export async function measureFilesRead(o) {
  const dir = tempDir('clb-read-');
  const file = path.join(dir, 'big.txt');
  // Printable text: the JSON string is as long as the file (no escapes), the cheapest case for the encoder.
  writeFileSync(file, randomBytes(o.size / 2).toString('hex'));
  const daemon = await startDaemon();
  try {
    const pinger = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    const readers = await Promise.all(
      Array.from({ length: o.readers }, () => connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token })),
    );
    const rounds = [];
    for (let r = 0; r < o.runs; r++) {
      const rest = rssOf(daemon.pids);
      const reset = resetPeakRss(daemon.pids);
      const t0 = performance.now();
      let done = false;
      const reads = Promise.all(
        readers.map(async (c) => {
          const res = await c.call('files.read', { path: file, maxBytes: o.size });
          if (res.content.length !== o.size) throw new Error(`read ${res.content.length} of ${o.size} bytes`);
        }),
      ).finally(() => (done = true));
      const pings = [];
      while (!done) {
        const p0 = performance.now();
        await pinger.call('server.ping');
        pings.push(performance.now() - p0);
      }
      await reads;
      const seconds = (performance.now() - t0) / 1000;
      const peak = reset ? rssOf(daemon.pids, 'VmHWM') - rest : Number.NaN;
      const round = { p99: percentile(pings, 99), max: Math.max(...pings), pings: pings.length, peakMiB: peak / MiB, seconds };
      rounds.push(round);
      o.log(
        `  round ${r + 1}: ping p99 ${round.p99.toFixed(1)} ms, worst ${round.max.toFixed(1)} ms over ${round.pings} pings; peak RSS +${round.peakMiB.toFixed(0)} MiB; ${o.readers} reads in ${seconds.toFixed(2)} s`,
      );
    }
    await pinger.close();
    for (const c of readers) await c.close();
    return {
      pingP99: median(rounds.map((x) => x.p99)),
      pingMax: Math.max(...rounds.map((x) => x.max)),
      peakMiB: median(rounds.map((x) => x.peakMiB)),
      seconds: median(rounds.map((x) => x.seconds)),
      rounds,
    };
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run alone: node bench/figures/filesread.mjs [runs]
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await measureFilesRead({ runs: Number(process.argv[2] ?? 1), size: 64 * MiB, readers: 4, log: console.log });
  console.log(JSON.stringify({ pingP99: r.pingP99, pingMax: r.pingMax, peakMiB: r.peakMiB, seconds: r.seconds }));
}
