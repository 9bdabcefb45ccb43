#!/usr/bin/env node
/**
 * The audit trail's costs (issue 14), measured on the built dist/ (run `npm run build` first). Not part of
 * `npm test`; `node bench/figures/audit.mjs [--json]` prints the figures.
 *
 * 1. Recording: CPU per request record (redaction, canonical bytes, SHA-256: what a request path pays, sync) and
 *    the writer's sustained rate to disk (records/s, CPU per record including the write() calls in the thread pool),
 *    for a typical process.spawn record, with and without frequent rotation.
 * 2. The recorder as the RPC layer calls it (admit + record, peer settled): CPU per request. Against the daemon's
 *    measured cost of a ping this is the figure the "≤ 10% fewer pings/s" target is about; pings/s with and without
 *    the audit are for bench/run.mjs once the RPC layer records (see measureAudit's note).
 * 3. Peer lookup: one `ss -xpnH` run (wall and CPU) on this host, with the number of processes and Unix sockets
 *    that its cost grows with; and UnixPeerResolver on real connections (wall per lookup, runs per batch).
 * 4. -audit-verify and the follower's reading rate (records/s).
 *
 * Each figure is the median of `runs` rounds; load on the shared machine is noted with os.loadavg().
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect } from '../lib/client.mjs';
import { cpuOf, startDaemon } from '../lib/daemon.mjs';
import { median } from '../lib/stats.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist/src/audit', p)).href);

const { AuditWriter } = await dist('writer.js');
const { requestEntry, encodeRecord, Scrubber, GENESIS_HASH } = await dist('record.js');
const { AuditRecorder } = await dist('recorder.js');
const { UnixPeerResolver } = await dist('peer.js');
const { verifyLog } = await dist('verify.js');
const { tailLog } = await dist('tail.js');
const { silentLogger } = await import(pathToFileURL(path.join(ROOT, 'dist/src/log/logger.js')).href);

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// One connection's peer and caller: they live as long as the connection, and the recorder encodes them once.
const PEER = Object.freeze({ kind: 'unix', pid: 4242, uid: 1000, comm: 'node', startTime: '123456' });
const CALLER = Object.freeze({ driver: 'ci', identity: 'alice@example.com', runId: 'job_948f93' });

function facts(i) {
  return {
    conn: 7,
    transport: 'unix/ndjson',
    peer: PEER,
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

/** 1a. The synchronous part a request path pays: build the record, encode it, hash it. */
function encodeCost(n) {
  const scrubber = new Scrubber(['tok-0123456789abcdef']);
  let prev = GENESIS_HASH;
  const c0 = cpuMs();
  const t0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const { line, hash } = encodeRecord(requestEntry(facts(i), scrubber), { seq: i + 1, ts: new Date().toISOString(), log: 'a'.repeat(32), prev });
    prev = hash;
    bytes += line.length;
  }
  return { usPerRecord: ((cpuMs() - c0) * 1000) / n, wallUsPerRecord: ((performance.now() - t0) * 1000) / n, bytesPerRecord: bytes / n };
}

/** 1b. Records to disk: append in batches as requests would, await the disk. */
async function writerRate(n, maxBytes) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'claustrum-bench-audit-'));
  try {
    const w = await AuditWriter.open({
      path: path.join(dir, 'audit.jsonl'),
      version: 'bench',
      log: silentLogger,
      maxBytes,
      keep: 5,
      queueRecords: 1 << 20,
    });
    const scrubber = new Scrubber([]);
    const entries = Array.from({ length: 1000 }, (_, i) => requestEntry(facts(i), scrubber));
    const c0 = cpuMs();
    const t0 = performance.now();
    for (let i = 0; i < n; ) {
      for (let k = 0; k < 100; k++, i++) w.append(entries[i % entries.length]);
      await w.flushed();
    }
    const s = w.stats();
    const ms = performance.now() - t0;
    const cpu = cpuMs() - c0;
    await w.close();
    return { recordsPerSecond: (n / ms) * 1000, cpuUsPerRecord: (cpu * 1000) / n, writes: s.writes, rotations: s.rotations, bytes: s.bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 2. The recorder as the RPC layer calls it, one request at a time (admit, record), peer already settled. */
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
    });
    let conn;
    const srv = net.createServer((s) => (conn = audit.unixConnection(1, s)));
    await new Promise((r) => srv.listen(sock, r));
    const client = net.connect(sock);
    while (conn === undefined || conn.peer === undefined) await new Promise((r) => setTimeout(r, 5));
    const ping = {
      transport: 'unix/ndjson',
      authenticated: true,
      method: 'server.ping',
      idJson: '1',
      params: undefined,
      literals: undefined,
      caller: undefined,
      reply: { result: { pong: true } },
    };
    const c0 = cpuMs();
    const t0 = performance.now();
    for (let i = 0; i < n; ) {
      for (let k = 0; k < 100; k++, i++) {
        const a = conn.admit('server.ping');
        conn.record(a, ping);
      }
      await audit.writer.flushed();
    }
    const res = { pingRecordsPerSecond: (n / (performance.now() - t0)) * 1000, cpuUsPerPing: ((cpuMs() - c0) * 1000) / n };
    client.destroy();
    srv.close();
    await audit.close();
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * 2b. The denominator: the daemon's CPU per ping today (no audit yet), 64 pings in flight on one connection. The
 * recorder's CPU per ping over this is the audit's share of a ping.
 */
async function daemonPingCost(n) {
  const daemon = await startDaemon();
  try {
    const client = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    const burst = async (count) => {
      const inFlight = new Set();
      for (let i = 0; i < count; i++) {
        const p = client.call('server.ping', {}).finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= 64) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    };
    await burst(2000);
    const c0 = cpuOf(daemon.pid);
    const t0 = performance.now();
    await burst(n);
    const ms = performance.now() - t0;
    return { pingsPerSecond: (n / ms) * 1000, daemonCpuUsPerPing: ((cpuOf(daemon.pid) - c0) * 1e6) / n };
  } finally {
    await daemon.stop();
  }
}

/** 3. Peer lookups. */
async function peerCost(connections) {
  const procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
  const sockets = execFileSync('ss', ['-xnH']).toString().split('\n').filter(Boolean).length;
  const ssRuns = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const r = spawnSync('sh', ['-c', 'ss -xpnH > /dev/null; cat /proc/$$/stat'], { encoding: 'utf8' });
    void r;
    ssRuns.push(performance.now() - t0);
  }
  // CPU of ss itself: the children's rusage of a shell that runs it ten times.
  const times = spawnSync('sh', ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do ss -xpnH > /dev/null; done; times'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .at(-1);
  const [cu, cs] = times.split(/\s+/).map((t) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return m ? Number(m[1]) * 60_000 + Number(m[2]) * 1000 : NaN;
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
    const w = await AuditWriter.open({ path: file, version: 'bench', log: silentLogger, maxBytes: 8 << 20, keep: 50, queueRecords: 1 << 20 });
    const scrubber = new Scrubber([]);
    for (let i = 0; i < n; ) {
      for (let k = 0; k < 1000; k++, i++) w.append(requestEntry(facts(i), scrubber));
      await w.flushed();
    }
    await w.close();
    let t0 = performance.now();
    const report = await verifyLog(file);
    const verifyPerSecond = (report.records / (performance.now() - t0)) * 1000;
    t0 = performance.now();
    let seen = 0;
    await tailLog({ path: file, follow: false, onRecord: () => void seen++, onReport: () => {} });
    return { verifyRecordsPerSecond: verifyPerSecond, tailRecordsPerSecond: (seen / (performance.now() - t0)) * 1000, ok: report.ok };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureAudit({ runs = 5, records = 20_000, log = () => {} } = {}) {
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
  out.recorder = await round(() => recorderCost(records));
  out.daemonPing = await round(() => daemonPingCost(records));
  out.recorderShareOfPing = out.recorder.cpuUsPerPing / out.daemonPing.daemonCpuUsPerPing;
  log('peer…');
  out.peer = await peerCost(20);
  log('read…');
  out.read = await round(() => readRates(records));
  out.loadavgAfter = os.loadavg();
  out.note =
    'pings/s with and without the audit need the RPC layer to record; until then, recorder.cpuUsPerPing against the daemon’s CPU per ping (bench/RESULTS.md) is the overhead';
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await measureAudit({ log: (s) => process.stderr.write(`${s}\n`) });
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
  else {
    const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
    console.log(
      `load ${res.loadavgBefore.map((x) => x.toFixed(1)).join(' ')} → ${res.loadavgAfter.map((x) => x.toFixed(1)).join(' ')} on ${res.cpus} cpus`,
    );
    console.log(`record build+encode+hash: ${f(res.encode.usPerRecord)} µs CPU per record (${f(res.encode.bytesPerRecord, 0)} bytes)`);
    console.log(
      `writer to disk: ${f(res.writer.recordsPerSecond, 0)} records/s, ${f(res.writer.cpuUsPerRecord)} µs CPU per record (${res.writer.writes} writes)`,
    );
    console.log(`writer rotating every 256 KiB: ${f(res.writerRotating.recordsPerSecond, 0)} records/s, ${res.writerRotating.rotations} rotations`);
    console.log(
      `recorder (admit+record) per ping: ${f(res.recorder.cpuUsPerPing)} µs CPU; ${f(res.recorder.pingRecordsPerSecond, 0)} ping records/s`,
    );
    console.log(
      `daemon today: ${f(res.daemonPing.pingsPerSecond, 0)} pings/s, ${f(res.daemonPing.daemonCpuUsPerPing)} µs CPU per ping → the audit would add ${f(100 * res.recorderShareOfPing, 0)}% CPU per ping`,
    );
    console.log(
      `peer: ss -xpnH ${f(res.peer.ssWallMs)} ms wall, ${f(res.peer.ssCpuMsPerRun)} ms CPU (${res.peer.processes} processes, ${res.peer.unixSockets} unix sockets); ` +
        `${res.peer.connections} connections looked up in ${res.peer.ssRunsForThem} ss runs, median ${f(res.peer.lookupWallMsMedian)} ms each, ${res.peer.lookupsFound} found`,
    );
    console.log(`verify ${f(res.read.verifyRecordsPerSecond, 0)} records/s; tail ${f(res.read.tailRecordsPerSecond, 0)} records/s`);
  }
}
