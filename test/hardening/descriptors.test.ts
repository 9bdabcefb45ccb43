/**
 * Issue 10 (6): descriptors the daemon inherited above 2 never reach its children, and a spawn that fails for lack of
 * descriptors (EMFILE) leaks none.
 *
 * Before the fix a secret file open on fd 42 when the daemon started was readable by every child it spawned.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, tempDir, until } from '../helpers/daemon.js';
import { liveKeeper } from '../helpers/procfs.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const SECRET = 'the-secret-on-fd-42';

describe('inherited descriptors', () => {
  it('a file open on fd 42 when the daemon starts is not open in any child', async () => {
    const dir = tempDir('fd42-');
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const secret = path.join(dir, 'secret');
    writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
    // The shell opens the file on fd 42 (not close-on-exec) and execs the daemon, as a careless parent would.
    const d = await Daemon.start({ wrapper: ['bash', '-c', 'exec 42<"$0"; exec "$@"', secret] });
    cleanup.push(() => d.stop());
    const c = await d.client();
    await c.call('process.spawn', { id: 'reader', command: 'sh', args: ['-c', 'ls /proc/self/fd; cat /proc/self/fd/42'] });
    const exit = await c.waitExit('reader');
    const out = `${c.output('reader').toString()}${c.output('reader', 'stderr').toString()}`;
    expect(out).not.toContain(SECRET);
    expect(exit.exitCode).not.toBe(0); // fd 42 is not there to read
    expect(d.log()).toMatch(/closed \d+ inherited descriptor\(s\) so no child inherits them: (.*, )?42 \(.*secret\)/);
  });
});

/** Descriptors open in `pid`. */
function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

describe('a spawn at the descriptor limit', () => {
  it('fails or succeeds, and in both cases leaves the descriptor count where it was', async () => {
    const d = await Daemon.start({ args: ['-no-login-path'] });
    cleanup.push(() => d.stop());
    const c = await d.client();
    // The keeper forks the children (src/keeper/): its descriptors are the ones a spawn uses.
    const pid = liveKeeper(d.dir)!.pid;
    // Warm up: the first spawn loads what every later one shares.
    await c.call('process.spawn', { id: 'warm', command: 'true' });
    await c.waitExit('warm');
    await sleep(200);
    const [soft, hard] = execFileSync('prlimit', ['--pid', String(pid), '--nofile', '--raw', '--noheadings', '-o', 'SOFT,HARD'], { encoding: 'utf8' })
      .trim()
      .split(/\s+/);
    const outcomes: string[] = [];
    for (let headroom = 0; headroom <= 7; headroom++) {
      const base = fdCount(pid);
      execFileSync('prlimit', ['--pid', String(pid), `--nofile=${base + headroom}:${hard}`]);
      const r = await c.request('process.spawn', { id: `edge${headroom}`, command: 'sleep', args: ['0.2'] });
      execFileSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`]);
      if (r.result) await c.waitExit(`edge${headroom}`);
      outcomes.push(`${headroom}:${r.error ? r.error.message : 'spawned'}`);
      await until(() => fdCount(pid) <= base, 3000, 'descriptors back').catch(() => undefined);
      expect(fdCount(pid), `headroom ${headroom} (${outcomes.at(-1)})`).toBe(base);
    }
    // The edge was reached: at least one spawn failed for lack of descriptors.
    expect(
      outcomes.some((o) => /too many open files/.test(o)),
      outcomes.join(' | '),
    ).toBe(true);
  });
});
