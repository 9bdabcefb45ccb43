// The daemon's life-cycle under load (issue 16): while 8 piped children flood output and read input at different
// rates and 1-2 terminals draw, clients detach and reattach at random and the daemon is restarted gracefully (a new
// -serve over the running one), upgraded (a -serve from the second build directory), SIGKILLed, and stopped with
// SIGTERM under -keep-children, each followed by a fresh start, at random moments. Afterwards every byte of output
// must have arrived exactly once (a gap only where the protocol allows one), every child must have read exactly the
// input sent, every exit must be the right one, and every terminal must show the screen its program drew.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { frameLines } from '../../test/fixtures/lib/numbered-frame.mjs';
import { patternByte } from '../../test/fixtures/lib/pattern.mjs';
import { UPGRADE_SUFFIX } from './build.mjs';
import { processAlive } from './proc.mjs';

/**
 * The daemon's replay cap per process (PROTOCOL.md, "Replay buffer"), counted in NDJSON bytes (base64 data plus the
 * frame's envelope), and the keeper's journal bound while no daemon runs (the same): only output past it may be
 * lost, as a gap.
 */
export const REPLAY_CAP_BYTES = 16 * 1024 * 1024;
/** A frame's NDJSON envelope without its data, at most (id, stream, seq): bytes. */
const FRAME_ENVELOPE_BYTES = 128;
/** Kinds of life-cycle event, in the order the report lists them. */
export const EVENT_KINDS = ['restart', 'upgrade', 'kill', 'keepStop'];
/** Piped children per round (issue 16: "8 children flood deterministic output and read deterministic input"). */
const PIPED = 8;
/** Their output rates, bytes per tick of at most 1 ms (pattern-echo's argument), one each: 2 B/ms to 1 MiB/s. */
const RATES = [2, 8, 32, 64, 128, 256, 512, 1024];
/** Their stdin rates, bytes per second. */
const STDIN_RATES = [1024, 8192, 32_768, 131_072];
/** A child that has not exited this long after its end (EOF or SIGTERM) is a violation. */
const EXIT_WAIT_MS = 60_000;
/** How long a terminal's screen may take to show what was drawn once the program is idle. */
const SCREEN_WAIT_MS = 20_000;

/** DEBUG_CHAOS=1: each handle's reattaches and gaps, timed, on stdout. */
const DEBUG = process.env.DEBUG_CHAOS !== undefined;
const debug = (label, what, x) => DEBUG && console.log(`    ${new Date().toISOString().slice(11, 23)} ${label} ${what} ${JSON.stringify(x)}`);
const pick = (r, list) => list[Math.floor(r() * list.length)];
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
const shuffle = (r, list) => {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

/** Stdin byte `j` of a piped child: position-dependent, so a lost, repeated or reordered chunk is found where it is. */
export const stdinByte = (j) => (j * 31 + (j >>> 10)) & 0xff;

/** Bytes `from`..`from + n` of the stdin stream. */
function stdinBlock(from, n) {
  const b = Buffer.allocUnsafe(n);
  for (let k = 0; k < n; k++) b[k] = stdinByte(from + k);
  return b;
}

/** A new client, retried while the daemon is down or being replaced (a first connect that fails is an error). */
async function newClient(ctx, viaProxy) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await ctx.connect({ socket: viaProxy ? ctx.proxy.path : ctx.daemon.socket });
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`no connection within 30 s: ${err.message}`);
      await sleep(100);
    }
  }
}

/** Waits for every write still pending (a detach with stdin unacknowledged would not know what the child got). */
async function settleWrites(ctx, label, pending) {
  const results = await Promise.allSettled(pending.splice(0));
  for (const x of results) if (x.status === 'rejected') ctx.fail(`${label}: stdin write failed: ${x.reason?.message ?? x.reason}`);
}

/**
 * Follows a handle: appends its output to `st`, checking seqs rise, and records gaps with the longest silence of
 * output before them (which bounds what the child can have written meanwhile).
 */
function follow(ctx, label, st, h, onItem) {
  const at = (seq, what) => {
    if (seq <= st.lastSeq) ctx.fail(`${label}: ${what} seq ${seq} after seq ${st.lastSeq} (a duplicate or out of order)`);
    st.lastSeq = Math.max(st.lastSeq, seq);
    const now = performance.now();
    st.maxSilenceMs = Math.max(st.maxSilenceMs, now - st.lastDataAt);
    st.lastDataAt = now;
  };
  h.on('stdout', (d, seq) => {
    at(seq, 'stdout');
    st.stdout.push(d);
    onItem?.({ type: 'stdout', seq, data: d });
  });
  h.on('stderr', (d, seq) => {
    at(seq, 'stderr');
    st.stderr.push(d);
  });
  h.on('screen', (s) => {
    at(s.seq, 'screen');
    st.screens++;
    onItem?.({ type: 'screen', ...s });
  });
  h.on('resize', (x) => {
    at(x.seq, 'resize');
    onItem?.({ type: 'resize', ...x });
  });
  h.on('gap', (g) => {
    // Where it happened, for the report: the moment in the round, the daemon then, and the handle's history.
    const gap = {
      ...g,
      silenceMs: Math.round(performance.now() - st.lastDataAt),
      atMs: Math.round(performance.now() - st.t0),
      daemonStart: ctx.daemon.starts,
      reattaches: st.reattaches,
      detaches: st.detaches,
    };
    st.gaps.push(gap);
    debug(label, 'gap', gap);
  });
  if (DEBUG) {
    h.on('reattach', (x) => debug(label, 'reattach', { lastSeq: st.lastSeq, firstSeq: x.firstSeq, replay: x.lastSeq, applied: x.stdinApplied }));
    h.on('ready', () => debug(label, 'ready', { lastSeq: st.lastSeq }));
  }
  h.on('lost', (e) => {
    if (e?.code !== 'CLOSED' && e?.name !== 'ClosedError') st.lost = e;
  });
  h.on('reattach', () => st.reattaches++);
}

/** Stops following (one of the ways a client lets go) and follows again from the last seq delivered. */
async function detachAndReattach(ctx, label, st, r, onItem) {
  await settleWrites(ctx, label, st.pending);
  // 'handle' (detach, then attach on the same connection) loses frames in the client library today (chaos/README.md,
  // "What it found"): only with --same-connection-reattach.
  const how = ctx.sameConnectionReattach && r() < 0.5 ? 'handle' : 'client';
  if (how === 'handle') st.h.detach();
  else await st.client.close();
  st.detaches++;
  await sleep(int(r, 0, 1500));
  if (how === 'client') st.client = await newClient(ctx, st.viaProxy);
  // A terminal sometimes asks for the screen as it is instead of the frames it missed: a screen (for what the daemon
  // no longer holds) and every frame it holds, so the seqs start again and are drawn on a fresh emulator.
  const screen = st.terminal && r() < 0.3;
  if (screen) {
    st.lastSeq = 0;
    st.resetView();
  }
  st.h = st.client.attach(st.id, screen ? { screen: true, wantPid: true } : { fromSeq: st.lastSeq, wantPid: true });
  follow(ctx, label, st, st.h, onItem);
}

function newState(id, viaProxy) {
  return {
    id,
    viaProxy,
    client: undefined,
    h: undefined,
    stdout: [],
    stderr: [],
    lastSeq: 0,
    lastDataAt: performance.now(),
    maxSilenceMs: 0,
    gaps: [],
    lost: undefined,
    pending: [],
    sent: 0,
    detaches: 0,
    reattaches: 0,
    screens: 0,
    terminal: false,
    spawnAt: 0,
    readyAt: 0,
  };
}

/** Waits for the exit record on whatever handle is current (a reattach may replace it while waiting). */
async function exitOf(st, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (st.lost) return { lost: st.lost };
    const h = st.h;
    const x = await Promise.race([
      h.exited.then(
        (e) => ({ exit: e }),
        () => undefined,
      ),
      sleep(250).then(() => undefined),
    ]);
    if (x) return x;
  }
  return { timeout: true };
}

/**
 * A gap is allowed only where the child may have written past the replay cap while nobody read: over the longest
 * silence, at most one stdout frame per 1 ms tick (perTick bytes) and one stderr frame per stdin chunk echoed, as
 * NDJSON (base64: 4/3) with their envelopes.
 */
function judgeGaps(ctx, label, st, spec) {
  if (st.gaps.length === 0) return true;
  ctx.stats.gaps += st.gaps.length;
  const bytesPerMs = ((spec.perTick + spec.stdinRate / 1000) * 4) / 3 + 2 * FRAME_ENVELOPE_BYTES;
  const possible = st.maxSilenceMs * bytesPerMs;
  if (possible >= REPLAY_CAP_BYTES) {
    ctx.stats.permittedGaps = (ctx.stats.permittedGaps ?? 0) + st.gaps.length;
    return false; // permitted; the bytes cannot be checked past it
  }
  ctx.fail(
    `${label}: gap(s) ${JSON.stringify(st.gaps)} reported, but output paused at most ${Math.round(st.maxSilenceMs)} ms at ≤ ${Math.round(bytesPerMs)} NDJSON B/ms (${Math.round(possible / 1024)} KiB < the ${REPLAY_CAP_BYTES / 1048576} MiB replay cap): nothing could have been evicted`,
  );
  return false;
}

/** One piped child: spawned, fed, detached and reattached, ended (EOF or SIGTERM), then checked. */
async function pipedChild(ctx, env, spec) {
  const { r, id, label } = spec;
  const st = newState(id, spec.viaProxy);
  await sleep(spec.startAt);
  st.client = await newClient(ctx, spec.viaProxy);
  st.spawnAt = performance.now();
  st.lastDataAt = st.spawnAt;
  st.t0 = env.t0;
  st.h = st.client.spawn({
    id,
    command: process.execPath,
    args: [path.join(ctx.fixtures, 'pattern-echo.mjs'), String(spec.perTick), String(spec.exitCode)],
    env: { CHAOS_MARK: ctx.mark },
    wantPid: true,
  });
  follow(ctx, label, st, st.h);
  try {
    await st.h.ready;
  } catch (err) {
    return ctx.fail(`${label}: spawn failed: ${err.message}`);
  }
  st.readyAt = performance.now();
  env.children.push(st);
  const end = env.t0 + spec.endAt;
  while (performance.now() < end) {
    if (st.sent < spec.stdinTotal) {
      const n = Math.min(spec.stdinTotal - st.sent, int(r, 1, 16 * 1024));
      st.pending.push(st.h.write(stdinBlock(st.sent, n)));
      st.sent += n;
      await sleep(Math.max(1, Math.round((n / spec.stdinRate) * 1000)));
    } else {
      await sleep(int(r, 50, 300));
    }
    if (r() < spec.detachP) await detachAndReattach(ctx, label, st, r);
  }
  if (spec.kill) {
    await settleWrites(ctx, label, st.pending);
    // Sent again until the exit shows: a kill interrupted by a daemon's end may not have happened (SIGTERM twice is
    // harmless).
    const killing = (async () => {
      while (!st.h.exitInfo && !st.lost) {
        await st.h.kill('TERM').catch(() => {});
        await sleep(500);
      }
    })();
    const x = await exitOf(st, EXIT_WAIT_MS);
    await killing;
    return checkPiped(ctx, label, st, spec, x);
  }
  st.pending.push(st.h.end());
  const x = await exitOf(st, EXIT_WAIT_MS);
  await settleWrites(ctx, label, st.pending);
  return checkPiped(ctx, label, st, spec, x);
}

async function checkPiped(ctx, label, st, spec, x) {
  await st.client.close();
  if (x.timeout) {
    ctx.fail(`${label}: no exit within ${EXIT_WAIT_MS / 1000} s of its end (stdin ${st.sent} bytes sent; the child is killed)`);
    const c = await newClient(ctx, false).catch(() => undefined);
    await c?.killAndWait(st.id, { signal: 'KILL' }).catch(() => {});
    await c?.close();
    return;
  }
  if (x.lost) return ctx.fail(`${label}: process lost: ${x.lost.message}`);
  const exit = x.exit;
  st.exit = exit;
  const stdout = Buffer.concat(st.stdout);
  const stderr = Buffer.concat(st.stderr);
  ctx.retained(stdout.length + stderr.length);
  if (spec.kill) {
    if (exit.signal !== 'SIGTERM' || exit.exitCode !== -1) ctx.fail(`${label}: exit ${JSON.stringify(exit)}, expected SIGTERM`);
  } else if (exit.exitCode !== spec.exitCode || exit.signal !== undefined) {
    ctx.fail(`${label}: exit ${exit.exitCode} ${exit.signal ?? ''}, expected ${spec.exitCode}`);
  }
  if (!judgeGaps(ctx, label, st, spec)) return;
  // stderr echoes what the child read: exactly the stdin sent (a killed child: a prefix of it).
  if (!spec.kill && stderr.length !== st.sent) ctx.fail(`${label}: the child echoed ${stderr.length} stdin bytes, the client sent ${st.sent}`);
  for (let j = 0; j < stderr.length; j++) {
    if (stderr[j] !== stdinByte(j)) {
      ctx.fail(`${label}: stdin byte ${j} as the child read it is wrong (lost, repeated or reordered input)`);
      break;
    }
  }
  let body = stdout.length;
  if (!spec.kill) {
    const text = stdout.subarray(Math.max(0, stdout.length - 200)).toString('latin1');
    const m = /\nSTDIN (\d+) ([0-9a-f]{64})\nPATTERN (\d+)\n$/.exec(text);
    if (!m) return ctx.fail(`${label}: output does not end with the trailer (${stdout.length} bytes, no gap)`);
    body = stdout.length - m[0].length;
    if (body !== Number(m[3])) return ctx.fail(`${label}: ${body} pattern bytes delivered, the child wrote ${m[3]}`);
    const sentHash = createHash('sha256').update(stdinBlock(0, st.sent)).digest('hex');
    if (Number(m[1]) !== st.sent || m[2] !== sentHash) {
      ctx.fail(`${label}: the child read ${m[1]} stdin bytes (sha256 ${m[2].slice(0, 12)}…), the client sent ${st.sent} (${sentHash.slice(0, 12)}…)`);
    }
  }
  for (let i = 0; i < body; i++) {
    if (stdout[i] !== patternByte(i)) return ctx.fail(`${label}: output byte ${i} of ${body} is wrong (lost, repeated or reordered)`);
  }
  ctx.stats.bytesChecked += body + stderr.length;
  ctx.stats.lifecycleBytes = (ctx.stats.lifecycleBytes ?? 0) + body + stderr.length;
}

/** One terminal: drawn frames, typed input, a resize, detaches; then its screen, live and on a reattach, checked. */
async function terminalChild(ctx, env, spec) {
  const { r, id, label } = spec;
  const { TerminalScreen } = ctx.clientModule;
  const st = newState(id, false);
  st.terminal = true;
  let size = { cols: spec.cols, rows: spec.rows };
  let screen = new TerminalScreen({ cols: spec.cols, rows: spec.rows });
  const apply = (item) => screen.apply(item);
  st.resetView = () => {
    screen.dispose();
    screen = new TerminalScreen({ cols: spec.cols, rows: spec.rows });
  };
  const input = createHash('sha256');
  let typed = 0;
  try {
    await sleep(spec.startAt);
    st.client = await newClient(ctx, false);
    st.spawnAt = performance.now();
    st.lastDataAt = st.spawnAt;
    st.t0 = env.t0;
    st.h = st.client.spawn({
      id,
      command: process.execPath,
      args: [path.join(ctx.fixtures, 'draw-numbered-frames.mjs'), String(spec.frames), String(spec.intervalMs), String(spec.exitCode)],
      env: { CHAOS_MARK: ctx.mark },
      pty: { cols: spec.cols, rows: spec.rows },
      wantPid: true,
    });
    follow(ctx, label, st, st.h, apply);
    try {
      await st.h.ready;
    } catch (err) {
      return ctx.fail(`${label}: spawn failed: ${err.message}`);
    }
    st.readyAt = performance.now();
    env.children.push(st);
    const started = performance.now();
    // Typed only once the program reads raw (its first frame is drawn after): earlier, the line discipline echoes.
    while (st.lastSeq === 0 && performance.now() - started < 30_000) await sleep(20);
    const drawnBy = started + spec.frames * spec.intervalMs;
    const resizeAt = started + int(r, 0, spec.frames * spec.intervalMs);
    let resized = false;
    while (typed < spec.inputTotal || performance.now() < drawnBy) {
      if (typed < spec.inputTotal) {
        const n = Math.min(spec.inputTotal - typed, int(r, 1, 32));
        const keys = Buffer.from(Array.from({ length: n }, () => 97 + int(r, 0, 25)));
        input.update(keys);
        typed += n;
        st.pending.push(st.h.write(keys));
      }
      await sleep(int(r, 5, 120));
      if (!resized && performance.now() >= resizeAt) {
        resized = true;
        size = { cols: int(r, 40, 120), rows: int(r, 10, 40) };
        await resize(st, size);
      }
      if (r() < spec.detachP) await detachAndReattach(ctx, label, st, r, apply);
    }
    await settleWrites(ctx, label, st.pending);
    const expected = frameLines({
      frame: spec.frames,
      frames: spec.frames,
      cols: size.cols,
      rows: size.rows,
      inputBytes: typed,
      inputSha: input.copy().digest('hex'),
    });
    // The screen this client drew from every item it got (screens, resizes, frames, across its reattaches).
    const live = await screenShows(screen, expected, SCREEN_WAIT_MS);
    if (!live.ok) ctx.fail(`${label}: the followed screen does not show the last frame:\n${diffScreens(expected, live.lines)}`);
    if (!live.alternate) ctx.fail(`${label}: the followed screen is not the alternate screen`);
    // A fresh client reattaching with screen: true must be shown the same screen (a screen item for what the daemon
    // no longer holds, then the frames it does), at the terminal's size.
    st.h.detach();
    await st.client.close();
    const again = newState(id, false);
    again.client = await newClient(ctx, false);
    const fresh = new TerminalScreen({ cols: size.cols, rows: size.rows });
    again.h = again.client.attach(id, { screen: true, wantPid: true });
    follow(ctx, `${label} (reattached)`, again, again.h, (item) => fresh.apply(item));
    const shown = await screenShows(fresh, expected, SCREEN_WAIT_MS);
    fresh.dispose();
    if (!shown.ok) ctx.fail(`${label}: a reattach with screen: true shows another screen:\n${diffScreens(expected, shown.lines)}`);
    if (shown.cols !== size.cols || shown.rows !== size.rows)
      ctx.fail(`${label}: reattached at ${shown.cols}x${shown.rows}, the terminal is ${size.cols}x${size.rows}`);
    st.terminalSize = size;
    again.pending.push(again.h.write('Q'));
    const x = await exitOf(again, EXIT_WAIT_MS);
    await settleWrites(ctx, label, again.pending);
    await again.client.close();
    if (x.timeout) return ctx.fail(`${label}: no exit within ${EXIT_WAIT_MS / 1000} s of its Q`);
    if (x.lost) return ctx.fail(`${label}: process lost: ${x.lost.message}`);
    st.exit = x.exit;
    if (x.exit.exitCode !== spec.exitCode) ctx.fail(`${label}: exit ${x.exit.exitCode} ${x.exit.signal ?? ''}, expected ${spec.exitCode}`);
    for (const g of [...st.gaps, ...again.gaps])
      ctx.fail(`${label}: a terminal reported a gap ${JSON.stringify(g)} (a terminal gets a screen instead)`);
    ctx.stats.screenItems = (ctx.stats.screenItems ?? 0) + st.screens + again.screens;
    ctx.stats.terminalsChecked = (ctx.stats.terminalsChecked ?? 0) + 1;
  } finally {
    screen.dispose();
  }
}

/** Sent again after an interruption until applied (setting a size twice is harmless). */
async function resize(st, size) {
  for (let i = 0; i < 20; i++) {
    try {
      await st.h.resize(size.cols, size.rows);
      return;
    } catch {
      await sleep(200);
    }
  }
  throw new Error(`resize to ${size.cols}x${size.rows} never applied`);
}

async function screenShows(screen, expected, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    await screen.flushed();
    const s = screen.read();
    const ok = s.lines.length === expected.length && s.lines.every((l, i) => l === expected[i]);
    if (ok || Date.now() > deadline) return { ok, lines: s.lines, alternate: s.alternate, cols: s.cols, rows: s.rows };
    await sleep(100);
  }
}

function diffScreens(expected, got) {
  const out = [];
  for (let i = 0; i < Math.max(expected.length, got.length); i++) {
    if (expected[i] !== got[i]) out.push(`    row ${i}: expected ${JSON.stringify(expected[i])}, got ${JSON.stringify(got[i])}`);
    if (out.length >= 6) break;
  }
  return out.join('\n');
}

/** Asks the daemon which build answers (server.info's version): an upgrade must be served by the other build. */
async function versionOf(ctx) {
  const c = await newClient(ctx, false);
  try {
    return (await c.call('server.info', {}, { idempotent: true })).version;
  } finally {
    await c.close();
  }
}

/** One life-cycle event; returns a line for the log. */
async function runEvent(ctx, kind, r) {
  const d = ctx.daemon;
  const before = d.pid;
  const keeper = d.keeperPid;
  ctx.pinger.excuse(true);
  const began = performance.now();
  try {
    await eventOf(ctx, kind, r, keeper);
  } catch (err) {
    ctx.fail(`${kind}: ${err.message}`);
    // No daemon may be left running after a failed start (its predecessor is gone): one is started for the rest.
    if (!d.alive) await d.start({ how: `start after a failed ${kind}` });
  } finally {
    // The owner's connection was cut with the old daemon: it reconnects once the new one is there.
    await sleep(300);
    ctx.pinger.excuse(false);
  }
  ctx.stats.lifecycle[kind]++;
  const k2 = d.keeperPid;
  if (keeper !== undefined && k2 !== keeper) ctx.fail(`${kind}: the keeper changed (pid ${keeper} → ${k2}): its children lost their parent`);
  const version = await versionOf(ctx);
  const upgraded = d.bin === ctx.bins.upgrade;
  if (version.endsWith(UPGRADE_SUFFIX) !== upgraded) ctx.fail(`${kind}: server.info says version ${version}, but the daemon runs ${d.bin}`);
  return `${kind} ${before}→${d.pid} (${Math.round(performance.now() - began)} ms, ${upgraded ? 'upgrade build' : 'main build'})`;
}

async function eventOf(ctx, kind, r, keeper) {
  const d = ctx.daemon;
  if (kind === 'restart' || kind === 'upgrade') {
    const bin = kind === 'upgrade' ? (d.bin === ctx.bins.main ? ctx.bins.upgrade : ctx.bins.main) : d.bin;
    const res = await d.start({ bin, how: kind });
    const prev = res.previous;
    if (!prev) ctx.fail(`${kind}: no daemon was running to take over from`);
    else if (prev.stayed)
      ctx.fail(`${kind}: the superseded daemon (pid ${prev.pid}) was still running ${15} s after its successor listened (SIGKILLed)`);
    // Its successor's lock evicts it with SIGTERM, then SIGKILL after 2 s (src/daemon/lock.ts): on a loaded
    // machine the handover's teardown can take longer. Harmless to the processes (the keeper refuses a superseded
    // daemon), so counted, not failed.
    else if (prev.exit.signal === 'SIGKILL') ctx.stats.supersededKilled = (ctx.stats.supersededKilled ?? 0) + 1;
    else if (prev.exit.code !== 0) ctx.fail(`${kind}: the superseded daemon (pid ${prev.pid}) exited ${JSON.stringify(prev.exit)}, not 0`);
  } else if (kind === 'kill') {
    await d.kill('SIGKILL');
    await sleep(int(r, 0, 1500));
    await d.start({ how: 'start after SIGKILL' });
  } else {
    // -keep-children: the processes stay with the keeper (a child killed by the stop shows in its exit record).
    const exit = await d.kill('SIGTERM');
    if (exit?.code !== 0) ctx.fail(`keepStop: the daemon exited ${JSON.stringify(exit)} on SIGTERM, not 0`);
    if (keeper !== undefined && !processAlive(keeper)) ctx.fail(`keepStop: the keeper (pid ${keeper}) is gone after a -keep-children stop`);
    await sleep(int(r, 0, 1500));
    await d.start({ how: 'start after SIGTERM -keep-children' });
  }
}

/**
 * The life-cycle round. `ctx.planEvents(r)` says which events this round makes (the run spreads its targets over
 * its rounds); they happen at random moments while the children run.
 */
export async function lifecycle(ctx) {
  const r = ctx.random;
  const round = ctx.seq();
  const durationMs = int(r, 10, 20) * 1000;
  const events = ctx.planEvents(r);
  const eventTimes = events.map(() => int(r, Math.round(durationMs * 0.05), Math.round(durationMs * 0.85))).sort((a, b) => a - b);
  const eventStream = ctx.fork();
  const rates = shuffle(r, RATES);
  const proxied = new Set(shuffle(r, [...Array(PIPED).keys()]).slice(0, 2));
  const killed = int(r, 0, PIPED - 1);
  const piped = Array.from({ length: PIPED }, (_, i) => ({
    r: ctx.fork(),
    id: `lc${round}-p${i}`,
    label: `lifecycle#${round} p${i} (${rates[i]} B/ms${proxied.has(i) ? ', cut' : ''}${i === killed ? ', SIGTERM' : ''})`,
    perTick: rates[i],
    exitCode: i === killed ? 0 : int(r, 0, 9),
    kill: i === killed,
    viaProxy: proxied.has(i),
    stdinTotal: int(r, 0, 256 * 1024),
    stdinRate: pick(r, STDIN_RATES),
    startAt: int(r, 0, Math.round(durationMs * 0.25)),
    endAt: int(r, Math.round(durationMs * 0.5), durationMs),
    detachP: pick(r, [0, 0.01, 0.03, 0.06]),
  }));
  const terminals = Array.from({ length: int(r, 1, 2) }, (_, i) => {
    const intervalMs = int(r, 50, 200);
    return {
      r: ctx.fork(),
      id: `lc${round}-t${i}`,
      label: `lifecycle#${round} t${i}`,
      cols: int(r, 40, 120),
      rows: int(r, 10, 40),
      intervalMs,
      frames: Math.max(5, Math.floor((durationMs * int(r, 40, 80)) / 100 / intervalMs)),
      exitCode: int(r, 0, 9),
      inputTotal: int(r, 0, 2000),
      startAt: int(r, 0, Math.round(durationMs * 0.2)),
      detachP: pick(r, [0.01, 0.03, 0.06]),
    };
  });

  const env = {
    t0: performance.now(),
    children: [],
    // Every daemon start of the round, failed ones too (a start says hello before it can fail): {began, listening}.
    get starts() {
      return ctx.daemon.history.filter((h) => h.began >= this.t0);
    },
  };
  const keeperAtStart = ctx.daemon.keeperPid;
  ctx.proxy.arm(true);
  const log = [];
  const eventsDone = (async () => {
    for (let i = 0; i < events.length; i++) {
      const wait = env.t0 + eventTimes[i] - performance.now();
      if (wait > 0) await sleep(wait);
      debug('event', events[i], { daemon: ctx.daemon.pid });
      log.push(await runEvent(ctx, events[i], eventStream));
      debug('event', 'done', log.at(-1));
    }
  })();
  try {
    await Promise.all([
      eventsDone,
      ...piped.map((s) => pipedChild(ctx, env, s).catch((err) => ctx.fail(`${s.label}: ${err.stack ?? err}`))),
      ...terminals.map((s) => terminalChild(ctx, env, s).catch((err) => ctx.fail(`${s.label}: ${err.stack ?? err}`))),
    ]);
  } finally {
    ctx.proxy.arm(false);
  }
  if (ctx.verbose && !DEBUG) for (const l of log) console.log(`    ${l}`);
  await checkRestartCounts(ctx, env, round);
  const keeperNow = ctx.daemon.keeperPid;
  if (keeperAtStart !== undefined && keeperNow !== undefined && keeperNow !== keeperAtStart && env.starts.length > 0) {
    ctx.fail(`the keeper changed during the round (pid ${keeperAtStart} → ${keeperNow})`);
  }
  ctx.stats.detaches = (ctx.stats.detaches ?? 0) + env.children.reduce((s, c) => s + c.detaches, 0);
}

/**
 * process.list after the round: every child is listed with the exit it had, its terminal size, its stdin count, and
 * a restart count between the daemon starts that certainly came after its spawn and those that may have.
 */
async function checkRestartCounts(ctx, env, round) {
  const c = await newClient(ctx, false);
  let list;
  try {
    list = (await c.list()).processes;
  } finally {
    await c.close();
  }
  for (const st of env.children) {
    const e = list.find((p) => p.id === st.id);
    if (!e) {
      ctx.fail(`lifecycle#${round}: ${st.id} is not in process.list after the round`);
      continue;
    }
    const min = env.starts.filter((s) => s.listening !== undefined && s.began > st.readyAt).length;
    const max = env.starts.filter((s) => (s.listening ?? s.ended ?? Number.POSITIVE_INFINITY) > st.spawnAt).length;
    if (e.restarts < min || e.restarts > max) {
      ctx.fail(
        `lifecycle#${round}: ${st.id} says it survived ${e.restarts} restart(s); between ${min} and ${max} daemon start(s) happened while it was kept`,
      );
    }
    if (st.exit && (e.running || e.exitCode !== st.exit.exitCode)) {
      ctx.fail(
        `lifecycle#${round}: ${st.id} is listed ${e.running ? 'running' : `with exit ${e.exitCode}`}, its exit frame said ${st.exit.exitCode}`,
      );
    }
    if (!st.terminal && st.exit && !st.gaps.length && e.stdinApplied !== st.sent) {
      ctx.fail(`lifecycle#${round}: ${st.id} lists stdinApplied ${e.stdinApplied}, the client sent ${st.sent}`);
    }
    if (st.terminalSize && (e.pty?.cols !== st.terminalSize.cols || e.pty?.rows !== st.terminalSize.rows)) {
      ctx.fail(`lifecycle#${round}: ${st.id} lists size ${JSON.stringify(e.pty)}, it was resized to ${JSON.stringify(st.terminalSize)}`);
    }
  }
}
