/**
 * Figures 15 and 16: costs that should stay flat as the number of flooding children grows (issue 15).
 *
 * 15. Daemon CPU per MiB of output delivered: `total` bytes of random data written by one child, against the same
 *     bytes written by `children` children at once (each `total / children`), all spawned on one MessagePack
 *     connection of this process, which decodes every frame and checks its seqs. A fresh daemon per measurement (so
 *     no run inherits another's retained rings), runs alternating one child / many children; the daemon's CPU
 *     (/proc/<pid>/stat, all threads) from the first spawn request to the last exit frame. The figure is the median
 *     over runs of many / one, each run against the single-child run right before it.
 * 16. server.ping round trips on a connection of their own while `children` children flood (`cat /dev/zero`),
 *     read and decoded by a separate process (bench/lib/flood-many.mjs): all on one connection, then each on its
 *     own connection; a fresh daemon per case; per round `pings` sequential pings, p99 per round, median round.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../lib/client.mjs';
import { cpuOf, rssOf, startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, withTimeout } from '../lib/stats.mjs';
import { pingRound } from './many.mjs';

const FLOOD_MANY = path.join(path.dirname(fileURLToPath(import.meta.url)), '../lib/flood-many.mjs');

/** `count` children writing `each` bytes of random data: `cat` of one file listed each/fileSize times. */
function catChildren(dir, count, each) {
  const fileSize = Math.min(each, 16 * MiB);
  if (each % fileSize !== 0) throw new Error('bytes per child must be a multiple of the file size');
  const file = path.join(dir, `random-${fileSize}.bin`);
  writeFileSync(file, randomBytes(fileSize));
  return Array.from({ length: count }, () => ({ command: 'cat', args: Array.from({ length: each / fileSize }, () => file) }));
}

/** One measurement on a fresh daemon: daemon CPU ms per MiB while `kids` deliver their output to this process. */
async function floodCpuOnce(kids, expected, label) {
  const daemon = await startDaemon({ args: ['-no-login-path'] });
  try {
    const client = await connect({ wire: 'msgpack', socket: daemon.socket, token: daemon.token });
    // Warm the daemon's JIT on a short stream first, as every other figure does.
    await client.call('process.spawn', { id: 'warm', command: 'head', args: ['-c', String(4 * MiB), '/dev/zero'] });
    await withTimeout(client.waitExit('warm'), 60_000, 'warm-up stream');
    let bytes = 0;
    let left = kids.length;
    let error;
    const done = new Promise((resolve) => {
      kids.forEach((_, i) => {
        let next = 1;
        client.watch(`${label}-${i}`, (f) => {
          if (f.seq !== next) error ??= new Error(`${label}-${i}: seq ${f.seq} where ${next} was due`);
          next = f.seq + 1;
          if (f.stream !== 'exit') bytes += f.data.length;
          else if (--left === 0) resolve();
        });
      });
    });
    const cpu0 = cpuOf(daemon.pids);
    const t0 = performance.now();
    await Promise.all(kids.map((k, i) => client.call('process.spawn', { id: `${label}-${i}`, command: k.command, args: k.args })));
    await withTimeout(done, 600_000, `${kids.length} children's output`);
    const seconds = (performance.now() - t0) / 1000;
    const cpuMs = (cpuOf(daemon.pids) - cpu0) * 1000;
    const peakRss = rssOf(daemon.pids, 'VmHWM');
    await client.close();
    if (error) throw error;
    if (bytes !== expected) throw new Error(`${label}: ${bytes} of ${expected} bytes delivered`);
    return { cpuMsPerMiB: cpuMs / (bytes / MiB), mibps: bytes / MiB / seconds, peakRss };
  } finally {
    await daemon.stop();
  }
}

/** @param {{ runs: number, total: number, children: number, log: (s: string) => void }} o */
export async function measureFloodCpu(o) {
  const dir = tempDir('clb-flat-');
  const one = catChildren(dir, 1, o.total);
  const many = catChildren(dir, o.children, o.total / o.children);
  const runs = [];
  try {
    for (let r = 0; r < o.runs; r++) {
      const a = await floodCpuOnce(one, o.total, 'one');
      const b = await floodCpuOnce(many, o.total, 'many');
      runs.push({ one: a, many: b, ratio: b.cpuMsPerMiB / a.cpuMsPerMiB });
      o.log(
        `  run ${r + 1}: 1 child ${a.cpuMsPerMiB.toFixed(2)} ms/MiB (${a.mibps.toFixed(0)} MiB/s), ${o.children} children ${b.cpuMsPerMiB.toFixed(2)} ms/MiB (${b.mibps.toFixed(0)} MiB/s): ${(b.cpuMsPerMiB / a.cpuMsPerMiB).toFixed(2)}×`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const pick = (f) => median(runs.map(f));
  return {
    oneCpuMsPerMiB: pick((x) => x.one.cpuMsPerMiB),
    manyCpuMsPerMiB: pick((x) => x.many.cpuMsPerMiB),
    ratio: pick((x) => x.ratio),
    oneMiBps: pick((x) => x.one.mibps),
    manyMiBps: pick((x) => x.many.mibps),
    onePeakRss: pick((x) => x.one.peakRss),
    manyPeakRss: pick((x) => x.many.peakRss),
    runs,
  };
}

/** One case of figure 16 on a fresh daemon: `children` floods over `connections` connections, pings beside them. */
async function floodPingCase(o, connections) {
  const daemon = await startDaemon({ args: ['-no-login-path'] });
  const reader = spawn(process.execPath, [FLOOD_MANY, daemon.socket, daemon.token, String(o.children), String(connections)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  reader.stdout.on('data', (d) => (out += d));
  try {
    await withTimeout(
      new Promise((resolve, reject) => {
        reader.stdout.on('data', () => out.includes('ready') && resolve());
        reader.once('exit', (code) => reject(new Error(`flood reader exited ${code}`)));
      }),
      60_000,
      `${o.children} floods to start`,
    );
    const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    await pingRound(c, 20);
    const rounds = [];
    for (let r = 0; r < o.runs; r++) {
      const ping = await pingRound(c, o.pings);
      rounds.push(ping);
      o.log(`  ${connections} connection(s), round ${r + 1}: ping p50 ${ping.p50.toFixed(2)} ms p99 ${ping.p99.toFixed(2)} ms`);
    }
    await c.close();
    const rss = rssOf(daemon.pids);
    reader.kill('SIGTERM');
    await new Promise((r) => reader.once('exit', r));
    const flood = JSON.parse(out.slice(out.indexOf('{')));
    return {
      p99: median(rounds.map((x) => x.p99)),
      p50: median(rounds.map((x) => x.p50)),
      floodMiBps: flood.bytes / MiB / flood.seconds,
      rss,
      rounds,
    };
  } finally {
    if (reader.exitCode === null) reader.kill('SIGKILL');
    await daemon.stop();
  }
}

/** @param {{ runs: number, children: number, pings: number, log: (s: string) => void }} o */
export async function measureFloodPing(o) {
  return { oneConnection: await floodPingCase(o, 1), ownConnections: await floodPingCase(o, o.children) };
}
