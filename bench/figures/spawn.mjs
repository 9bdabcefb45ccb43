/**
 * Figures 3 and 4: the spawn path.
 *
 * 3. Latency of `true` from the spawn request to its exit frame, against `child_process.spawn('true')` to `close`
 *    in this (the client) process. Each round alternates one baseline spawn and one daemon spawn, so load on the
 *    shared machine hits both alike; p50 and p99 are per round, the figure is the median round.
 *    The first spawn of a daemon also waits for the login-shell PATH: measured separately, with and without
 *    `-no-login-path`, on fresh daemons.
 * 4. Throughput: spawns of `true` completed (exit frame received) per second with 32 requests in flight.
 */
import { spawn } from 'node:child_process';
import { connect } from '../lib/client.mjs';
import { cpuOf, startDaemon } from '../lib/daemon.mjs';
import { median, percentile, withTimeout } from '../lib/stats.mjs';

function rawSpawnTrue() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn('true');
    c.once('error', reject);
    c.once('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`true exited ${code}`))));
  });
}

let seq = 0;
async function daemonSpawnTrue(client) {
  const id = `sp-${++seq}`;
  const t0 = performance.now();
  const exit = client.waitExit(id);
  await client.call('process.spawn', { id, command: 'true' });
  const f = await withTimeout(exit, 10_000, 'exit frame of true');
  if (f.exitCode !== 0) throw new Error(`true exited ${f.exitCode}`);
  return performance.now() - t0;
}

/** @param {{ runs: number, spawns: number, log: (s: string) => void }} o */
export async function measureSpawnLatency(o) {
  const daemon = await startDaemon();
  const rounds = [];
  try {
    const client = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    // Warm both paths (the daemon's first spawn reads the login-shell PATH; measured separately below).
    for (let i = 0; i < 10; i++) {
      await rawSpawnTrue();
      await daemonSpawnTrue(client);
    }
    for (let r = 0; r < o.runs; r++) {
      const base = [];
      const ours = [];
      let rawCpu = 0;
      const daemonCpu0 = cpuOf(daemon.pids);
      for (let i = 0; i < o.spawns; i++) {
        const c0 = process.cpuUsage();
        base.push(await rawSpawnTrue());
        const c = process.cpuUsage(c0);
        rawCpu += (c.user + c.system) / 1000;
        ours.push(await daemonSpawnTrue(client));
      }
      const daemonCpu = ((cpuOf(daemon.pids) - daemonCpu0) * 1000) / o.spawns;
      const round = {
        baseP50: percentile(base, 50),
        baseP99: percentile(base, 99),
        p50: percentile(ours, 50),
        p99: percentile(ours, 99),
      };
      round.ratio = round.p50 / round.baseP50;
      round.daemonCpuMs = daemonCpu;
      round.clientCpuMs = rawCpu / o.spawns;
      rounds.push(round);
      o.log(
        `  round ${r + 1}: daemon p50 ${round.p50.toFixed(2)} ms p99 ${round.p99.toFixed(2)} ms; spawn('true') p50 ${round.baseP50.toFixed(2)} ms p99 ${round.baseP99.toFixed(2)} ms; ratio ${round.ratio.toFixed(2)}`,
      );
    }
    await client.close();
  } finally {
    await daemon.stop();
  }
  const pick = (k) => median(rounds.map((x) => x[k]));
  return {
    p50: pick('p50'),
    p99: pick('p99'),
    baseP50: pick('baseP50'),
    baseP99: pick('baseP99'),
    ratio: pick('ratio'),
    daemonCpuMs: pick('daemonCpuMs'),
    clientCpuMs: pick('clientCpuMs'),
    rounds,
  };
}

/** The first spawn of a fresh daemon, with and without the login-shell PATH lookup. */
export async function measureFirstSpawn(o) {
  const out = { loginPath: [], noLoginPath: [] };
  for (let r = 0; r < o.runs; r++) {
    for (const [key, args] of [
      ['loginPath', []],
      ['noLoginPath', ['-no-login-path']],
    ]) {
      const daemon = await startDaemon({ args });
      try {
        const client = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
        out[key].push(await daemonSpawnTrue(client));
        await client.close();
      } finally {
        await daemon.stop();
      }
    }
  }
  o.log(
    `  first spawn: login PATH ${out.loginPath.map((x) => x.toFixed(1)).join(', ')} ms; -no-login-path ${out.noLoginPath.map((x) => x.toFixed(1)).join(', ')} ms`,
  );
  return { loginPath: median(out.loginPath), noLoginPath: median(out.noLoginPath), samples: out };
}

/** @param {{ runs: number, spawns: number, inFlight: number, log: (s: string) => void }} o */
export async function measureSpawnThroughput(o) {
  const daemon = await startDaemon();
  const rates = [];
  const cpu = [];
  try {
    const client = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    await daemonSpawnTrue(client); // the login-shell PATH, once
    for (let r = 0; r < o.runs; r++) {
      let started = 0;
      const c0 = cpuOf(daemon.pids);
      const t0 = performance.now();
      const worker = async () => {
        while (started < o.spawns) {
          started++;
          await daemonSpawnTrue(client);
        }
      };
      await Promise.all(Array.from({ length: o.inFlight }, worker));
      const rate = o.spawns / ((performance.now() - t0) / 1000);
      rates.push(rate);
      cpu.push(((cpuOf(daemon.pids) - c0) * 1000) / o.spawns);
      o.log(`  round ${r + 1}: ${rate.toFixed(0)} spawns/s`);
    }
    await client.close();
  } finally {
    await daemon.stop();
  }
  return { rate: median(rates), samples: rates, daemonCpuMs: median(cpu) };
}
