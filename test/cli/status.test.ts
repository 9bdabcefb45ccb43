/**
 * `claustrum -status`, the real executable against real daemons: running, stale, stopped and unknown, with the LSB
 * exit codes (0, 1, 3, 4), human and JSON. Stale is judged by the lock owner's pid and OS start time together.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { procStat, runCli, sandboxes } from '../helpers/cli.js';
import { until } from '../helpers/daemon.js';
import { killKeeper, liveKeeper, processLive } from '../helpers/procfs.js';

describe('claustrum -status', () => {
  const sandbox = sandboxes();

  it('stopped: exit 3, one line; JSON says the same', async () => {
    const sb = sandbox();
    const r = await runCli(['-status', '-socket', sb.socket]);
    expect(r).toMatchObject({ code: 3, stdout: `claustrum is not running on ${sb.socket}\n`, stderr: '' });
    const j = await runCli(['-status', '-json', '-socket', sb.socket]);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toEqual({ state: 'stopped', socket: sb.socket });
    // A daemon that stopped cleanly leaves its log and an empty children/: still "stopped", not stale.
    await sb.start();
    expect((await sb.stop()).stdout).toBe('stopped\n');
    expect((await runCli(['-status', '-socket', sb.socket])).code).toBe(3);
  });

  it('running: exit 0 with pid, version, instance, uptime, socket, token file, log, processes, connections, replay bytes', async () => {
    const sb = sandbox();
    const { pid, instanceId } = await sb.start(['-no-login-path']);
    const c = await sb.client();
    await c.call('process.spawn', { id: 'sleeper', command: 'sleep', args: ['300'] });
    await c.call('process.spawn', { id: 'done', command: 'sh', args: ['-c', 'echo hello'] });
    await c.waitExit('done');

    const r = await runCli(['-status', '-socket', sb.socket]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`claustrum is running on ${sb.socket}`);
    const field = (name: string) =>
      lines
        .find((l) => l.startsWith(`  ${name} `))
        ?.slice(2 + name.length)
        .trim();
    expect(field('pid')).toBe(String(pid));
    expect(field('version')).toMatch(/^\d+\.\d+\.\d+/);
    expect(field('instance')).toBe(instanceId);
    expect(field('state')).toBe('ready');
    expect(field('uptime')).toMatch(/^\S+ \(since \d{4}-\d\d-\d\dT/);
    expect(field('socket')).toBe(sb.socket);
    expect(field('token file')).toBe(sb.file('daemon.token'));
    expect(field('log')).toBe(sb.file('remote-server.log'));
    expect(field('processes')).toBe('1 live, 2 retained');
    // This test's client and the status command's own connection.
    expect(field('connections')).toBe('2');
    expect(field('replay held')).toMatch(/^\d+(\.\d)?(B|KiB)$/);

    const j = await runCli(['-status', '-json', '-socket', sb.socket]);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout);
    expect(report.state).toBe('running');
    expect(report.info).toMatchObject({
      pid,
      instanceId,
      state: 'ready',
      socket: sb.socket,
      tokenFile: sb.file('daemon.token'),
      log: sb.file('remote-server.log'),
      processes: { live: 1, retained: 2 },
      connections: 2,
      keepChildren: false,
      drainTimeoutMs: 0,
      idleExitMs: 0,
      socketActivated: false,
    });
    expect(report.info.replayBytes).toBeGreaterThan(0);
    expect(report.lock).toMatchObject({ pid, instanceId });
  });

  it('running without a token to read (a -token-fd daemon): exit 0 from the lock; -token-fd gives the rest', async () => {
    const sb = sandbox();
    const token = `status-${Math.random().toString(36).slice(2)}`;
    const { pid, instanceId } = await sb.start(['-token-fd', '3'], { extraFds: ['pipe'], fd3: `${token}\n` });
    const r = await runCli(['-status', '-socket', sb.socket]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`claustrum is running on ${sb.socket}`);
    expect(r.stdout).toMatch(new RegExp(`\\n  pid +${pid}\\n`));
    expect(r.stdout).toMatch(new RegExp(`\\n  instance +${instanceId}\\n`));
    expect(r.stdout).toContain('pass the token with -token-fd <n>');

    const full = await runCli(['-status', '-json', '-token-fd', '3', '-socket', sb.socket], { extraFds: ['pipe'], fd3: `${token}\n` });
    expect(full.code, full.stderr).toBe(0);
    const info = JSON.parse(full.stdout).info;
    expect(info).toMatchObject({ pid, instanceId, tokenFile: null });
    // A wrong token: still running (the lock says so), with the refusal as the reason.
    const wrong = await runCli(['-status', '-json', '-token-fd', '3', '-socket', sb.socket], { extraFds: ['pipe'], fd3: 'nope\n' });
    expect(wrong.code).toBe(0);
    expect(JSON.parse(wrong.stdout).reason).toContain('refused the token');
  });

  it('stale: a SIGKILLed daemon leaves lock, socket, token and a child its keeper keeps; with the keeper gone, an orphan', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    const c = await sb.client();
    const child = (await c.call('process.spawn', { id: 'orphan', command: 'sleep', args: ['300'], wantPid: true })).pid as number;
    sb.track(child);
    await until(() => sb.exists(`children/${child}.json`), 10_000, 'the child record');
    c.destroy();
    process.kill(pid, 'SIGKILL');
    await until(() => !processLive(pid), 10_000, 'daemon death');
    const keeper = liveKeeper(sb.dir)!;

    const r = await runCli(['-status', '-socket', sb.socket]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`claustrum is not running on ${sb.socket}, but a daemon that is gone left state in ${sb.dir}:`);
    expect(r.stdout).toContain(`daemon.lock    names pid ${pid}`);
    expect(r.stdout).toContain('socket         nothing accepts on it');
    expect(r.stdout).toContain('daemon.token');
    expect(r.stdout).toContain('children/      1 record(s)');
    expect(r.stdout).toContain(`keeper         pid ${keeper.pid} keeps 1 running process(es); the next -serve adopts them`);
    expect(r.stdout).toContain(`kept           pid ${child} (sleep)`);
    expect(r.stdout).toContain(`claustrum -purge -socket ${sb.socket}`);
    const j = JSON.parse((await runCli(['-status', '-json', '-socket', sb.socket])).stdout);
    expect(j).toMatchObject({
      state: 'stale',
      lock: { pid },
      leftovers: {
        lock: true,
        socket: true,
        token: true,
        records: 1,
        orphans: [],
        keeper: { pid: keeper.pid, kept: [{ pid: child, command: 'sleep' }] },
      },
    });

    await killKeeper(sb.dir);
    const orphaned = await runCli(['-status', '-socket', sb.socket]);
    expect(orphaned.stdout).toContain(`orphan         pid ${child} (sleep) still running; the next -serve kills it`);
    expect(orphaned.stdout).not.toContain('keeper         pid');
  });

  it('stale, never by pid alone: a lock naming a live pid with another start time is a dead daemon', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    // A live process whose pid the lock names, as if the dead daemon's pid had been reused by it.
    const bystander = spawn('sleep', ['300'], { stdio: 'ignore' });
    sb.track(bystander.pid!);
    const real = procStat(bystander.pid!)!.startTime;
    const record = {
      pid: bystander.pid,
      startTime: String(Number(real) - 7),
      socket: sb.socket,
      role: 'serve',
      instanceId: 'a'.repeat(32),
      startedAt: 1,
    };
    writeFileSync(sb.file('daemon.lock'), JSON.stringify(record), { mode: 0o600 });
    const r = await runCli(['-status', '-json', '-socket', sb.socket]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'stale', lock: { pid: bystander.pid } });
    expect(processLive(bystander.pid!)).toBe(true); // judged, never signalled

    // The same pid with its true start time is a live process, but not a claustrum daemon: unknown, exit 4.
    writeFileSync(sb.file('daemon.lock'), JSON.stringify({ ...record, startTime: real }), { mode: 0o600 });
    const u = await runCli(['-status', '-socket', sb.socket]);
    expect(u.code).toBe(4);
    expect(u.stdout).toMatch(
      new RegExp(
        `^claustrum: cannot tell whether a daemon runs on ${sb.socket}: daemon.lock names pid ${bystander.pid}, which is alive but not a claustrum daemon`,
      ),
    );
    bystander.kill('SIGKILL');
  });

  it('unknown: a stopped (SIGSTOP) daemon accepts but does not answer: exit 4 after the bounded wait', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    process.kill(pid, 'SIGSTOP');
    try {
      const r = await runCli(['-status', '-socket', sb.socket]);
      expect(r.code).toBe(4);
      expect(r.stdout).toContain(`daemon pid ${pid} accepts connections but`);
      expect(r.stdout).toContain('did not answer within 5s');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('has its own -help, and refuses flags of other modes', async () => {
    const h = await runCli(['-status', '-help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: claustrum -status \[-socket path\] \[-token-fd n\] \[-json\]\n/);
    expect(h.stdout).toContain('  -json\n');
    expect(h.stdout).not.toContain('  -foreground');
    const bad = await runCli(['-status', '-foreground']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^claustrum: -foreground does not apply to -status \(it goes with -serve\)\n/);
  });
});
