/**
 * Output delivery under load (issue 2 "Flow control and memory", "Replay buffer"; claustrum-wire.md §5–6): the 16 MiB
 * replay cap, lossless delivery to an attached receiver however fast the child writes, a stalled receiver dropped
 * after the stall timeout, and abrupt disconnects that nobody else notices.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture, sleep, until } from '../helpers/daemon.js';
import { firstFloodMismatch } from '../helpers/pattern.js';
import type { RpcClient, WireFrame } from '../helpers/rpc.js';
import { rawReply } from '../helpers/wire.js';

const MiB = 1024 * 1024;

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

function stdoutBytes(frames: WireFrame[]): Buffer {
  return Buffer.concat(frames.filter((f) => f.stream === 'stdout').map((f) => Buffer.from(f.data!, 'base64')));
}

/** Waits, without attaching to it, until a process has exited and its exit frame is in its replay buffer. */
async function untilExited(c: RpcClient, id: string): Promise<void> {
  await until(
    async () => {
      const r = await c.request('process.stdin', { id });
      return r.error?.message === 'Process not running';
    },
    60_000,
    `${id} to exit`,
  );
  // Reaped; killAndWait sends no signal now and answers once the exit frame is out.
  const r = await c.call('process.killAndWait', { id });
  expect(r.found && r.died).toBe(true);
}

/** Reattaches from seq 0 and returns the replayed frame lines (those before the reply) and the reply. */
async function replayAll(c: RpcClient, id: string): Promise<{ lines: string[]; result: any }> {
  c.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id: `replay-${id}`, method: 'process.reattach', params: { id, fromSeq: 0 }, auth: c.token })}\n`);
  const reply = await rawReply(c, `replay-${id}`);
  const at = c.lines.indexOf(reply);
  const frames = c.lines.slice(0, at).filter((l) => l.startsWith(`{"type":"stream","processId":${JSON.stringify(id)},`));
  return { lines: frames, result: JSON.parse(reply).result };
}

function daemonRss(d: Daemon): number {
  const status = readFileSync(`/proc/${d.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe('delivery and the replay buffer', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('keeps at most 16 MiB of serialized frames per process, whole frames, oldest dropped, the exit frame last', async () => {
    const TOTAL = 24 * MiB;
    const a = await d.client();
    await a.call('process.spawn', { id: 'cap', ...fixture('flood', String(TOTAL)) });
    a.destroy(); // no receiver from here on: the child must never block

    const c = await d.client();
    await untilExited(c, 'cap');
    const { lines, result } = await replayAll(c, 'cap');
    const frames: WireFrame[] = lines.map((l) => JSON.parse(l));

    expect(result).toMatchObject({ found: true, running: false });
    expect(result.firstSeq).toBeGreaterThan(1);
    expect(frames[0]!.seq).toBe(result.firstSeq);
    expect(frames.map((f) => f.seq)).toEqual(range(result.firstSeq, result.lastSeq));
    expect(frames.at(-1)).toEqual({ type: 'stream', processId: 'cap', stream: 'exit', seq: result.lastSeq, exitCode: 0 });

    const serialized = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(serialized).toBeLessThanOrEqual(16 * MiB);
    // Only whole frames are dropped, so the buffer is full to within one frame (at most ~44 KiB serialized).
    expect(serialized).toBeGreaterThan(16 * MiB - 64 * 1024);
    for (const f of frames.slice(0, -1)) expect(Buffer.from(f.data!, 'base64').length).toBeLessThanOrEqual(32 * 1024);

    // What is kept is the newest output, intact.
    const tail = stdoutBytes(frames);
    expect(firstFloodMismatch(tail, TOTAL - tail.length)).toBe(-1);
  });

  it('delivers 40 MB to a connected client losslessly, every byte in place, in 32 KiB frames with consecutive seqs', async () => {
    const TOTAL = 40_000_000;
    const c = await d.client();
    await c.call('process.spawn', { id: 'big', ...fixture('flood', String(TOTAL)) });
    const exit = await c.waitExit('big', 60_000);
    expect(exit).toMatchObject({ exitCode: 0 });
    const frames = c.frames('big');
    expect(frames.map((f) => f.seq)).toEqual(range(1, exit.seq));
    for (const f of frames.slice(0, -1)) expect(Buffer.from(f.data!, 'base64').length).toBeLessThanOrEqual(32 * 1024);
    const out = stdoutBytes(frames);
    expect(out.length).toBe(TOTAL);
    expect(firstFloodMismatch(out)).toBe(-1);
  });

  it('holds the child back, not the output, while its receiver does not read: lossless, and the daemon does not swell', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'held', ...fixture('flood') });
    await until(() => c.frames('held').length >= 100, 20_000, 'the flood to start');
    c.socket.pause();
    await sleep(300);
    const before = daemonRss(d);
    await sleep(1500);
    const grown = daemonRss(d) - before;
    c.socket.resume();
    // Without flow control the daemon would queue the child's output for this socket: hundreds of MiB a second.
    expect(grown).toBeLessThan(100 * MiB);
    const seen = c.frames('held').length;
    await until(() => c.frames('held').length >= seen + 200, 20_000, 'delivery to resume');
    await c.call('process.kill', { id: 'held', signal: 'KILL' });
    const exit = await c.waitExit('held');
    const frames = c.frames('held');
    expect(frames.map((f) => f.seq)).toEqual(range(1, exit.seq));
    expect(firstFloodMismatch(stdoutBytes(frames))).toBe(-1);
  });

  it('abrupt disconnects mid-stream disturb nobody else, and the abandoned processes run on', async () => {
    const bystander = await d.client();

    const a = await d.client();
    await a.call('process.spawn', { id: 'noisy', ...fixture('flood') });
    await until(() => a.frames('noisy').length >= 20, 20_000, 'the flood to reach its receiver');
    a.destroy();

    // A client that vanishes with its spawn request in flight, and many that come and go.
    const b = await d.client();
    b.sendRaw(
      `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'process.spawn', params: { id: 'noisy2', ...fixture('flood') }, auth: d.token })}\n`,
    );
    b.destroy();
    for (let i = 0; i < 30; i++) {
      const e = await d.client();
      e.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id: i, method: 'server.ping', auth: d.token })}\n{"jsonrpc":`);
      e.destroy();
    }

    expect(await bystander.call('server.ping')).toEqual({ pong: true });
    await bystander.call('process.spawn', { id: 'calm', command: 'sh', args: ['-c', 'echo calm'] });
    expect(await bystander.waitExit('calm')).toMatchObject({ exitCode: 0 });
    expect(bystander.output('calm').toString()).toBe('calm\n');

    await until(async () => (await bystander.call('process.reattach', { id: 'noisy2', fromSeq: 1e15 })).found, 10_000, 'noisy2 to exist');
    for (const id of ['noisy', 'noisy2']) {
      const r = await bystander.call('process.reattach', { id, fromSeq: 1e15 });
      expect(r).toMatchObject({ found: true, running: true });
      await bystander.call('process.kill', { id, signal: 'KILL' });
      await bystander.waitExit(id);
    }
    expect(bystander.isClosed).toBe(false);
    expect(d.alive).toBe(true);
    expect(d.log()).not.toContain('recovered panic');
  });
});

describe('a stalled receiver', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start({ args: ['-stall-timeout', '1s'] });
  });
  afterAll(() => d.stop());

  it('is disconnected and logged after the stall timeout; the child runs on into its replay buffer', async () => {
    const TOTAL = 30 * MiB;
    // A raw connection that sends its spawn and never reads a byte.
    const stalled = net.connect(d.socket);
    await new Promise((resolve) => stalled.once('connect', resolve));
    stalled.on('error', () => {});
    const gone = new Promise((resolve) => stalled.once('close', resolve));
    stalled.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'process.spawn', params: { id: 'st', ...fixture('flood', String(TOTAL)) }, auth: d.token })}\n`,
    );

    await until(() => d.log().includes('made no progress for 1s'), 20_000, 'the stall to be logged');
    expect(d.log()).toMatch(/receiver unix#\d+ made no progress for 1s with \d+ bytes unsent; dropping it/);
    stalled.resume(); // read what the kernel still holds, then see the close
    await gone;

    const c = await d.client();
    await untilExited(c, 'st');
    const { lines, result } = await replayAll(c, 'st');
    const frames: WireFrame[] = lines.map((l) => JSON.parse(l));
    expect(result).toMatchObject({ found: true, running: false });
    expect(result.firstSeq).toBeGreaterThan(1);
    expect(frames.map((f) => f.seq)).toEqual(range(result.firstSeq, result.lastSeq));
    expect(frames.at(-1)).toMatchObject({ stream: 'exit', exitCode: 0 });
    const tail = stdoutBytes(frames);
    expect(firstFloodMismatch(tail, TOTAL - tail.length)).toBe(-1);
  });
});

describe('a slow receiver', () => {
  let d: Daemon;
  beforeAll(async () => {
    // Far above the receiver's pauses, and above any scheduling hiccup of a busy CI machine.
    d = await Daemon.start({ args: ['-stall-timeout', '5s'] });
  });
  afterAll(() => d.stop());

  it('a receiver that pauses its reading now and then is not dropped and loses nothing', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'slowread', ...fixture('flood', String(12 * MiB)) });
    for (let i = 0; i < 4; i++) {
      await sleep(100);
      c.socket.pause();
      await sleep(100);
      c.socket.resume();
    }
    const exit = await c.waitExit('slowread', 60_000);
    const frames = c.frames('slowread');
    expect(frames.map((f) => f.seq)).toEqual(range(1, exit.seq));
    const out = stdoutBytes(frames);
    expect(out.length).toBe(12 * MiB);
    expect(firstFloodMismatch(out)).toBe(-1);
    expect(c.isClosed).toBe(false);
  });
});

describe('an owner behind a journal backlog (the keeper reads ahead of the daemon)', () => {
  // A replay buffer far smaller than what the keeper journals before the hold reaches it: the daemon must not read
  // the backlog into the buffer faster than the owner takes it, or the buffer evicts frames the owner was never sent.
  // (1 MiB: the daemon may read one journal buffer, 256 KiB, past the moment the owner starts to lag.)
  const SMALL_CAP = 1024 * 1024;
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start({ env: { CLAUSTRUM_TEST_REPLAY_CAP_BYTES: String(SMALL_CAP) } });
  });
  afterAll(() => d.stop());

  it('gets every frame of a flood 16 times its replay cap while it pauses its reading', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'backlog', ...fixture('flood', String(16 * SMALL_CAP)) });
    await until(() => c.frames('backlog').length >= 1, 20_000, 'the flood to start');
    for (let i = 0; i < 3; i++) {
      c.socket.pause();
      await sleep(300);
      c.socket.resume();
      await sleep(50);
    }
    const exit = await c.waitExit('backlog', 60_000);
    const frames = c.frames('backlog');

    expect(frames.map((f) => f.seq)).toEqual(range(1, exit.seq));
    const out = stdoutBytes(frames);
    expect(out.length).toBe(16 * SMALL_CAP);
    expect(firstFloodMismatch(out)).toBe(-1);
  });
});
