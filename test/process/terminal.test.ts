/**
 * Terminal processes over the real daemon (issue 13): process.spawn `pty`, process.resize, `resize` and `screen`
 * frames, through the wire and through the client library's TerminalScreen. The daemon runs with a small test-only
 * replay cap (CLAUSTRUM_TEST_REPLAY_CAP_BYTES) where a test needs a program's start evicted.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, type OutputItem, type ProcessHandle, renderScreen, TerminalScreen } from '../../src/client/index.js';
import { linesText } from '../fixtures/lib/lines.mjs';
import { Daemon, fixture, ROOT, sleep, until } from '../helpers/daemon.js';
import { seeded } from '../helpers/random.js';
import type { RpcClient } from '../helpers/rpc.js';
import { headlessTerminal, type Outcome, outcomeOf, outcomeOfTerminal } from '../helpers/screen.js';

/** The replay cap of the daemon that evicts: a few frames of the drawing fixture. */
const SMALL_CAP = 16 * 1024;
/** What draw-alt-screen writes once it has drawn everything (with `stay`): OSC 2 ; drawn BEL. */
const DRAWN = '\x1b]2;drawn\x07';

let d: Daemon;
let small: Daemon;
beforeAll(async () => {
  [d, small] = await Promise.all([
    Daemon.start({ args: ['-no-login-path'] }),
    Daemon.start({ args: ['-no-login-path'], env: { CLAUSTRUM_TEST_REPLAY_CAP_BYTES: String(SMALL_CAP) } }),
  ]);
});
afterAll(async () => {
  await Promise.all([d?.stop(), small?.stop()]);
});

function clientOf(daemon: Daemon): Promise<Client> {
  return connect({ socket: daemon.socket, token: daemon.token });
}

/** A handle's output items, collected as they come, with its stdout as text. */
function follow(proc: ProcessHandle | { output(): AsyncIterable<OutputItem> }) {
  const items: OutputItem[] = [];
  let done = false;
  let failure: unknown;
  void (async () => {
    try {
      for await (const item of proc.output()) items.push(item);
    } catch (err) {
      failure = err;
    }
    done = true;
  })();
  const text = () =>
    Buffer.concat(items.flatMap((i) => (i.type === 'stdout' || i.type === 'stderr' || i.type === 'screen' ? [i.data] : []))).toString('utf8');
  return {
    items,
    text,
    get done() {
      return done;
    },
    get failure() {
      return failure;
    },
    waitFor: (pattern: RegExp, ms = 20_000) => until(() => pattern.test(text()) || done, ms, `${pattern} in ${JSON.stringify(text().slice(-300))}`),
    /** The seq of the last item taken (a screen's included). */
    lastSeq: () => {
      for (let i = items.length - 1; i >= 0; i--) {
        const it = items[i]!;
        if (it.type !== 'gap') return it.seq;
      }
      return 0;
    },
  };
}

/** The stdout bytes a raw client received for `id`, frame by frame. */
function stdoutFrames(c: RpcClient, id: string, upToSeq = Number.POSITIVE_INFINITY): Buffer[] {
  return c
    .frames(id)
    .filter((f) => f.stream === 'stdout' && f.seq <= upToSeq)
    .map((f) => Buffer.from(f.data!, 'base64'));
}

describe('a process on a pseudo-terminal', () => {
  it('`tty` names a terminal; `stty size` reports the spawn size, then the size after process.resize', async () => {
    const client = await clientOf(d);
    try {
      const tty = client.spawn({ command: 'tty', pty: { cols: 80, rows: 24 } });
      const ttyOut = follow(tty);
      expect((await tty.exited).status).toBe(0);
      expect(ttyOut.text()).toMatch(/^\/dev\/pts\/\d+\r\n$/);

      const proc = client.spawn({ command: '/bin/sh', args: ['-c', 'stty size; read x; stty size'], pty: { cols: 91, rows: 27 } });
      const out = follow(proc);
      await out.waitFor(/27 91\r\n/);
      await proc.resize(120, 40);
      await proc.write('\r'); // Enter: the terminal turns it into the newline `read` waits for
      expect((await proc.exited).status).toBe(0);
      expect(out.text()).toBe('27 91\r\n\r\n40 120\r\n');
      // The resize is a frame between the two sizes, so a replay knows the size in force at every point.
      const kinds = out.items.map((i) => (i.type === 'resize' ? `resize ${i.cols}x${i.rows}` : i.type));
      expect(kinds.indexOf('resize 120x40')).toBeGreaterThan(0);
      const firstSize = out.items.findIndex((i) => i.type === 'stdout' && i.data.toString().includes('27 91'));
      const secondSize = out.items.findIndex((i) => i.type === 'stdout' && i.data.toString().includes('40 120'));
      expect(firstSize).toBeLessThan(kinds.indexOf('resize 120x40'));
      expect(secondSize).toBeGreaterThan(kinds.indexOf('resize 120x40'));
    } finally {
      await client.close();
    }
  });

  it('a size the daemon refuses is a RangeError before anything is sent', async () => {
    const client = await clientOf(d);
    try {
      expect(() => client.spawn({ command: 'tty', pty: { cols: 0, rows: 24 } })).toThrow(RangeError);
      expect(() => client.spawn({ command: 'tty', pty: { cols: 80, rows: 1001 } })).toThrow(/1 to 1000/);
      const proc = client.spawn({ command: 'cat', pty: { cols: 1000, rows: 1000 } });
      await proc.ready;
      await expect(proc.resize(1001, 10)).rejects.toThrow(RangeError);
      await proc.resize(1, 1);
      await proc.kill('KILL');
      await proc.exited;
    } finally {
      await client.close();
    }
  });

  it('a program that writes 20 KB and exits loses no byte, in 100 runs', async () => {
    const file = path.join(d.dir, 'lines-20k.txt');
    const text = linesText(20480);
    writeFileSync(file, text);
    const want = Buffer.from(text.toString('latin1').replace(/\n/g, '\r\n'), 'latin1'); // the terminal's ONLCR
    const client = await clientOf(d);
    const failures: string[] = [];
    try {
      for (let batch = 0; batch < 25; batch++) {
        await Promise.all(
          [0, 1, 2, 3].map(async (k) => {
            const proc = client.spawn({ command: 'cat', args: [file], pty: { cols: 80, rows: 24 } });
            const chunks: Buffer[] = [];
            for await (const c of proc.stdout) chunks.push(c);
            const got = Buffer.concat(chunks);
            const exit = await proc.exited;
            if (exit.status !== 0 || !got.equals(want))
              failures.push(`run ${batch * 4 + k}: status ${exit.status}, ${got.length} of ${want.length} bytes`);
          }),
        );
      }
    } finally {
      await client.close();
    }
    expect(failures).toEqual([]);
  });

  it('a 1 MiB paste arrives whole and in order', async () => {
    const rand = seeded(1331);
    const paste = Buffer.from(Array.from({ length: 1 << 20 }, () => Math.floor(rand() * 256)));
    const client = await clientOf(d);
    try {
      const proc = client.spawn({ ...fixture('read-slowly', String(paste.length), '0', '65536', '5'), pty: { cols: 80, rows: 24 } });
      const out = follow(proc);
      await out.waitFor(/ready\r\n/);
      await proc.write(paste);
      expect((await proc.exited).status).toBe(0);
      expect(out.text()).toContain(`got ${paste.length} ${createHash('sha256').update(paste).digest('hex')}\r\n`);
    } finally {
      await client.close();
    }
  });
});

describe("a terminal's descriptors", () => {
  it('reach no other child: a piped child started while terminals live holds none of them', async () => {
    const client = await clientOf(d);
    try {
      const terminals = [0, 1, 2].map(() => client.spawn({ command: 'sleep', args: ['60'], pty: { cols: 80, rows: 24 } }));
      await Promise.all(terminals.map((t) => t.ready));
      const probe = client.spawn({ command: '/bin/sh', args: ['-c', 'for f in /proc/self/fd/*; do readlink "$f"; done'] });
      const chunks: Buffer[] = [];
      for await (const c of probe.stdout) chunks.push(c);
      const targets = Buffer.concat(chunks).toString().trim().split('\n');
      expect(targets.length).toBeGreaterThanOrEqual(3); // its pipes, at least
      expect(targets.filter((t) => t.startsWith('/dev/pts') || t === '/dev/ptmx')).toEqual([]);
      await Promise.all(terminals.map((t) => t.kill('KILL')));
    } finally {
      await client.close();
    }
  });
});

describe('reattaching to a program whose start was evicted', () => {
  it('draws the screen the complete output draws: a screen frame, then the retained frames (library and wire)', async () => {
    const owner = await small.client();
    const id = 'alt-evicted';
    await owner.call('process.spawn', { id, ...fixture('draw-alt-screen', '3', '3000', '0', 'stay'), pty: { cols: 80, rows: 24 } });
    await until(() => Buffer.concat(stdoutFrames(owner, id)).includes(DRAWN), 30_000, 'the drawing');
    const complete = stdoutFrames(owner, id);
    expect(Buffer.concat(complete).length).toBeGreaterThan(4 * SMALL_CAP); // its start is long gone
    const whole = await outcomeOf(complete, 80, 24);
    expect(whole.screen.alternate).toBe(true);

    // The library: attach with the screen as it is now, render with TerminalScreen.
    const client = await clientOf(small);
    try {
      const proc = client.attach(id, { screen: true });
      const out = follow(proc);
      await proc.ready;
      await until(() => out.lastSeq() >= proc.lastSeq, 10_000, 'the replay');
      expect(out.items[0]).toMatchObject({ type: 'screen', cols: 80, rows: 24, replay: true });
      expect(out.items.filter((i) => i.type === 'gap')).toEqual([]);
      const screen = new TerminalScreen({ cols: 80, rows: 24 });
      for (const item of out.items) screen.apply(item);
      await screen.flushed();
      expect(outcomeOfTerminal(screen.terminal)).toEqual(whole);
      expect(screen.read()).toMatchObject({ lines: whole.screen.lines, cursor: whole.screen.cursor, alternate: true });
      screen.dispose();
      // renderScreen gives the same text from the same items.
      expect((await renderScreen(out.items, { cols: 80, rows: 24 })).lines).toEqual(whole.screen.lines);
      proc.detach();
    } finally {
      await client.close();
    }

    // The wire: a reattach from seq 1 (evicted) gets the screen frame unasked.
    const raw = await small.client();
    const reply = await raw.call('process.reattach', { id, fromSeq: 1 });
    const frames = raw.messages().filter((m) => m.type === 'stream' && m.processId === id);
    expect(frames[0]).toMatchObject({ stream: 'screen', cols: 80, rows: 24 });
    expect(frames[0].seq).toBeGreaterThanOrEqual(reply.firstSeq - 1);
    expect(raw.messages().filter((m) => m.type === 'gap')).toEqual([]);
    const rest = frames.slice(1).map((f) => {
      expect(f.seq).toBeGreaterThan(frames[0].seq);
      return Buffer.from(f.data, 'base64');
    });
    expect(await outcomeOf([Buffer.from(frames[0].data, 'base64'), ...rest], 80, 24)).toEqual(whole);
    await raw.call('process.kill', { id, signal: 'KILL' });
  });

  it('the same at 50 random points during a run: screen + frames == the complete output up to the same seq', async () => {
    const owner = await small.client();
    const id = 'alt-points';
    // About 300 KB in some 150 writes 10 ms apart: the points fall while it draws.
    await owner.call('process.spawn', { id, ...fixture('draw-alt-screen', '5', '8000', '10', 'stay'), pty: { cols: 80, rows: 24 } });
    await until(() => Buffer.concat(stdoutFrames(owner, id)).length > 2 * SMALL_CAP, 30_000, 'output past the cap');
    const rand = seeded(50);
    const points: { covered: number; screen: Buffer | undefined; frames: Buffer[]; ownerAt: number }[] = [];
    for (let p = 0; p < 50; p++) {
      await sleep(Math.floor(rand() * 20));
      const o = await small.client();
      await o.call('process.observe', { id, screen: true });
      const got = o.messages().filter((m) => m.type === 'stream' && m.processId === id);
      o.destroy();
      expect(o.messages().filter((m) => m.type === 'gap')).toEqual([]);
      const screen = got[0]?.stream === 'screen' ? Buffer.from(got[0].data, 'base64') : undefined;
      const frames = got.filter((f) => f.stream === 'stdout').map((f) => Buffer.from(f.data, 'base64'));
      points.push({ covered: got.at(-1)!.seq, screen, frames, ownerAt: owner.frames(id).at(-1)?.seq ?? 0 });
    }
    await until(() => Buffer.concat(stdoutFrames(owner, id)).includes(DRAWN), 60_000, 'the drawing');
    const finalSeq = owner.frames(id).at(-1)!.seq;
    // Every point was past the eviction of the program's start, and most came while it drew.
    expect(points.filter((p) => p.screen !== undefined).length).toBe(50);
    expect(points.filter((p) => p.covered < finalSeq).length).toBeGreaterThan(0);

    // The complete output, rendered once, read at each point's seq.
    const term = headlessTerminal(80, 24);
    const all = owner.frames(id).filter((f) => f.stream === 'stdout');
    let fed = 0;
    const mismatches: number[] = [];
    for (const [n, point] of points.entries()) {
      while (fed < all.length && all[fed]!.seq <= point.covered) {
        term.write(Buffer.from(all[fed]!.data!, 'base64'));
        fed++;
      }
      await new Promise<void>((resolve) => term.write('', resolve));
      const want: Outcome = outcomeOfTerminal(term);
      const got = await outcomeOf([point.screen!, ...point.frames], 80, 24);
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(n);
    }
    term.dispose();
    expect(mismatches).toEqual([]);
    await owner.call('process.kill', { id, signal: 'KILL' });
  }, 120_000);
});

describe('terminal queries in replayed output', () => {
  it('produce no input to the program; live ones are answered', async () => {
    const owner = await d.client();
    const id = 'answers';
    // The owner answers nothing: the program's first questions stay in its output, unanswered.
    await owner.call('process.spawn', { id, ...fixture('report-answers'), pty: { cols: 80, rows: 24 } });
    await until(() => Buffer.concat(stdoutFrames(owner, id)).includes('asked 1'), 20_000, 'the questions');

    const client = await clientOf(d);
    try {
      const proc = client.attach(id, { screen: true });
      const answered: Buffer[] = [];
      const screen = new TerminalScreen({
        cols: 80,
        rows: 24,
        onAnswer: (a) => {
          answered.push(a);
          void proc.write(a);
        },
      });
      const items: OutputItem[] = [];
      void (async () => {
        for await (const item of proc.output()) {
          items.push(item);
          screen.apply(item);
        }
      })().catch(() => {});
      await proc.ready;
      await until(() => items.at(-1) !== undefined && (items.at(-1) as { seq: number }).seq >= proc.lastSeq, 10_000, 'the replay');
      await screen.flushed();
      // The replay asked twice (DA, cursor position); the emulator answered both, and both answers were dropped.
      expect(items.every((i) => i.type === 'gap' || i.replay === true)).toBe(true);
      expect(screen.droppedAnswers).toBe(2);
      expect(answered).toEqual([]);

      await proc.write('\x01');
      await until(async () => /^input ?$/m.test(await flushedText(screen)), 20_000, 'the first report');
      expect(await flushedText(screen)).not.toMatch(/^input [0-9a-f]/m); // nothing reached the program

      // Asked live, the same questions are answered (so the test can tell dropping from not answering).
      await proc.write('\x02');
      await until(() => answered.length >= 2, 20_000, 'live answers');
      await proc.write('\x01');
      await until(async () => /^input 1b5b/m.test(await flushedText(screen)), 20_000, 'the second report');
      await proc.write('\x04');
      expect((await proc.exited).status).toBe(0);
      screen.dispose();
    } finally {
      await client.close();
    }
  });
});

async function flushedText(screen: TerminalScreen): Promise<string> {
  await screen.flushed();
  return screen.text();
}

describe('an observer of a terminal that falls behind', () => {
  it('gets a fresh screen instead of a gap', async () => {
    const client = await clientOf(small);
    const o = await small.client({ keepFrames: false });
    try {
      const proc = client.spawn({ command: 'yes', args: ['a flooding terminal line'], pty: { cols: 80, rows: 24 } });
      let ownerBytes = 0;
      proc.on('stdout', (b) => (ownerBytes += b.length));
      await proc.ready;
      await o.call('process.observe', { id: proc.id });
      o.socket.pause();
      // Far more than the observer's connection and socket buffers hold, and than the replay cap.
      await until(() => ownerBytes > 16 * 1024 * 1024, 60_000, 'the owner to read 16 MiB');
      const screen = o.waitFor((m) => m.type === 'stream' && m.processId === proc.id && m.stream === 'screen', 30_000);
      o.socket.resume();
      const frame = await screen;
      expect(o.tally(proc.id).gaps).toEqual([]);
      const drawn = await outcomeOf([Buffer.from(frame.data, 'base64')], frame.cols, frame.rows);
      expect(drawn.screen.lines.filter((l) => l === 'a flooding terminal line').length).toBeGreaterThan(20);
      await proc.kill('KILL');
      await proc.exited;
    } finally {
      o.destroy();
      await client.close();
    }
  });
});

describe('the client entry point', () => {
  it('does not load the headless terminal until a TerminalScreen is made', async () => {
    const script = `
      const { createRequire } = await import('node:module');
      const require = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))});
      const lib = await import(${JSON.stringify(path.join(ROOT, 'dist/src/client/index.js'))});
      const loaded = () => Object.keys(require.cache).some((k) => k.includes('@xterm/headless'));
      const before = loaded();
      new lib.TerminalScreen({ cols: 10, rows: 2 }).dispose();
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ before: false, after: true });
  });
});
