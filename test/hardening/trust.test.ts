/**
 * Issue 10 (2): no shared directory is trusted, and a planted child record never makes the daemon signal anything.
 *
 * The attacker is a second local user: the suite runs as root in CI, so it drops to uid 65534 with setpriv for the
 * steps another user would take. Before the fix a root-owned 1777 directory (as /tmp) was accepted as the socket
 * directory, only the directory itself was checked (not its ancestors), and the reaper acted on any parseable
 * record: a record planted by another user killed a process of the daemon's user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { Daemon } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';

const NOBODY = 65534;
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function scratch(mode: number): string {
  const d = mkdtempSync(path.join(tmpdir(), 'claustrum-trust-'));
  chmodSync(d, mode);
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A process of the daemon's user that a planted record names: it must survive every start below. */
function victim(): { pid: number; record: string; proc: ChildProcess } {
  const proc = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  cleanup.push(() => proc.kill('SIGKILL'));
  const pid = proc.pid!;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
  // Its "daemon" is a pid that does not exist, so the reaper takes the child for an orphan of a dead daemon.
  const record = JSON.stringify({ pid, startTime, instance: 'planted', daemonPid: 4_000_000, daemonStartTime: '1', argv0: 'planted', at: 0 });
  return { pid, record, proc };
}

/** Runs a shell command as the second user. */
function asNobody(script: string): void {
  const r = spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), 'sh', '-c', script], { encoding: 'utf8' });
  expect(r.status, `${script}: ${r.stderr}`).toBe(0);
}

/** `claustrum -serve -foreground` on `socket`; resolves with its exit (or kills it after `ms` and says it served). */
async function serve(socket: string, ms = 4000): Promise<{ code: number | null; stderr: string; served: boolean }> {
  const r = await runCli(['-serve', '-foreground', '-no-login-path', '-socket', socket], { timeoutMs: ms });
  return { code: r.code, stderr: r.stderr, served: r.stdout.includes('listening on') };
}

describe('socket directories', () => {
  it('refuses a shared root-owned 1777 directory, where another user had planted children/ and a record', async () => {
    const shared = scratch(0o1777); // what /tmp is
    const v = victim();
    asNobody(`mkdir -m 0777 ${shared}/children && printf '%s' '${v.record}' > ${shared}/children/${v.pid}.json`);
    const r = await serve(path.join(shared, 'rpc.sock'));
    expect(r.served).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`claustrum: socket directory ${shared} is writable by other users (mode 1777); use a directory of mode 0700\n`);
    await sleep(300);
    expect(processLive(v.pid)).toBe(true);
  });

  it('refuses a directory whose ancestor other users can write without the sticky bit, or that another user owns', async () => {
    const open = scratch(0o777);
    mkdirSync(path.join(open, 'sub'), { mode: 0o700 });
    let r = await serve(path.join(open, 'sub', 'rpc.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`its ancestor ${open} is writable by other users without the sticky bit (mode 777)`);

    const theirs = scratch(0o755);
    chownSync(theirs, NOBODY, NOBODY);
    mkdirSync(path.join(theirs, 'sub'), { mode: 0o700 });
    r = await serve(path.join(theirs, 'sub', 'rpc.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`its ancestor ${theirs} belongs to uid ${NOBODY}, neither root nor this user`);

    // The other user cannot swap the directory out from under a link either: the real path is what is checked.
    const link = path.join(scratch(0o700), 'link');
    symlinkSync(path.join(open, 'sub'), link);
    r = await serve(path.join(link, 'rpc.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`its ancestor ${open} is writable by other users`);
  });

  it('accepts a private directory under a sticky shared one (mktemp -d in /tmp)', async () => {
    const sticky = scratch(0o1777);
    const dir = path.join(sticky, 'private');
    mkdirSync(dir, { mode: 0o700 });
    const d = await Daemon.start({ dir });
    cleanup.push(() => d.stop());
    const c = await d.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });
});

describe('child records another user planted', () => {
  it('a children/ directory that is not ours is not read, and the daemon refuses to start on it', async () => {
    const dir = scratch(0o700);
    const v = victim();
    mkdirSync(path.join(dir, 'children'), { mode: 0o777 });
    chownSync(path.join(dir, 'children'), NOBODY, NOBODY);
    chmodSync(path.join(dir, 'children'), 0o777);
    writeFileSync(path.join(dir, 'children', `${v.pid}.json`), v.record);
    chownSync(path.join(dir, 'children', `${v.pid}.json`), NOBODY, NOBODY);
    const r = await serve(path.join(dir, 'rpc.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`children: belongs to uid ${NOBODY}, not to the daemon's user`);
    await sleep(300);
    expect(processLive(v.pid)).toBe(true);
  });

  it('in our own children/, a record owned by another user or reached through a symlink is logged and left alone', async () => {
    const dir = scratch(0o700);
    const a = victim();
    const b = victim();
    mkdirSync(path.join(dir, 'children'), { mode: 0o700 });
    writeFileSync(path.join(dir, 'children', `${a.pid}.json`), a.record, { mode: 0o600 });
    chownSync(path.join(dir, 'children', `${a.pid}.json`), NOBODY, NOBODY);
    const elsewhere = path.join(scratch(0o755), 'record.json');
    writeFileSync(elsewhere, b.record);
    symlinkSync(elsewhere, path.join(dir, 'children', `${b.pid}.json`));
    const d = await Daemon.start({ dir, args: ['-no-login-path'] });
    cleanup.push(() => d.stop());
    expect(d.log()).toMatch(new RegExp(`children/${a.pid}\\.json belongs to uid ${NOBODY}, not to the daemon's user; left alone`));
    expect(d.log()).toMatch(new RegExp(`children/${b.pid}\\.json is a symbolic link; left alone`));
    await sleep(300);
    expect(processLive(a.pid)).toBe(true);
    expect(processLive(b.pid)).toBe(true);
  });
});
