/**
 * `-idle-exit`: a daemon with no live process and no connection for the period shuts down by itself; a running
 * process or an open connection keeps it. The daemon `-run` starts on demand gets it by default and says so.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { runCli, sandboxes } from '../helpers/cli.js';
import { BIN, until } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';

describe('-idle-exit', () => {
  const sandbox = sandboxes();

  it('shuts a daemon down after the period with nothing to do, and removes its files', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-idle-exit', '1s']);
    await until(() => !processLive(pid), 15_000, 'the idle exit');
    expect(sb.log()).toContain('[daemon] no process and no connection for 1s (-idle-exit); shutting down');
    for (const f of ['rpc.sock', 'daemon.lock', 'daemon.token']) expect(sb.exists(f), f).toBe(false);
  });

  it('a live process keeps it, and an open connection keeps it; after both are gone it exits', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-idle-exit', '1s', '-no-login-path']);
    const c = await sb.client();
    await c.call('process.spawn', { id: 'job', command: 'sleep', args: ['300'] });
    c.destroy();
    // Several periods pass with a live process and no connection.
    await sleep(3000);
    expect(processLive(pid)).toBe(true);
    const d = await sb.client();
    expect(await d.call('process.killAndWait', { id: 'job', signal: 'KILL' })).toEqual({ found: true, died: true });
    // Several periods pass with a connection open and no process.
    await sleep(3000);
    expect(processLive(pid)).toBe(true);
    d.destroy();
    await until(() => !processLive(pid), 15_000, 'the idle exit');
  });

  it('-run starts a daemon on demand that says so once, with how to stop it, and goes away when idle', async () => {
    const sb = sandbox();
    const r = await runCli(['-run', '-idle-exit', '1s', '-socket', sb.socket, '--', 'echo', 'hi']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hi\n');
    const m = new RegExp(
      `^claustrum: started a daemon on ${sb.socket} \\(pid (\\d+)\\) for this command; it exits after 1s with no process and no connection\\. Stop it now: claustrum -stop -socket ${sb.socket}\\n$`,
    ).exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const pid = Number(m![1]);
    sb.track(pid, true);
    expect(readCmdline(pid)).toContain('-idle-exit=1s');
    await until(() => !processLive(pid), 15_000, 'the idle exit');
  });

  it('the on-demand default is 10 minutes, passed to the daemon it starts', async () => {
    const sb = sandbox();
    const child = spawn(process.execPath, [BIN, '-run', '-socket', sb.socket, '--', 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise((resolve) => child.once('close', resolve));
    const pid = Number(/\(pid (\d+)\)/.exec(err)![1]);
    sb.track(pid, true);
    expect(err).toContain('it exits after 10m0s with no process and no connection');
    expect(readCmdline(pid)).toContain('-idle-exit=10m0s');
    const info = JSON.parse((await runCli(['-status', '-json', '-socket', sb.socket])).stdout).info;
    expect(info.idleExitMs).toBe(600_000);
  });
});

function readCmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
}
