/**
 * Figures 12 to 14: terminals (issue 13), against the built daemon with real pseudo-terminals.
 *
 * 12. Output throughput: `cat` of a file on a terminal of the daemon, decoded by an NDJSON client to the exit frame,
 *     against the same `cat` read directly through node-pty's own spawn (@lydell/node-pty) in this process, runs
 *     interleaved. The PTY itself (about 4 KB per read) bounds both.
 * 13. Reattach: a terminal that printed 10,000 coloured lines (its scrollback) and waits; a fresh client attaches
 *     with `screen: true` and renders what it gets with the library's TerminalScreen, timed from the attach to the
 *     rendered screen. Baseline: rendering the same items without the daemon, same run. Also the wire alone (request
 *     to reply), and the same after the program wrote past the replay cap (a `screen` frame plus the retained frames).
 * 14. Memory per idle terminal: the daemon's RSS growth over 99 terminals running an interactive `sh` (after one,
 *     which loads the terminal modules), against 100 piped `sleep` children in the same daemon.
 */
import { createRequire } from 'node:module';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../lib/client.mjs';
import { cpuOf, ROOT, rssOf, startDaemon, tempDir } from '../lib/daemon.mjs';
import { median, MiB, sleep, withTimeout } from '../lib/stats.mjs';

const SIZE = { cols: 80, rows: 24 };

/** Lines of printable ASCII, `n` bytes: what `cat` prints in figure 12. */
function linesFile(dir, bytes) {
  const file = path.join(dir, 'lines.txt');
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789 the quick brown fox jumps over the lazy dog\n';
  writeFileSync(file, line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes));
  return file;
}

/** `cat file` read through node-pty's own spawn, in this process: bytes and seconds to its exit. */
function directRead(file) {
  const pty = createRequire(path.join(ROOT, 'package.json'))('@lydell/node-pty');
  return new Promise((resolve) => {
    let bytes = 0;
    const t0 = performance.now();
    const p = pty.spawn('/bin/cat', [file], { ...SIZE, env: process.env });
    p.onData((d) => (bytes += Buffer.byteLength(d, 'binary')));
    p.onExit(() => resolve({ bytes, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** `cat file` on a terminal of the daemon, to the exit frame: bytes decoded and seconds. */
async function daemonRead(daemon, file, id) {
  const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
  let bytes = 0;
  const t0 = performance.now();
  const done = new Promise((resolve) =>
    c.watch(id, (f) => {
      if (f.stream === 'exit') resolve();
      else if (f.data) bytes += f.data.length;
    }),
  );
  await c.call('process.spawn', { id, command: '/bin/cat', args: [file], pty: SIZE });
  await withTimeout(done, 120_000, 'terminal output');
  const seconds = (performance.now() - t0) / 1000;
  await c.close();
  return { bytes, seconds };
}

/** @param {{ runs: number, total: number, log: (s: string) => void }} o */
export async function measureTerminalThroughput(o) {
  const dir = tempDir('clb-tt-');
  const daemon = await startDaemon({ args: ['-no-login-path'] });
  try {
    const file = linesFile(dir, o.total);
    // Warm both paths (the daemon loads its terminal modules at the first terminal).
    await daemonRead(daemon, file, 'warm');
    await directRead(file);
    const rows = [];
    for (let r = 0; r < o.runs; r++) {
      const cpu0 = cpuOf(daemon.pids);
      const keeperCpu0 = cpuOf(daemon.keeperPid);
      const own0 = process.cpuUsage();
      const d = await daemonRead(daemon, file, `cat-${r}`);
      const own = process.cpuUsage(own0);
      const daemonCpu = cpuOf(daemon.pids) - cpu0;
      const keeperCpu = cpuOf(daemon.keeperPid) - keeperCpu0;
      const x0 = process.cpuUsage();
      const x = await directRead(file);
      const directCpu = process.cpuUsage(x0);
      // node-pty's spawn may lose the tail of a fast exit (issue 13): the rate counts what it read.
      const perMiB = (seconds, bytes) => (seconds * 1000) / (bytes / MiB);
      const row = {
        daemon: d.bytes / d.seconds,
        direct: x.bytes / x.seconds,
        daemonBytes: d.bytes,
        directBytes: x.bytes,
        daemonCpuMsPerMiB: perMiB(daemonCpu, d.bytes),
        keeperCpuMsPerMiB: perMiB(keeperCpu, d.bytes),
        clientCpuMsPerMiB: perMiB((own.user + own.system) / 1e6, d.bytes),
        directCpuMsPerMiB: perMiB((directCpu.user + directCpu.system) / 1e6, x.bytes),
      };
      row.ratio = row.daemon / row.direct;
      rows.push(row);
      o.log(
        `  run ${r + 1}: daemon ${(row.daemon / MiB).toFixed(1)} MiB/s, direct node-pty ${(row.direct / MiB).toFixed(1)} MiB/s (${row.ratio.toFixed(2)}×); CPU ms/MiB daemon + keeper ${row.daemonCpuMsPerMiB.toFixed(1)} (keeper ${row.keeperCpuMsPerMiB.toFixed(1)}), its client ${row.clientCpuMsPerMiB.toFixed(1)}, direct reader ${row.directCpuMsPerMiB.toFixed(1)}`,
      );
    }
    return {
      daemon: median(rows.map((x) => x.daemon)),
      direct: median(rows.map((x) => x.direct)),
      ratio: median(rows.map((x) => x.ratio)),
      daemonCpuMsPerMiB: median(rows.map((x) => x.daemonCpuMsPerMiB)),
      keeperCpuMsPerMiB: median(rows.map((x) => x.keeperCpuMsPerMiB)),
      clientCpuMsPerMiB: median(rows.map((x) => x.clientCpuMsPerMiB)),
      directCpuMsPerMiB: median(rows.map((x) => x.directCpuMsPerMiB)),
      rows,
    };
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A shell loop printing `lines` coloured lines of about 80 columns, then `tail` (a command) in its place. */
function scrollbackProgram(lines, tail) {
  const loop = `i=0; while [ $i -lt ${lines} ]; do printf '\\033[3%dmline %05d of the scrollback, about eighty columns of text to reattach to\\033[0m\\n' $((i%8)) $i; i=$((i+1)); done`;
  return { command: '/bin/sh', args: ['-c', `${loop}; ${tail}`] };
}

/** Waits until the process has printed everything (its output is quiet and it runs `sleep`). */
async function waitQuiet(daemon, id) {
  const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
  let last = -1;
  for (let i = 0; i < 1200; i++) {
    const entry = (await c.call('process.list', {})).processes.find((p) => p.id === id);
    if (entry && entry.lastSeq === last && entry.lastSeq > 0) break;
    last = entry?.lastSeq ?? -1;
    await sleep(250);
  }
  await c.close();
  return last;
}

/** One reattach through the library: attach with the screen, render; ms to the rendered screen, and the items. */
async function libraryReattach(lib, daemon, id) {
  const t0 = performance.now();
  const client = await lib.connect({ socket: daemon.socket, token: daemon.token });
  const proc = client.attach(id, { screen: true });
  const screen = new lib.TerminalScreen({ ...SIZE });
  const items = [];
  let target = Number.POSITIVE_INFINITY;
  let reached;
  const caughtUp = new Promise((resolve) => (reached = resolve));
  const lastSeq = () => items.findLast((i) => i.seq !== undefined)?.seq ?? 0;
  // Taken at once: the replay comes before the reply.
  const it = proc.output()[Symbol.asyncIterator]();
  void (async () => {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      items.push(r.value);
      screen.apply(r.value);
      if (lastSeq() >= target) reached();
    }
  })().catch(() => {});
  await proc.ready;
  target = proc.lastSeq;
  if (lastSeq() >= target) reached();
  await withTimeout(caughtUp, 60_000, 'the replay');
  await screen.flushed();
  const ms = performance.now() - t0;
  screen.dispose();
  proc.detach();
  await client.close();
  return { ms, items };
}

/** Rendering the same items on a fresh TerminalScreen, without the daemon. */
async function renderOnly(lib, items) {
  const t0 = performance.now();
  await lib.renderScreen(items, { ...SIZE });
  return performance.now() - t0;
}

/** process.reattach {screen: true} on a fresh NDJSON connection: ms from the request to the reply (frames decoded). */
async function wireReattach(daemon, id) {
  const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
  let frames = 0;
  let screens = 0;
  c.watch(id, (f) => {
    frames++;
    if (f.stream === 'screen') screens++;
  });
  const t0 = performance.now();
  await c.call('process.reattach', { id, screen: true });
  const ms = performance.now() - t0;
  await c.close();
  return { ms, frames, screens };
}

/**
 * @param {{ runs: number, lines: number, pastCap: number, capBytes?: number, log: (s: string) => void }} o
 *   capBytes: a smaller replay cap (smoke runs: CLAUSTRUM_TEST_REPLAY_CAP_BYTES), so little output evicts.
 */
export async function measureTerminalReattach(o) {
  const lib = await import(path.join(ROOT, 'dist/src/client/index.js'));
  const env = o.capBytes ? { CLAUSTRUM_TEST_REPLAY_CAP_BYTES: String(o.capBytes) } : {};
  const daemon = await startDaemon({ args: ['-no-login-path'], env });
  try {
    const spawner = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    await spawner.call('process.spawn', { id: 'scroll', ...scrollbackProgram(o.lines, 'exec sleep 3600'), pty: SIZE });
    // Past the cap: the same lines, then enough more that the buffer evicted its start.
    const flood = `head -c ${o.pastCap} /dev/zero | tr '\\0' 'x' | fold -w 79; exec sleep 3600`;
    await spawner.call('process.spawn', { id: 'evicted', ...scrollbackProgram(o.lines, flood), pty: SIZE });
    await spawner.close();
    const out = {};
    for (const id of ['scroll', 'evicted']) {
      const lastSeq = await waitQuiet(daemon, id);
      await libraryReattach(lib, daemon, id); // warm
      const rows = [];
      for (let r = 0; r < o.runs; r++) {
        const lib1 = await libraryReattach(lib, daemon, id);
        const base = await renderOnly(lib, lib1.items);
        const wire = await wireReattach(daemon, id);
        const bytes = lib1.items.reduce((n, i) => n + (i.data?.length ?? 0), 0);
        rows.push({ ms: lib1.ms, renderMs: base, wireMs: wire.ms, ratio: lib1.ms / base, items: lib1.items.length, bytes, screens: wire.screens });
        o.log(
          `  ${id} run ${r + 1}: attach to rendered ${lib1.ms.toFixed(0)} ms, render alone ${base.toFixed(0)} ms, wire ${wire.ms.toFixed(0)} ms; ${lib1.items.length} items, ${(bytes / MiB).toFixed(2)} MiB, screen frames ${wire.screens}`,
        );
      }
      out[id] = {
        lastSeq,
        ms: median(rows.map((x) => x.ms)),
        renderMs: median(rows.map((x) => x.renderMs)),
        wireMs: median(rows.map((x) => x.wireMs)),
        ratio: median(rows.map((x) => x.ratio)),
        bytes: rows[0].bytes,
        screens: rows[0].screens,
        rows,
      };
    }
    return out;
  } finally {
    await daemon.stop();
  }
}

/** @param {{ runs: number, terminals: number, log: (s: string) => void }} o */
export async function measureTerminalMemory(o) {
  const rows = [];
  for (let r = 0; r < o.runs; r++) {
    const daemon = await startDaemon({ args: ['-no-login-path'] });
    try {
      const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
      const settle = async () => {
        await sleep(500);
        await c.call('server.ping');
      };
      // One terminal first: it loads the terminal modules, a cost paid once per daemon.
      await c.call('process.spawn', { id: 'tty-0', command: '/bin/sh', args: ['-i'], pty: SIZE });
      await settle();
      const rss0 = rssOf(daemon.pids);
      for (let i = 1; i < o.terminals; i++) await c.call('process.spawn', { id: `tty-${i}`, command: '/bin/sh', args: ['-i'], pty: SIZE });
      await settle();
      const rss1 = rssOf(daemon.pids);
      for (let i = 0; i < o.terminals; i++) await c.call('process.spawn', { id: `pipe-${i}`, command: 'sleep', args: ['3600'] });
      await settle();
      const rss2 = rssOf(daemon.pids);
      const live = (await c.call('process.list', {})).processes.filter((p) => p.running).length;
      if (live !== 2 * o.terminals) throw new Error(`${live} processes running, expected ${2 * o.terminals}`);
      await c.close();
      const row = { perTerminal: (rss1 - rss0) / (o.terminals - 1), perPiped: (rss2 - rss1) / o.terminals, rss0, rss1, rss2 };
      row.ratio = row.perTerminal / row.perPiped;
      rows.push(row);
      o.log(
        `  run ${r + 1}: ${(row.perTerminal / 1024).toFixed(0)} KiB per terminal, ${(row.perPiped / 1024).toFixed(0)} KiB per piped child; RSS ${(rss0 / MiB).toFixed(1)} → ${(rss1 / MiB).toFixed(1)} → ${(rss2 / MiB).toFixed(1)} MiB`,
      );
    } finally {
      await daemon.stop();
    }
  }
  return {
    perTerminal: median(rows.map((x) => x.perTerminal)),
    perPiped: median(rows.map((x) => x.perPiped)),
    ratio: median(rows.map((x) => x.ratio)),
    rows,
  };
}
