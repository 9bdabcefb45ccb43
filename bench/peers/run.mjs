#!/usr/bin/env node
/**
 * `npm run bench:peers`: claustrum beside what a user would pick instead (pm2, tmux, supervisord) and the physical
 * baselines (a direct child_process.spawn, a raw relay of the same bytes), on the same machine in the same run
 * (issue 15). Not part of CI or `npm test`: it installs pm2 and starts other daemons.
 *
 *   npm run build && node bench/peers/run.mjs            full scale (the sizes)
 *   PEERS_SCALE=small node bench/peers/run.mjs           small sizes: a check that every system works
 *   PEERS_ONLY=claustrum,tmux                            only these systems (baselines always run)
 *   PEERS_QUIET_MS=30000                                 how long a subscriber waits, after the child's exit, for a
 *                                                        stream's next byte before it counts it ended (1500)
 *   BENCH_OUT=<dir>                                      where peers.json goes (default bench/); RESULTS.md there is
 *                                                        re-rendered from its results.json by `bench/run.mjs --render`
 *
 * pm2 is installed with npm into PM2_CACHE (default ~/.cache/claustrum-bench/pm2), outside the repository; tmux and
 * supervisord are Debian's (`apt-get install tmux supervisor`) and are skipped, with the reason, when missing.
 * Every daemon and child started is stopped on every exit path (bench/peers/cleanup.mjs).
 *
 * Figures, each the median of interleaved runs against a baseline measured in the same run:
 * - spawn → exit of `true`, p50: per round, one direct spawn and one through the system, alternating;
 * - N spawns of `true` with 32 in flight: per round, the direct spawns, then the system's;
 * - a child's text output to a subscriber: per run, a raw-relay run, then the system's; throughput and the fraction
 *   of the bytes the subscriber got;
 * - RSS of the system's daemon holding N idle `sleep` children, against a Node process holding them itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { relayOnce } from '../figures/throughput.mjs';
import { ROOT, tempDir } from '../lib/daemon.mjs';
import { median, MiB, percentile, sleep } from '../lib/stats.mjs';
import { cleanupAll, installCleanup, registerPid, unregisterPid } from './cleanup.mjs';
import { inFlight, textChild } from './common.mjs';
import { claustrum } from './systems/claustrum.mjs';
import { pm2 } from './systems/pm2.mjs';
import { supervisord } from './systems/supervisord.mjs';
import { tmux } from './systems/tmux.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCALE = process.env.PEERS_SCALE === 'small' ? 'small' : 'full';
const SIZES =
  SCALE === 'small'
    ? {
        spawnLatency: { rounds: 3, spawns: 20 },
        many: { rounds: 3, spawns: 64, inFlight: 32 },
        stream: { runs: 3, total: 16 * MiB },
        idle: { children: 50 },
      }
    : {
        spawnLatency: { rounds: 3, spawns: 200 },
        many: { rounds: 3, spawns: 200, inFlight: 32 },
        stream: { runs: 3, total: 256 * MiB },
        idle: { children: 1000 },
      };
const SYSTEMS = [claustrum, pm2, tmux, supervisord];
const only = process.env.PEERS_ONLY?.split(',').map((s) => s.trim());
const log = (s) => process.stderr.write(`${s}\n`);

installCleanup(log);

// ---- baselines ----

function directSpawnTrue() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn('true');
    c.once('error', reject);
    c.once('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`true exited ${code}`))));
  });
}

/** A fresh Node process holding `n` idle children (bench/peers/hold.mjs). */
async function directHold(n) {
  const c = spawn(process.execPath, [path.join(HERE, 'hold.mjs'), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  registerPid(c.pid, 'baseline holder');
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  while (!out.includes('\n')) {
    if (c.exitCode !== null) throw new Error(`the baseline holder exited ${c.exitCode}`);
    await sleep(100);
  }
  const r = JSON.parse(out.split('\n')[0]);
  const closed = new Promise((resolve) => c.once('close', resolve));
  c.kill('SIGTERM');
  await closed;
  unregisterPid(c.pid);
  return r;
}

function loadNow() {
  let pressure = 'unavailable';
  try {
    pressure = readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0];
  } catch {}
  return {
    loadavg: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    cpuPressure: pressure,
  };
}

function commit() {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// ---- the run ----

const started = Date.now();
const before = loadNow();
const dir = tempDir('clb-peers-');
const versions = {};
const skipped = {};
const chosen = [];
for (const s of SYSTEMS) {
  if (only && !only.includes(s.key)) continue;
  const a = await s.available(log);
  if (a.ok) {
    versions[s.key] = a.version;
    chosen.push(s);
  } else {
    skipped[s.key] = a.why;
    log(`${s.label}: skipped: ${a.why}`);
  }
}
const child = textChild(dir, SIZES.stream.total);
const figures = { spawn: {}, many: {}, stream: {}, idle: {} };
const failures = {};

/** Runs one system's part of a figure; a failure is recorded and that system leaves the figure. */
async function guarded(figure, key, fn) {
  if (failures[`${figure}:${key}`]) return;
  try {
    await fn();
  } catch (err) {
    failures[`${figure}:${key}`] = err?.message ?? String(err);
    log(`${figure}: ${key} failed: ${err?.stack ?? err}`);
  }
}

try {
  // Phase 1: one instance of each system for the spawn and stream figures.
  const live = {};
  for (const s of chosen) {
    log(`starting ${s.label}`);
    mkdirSync(path.join(dir, s.key), { recursive: true });
    try {
      live[s.key] = await s.start(path.join(dir, s.key), { child, idle: 1 });
    } catch (err) {
      failures[`start:${s.key}`] = err?.message ?? String(err);
      log(`${s.label}: failed to start: ${err?.stack ?? err}`);
    }
  }

  log(`spawn latency: ${SIZES.spawnLatency.rounds} rounds of ${SIZES.spawnLatency.spawns} pairs`);
  for (let round = 0; round < SIZES.spawnLatency.rounds; round++) {
    for (const [key, sys] of Object.entries(live)) {
      await guarded('spawn', key, async () => {
        const base = [];
        const ours = [];
        for (let i = 0; i < SIZES.spawnLatency.spawns; i++) {
          base.push(await directSpawnTrue());
          ours.push(await sys.spawnTrue());
        }
        const r = { p50: percentile(ours, 50), p99: percentile(ours, 99), baseP50: percentile(base, 50) };
        r.ratio = r.p50 / r.baseP50;
        (figures.spawn[key] ??= []).push(r);
        log(`  round ${round + 1} ${key}: p50 ${r.p50.toFixed(2)} ms, direct ${r.baseP50.toFixed(2)} ms`);
      });
    }
  }

  const { spawns, inFlight: width } = SIZES.many;
  log(`spawn throughput: ${SIZES.many.rounds} rounds of ${spawns} spawns, ${width} in flight`);
  for (let round = 0; round < SIZES.many.rounds; round++) {
    for (const [key, sys] of Object.entries(live)) {
      await guarded('many', key, async () => {
        const baseSeconds = await inFlight(spawns, width, () => directSpawnTrue());
        let seconds;
        if (sys.slots) {
          // supervisord: each worker restarts its own program, the only way to have 32 of `true` at once.
          let next = 0;
          const t0 = performance.now();
          await Promise.all(
            sys.slots.slice(0, width).map(async (slot) => {
              while (next < spawns) {
                next++;
                await sys.spawnTrueIn(slot);
              }
            }),
          );
          seconds = (performance.now() - t0) / 1000;
        } else {
          seconds = await inFlight(spawns, width, () => sys.spawnTrue());
        }
        const r = { rate: spawns / seconds, baseRate: spawns / baseSeconds };
        r.ratio = r.rate / r.baseRate;
        (figures.many[key] ??= []).push(r);
        log(`  round ${round + 1} ${key}: ${r.rate.toFixed(0)} spawns/s, direct ${r.baseRate.toFixed(0)} spawns/s`);
      });
    }
  }

  const streams = [];
  for (const key of Object.keys(live)) {
    if (key === 'claustrum') streams.push(['claustrum-ndjson', key, 'ndjson'], ['claustrum-msgpack', key, 'msgpack']);
    else streams.push([key, key, undefined]);
  }
  log(`text output: ${SIZES.stream.runs} runs of ${(SIZES.stream.total / MiB).toFixed(0)} MiB`);
  for (let run = 0; run < SIZES.stream.runs; run++) {
    for (const [name, key, wire] of streams) {
      await guarded('stream', name, async () => {
        const relay = await relayOnce(dir, child, `${run}-${name}`);
        if (relay.bytes !== child.total) throw new Error(`relay delivered ${relay.bytes} of ${child.total} bytes`);
        const d = await live[key].stream(child, wire);
        const r = { mibps: d.bytes / MiB / d.seconds, relayMibps: relay.bytes / MiB / relay.seconds, delivered: d.bytes / child.total };
        r.ratio = r.mibps / r.relayMibps;
        (figures.stream[name] ??= []).push(r);
        log(
          `  run ${run + 1} ${name}: ${r.mibps.toFixed(0)} MiB/s (${(100 * r.delivered).toFixed(1)}% delivered), relay ${r.relayMibps.toFixed(0)} MiB/s`,
        );
      });
    }
  }
  for (const [key, sys] of Object.entries(live)) {
    log(`stopping ${key}`);
    await sys.stop().catch((err) => log(`${key}: stop: ${err.message}`));
  }

  // Phase 2: a fresh instance of each for the idle children, one at a time.
  const n = SIZES.idle.children;
  log(`idle children: ${n} each`);
  await guarded('idle', 'direct', async () => {
    const h = await directHold(n);
    figures.idle.direct = { idleRss: h.idleRss, rss: median(h.rss), samples: h.rss, startSeconds: h.startSeconds };
  });
  for (const s of chosen) {
    if (failures[`start:${s.key}`]) continue;
    await guarded('idle', s.key, async () => {
      mkdirSync(path.join(dir, `${s.key}-idle`), { recursive: true });
      const sys = await s.start(path.join(dir, `${s.key}-idle`), { child, idle: n });
      try {
        const h = await sys.holdIdle(n);
        await sleep(1000);
        const samples = [];
        for (let i = 0; i < 3; i++) {
          samples.push(h.rss());
          await sleep(500);
        }
        figures.idle[s.key] = { idleRss: h.idleRss, rss: median(samples), samples, startSeconds: h.startSeconds };
        log(
          `  ${s.key}: ${(median(samples) / MiB).toFixed(1)} MiB (idle ${(h.idleRss / MiB).toFixed(1)} MiB), started in ${h.startSeconds.toFixed(1)} s`,
        );
      } finally {
        await sys.stop().catch((err) => log(`${s.key}: stop: ${err.message}`));
      }
    });
  }
} finally {
  const killed = await cleanupAll();
  if (killed.length > 0) log(`cleanup: killed what was left: ${killed.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
}

const after = loadNow();
const summary = (xs, keys) => Object.fromEntries(keys.map((k) => [k, median(xs.map((x) => x[k]))]));
const results = {
  date: new Date().toISOString(),
  scale: SCALE,
  commit: commit(),
  durationSeconds: (Date.now() - started) / 1000,
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg: before.loadavg,
    loadavgAfter: after.loadavg,
    cpuPressure: before.cpuPressure,
    cpuPressureAfter: after.cpuPressure,
  },
  sizes: SIZES,
  versions,
  skipped,
  failures,
  spawn: Object.fromEntries(Object.entries(figures.spawn).map(([k, v]) => [k, { ...summary(v, ['p50', 'p99', 'baseP50', 'ratio']), rounds: v }])),
  many: Object.fromEntries(Object.entries(figures.many).map(([k, v]) => [k, { ...summary(v, ['rate', 'baseRate', 'ratio']), rounds: v }])),
  stream: Object.fromEntries(
    Object.entries(figures.stream).map(([k, v]) => [k, { ...summary(v, ['mibps', 'relayMibps', 'ratio', 'delivered']), runs: v }]),
  ),
  idle: figures.idle,
};

const outDir = process.env.BENCH_OUT ?? path.join(HERE, '..');
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'peers.json'), `${JSON.stringify(results, null, 2)}\n`);
log(`wrote ${path.join(outDir, 'peers.json')} in ${results.durationSeconds.toFixed(0)} s`);
if (existsSync(path.join(outDir, 'results.json'))) {
  execFileSync(process.execPath, [path.join(HERE, '../run.mjs'), '--render'], { env: { ...process.env, BENCH_OUT: outDir }, stdio: 'inherit' });
  log(`rendered ${path.join(outDir, 'RESULTS.md')} with the peer table`);
} else {
  log(`no results.json in ${outDir}: RESULTS.md not rendered (run \`npm run bench\` there first)`);
}
process.exit(Object.keys(failures).length > 0 ? 1 : 0);
