/**
 * Processes outlive the daemon (issue 16): each path by which a daemon goes away while its processes run, through
 * the real executable, with the client library as a user's program would hold them.
 *
 * - a `-serve` over a running daemon, `-restart`, and an upgrade (a second build directory, another version): the
 *   successor adopts every process; a flooding child's output and the stdin written during the handovers arrive
 *   exactly once, its exit code is known, process.list counts the restarts and names the spawning instance;
 * - a SIGKILLed daemon: a terminal keeps drawing while no daemon runs, and a client attaching to the next daemon
 *   with `screen: true` sees the very screen the whole output draws; a child that exits meanwhile has its exit code;
 * - a SIGKILLed keeper: the daemon exits 1 saying why, the next start reaps the orphaned child, and its output is
 *   still there, its exit reported as unknown (`killedBy: "lost"`);
 * - state written by a newer claustrum (meta.json version 99): refused clearly, nothing touched.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, type OutputItem, renderScreen } from '../../src/client/index.js';
import { drawAltScreen } from '../fixtures/lib/drawing.mjs';
import { patternBlock } from '../fixtures/lib/pattern.mjs';
import { BANNER, procStat, runCli, type Sandbox, sandboxes } from '../helpers/cli.js';
import { fixture, ROOT, sleep, until } from '../helpers/daemon.js';
import { killKeeper, liveKeeper, processLive } from '../helpers/procfs.js';
import { seeded } from '../helpers/random.js';
import { outcomeOf } from '../helpers/screen.js';

const RECONNECT = { initialDelayMs: 10, maxDelayMs: 100, giveUpAfterMs: 30_000 };
/** The version the second build directory claims: what an upgrade looks like from the outside. */
const NEXT_VERSION = '99.0.0-upgrade-test';
/** What draw-alt-screen writes once it has drawn everything (with `stay`): OSC 2 ; drawn BEL. */
const DRAWN = '\x1b]2;drawn\x07';

/** A copy of this build that says it is NEXT_VERSION: the "newer claustrum" an upgrade starts. */
let nextBuild: string;
beforeAll(() => {
  nextBuild = mkdtempSync(path.join(tmpdir(), 'cl-next-'));
  cpSync(path.join(ROOT, 'dist'), path.join(nextBuild, 'dist'), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(nextBuild, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(nextBuild, 'node_modules'));
  const info = path.join(nextBuild, 'dist/build-info.json');
  writeFileSync(info, JSON.stringify({ ...JSON.parse(readFileSync(info, 'utf8')), version: NEXT_VERSION }));
});
afterAll(() => rmSync(nextBuild, { recursive: true, force: true }));

/** `<bin> -serve -socket …` (self-daemonizing) from any build; resolves with the new daemon's pid and instance. */
async function serveFrom(bin: string, sb: Sandbox, args: readonly string[] = []): Promise<{ pid: number; instanceId: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, '-serve', '-socket', sb.socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const m = BANNER.exec(stdout.trimEnd());
  if (code !== 0 || !m) throw new Error(`${bin} -serve failed (${code}): ${stdout}${stderr}`);
  sb.track(Number(m[2]), true);
  return { pid: Number(m[2]), instanceId: m[3]!, stderr };
}

function gone(pid: number): Promise<unknown> {
  return until(() => !processLive(pid), 10_000, `pid ${pid} to exit`);
}

async function collect(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of iterable) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('a daemon replaced while its processes run', () => {
  const sandbox = sandboxes();

  it('-serve over it, -restart and an upgrade: output and stdin exactly once, exit code, restarts and spawner listed, metrics', async () => {
    const sb = sandbox();
    const first = await sb.start(['-no-login-path', '-stall-timeout', '7s', '-metrics-addr', '127.0.0.1:0']);
    const keeper = liveKeeper(sb.dir);
    expect(keeper).toBeDefined();
    const client = await connect({ socket: sb.socket, reconnect: RECONNECT });
    let lost: unknown;
    try {
      const proc = client.spawn({ ...fixture('pattern-echo', '512'), wantPid: true });
      proc.on('lost', (e) => (lost = e));
      const output = collect(proc.stdout);
      output.catch(() => undefined); // awaited below; a failed test must not add an unhandled rejection
      await proc.ready;
      const pid = proc.pid!;
      const startTime = procStat(pid)!.startTime;

      // Stdin written without pause across every handover: random sizes from a seed, each write awaited.
      const random = seeded(16);
      const sent = createHash('sha256');
      let sentBytes = 0;
      let writing = true;
      const writer = (async () => {
        let n = 0;
        while (writing) {
          const chunk = Buffer.alloc(1 + Math.floor(random() * 3000), n++ & 0xff);
          sent.update(chunk);
          sentBytes += chunk.length;
          await proc.write(chunk);
          await sleep(Math.floor(random() * 5));
        }
      })();

      await sleep(300);
      // 1. Another -serve on the same socket.
      const second = await sb.start(['-no-login-path', '-stall-timeout', '7s', '-metrics-addr', '127.0.0.1:0']);
      await gone(first.pid);
      await until(() => client.connected && client.instanceId === second.instanceId, 15_000, 'the client on the second daemon');
      await sleep(300);
      // 2. -restart: the same flags again, read from the running daemon's command line.
      const r = await runCli(['-restart', '-socket', sb.socket], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      const third = BANNER.exec(r.stdout.trimEnd());
      expect(third, r.stdout).not.toBeNull();
      sb.track(Number(third![2]), true);
      await gone(second.pid);
      const argv = readFileSync(`/proc/${third![2]}/cmdline`, 'utf8').split('\0');
      // -restart's mark for its -serve is read by the launcher and goes no further.
      expect(readFileSync(`/proc/${third![2]}/environ`, 'utf8')).not.toContain('CLAUSTRUM_HANDOVER');
      expect(argv).toEqual(expect.arrayContaining(['-stall-timeout=7s', '-no-login-path=true', '-metrics-addr=127.0.0.1:0']));
      await until(() => client.connected && client.instanceId === third![3], 15_000, 'the client on the restarted daemon');
      await sleep(300);
      // 3. An upgrade: a newer build's -serve.
      const fourth = await serveFrom(path.join(nextBuild, 'dist/cmd/claustrum.js'), sb, ['-no-login-path', '-metrics-addr', '127.0.0.1:0']);
      await gone(Number(third![2]));
      await until(() => client.connected && client.instanceId === fourth.instanceId, 15_000, 'the client on the upgraded daemon');
      await sleep(300);
      writing = false;
      await writer;
      await proc.end();
      const exit = await proc.exited;
      expect(exit).toMatchObject({ exitCode: 0 });
      expect(lost).toBeUndefined();

      // Every byte of the pattern once, in order, then the trailer with what the child read.
      const out = await output;
      const text = out.toString('latin1');
      const trailer = /\nSTDIN (\d+) ([0-9a-f]{64})\nPATTERN (\d+)\n$/.exec(text);
      expect(trailer, JSON.stringify(text.slice(-200))).not.toBeNull();
      const patternBytes = Number(trailer![3]);
      expect(out.length).toBe(patternBytes + trailer![0].length);
      expect(out.subarray(0, patternBytes).equals(patternBlock(0, patternBytes))).toBe(true);
      expect({ bytes: Number(trailer![1]), sha256: trailer![2] }).toEqual({ bytes: sentBytes, sha256: sent.digest('hex') });
      expect(patternBytes).toBeGreaterThan(0);

      // The same child all along, under the same keeper; the list says who spawned it and how often it moved.
      expect(procStat(pid)?.startTime ?? startTime).toBe(startTime);
      expect(liveKeeper(sb.dir)?.pid).toBe(keeper!.pid);
      const raw = await sb.client();
      const { processes } = await raw.call('process.list', {});
      expect(processes.find((p: { id: string }) => p.id === proc.id)).toMatchObject({ pid, instance: first.instanceId, restarts: 3 });
      const info = await raw.call('server.info', {});
      expect(info).toMatchObject({ version: NEXT_VERSION, instanceId: fourth.instanceId });
      const metrics = await (await fetch(`${info.metrics}/metrics`)).text();
      expect(metrics).toMatch(/^claustrum_handovers_total 1$/m);
      expect(metrics).toMatch(/^claustrum_processes_adopted_total 1$/m);
      const ps = await runCli(['-ps', '-socket', sb.socket]);
      expect(ps.stdout).toMatch(/RESTARTS/);
      expect(ps.stdout).toContain(first.instanceId.slice(0, 8));
      expect(sb.log()).toContain(`[daemon] taking over from daemon ${third![3]}`);
    } finally {
      await client.close();
    }
  });

  it('-restart with no daemon: exit 1 saying there is nothing to restart and how to start one', async () => {
    const sb = sandbox();
    const r = await runCli(['-restart', '-socket', sb.socket]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`-restart: nothing to restart on ${sb.socket} (no daemon); start one with claustrum -serve -socket ${sb.socket}`);
  });
});

describe('a daemon SIGKILLed while its processes run', () => {
  const sandbox = sandboxes();

  it('a terminal draws on meanwhile; the next daemon shows the screen the whole output draws; an exit meanwhile is known', async () => {
    const sb = sandbox();
    // A replay cap of a few frames: the screen a late client gets is the daemon's model of it, rebuilt after the crash
    // from the snapshot the dead daemon persisted and the journal, not a replay of every frame.
    const small = { env: { CLAUSTRUM_TEST_REPLAY_CAP_BYTES: String(16 * 1024) } };
    const first = await sb.start(['-no-login-path'], small);
    const client = await connect({ socket: sb.socket, reconnect: RECONNECT });
    const drawing = { seed: 7, steps: 600, cols: 80, rows: 24, stay: true };
    try {
      const term = client.spawn({
        ...fixture('draw-alt-screen', String(drawing.seed), String(drawing.steps), '2', 'stay'),
        pty: { cols: 80, rows: 24 },
      });
      const held: OutputItem[] = [];
      void (async () => {
        for await (const item of term.output()) held.push(item);
      })().catch(() => undefined);
      const quitter = client.spawn({ command: 'sh', args: ['-c', 'echo started; sleep 1; echo bye; exit 7'] });
      const quitterOut = collect(quitter.stdout);
      quitterOut.catch(() => undefined);
      await until(() => held.length > 3, 15_000, 'the terminal drawing');
      await quitter.ready;
      process.kill(first.pid, 'SIGKILL');
      await gone(first.pid);
      // Nothing serves for a while: the child exits, the terminal keeps drawing into the keeper's journal.
      await sleep(1500);
      const second = await sb.start(['-no-login-path'], small);
      expect(sb.log()).toMatch(/adopted 2 process\(es\) from the keeper \(pid \d+\): 1 running, 1 exited/);
      await until(() => client.connected && client.instanceId === second.instanceId, 15_000, 'the client on the next daemon');
      expect(await quitter.exited).toMatchObject({ exitCode: 7 });
      expect((await quitterOut).toString()).toBe('started\nbye\n');

      // What the terminal passes on: the drawing with each LF turned into CR LF (the line discipline's onlcr).
      const bytes = Buffer.from(Buffer.from(drawAltScreen(drawing).bytes).toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
      const drawn = () => {
        const last = held.at(-1);
        return last?.type === 'stdout' && last.data.toString('latin1').endsWith(DRAWN);
      };
      await until(drawn, 30_000, 'the whole drawing');
      // The client that held it all along drew exactly that screen across the crash, with no gap: whatever the small
      // cap evicted before it reattached came as a screen item standing for it.
      const whole = await outcomeOf([bytes], 80, 24);
      expect(held.filter((i) => i.type === 'gap')).toEqual([]);
      expect((await renderScreen(held, { cols: 80, rows: 24 })).lines).toEqual(whole.screen.lines);
      const stdout = Buffer.concat(held.flatMap((i) => (i.type === 'stdout' ? [i.data] : [])));
      if (!held.some((i) => i.type === 'screen')) expect(stdout.equals(bytes)).toBe(true);
      await client.close();

      // A client that was not there attaches with the screen as it is now.
      const late: Client = await connect({ socket: sb.socket });
      try {
        const items: OutputItem[] = [];
        const attached = late.attach(term.id, { screen: true });
        void (async () => {
          for await (const item of attached.output()) items.push(item);
        })().catch(() => undefined);
        await until(() => items.some((i) => i.type === 'screen'), 10_000, 'the screen item');
        await sleep(200);
        expect(items[0]).toMatchObject({ type: 'screen', cols: 80, rows: 24 });
        expect((await renderScreen(items, { cols: 80, rows: 24 })).lines).toEqual(whole.screen.lines);
        await late.killAndWait(term.id, { signal: 'KILL' });
      } finally {
        await late.close();
      }
    } finally {
      await client.close();
    }
  });
});

describe('a keeper SIGKILLed under a running daemon', () => {
  const sandbox = sandboxes();

  it('the daemon exits 1 saying why; the next start reaps the child and keeps its output, the exit unknown ("lost")', async () => {
    const sb = sandbox();
    const first = await sb.start(['-no-login-path']);
    const c = await sb.client();
    const r = await c.call('process.spawn', { id: 'orphan', command: 'sh', args: ['-c', 'echo before; sleep 300'], wantPid: true });
    sb.track(r.pid);
    await until(() => c.output('orphan').toString() === 'before\n', 10_000, 'the first line');
    const keeperPid = await killKeeper(sb.dir);
    expect(keeperPid).toBeDefined();
    await gone(first.pid);
    expect(sb.log()).toMatch(/ERROR \[daemon\] lost the keeper \(the keeper connection closed\): its children lost their output's reader; exiting/);
    expect(processLive(r.pid)).toBe(true);

    await sb.start(['-no-login-path']);
    await gone(r.pid);
    expect(sb.log()).toMatch(/reaping orphaned child pid \d+ \(sh\) of dead keeper instance/);
    expect(readFileSync(sb.file('keeper/keeper.log'), 'utf8')).toContain(
      `process orphan (pid ${r.pid}) was left by a keeper that died: its exit is unknown; its output is kept`,
    );
    const again = await sb.client();
    const reattach = await again.call('process.reattach', { id: 'orphan', fromSeq: 0 });
    expect(reattach).toMatchObject({ found: true, running: false });
    const exit = await again.waitExit('orphan');
    expect(exit).toMatchObject({ exitCode: -1, killedBy: 'lost' });
    expect(again.output('orphan').toString()).toBe('before\n');
  });
});

describe('state a newer claustrum wrote', () => {
  const sandbox = sandboxes();

  it('a process directory of state version 99 is refused: exit 1, what to run or remove, the files untouched', async () => {
    const sb = sandbox();
    const procs = sb.file('keeper/procs');
    mkdirSync(path.join(procs, 'from-the-future'), { recursive: true, mode: 0o700 });
    const meta = JSON.stringify({ version: 99, id: 'x', note: 'a format this build does not know' });
    writeFileSync(path.join(procs, 'from-the-future/meta.json'), meta, { mode: 0o600 });
    const r = await sb.serve(['-no-login-path']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `the keeper did not start: ${procs}/from-the-future/meta.json is state version 99; this claustrum reads up to version 1. A newer claustrum wrote it: run that one, or remove ${procs} (it holds the output of 1 process(es))`,
    );
    expect(readFileSync(path.join(procs, 'from-the-future/meta.json'), 'utf8')).toBe(meta);
    expect(liveKeeper(sb.dir)).toBeUndefined();
    expect(sb.exists('rpc.sock')).toBe(false);
  });
});
