#!/usr/bin/env node
/**
 * Where the daemon's memory per process goes (the measured reason behind figures 6 and 18). Not part of
 * `npm run bench`: a diagnosis the lead re-runs on a new design.
 *
 *   npm run build && node bench/diagnose-memory.mjs idle 1000       N live `sleep 3600` children
 *   npm run build && node bench/diagnose-memory.mjs retained 1000   N exited `true` processes, retained
 *   add --json <file> for the numbers; CLAUSTRUM_BENCH_BIN=<build>/dist/cmd/claustrum.js for another build
 *
 * It starts the built daemon with the inspector on a loopback port (`--inspect=127.0.0.1:0`), and before and after
 * the N processes (plus a warm-up of 50 first, so code loading and first pages are not charged to them) it forces a
 * full garbage collection through the inspector, reads process.memoryUsage() and /proc/<pid>/status (VmRSS, RssAnon),
 * and then takes a V8 heap snapshot (after: the snapshot's own native buffers stay in malloc's free lists, and the
 * processes spawned after the first one reuse them, so the RSS per process here can read lower than figure 6's or
 * 18's, which take no snapshot: those figures are the authority on RSS). The report is per process: RSS, V8 heap used, external memory, and the heap's growth
 * by object kind (the snapshot's node type and constructor or string name, self sizes summed), largest first. What is
 * in RSS but neither in the V8 heap nor external is native: libuv handles, Node's C++ wrap objects, malloc slack.
 */
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { connect } from './lib/client.mjs';
import { rssOf, startDaemon } from './lib/daemon.mjs';
import { sleep, withTimeout } from './lib/stats.mjs';

const [scenario = 'idle', nArg = '1000'] = process.argv.slice(2);
const N = Number(nArg);
const jsonAt = process.argv.indexOf('--json');
const JSON_OUT = jsonAt === -1 ? undefined : process.argv[jsonAt + 1];
if (!['idle', 'retained'].includes(scenario) || !(N > 0)) {
  process.stderr.write('usage: node bench/diagnose-memory.mjs idle|retained <count> [--json file]\n');
  process.exit(2);
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function inspector(url) {
  const ws = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map();
  const listeners = new Map();
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString('utf8'));
    if (m.id !== undefined) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`));
      else p.resolve(m.result);
    } else listeners.get(m.method)?.(m.params);
  });
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, method });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    send,
    on: (method, fn) => listeners.set(method, fn),
    close: () => ws.close(),
  };
}

async function inspectorUrl(daemon) {
  const { readFileSync } = await import('node:fs');
  for (let i = 0; i < 500; i++) {
    const m = readFileSync(daemon.logPath, 'utf8').match(/Debugger listening on (ws:\/\/\S+)/);
    if (m) return m[1];
    await sleep(10);
  }
  throw new Error('the daemon printed no inspector address');
}

/** Self sizes and counts summed by "type:name" from a heap snapshot. */
function summarize(snapshot) {
  const { meta } = snapshot.snapshot;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const out = new Map();
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + iType]];
    let name = snapshot.strings[nodes[i + iName]];
    // Strings and code are many distinct names: one bucket per type.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'code' || type === 'number') name = '';
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += nodes[i + iSize];
    e.count++;
    out.set(key, e);
  }
  return out;
}

async function measure(cdp, pid) {
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.collectGarbage');
  const { result } = await cdp.send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
  const mem = JSON.parse(result.value);
  // RSS before the snapshot: serializing one allocates native memory in the daemon that malloc may keep.
  const rss = rssOf(pid);
  const rssAnon = rssOf(pid, 'RssAnon');
  const chunks = [];
  cdp.on('HeapProfiler.addHeapSnapshotChunk', (p) => chunks.push(p.chunk));
  await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  const heap = summarize(JSON.parse(chunks.join('')));
  // Collected again: the snapshot itself allocates in the daemon.
  await cdp.send('HeapProfiler.collectGarbage');
  await sleep(300);
  return { rss, rssAnon, heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers, heap };
}

async function spawnMany(client, prefix, count) {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const exits = scenario === 'retained' ? ids.map((id) => client.waitExit(id)) : [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const id = ids[next++];
        await client.call('process.spawn', scenario === 'idle' ? { id, command: 'sleep', args: ['3600'] } : { id, command: 'true' });
      }
    }),
  );
  await withTimeout(Promise.all(exits), 300_000, 'exits');
}

const daemon = await startDaemon({ args: ['-no-login-path'], nodeArgs: ['--inspect=127.0.0.1:0'] });
try {
  const cdp = await inspector(await inspectorUrl(daemon));
  const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
  await spawnMany(c, 'warm', 50);
  await sleep(500);
  const before = await measure(cdp, daemon.pid);
  await spawnMany(c, scenario, N);
  await sleep(1000);
  const after = await measure(cdp, daemon.pid);
  const per = (k) => (after[k] - before[k]) / N;
  const kinds = [...after.heap]
    .map(([k, v]) => {
      const b = before.heap.get(k) ?? { size: 0, count: 0 };
      return { kind: k, bytesPerProcess: (v.size - b.size) / N, countPerProcess: (v.count - b.count) / N };
    })
    .filter((x) => Math.abs(x.bytesPerProcess) >= 8)
    .sort((a, b) => b.bytesPerProcess - a.bytesPerProcess);
  const report = {
    scenario,
    processes: N,
    perProcess: { rss: per('rss'), rssAnon: per('rssAnon'), heapUsed: per('heapUsed'), external: per('external'), arrayBuffers: per('arrayBuffers') },
    before: { rss: before.rss, heapUsed: before.heapUsed, external: before.external },
    after: { rss: after.rss, heapUsed: after.heapUsed, external: after.external },
    heapKinds: kinds.slice(0, 40),
  };
  const kib = (v) => `${(v / 1024).toFixed(2)} KiB`;
  const lines = [
    `${scenario}: ${N} processes; RSS ${(before.rss / 1048576).toFixed(1)} → ${(after.rss / 1048576).toFixed(1)} MiB after full collections`,
    `per process: RSS ${kib(report.perProcess.rss)} (anonymous ${kib(report.perProcess.rssAnon)}), V8 heap used ${kib(report.perProcess.heapUsed)}, external ${kib(report.perProcess.external)} (array buffers ${kib(report.perProcess.arrayBuffers)}); the rest of RSS is native (libuv, Node's wraps, malloc)`,
    'V8 heap growth per process by kind (snapshot type:constructor), largest first:',
    ...kinds.slice(0, 25).map((x) => `  ${kib(x.bytesPerProcess).padStart(12)}  ${x.countPerProcess.toFixed(2).padStart(6)} objects  ${x.kind}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`);
  await c.close();
  cdp.close();
} finally {
  await daemon.stop();
}
