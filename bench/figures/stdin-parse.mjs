#!/usr/bin/env node
/**
 * The daemon's decode cost of one `process.stdin` request, in-process, per MiB of stdin data: CPU time and minor page
 * faults (/proc/self/stat minflt), for the general path and the fast path (src/server/rpc/codec/stdin-fast.ts), at
 * 64, 192, 512 and 700 KiB of data per request. Standalone, not part of `npm run bench` (issue 15):
 *
 *   npm run build && node bench/figures/stdin-parse.mjs [--mib 32] [--runs 5] [--json out.json]
 *
 * What each variant does with one line (the bytes between newlines, as LineSplitter hands them out):
 * - general: decodeLine (UTF-8 decode, JSON.parse, envelope) → bindParams → decodeBase64Strict of `data`, i.e. what
 *   the daemon does today;
 * - fast: parseStdinLine, then asDecodedRequest → bindParams, as decodeLine would return it once wired; the data lands
 *   in a fresh buffer per request (the caller keeps it: a pipe write may hold it);
 * - fast, reused output: the same into one reused buffer: the ceiling a buffer pool would reach;
 * - msgpack: the same request as MessagePack arriving in 64 KiB socket reads: MessageSplitter (one per size, as the
 *   daemon keeps one per connection) → decodeMessage → bindParams, what the daemon does for MessagePack stdin today.
 * Then Node's own costs for base64-in-JSON, each alone: the line to a string, JSON.parse of that string,
 * Buffer.from(data, 'base64'); and the floor of the fast path, base64 decoded from the line's bytes in slices.
 *
 * Line assembly (LineSplitter's Buffer.concat of socket reads) is left out: both paths share it. Lines are built
 * once and cycled (8 distinct lines per size), so what is measured is decoding, not building test input.
 * Runs are interleaved (every variant of every size once per run) and the figure is the median of the runs.
 * The table gives CPU time (process.cpuUsage: on a shared machine, time other tenants take is not counted in it);
 * wall-clock medians are in the --json output too.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Packr } from 'msgpackr';
import { decodeBase64Strict } from '../../dist/src/process/stdin.js';
import { asDecodedRequest, parseStdinLine } from '../../dist/src/server/rpc/codec/stdin-fast.js';
import { decodeMessage, MessageSplitter } from '../../dist/src/server/msgpack.js';
import { decodeLine } from '../../dist/src/server/ndjson.js';
import { bindParams } from '../../dist/src/server/params.js';
import { median, MiB } from '../lib/stats.mjs';

// Collections between measurements keep one variant's garbage from being collected on the next one's time.
if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i === -1 ? dflt : args[i + 1];
};
const MIB_PER_MEASUREMENT = Number(arg('--mib', '32'));
const RUNS = Number(arg('--runs', '5'));
const JSON_OUT = arg('--json', undefined);
const SIZES_KIB = [64, 192, 512, 700];
const LINES_PER_SIZE = 8;
/** process.stdin's params shape, as src/server/methods/process.ts defines it. */
const SHAPE = { id: 'string', data: 'bytes', offset: 'uint64', eof: 'bool' };
const packr = new Packr({ useRecords: false, variableMapSize: true });

function minflt() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]); // field 10
}

function cpuMs() {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

/** One size's inputs: NDJSON lines as the client library writes them, the same requests as MessagePack pieces. */
function inputs(kib) {
  const lines = [];
  const packed = [];
  for (let i = 0; i < LINES_PER_SIZE; i++) {
    const data = randomBytes(kib * 1024);
    const req = {
      jsonrpc: '2.0',
      id: 1000 + i,
      method: 'process.stdin',
      auth: 'bench-token-0123456789',
      params: { id: 'p1', data, offset: i * data.length },
    };
    lines.push(Buffer.from(JSON.stringify({ ...req, params: { ...req.params, data: data.toString('base64') } }), 'utf8'));
    const m = packr.pack(req);
    const pieces = [];
    for (let at = 0; at < m.length; at += 64 * 1024) pieces.push(Buffer.from(m.subarray(at, at + 64 * 1024)));
    packed.push(pieces);
  }
  // One splitter per size, as the daemon keeps one per connection: its assembly buffer is reused.
  return { lines, packed, rawBytes: kib * 1024, splitter: new MessageSplitter() };
}

function checkedData(bound) {
  if (bound === undefined) throw new Error('params did not bind');
  const d = bound.data;
  if (typeof d !== 'string') return d;
  const bytes = decodeBase64Strict(d);
  if (bytes === undefined) throw new Error('invalid base64');
  return bytes;
}

/** Variants: each consumes request `i` of a size's inputs and returns the decoded data (checked once per size). */
const reused = Buffer.allocUnsafeSlow(1024 * 1024);
const VARIANTS = {
  general: (inp, i) => {
    const req = decodeLine(inp.lines[i]);
    return checkedData(bindParams(req.params, SHAPE, req.literals));
  },
  fast: (inp, i) => {
    const req = asDecodedRequest(parseStdinLine(inp.lines[i]));
    return checkedData(bindParams(req.params, SHAPE, req.literals));
  },
  'fast, reused output': (inp, i) => {
    const req = asDecodedRequest(parseStdinLine(inp.lines[i], () => reused));
    return checkedData(bindParams(req.params, SHAPE, req.literals));
  },
  msgpack: (inp, i) => {
    let out;
    for (const piece of inp.packed[i]) {
      inp.splitter.push(piece, (m) => {
        const req = decodeMessage(m);
        out = checkedData(bindParams(req.params, SHAPE, req.literals));
      });
    }
    return out;
  },
  // Node's own costs, each alone.
  'Node: line → string': (inp, i) => inp.lines[i].toString('utf8'),
  'Node: JSON.parse': (inp, i) => JSON.parse(inp.strings[i]),
  "Node: Buffer.from(data, 'base64')": (inp, i) => Buffer.from(inp.dataStrings[i], 'base64'),
  'floor: base64 from line bytes, 64 KiB slices': (inp, i) => sliceDecode(inp, i, 64 * 1024),
  'floor: base64 from line bytes, 16 KiB slices': (inp, i) => sliceDecode(inp, i, 16 * 1024),
};

function sliceDecode(inp, i, slice) {
  const line = inp.lines[i];
  const [start, end] = inp.dataRanges[i];
  let w = 0;
  for (let at = start; at < end; at += slice) w += reused.write(line.toString('latin1', at, Math.min(end, at + slice)), w, 'base64');
  return w;
}

function measure(fn, inp) {
  const n = Math.max(LINES_PER_SIZE, Math.ceil((MIB_PER_MEASUREMENT * MiB) / inp.rawBytes));
  globalThis.gc();
  const f0 = minflt();
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let k = 0; k < n; k++) fn(inp, k % LINES_PER_SIZE);
  const wall = performance.now() - t0;
  const cpu = cpuMs() - c0;
  const faults = minflt() - f0;
  const mib = (n * inp.rawBytes) / MiB;
  return { msPerMiB: wall / mib, cpuMsPerMiB: cpu / mib, faultsPerMiB: faults / mib };
}

const load0 = os.loadavg();
const all = {};
for (const kib of SIZES_KIB) {
  const inp = inputs(kib);
  inp.strings = inp.lines.map((l) => l.toString('utf8'));
  inp.dataStrings = inp.strings.map((s) => JSON.parse(s).params.data);
  inp.dataRanges = inp.lines.map((l) => {
    const start = l.indexOf('"data":"') + 8;
    return [start, l.indexOf('"', start)];
  });
  // Every path must yield the same bytes before any is timed.
  for (let i = 0; i < LINES_PER_SIZE; i++) {
    const want = VARIANTS.general(inp, i);
    for (const v of ['fast', 'fast, reused output', 'msgpack']) {
      if (!Buffer.from(VARIANTS[v](inp, i)).equals(want)) throw new Error(`${v} decoded different bytes at ${kib} KiB`);
    }
  }
  all[kib] = { inp, samples: Object.fromEntries(Object.keys(VARIANTS).map((v) => [v, []])) };
  // Warm-up: at least 8 MiB per variant, so the JIT has settled (the fast path at 64 KiB took its first few hundred
  // requests to reach its steady cost).
  const warm = Math.max(2 * LINES_PER_SIZE, Math.ceil((8 * MiB) / inp.rawBytes));
  for (const fn of Object.values(VARIANTS)) for (let k = 0; k < warm; k++) fn(inp, k % LINES_PER_SIZE);
}
for (let run = 0; run < RUNS; run++) {
  for (const kib of SIZES_KIB) {
    for (const [v, fn] of Object.entries(VARIANTS)) all[kib].samples[v].push(measure(fn, all[kib].inp));
  }
  process.stderr.write(`run ${run + 1}/${RUNS} done\n`);
}
const load1 = os.loadavg();

const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  loadavgBefore: load0.map((x) => x.toFixed(2)).join(' '),
  loadavgAfter: load1.map((x) => x.toFixed(2)).join(' '),
  mibPerMeasurement: MIB_PER_MEASUREMENT,
  runs: RUNS,
  sizes: {},
};
for (const kib of SIZES_KIB) {
  results.sizes[kib] = {};
  for (const [v, xs] of Object.entries(all[kib].samples)) {
    results.sizes[kib][v] = {
      msPerMiB: median(xs.map((x) => x.msPerMiB)),
      cpuMsPerMiB: median(xs.map((x) => x.cpuMsPerMiB)),
      faultsPerMiB: median(xs.map((x) => x.faultsPerMiB)),
      samplesMsPerMiB: xs.map((x) => Number(x.msPerMiB.toFixed(3))),
    };
  }
}

const pad = (s, n) => String(s).padEnd(n);
const lines = [];
lines.push(`stdin decode per MiB of data, median of ${RUNS} interleaved runs of ${MIB_PER_MEASUREMENT} MiB; ${results.cpu}, Node ${results.node}`);
lines.push(`load average ${results.loadavgBefore} before, ${results.loadavgAfter} after`);
lines.push('');
lines.push(`${pad('CPU ms per MiB, page faults per MiB', 48)}${SIZES_KIB.map((k) => pad(`${k} KiB`, 16)).join('')}`);
for (const v of Object.keys(VARIANTS)) {
  lines.push(
    `${pad(v, 48)}${SIZES_KIB.map((k) => {
      const r = results.sizes[k][v];
      return pad(`${r.cpuMsPerMiB.toFixed(2)} ${r.faultsPerMiB.toFixed(0)}`, 16);
    }).join('')}`,
  );
}
lines.push('');
for (const k of SIZES_KIB) {
  const s = results.sizes[k];
  const cpu = (v) => s[v].cpuMsPerMiB;
  const nodeCeiling = cpu('Node: line → string') + cpu('Node: JSON.parse') + cpu("Node: Buffer.from(data, 'base64')");
  results.sizes[k].nodeCeilingCpuMsPerMiB = nodeCeiling;
  const rate = (ms) => `${(1000 / ms).toFixed(0)} MiB/s`;
  lines.push(
    `${k} KiB: general ${cpu('general').toFixed(2)} ms/MiB (${rate(cpu('general'))}); Node's ceiling for base64-in-JSON (string + JSON.parse + base64) ${nodeCeiling.toFixed(2)} ms/MiB (${rate(nodeCeiling)}); fast ${cpu('fast').toFixed(2)} ms/MiB (${rate(cpu('fast'))}, ${(cpu('general') / cpu('fast')).toFixed(1)}× less CPU than the general path); msgpack ${cpu('msgpack').toFixed(2)} ms/MiB`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
