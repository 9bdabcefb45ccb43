#!/usr/bin/env node
// npm run chaos -- [--duration <s>] [--seed <n>] [--rss-slack-mib <n>] [--ping-bound-ms <n>] [--lifecycle <k=n,…>] [--keep]
//
// Fault injection against the real daemon (dist/cmd/claustrum.js), driven only through the wire: the client
// library and raw sockets. Rounds are drawn from a seeded generator until the duration is spent; after each round
// the invariants below are checked, and any violation fails the run (exit 1) with the seed to replay it.
// See chaos/README.md.
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { prepareUpgradeBuild } from './lib/build.mjs';
import { ChaosDaemon } from './lib/daemon.mjs';
import { EVENT_KINDS } from './lib/lifecycle.mjs';
import { Pinger } from './lib/pinger.mjs';
import { fdCount, fdTargets, markedKeepers, markedProcesses, rssBytes } from './lib/proc.mjs';
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
const WEIGHTS = { cuts: 3, rawCuts: 2, stalledReader: 1, slowReader: 1, flood: 2, signals: 2, descriptors: 1, killRestart: 1, lifecycle: 4 };
/**
 * Life-cycle events a run makes at least (issue 16's full run: 10 graceful restarts, 5 upgrades, 10 SIGKILLs; and
 * stops with -keep-children), scaled down with the duration but never below a few of each (the CI run, 120 s).
 * SIGKILLs of killRestart rounds count. The run goes on past --duration (by at most EXTRA_S) until they are made.
 */
function lifecycleTargets(durationS) {
  const scale = (full, least) => Math.max(least, Math.round((full * durationS) / 600));
  return { restart: scale(10, 3), upgrade: scale(5, 2), kill: scale(10, 3), keepStop: scale(3, 1) };
}
/** Seconds a run may go past --duration to make its life-cycle targets. */
const EXTRA_S = 240;
/** Seconds a life-cycle round takes, about (for deciding when the remaining rounds must be life-cycle ones). */
const LIFECYCLE_ROUND_S = 30;

function parseArgs(argv) {
  const o = { ...DEFAULTS, seed: undefined, keep: false, rounds: undefined, lifecycle: undefined };
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
    else if (a === '--same-connection-reattach') o.sameConnectionReattach = true;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--rounds') o.rounds = String(argv[++i] ?? '').split(',');
    else if (a === '--lifecycle') {
      o.lifecycle = {};
      for (const kv of String(argv[++i] ?? '').split(',')) {
        const [k, v] = kv.split('=');
        if (!EVENT_KINDS.includes(k) || !/^\d+$/.test(v ?? '')) usage(`--lifecycle takes ${EVENT_KINDS.map((x) => `${x}=<n>`).join(',')}, not ${kv}`);
        o.lifecycle[k] = Number(v);
      }
    } else if (a === '-h' || a === '--help' || a === '-help') usage();
    else usage(`unknown argument ${a}`);
  }
  return o;
}

function usage(error) {
  const text = `usage: npm run chaos -- [--duration <seconds> (default ${DEFAULTS.duration})] [--seed <n> (random, printed)]
       [--rss-slack-mib <n> (default ${DEFAULTS.rssSlackMib})] [--ping-bound-ms <n> (default ${DEFAULTS.pingBoundMs})] [--keep (keep the run directory)] [--verbose (say when each round starts)]
       [--rounds cuts,flood,… (only these kinds; default all)] [--same-connection-reattach (lifecycle: also detach() a handle and attach again on the same client; loses frames today, see chaos/README.md)]
       [--lifecycle restart=10,upgrade=5,kill=10,keepStop=3 (life-cycle events to make at least; default scaled from those of a 600 s run by the duration, at least 3,2,3,1)]
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
  // -keep-children: a SIGTERM leaves the processes with the keeper (the lifecycle round's keepStop); stop() then ends
  // the keeper too. CHAOS_DAEMON_RUN marks this run's daemons and the keeper they start, to find a stray one.
  const daemonMark = `CHAOS_DAEMON_RUN=${path.basename(dir)}`;
  const daemon = new ChaosDaemon({
    bin: BIN,
    dir,
    token,
    args: ['-stall-timeout', `${STALL_MS}ms`, '-no-login-path', '-keep-children'],
    env: { CHAOS_DAEMON_RUN: path.basename(dir) },
  });
  // The second build directory, prepared once: an upgrade starts the daemon from it (and the next one back).
  const bins = { main: BIN, upgrade: prepareUpgradeBuild(ROOT, path.join(dir, 'upgrade-build')) };
  const clientModule = await import(path.join(ROOT, 'dist/src/client/index.js'));
  const { connect } = clientModule;
  const targets = { ...lifecycleTargets(opts.duration), ...opts.lifecycle };
  const planned = Object.fromEntries(EVENT_KINDS.map((k) => [k, 0]));
  // The proxy draws its cuts from a stream of its own: their moments depend on timing, the rounds' parameters must not.
  const proxy = new CuttingProxy(path.join(dir, 'proxy.sock'), daemon.socket, seeded(seed ^ 0x9e3779b9));
  const pinger = new Pinger(daemon.socket, token, { boundMs: opts.pingBoundMs });
  const violations = [];
  const retainedList = [];
  let seqN = 0;
  const stats = {
    rounds: {},
    bytesChecked: 0,
    gaps: 0,
    restarts: 0,
    signals: {},
    edgeSpawns: { ok: 0, refused: 0, noReply: 0 },
    rssPeak: 0,
    lifecycle: Object.fromEntries(EVENT_KINDS.map((k) => [k, 0])),
    daemons: [],
  };
  const baseline = { fds: 0, rss: 0, pid: 0 };
  const remainingEvents = () => EVENT_KINDS.reduce((n, k) => n + Math.max(0, targets[k] - planned[k]), 0);
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
    bins,
    clientModule,
    sameConnectionReattach: opts.sameConnectionReattach === true,
    verbose: opts.verbose,
    /**
     * The events of one lifecycle round: 3-5, drawn towards the kinds still short of their targets (uniformly once
     * every target is planned).
     */
    planEvents: (r) => {
      const n = 3 + Math.floor(r() * 3);
      const out = [];
      for (let i = 0; i < n; i++) {
        const short = EVENT_KINDS.flatMap((k) => Array(Math.max(0, targets[k] - planned[k])).fill(k));
        const pool = short.length > 0 ? short : EVENT_KINDS;
        const k = pool[Math.floor(r() * pool.length)];
        planned[k]++;
        out.push(k);
      }
      return out;
    },
    /** An event a round made outside the lifecycle's plan (killRestart's SIGKILL). */
    unplannedEvent: (kind) => {
      planned[kind]++;
      stats.lifecycle[kind]++;
    },
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
    baseline.pid = daemon.pid;
    stats.daemons.push({ pid: daemon.pid, bin: daemon.bin === BIN ? 'main' : 'upgrade', fds: baseline.fds, rssMiB: mib(baseline.rss) });
  }

  /**
   * The keeper's process directories once the round settled: each must belong to a process the daemon still lists
   * (same id and pid); one it forgot is a file left behind.
   */
  async function checkKeeperFiles() {
    const procs = path.join(daemon.keeperDir, 'procs');
    let keys = [];
    try {
      keys = readdirSync(procs);
    } catch {
      return;
    }
    const c = await ctx.connect({ socket: daemon.socket });
    let listed;
    try {
      listed = (await c.list()).processes;
    } finally {
      await c.close();
    }
    const known = new Set(listed.map((p) => `${p.id}/${p.pid}`));
    const stray = [];
    for (const key of keys) {
      let meta;
      try {
        meta = JSON.parse(readFileSync(path.join(procs, key, 'meta.json'), 'utf8'));
      } catch {
        stray.push(`${key} (no readable meta.json)`);
        continue;
      }
      if (!known.has(`${meta.id}/${meta.pid}`)) stray.push(`${key} (${meta.id}, pid ${meta.pid})`);
    }
    if (stray.length > 0) ctx.fail(`keeper files of processes the daemon does not list: ${stray.join(', ')}`);
    stats.keeperDirs = keys.length;
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
    // A daemon that replaced the measured one during the round: its baseline is measured once the children are gone.
    const replaced = daemon.pid !== baseline.pid;
    for (;;) {
      fds = await fdCount(daemon.pid);
      procs = await markedProcesses(mark);
      if (((replaced || fds <= baseline.fds) && procs.length === 0) || Date.now() > deadline) break;
      await sleep(100);
    }
    if (replaced) {
      const first = stats.daemons[0];
      await ctx.rebaseline();
      fds = baseline.fds;
      // The same code settles at the same descriptors: more in a successor are its predecessor's leaking into it
      // (the keeper link, adopted journals) or kept for processes it adopted.
      if (fds > first.fds)
        ctx.fail(
          `descriptors: the successor daemon ${daemon.pid} settles at ${fds}, the first daemon at ${first.fds}: ${(await fdTargets(daemon.pid)).join(' ')}`,
        );
    }
    await checkKeeperFiles();
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
    const withLifecycle = kinds.includes('lifecycle');
    let n = 0;
    for (;;) {
      const left = end - Date.now();
      // Past the duration only to make the life-cycle targets; when the time left is about what the remaining
      // events need, every round is a life-cycle one.
      const owed = withLifecycle ? remainingEvents() : 0;
      if (left <= 0 && (owed === 0 || left < -EXTRA_S * 1000)) break;
      let kind = n < firstPass.length ? firstPass[n] : weighted[Math.floor(random() * weighted.length)];
      if (n >= firstPass.length && owed > 0 && left < LIFECYCLE_ROUND_S * 1000 * Math.ceil(owed / 4)) kind = 'lifecycle';
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
    await daemon.stop().catch((err) => violations.push(`[end] stopping the daemon and its keeper: ${err.message}`));
  }
  // Nothing of the run may outlive it: no keeper of its own (whatever keeper.lock says), no child, and of the
  // keeper's state nothing but its log (the lock, the socket, every process directory gone).
  await sleep(300);
  const keepers = await markedKeepers(daemonMark);
  if (keepers.length > 0) {
    violations.push(`[end] keeper(s) left running after the stop: ${keepers.join(', ')}`);
    for (const p of keepers) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {}
    }
  }
  const leftProcs = await markedProcesses(mark);
  if (leftProcs.length > 0) violations.push(`[end] processes left running after the stop: ${leftProcs.join(', ')}`);
  const leftFiles = existsSync(daemon.keeperDir) ? readdirSync(daemon.keeperDir).filter((f) => f !== 'keeper.log') : [];
  if (leftFiles.length > 0) violations.push(`[end] keeper files left after the stop: ${leftFiles.join(', ')}`);
  for (const f of ['rpc.sock', 'daemon.token']) if (existsSync(path.join(dir, f))) violations.push(`[end] ${f} left after the stop`);
  const records = existsSync(path.join(dir, 'children')) ? readdirSync(path.join(dir, 'children')) : [];
  if (records.length > 0) violations.push(`[end] child records left after the stop: ${records.join(', ')}`);

  const report = {
    seed,
    replay,
    durationS: opts.duration,
    rounds: stats.rounds,
    bytesVerified: stats.bytesChecked,
    gapsReported: stats.gaps,
    proxyCuts: proxy.cuts,
    daemonRestarts: stats.restarts,
    lifecycleEvents: stats.lifecycle,
    lifecycleTargets: targets,
    lifecycleBytesVerified: stats.lifecycleBytes ?? 0,
    terminalsChecked: stats.terminalsChecked ?? 0,
    detaches: stats.detaches ?? 0,
    permittedGaps: stats.permittedGaps ?? 0,
    supersededKilledBySuccessor: stats.supersededKilled ?? 0,
    daemons: stats.daemons,
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
    console.log(`chaos: the daemon's log is kept in ${daemon.logPath}, the keeper's in ${path.join(daemon.keeperDir, 'keeper.log')}`);
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
