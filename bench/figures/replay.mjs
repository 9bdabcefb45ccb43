/**
 * Figure 5: `process.reattach {fromSeq: 0}` of a full 16 MiB replay buffer, timed from the request to the last
 * frame decoded (the exit frame, the buffer's newest), on a fresh connection each run.
 *
 * The buffer is filled by a child that wrote more than the cap with no client attached (its spawning connection
 * closed at once), so it holds exactly what the cap allows: the newest frames, 16 MiB of serialized NDJSON.
 */
import { connect } from '../lib/client.mjs';
import { startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, sleep, withTimeout } from '../lib/stats.mjs';
import { catChild } from './throughput.mjs';
import { rmSync } from 'node:fs';

/** @param {{ runs: number, total: number, wires: string[], log: (s: string) => void }} o */
export async function measureReattach(o) {
  const dir = tempDir('clb-rp-');
  const daemon = await startDaemon();
  const out = {};
  try {
    const spawner = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    const child = catChild(dir, o.total);
    await spawner.call('process.spawn', { id: 'full', command: child.command, args: child.args });
    await spawner.close();
    // Wait for the exit (no receiver: the child runs at full speed and the buffer evicts from the front).
    const watcher = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    let entry;
    for (let i = 0; i < 3000; i++) {
      entry = (await watcher.call('process.list', {})).processes.find((p) => p.id === 'full');
      if (entry && !entry.running && entry.exitCode !== undefined) break;
      await sleep(10);
    }
    // The reap comes before the journal's last frames are read: wait until lastSeq stops moving (the exit frame read).
    for (let i = 0, prev = -1; i < 300; i++) {
      const seq = (await watcher.call('process.list', {})).processes.find((p) => p.id === 'full')?.lastSeq ?? 0;
      if (seq === prev) break;
      prev = seq;
      await sleep(20);
    }
    await watcher.close();
    for (const wire of o.wires) {
      const times = [];
      let replayed;
      for (let r = 0; r < o.runs + 1; r++) {
        const c = await connect({ wire, socket: daemon.socket, token: daemon.token });
        let bytes = 0;
        let frames = 0;
        let first;
        let last;
        const done = new Promise((resolve) => {
          c.watch('full', (f) => {
            frames++;
            first ??= f.seq;
            last = f.seq;
            if (f.stream === 'exit') resolve();
            else bytes += f.data.length;
          });
        });
        const t0 = performance.now();
        const reply = c.call('process.reattach', { id: 'full', fromSeq: 0 });
        await withTimeout(done, 30_000, 'reattach replay');
        const ms = performance.now() - t0;
        const res = await reply;
        await c.close();
        // The exit seen in process.list is the reap: the daemon may still be reading the journal's last frames, which
        // then come live after the replay (the reply's lastSeq is what the buffer held when it answered).
        if (first !== res.firstSeq || last < res.lastSeq || frames !== last - first + 1) {
          throw new Error(`replay ${first}..${last} (${frames} frames) where the reply says ${res.firstSeq}..${res.lastSeq}`);
        }
        replayed = { frames, bytes, firstSeq: res.firstSeq, lastSeq: res.lastSeq };
        if (r > 0) times.push(ms); // run 0 warms the path
      }
      out[wire] = { ms: median(times), samples: times, ...replayed };
      o.log(`  ${wire}: ${times.map((t) => t.toFixed(1)).join(', ')} ms; ${replayed.frames} frames, ${(replayed.bytes / MiB).toFixed(2)} MiB raw`);
    }
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
