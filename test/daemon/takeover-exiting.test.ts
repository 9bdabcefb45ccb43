/**
 * A predecessor that is exiting when its successor reads the lock (superseded, it leaves on its own) has no command
 * line left: the successor waits for it to finish instead of judging it foreign and refusing to start, which left
 * no daemon at all. A live holder without a command line that does not exit is still refused, and never signalled.
 * (An exiting process is stood for by one that blanked its title: /proc shows no argv for either.)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { procStat, sandboxes } from '../helpers/cli.js';
import { until } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';

/** A node process with a blank command line that lives `ms` (forever when undefined). */
function blankHolder(ms: number | undefined) {
  const body = ms === undefined ? 'setInterval(() => {}, 1000)' : `setTimeout(() => {}, ${ms})`;
  const child = spawn(process.execPath, ['-e', `process.title = ''; ${body}`], { stdio: 'ignore' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, pid: child.pid!, exited };
}

describe('-serve over a lock whose holder has no command line', () => {
  const sandbox = sandboxes();

  async function lockedBy(sb: ReturnType<typeof sandbox>, pid: number): Promise<void> {
    await until(() => /^\0*$/.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1')), 10_000, 'the blank command line');
    mkdirSync(sb.dir, { mode: 0o700 });
    const record = { pid, startTime: procStat(pid)!.startTime, socket: sb.socket, role: 'serve' };
    writeFileSync(sb.file('daemon.lock'), JSON.stringify(record), { mode: 0o600 });
  }

  it('waits for an exiting holder and takes the directory over, signalling nothing', async () => {
    const sb = sandbox();
    const holder = blankHolder(400);
    sb.track(holder.pid);
    await lockedBy(sb, holder.pid);
    const r = await sb.serve();
    expect(r.code, r.stderr).toBe(0);
    expect(sb.lock()).toMatchObject({ pid: r.pid });
    expect(await holder.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses a live holder without a command line that does not exit, and leaves it running', async () => {
    const sb = sandbox();
    const holder = blankHolder(undefined);
    sb.track(holder.pid);
    await lockedBy(sb, holder.pid);
    const r = await sb.serve();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`is held by pid ${holder.pid}, which is not a claustrum daemon serving ${sb.socket}; not signalling it`);
    expect(processLive(holder.pid)).toBe(true);
    holder.child.kill('SIGKILL');
  });
});
