/**
 * `-stop`: every word it can print, and what it removes or keeps in each case.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { until } from '../helpers/daemon.js';
import { procStat, sandboxes } from '../helpers/cli.js';
import { processLive } from '../helpers/procfs.js';

describe('-stop', () => {
  const sandbox = sandboxes();

  it('stopped: a live daemon is asked to shut down; -stop returns once it is gone and its files are removed', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    const r = await sb.stop();
    expect(r).toMatchObject({ code: 0, stdout: 'stopped\n', stderr: '' });
    expect(processLive(pid)).toBe(false);
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(false);
    // The log stays, with the shutdown in it.
    expect(sb.log()).toContain('[ServerHandler] server.shutdown received over RPC');
    expect(sb.log()).toContain('[Server] cleanup: closed 1 connection(s), killed 0 child process group(s)');
  });

  it('none: nothing there at all, and nothing is created', async () => {
    const sb = sandbox();
    const r = await sb.stop();
    expect(r).toMatchObject({ code: 0, stdout: 'none\n' });
    expect(sb.exists('')).toBe(false);
  });

  it('none: a stale socket, token and a lock of a dead pid are cleaned up', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    process.kill(pid, 'SIGKILL');
    await until(() => !processLive(pid), 10_000, 'daemon death');
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(true);
    const r = await sb.stop();
    expect(r).toMatchObject({ code: 0, stdout: 'none\n' });
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(false);
    expect(sb.exists('remote-server.log')).toBe(true);
  });

  it('terminated: the daemon is alive but its socket file is gone; it gets SIGTERM and exits', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    unlinkSync(sb.socket);
    const r = await sb.stop();
    expect(r).toMatchObject({ code: 0, stdout: 'terminated\n' });
    expect(processLive(pid)).toBe(false);
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(false);
    expect(sb.log()).toContain('received terminated; shutting down (children will be killed)');
  });

  it('killed: a SIGSTOPped daemon without its socket is SIGKILLed after the SIGTERM grace', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    unlinkSync(sb.socket);
    process.kill(pid, 'SIGSTOP');
    await until(() => procStat(pid)?.state === 'T', 5000, 'stopped state');
    const r = await sb.stop();
    expect(r).toMatchObject({ code: 0, stdout: 'killed\n' });
    expect(processLive(pid)).toBe(false);
    // The daemon never ran its teardown; -stop removed what it left.
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(false);
  });

  it('survivor: a lock naming a live process that is not a claustrum daemon is never signalled; nothing is removed', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pid = sleeper.pid!;
    sb.track(pid);
    const startTime = procStat(pid)!.startTime;
    const record = JSON.stringify({ pid, startTime, socket: sb.socket, role: 'serve' });
    writeFileSync(sb.file('daemon.lock'), record, { mode: 0o600 });
    writeFileSync(sb.file('daemon.token'), 'kept', { mode: 0o600 });
    const r = await sb.stop();
    expect(r).toMatchObject({ code: 0, stdout: 'survivor\n' });
    expect(processLive(pid)).toBe(true);
    expect(procStat(pid)!.state).not.toBe('T');
    expect(sb.read('daemon.lock')).toBe(record);
    expect(sb.read('daemon.token')).toBe('kept');
    sleeper.kill('SIGKILL');
  });

  it('survivor: a live claustrum daemon whose lock names another socket is not ours to signal', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    const lock = sb.lock();
    const forged = JSON.stringify({ ...lock, socket: `${sb.dir}/other.sock` });
    writeFileSync(sb.file('daemon.lock'), forged);
    unlinkSync(sb.socket);
    const r = await sb.stop();
    expect(r).toMatchObject({ code: 0, stdout: 'survivor\n' });
    expect(processLive(pid)).toBe(true);
    expect(sb.exists('daemon.token')).toBe(true);
  });
});
