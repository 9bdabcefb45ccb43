import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedDescriptors, guardedStdio, nonCloexecDescriptors, prepareDescriptorGuard, track, untrack } from '../../src/terminal/descriptors.js';
import { PTY_PACKAGE, PTY_PACKAGE_VERSION, tryLoad } from '../../src/terminal/native.js';
import {
  checkTerminalSize,
  DEFAULT_TERM,
  PTY_EXIT_DRAIN_MS,
  PTY_READ_BURST_BYTES,
  PTY_MAX_COLS,
  PTY_MAX_ROWS,
  PTY_WRITE_RETRY_MAX_MS,
  PTY_WRITE_RETRY_MIN_MS,
  TerminalSpawnError,
} from '../../src/terminal/pty.js';
import { ScreenModel } from '../../src/terminal/screen.js';
import { linesText } from '../fixtures/lib/lines.mjs';
import { sleep, until } from '../helpers/daemon.js';
import { killQuietly, processLive } from '../helpers/procfs.js';
import { seeded } from '../helpers/random.js';
import { runTerminal } from '../helpers/terminal.js';

const NODE = process.execPath;
const fixture = (name: string) => path.join('test/fixtures', name);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'claustrum-pty-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a program on a terminal', () => {
  it('`tty` names the terminal', async () => {
    const run = await runTerminal('/usr/bin/tty', []);
    const exit = await run.exited;
    expect(run.text()).toBe(`${run.terminal.ptsName}\n`);
    expect(run.terminal.ptsName).toMatch(/^\/dev\/pts\/\d+$/);
    expect(exit).toEqual({ exitCode: 0, signal: null, drained: true });
  });

  it('is the session leader, with the terminal as its controlling terminal and its group in the foreground', async () => {
    // The program reads its own /proc stat: pid, pgid, sid, tty_nr, tpgid.
    const run = await runTerminal('/bin/sh', ['-c', 'exec cat /proc/self/stat']);
    await run.exited;
    const text = run.text();
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const [pgid, sid, ttyNr, tpgid] = [Number(f[2]), Number(f[3]), Number(f[4]), Number(f[5])];
    expect([pgid, sid, tpgid]).toEqual([run.terminal.pid, run.terminal.pid, run.terminal.pid]);
    const n = Number(run.terminal.ptsName.split('/').pop());
    expect(ttyNr).toBe((136 << 8) | (n & 0xff) | ((n & ~0xff) << 12)); // major 136: Unix98 PTY slaves
  });

  it('gets TERM (xterm-256color unless named), the environment and the working directory given', async () => {
    const run = await runTerminal('/bin/sh', ['-c', 'echo "$TERM|$GREETING|$(pwd)"'], { env: { GREETING: 'hi', PATH: '/usr/bin:/bin' }, cwd: dir });
    await run.exited;
    expect(DEFAULT_TERM).toBe('xterm-256color');
    expect(run.text()).toBe(`xterm-256color|hi|${dir}\n`);
  });

  it('`stty size` reports the spawn size, then the size after resize(), and the program gets SIGWINCH', async () => {
    const run = await runTerminal('/bin/sh', ['-c', 'stty -echo; trap "echo winch" WINCH; stty size; echo ready; read line; stty size'], {
      cols: 91,
      rows: 33,
    });
    await run.waitFor(/ready\n/);
    expect(run.text()).toBe('33 91\nready\n');
    run.terminal.resize(120, 40);
    expect([run.terminal.cols, run.terminal.rows]).toEqual([120, 40]);
    await run.waitFor(/winch\n/);
    run.terminal.write(Buffer.from('\n'));
    await run.exited;
    expect(run.text()).toBe('33 91\nready\nwinch\n40 120\n');
  });

  it('reports a program killed by a signal', async () => {
    const run = await runTerminal('/bin/sh', ['-c', 'kill -TERM $$']);
    expect(await run.exited).toEqual({ exitCode: null, signal: 'SIGTERM', drained: true });
  });

  it('answers no terminal query itself, and neither does a screen model fed the output', async () => {
    const model = new ScreenModel({ cols: 80, rows: 24 });
    let seq = 0;
    const run = await runTerminal(NODE, [fixture('query-terminal.mjs'), '300']);
    const exit = await run.exited;
    for (const read of run.reads) model.output(++seq, read, true);
    await model.whenParsed();
    model.dispose();
    expect(exit.exitCode).toBe(0);
    expect(run.text()).toMatch(/answers 0\n$/);
  });
});

describe('the exit tail', () => {
  it(`a program that writes 20 KB and exits at once loses nothing, 100 runs of 100 (node-pty: 27 of 40 with cat)`, async () => {
    const file = path.join(dir, 'twenty.txt');
    const expected = linesText(20 * 1024);
    writeFileSync(file, expected);
    const bad: number[] = [];
    for (let i = 0; i < 100; i++) {
      const run = await runTerminal('/bin/cat', [file]);
      const exit = await run.exited;
      if (run.text() !== expected.toString() || !exit.drained || exit.exitCode !== 0) bad.push(i);
    }
    expect(bad).toEqual([]);
  });

  it('the same from write-then-exit.mjs (one write, then process.exit)', async () => {
    for (let i = 0; i < 5; i++) {
      const run = await runTerminal(NODE, [fixture('write-then-exit.mjs'), '20480']);
      expect((await run.exited).drained).toBe(true);
      expect(run.text()).toBe(linesText(20480).toString());
    }
  });

  it(`waits at most PTY_EXIT_DRAIN_MS (${PTY_EXIT_DRAIN_MS} ms by default) for a slave a background process holds open`, async () => {
    // Without job control the background sleep is in the foreground group, which the kernel sends SIGHUP when the
    // leader exits: it must ignore HUP to outlive the leader and keep the slave open.
    const run = await runTerminal('/bin/sh', ['-c', 'trap "" HUP; sleep 30 & echo "bg $!"'], { drainMs: 300 });
    let exitedYet = false;
    void run.exited.then(() => (exitedYet = true));
    await run.leaderExited;
    expect(exitedYet).toBe(false); // the leader is reaped; the exit waits for the drain
    const exit = await run.exited;
    const bg = Number(/bg (\d+)/.exec(run.text())?.[1]);
    killQuietly(bg);
    expect(exit).toEqual({ exitCode: 0, signal: null, drained: false });
    expect(run.terminal.write(Buffer.from('x'))).toBe(false);
    expect(await run.terminal.signal('SIGKILL')).toEqual([]); // reported: nothing of it is signalled any more
  });
});

describe('reading', () => {
  it(`a flood is read in chunks of at most PTY_READ_BURST_BYTES (${PTY_READ_BURST_BYTES} bytes), many past the kernel's 4 KB per read`, async () => {
    const file = path.join(dir, 'four-mib.txt');
    const expected = linesText(4 << 20);
    writeFileSync(file, expected);
    const run = await runTerminal('/bin/cat', [file]);
    expect((await run.exited).drained).toBe(true);
    expect(run.text()).toBe(expected.toString());
    const sizes = run.reads.map((r) => r.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(PTY_READ_BURST_BYTES);
    // A wakeup reads on while the kernel has more: reads larger than one kernel read (4 KB) are the rule in a flood.
    expect(sizes.filter((n) => n > 8192).length).toBeGreaterThan(sizes.length / 4);
  });
});

describe('input', () => {
  it('a 1 MiB paste arrives whole and in order into a program that reads slowly', async () => {
    const rand = seeded(1);
    const paste = Buffer.from(Array.from({ length: 1 << 20 }, () => Math.floor(rand() * 256)));
    const run = await runTerminal(NODE, [fixture('read-slowly.mjs'), String(paste.length), '0', '65536', '20']);
    await run.waitFor(/ready\n/);
    // In pieces of random size, as a client's writes would come.
    for (let at = 0; at < paste.length; ) {
      const n = 1 + Math.floor(rand() * 100_000);
      expect(run.terminal.write(paste.subarray(at, at + n))).toBe(true);
      at += n;
    }
    await run.waitFor(/got \d+ [0-9a-f]{64}\n/, 60_000);
    expect(run.text()).toContain(`got ${paste.length} ${createHash('sha256').update(paste).digest('hex')}\n`);
    // The program's answer can be read (in the same wakeup as the echo before it) before the last write's completion
    // reaches the event loop: the queue is empty once that completion has run.
    await until(() => run.terminal.queuedBytes === 0, 5000, 'the input queue to empty');
    await run.exited;
  });

  it('retries paced while the program reads nothing: a handful of write calls, not a busy loop', async () => {
    const stallMs = 1500;
    const paste = Buffer.alloc(1 << 20, 0x61);
    const run = await runTerminal(NODE, [fixture('read-slowly.mjs'), String(paste.length), String(stallMs), String(1 << 20), '0']);
    await run.waitFor(/ready\n/);
    run.terminal.write(paste);
    const before = run.terminal.writeCalls;
    const cpu = process.cpuUsage();
    await sleep(stallMs - 300);
    const calls = run.terminal.writeCalls - before;
    const cpuMs = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / 1000;
    // A retry without a pause made 143,000 calls a second (node-pty#956); doubling pauses from
    // PTY_WRITE_RETRY_MIN_MS up to PTY_WRITE_RETRY_MAX_MS make at most log2(max/min) + stall/max, about 30 here.
    expect([PTY_WRITE_RETRY_MIN_MS, PTY_WRITE_RETRY_MAX_MS]).toEqual([1, 50]);
    expect(calls).toBeLessThan(100);
    expect(run.terminal.queuedBytes).toBeGreaterThan(0);
    console.log(`pacing: ${calls} write calls and ${cpuMs.toFixed(1)} ms of this process's CPU in ${stallMs - 300} ms of stall`);
    await run.waitFor(/got \d+/, 60_000);
    expect(run.text()).toContain(`got ${paste.length} ${createHash('sha256').update(paste).digest('hex')}`);
    await run.exited;
  });
});

describe('flow control', () => {
  it('pause() stops reading, so the program blocks; resume() lets it go on', async () => {
    const run = await runTerminal('/usr/bin/yes', ['flood']);
    await run.waitFor(/flood\n/);
    run.terminal.pause();
    expect(run.terminal.paused).toBe(true);
    await sleep(200); // at most one read already under way lands after pause()
    const held = run.output().length;
    await sleep(300);
    expect(run.output().length).toBe(held);
    run.terminal.resume();
    await run.waitFor(new RegExp(`^[\\s\\S]{${held + 100_000},}`), 10_000);
    await run.terminal.signal('SIGKILL');
    expect((await run.exited).signal).toBe('SIGKILL');
  });
});

describe('signals', () => {
  // dash with job control: a background job and a foreground job, each in its own process group; the foreground
  // job's group is the terminal's foreground group. (The trap keeps the shell alive: dash re-raises SIGINT on
  // itself when its foreground job dies of it.)
  const script = 'trap "echo got-int" INT; set -m; sleep 1000 & echo "bg $!"; sleep 1001; echo after-fg; exec sleep 1002';

  it('INT goes to the foreground process group only; KILL to the whole session', async () => {
    const run = await runTerminal('/bin/sh', ['-c', script]);
    await run.waitFor(/bg \d+\n/);
    const bg = Number(/bg (\d+)/.exec(run.text())![1]);
    // The shell hands the terminal to the foreground job's group once it has forked it.
    const fg = await until(
      async () => {
        const g = await run.terminal.foregroundGroup();
        return g !== undefined && g !== run.terminal.pid ? g : undefined;
      },
      5000,
      'the foreground job to get the terminal',
    );
    expect(fg).not.toBe(bg);
    expect(await run.terminal.signal('SIGINT')).toEqual([-fg]);
    await run.waitFor(/after-fg\n/);
    expect(processLive(run.terminal.pid)).toBe(true);
    expect(processLive(bg)).toBe(true);
    const killed = await run.terminal.signal('SIGKILL');
    expect(killed).toContain(run.terminal.pid);
    expect(killed).toContain(bg);
    expect((await run.exited).signal).toBe('SIGKILL');
    await until(() => !processLive(bg), 5000, 'the background job to die');
  });

  it('TERM and HUP go to the leader when it is the foreground group', async () => {
    for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
      const run = await runTerminal('/bin/sleep', ['1000']);
      expect(await run.terminal.signal(sig)).toEqual([-run.terminal.pid]);
      expect(await run.exited).toEqual({ exitCode: null, signal: sig, drained: true });
    }
  });
});

/** Every descriptor of a live process, number -> target, read from outside so the listing opens nothing in it. */
async function descriptorsOf(pid: number): Promise<Map<number, string>> {
  // The spawn resolves at fork; until the exec the child is still closing and covering descriptors.
  await until(async () => (await readFile(`/proc/${pid}/cmdline`, 'utf8')).startsWith('/bin/sleep\0'), 5000, 'the exec');
  const fds = new Map<number, string>();
  for (const name of await readdir(`/proc/${pid}/fd`)) fds.set(Number(name), await readlink(`/proc/${pid}/fd/${name}`));
  return fds;
}

describe('descriptors', () => {
  it('a number closed and reused before its untrack() stays guarded (tracking counts)', () => {
    track(900);
    track(900); // a new PTY got the number before the old handle's close was reported
    untrack(900);
    expect(guardedDescriptors()).toContain(900);
    untrack(900);
    expect(guardedDescriptors()).not.toContain(900);
  });

  it("no descriptor of the daemon reaches a terminal's program: another terminal's master is covered by /dev/null", async () => {
    const first = await runTerminal('/bin/sleep', ['30']);
    await prepareDescriptorGuard();
    const leaky = await nonCloexecDescriptors();
    expect(leaky.length).toBeGreaterThan(0); // at least the first terminal's master is not close-on-exec
    expect(guardedDescriptors()).toEqual(expect.arrayContaining(leaky));
    const second = await runTerminal('/bin/sleep', ['30']);
    const fds = await descriptorsOf(second.terminal.pid);
    for (const run of [first, second]) {
      await run.terminal.signal('SIGKILL');
      await run.exited;
    }
    for (const fd of [0, 1, 2]) expect(fds.get(fd)).toBe(second.terminal.ptsName);
    for (const [fd, target] of fds) if (fd > 2) expect(`${fd} ${target}`).toBe(`${fd} /dev/null`);
    for (const fd of leaky) expect(fds.get(fd)).toBe('/dev/null');
  });

  it('guardedStdio covers the same descriptors for a piped child started by child_process', async () => {
    const first = await runTerminal('/bin/sleep', ['30']);
    const child = spawn('/bin/sleep', ['30'], { stdio: guardedStdio(['ignore', 'pipe', 'ignore']) });
    const fds = await descriptorsOf(child.pid!);
    child.kill('SIGKILL');
    await first.terminal.signal('SIGKILL');
    await first.exited;
    for (const [fd, target] of fds) if (fd > 2) expect(`${fd} ${target}`).toBe(`${fd} /dev/null`);
    expect([...fds.values()]).not.toContain('/dev/ptmx');
  });

  it('descriptors the daemon inherited without close-on-exec are covered too', async () => {
    // A separate Node process inherits a socket as fd 64 and starts a terminal. (Node marks the low inherited
    // descriptors close-on-exec at startup, 3 and 7 here, but not 64, 200 or the 251 a job runner passed.)
    const harness = `
      import { spawnTerminal } from ${JSON.stringify(path.resolve('dist/src/terminal/pty.js'))};
      import { readlinkSync, readFileSync } from 'node:fs';
      const flags = /flags:\\s+(\\d+)/.exec(readFileSync('/proc/self/fdinfo/64', 'utf8'))[1];
      let out = '';
      await spawnTerminal({ file: '/bin/readlink', args: ['/proc/self/fd/64'], env: process.env, cols: 80, rows: 24,
        onData: (b) => (out += b), onExit: () => process.stdout.write(readlinkSync('/proc/self/fd/64') + ' ' + flags + ' ' + out) });`;
    const stdio: ('ignore' | 'pipe' | 'inherit')[] = ['ignore', 'pipe', 'inherit'];
    while (stdio.length < 64) stdio.push('ignore');
    stdio.push('pipe');
    const r = spawnSync(NODE, ['--input-type=module', '-e', harness], { stdio, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const [own, flags, inChild] = r.stdout.trim().split(/\s+/);
    expect(own).toMatch(/^socket:/); // the harness has it, not close-on-exec…
    expect(Number.parseInt(flags!, 8) & 0o2000000).toBe(0);
    expect(inChild).toBe('/dev/null'); // …and the program got /dev/null in its place
  });
});

describe('limits and errors', () => {
  it('sizes from 1x1 to PTY_MAX_COLS x PTY_MAX_ROWS; anything else is refused with the reason', async () => {
    expect([PTY_MAX_COLS, PTY_MAX_ROWS]).toEqual([1000, 1000]);
    expect(checkTerminalSize(1, 1)).toBeUndefined();
    expect(checkTerminalSize(PTY_MAX_COLS, PTY_MAX_ROWS)).toBeUndefined();
    expect(checkTerminalSize(0, 24)).toMatch(/cols must be an integer from 1 to 1000, got 0/);
    expect(checkTerminalSize(PTY_MAX_COLS + 1, 24)).toMatch(/cols .* got 1001/);
    expect(checkTerminalSize(80, PTY_MAX_ROWS + 1)).toMatch(/rows .* got 1001/);
    expect(checkTerminalSize(80.5, 24)).toMatch(/cols/);
    await expect(runTerminal('/bin/true', [], { cols: 0 })).rejects.toThrow(RangeError);
    const run = await runTerminal('/bin/sleep', ['30']);
    expect(() => run.terminal.resize(80, 0)).toThrow(/rows must be/);
    await run.terminal.signal('SIGKILL');
    await run.exited;
  });

  it('a missing working directory fails the spawn with ENOENT', async () => {
    const err = await runTerminal('/bin/true', [], { cwd: path.join(dir, 'nope') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalSpawnError);
    expect((err as TerminalSpawnError).reason).toBe('ENOENT');
  });

  it('a program that cannot be executed exits 126 or 127 with the shell saying why on the terminal', async () => {
    const missing = await runTerminal(path.join(dir, 'no-such-program'), []);
    expect((await missing.exited).exitCode).toBe(127);
    expect(missing.text()).toMatch(/not found/);
  });

  it('an unusable native package is an error value that says what is missing and what to do', () => {
    const elsewhere = createRequire(path.join(tmpdir(), 'x.js'));
    const missing = tryLoad(elsewhere);
    expect(missing.ok).toBe(false);
    expect(!missing.ok && missing.error.message).toMatch(new RegExp(`${PTY_PACKAGE}@${PTY_PACKAGE_VERSION}.*not installed.*npm ci`));
    const here = createRequire(import.meta.url);
    const otherArch = tryLoad(here, 'linux', 'ia32');
    expect(!otherArch.ok && otherArch.error.message).toMatch(/@lydell\/node-pty-linux-ia32.*not installed/);
    const otherOs = tryLoad(here, 'darwin');
    expect(!otherOs.ok && otherOs.error.message).toMatch(/Linux only/);
    expect(tryLoad(here).ok).toBe(true);
  });

  it('importing the terminal modules loads neither the native binary nor xterm.js: only a terminal does', () => {
    const script = `
      import { createRequire } from 'node:module';
      const cache = () => Object.keys(createRequire(import.meta.url).cache).filter((k) => /pty\\.node|@xterm/.test(k)).length;
      const { spawnTerminal } = await import(${JSON.stringify(path.resolve('dist/src/terminal/pty.js'))});
      const { ScreenModel } = await import(${JSON.stringify(path.resolve('dist/src/terminal/screen.js'))});
      const before = cache();
      await new Promise((onExit) => spawnTerminal({ file: '/bin/true', args: [], env: process.env, cols: 80, rows: 24, onData() {}, onExit }));
      new ScreenModel({ cols: 80, rows: 24 }).dispose();
      console.log(before, cache());`;
    const r = spawnSync(NODE, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('0 3'); // pty.node, @xterm/headless, @xterm/addon-serialize
  });

  it('the pinned package is what is installed', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { optionalDependencies: Record<string, string> };
    expect(pkg.optionalDependencies[PTY_PACKAGE]).toBe(PTY_PACKAGE_VERSION);
  });
});
