/**
 * Issue 10 (1): a child's orphan record is on disk, complete, before its process.spawn reply leaves the daemon.
 *
 * Before the fix the record was written after the reply, so a daemon SIGKILLed within a millisecond of the reply
 * leaked the child past the next start; and an unreadable record was deleted without a word. Since issue 16 the
 * keeper writes the records (a SIGKILLed daemon's children are adopted, not reaped): what must not leak a child is a
 * SIGKILLed keeper.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, fixture, tempDir, until } from '../helpers/daemon.js';
import { killQuietly, liveKeeper, processLive } from '../helpers/procfs.js';
import { RpcClient } from '../helpers/rpc.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Connections that keep ~2000 files.stat requests in flight until stopped. */
async function busyThreadPool(d: Daemon): Promise<() => void> {
  const socks: RpcClient[] = [];
  for (let i = 0; i < 8; i++) {
    const c = await RpcClient.connect(d.socket, d.token);
    const line = `${JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'files.stat', auth: d.token, params: { path: d.dir } })}\n`;
    c.socket.on('data', (chunk: Buffer) => {
      let n = 0;
      for (let k = chunk.indexOf(10); k !== -1; k = chunk.indexOf(10, k + 1)) n++;
      if (!c.socket.destroyed) c.socket.write(line.repeat(n));
    });
    c.socket.write(line.repeat(250));
    socks.push(c);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  return () => {
    for (const c of socks) c.destroy();
  };
}

describe('orphan records are written before the spawn reply', () => {
  it('a keeper SIGKILLed (with its daemon) right after a spawn reply leaks no child: the next daemon reaps it', async () => {
    const leaked: number[] = [];
    for (let round = 0; round < 3; round++) {
      const d = await Daemon.start({ args: ['-no-login-path'] });
      const dir = d.dir;
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      // Keep the daemon's thread pool busy (files.stat by the thousand), as a loaded host does: the reply needs
      // no pool work after the fork, while a record written after it waits behind the queue.
      const stop = await busyThreadPool(d);
      const keeper = liveKeeper(d.dir)!;
      const c = await RpcClient.connect(d.socket, d.token);
      // Pipelined spawns; the daemon dies in the same tick as the first reply reaches us.
      const pids: number[] = [];
      const replies = new Promise<void>((resolve) => {
        c.socket.on('data', (chunk: Buffer) => {
          for (const line of chunk.toString().split('\n')) {
            const m = /"pid":(\d+)/.exec(line);
            if (m) {
              if (pids.length === 0) {
                process.kill(keeper.pid, 'SIGKILL');
                d.proc.kill('SIGKILL');
              }
              pids.push(Number(m[1]));
            }
          }
          resolve();
        });
      });
      const spawnLines = Array.from({ length: 4 }, (_, i) =>
        JSON.stringify({
          jsonrpc: '2.0',
          id: i + 1,
          method: 'process.spawn',
          auth: d.token,
          params: { id: `p${i}`, ...fixture('ignore-sigterm'), wantPid: true },
        }),
      ).join('\n');
      c.sendRaw(`${spawnLines}\n`);
      await replies;
      await d.exited;
      stop();
      for (const pid of pids) cleanup.push(() => killQuietly(pid));
      expect(pids.length).toBeGreaterThan(0);
      // The successor, on the same directory.
      const next = await Daemon.start({ dir, token: d.token, args: ['-no-login-path'] });
      cleanup.push(() => next.stop());
      for (const pid of pids) {
        const gone = await until(() => !processLive(pid), 8000, `child ${pid} to be reaped`).catch(() => false);
        if (!gone) leaked.push(pid);
      }
      await next.stop();
    }
    expect(leaked).toEqual([]);
  });
});

describe('the order of the record and the reply, seen in the system calls', () => {
  it('the record is renamed into children/ before the spawn reply is written', async () => {
    const trace = path.join(tempDir('strace-'), 'trace.txt');
    cleanup.push(() => rmSync(path.dirname(trace), { recursive: true, force: true }));
    const d = await Daemon.start({
      args: ['-no-login-path'],
      // Every thread (-f): the record's file calls run on libuv's pool, the reply's write on the main thread.
      wrapper: ['strace', '-f', '-qq', '-s', '120', '-e', 'trace=openat,rename,renameat,renameat2,write,writev', '-o', trace],
    });
    cleanup.push(() => d.stop());
    const c = await d.client();
    const r = await c.call('process.spawn', { id: 'traced', ...fixture('ignore-sigterm'), wantPid: true });
    await until(() => existsSync(path.join(d.dir, 'children', `${r.pid}.json`)), 5000, 'the record');
    await d.stop();
    const lines = readFileSync(trace, 'utf8').split('\n');
    const reply = lines.findIndex((l) => /write[v]?\(\d+, .*\\"result\\":\{\\"success\\":true,\\"pid\\":/.test(l));
    const record = lines.findIndex((l) => l.includes(`children/${r.pid}.json`) && !l.includes('unfinished'));
    expect(reply, 'the spawn reply in the trace').toBeGreaterThan(-1);
    expect(record, 'the record file in the trace').toBeGreaterThan(-1);
    expect(record, `record at trace line ${record}, reply at ${reply}`).toBeLessThan(reply);
    killQuietly(r.pid);
  });
});

/** Live processes whose environment holds `NAME=value`. */
function markedLive(marker: string): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${n}/environ`).includes(`${marker}\0`) && processLive(Number(n))) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

describe('a record that cannot be written', () => {
  it('fails the spawn with a clear error and kills the child, which was never acknowledged', async () => {
    const d = await Daemon.start({ args: ['-no-login-path'] });
    cleanup.push(() => d.stop());
    const children = path.join(d.dir, 'children');
    rmSync(children, { recursive: true, force: true });
    writeFileSync(children, 'not a directory\n'); // every record write now fails with ENOTDIR, even as root
    const marker = `ORPHAN_TEST=${Math.random().toString(36).slice(2)}`;
    const c = await d.client();
    const r = await c.request('process.spawn', { id: 'unrecorded', ...fixture('ignore-sigterm'), env: { ORPHAN_TEST: marker.split('=')[1] } });
    expect(r.error?.code).toBe(-32603);
    expect(r.error?.message).toMatch(/cannot record child \d+ in .*children: .*not a directory \(the child was killed\)/);
    await until(() => markedLive(marker).length === 0, 5000, 'the unrecorded child to die');
    expect(d.log()).toMatch(/Process unrecorded: cannot record child/);
  });
});

describe('the reaper and records it cannot use', () => {
  it('logs an unreadable or incomplete record and leaves it in place', async () => {
    const d = await Daemon.start({ args: ['-no-login-path'] });
    const dir = d.dir;
    await d.stop().catch(() => {});
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(path.join(dir, 'children'), { mode: 0o700 });
    writeFileSync(path.join(dir, 'children', '4242.json'), '{"pid":4242,"startTi', { mode: 0o600 });
    writeFileSync(path.join(dir, 'children', '.4243.json.0a1b2c3d.tmp'), '{"pid":4243', { mode: 0o600 });
    const next = await Daemon.start({ dir, args: ['-no-login-path'] });
    cleanup.push(() => next.stop());
    expect(next.log()).toMatch(/child record .*children\/4242\.json is not a complete record; left alone/);
    expect(next.log()).toMatch(/incomplete child record .*\.4243\.json\.0a1b2c3d\.tmp .*left alone/);
    expect(existsSync(path.join(dir, 'children', '4242.json'))).toBe(true);
  });
});
