// The chaos rounds. Each takes the run context and returns nothing; it records violations in ctx.fail(). All
// traffic goes over the wire: the client library (dist/src/client) and raw sockets, never the daemon's internals.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { fdCount } from './proc.mjs';
import { lifecycle } from './lifecycle.mjs';
import { Raw } from './raw.mjs';

const run = promisify(execFile);

/**
 * Signals the daemon must survive with its state intact (PROTOCOL.md, "Signals"): those ignored by default, and
 * those the daemon handles by ignoring them (SIGUSR1 included: it must not open the inspector).
 */
export const SURVIVABLE_SIGNALS = [
  'SIGWINCH',
  'SIGCHLD',
  'SIGURG',
  'SIGCONT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGPIPE',
  'SIGALRM',
  'SIGVTALRM',
  'SIGPROF',
  'SIGXFSZ',
  'SIGSTKFLT',
  'SIGIO',
  'SIGSYS',
  'SIGTRAP',
];

const pick = (r, list) => list[Math.floor(r() * list.length)];
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));

/** The pattern-echo fixture as spawn params, marked so a leak is found in /proc wherever it ends up. */
function patternEcho(ctx, perTick, exitCode = 0) {
  return {
    command: process.execPath,
    args: [path.join(ctx.fixtures, 'pattern-echo.mjs'), String(perTick), String(exitCode)],
    env: { CHAOS_MARK: ctx.mark },
  };
}

/**
 * Checks pattern-echo's stdout: without gaps, the pattern exactly (every byte once, in place) and a trailer whose
 * stdin count and hash are those sent (stdin exactly once); with gaps, only that they were reported.
 */
export function checkPatternEcho(ctx, label, stdout, gaps, sentHash, sentBytes) {
  const text = stdout.subarray(Math.max(0, stdout.length - 200)).toString('latin1');
  const m = /\nSTDIN (\d+) ([0-9a-f]{64})\nPATTERN (\d+)\n$/.exec(text);
  if (gaps.length > 0) {
    ctx.stats.gaps += gaps.length;
    return;
  }
  if (!m) return ctx.fail(`${label}: output does not end with the trailer (${stdout.length} bytes, no gap reported)`);
  const patternBytes = Number(m[3]);
  const body = stdout.length - (m[0].length - 1) - 1;
  if (body !== patternBytes) return ctx.fail(`${label}: ${body} pattern bytes delivered, the child wrote ${patternBytes} (no gap reported)`);
  for (let i = 0; i < body; i++) {
    if (stdout[i] !== ((i * 7 + Math.floor(i / 8192)) & 0xff)) return ctx.fail(`${label}: output byte ${i} is wrong (lost or repeated data)`);
  }
  if (Number(m[1]) !== sentBytes || m[2] !== sentHash) {
    ctx.fail(`${label}: the child read ${m[1]} stdin bytes (sha256 ${m[2].slice(0, 12)}…), the client sent ${sentBytes} (${sentHash.slice(0, 12)}…)`);
  }
  ctx.stats.bytesChecked += body;
}

/** Drives one pattern-echo process through a client: random stdin chunks, EOF, then its output checked. */
async function patternSession(ctx, client, label, r) {
  const perTick = pick(r, [64, 256, 1024, 4096]);
  const proc = client.spawn({ ...patternEcho(ctx, perTick), wantPid: true });
  const chunks = [];
  proc.on('stdout', (d) => chunks.push(d));
  proc.on('error', () => {});
  if (process.env.DEBUG_CHAOS)
    for (const ev of ['ready', 'reattach', 'gap', 'lost']) proc.on(ev, (x) => console.log(label, proc.id, ev, x?.message ?? JSON.stringify(x)));
  const lost = new Promise((resolve) => proc.once('lost', (e) => resolve(e)));
  const hash = createHash('sha256');
  let sent = 0;
  const total = int(r, 0, 512 * 1024);
  const writes = [];
  while (sent < total) {
    const n = Math.min(total - sent, int(r, 1, 64 * 1024));
    const buf = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) buf[i] = (sent + i * 31) & 0xff;
    hash.update(buf);
    sent += n;
    writes.push(proc.write(buf).catch((e) => ctx.fail(`${label}: stdin write failed: ${e.message}`)));
    if (r() < 0.3) await sleep(int(r, 1, 40));
    if (r() < 0.05 && proc.pid) ctx.signalChild(proc.pid);
  }
  writes.push(proc.end().catch((e) => ctx.fail(`${label}: stdin end failed: ${e.message}`)));
  const outcome = await Promise.race([
    proc.exited.then((x) => ({ exit: x })),
    lost.then((e) => ({ lost: e })),
    sleep(60_000).then(() => ({ timeout: true })),
  ]);
  if (outcome.timeout) {
    ctx.fail(`${label}: no exit within 60 s (stdin ${sent} bytes queued; the child is killed)`);
    await proc.killAndWait({ signal: 'KILL' }).catch(() => {});
    return;
  }
  await Promise.allSettled(writes);
  if (outcome.lost) return ctx.fail(`${label}: process lost: ${outcome.lost.message}`);
  ctx.retained(Buffer.concat(chunks).length);
  if (outcome.exit.exitCode !== 0) return ctx.fail(`${label}: exit ${outcome.exit.exitCode} ${outcome.exit.signal ?? ''}`);
  checkPatternEcho(ctx, label, Buffer.concat(chunks), outcome.exit.gaps, hash.digest('hex'), sent);
}

/** Clients through the cutting proxy: every connection is cut at a random byte or moment; output and stdin must survive. */
export async function cuts(ctx) {
  const r = ctx.random;
  // Armed after the first handshake: a first connect that fails is an error by design, later ones are retried.
  const client = await ctx.connect({ socket: ctx.proxy.path });
  ctx.proxy.arm(true);
  try {
    const n = int(r, 2, 5);
    // Each session draws from a stream of its own, forked in order, so concurrent sessions replay identically.
    await Promise.all(Array.from({ length: n }, (_, i) => patternSession(ctx, client, `cuts#${i}`, ctx.fork())));
  } finally {
    ctx.proxy.arm(false);
    await Promise.race([client.close(), sleep(10_000)]);
  }
}

/** A request line for the raw-cut round. */
function rawRequest(ctx, r, id, target) {
  const base = { jsonrpc: '2.0', id, auth: ctx.token };
  switch (int(r, 0, 6)) {
    case 0:
      return { ...base, method: 'server.ping' };
    case 1:
      return {
        ...base,
        method: 'process.spawn',
        params: { id: `raw-${id}`, command: process.execPath, args: ['-e', 'setTimeout(()=>{},300)'], env: { CHAOS_MARK: ctx.mark } },
      };
    case 2:
      return { ...base, method: 'process.reattach', params: { id: target, fromSeq: int(r, 0, 50) } };
    case 3:
      return { ...base, method: 'process.stdin', params: { id: target, data: Buffer.from('x'.repeat(int(r, 1, 2000))).toString('base64') } };
    case 4:
      return { ...base, method: 'files.stat', params: { path: ctx.dir } };
    case 5:
      return { ...base, method: 'process.killAndWait', params: { id: `raw-${id - 1}`, timeoutMs: 200 } };
    default:
      return { ...base, method: 'process.list' };
  }
}

/** Raw connections dropped at every stage of a request: before it, inside it, after it, inside its reply. */
export async function rawCuts(ctx) {
  const r = ctx.random;
  const target = `rc-${ctx.seq()}`;
  const owner = new Raw(ctx.daemon.socket);
  owner.send({ jsonrpc: '2.0', id: 1, method: 'process.spawn', auth: ctx.token, params: { id: target, ...patternEcho(ctx, 64) } });
  await owner.reply(1);
  const n = int(r, 20, 60);
  const jobs = [];
  for (let i = 0; i < n; i++) {
    const id = ctx.seq();
    const line = Buffer.from(`${JSON.stringify(rawRequest(ctx, r, id, target))}\n`);
    const stage = int(r, 0, 4);
    const partial = int(r, 1, line.length - 1);
    const pause = int(r, 0, 20);
    const c = new Raw(ctx.daemon.socket);
    jobs.push(
      (async () => {
        if (!(await c.connected)) return;
        switch (stage) {
          case 0: // connected, nothing sent
            break;
          case 1: // part of the request
            c.send(line.subarray(0, partial));
            await sleep(pause);
            break;
          case 2: // the whole request, gone before the reply
            c.send(line);
            break;
          case 3: // gone inside the reply
            c.send(line);
            await new Promise((resolve) => {
              c.sock.once('data', resolve);
              setTimeout(resolve, 500).unref();
            });
            break;
          default: // half-closed: the reply must still come
            c.send(line);
            c.sock.end();
            try {
              await c.reply(id, 10_000);
            } catch {
              ctx.fail(`rawCuts: a half-closed connection got no reply to ${line.toString().slice(0, 80)}`);
            }
        }
        c.destroy();
      })(),
    );
    if (r() < 0.5) await sleep(int(r, 0, 10));
  }
  await Promise.all(jobs);
  owner.destroy();
  // A fresh connection: a reattach above may have taken the target over, which closes its earlier receiver.
  const closer = new Raw(ctx.daemon.socket);
  closer.send({ jsonrpc: '2.0', id: 2, method: 'process.stdin', auth: ctx.token, params: { id: target, eof: true } });
  await closer.reply(2).catch(() => {});
  closer.send({ jsonrpc: '2.0', id: 3, method: 'process.killAndWait', auth: ctx.token, params: { id: target, timeoutMs: 2000 } });
  const killed = await closer.reply(3, 20_000).catch(() => undefined);
  if (!killed?.result?.died) ctx.fail(`rawCuts: the target did not die: ${JSON.stringify(killed)}`);
  closer.destroy();
}

/** A receiver that stops reading: it must be dropped after the stall timeout; a reattach then replays every byte. */
export async function stalledReader(ctx) {
  const r = ctx.random;
  const total = int(r, 2, 8) * 1024 * 1024;
  const id = `stall-${ctx.seq()}`;
  const raw = new Raw(ctx.daemon.socket);
  raw.send({
    jsonrpc: '2.0',
    id: 1,
    method: 'process.spawn',
    auth: ctx.token,
    params: { id, command: process.execPath, args: [path.join(ctx.fixtures, 'flood.mjs'), String(total)], env: { CHAOS_MARK: ctx.mark } },
  });
  await raw.reply(1);
  // Read nothing for longer than the stall timeout; then read on: a dropped receiver sees its connection end.
  raw.sock.pause();
  await sleep(ctx.stallMs + 1500);
  raw.sock.resume();
  const dropped = await Promise.race([raw.closed.then(() => true), sleep(15_000).then(() => false)]);
  if (!dropped) ctx.fail(`stalledReader: a receiver that read nothing for ${ctx.stallMs + 1500} ms was not dropped`);
  raw.destroy();
  const client = await ctx.connect({ socket: ctx.daemon.socket });
  try {
    const proc = client.attach(id, { fromSeq: 0 });
    const chunks = [];
    // A slow reader for a while: pause and resume the connection.
    proc.on('stdout', (d) => chunks.push(d));
    const exit = await Promise.race([proc.exited, sleep(60_000).then(() => undefined)]);
    if (!exit) return ctx.fail('stalledReader: no exit after the reattach');
    const out = Buffer.concat(chunks);
    ctx.retained(out.length);
    if (exit.gaps.length > 0) {
      ctx.stats.gaps += exit.gaps.length;
      return;
    }
    if (out.length !== total) return ctx.fail(`stalledReader: ${out.length} of ${total} bytes replayed and no gap reported`);
    for (let i = 0; i < out.length; i++) {
      if (out[i] !== ((i * 7 + Math.floor(i / 8192)) & 0xff)) return ctx.fail(`stalledReader: byte ${i} wrong after the reattach`);
    }
    ctx.stats.bytesChecked += out.length;
  } finally {
    await client.close();
  }
}

/** A slow reader: reads in short bursts with long pauses while a child floods; everything arrives, once. */
export async function slowReader(ctx) {
  const r = ctx.fork(); // the chunk count is timing: its draws must not shift the run's stream
  const total = int(r, 1, 4) * 1024 * 1024;
  const client = await ctx.connect({ socket: ctx.daemon.socket });
  try {
    const proc = client.spawn({
      command: process.execPath,
      args: [path.join(ctx.fixtures, 'flood.mjs'), String(total)],
      env: { CHAOS_MARK: ctx.mark },
    });
    const chunks = [];
    const it = proc.stdout[Symbol.asyncIterator]();
    const deadline = Date.now() + 60_000;
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      chunks.push(next.value);
      if (r() < 0.2) await sleep(int(r, 5, 120));
      if (Date.now() > deadline) return ctx.fail('slowReader: not done within 60 s');
    }
    const exit = await proc.exited;
    const out = Buffer.concat(chunks);
    ctx.retained(out.length);
    if (exit.gaps.length > 0)
      return ctx.fail(`slowReader: an attached slow reader saw a gap ${JSON.stringify(exit.gaps)} (delivery must be lossless)`);
    if (out.length !== total) return ctx.fail(`slowReader: ${out.length} of ${total} bytes`);
    for (let i = 0; i < out.length; i++) {
      if (out[i] !== ((i * 7 + Math.floor(i / 8192)) & 0xff)) return ctx.fail(`slowReader: byte ${i} wrong`);
    }
    ctx.stats.bytesChecked += out.length;
  } finally {
    await client.close();
  }
}

/** Floods: pipelined requests, connection churn, and a large stdin. */
export async function flood(ctx) {
  const r = ctx.random;
  // Pipelined pings: exactly one reply each.
  const n = int(r, 200, 2000);
  const c = new Raw(ctx.daemon.socket);
  await c.connected;
  let lines = '';
  for (let i = 1; i <= n; i++) lines += `${JSON.stringify({ jsonrpc: '2.0', id: i, method: 'server.ping', auth: ctx.token })}\n`;
  c.send(lines);
  const deadline = Date.now() + 30_000;
  while (c.messages.length < n && Date.now() < deadline && !c.isClosed) await sleep(20);
  await sleep(50);
  const ids = c.messages.map((m) => m.id);
  if (ids.length !== n || new Set(ids).size !== n) ctx.fail(`flood: ${n} pipelined pings got ${ids.length} replies (${new Set(ids).size} distinct)`);
  c.destroy();
  // Churn: connections opened and dropped at once, half of them after a request.
  const churn = int(r, 100, 400);
  for (let i = 0; i < churn; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, churn - i) }, () => r() < 0.5).map(async (ping) => {
        const x = new Raw(ctx.daemon.socket);
        if ((await x.connected) && ping) x.send({ jsonrpc: '2.0', id: 1, method: 'server.ping', auth: ctx.token });
        x.destroy();
      }),
    );
  }
  // A large stdin through the client: every byte exactly once.
  const client = await ctx.connect({ socket: ctx.daemon.socket });
  try {
    const proc = client.spawn(patternEcho(ctx, 16));
    const chunks = [];
    proc.on('stdout', (d) => chunks.push(d));
    const size = int(r, 1, 8) * 1024 * 1024;
    const data = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) data[i] = (i * 13) & 0xff;
    await proc.end(data);
    const exit = await Promise.race([proc.exited, sleep(60_000).then(() => undefined)]);
    if (!exit) return ctx.fail('flood: big-stdin child did not exit');
    ctx.retained(Buffer.concat(chunks).length);
    checkPatternEcho(ctx, 'flood stdin', Buffer.concat(chunks), exit.gaps, createHash('sha256').update(data).digest('hex'), size);
  } finally {
    await client.close();
  }
}

/** Signals to the daemon it must survive, and a SIGSTOP/SIGCONT pause; the pinger is excused while stopped. */
export async function signals(ctx) {
  const r = ctx.random;
  const pid = ctx.daemon.pid;
  const client = await ctx.connect({ socket: ctx.daemon.socket });
  try {
    const session = patternSession(ctx, client, 'signals', ctx.fork());
    for (let i = int(r, 3, 10); i > 0; i--) {
      if (r() < 0.15) {
        ctx.pinger.excuse(true);
        process.kill(pid, 'SIGSTOP');
        await sleep(int(r, 50, 400));
        process.kill(pid, 'SIGCONT');
        await sleep(100);
        ctx.pinger.excuse(false);
      } else {
        const sig = pick(r, SURVIVABLE_SIGNALS);
        ctx.stats.signals[sig] = (ctx.stats.signals[sig] ?? 0) + 1;
        process.kill(pid, sig);
      }
      await sleep(int(r, 0, 100));
    }
    await session;
    if (!ctx.daemon.alive) return ctx.fail(`signals: the daemon died: ${JSON.stringify(await ctx.daemon.exited)}`);
    const listeners = await ctx.tcpListeners(pid);
    if (listeners.length > 0) ctx.fail(`signals: the daemon listens on TCP ${listeners.join(', ')} (an inspector opened by SIGUSR1?)`);
  } finally {
    await client.close();
  }
}

/** Descriptor exhaustion: the daemon's RLIMIT_NOFILE lowered to just above its use; connect and spawn at the edge. */
export async function descriptors(ctx) {
  const r = ctx.random;
  const pid = ctx.daemon.pid;
  const { stdout } = await run('prlimit', ['--pid', String(pid), '--nofile', '--raw', '--noheadings', '-o', 'SOFT,HARD']);
  const [soft, hard] = stdout.trim().split(/\s+/);
  const used = await fdCount(pid);
  const headroom = int(r, 1, 12);
  await run('prlimit', ['--pid', String(pid), `--nofile=${used + headroom}:${hard}`]);
  const conns = [];
  const procId = `fd-${ctx.seq()}`;
  try {
    for (let i = 0; i < headroom + 4; i++) {
      const c = new Raw(ctx.daemon.socket);
      conns.push(c);
      await c.connected;
    }
    await sleep(100);
    // A spawn at the edge must be answered (success or an error), never crash the daemon or leak.
    const live = conns.find((c) => !c.isClosed);
    if (live) {
      live.send({ jsonrpc: '2.0', id: 1, method: 'process.spawn', auth: ctx.token, params: { id: procId, ...patternEcho(ctx, 64) } });
      const reply = await live.reply(1, 15_000).catch(() => undefined);
      ctx.stats.edgeSpawns[reply?.error ? 'refused' : reply ? 'ok' : 'noReply'] += 1;
    }
  } finally {
    for (const c of conns) c.destroy();
    await run('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`]).catch(() => {});
  }
  const end = new Raw(ctx.daemon.socket);
  end.send({ jsonrpc: '2.0', id: 1, method: 'process.killAndWait', auth: ctx.token, params: { id: procId, timeoutMs: 1000 } });
  await end.reply(1, 20_000).catch(() => ctx.fail('descriptors: no reply to the killAndWait after the limit was restored'));
  end.destroy();
}

/**
 * The daemon SIGKILLed within a millisecond of a spawn's reply and started again: the keeper keeps the children, the
 * successor adopts them and the client reattaches; each child then reads its stdin and ends with its own exit code,
 * and its output must have arrived exactly once.
 */
export async function killRestart(ctx) {
  const r = ctx.random;
  const client = await ctx.connect({ socket: ctx.daemon.socket });
  try {
    const n = int(r, 1, 3);
    const handles = [];
    for (let i = 0; i < n; i++) {
      const exitCode = int(r, 0, 9);
      const h = client.spawn({ ...patternEcho(ctx, pick(r, [16, 64, 256]), exitCode), wantPid: true });
      const st = { h, exitCode, chunks: [], lost: undefined };
      h.on('stdout', (d) => st.chunks.push(d));
      h.on('lost', (e) => (st.lost = e));
      handles.push(st);
    }
    ctx.pinger.excuse(true);
    try {
      await new Promise((resolve) =>
        handles.at(-1).h.once('ready', () => {
          ctx.daemon.proc.kill('SIGKILL');
          resolve();
        }),
      );
      await ctx.daemon.exited;
      await sleep(int(r, 0, 300));
      await ctx.daemon.start({ how: 'start after SIGKILL (killRestart)' });
      ctx.stats.restarts++;
      ctx.unplannedEvent('kill');
    } finally {
      await sleep(300);
      ctx.pinger.excuse(false);
    }
    await Promise.all(
      handles.map(async (st, i) => {
        const data = Buffer.from(Array.from({ length: int(r, 0, 4096) }, (_, k) => (k * 13 + i) & 0xff));
        const wrote = st.h.end(data).catch((e) => ctx.fail(`killRestart#${i}: stdin failed: ${e.message}`));
        const exit = await Promise.race([st.h.exited.catch((e) => ({ lost: e })), sleep(60_000).then(() => undefined)]);
        await wrote;
        if (!exit) return ctx.fail(`killRestart#${i}: no exit within 60 s of its EOF after the daemon's SIGKILL`);
        if (exit.lost) return ctx.fail(`killRestart#${i}: lost across the daemon's SIGKILL: ${exit.lost.message}`);
        if (exit.exitCode !== st.exitCode) ctx.fail(`killRestart#${i}: exit ${exit.exitCode} ${exit.signal ?? ''}, expected ${st.exitCode}`);
        const out = Buffer.concat(st.chunks);
        ctx.retained(out.length);
        if (exit.gaps.length > 0) return ctx.fail(`killRestart#${i}: gap(s) ${JSON.stringify(exit.gaps)} across a daemon SIGKILL of under a second`);
        checkPatternEcho(ctx, `killRestart#${i}`, out, exit.gaps, createHash('sha256').update(data).digest('hex'), data.length);
      }),
    );
  } finally {
    await client.close().catch(() => {});
  }
}

export const ROUNDS = { cuts, rawCuts, stalledReader, slowReader, flood, signals, descriptors, killRestart, lifecycle };
