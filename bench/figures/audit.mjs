#!/usr/bin/env node
/**
 * The audit trail's costs (issue 14), measured on the built dist/ (run `npm run build` first).
 *
 * `measureAuditOverhead`, the audit's figure: the same daemon with and without `-audit on`, started afresh for every
 * run and interleaved run by run (off/on, then on/off), measuring
 * - server.ping per second, 64 in flight on one NDJSON connection (the target: at most 10% fewer with the
 *   audit on), and the daemon's CPU per ping: its main thread, and all its threads (the audit's writer thread is the
 *   difference's other part);
 * - small spawns per second (`true`, 8 in flight, to the exit frame): two records each, a request and an exit.
 *
 * `npm run bench:audit` (= `node bench/figures/audit.mjs --write`) measures both, prints them, writes audit.json
 * beside results.json (BENCH_OUT, default bench/) and re-renders RESULTS.md, whose audit section
 * (bench/lib/audit-render.mjs) is made from it; `--json` prints the results instead; `--components` measures only the components, keeping the last figure. The
 * components:
 * 1. building a request record's text on the request path, and the writer's rate to disk (records/s), with and
 *    without frequent rotation;
 * 2. the recorder as the RPC layer calls it (admit + record), per thread;
 * 3. peer lookup: one `ss -xpnH` run (wall and CPU) on this host, with the number of processes and Unix sockets that
 *    its cost grows with; and UnixPeerResolver on real connections (wall per lookup, runs per batch);
 * 4. -audit-verify and the follower's reading rate (records/s).
 *
 * Each figure is the median of `runs` rounds; load on the shared machine is noted with os.loadavg().
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect } from '../lib/client.mjs';
import { startDaemon } from '../lib/daemon.mjs';
import { median } from '../lib/stats.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist/src/audit', p)).href);

const { AuditWriter } = await dist('writer.js');
const { requestText, Scrubber, LineAssembler, GENESIS_HASH } = await dist('record.js');
const { AuditRecorder } = await dist('recorder.js');
const { UnixPeerResolver } = await dist('peer.js');
const { verifyLog } = await dist('verify.js');
const { tailLog } = await dist('tail.js');
const { silentLogger } = await import(pathToFileURL(path.join(ROOT, 'dist/src/log/logger.js')).href);

const CLK_TCK = 100;

/** CPU seconds of each thread of `pid` (user + system), by thread id. */
function threadCpu(pid) {
  const out = new Map();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(t), (Number(f[11]) + Number(f[12])) / CLK_TCK);
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** Microseconds of CPU per `n` between two threadCpu readings: the main thread (tid = pid) and all threads. */
function cpuPer(pid, before, after, n) {
  let all = 0;
  for (const [tid, s] of after) all += s - (before.get(tid) ?? 0);
  const main = (after.get(pid) ?? 0) - (before.get(pid) ?? 0);
  return { mainUs: (main * 1e6) / n, allUs: (all * 1e6) / n };
}

// ------------------------------------------------------------------------------------------------ the figure

async function pings(client, count, inFlight) {
  const pending = new Set();
  for (let i = 0; i < count; i++) {
    const p = client.call('server.ping', {}).finally(() => pending.delete(p));
    pending.add(p);
    if (pending.size >= inFlight) await Promise.race(pending);
  }
  await Promise.all(pending);
}

let spawnSeq = 0;
async function spawns(client, count, inFlight) {
  let started = 0;
  const one = async () => {
    while (started < count) {
      started++;
      const id = `a-${++spawnSeq}`;
      const exit = client.waitExit(id);
      await client.call('process.spawn', { id, command: 'true' });
      const f = await exit;
      if (f.exitCode !== 0) throw new Error(`true exited ${f.exitCode}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, one));
}

/** One daemon, audit on or off: pings/s and spawns/s, with its CPU per request. */
async function oneDaemon(audit, o) {
  const daemon = await startDaemon({ args: audit ? ['-audit', 'on'] : [] });
  try {
    const client = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    // Warm-up: the JIT, the connection's peer lookup, the login-shell PATH the first spawn waits for.
    await pings(client, Math.min(5000, o.pings), 64);
    await spawns(client, 4, 1);
    const file = path.join(daemon.dir, 'audit.jsonl');
    const size0 = audit ? statSync(file).size : 0;
    let before = threadCpu(daemon.pid);
    let t0 = performance.now();
    await pings(client, o.pings, 64);
    const pingMs = performance.now() - t0;
    const pingCpu = cpuPer(daemon.pid, before, threadCpu(daemon.pid), o.pings);
    // The writer thread takes records every few ms: by now the pings' records are on disk.
    await new Promise((r) => setTimeout(r, 100));
    const bytesPerPing = audit ? (statSync(file).size - size0) / o.pings : 0;
    before = threadCpu(daemon.pid);
    t0 = performance.now();
    await spawns(client, o.spawns, o.spawnInFlight);
    const spawnMs = performance.now() - t0;
    const spawnCpu = cpuPer(daemon.pid, before, threadCpu(daemon.pid), o.spawns);
    await client.close();
    const out = {
      pingsPerSecond: (o.pings / pingMs) * 1000,
      pingMainUs: pingCpu.mainUs,
      pingAllUs: pingCpu.allUs,
      spawnsPerSecond: (o.spawns / spawnMs) * 1000,
      spawnMainUs: spawnCpu.mainUs,
      spawnAllUs: spawnCpu.allUs,
      bytesPerPing,
    };
    await daemon.stop();
    return out;
  } catch (err) {
    await daemon.stop();
    throw err;
  }
}

/**
 * The figure: pings/s and spawns/s with and without the audit, fresh daemons interleaved run by run, medians of
 * `runs` runs; ratios are on/off within a run.
 */
export async function measureAuditOverhead({
  runs = 5,
  pings: pingCount = 100_000,
  spawns: spawnCount = 300,
  spawnInFlight = 8,
  log = () => {},
} = {}) {
  const o = { pings: pingCount, spawns: spawnCount, spawnInFlight };
  const rounds = [];
  const loadBefore = os.loadavg();
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? [false, true] : [true, false];
    const round = {};
    for (const audit of order) round[audit ? 'on' : 'off'] = await oneDaemon(audit, o);
    round.pingRatio = round.on.pingsPerSecond / round.off.pingsPerSecond;
    round.spawnRatio = round.on.spawnsPerSecond / round.off.spawnsPerSecond;
    rounds.push(round);
    log(
      `  run ${r + 1}: pings/s off ${round.off.pingsPerSecond.toFixed(0)} on ${round.on.pingsPerSecond.toFixed(0)} (${round.pingRatio.toFixed(3)}×); ` +
        `spawns/s off ${round.off.spawnsPerSecond.toFixed(0)} on ${round.on.spawnsPerSecond.toFixed(0)} (${round.spawnRatio.toFixed(3)}×); load ${os.loadavg()[0].toFixed(1)}`,
    );
  }
  const m = (f) => median(rounds.map(f));
  return {
    runs: rounds,
    loadavgBefore: loadBefore,
    loadavgAfter: os.loadavg(),
    pingRatio: m((r) => r.pingRatio),
    spawnRatio: m((r) => r.spawnRatio),
    pingsOff: m((r) => r.off.pingsPerSecond),
    pingsOn: m((r) => r.on.pingsPerSecond),
    spawnsOff: m((r) => r.off.spawnsPerSecond),
    spawnsOn: m((r) => r.on.spawnsPerSecond),
    // The audit's CPU per ping record: on minus off, on the main thread and over all threads.
    recordMainUs: m((r) => r.on.pingMainUs - r.off.pingMainUs),
    recordAllUs: m((r) => r.on.pingAllUs - r.off.pingAllUs),
    pingMainUsOff: m((r) => r.off.pingMainUs),
    pingAllUsOff: m((r) => r.off.pingAllUs),
    spawnAllUsOff: m((r) => r.off.spawnAllUs),
    bytesPerPingRecord: m((r) => r.on.bytesPerPing),
    spawnAllUsOn: m((r) => r.on.spawnAllUs),
  };
}

// ------------------------------------------------------------------------------------------------ components

// One connection's peer: it lives as long as the connection, and its JSON is made once.
const PEER_JSON = JSON.stringify({ comm: 'node', kind: 'unix', pid: 4242, startTime: '123456', uid: 1000 });
const CALLER = Object.freeze({ driver: 'ci', identity: 'alice@example.com', runId: 'job_948f93' });
// What the request side adds to a record's text: its log and time (the writer thread adds seq and prev).
const CHAIN = Object.freeze({ log: 'a'.repeat(32), ts: '2025-06-01T12:00:00.123Z' });

function facts(i) {
  return {
    conn: 7,
    transport: 'unix/ndjson',
    peer: null,
    caller: CALLER,
    authenticated: true,
    method: 'process.spawn',
    idJson: String(i),
    params: { id: `p${i}`, command: 'sh', args: ['-c', `make test TARGET=${i}`], cwd: '/home/alice/src/project', env: { CI: '1', PATH: '/usr/bin' } },
    literals: undefined,
    reply: { result: { success: true, pid: 10_000 + i, startTime: 1.5 } },
    startedAt: 0,
    endedAt: 1,
  };
}

/** 1a. The request path's part: a spawn record's text; 1b. the writer thread's: its line, hashed. */
function encodeCost(n) {
  const scrubber = new Scrubber(['tok-0123456789abcdef']);
  const texts = Array.from({ length: 1000 }, (_, i) => requestText(facts(i), scrubber, PEER_JSON, '7', CHAIN));
  let t0 = performance.now();
  let chars = 0;
  for (let i = 0; i < n; i++) chars += requestText(facts(i), scrubber, PEER_JSON, '7', CHAIN).length;
  const textUs = ((performance.now() - t0) * 1000) / n;
  const frames = texts.map((t) => Buffer.from(t));
  const assembler = new LineAssembler();
  let prev = GENESIS_HASH;
  let bytes = 0;
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const f = frames[i % frames.length];
    const out = assembler.assemble(f, 0, f.length, i + 1, prev);
    prev = out.hash;
    bytes += out.bytes;
  }
  const lineUs = ((performance.now() - t0) * 1000) / n;
  return { textUs, lineUs, bytesPerRecord: bytes / n, charsPerText: chars / n };
}

/** 1c. Records to disk through the writer, in batches as the writer thread takes them from the ring. */
async function writerRate(n, maxBytes) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'claustrum-bench-audit-'));
  try {
    const w = await AuditWriter.open({ path: path.join(dir, 'audit.jsonl'), version: 'bench', log: silentLogger, maxBytes, keep: 5 });
    const scrubber = new Scrubber([]);
    const chain = { ...CHAIN, log: w.stats().head.log };
    const frames = Array.from({ length: 1000 }, (_, i) => Buffer.from(requestText(facts(i), scrubber, PEER_JSON, '7', chain)));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; ) {
      for (let k = 0; k < 100; k++, i++) {
        const f = frames[i % frames.length];
        w.appendFrame(f, 0, f.length);
      }
      await w.flushed();
    }
    const s = w.stats();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    await w.close();
    return {
      recordsPerSecond: (n / ms) * 1000,
      cpuUsPerRecord: (cpu.user + cpu.system) / n,
      writes: s.writes,
      rotations: s.rotations,
      bytes: s.bytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 2. The recorder as the RPC layer calls it (admit, record), peer settled, 64 requests a turn; CPU per thread. */
async function recorderCost(n) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'claustrum-bench-audit-'));
  const sock = path.join(dir, 's.sock');
  try {
    const audit = await AuditRecorder.open({
      path: path.join(dir, 'audit.jsonl'),
      maxBytes: 64 << 20,
      keep: 2,
      full: 'block',
      version: 'b',
      log: silentLogger,
      token: 'tok-0123456789abcdef',
      queueRecords: 1 << 20,
    });
    let conn;
    const srv = net.createServer((s) => (conn = audit.connection(1, { kind: 'unix', socket: s })));
    await new Promise((r) => srv.listen(sock, r));
    const client = net.connect(sock);
    while (conn === undefined || conn.peerPending) await new Promise((r) => setTimeout(r, 5));
    const ping = {
      wire: 'json',
      authenticated: true,
      method: 'server.ping',
      idJson: '1',
      params: undefined,
      literals: undefined,
      caller: undefined,
      reply: { result: { pong: true } },
    };
    const before = threadCpu(process.pid);
    const t0 = performance.now();
    for (let i = 0; i < n; ) {
      for (let k = 0; k < 64; k++, i++) conn.record(conn.admit('server.ping'), ping);
      await new Promise((r) => setImmediate(r));
      while (audit.stats().queueDepth > 50_000) await new Promise((r) => setTimeout(r, 1));
    }
    while (audit.stats().queueDepth > 0) await new Promise((r) => setTimeout(r, 1));
    const cpu = cpuPer(process.pid, before, threadCpu(process.pid), n);
    const res = { pingRecordsPerSecond: (n / (performance.now() - t0)) * 1000, mainUsPerRecord: cpu.mainUs, allUsPerRecord: cpu.allUs };
    client.destroy();
    srv.close();
    await audit.close();
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 3. Peer lookups. */
async function peerCost(connections) {
  const procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
  const sockets = execFileSync('ss', ['-xnH']).toString().split('\n').filter(Boolean).length;
  const ssRuns = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    spawnSync('ss', ['-xpnH'], { stdio: 'ignore' });
    ssRuns.push(performance.now() - t0);
  }
  // CPU of ss itself: the children's rusage of a shell that runs it ten times.
  const times = spawnSync('sh', ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do ss -xpnH > /dev/null; done; times'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .at(-1);
  const [cu, cs] = times.split(/\s+/).map((t) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return m ? Number(m[1]) * 60_000 + Number(m[2]) * 1000 : Number.NaN;
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'claustrum-bench-peer-'));
  const sock = path.join(dir, 's.sock');
  const resolver = new UnixPeerResolver();
  const lookups = [];
  const srv = net.createServer((s) => {
    const t0 = performance.now();
    lookups.push(resolver.resolve(s).then((p) => ({ ms: performance.now() - t0, found: p.pid !== null })));
  });
  await new Promise((r) => srv.listen(sock, r));
  const children = Array.from({ length: connections }, () =>
    spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(sock)}); setTimeout(() => {}, 30000)`], { stdio: 'ignore' }),
  );
  while (lookups.length < connections) await new Promise((r) => setTimeout(r, 10));
  const results = await Promise.all(lookups);
  for (const c of children) c.kill('SIGKILL');
  srv.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    processes: procs,
    unixSockets: sockets,
    ssWallMs: median(ssRuns),
    ssCpuMsPerRun: (cu + cs) / 10,
    lookupWallMsMedian: median(results.map((r) => r.ms)),
    lookupsFound: results.filter((r) => r.found).length,
    connections,
    ssRunsForThem: resolver.runs,
  };
}

/** 4. Reading: -audit-verify and the follower over one log. */
async function readRates(n) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'claustrum-bench-audit-'));
  const file = path.join(dir, 'audit.jsonl');
  try {
    const w = await AuditWriter.open({ path: file, version: 'bench', log: silentLogger, maxBytes: 8 << 20, keep: 50 });
    const scrubber = new Scrubber([]);
    // The records must name the writer's log, or the verifier reports each as another log's.
    const chain = { ...CHAIN, log: w.stats().head.log };
    for (let i = 0; i < n; ) {
      for (let k = 0; k < 1000; k++, i++) {
        const f = Buffer.from(requestText(facts(i), scrubber, PEER_JSON, '7', chain));
        w.appendFrame(f, 0, f.length);
      }
      await w.flushed();
    }
    await w.close();
    let t0 = performance.now();
    const report = await verifyLog(file);
    if (!report.ok) throw new Error(`the bench's own log does not verify: ${JSON.stringify(report.findings.slice(0, 3))}`);
    const verifyPerSecond = (report.records / (performance.now() - t0)) * 1000;
    t0 = performance.now();
    let seen = 0;
    await tailLog({ path: file, follow: false, onRecord: () => void seen++, onReport: () => {} });
    return { verifyRecordsPerSecond: verifyPerSecond, tailRecordsPerSecond: (seen / (performance.now() - t0)) * 1000, ok: report.ok };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureAuditComponents({ runs = 5, records = 20_000, log = () => {} } = {}) {
  const round = async (fn) => {
    const xs = [];
    for (let r = 0; r < runs; r++) xs.push(await fn());
    const keys = Object.keys(xs[0]);
    return Object.fromEntries(keys.map((k) => [k, typeof xs[0][k] === 'number' ? median(xs.map((x) => x[k])) : xs[0][k]]));
  };
  const out = { loadavgBefore: os.loadavg(), cpus: os.cpus().length };
  log('encode…');
  out.encode = await round(() => encodeCost(records));
  log('writer…');
  out.writer = await round(() => writerRate(records, 64 << 20));
  out.writerRotating = await round(() => writerRate(records, 256 << 10));
  log('recorder…');
  out.recorder = await round(() => recorderCost(records * 5));
  log('peer…');
  out.peer = await peerCost(20);
  log('read…');
  out.read = await round(() => readRates(records));
  out.loadavgAfter = os.loadavg();
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const log = (line) => process.stderr.write(`${line}\n`);
  const outDir = process.env.BENCH_OUT ?? path.join(ROOT, 'bench');
  const started = Date.now();
  const load = os.loadavg();
  // --components: measure only the components, keeping the figure of the last audit.json (which must exist).
  const onlyComponents = process.argv.includes('--components');
  const previous = onlyComponents ? JSON.parse(readFileSync(path.join(outDir, 'audit.json'), 'utf8')) : undefined;
  if (!onlyComponents) log('the audit figure: pings/s and spawns/s with and without -audit on');
  // BENCH_SMOKE=1: tiny sizes, only to prove the machinery (test/bench/audit-smoke.test.ts); the numbers mean nothing.
  const smoke = process.env.BENCH_SMOKE === '1';
  const overhead = previous ? previous.overhead : await measureAuditOverhead({ log, ...(smoke ? { runs: 1, pings: 2000, spawns: 8 } : {}) });
  log('the components');
  const res = await measureAuditComponents({ log, ...(smoke ? { runs: 1, records: 2000 } : {}) });
  const all = {
    mode: smoke ? 'smoke' : 'full',
    date: previous ? previous.date : new Date().toISOString(),
    commit: gitHead(),
    durationSeconds: previous ? previous.durationSeconds : (Date.now() - started) / 1000,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadavgBefore: previous ? previous.loadavgBefore : load,
    loadavgAfter: previous ? previous.loadavgAfter : os.loadavg(),
    overhead,
    components: res,
    ...(previous ? { componentsDate: new Date().toISOString(), componentsLoadavg: [load, os.loadavg()] } : {}),
  };
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
  else {
    const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
    const o = overhead;
    console.log(`load ${load.map((x) => x.toFixed(1)).join(' ')} → ${all.loadavgAfter.map((x) => x.toFixed(1)).join(' ')} on ${all.cpus} cpus`);
    console.log(
      `pings/s: off ${f(o.pingsOff, 0)}, on ${f(o.pingsOn, 0)} (${f(o.pingRatio, 3)}×, target ≥ 0.9×); spawns/s: off ${f(o.spawnsOff, 0)}, on ${f(o.spawnsOn, 0)} (${f(o.spawnRatio, 3)}×)`,
    );
    console.log(
      `per ping record: ${f(o.recordMainUs, 2)} µs CPU on the main thread, ${f(o.recordAllUs, 2)} µs in all threads (a ping costs ${f(o.pingMainUsOff, 2)} / ${f(o.pingAllUsOff, 2)} µs without the audit); ${f(o.bytesPerPingRecord, 0)} bytes`,
    );
    console.log(
      `a spawn record: its text ${f(res.encode.textUs, 2)} µs (request path), its line and hash ${f(res.encode.lineUs, 2)} µs (writer thread); ${f(res.encode.bytesPerRecord, 0)} bytes`,
    );
    console.log(
      `writer to disk: ${f(res.writer.recordsPerSecond, 0)} records/s, ${f(res.writer.cpuUsPerRecord)} µs CPU per record (${res.writer.writes} writes)`,
    );
    console.log(`writer rotating every 256 KiB: ${f(res.writerRotating.recordsPerSecond, 0)} records/s, ${res.writerRotating.rotations} rotations`);
    console.log(
      `recorder (admit+record) per ping: ${f(res.recorder.mainUsPerRecord, 2)} µs on the request thread, ${f(res.recorder.allUsPerRecord, 2)} µs in all threads; ${f(res.recorder.pingRecordsPerSecond, 0)} ping records/s`,
    );
    console.log(
      `peer: ss -xpnH ${f(res.peer.ssWallMs)} ms wall, ${f(res.peer.ssCpuMsPerRun)} ms CPU (${res.peer.processes} processes, ${res.peer.unixSockets} unix sockets); ` +
        `${res.peer.connections} connections looked up in ${res.peer.ssRunsForThem} ss runs, median ${f(res.peer.lookupWallMsMedian)} ms each, ${res.peer.lookupsFound} found`,
    );
    console.log(`verify ${f(res.read.verifyRecordsPerSecond, 0)} records/s; tail ${f(res.read.tailRecordsPerSecond, 0)} records/s`);
  }
  if (process.argv.includes('--write')) {
    writeFileSync(path.join(outDir, 'audit.json'), `${JSON.stringify(all, null, 2)}\n`);
    if (existsSync(path.join(outDir, 'results.json'))) {
      execFileSync(process.execPath, [path.join(ROOT, 'bench/run.mjs'), '--render'], {
        env: { ...process.env, BENCH_OUT: outDir },
        stdio: 'inherit',
      });
      log(`wrote ${path.join(outDir, 'audit.json')} and rendered RESULTS.md with the audit section`);
    } else log(`wrote ${path.join(outDir, 'audit.json')}; no results.json there, so RESULTS.md was not rendered (run \`npm run bench\` first)`);
  }
}

function gitHead() {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
