/**
 * Figure 9: stdin throughput. `total` bytes in 512 KiB chunks written to `cat >/dev/null`:
 * - through the daemon, as `process.stdin` requests with explicit offsets, a window of requests in flight (a "queue
 *   full" answer is retried), then an `eof` write; timed from the first request to the exit frame;
 * - baseline, in the same run: a Node process writing the same chunks into the same command's stdin directly
 *   (honouring backpressure), then closing it; timed from the first write to `close`.
 * The client encodes each chunk as the wire needs (base64 for NDJSON), inside the timed region: it is end to end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from '../lib/client.mjs';
import { cpuOf, startDaemon } from '../lib/daemon.mjs';
import { median, MiB, withTimeout } from '../lib/stats.mjs';

const COMMAND = ['sh', ['-c', 'exec cat >/dev/null']];
const QUEUE_FULL = -32002;
const OFFSET_GAP = -32003;
export const retries = { n: 0 };

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
async function daemonOnce(client, wire, chunks, id, window) {
  await client.call('process.spawn', { id, command: COMMAND[0], args: COMMAND[1] });
  const exit = client.waitExit(id);
  const t0 = performance.now();
  const size = chunks[0].length;
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const encoded = new Map();
  const payload = (i) => {
    if (wire !== 'ndjson') return chunks[i];
    let d = encoded.get(i);
    if (d === undefined) encoded.set(i, (d = chunks[i].toString('base64')));
    return d;
  };
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
        .call('process.stdin', { id, data: payload(i), offset: i * size })
        .then(
          () => encoded.delete(i),
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

/** @param {{ runs: number, total: number, chunk: number, window: number, wires: string[], log: (s: string) => void }} o */
export async function measureStdin(o) {
  const data = randomBytes(o.total);
  const chunks = [];
  for (let at = 0; at < o.total; at += o.chunk) chunks.push(data.subarray(at, at + o.chunk));
  const daemon = await startDaemon({ nodeArgs: process.env.BENCH_DAEMON_NODE_ARGS?.split(' ') });
  const samples = { direct: [] };
  const ratios = {};
  const cpu = { direct: [] };
  try {
    const clients = {};
    for (const w of o.wires) {
      clients[w] = await connect({ wire: w, socket: daemon.socket, token: daemon.token });
      samples[w] = [];
      ratios[w] = [];
      await daemonOnce(clients[w], w, chunks.slice(0, 4), `warm-${w}`, o.window);
    }
    for (let r = 0; r < o.runs; r++) {
      let c0 = process.cpuUsage();
      const base = await directOnce(chunks);
      let c = process.cpuUsage(c0);
      cpu.direct.push({ client: (c.user + c.system) / 1000 / (o.total / MiB) });
      samples.direct.push(o.total / (base / 1000));
      for (const w of o.wires) {
        const d0 = cpuOf(daemon.pid);
        c0 = process.cpuUsage();
        const ms = await daemonOnce(clients[w], w, chunks, `stdin-${w}-${r}`, o.window);
        c = process.cpuUsage(c0);
        (cpu[w] ??= []).push({ client: (c.user + c.system) / 1000 / (o.total / MiB), daemon: ((cpuOf(daemon.pid) - d0) * 1000) / (o.total / MiB) });
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
  }
  const out = { direct: { median: median(samples.direct), samples: samples.direct, clientCpuMsPerMiB: median(cpu.direct.map((x) => x.client)) } };
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
