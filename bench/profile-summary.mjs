#!/usr/bin/env node
/**
 * Sums the self time of V8 CPU profiles (`.cpuprofile`, as `node --cpu-prof` writes them) by function, so a figure's
 * profile reads as "what dominates". Not part of `npm run bench`. Usage:
 *
 *   BENCH_DAEMON_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' BENCH_ONLY=12 node bench/run.mjs
 *   node bench/profile-summary.mjs /tmp/prof/*.cpuprofile [--top 25] [--busy]
 *
 * Several files are summed (every daemon of a figure). Percentages are of all samples, or with --busy of the samples
 * that are not `(idle)` (the event loop waiting), which is what the daemon's CPU time is made of. Functions are named
 * `name file:line`, with the file's path made relative to dist/ or node_modules/; `(garbage collector)`, `(program)`
 * (V8 and native code outside JavaScript, including libuv and system calls) and `(idle)` are V8's own buckets.
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const TOP = topAt === -1 ? 25 : Number(args[topAt + 1]);
const BUSY = args.includes('--busy');
const files = args.filter((a, i) => a.endsWith('.cpuprofile') && args[i - 1] !== '--top');
if (files.length === 0) {
  process.stderr.write('usage: node bench/profile-summary.mjs <file.cpuprofile>... [--top N] [--busy]\n');
  process.exit(2);
}

function label(frame) {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const url = frame.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/');
  return `${name} ${url}:${frame.lineNumber + 1}`;
}

const self = new Map();
let total = 0;
let idle = 0;
for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // timeDeltas[i] is the time before sample i; charge each sample that long.
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]);
    const dt = p.timeDeltas[i] ?? 0;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
    if (node.callFrame.functionName === '(idle)') idle += dt;
  }
}
const base = BUSY ? total - idle : total;
const rows = [...self].filter(([k]) => !(BUSY && k === '(idle)')).sort((a, b) => b[1] - a[1]);
const lines = [
  `${files.length} profile(s), ${(total / 1e6).toFixed(2)} s sampled, ${(idle / 1e6).toFixed(2)} s idle; percentages of ${BUSY ? 'the busy time' : 'all samples'}`,
  ...rows.slice(0, TOP).map(([k, t]) => `${((100 * t) / base).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(7)} ms  ${k}`),
];
process.stdout.write(`${lines.join('\n')}\n`);
