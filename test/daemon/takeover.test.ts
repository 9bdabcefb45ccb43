/**
 * One daemon per socket: a second `-serve` evicts a verified predecessor, takes over a stale lock, and refuses
 * (signalling nothing) when the lock names a live process that is not one of ours.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { until } from '../helpers/daemon.js';
import { procStat, sandboxes } from '../helpers/cli.js';
import { processLive } from '../helpers/procfs.js';

describe('-serve on a socket that is already taken', () => {
  const sandbox = sandboxes();

  it('replaces a live predecessor: the old pid is gone, the new one serves, the log says it took over', async () => {
    const sb = sandbox();
    const first = await sb.start();
    const second = await sb.start();
    expect(second.pid).not.toBe(first.pid);
    expect(second.instanceId).not.toBe(first.instanceId);
    expect(processLive(first.pid)).toBe(false);
    expect(sb.lock()).toMatchObject({ pid: second.pid, instanceId: second.instanceId });
    const c = await sb.client();
    expect((await c.call('server.capabilities')).instanceId).toBe(second.instanceId);
    const log = sb.log();
    // The keeper tells the predecessor it is superseded: it leaves on its own, its processes handed over.
    expect(log).toContain(`[daemon] taking over from daemon ${first.instanceId}`);
    // The predecessor's own teardown did not take the newcomer's files with it.
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(true);
  });

  it('SIGKILLs a predecessor that does not go on SIGTERM (SIGSTOPped) and serves', async () => {
    const sb = sandbox();
    const first = await sb.start();
    process.kill(first.pid, 'SIGSTOP');
    await until(() => procStat(first.pid)?.state === 'T', 5000, 'stopped state');
    const second = await sb.start();
    expect(processLive(first.pid)).toBe(false);
    expect(sb.log()).toContain(`serve: previous daemon pid ${first.pid} ignored SIGTERM for 2000ms; sending SIGKILL`);
    expect(sb.log()).toContain(`[daemon] serve: previous owner of ${sb.dir}: killed`);
    const c = await sb.client();
    expect((await c.call('server.capabilities')).instanceId).toBe(second.instanceId);
  });

  it('takes over the stale lock and socket of a SIGKILLed daemon', async () => {
    const sb = sandbox();
    const first = await sb.start();
    process.kill(first.pid, 'SIGKILL');
    await until(() => !processLive(first.pid), 10_000, 'daemon death');
    expect(sb.lock().pid).toBe(first.pid);
    const second = await sb.start();
    expect(sb.lock()).toMatchObject({ pid: second.pid, instanceId: second.instanceId });
    expect(sb.log()).not.toContain('previous owner');
    const c = await sb.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });

  it('refuses, signalling nothing, when the lock names a live process that is not a claustrum daemon', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pid = sleeper.pid!;
    sb.track(pid);
    const record = JSON.stringify({ pid, startTime: procStat(pid)!.startTime, socket: sb.socket, role: 'serve' });
    writeFileSync(sb.file('daemon.lock'), record, { mode: 0o600 });
    // The sleeper would die of a SIGTERM, and show 'T' after a SIGSTOP: it must see neither.
    const r = await sb.serve();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `claustrum: ${sb.file('daemon.lock')} is held by pid ${pid}, which is not a claustrum daemon serving ${sb.socket}; not signalling it`,
    );
    expect(processLive(pid)).toBe(true);
    expect(sb.read('daemon.lock')).toBe(record);
    expect(sb.exists('rpc.sock')).toBe(false);
    expect(sb.exists('daemon.token')).toBe(false);
    sleeper.kill('SIGKILL');
  });

  it('refuses a socket path another server (not a claustrum daemon, no lock) still accepts on, and leaves it alone', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const other = net.createServer((s) => s.on('error', () => {}).end('still here\n'));
    await new Promise<void>((resolve) => other.listen(sb.socket, resolve));
    try {
      const r = await sb.serve();
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`claustrum: another server is already listening on ${sb.socket}\n`);
      expect(sb.exists('daemon.lock')).toBe(false);
      const reply = await new Promise<string>((resolve, reject) => {
        let got = '';
        net
          .connect(sb.socket)
          .on('data', (d) => (got += d.toString()))
          .on('end', () => resolve(got))
          .on('error', reject);
      });
      expect(reply).toBe('still here\n');
    } finally {
      other.close();
    }
  });

  it('takes over a lock whose pid was reused by another process (start time differs)', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pid = sleeper.pid!;
    sb.track(pid);
    const wrongStart = String(Number(procStat(pid)!.startTime) - 7);
    writeFileSync(sb.file('daemon.lock'), JSON.stringify({ pid, startTime: wrongStart, socket: sb.socket, role: 'serve' }), { mode: 0o600 });
    const r = await sb.start();
    expect(processLive(pid)).toBe(true);
    expect(sb.lock().pid).toBe(r.pid);
    sleeper.kill('SIGKILL');
  });
});
