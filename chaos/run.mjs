#!/usr/bin/env node
// npm run chaos -- [--duration <s>] [--seed <n>] [--rss-slack-mib <n>] [--ping-bound-ms <n>] [--keep]
//
// Fault injection against the real daemon (dist/cmd/claustrum.js), driven only through the wire: the client
// library and raw sockets. Rounds are drawn from a seeded generator until the duration is spent; after each round
// the invariants below are checked, and any violation fails the run (exit 1) with the seed to replay it.
// See chaos/README.md.
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ChaosDaemon } from './lib/daemon.mjs';
import { Pinger } from './lib/pinger.mjs';
import { fdCount, fdTargets, markedProcesses, rssBytes } from './lib/proc.mjs';
import { CuttingProxy } from './lib/proxy.mjs';
import { ROUNDS } from './lib/rounds.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'dist/cmd/claustrum.js');

/** Defaults, each a bound the run states and may fail on. */
const DEFAULTS = {
  /** Seconds of rounds; a round started before the end runs to completion. */
  duration: 120,
  /** RSS after a round may exceed its baseline by this much plus twice the output still retained for replay. */
  rssSlackMib: 160,
  /** The owner's ping must be answered within this (outside windows the run opens itself: a restart, a SIGSTOP). */
  pingBoundMs: 5000,
  /** How long leaked descriptors and processes get to disappear after a round before they count as leaks. */
  settleMs: 10_000,
};
/** The daemon's stall timeout for the run (shortened from 30 s so a stalled-reader round takes seconds). */
const STALL_MS = 2000;
/** A round still running after this long is a violation (a hang), and the run stops there. */
const ROUND_TIMEOUT_MS = 180_000;
/** How long the daemon retains an exited process's output (PROTOCOL.md: 15 minutes). */
const RETENTION_MS = 15 * 60_000;
/** Relative weights of the rounds after the first pass, which runs every kind once. */
const WEIGHTS = { cuts: 3, rawCuts: 2, stalledReader: 1, slowReader: 1, flood: 2, signals: 2, descriptors: 1, killRestart: 1 };

function parseArgs(argv) {
  const o = { ...DEFAULTS, seed: undefined, keep: false, rounds: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) usage(`${a} needs a number`);
      return v;
    };
    if (a === '--duration') o.duration = val();
    else if (a === '--seed') o.seed = val() >>> 0;
    else if (a === '--rss-slack-mib') o.rssSlackMib = val();
    else if (a === '--ping-bound-ms') o.pingBoundMs = val();
    else if (a === '--keep') o.keep = true;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--rounds') o.rounds = String(argv[++i] ?? '').split(',');
    else if (a === '-h' || a === '--help' || a === '-help') usage();
    else usage(`unknown argument ${a}`);
  }
  return o;
}

function usage(error) {
  const text = `usage: npm run chaos -- [--duration <seconds> (default ${DEFAULTS.duration})] [--seed <n> (random, printed)]
       [--rss-slack-mib <n> (default ${DEFAULTS.rssSlackMib})] [--ping-bound-ms <n> (default ${DEFAULTS.pingBoundMs})] [--keep (keep the run directory)] [--verbose (say when each round starts)]
       [--rounds cuts,flood,… (only these kinds; default all)]
Runs fault-injection rounds against the real daemon (dist/: run npm run build first) and checks the invariants of chaos/README.md after each.
`;
  if (error) {
    process.stderr.write(`chaos: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

/** mulberry32: the run's only source of randomness, so a seed replays the same rounds with the same parameters. */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The TCP sockets `pid` listens on (an inspector opened by SIGUSR1 would be one), as host:port strings. */
async function tcpListeners(pid) {
  const inodes = new Set();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]);
  }
  const out = [];
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) out.push(`${table}:${f[1]}`);
    }
  }
  return out;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(BIN)) usage(`${BIN} is missing: run npm run build first`);
  const seed = opts.seed ?? randomInt(2 ** 32);
  const random = seeded(seed);
  const replay = `npm run chaos -- --seed ${seed} --duration ${opts.duration}`;
  console.log(`chaos: seed ${seed} (replay: ${replay})`);

  const dir = mkdtempSync(path.join(tmpdir(), 'chaos-'));
  const token = randomBytes(18).toString('base64url');
  const mark = `CHAOS_MARK=${path.basename(dir)}`;
  const daemon = new ChaosDaemon({ bin: BIN, dir, token, args: ['-stall-timeout', `${STALL_MS}ms`, '-no-login-path'] });
  const { connect } = await import(path.join(ROOT, 'dist/src/client/index.js'));
  // The proxy draws its cuts from a stream of its own: their moments depend on timing, the rounds' parameters must not.
  const proxy = new CuttingProxy(path.join(dir, 'proxy.sock'), daemon.socket, seeded(seed ^ 0x9e3779b9));
  const pinger = new Pinger(daemon.socket, token, { boundMs: opts.pingBoundMs });
  const violations = [];
  const retainedList = [];
  let seqN = 0;
  const stats = { rounds: {}, bytesChecked: 0, gaps: 0, restarts: 0, signals: {}, edgeSpawns: { ok: 0, refused: 0, noReply: 0 }, rssPeak: 0 };
  const baseline = { fds: 0, rss: 0 };
  let currentRound = 'start';

  const ctx = {
    random,
    daemon,
    token,
    dir,
    mark: path.basename(dir),
    proxy,
    pinger,
    stats,
    stallMs: STALL_MS,
    fixtures: path.join(ROOT, 'test/fixtures'),
    seq: () => ++seqN,
    fail: (msg) => {
      violations.push(`[${currentRound}] ${msg}`);
      console.log(`  VIOLATION ${msg}`);
    },
    retained: (bytes) => retainedList.push({ at: Date.now(), bytes }),
    tcpListeners,
    connect: (o) =>
      connect({
        token,
        reconnect: { initialDelayMs: 20, maxDelayMs: 300, giveUpAfterMs: 30_000 },
        ...o,
      }),
    /** A stream of its own for a concurrent part of a round, drawn in program order (so replays match). */
    fork: () => seeded(Math.floor(random() * 2 ** 32)),
    signalChild: (pid) => {
      // A child stopped and continued mid-stream: its output and stdin must come through unharmed. (The pause's
      // length is timing, not a parameter: it does not draw from the run's stream.)
      try {
        process.kill(pid, 'SIGSTOP');
        setTimeout(() => process.kill(pid, 'SIGCONT'), Math.floor(Math.random() * 200)).unref();
      } catch {}
    },
    isMarkedLive: async (pid) => (await markedProcesses(mark)).includes(pid),
    rebaseline: async () => {
      retainedList.length = 0;
      await measureBaseline();
    },
  };

  async function measureBaseline() {
    // One session first, so lazily loaded modules and first-spawn state are in the baseline.
    const c = await ctx.connect({ socket: daemon.socket });
    const p = c.spawn({ command: process.execPath, args: ['-e', ''], env: { CHAOS_MARK: ctx.mark } });
    await p.exited;
    await c.close();
    await sleep(300);
    baseline.fds = await fdCount(daemon.pid);
    baseline.rss = await rssBytes(daemon.pid);
  }

  const retainedBytes = () => retainedList.filter((x) => Date.now() - x.at < RETENTION_MS).reduce((s, x) => s + x.bytes, 0);

  async function checkInvariants() {
    if (!daemon.alive) {
      ctx.fail(`the daemon is gone: ${JSON.stringify(await daemon.exited)}`);
      await daemon.start();
      await ctx.rebaseline();
      return;
    }
    const deadline = Date.now() + opts.settleMs;
    let fds;
    let procs;
    for (;;) {
      fds = await fdCount(daemon.pid);
      procs = await markedProcesses(mark);
      if ((fds <= baseline.fds && procs.length === 0) || Date.now() > deadline) break;
      await sleep(100);
    }
    if (procs.length > 0) {
      ctx.fail(`processes left running: ${procs.join(', ')}`);
      for (const p of procs) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {}
      }
    }
    if (fds > baseline.fds) ctx.fail(`descriptors: ${fds} open, baseline ${baseline.fds}: ${(await fdTargets(daemon.pid)).join(' ')}`);
    const rss = await rssBytes(daemon.pid);
    stats.rssPeak = Math.max(stats.rssPeak, rss);
    const bound = baseline.rss + opts.rssSlackMib * 1024 * 1024 + 2 * retainedBytes();
    if (rss > bound)
      ctx.fail(`RSS ${mib(rss)} MiB above its bound ${mib(bound)} MiB (baseline ${mib(baseline.rss)}, retained output ${mib(retainedBytes())})`);
    for (const u of pinger.unanswered.splice(0)) ctx.fail(`owner ping: ${u}`);
    return { fds, rss };
  }

  let exitCode = 0;
  // Interrupted by hand (or by CI's timeout): the daemon and its children must not outlive the run.
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      console.log(`chaos: ${sig}; stopping the daemon (seed ${seed})`);
      daemon.stop().finally(() => process.exit(130));
    });
  }
  try {
    await proxy.listen();
    await daemon.start();
    pinger.start();
    await measureBaseline();
    console.log(`chaos: daemon pid ${daemon.pid}, baseline ${baseline.fds} descriptors, RSS ${mib(baseline.rss)} MiB; ${opts.duration} s of rounds`);
    const kinds = Object.keys(ROUNDS).filter((k) => !opts.rounds || opts.rounds.includes(k));
    if (kinds.length === 0) usage(`--rounds names none of ${Object.keys(ROUNDS).join(', ')}`);
    const firstPass = [...kinds].sort(() => random() - 0.5);
    const weighted = kinds.flatMap((k) => Array(WEIGHTS[k]).fill(k));
    const end = Date.now() + opts.duration * 1000;
    let n = 0;
    while (Date.now() < end) {
      const kind = n < firstPass.length ? firstPass[n] : weighted[Math.floor(random() * weighted.length)];
      n++;
      currentRound = `${n}:${kind}`;
      pinger.round = currentRound;
      if (opts.verbose) console.log(`  round ${currentRound} starting`);
      const t0 = performance.now();
      let timer;
      const hung = new Promise((resolve) => {
        timer = setTimeout(() => resolve('hung'), ROUND_TIMEOUT_MS);
      });
      const outcome = await Promise.race([
        ROUNDS[kind](ctx).then(
          () => 'done',
          (err) => ctx.fail(`round threw: ${err.stack ?? err}`),
        ),
        hung,
      ]);
      clearTimeout(timer);
      if (outcome === 'hung') {
        // Its state is unknown: report it and stop here rather than pile further rounds on top.
        ctx.fail(`round did not finish within ${ROUND_TIMEOUT_MS / 1000} s`);
        break;
      }
      const after = await checkInvariants();
      stats.rounds[kind] = (stats.rounds[kind] ?? 0) + 1;
      console.log(
        `  round ${currentRound} ${Math.round(performance.now() - t0)} ms; fds ${after?.fds}, RSS ${mib(after?.rss ?? 0)} MiB, ping max ${pinger.max.toFixed(0)} ms`,
      );
    }
  } catch (err) {
    violations.push(`[${currentRound}] run aborted: ${err.stack ?? err}`);
  } finally {
    pinger.stop();
    await proxy.close().catch(() => {});
    await daemon.stop().catch(() => {});
  }

  const report = {
    seed,
    replay,
    durationS: opts.duration,
    rounds: stats.rounds,
    bytesVerified: stats.bytesChecked,
    gapsReported: stats.gaps,
    proxyCuts: proxy.cuts,
    daemonRestarts: stats.restarts,
    signalsSent: stats.signals,
    spawnsAtDescriptorEdge: stats.edgeSpawns,
    pingMaxMs: Math.round(pinger.max),
    pingMaxRound: pinger.maxAt,
    pingP99Ms: Math.round(pinger.p99()),
    pings: pinger.latencies.length,
    rssBaselineMiB: mib(baseline.rss),
    rssPeakMiB: mib(stats.rssPeak),
    violations,
  };
  writeFileSync(path.join(ROOT, 'chaos/last-report.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
  if (violations.length > 0) {
    exitCode = 1;
    console.log(`chaos: FAILED with ${violations.length} violation(s); replay with: ${replay}`);
    console.log(`chaos: the daemon's log is kept in ${daemon.logPath}`);
    const tail = readFileSync(daemon.logPath, 'utf8').split('\n').slice(-30).join('\n');
    console.log(tail);
  } else {
    console.log(`chaos: passed (${Object.values(stats.rounds).reduce((a, b) => a + b, 0)} rounds)`);
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

function mib(n) {
  return Math.round((n / 1048576) * 10) / 10;
}

process.on('unhandledRejection', (e) => console.log(`chaos: unhandled rejection: ${e?.stack ?? e}`));
await main();
