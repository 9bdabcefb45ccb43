/**
 * `claustrum -purge`: stops the daemon and removes exactly its files, refuses while processes run unless -force
 * (which kills them, a dead daemon's orphans and a -keep-children daemon's children included), and leaves a
 * directory that holds anything else.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli, sandboxes, type Sandbox } from '../helpers/cli.js';
import { until } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';

async function spawnSleeper(sb: Sandbox, id: string): Promise<number> {
  const c = await sb.client();
  const pid = (await c.call('process.spawn', { id, command: 'sleep', args: ['300'], wantPid: true })).pid as number;
  sb.track(pid);
  await until(() => sb.exists(`children/${pid}.json`), 10_000, 'the child record');
  return pid;
}

describe('claustrum -purge', () => {
  const sandbox = sandboxes();

  it('with no process: stops the daemon, removes every file it had and the directory, and lists them', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-no-login-path']);
    const c = await sb.client();
    await c.call('process.spawn', { id: 'quick', command: 'true' });
    await c.waitExit('quick');
    c.destroy();
    const r = await runCli(['-purge', '-socket', sb.socket]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        `stopped the daemon on ${sb.socket}`,
        'removed:',
        `  ${sb.dir}/children/`,
        `  ${sb.dir}/keeper/`,
        `  ${sb.file('remote-server.log')}`,
        `  ${sb.dir}/`,
        '',
      ].join('\n'),
    );
    expect(processLive(pid)).toBe(false);
    expect(existsSync(sb.dir)).toBe(false);
    expect((await runCli(['-status', '-socket', sb.socket])).code).toBe(3);
  });

  it('refuses while a process runs, touching nothing; -force kills it and removes everything', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-no-login-path']);
    const child = await spawnSleeper(sb, 'busy');
    const before = readdirSync(sb.dir).sort();
    const r = await runCli(['-purge', '-socket', sb.socket]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `claustrum: -purge refused: 1 process(es) still run under ${sb.socket}: busy (pid ${child}). -purge would stop the daemon and kill them: add -force, or end them first (claustrum -kill <id>)\n`,
    );
    expect(readdirSync(sb.dir).sort()).toEqual(before);
    expect(processLive(pid)).toBe(true);
    expect(processLive(child)).toBe(true);

    const f = await runCli(['-purge', '-force', '-json', '-socket', sb.socket]);
    expect(f.code, f.stderr).toBe(0);
    const report = JSON.parse(f.stdout);
    expect(report.stopped).toBe('stopped');
    expect(report.removed).toContain(`${sb.dir}/`);
    expect(processLive(pid)).toBe(false);
    expect(processLive(child)).toBe(false);
    expect(existsSync(sb.dir)).toBe(false);
  });

  it("a -keep-children daemon's children do not survive -purge -force", async () => {
    const sb = sandbox();
    await sb.start(['-keep-children', '-no-login-path']);
    const child = await spawnSleeper(sb, 'kept');
    const r = await runCli(['-purge', '-force', '-json', '-socket', sb.socket]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).killed).toEqual([{ pid: child, command: 'sleep' }]);
    expect(processLive(child)).toBe(false);
  });

  it("stale state with an orphan: refused, then -force kills the dead daemon's child and removes lock, socket and token", async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-no-login-path']);
    const child = await spawnSleeper(sb, 'orphan');
    process.kill(pid, 'SIGKILL');
    await until(() => !processLive(pid), 10_000, 'daemon death');
    const r = await runCli(['-purge', '-socket', sb.socket]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`1 process(es) still run under ${sb.socket}: pid ${child} (sleep)`);
    const f = await runCli(['-purge', '-force', '-socket', sb.socket]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toContain(`no daemon was running on ${sb.socket}`);
    expect(f.stdout).toContain(`killed 1 process(es) left running: pid ${child} (sleep)`);
    for (const name of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(f.stdout).toContain(`  ${sb.file(name)}\n`);
    expect(processLive(child)).toBe(false);
    expect(existsSync(sb.dir)).toBe(false);
  });

  it('in a directory that holds other files: removes only its own and keeps the directory', async () => {
    const sb = sandbox();
    await sb.start();
    writeFileSync(sb.file('notes.txt'), 'mine\n');
    writeFileSync(sb.file('daemon.token.bak'), 'not ours either\n');
    const r = await runCli(['-purge', '-socket', sb.socket]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`kept:\n  ${sb.dir}/: holds other files (daemon.token.bak, notes.txt)\n`);
    expect(readdirSync(sb.dir).sort()).toEqual(['daemon.token.bak', 'notes.txt']);
  });

  it('with nothing there: removes nothing, exit 0', async () => {
    const sb = sandbox();
    const r = await runCli(['-purge', '-socket', sb.socket]);
    expect(r).toMatchObject({ code: 0, stdout: `no daemon was running on ${sb.socket}\nremoved nothing: no state was left\n` });
  });
});
