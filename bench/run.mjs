#!/usr/bin/env node
/**
 * `npm run bench`: the benchmark suite of issue 6. Drives the built daemon (dist/cmd/claustrum.js -serve -foreground
 * on a temporary socket) as a separate process, with real children and real sockets, and writes bench/RESULTS.md and
 * bench/results.json.
 *
 *   node bench/run.mjs                 full sizes (under 5 minutes on a 2-core machine)
 *   BENCH_SMOKE=1 node bench/run.mjs   tiny sizes, a check that the suite works (the test suite runs this)
 *   BENCH_OUT=<dir>                    where to write RESULTS.md and results.json (default: bench/)
 *   BENCH_ONLY=1,3                     only these figures (the table then lists only them)
 *   node bench/run.mjs --render        rewrite RESULTS.md from results.json and METHOD.md, measuring nothing
 *
 * Each figure runs in a fresh Node process (this file with --figure), so one figure's heap never weighs on the next
 * one's client, and a figure that fails is reported as failed without stopping the others.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureBudget } from './figures/budget.mjs';
import { measureFilesRead } from './figures/filesread.mjs';
import { measureFloodCpu, measureFloodPing } from './figures/flat.mjs';
import { measureIsolation } from './figures/isolation.mjs';
import { measureManyChildren } from './figures/many.mjs';
import { measureMemoryBound } from './figures/memory.mjs';
import { measureObservers } from './figures/observers.mjs';
import { measureReattach } from './figures/replay.mjs';
import { measureRetainedMemory, measureRetainedSpawn, REPLAY_BUDGET } from './figures/retained.mjs';
import { measureFirstSpawn, measureSpawnLatency, measureSpawnThroughput } from './figures/spawn.mjs';
import { DIRECT_CHUNK_BYTES, measureStdin, STDIN_CHUNK_BYTES, windowFor } from './figures/stdin.mjs';
import { measureTerminalMemory, measureTerminalReattach, measureTerminalThroughput } from './figures/terminal.mjs';
import { measureThroughput } from './figures/throughput.mjs';
import { ROOT } from './lib/daemon.mjs';
import { peersSection } from './peers/render.mjs';
import { auditSection } from './lib/audit-render.mjs';
import { MiB } from './lib/stats.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SMOKE = process.env.BENCH_SMOKE === '1';

/** Sizes per mode. Full sizes are the issue's; smoke sizes only prove the machinery. */
const SIZES = SMOKE
  ? {
      throughput: { runs: 3, total: 2 * MiB },
      spawnLatency: { runs: 3, spawns: 10 },
      firstSpawn: { runs: 1 },
      spawnThroughput: { runs: 3, spawns: 40, inFlight: 32 },
      reattach: { runs: 3, total: 2 * MiB },
      many: { runs: 3, children: 20, pings: 50 },
      isolation: { runs: 3, pings: 50, kills: 3 },
      memory: { runs: 3, total: 32 * MiB },
      stdin: { runs: 3, total: 2 * MiB },
      observers: { runs: 3, total: 2 * MiB },
      filesRead: { runs: 1, size: 4 * MiB, readers: 4 },
      floodCpu: { runs: 3, total: 8 * MiB, children: 4 },
      floodPing: { runs: 3, children: 4, pings: 50 },
      retainedSpawn: { runs: 3, spawns: 10, processes: 20, each: MiB },
      retainedMemory: { runs: 3, processes: 20 },
      budget: { runs: 3, children: 8, each: 2 * MiB, budget: '8MiB' },
      terminalThroughput: { runs: 3, total: 1 * MiB },
      terminalReattach: { runs: 3, lines: 500, pastCap: 1 * MiB, capBytes: 256 * 1024 },
      terminalMemory: { runs: 3, terminals: 10 },
    }
  : {
      throughput: { runs: 5, total: 256 * MiB },
      spawnLatency: { runs: 3, spawns: 200 },
      firstSpawn: { runs: 3 },
      spawnThroughput: { runs: 3, spawns: 500, inFlight: 32 },
      reattach: { runs: 5, total: 32 * MiB },
      many: { runs: 3, children: 1000, pings: 1000 },
      isolation: { runs: 3, pings: 500, kills: 20 },
      memory: { runs: 3, total: 2 * 1024 * MiB },
      stdin: { runs: 3, total: 64 * MiB },
      observers: { runs: 5, total: 128 * MiB },
      filesRead: { runs: 3, size: 64 * MiB, readers: 4 },
      floodCpu: { runs: 3, total: 1024 * MiB, children: 64 },
      floodPing: { runs: 3, children: 64, pings: 500 },
      retainedSpawn: { runs: 3, spawns: 200, processes: 1000, each: MiB },
      retainedMemory: { runs: 3, processes: 1000 },
      budget: { runs: 3, children: 256, each: 16 * MiB, budget: '1GiB' },
      terminalThroughput: { runs: 5, total: 32 * MiB },
      terminalReattach: { runs: 3, lines: 10_000, pastCap: 24 * MiB },
      terminalMemory: { runs: 3, terminals: 100 },
    };

const WIRES = ['ndjson', 'msgpack', 'ws-binary', 'ws-text'];
const WIRE_NAMES = { ndjson: 'NDJSON', msgpack: 'MessagePack (Unix socket)', 'ws-binary': 'WebSocket binary', 'ws-text': 'WebSocket text' };

const fmt = {
  kib: (v) => `${(v / 1024).toFixed(1)} KiB`,
  mibps: (v) => `${(v / MiB).toFixed(0)} MiB/s`,
  ms: (v) => (v >= 100 ? `${v.toFixed(0)} ms` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`),
  mib: (v) => `${(v / MiB).toFixed(1)} MiB`,
  x: (v) => `${v.toFixed(2)}×`,
};

/**
 * The figures: how to measure each (in a child process), and how its result becomes table rows. A row is
 * { id, figure, target, measured, baseline, ratio, met, note }.
 */
const FIGURES = {
  1: {
    title: 'stream throughput',
    measure: (log) => measureThroughput({ ...SIZES.throughput, wires: WIRES, log }),
    rows: (r) => {
      const size = (SIZES.throughput.total / MiB).toFixed(0);
      // NDJSON and MessagePack: issue 15's targets; WebSocket binary: issue 6's.
      const targets = { ndjson: 0.5, msgpack: 0.8, 'ws-binary': 0.5 };
      return WIRES.map((w) => ({
        id: w === 'ndjson' ? '1' : '2',
        figure: `${size} MiB of random bytes from a child's stdout, decoded by the client: ${WIRE_NAMES[w]}`,
        target: targets[w] !== undefined ? `≥ ${targets[w]}× raw relay` : '— (measured)',
        measured: fmt.mibps(r[w].median),
        baseline: `raw relay ${fmt.mibps(r[w].relayMedian)}`,
        ratio: fmt.x(r[w].ratio),
        met: targets[w] !== undefined ? r[w].ratio >= targets[w] : null,
        note: `CPU per MiB: daemon ${r[w].daemonCpuMsPerMiB.toFixed(2)} ms, its client ${r[w].clientCpuMsPerMiB.toFixed(2)} ms; the relay process ${r.relayCpuMsPerMiB.toFixed(2)} ms`,
      }));
    },
  },
  3: {
    title: 'spawn latency',
    measure: async (log) => ({
      steady: await measureSpawnLatency({ ...SIZES.spawnLatency, log }),
      first: await measureFirstSpawn({ ...SIZES.firstSpawn, log }),
    }),
    rows: (r) => [
      {
        id: '3',
        figure: `spawn → exit frame of \`true\`, p50 (${SIZES.spawnLatency.spawns} per round)`,
        target: "≤ 1.3× spawn('true') p50",
        measured: fmt.ms(r.steady.p50),
        baseline: `spawn('true') → close ${fmt.ms(r.steady.baseP50)}`,
        ratio: fmt.x(r.steady.ratio),
        met: r.steady.ratio <= 1.3,
        note: `CPU per spawn: the daemon ${r.steady.daemonCpuMs.toFixed(2)} ms (all its threads), the client's own spawn('true') ${r.steady.clientCpuMs.toFixed(2)} ms`,
      },
      {
        id: '3',
        figure: 'spawn → exit frame of `true`, p99',
        target: '— (measured)',
        measured: fmt.ms(r.steady.p99),
        baseline: `spawn('true') → close ${fmt.ms(r.steady.baseP99)}`,
        ratio: fmt.x(r.steady.p99 / r.steady.baseP99),
        met: null,
      },
      {
        id: '3',
        figure: "a fresh daemon's first spawn (waits for the login-shell PATH)",
        target: '— (measured)',
        measured: fmt.ms(r.first.loginPath),
        baseline: `with -no-login-path ${fmt.ms(r.first.noLoginPath)}`,
        ratio: '',
        met: null,
      },
    ],
  },
  4: {
    title: 'spawn throughput',
    measure: (log) => measureSpawnThroughput({ ...SIZES.spawnThroughput, log }),
    rows: (r) => [
      {
        id: '4',
        figure: `spawns of \`true\` completed (exit frame) per second, ${SIZES.spawnThroughput.inFlight} in flight`,
        target: '≥ 200 spawns/s',
        measured: `${r.rate.toFixed(0)} spawns/s`,
        baseline: '',
        ratio: '',
        met: r.rate >= 200,
        note: `daemon CPU ${r.daemonCpuMs.toFixed(2)} ms per spawn`,
      },
    ],
  },
  5: {
    title: 'reattach replay',
    measure: (log) => measureReattach({ ...SIZES.reattach, wires: ['ndjson', 'msgpack'], log }),
    rows: (r) =>
      ['ndjson', 'msgpack'].map((w) => ({
        id: '5',
        figure: `reattach {fromSeq:0} of a full replay buffer (${r[w].frames} frames, ${fmt.mib(r[w].bytes)} raw) to its last frame, ${WIRE_NAMES[w]}`,
        target: w === 'ndjson' ? '≤ 150 ms' : '— (measured)',
        measured: fmt.ms(r[w].ms),
        baseline: '',
        ratio: '',
        met: w === 'ndjson' ? r[w].ms <= 150 : null,
      })),
  },
  6: {
    title: '1,000 live children',
    measure: (log) => measureManyChildren({ ...SIZES.many, log }),
    rows: (r) => [
      {
        id: '6',
        figure: `daemon + keeper memory per idle child: (RSS with ${SIZES.many.children} live \`sleep\` children − idle RSS) / ${SIZES.many.children}`,
        target: '≤ 20 KiB',
        measured: fmt.kib((r.rss - r.idleRss) / SIZES.many.children),
        baseline: `RSS ${fmt.mib(r.rss)} with them, idle daemon + keeper ${fmt.mib(r.idleRss)}`,
        ratio: '',
        met: (r.rss - r.idleRss) / SIZES.many.children <= 20 * 1024,
        ...(r.keeperRss !== undefined && {
          note: `of which the keeper ${fmt.kib((r.keeperRss - r.idleKeeperRss) / SIZES.many.children)} per child (RSS ${fmt.mib(r.keeperRss)}, idle ${fmt.mib(r.idleKeeperRss)}), the daemon ${fmt.kib((r.rss - r.keeperRss - (r.idleRss - r.idleKeeperRss)) / SIZES.many.children)}`,
        }),
      },
      {
        id: '6',
        figure: `server.ping p99 with ${SIZES.many.children} live children (${SIZES.many.pings} pings per round)`,
        target: '≤ 5 ms',
        measured: fmt.ms(r.p99),
        baseline: `p50 ${fmt.ms(r.p50)}`,
        ratio: '',
        met: r.p99 <= 5,
      },
    ],
  },
  7: {
    title: 'isolation under a flood',
    measure: (log) => measureIsolation({ ...SIZES.isolation, log }),
    rows: (r) => [
      {
        id: '7',
        figure: `server.ping p99 on a second connection while a child floods its client (${SIZES.isolation.pings} pings per round)`,
        target: '≤ 10 ms',
        measured: fmt.ms(r.pingP99),
        baseline: `p50 ${fmt.ms(r.pingP50)}`,
        ratio: '',
        met: r.pingP99 <= 10,
        note: `the flood meanwhile: ${r.floodMiBps.toFixed(0)} MiB/s decoded by its client`,
      },
      {
        id: '7',
        figure: `process.kill → exit frame of a second child during the flood (p50 of ${SIZES.isolation.kills} per round)`,
        target: '≤ 50 ms',
        measured: fmt.ms(r.killMs),
        baseline: `slowest ${fmt.ms(r.killMax)}`,
        ratio: '',
        met: r.killMs <= 50,
      },
    ],
  },
  8: {
    title: 'memory bound',
    measure: (log) => measureMemoryBound({ ...SIZES.memory, log }),
    rows: (r) => [
      {
        id: '8',
        figure: `daemon peak RSS growth while a child writes ${fmt.mib(SIZES.memory.total)} with no client attached`,
        target: '≤ 56 MiB (16 MiB cap + 40)',
        measured: fmt.mib(r.growth),
        baseline: `RSS before ${fmt.mib(r.rows[0].before)}`,
        ratio: '',
        met: r.growth <= 56 * MiB,
      },
    ],
  },
  9: {
    title: 'stdin throughput',
    measure: (log) => measureStdin({ ...SIZES.stdin, ceiling: true, wires: ['ndjson', 'msgpack'], log }),
    rows: (r) => {
      const what = `${fmt.mib(SIZES.stdin.total)} into \`cat >/dev/null\` in ${STDIN_CHUNK_BYTES / 1024} KiB requests (the client library's size and codec, ${windowFor(STDIN_CHUNK_BYTES)} in flight)`;
      const direct = `direct write (${DIRECT_CHUNK_BYTES / 1024} KiB) ${fmt.mibps(r.direct.median)}`;
      // NDJSON: 4× round one's 0.03× (issue 15); MessagePack: issue 15's.
      const targets = { ndjson: 0.12, msgpack: 0.5 };
      return [
        ...['ndjson', 'msgpack'].map((w) => ({
          id: '9',
          figure: `${what}, process.stdin over ${WIRE_NAMES[w]}`,
          target: `≥ ${targets[w]}× direct`,
          measured: fmt.mibps(r[w].median),
          baseline: direct,
          ratio: fmt.x(r[w].ratio),
          met: r[w].ratio >= targets[w],
          note: `CPU per MiB: client ${r[w].clientCpuMsPerMiB.toFixed(2)} ms, daemon ${r[w].daemonCpuMsPerMiB.toFixed(2)} ms; the direct writer ${r.direct.clientCpuMsPerMiB.toFixed(2)} ms${w === 'ndjson' ? `; ${fmt.x(r.ndjson.median / r.ceiling.median)} Node's base64-in-JSON ceiling (the next row)` : ''}`,
        })),
        {
          id: '9',
          figure: `${what}: Node's ceiling for base64 in JSON, a relay with no RPC (JSON.stringify → socket → JSON.parse, Buffer.from base64 → the pipe)`,
          target: '— (measured)',
          measured: fmt.mibps(r.ceiling.median),
          baseline: direct,
          ratio: fmt.x(r.ceiling.ratio),
          met: null,
          note: `CPU per MiB: its client ${r.ceiling.clientCpuMsPerMiB.toFixed(2)} ms, the relay ${r.ceiling.relayCpuMsPerMiB.toFixed(2)} ms`,
        },
      ];
    },
  },
  10: {
    title: 'observers',
    measure: (log) => measureObservers({ ...SIZES.observers, log }),
    rows: (r) => [
      {
        id: '10',
        figure: `${fmt.mib(SIZES.observers.total)} to the owner (MessagePack) while one observer never reads`,
        target: '≥ 0.9× no observer',
        measured: fmt.mibps(r.paused),
        baseline: `no observer ${fmt.mibps(r.none)}`,
        ratio: fmt.x(r.pausedRatio),
        met: r.pausedRatio >= 0.9,
      },
      {
        id: '10',
        figure: `${fmt.mib(SIZES.observers.total)} to the owner while three observers read everything`,
        target: '— (measured)',
        measured: fmt.mibps(r.three),
        baseline: `no observer ${fmt.mibps(r.none)}`,
        ratio: fmt.x(r.threeRatio),
        met: null,
        note: 'each observer costs a frame encoding and a socket write per frame; on 2 cores they compete with the owner for CPU',
      },
    ],
  },
  11: {
    title: 'files.read isolation',
    measure: (log) => measureFilesRead({ ...SIZES.filesRead, log }),
    rows: (r) => [
      {
        id: '11',
        figure: `server.ping p99 on another connection during ${SIZES.filesRead.readers} concurrent files.read of ${fmt.mib(SIZES.filesRead.size)} each`,
        target: '≤ 50 ms',
        measured: fmt.ms(r.pingP99),
        baseline: `worst ${fmt.ms(r.pingMax)}`,
        ratio: '',
        met: r.pingP99 <= 50,
        note: `daemon peak RSS +${r.peakMiB.toFixed(0)} MiB; the reads took ${r.seconds.toFixed(2)} s`,
      },
    ],
  },
  15: {
    title: 'CPU per MiB, many floods',
    measure: (log) => measureFloodCpu({ ...SIZES.floodCpu, log }),
    rows: (r) => [
      {
        id: '15',
        figure: `daemon CPU per MiB delivered (MessagePack, one connection): ${fmt.mib(SIZES.floodCpu.total)} of random bytes from ${SIZES.floodCpu.children} children at once`,
        target: '≤ 2× one child',
        measured: `${r.manyCpuMsPerMiB.toFixed(2)} ms/MiB`,
        baseline: `one child writing it all ${r.oneCpuMsPerMiB.toFixed(2)} ms/MiB`,
        ratio: fmt.x(r.ratio),
        met: r.ratio <= 2,
        note: `delivered at ${r.manyMiBps.toFixed(0)} MiB/s (one child: ${r.oneMiBps.toFixed(0)} MiB/s); daemon peak RSS ${fmt.mib(r.manyPeakRss)} (one child: ${fmt.mib(r.onePeakRss)})`,
      },
    ],
  },
  16: {
    title: 'ping beside many floods',
    measure: (log) => measureFloodPing({ ...SIZES.floodPing, log }),
    rows: (r) =>
      [
        ['oneConnection', 'on one connection'],
        ['ownConnections', `on ${SIZES.floodPing.children} connections`],
      ].map(([k, how]) => ({
        id: '16',
        figure: `server.ping p99 on another connection while ${SIZES.floodPing.children} children flood ${how} (${SIZES.floodPing.pings} pings per round)`,
        target: '≤ 20 ms',
        measured: fmt.ms(r[k].p99),
        baseline: `p50 ${fmt.ms(r[k].p50)}`,
        ratio: '',
        met: r[k].p99 <= 20,
        note: `the floods meanwhile: ${r[k].floodMiBps.toFixed(0)} MiB/s decoded by their client; daemon RSS ${fmt.mib(r[k].rss)}`,
      })),
  },
  17: {
    title: 'spawn with retained output',
    measure: (log) => measureRetainedSpawn({ ...SIZES.retainedSpawn, log }),
    rows: (r) => [
      {
        id: '17',
        figure: `spawn → exit frame of \`true\`, p50, of a daemon holding ${SIZES.retainedSpawn.processes} exited processes with ${fmt.mib(SIZES.retainedSpawn.each)} of output each (${SIZES.retainedSpawn.spawns} per round)`,
        target: '≤ 1.2× the same daemon fresh',
        measured: fmt.ms(r.loadedP50),
        baseline: `fresh daemon ${fmt.ms(r.freshP50)}`,
        ratio: fmt.x(r.ratio),
        met: r.ratio <= 1.2,
        note: `both with -replay-budget ${REPLAY_BUDGET}; the loaded daemon's RSS ${fmt.mib(r.loadedRss)} holding ${fmt.mib(r.replayBytes)} of replay (NDJSON-counted), the fresh one's ${fmt.mib(r.freshRss)}; a direct spawn('true') from the client process in the same rounds ${fmt.ms(r.directP50)}`,
      },
    ],
  },
  18: {
    title: 'retained process memory',
    measure: (log) => measureRetainedMemory({ ...SIZES.retainedMemory, log }),
    rows: (r) => [
      {
        id: '18',
        figure: `daemon + keeper memory per retained exited process with no output (RSS growth over ${SIZES.retainedMemory.processes} spawns of \`true\`, per round)`,
        target: '≤ 10 KiB',
        measured: fmt.kib(r.perProcess),
        baseline: `RSS ${fmt.mib(r.rss)} holding ${r.retained}`,
        ratio: '',
        met: r.perProcess <= 10 * 1024,
        ...(r.keeperPerProcess !== undefined && {
          note: `of which the keeper ${fmt.kib(r.keeperPerProcess)}, the daemon ${fmt.kib(r.perProcess - r.keeperPerProcess)}`,
        }),
      },
    ],
  },
  19: {
    title: 'replay budget, many streams',
    measure: (log) => measureBudget({ ...SIZES.budget, log }),
    rows: (r) => {
      const what = `${SIZES.budget.children} children writing ${fmt.mib(SIZES.budget.each)} each with no client, -replay-budget ${SIZES.budget.budget}`;
      return [
        {
          id: '19',
          figure: `replay bytes the budget counts (server.info replayBytes, peak of samples every 20 ms): ${what}`,
          target: `≤ ${SIZES.budget.budget}`,
          measured: fmt.mib(r.peakReplay),
          baseline: '',
          ratio: fmt.x(r.peakReplay / r.budget),
          met: r.peakReplay <= r.budget,
        },
        {
          id: '19',
          figure: `daemon + keeper peak RSS growth: ${what}`,
          // Figure 8's allowance: 40 MiB for pipe reads already dead but not yet collected.
          target: `≤ ${SIZES.budget.budget} + 40 MiB`,
          measured: fmt.mib(r.growth),
          baseline: `RSS before ${fmt.mib(r.before)}`,
          ratio: fmt.x(r.growth / r.budget),
          met: r.growth <= r.budget + 40 * MiB,
          note: `${r.keeperGrowth !== undefined ? `of which the keeper's peak growth ${fmt.mib(r.keeperGrowth)}; ` : ''}RSS once every child had exited ${fmt.mib(r.endRss)}`,
        },
      ];
    },
  },
};

FIGURES[12] = {
  title: 'terminal output throughput',
  measure: (log) => measureTerminalThroughput({ ...SIZES.terminalThroughput, log }),
  rows: (r) => [
    {
      id: '12',
      figure: `${fmt.mib(SIZES.terminalThroughput.total)} of lines from \`cat\` on a terminal of the daemon, decoded by an NDJSON client`,
      target: '≥ 0.5× direct node-pty',
      measured: fmt.mibps(r.daemon),
      baseline: `node-pty's spawn, read directly ${fmt.mibps(r.direct)}`,
      ratio: fmt.x(r.ratio),
      met: r.ratio >= 0.5,
      note: `CPU per MiB: the daemon and its keeper ${r.daemonCpuMsPerMiB.toFixed(1)} ms (the keeper ${r.keeperCpuMsPerMiB?.toFixed(1)} ms), its client ${r.clientCpuMsPerMiB.toFixed(1)} ms, the direct reader ${r.directCpuMsPerMiB.toFixed(1)} ms. a wakeup of the keeper's terminal reader takes up to 32 KiB (PTY_READ_BURST_BYTES), one frame, where the kernel gives about 4 KB per read`,
    },
  ],
};

FIGURES[13] = {
  title: 'terminal reattach',
  measure: (log) => measureTerminalReattach({ ...SIZES.terminalReattach, log }),
  rows: (r) => {
    const lines = SIZES.terminalReattach.lines.toLocaleString('en-US');
    return [
      {
        id: '13',
        figure: `attach (screen: true) to a terminal with ${lines} lines of scrollback (${fmt.mib(r.scroll.bytes)} replayed), to the screen rendered by TerminalScreen`,
        target: '≤ 500 ms',
        measured: fmt.ms(r.scroll.ms),
        baseline: `rendering the same items alone ${fmt.ms(r.scroll.renderMs)}`,
        ratio: fmt.x(r.scroll.ratio),
        met: r.scroll.ms <= 500,
        note: `the wire alone (request to reply, frames decoded): ${fmt.ms(r.scroll.wireMs)}`,
      },
      {
        id: '13',
        figure: `the same after ${fmt.mib(SIZES.terminalReattach.pastCap)} more output (the replay buffer evicted its start: a screen frame and the retained frames)`,
        target: '— (measured)',
        measured: fmt.ms(r.evicted.ms),
        baseline: `rendering the same items alone ${fmt.ms(r.evicted.renderMs)}`,
        ratio: fmt.x(r.evicted.ratio),
        met: null,
        note: `${fmt.mib(r.evicted.bytes)} replayed, ${r.evicted.screens} screen frame; the wire alone ${fmt.ms(r.evicted.wireMs)}`,
      },
    ];
  },
};

FIGURES[14] = {
  title: 'memory per idle terminal',
  measure: (log) => measureTerminalMemory({ ...SIZES.terminalMemory, log }),
  rows: (r) => [
    {
      id: '14',
      figure: `daemon RSS per idle terminal (an interactive \`sh\`), ${SIZES.terminalMemory.terminals} terminals`,
      target: '≤ 150 KiB',
      measured: `${(r.perTerminal / 1024).toFixed(0)} KiB`,
      baseline: `per piped \`sleep\` child ${(r.perPiped / 1024).toFixed(0)} KiB`,
      ratio: fmt.x(r.ratio),
      met: r.perTerminal <= 150 * 1024,
      note: 'after one terminal, which loads the terminal modules once; the screen model is made only when the replay buffer first evicts, so an idle terminal has none',
    },
  ],
};

// ---- child mode: measure one figure, print its result as the last stdout line ----

if (process.argv[2] === '--figure') {
  const key = process.argv[3];
  const log = (s) => process.stderr.write(`${s}\n`);
  const result = await FIGURES[key].measure(log);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

// ---- render mode: the same results, the current METHOD.md ----

if (process.argv[2] === '--render') {
  const outDir = process.env.BENCH_OUT ?? HERE;
  const saved = JSON.parse(readFileSync(path.join(outDir, 'results.json'), 'utf8'));
  writeFileSync(path.join(outDir, 'RESULTS.md'), renderMarkdown(saved, outDir));
  process.exit(0);
}

// ---- parent mode ----

function runFigure(key) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--figure', key], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(d);
    });
    child.once('close', (code) => {
      const last = out.trim().split('\n').pop();
      if (code === 0 && last) resolve({ ok: true, result: JSON.parse(last) });
      else resolve({ ok: false, error: `exit ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}` });
    });
  });
}

function machine() {
  const cpus = os.cpus();
  const pressure = (() => {
    try {
      return readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0];
    } catch {
      return 'unavailable';
    }
  })();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB`,
    loadavg: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    cpuPressure: pressure,
  };
}

function gitDescribe() {
  try {
    const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const changed = execFileSync(
      'git',
      ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no', '--', 'src', 'cmd', 'bench/lib', 'bench/figures', 'bench/run.mjs'],
      { encoding: 'utf8' },
    ).trim();
    return changed ? `${head} with uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => s.trim()) : undefined;
const keys = Object.keys(FIGURES).filter((k) => !only || only.includes(k) || (k === '1' && only.includes('2')));
const started = Date.now();
const before = machine();
const figures = {};
const rows = [];
for (const key of keys) {
  process.stderr.write(`figure ${key}: ${FIGURES[key].title}\n`);
  const t0 = Date.now();
  const r = await runFigure(key);
  const seconds = (Date.now() - t0) / 1000;
  figures[key] = { title: FIGURES[key].title, seconds, ...r };
  if (r.ok) rows.push(...FIGURES[key].rows(r.result));
  else rows.push({ id: key, figure: FIGURES[key].title, target: '', measured: 'failed', baseline: '', ratio: '', met: false, note: r.error });
}
const after = machine();
const results = {
  mode: SMOKE ? 'smoke' : 'full',
  date: new Date().toISOString(),
  commit: gitDescribe(),
  durationSeconds: (Date.now() - started) / 1000,
  machine: { ...before, loadavgAfter: after.loadavg, cpuPressureAfter: after.cpuPressure },
  sizes: SIZES,
  rows,
  figures,
};

const outDir = process.env.BENCH_OUT ?? HERE;
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(path.join(outDir, 'RESULTS.md'), renderMarkdown(results, outDir));
process.stderr.write(`wrote ${path.join(outDir, 'RESULTS.md')} and results.json in ${results.durationSeconds.toFixed(0)} s\n`);

/** `dir` holds results.json; a peers.json beside it (npm run bench:peers) adds the peer table. */
function renderMarkdown(r, dir) {
  const m = r.machine;
  const met = (x) => (x === true ? 'yes' : x === false ? '**no**' : '—');
  const lines = [];
  lines.push('# Benchmark results');
  lines.push('');
  lines.push(
    `Generated by \`npm run bench\` (${r.mode} sizes) on ${r.date.slice(0, 10)} at commit \`${r.commit}\`, in ${r.durationSeconds.toFixed(0)} s.`,
  );
  lines.push('');
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}; ${m.os}; Node ${m.node}.`);
  lines.push(
    `Load while it ran: load average ${m.loadavg} at the start, ${m.loadavgAfter} at the end; CPU pressure \`${m.cpuPressure}\` → \`${m.cpuPressureAfter}\`.`,
  );
  lines.push('The machine is shared: every figure is the median of at least 3 runs, and every ratio compares against a');
  lines.push('baseline measured in the same run, interleaved run by run.');
  lines.push('');
  lines.push('| # | figure | target | measured (median) | baseline, same run | ratio | met |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const row of r.rows) {
    lines.push(`| ${row.id} | ${row.figure} | ${row.target} | ${row.measured} | ${row.baseline} | ${row.ratio} | ${met(row.met)} |`);
  }
  const notes = r.rows.filter((x) => x.note);
  if (notes.length) {
    lines.push('');
    lines.push('Measured alongside:');
    lines.push('');
    for (const x of notes) lines.push(`- ${x.figure}: ${x.note}.`);
  }
  lines.push('');
  lines.push(...peersSection(dir));
  lines.push(...auditSection(dir));
  lines.push(readFileSync(path.join(HERE, 'METHOD.md'), 'utf8').trim());
  lines.push('');
  lines.push('## Samples');
  lines.push('');
  lines.push('Every run of every figure, as measured (results.json has them all):');
  lines.push('');
  for (const [key, f] of Object.entries(r.figures)) {
    lines.push(`- figure ${key} (${f.title}, ${f.seconds.toFixed(0)} s): ${f.ok ? summarize(key, f.result) : `failed: ${f.error}`}`);
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}

function summarize(key, res) {
  const list = (xs, f) => xs.map(f).join(', ');
  switch (key) {
    case '1':
      return Object.entries(res)
        .filter(([, v]) => typeof v === 'object')
        .map(([k, v]) => `${k} ${list(v.samples, fmt.mibps)}${v.ratios ? ` (ratios ${list(v.ratios, fmt.x)})` : ''}`)
        .join('; ');
    case '3':
      return `rounds ${list(res.steady.rounds, (x) => `p50 ${fmt.ms(x.p50)} / p99 ${fmt.ms(x.p99)} vs ${fmt.ms(x.baseP50)} / ${fmt.ms(x.baseP99)}`)}; first spawn with login PATH ${list(res.first.samples.loginPath, fmt.ms)}, without ${list(res.first.samples.noLoginPath, fmt.ms)}`;
    case '4':
      return list(res.samples, (x) => `${x.toFixed(0)} spawns/s`);
    case '5':
      return Object.entries(res)
        .map(([k, v]) => `${k} ${list(v.samples, fmt.ms)}`)
        .join('; ');
    case '6':
      return `${(res.spawnSeconds).toFixed(1)} s to start them; rounds ${list(res.rounds, (x) => `RSS ${fmt.mib(x.rss)}, ping p50 ${fmt.ms(x.p50)} p99 ${fmt.ms(x.p99)}`)}`;
    case '7':
      return `rounds ${list(res.rounds, (x) => `ping p99 ${fmt.ms(x.pingP99)}, kill p50 ${fmt.ms(x.killP50)} max ${fmt.ms(x.killMax)}`)}`;
    case '8':
      return list(
        res.rows,
        (x) =>
          `growth ${fmt.mib(x.growth)} (before ${fmt.mib(x.before)}, peak ${fmt.mib(x.peak)}, ${fmt.mibps(SIZES.memory.total / x.seconds)} into the buffer)`,
      );
    case '12':
      return list(res.rows, (x) => `${fmt.mibps(x.daemon)} vs ${fmt.mibps(x.direct)} (${fmt.x(x.ratio)})`);
    case '13':
      return Object.entries(res)
        .map(([k, v]) => `${k} ${list(v.rows, (x) => `${fmt.ms(x.ms)} vs ${fmt.ms(x.renderMs)} (wire ${fmt.ms(x.wireMs)})`)}`)
        .join('; ');
    case '14':
      return list(res.rows, (x) => `${(x.perTerminal / 1024).toFixed(0)} vs ${(x.perPiped / 1024).toFixed(0)} KiB`);
    case '9':
      return Object.entries(res)
        .filter(([, v]) => typeof v === 'object')
        .map(([k, v]) => `${k} ${list(v.samples, fmt.mibps)}${v.ratios ? ` (ratios ${list(v.ratios, fmt.x)})` : ''}`)
        .join('; ');
    case '15':
      return list(
        res.runs,
        (x) =>
          `one child ${x.one.cpuMsPerMiB.toFixed(2)} ms/MiB, ${SIZES.floodCpu.children} children ${x.many.cpuMsPerMiB.toFixed(2)} ms/MiB (${fmt.x(x.ratio)})`,
      );
    case '16':
      return ['oneConnection', 'ownConnections']
        .map((k) => `${k}: ${list(res[k].rounds, (x) => `p50 ${fmt.ms(x.p50)} p99 ${fmt.ms(x.p99)}`)}`)
        .join('; ');
    case '17':
      return `loading took ${res.loadSeconds.toFixed(1)} s; rounds ${list(res.rounds, (x) => `loaded ${fmt.ms(x.loadedP50)} / fresh ${fmt.ms(x.freshP50)} / direct ${fmt.ms(x.directP50)} (${fmt.x(x.ratio)})`)}`;
    case '18':
      return `rounds ${list(res.rounds, (x) => `${fmt.mib(x.before)} → ${fmt.mib(x.after)} (${fmt.kib(x.perProcess)} each)`)}`;
    case '19':
      return list(
        res.rows,
        (x) =>
          `replay peak ${fmt.mib(x.peakReplay)}, RSS ${fmt.mib(x.before)} → peak ${fmt.mib(x.peak)} (+${fmt.mib(x.growth)}), ${fmt.mib(x.endRss)} at the end, ${x.seconds.toFixed(1)} s`,
      );
    default:
      return JSON.stringify(res);
  }
}
