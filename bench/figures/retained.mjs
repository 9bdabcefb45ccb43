/**
 * Figures 17 and 18: what retained (exited, not yet forgotten) processes cost the daemon (issue 15).
 *
 * 17. Spawn latency of a daemon holding `processes` exited processes with `each` bytes of output apiece in their
 *     replay buffers, against an identical daemon holding nothing, side by side: both started with the same flags
 *     (`-replay-budget` raised to REPLAY_BUDGET so the default 1 GiB of NDJSON-counted bytes does not trim what the
 *     loaded one holds), the loaded one filled by children that wrote their output with no client attached. Then per
 *     round `spawns` triples, alternating: a direct `spawn('true')` from this process, `true` through the fresh
 *     daemon, `true` through the loaded one, each from the request to its exit frame; p50 per round, the figure is the
 *     median over rounds of loaded / fresh.
 * 18. Memory per retained exited process with no output: a fresh daemon, a warm-up of spawns, then per round
 *     `processes` spawns of `true` (32 in flight) that all exit and stay retained; VmRSS after each round against
 *     before it, divided by the processes the round added; median round.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../lib/client.mjs';
import { rssOf, startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, percentile, sleep, withTimeout } from '../lib/stats.mjs';

/** The loaded and fresh daemons' `-replay-budget`: room for 1 GiB of output counted as NDJSON (4/3 of it). */
export const REPLAY_BUDGET = '2GiB';

function directSpawnTrue() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn('true');
    c.once('error', reject);
    c.once('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`true exited ${code}`))));
  });
}

let seq = 0;
async function daemonSpawnTrue(client) {
  const id = `t-${++seq}`;
  const t0 = performance.now();
  const exit = client.waitExit(id);
  await client.call('process.spawn', { id, command: 'true' });
  const f = await withTimeout(exit, 10_000, 'exit frame of true');
  if (f.exitCode !== 0) throw new Error(`true exited ${f.exitCode}`);
  return performance.now() - t0;
}

/** Runs `fn(i)` for i < n with `width` at a time. */
async function inFlight(n, width, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, width) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** Waits until the daemon runs no child; returns its server.info. */
async function quiet(client, what) {
  const deadline = performance.now() + 600_000;
  for (;;) {
    const info = await client.call('server.info');
    if (info.processes.live === 0) return info;
    if (performance.now() > deadline) throw new Error(`${what}: ${info.processes.live} children still running`);
    await sleep(100);
  }
}

/** Fills a daemon with `n` exited processes of `each` bytes of output, written with no client attached. */
async function load(daemon, dir, n, each) {
  const file = path.join(dir, 'output.bin');
  writeFileSync(file, randomBytes(each));
  const spawner = await connect({ wire: 'msgpack', socket: daemon.socket, token: daemon.token });
  // The spawner never watches these ids: their frames are decoded and dropped until it closes, then none is sent.
  await inFlight(n, 32, (i) => spawner.call('process.spawn', { id: `held-${i}`, command: 'cat', args: [file] }));
  await spawner.close();
  const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
  const info = await quiet(c, 'loading');
  await c.close();
  return info;
}

/** @param {{ runs: number, spawns: number, processes: number, each: number, log: (s: string) => void }} o */
export async function measureRetainedSpawn(o) {
  const dir = tempDir('clb-retained-');
  const args = ['-no-login-path', '-replay-budget', REPLAY_BUDGET];
  const fresh = await startDaemon({ args });
  const loaded = await startDaemon({ args });
  try {
    const t0 = performance.now();
    const info = await load(loaded, dir, o.processes, o.each);
    const loadSeconds = (performance.now() - t0) / 1000;
    if (info.processes.retained < o.processes) throw new Error(`only ${info.processes.retained} processes retained`);
    const f = await connect({ wire: 'ndjson', socket: fresh.socket, token: fresh.token });
    const l = await connect({ wire: 'ndjson', socket: loaded.socket, token: loaded.token });
    for (let i = 0; i < 10; i++) {
      await directSpawnTrue();
      await daemonSpawnTrue(f);
      await daemonSpawnTrue(l);
    }
    const rounds = [];
    for (let r = 0; r < o.runs; r++) {
      const t = { direct: [], fresh: [], loaded: [] };
      for (let i = 0; i < o.spawns; i++) {
        t.direct.push(await directSpawnTrue());
        t.fresh.push(await daemonSpawnTrue(f));
        t.loaded.push(await daemonSpawnTrue(l));
      }
      const round = { directP50: percentile(t.direct, 50), freshP50: percentile(t.fresh, 50), loadedP50: percentile(t.loaded, 50) };
      round.ratio = round.loadedP50 / round.freshP50;
      rounds.push(round);
      o.log(
        `  round ${r + 1}: loaded p50 ${round.loadedP50.toFixed(2)} ms, fresh ${round.freshP50.toFixed(2)} ms, direct ${round.directP50.toFixed(2)} ms; ${round.ratio.toFixed(2)}×`,
      );
    }
    const freshRss = rssOf(fresh.pids);
    const loadedRss = rssOf(loaded.pids);
    const replayBytes = (await l.call('server.info')).replayBytes;
    await f.close();
    await l.close();
    const pick = (k) => median(rounds.map((x) => x[k]));
    return {
      loadedP50: pick('loadedP50'),
      freshP50: pick('freshP50'),
      directP50: pick('directP50'),
      ratio: pick('ratio'),
      freshRss,
      loadedRss,
      replayBytes,
      loadSeconds,
      rounds,
    };
  } finally {
    await fresh.stop();
    await loaded.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** @param {{ runs: number, processes: number, log: (s: string) => void }} o */
export async function measureRetainedMemory(o) {
  const daemon = await startDaemon({ args: ['-no-login-path'] });
  try {
    const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    let n = 0;
    const spawnAll = async (count) => {
      const ids = Array.from({ length: count }, () => `r-${n++}`);
      const exits = ids.map((id) => c.waitExit(id));
      await inFlight(count, 32, (i) => c.call('process.spawn', { id: ids[i], command: 'true' }));
      await withTimeout(Promise.all(exits), 300_000, `${count} exits`);
    };
    // Warm-up: the first spawns load code and grow the heap's first pages, which no later process pays for again.
    await spawnAll(Math.min(200, o.processes));
    await sleep(500);
    const rounds = [];
    for (let r = 0; r < o.runs; r++) {
      const before = rssOf(daemon.pids);
      const keeperBefore = rssOf(daemon.keeperPid);
      await spawnAll(o.processes);
      await sleep(500);
      const after = rssOf(daemon.pids);
      const keeperPerProcess = (rssOf(daemon.keeperPid) - keeperBefore) / o.processes;
      const info = await c.call('server.info');
      if (info.processes.retained !== n) throw new Error(`${info.processes.retained} processes retained, ${n} expected`);
      rounds.push({ before, after, perProcess: (after - before) / o.processes, keeperPerProcess });
      o.log(
        `  round ${r + 1}: RSS ${(before / MiB).toFixed(1)} → ${(after / MiB).toFixed(1)} MiB for ${o.processes} more retained: ${((after - before) / o.processes / 1024).toFixed(1)} KiB each`,
      );
    }
    await c.close();
    return {
      perProcess: median(rounds.map((x) => x.perProcess)),
      keeperPerProcess: median(rounds.map((x) => x.keeperPerProcess)),
      retained: n,
      rss: rounds.at(-1).after,
      rounds,
    };
  } finally {
    await daemon.stop();
  }
}
