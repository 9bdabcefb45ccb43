/**
 * Figure 9: stdin throughput. `total` bytes of random data into `sh -c 'exec cat >/dev/null'`, in three ways per run,
 * interleaved run by run:
 * - through the daemon, as `process.stdin` requests with explicit offsets, encoded by the client library's own codecs
 *   (dist/src/client/codec.js, msgpack.js), in the library's chunk size (STDIN_CHUNK_BYTES) with about the library's
 *   window of data in flight (STDIN_WINDOW_BYTES, at least 2 requests); a "queue full" answer is retried; then an
 *   `eof` write; timed from the first request to the exit frame;
 * - baseline: a Node process writing the same bytes into the same command's stdin directly in DIRECT_CHUNK_BYTES
 *   writes (honouring backpressure), then closing it; timed from the first write to `close`;
 * - Node's ceiling for base64 in JSON (NDJSON only, `ceiling: true`): the same chunks as JSON lines built with
 *   JSON.stringify, read by a relay process that decodes them with JSON.parse and Buffer.from(…, 'base64') and writes
 *   them into the same command (bench/lib/json-relay.mjs); timed from the first write to the relay's "done" byte.
 * The client encodes each chunk as the wire needs (base64 for NDJSON) inside the timed region: it is end to end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ndjson as ndjsonCodec } from '../../dist/src/client/codec.js';
import { msgpack as msgpackCodec } from '../../dist/src/client/msgpack.js';
import { STDIN_CHUNK_BYTES, STDIN_WINDOW_BYTES } from '../../dist/src/client/stdin.js';
import { connect } from '../lib/client.mjs';
import { cpuOf, startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, withTimeout } from '../lib/stats.mjs';

const COMMAND = ['sh', ['-c', 'exec cat >/dev/null']];
const QUEUE_FULL = -32002;
const OFFSET_GAP = -32003;
const CODECS = { ndjson: ndjsonCodec, msgpack: msgpackCodec };
const JSON_RELAY = path.join(path.dirname(fileURLToPath(import.meta.url)), '../lib/json-relay.mjs');
/** The direct writer's write size: round one's figure 9 used it, so the baseline stays the same one (issue 15). */
export const DIRECT_CHUNK_BYTES = 512 * 1024;
export { STDIN_CHUNK_BYTES };
/** Requests in flight for a chunk size: the library's window of bytes, at least 2. */
export function windowFor(chunk) {
  return Math.max(2, Math.round(STDIN_WINDOW_BYTES / chunk));
}
export const retries = { n: 0 };

function split(data, size) {
  const out = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

async function directOnce(chunks) {
  const child = spawn(COMMAND[0], COMMAND[1], { stdio: ['pipe', 'ignore', 'inherit'] });
  const closed = new Promise((resolve) => child.once('close', resolve));
  const t0 = performance.now();
  for (const c of chunks) {
    if (!child.stdin.write(c)) await new Promise((r) => child.stdin.once('drain', r));
  }
  child.stdin.end();
  const code = await withTimeout(closed, 120_000, 'direct cat');
  if (code !== 0) throw new Error(`cat exited ${code}`);
  return performance.now() - t0;
}

/**
 * Writes every chunk with its offset, keeping up to `window` requests in flight. "Queue full" is backpressure: the
 * client waits for what is in flight to settle (later requests answer "offset gap", since an earlier one was not
 * applied), then resumes from the first unapplied offset after a millisecond. Duplicates cannot arise but would be
 * harmless: offsets make every write idempotent.
 */
async function daemonOnce(client, chunks, id, window) {
  await client.call('process.spawn', { id, command: COMMAND[0], args: COMMAND[1] });
  const exit = client.waitExit(id);
  const t0 = performance.now();
  const size = chunks[0].length;
  const total = chunks.reduce((n, c) => n + c.length, 0);
  let next = 0;
  let resumeAt;
  const inFlight = new Set();
  while (next < chunks.length || inFlight.size > 0 || resumeAt !== undefined) {
    if (resumeAt !== undefined && inFlight.size === 0) {
      next = resumeAt;
      resumeAt = undefined;
      await new Promise((r) => setTimeout(r, 1));
    }
    while (resumeAt === undefined && next < chunks.length && inFlight.size < window) {
      const i = next++;
      const p = client
        .call('process.stdin', { id, data: chunks[i], offset: i * size })
        .then(
          () => {},
          (err) => {
            if (err.code !== QUEUE_FULL && err.code !== OFFSET_GAP) throw err;
            resumeAt = Math.min(resumeAt ?? i, i);
            retries.n++;
          },
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (inFlight.size > 0) await Promise.race(inFlight);
  }
  const last = await client.call('process.stdin', { id, offset: total, eof: true });
  if (last.applied !== total) throw new Error(`applied ${last.applied} of ${total}`);
  const f = await withTimeout(exit, 120_000, 'exit frame of cat');
  if (f.exitCode !== 0) throw new Error(`cat exited ${f.exitCode}`);
  return performance.now() - t0;
}

/**
 * One run of Node's base64-in-JSON relay: the client writes each chunk as a JSON line (JSON.stringify of its base64)
 * into a Unix socket, honouring backpressure; ms from the first write to the relay's "done" byte, and its CPU.
 */
async function ceilingOnce(dir, chunks, run) {
  const sock = path.join(dir, `json-relay-${run}.sock`);
  const server = net.createServer();
  await new Promise((r) => server.listen(sock, r));
  const relay = spawn(process.execPath, [JSON_RELAY, sock, ...[COMMAND[0], ...COMMAND[1]]], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  relay.stdout.on('data', (d) => (out += d));
  const relayClosed = new Promise((r) => relay.once('close', r));
  const conn = await new Promise((r) => server.once('connection', r));
  const done = new Promise((resolve, reject) => {
    conn.once('data', resolve);
    conn.once('close', () => reject(new Error(`the JSON relay closed without finishing: ${out}`)));
  });
  done.catch(() => {});
  const t0 = performance.now();
  for (const c of chunks) {
    if (!conn.write(`${JSON.stringify({ data: c.toString('base64') })}\n`)) await new Promise((r) => conn.once('drain', r));
  }
  conn.end();
  await withTimeout(done, 120_000, 'the JSON relay');
  const ms = performance.now() - t0;
  await relayClosed;
  server.close();
  const r = JSON.parse(out.trim());
  const total = chunks.reduce((n, c) => n + c.length, 0);
  if (r.code !== 0 || r.bytes !== total) throw new Error(`JSON relay: cat exited ${r.code}, ${r.bytes} of ${total} bytes`);
  return { ms, relayCpuMs: r.cpuMs };
}

/**
 * @param {{ runs: number, total: number, chunk?: number, directChunk?: number, window?: number, ceiling?: boolean,
 *   wires: string[], log: (s: string) => void }} o
 *   chunk: the client's request size (default the library's STDIN_CHUNK_BYTES); window: requests in flight (default
 *   windowFor(chunk)); directChunk: the direct writer's write size (default DIRECT_CHUNK_BYTES).
 */
export async function measureStdin(o) {
  const chunk = o.chunk ?? STDIN_CHUNK_BYTES;
  const window = o.window ?? windowFor(chunk);
  const data = randomBytes(o.total);
  const chunks = split(data, chunk);
  const directChunks = split(data, o.directChunk ?? DIRECT_CHUNK_BYTES);
  const dir = tempDir('clb-stdin-');
  const daemon = await startDaemon();
  const samples = { direct: [] };
  const ratios = {};
  const cpu = { direct: [], ceiling: [] };
  const mib = o.total / MiB;
  const cpuMs = (c) => (c.user + c.system) / 1000;
  if (o.ceiling) {
    samples.ceiling = [];
    ratios.ceiling = [];
  }
  try {
    const clients = {};
    for (const w of o.wires) {
      clients[w] = await connect({ wire: w, socket: daemon.socket, token: daemon.token, codec: CODECS[w] });
      samples[w] = [];
      ratios[w] = [];
      await daemonOnce(clients[w], chunks.slice(0, 4), `warm-${w}`, window);
    }
    if (o.ceiling) await ceilingOnce(dir, chunks.slice(0, 4), 'warm');
    for (let r = 0; r < o.runs; r++) {
      let c0 = process.cpuUsage();
      const base = await directOnce(directChunks);
      cpu.direct.push({ client: cpuMs(process.cpuUsage(c0)) / mib });
      samples.direct.push(o.total / (base / 1000));
      if (o.ceiling) {
        c0 = process.cpuUsage();
        const c = await ceilingOnce(dir, chunks, r);
        cpu.ceiling.push({ client: cpuMs(process.cpuUsage(c0)) / mib, relay: c.relayCpuMs / mib });
        samples.ceiling.push(o.total / (c.ms / 1000));
        ratios.ceiling.push(base / c.ms);
      }
      for (const w of o.wires) {
        const d0 = cpuOf(daemon.pids);
        c0 = process.cpuUsage();
        const ms = await daemonOnce(clients[w], chunks, `stdin-${w}-${r}`, window);
        (cpu[w] ??= []).push({ client: cpuMs(process.cpuUsage(c0)) / mib, daemon: ((cpuOf(daemon.pids) - d0) * 1000) / mib });
        samples[w].push(o.total / (ms / 1000));
        ratios[w].push(base / ms);
      }
      o.log(
        `  run ${r + 1}: ${Object.entries(samples)
          .map(([k, v]) => `${k} ${(v.at(-1) / MiB).toFixed(0)} MiB/s`)
          .join(', ')}`,
      );
    }
    for (const c of Object.values(clients)) await c.close();
  } finally {
    await daemon.stop();
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true, force: true });
  }
  const out = {
    chunk,
    window,
    direct: { median: median(samples.direct), samples: samples.direct, clientCpuMsPerMiB: median(cpu.direct.map((x) => x.client)) },
  };
  if (o.ceiling) {
    out.ceiling = {
      median: median(samples.ceiling),
      samples: samples.ceiling,
      ratio: median(ratios.ceiling),
      ratios: ratios.ceiling,
      clientCpuMsPerMiB: median(cpu.ceiling.map((x) => x.client)),
      relayCpuMsPerMiB: median(cpu.ceiling.map((x) => x.relay)),
    };
  }
  for (const w of o.wires) {
    out[w] = {
      median: median(samples[w]),
      samples: samples[w],
      ratio: median(ratios[w]),
      ratios: ratios[w],
      clientCpuMsPerMiB: median(cpu[w].map((x) => x.client)),
      daemonCpuMsPerMiB: median(cpu[w].map((x) => x.daemon)),
    };
  }
  return out;
}
