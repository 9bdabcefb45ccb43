#!/usr/bin/env node
/**
 * Which stdin chunk size should the client library send? Figure 9's method (bench/figures/stdin.mjs: `total` bytes
 * in `process.stdin` writes with offsets into `cat >/dev/null` against a direct write of the same chunks in the same
 * run) at several chunk sizes, NDJSON and MessagePack. Standalone, not part of `npm run bench` (issue 15):
 *
 *   npm run build && node bench/figures/stdin-chunks.mjs [--mib 64] [--rounds 3] [--kib 48,64,95,96,192,512] [--json f]
 *   CLAUSTRUM_BENCH_BIN=<other build>/dist/cmd/claustrum.js node bench/figures/stdin-chunks.mjs   (A/B a daemon build)
 *
 * Sizes around V8's 128 KiB large-object threshold: 95 KiB of data is 129,708 base64 characters, so its `data`
 * string stays under it (a one-byte string takes 16 bytes of header); 96 KiB is 131,072 characters, just over. The
 * client library sends STDIN_CHUNK_BYTES (src/client/stdin.ts: 95 KiB, chosen with this figure; 192 KiB before).
 * Requests are encoded by the library's own codecs (bench/figures/stdin.mjs), and the direct writer's baseline writes
 * 512 KiB at a time whatever the size under test, so every size is compared with the same baseline.
 *
 * Requests in flight: about 1 MiB of data, as the library's STDIN_WINDOW_BYTES keeps (at least 2 requests), so a
 * smaller chunk is not penalised by a shallower pipeline. Each round measures every size once, each with a fresh
 * daemon and its own direct-write baseline; a size's figure is the median over rounds of its ratio to its baseline.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { median, MiB } from '../lib/stats.mjs';
import { measureStdin } from './stdin.mjs';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i === -1 ? dflt : args[i + 1];
};
const TOTAL = Number(arg('--mib', '64')) * MiB;
const ROUNDS = Number(arg('--rounds', '3'));
const SIZES_KIB = arg('--kib', '48,64,95,96,192,512').split(',').map(Number);
const JSON_OUT = arg('--json', undefined);
const WIRES = ['ndjson', 'msgpack'];
/** The client library's STDIN_WINDOW_BYTES (src/client/process.ts). */
const WINDOW_BYTES = 1024 * 1024;

const log = (s) => process.stderr.write(`${s}\n`);
const load0 = os.loadavg();
const rows = Object.fromEntries(SIZES_KIB.map((k) => [k, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const kib of SIZES_KIB) {
    const chunk = kib * 1024;
    // Whole chunks only, so every size moves the same bytes give or take one chunk.
    const total = Math.max(chunk * 4, Math.floor(TOTAL / chunk) * chunk);
    const window = Math.max(2, Math.round(WINDOW_BYTES / chunk));
    log(`round ${round + 1}, ${kib} KiB chunks, ${window} in flight`);
    const r = await measureStdin({ runs: 1, total, chunk, window, wires: WIRES, log });
    rows[kib].push(r);
  }
}
const load1 = os.loadavg();

const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  daemon: process.env.CLAUSTRUM_BENCH_BIN ?? 'dist/cmd/claustrum.js of this checkout',
  loadavgBefore: load0.map((x) => x.toFixed(2)).join(' '),
  loadavgAfter: load1.map((x) => x.toFixed(2)).join(' '),
  totalMiB: TOTAL / MiB,
  rounds: ROUNDS,
  sizes: {},
};
for (const kib of SIZES_KIB) {
  const rs = rows[kib];
  const out = { direct: median(rs.map((r) => r.direct.median)) };
  for (const w of WIRES) {
    out[w] = {
      mibps: median(rs.map((r) => r[w].median)),
      ratio: median(rs.map((r) => r[w].ratio)),
      daemonCpuMsPerMiB: median(rs.map((r) => r[w].daemonCpuMsPerMiB)),
      clientCpuMsPerMiB: median(rs.map((r) => r[w].clientCpuMsPerMiB)),
      ratios: rs.map((r) => Number(r[w].ratio.toFixed(3))),
    };
  }
  results.sizes[kib] = out;
}

const pad = (s, n) => String(s).padEnd(n);
const lines = [
  `stdin end to end by chunk size: ${TOTAL / MiB} MiB per run, median of ${ROUNDS} rounds; daemon ${results.daemon}`,
  `${results.cpu}, Node ${results.node}; load average ${results.loadavgBefore} before, ${results.loadavgAfter} after`,
  '',
  `${pad('chunk', 8)}${pad('direct', 12)}${WIRES.map((w) => pad(`${w}: MiB/s ratio CPU ms/MiB daemon client`, 44)).join('')}`,
];
for (const kib of SIZES_KIB) {
  const s = results.sizes[kib];
  lines.push(
    `${pad(`${kib} KiB`, 8)}${pad(`${(s.direct / MiB).toFixed(0)} MiB/s`, 12)}${WIRES.map((w) =>
      pad(`${(s[w].mibps / MiB).toFixed(0)} ${s[w].ratio.toFixed(3)}× ${s[w].daemonCpuMsPerMiB.toFixed(2)} ${s[w].clientCpuMsPerMiB.toFixed(2)}`, 44),
    ).join('')}`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
