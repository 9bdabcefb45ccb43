/**
 * Figures 1 and 2: stream throughput of one child writing `total` bytes to stdout, delivered to a client that
 * decodes every frame back to bytes, against the raw relay measured in the same run (interleaved, run by run).
 *
 * The child is `cat` over a file of random bytes, repeated: it writes at page-cache speed, so the child is never
 * what limits either side. Timing runs from the request that starts the child (the spawn request; the relay's "go"
 * byte) to the last byte delivered (the exit frame; the relay socket's end), so both include one spawn.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../lib/client.mjs';
import { cpuOf, startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, withTimeout } from '../lib/stats.mjs';

const RELAY = path.join(path.dirname(fileURLToPath(import.meta.url)), '../lib/relay.mjs');

/** A child command writing exactly `total` bytes of random data: `cat` of one file listed total/fileSize times. */
export function catChild(dir, total) {
  const fileSize = Math.min(total, 16 * MiB);
  if (total % fileSize !== 0) throw new Error('total must be a multiple of the file size');
  const file = path.join(dir, 'random.bin');
  writeFileSync(file, randomBytes(fileSize));
  return { command: 'cat', args: Array.from({ length: total / fileSize }, () => file) };
}

/** One raw-relay run: seconds from "go" to the socket's end, and bytes counted. */
export async function relayOnce(dir, child, run) {
  const sock = path.join(dir, `relay-${run}.sock`);
  const server = net.createServer();
  await new Promise((r) => server.listen(sock, r));
  const relay = spawn(process.execPath, [RELAY, sock, child.command, ...child.args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let relayOut = '';
  relay.stdout.on('data', (d) => (relayOut += d));
  const [conn] = await Promise.all([new Promise((r) => server.once('connection', r))]);
  let bytes = 0;
  const done = new Promise((resolve) => {
    conn.on('data', (c) => (bytes += c.length));
    conn.once('end', resolve);
  });
  const t0 = performance.now();
  conn.write('g');
  await withTimeout(done, 120_000, 'raw relay');
  const seconds = (performance.now() - t0) / 1000;
  conn.destroy();
  server.close();
  await new Promise((r) => (relay.exitCode !== null && relay.stdout.closed ? r() : relay.once('close', r)));
  const relayCpuMs = JSON.parse(relayOut.trim() || '{"cpuMs":null}').cpuMs;
  return { seconds, bytes, relayCpuMs };
}

/** One daemon run over `wire`: seconds from the spawn request to the exit frame, and bytes decoded. */
export async function daemonOnce(daemon, wire, child, run, wsUrl) {
  const client = await connect({ wire, socket: daemon.socket, url: wsUrl, token: daemon.token });
  const id = `tp-${wire}-${run}`;
  let bytes = 0;
  let nextSeq = 1;
  let error;
  const exited = new Promise((resolve) => {
    client.onFrame = (f) => {
      if (f.processId !== id) return;
      if (f.seq !== nextSeq) error ??= new Error(`seq ${f.seq} where ${nextSeq} was due`);
      nextSeq = f.seq + 1;
      if (f.stream === 'exit') resolve(f);
      else bytes += f.data.length;
    };
  });
  const cpu0 = cpuOf(daemon.pids);
  const ccpu0 = process.cpuUsage();
  const t0 = performance.now();
  await client.call('process.spawn', { id, command: child.command, args: child.args });
  const exit = await withTimeout(exited, 180_000, `${wire} stream`);
  const seconds = (performance.now() - t0) / 1000;
  const daemonCpu = cpuOf(daemon.pids) - cpu0;
  const cc = process.cpuUsage(ccpu0);
  await client.close();
  if (error) throw error;
  if (exit.exitCode !== 0) throw new Error(`child exited ${exit.exitCode}`);
  return { seconds, bytes, daemonCpu, clientCpu: (cc.user + cc.system) / 1e6 };
}

/** Reads the WebSocket port the daemon logged. */
export async function wsUrlOf(daemon) {
  const { readFileSync } = await import('node:fs');
  for (let i = 0; i < 200; i++) {
    const m = readFileSync(daemon.logPath, 'utf8').match(/websocket: serving ws:\/\/([^\s]+)/);
    if (m) return `ws://${m[1]}`;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no websocket address in the daemon log');
}

/**
 * @param {{ runs: number, total: number, wires: string[], log: (s: string) => void }} o
 */
export async function measureThroughput(o) {
  const dir = tempDir('clb-tp-');
  const child = catChild(dir, o.total);
  const daemon = await startDaemon({ args: ['-ws-addr', '127.0.0.1:0'] });
  const wsUrl = await wsUrlOf(daemon);
  const samples = { relay: [] };
  const ratios = {};
  const pairedRelay = {};
  const relayCpu = [];
  const cpu = {};
  for (const w of o.wires) samples[w] = [];
  try {
    // Warm-up: the first spawn reads the login-shell PATH, and the first stream warms the JIT on both sides.
    const warm = { command: 'head', args: ['-c', String(Math.min(o.total, 16 * MiB)), child.args[0]] };
    for (const wire of o.wires) await daemonOnce(daemon, wire, warm, 'warm', wsUrl);
    // Each wire's run is paired with a raw-relay run right before it, so both see the same moment of a shared
    // machine; the ratio of a run is wire / its own relay, and the figure is the median of those ratios.
    for (let run = 0; run < o.runs; run++) {
      for (const wire of o.wires) {
        const r = await relayOnce(dir, child, `${run}-${wire}`);
        if (r.bytes !== o.total) throw new Error(`relay delivered ${r.bytes} of ${o.total} bytes`);
        samples.relay.push(r.bytes / r.seconds);
        (pairedRelay[wire] ??= []).push(r.bytes / r.seconds);
        if (r.relayCpuMs !== null) relayCpu.push(r.relayCpuMs / (r.bytes / MiB));
        const d = await daemonOnce(daemon, wire, child, run, wsUrl);
        if (d.bytes !== o.total) throw new Error(`${wire} delivered ${d.bytes} of ${o.total} bytes`);
        samples[wire].push(d.bytes / d.seconds);
        (ratios[wire] ??= []).push(d.bytes / d.seconds / (r.bytes / r.seconds));
        (cpu[wire] ??= []).push({ daemon: d.daemonCpu / (d.bytes / MiB), client: d.clientCpu / (d.bytes / MiB) });
      }
      o.log(
        `  run ${run + 1}: ${o.wires.map((w) => `${w} ${(samples[w].at(-1) / MiB).toFixed(0)} MiB/s (${ratios[w].at(-1).toFixed(2)}× its relay)`).join(', ')}`,
      );
    }
  } finally {
    await daemon.stop();
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true, force: true });
  }
  const out = { relayCpuMsPerMiB: median(relayCpu) };
  for (const [k, v] of Object.entries(samples)) {
    out[k] = { ...out[k], median: median(v), samples: v };
    if (ratios[k]) {
      out[k].ratio = median(ratios[k]);
      out[k].relayMedian = median(pairedRelay[k]);
      out[k].ratios = ratios[k];
    }
    if (cpu[k]) {
      out[k].daemonCpuMsPerMiB = median(cpu[k].map((c) => c.daemon * 1000));
      out[k].clientCpuMsPerMiB = median(cpu[k].map((c) => c.client * 1000));
    }
  }
  return out;
}
