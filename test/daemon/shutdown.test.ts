/**
 * Graceful shutdown kills every child's whole tree; `-keep-children` leaves them with the keeper for the next daemon
 * to adopt, stdio intact; and the next start reaps the children a SIGKILLed keeper left behind (never a reused pid).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, until } from '../helpers/daemon.js';
import { procStat, sandboxes, type Sandbox } from '../helpers/cli.js';
import type { RpcClient } from '../helpers/rpc.js';
import { killKeeper, liveKeeper, processLive } from '../helpers/procfs.js';

/** Spawns with wantPid and waits for the child's record in children/. */
async function spawnRecorded(sb: Sandbox, c: RpcClient, id: string, spec: { command: string; args?: string[] }): Promise<number> {
  const r = await c.call('process.spawn', { id, ...spec, wantPid: true });
  const pid = r.pid as number;
  sb.track(pid);
  await until(() => existsSync(sb.file(`children/${pid}.json`)), 10_000, `children/${pid}.json`);
  return pid;
}

/** A daemon with a recorded child that ignores SIGTERM, then it and its keeper SIGKILLed: the child is an orphan to reap. */
async function orphanStubbornChild(sb: Sandbox): Promise<number> {
  const first = await sb.start();
  const c = await sb.client();
  const child = await spawnRecorded(sb, c, 'stubborn', { command: 'sh', args: ['-c', 'trap "" TERM; echo armed; sleep 300; sleep 300'] });
  await until(() => c.output('stubborn').toString() === 'armed\n', 10_000, 'trap armed');
  c.destroy();
  process.kill(first.pid, 'SIGKILL');
  await until(() => !processLive(first.pid), 10_000, 'daemon death');
  await killKeeper(sb.dir);
  return child;
}

/** Waits for a "<word> <pid> [<pid>]" line from a process and returns the pids. */
async function announced(c: RpcClient, id: string, word: string): Promise<number[]> {
  const text = await until(
    () => {
      const s = c.output(id).toString();
      return s.includes('\n') && s.startsWith(word) ? s : undefined;
    },
    10_000,
    `${word} line of ${id}`,
  );
  return text.trim().split(' ').slice(1).map(Number);
}

describe('shutdown and children', () => {
  const sandbox = sandboxes();

  it('SIGTERM kills a child, its grandchild in the group and a descendant that left it with setsid; files removed', async () => {
    const sb = sandbox();
    const { pid: daemon } = await sb.start();
    const c = await sb.client();
    const child = await spawnRecorded(sb, c, 'tree', fixture('spawn-setsid-grandchild'));
    const [same, away] = await announced(c, 'tree', 'grandchildren');
    sb.track(same!);
    sb.track(away!);
    expect(procStat(same!)!.pgid).toBe(child);
    expect(procStat(away!)!.sid).toBe(away); // it really left the group and the session
    const cat = await spawnRecorded(sb, c, 'cat', { command: 'cat' });

    process.kill(daemon, 'SIGTERM');
    process.kill(daemon, 'SIGINT'); // a second signal during the teardown does not abort it
    await until(() => !processLive(daemon), 10_000, 'daemon exit');
    for (const pid of [child, same!, away!, cat]) expect(processLive(pid), `pid ${pid}`).toBe(false);
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(false);
    expect(readdirSync(sb.file('children'))).toEqual([]);

    const log = sb.log();
    expect(log).toContain('[daemon] received terminated; shutting down (children will be killed)');
    expect(log).toContain('[Server] cleanup: closed 1 connection(s), killed 2 child process group(s)');
    // The exit frames carry killedBy:"shutdown"; on the wire they race the closed connection, in the log they show.
    expect(log).toContain('Process tree exited with code -1, terminated by SIGKILL, signalled at shutdown request');
    expect(log).toContain('Process cat exited with code -1, terminated by SIGKILL, signalled at shutdown request');
    expect(log.match(/shutdown requested/g)).toHaveLength(1);
  });

  it('SIGHUP and SIGINT shut down gracefully too, logged under Go signal names', async () => {
    for (const [sig, name] of [
      ['SIGHUP', 'hangup'],
      ['SIGINT', 'interrupt'],
    ] as const) {
      const sb = sandbox();
      const { pid } = await sb.start();
      process.kill(pid, sig);
      await until(() => !processLive(pid), 10_000, 'daemon exit');
      expect(sb.log()).toContain(`[daemon] received ${name}; shutting down (children will be killed)`);
      for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), `${sig} ${f}`).toBe(false);
    }
  });

  it("a graceful shutdown removes the socket only if it is still its own: another server's socket on the path stays", async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    unlinkSync(sb.socket);
    const other = net.createServer((s) => s.on('error', () => {}).end('other server\n'));
    await new Promise<void>((resolve) => other.listen(sb.socket, resolve));
    try {
      process.kill(pid, 'SIGTERM');
      await until(() => !processLive(pid), 10_000, 'daemon exit');
      expect(sb.exists('daemon.lock')).toBe(false);
      const reply = await new Promise<string>((resolve, reject) => {
        let got = '';
        net
          .connect(sb.socket)
          .on('data', (d) => (got += d.toString()))
          .on('end', () => resolve(got))
          .on('error', reject);
      });
      expect(reply).toBe('other server\n');
    } finally {
      other.close();
    }
  });

  it('server.shutdown over RPC kills the children the same way', async () => {
    const sb = sandbox();
    await sb.start();
    const c = await sb.client();
    const child = await spawnRecorded(sb, c, 'tree', fixture('spawn-setsid-grandchild'));
    const [same, away] = await announced(c, 'tree', 'grandchildren');
    sb.track(same!);
    sb.track(away!);
    expect((await sb.stop()).stdout).toBe('stopped\n');
    for (const pid of [child, same!, away!]) expect(processLive(pid), `pid ${pid}`).toBe(false);
  });

  it('-keep-children: a graceful shutdown leaves the child with the keeper, stdio intact; the next start adopts it', async () => {
    const sb = sandbox();
    const { pid: daemon } = await sb.start(['-keep-children']);
    const c = await sb.client();
    const child = await spawnRecorded(sb, c, 'kept', { command: 'sh', args: ['-c', 'echo ready; while read line; do echo "got $line"; done'] });
    await until(() => c.output('kept').toString() === 'ready\n', 10_000, 'ready');
    c.destroy();
    process.kill(daemon, 'SIGTERM');
    await until(() => !processLive(daemon), 10_000, 'daemon exit');
    expect(processLive(child)).toBe(true);
    // The keeper keeps it, and its record (the record names the keeper, alive).
    const keeper = liveKeeper(sb.dir);
    expect(keeper).toBeDefined();
    expect(JSON.parse(sb.read(`children/${child}.json`))).toMatchObject({ pid: child, daemonPid: keeper!.pid });
    const log = sb.log();
    expect(log).toContain('[daemon] received terminated; shutting down (children will be kept)');
    expect(log).toMatch(/\[Server\] -keep-children: leaving 1 running child process\(es\) with the keeper \(pid \d+\); the next daemon adopts them/);
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(false);

    await sb.start();
    expect(sb.log()).not.toContain('reaping orphaned child');
    expect(sb.log()).toContain('adopted 1 process(es) from the keeper');
    const again = await sb.client();
    const r = await again.call('process.reattach', { id: 'kept', fromSeq: 1, wantPid: true });
    expect(r).toMatchObject({ found: true, running: true, pid: child, lastSeq: 1 });
    await again.call('process.stdin', { id: 'kept', data: Buffer.from('hello\n').toString('base64') });
    await until(() => again.output('kept').toString() === 'got hello\n', 10_000, 'the echo through the adopting daemon');
    expect(processLive(child)).toBe(true);
  });

  it('child records come and go with the child, written by the keeper, while the daemon runs', async () => {
    const sb = sandbox();
    await sb.start();
    const c = await sb.client();
    const pid = await spawnRecorded(sb, c, 'short', { command: 'sh', args: ['-c', 'read x'] });
    const rec = JSON.parse(sb.read(`children/${pid}.json`));
    const keeper = JSON.parse(sb.read('keeper/keeper.lock'));
    expect(rec).toMatchObject({ pid, startTime: procStat(pid)!.startTime, instance: keeper.instance, daemonPid: keeper.pid, argv0: 'sh' });
    await c.call('process.stdin', { id: 'short', data: Buffer.from('go\n').toString('base64') });
    await c.waitExit('short');
    await until(() => !existsSync(sb.file(`children/${pid}.json`)), 10_000, 'record removal');
  });

  it('the orphan reap SIGKILLs a recorded child group that ignores SIGTERM', async () => {
    const sb = sandbox();
    const child = await orphanStubbornChild(sb);
    await sb.start();
    await until(() => !processLive(child), 10_000, 'reaped child');
    expect(sb.log()).toContain(`[daemon] orphaned child pid ${child} ignored SIGTERM for 2000ms; sending SIGKILL`);
  });

  it('a SIGTERM during start-up (while the orphan reap waits) is honoured once the start completes', async () => {
    const sb = sandbox();
    const child = await orphanStubbornChild(sb);

    const starting = sb.serve();
    // The new daemon is between its lock and its bind: the reap is waiting out the SIGTERM grace.
    await until(() => sb.log().includes(`reaping orphaned child pid ${child}`), 10_000, 'reap under way');
    const pid = sb.lock().pid as number;
    sb.track(pid, true);
    process.kill(pid, 'SIGTERM');
    const r = await starting;
    await until(() => !processLive(pid), 15_000, 'daemon exit');
    expect(processLive(child)).toBe(false);
    const log = sb.log();
    expect(log).toContain('[daemon] received terminated; shutting down (children will be killed)');
    expect(log).toContain('[Server] shutdown requested');
    for (const f of ['rpc.sock', 'daemon.token', 'daemon.lock']) expect(sb.exists(f), f).toBe(false);
    // The launcher saw a daemon that came up (and then left as asked), or one already leaving; never a hang.
    expect([0, 1]).toContain(r.code);
  });

  it("a SIGKILLed daemon's children are adopted by the next start, output and all", async () => {
    const sb = sandbox();
    const first = await sb.start();
    const c = await sb.client();
    const child = await spawnRecorded(sb, c, 'ticker', {
      command: 'sh',
      args: ['-c', 'i=0; while [ $i -lt 40 ]; do echo $i; i=$((i+1)); sleep 0.05; done'],
    });
    await until(() => c.output('ticker').toString().includes('3\n'), 10_000, 'some output');
    c.destroy();
    process.kill(first.pid, 'SIGKILL');
    await until(() => !processLive(first.pid), 10_000, 'daemon death');
    expect(processLive(child)).toBe(true);
    await sb.start();
    const again = await sb.client();
    const r = await again.call('process.reattach', { id: 'ticker', fromSeq: 0 });
    expect(r.found).toBe(true);
    const exit = await again.waitExit('ticker');
    expect(exit).toMatchObject({ exitCode: 0 });
    expect(again.output('ticker').toString()).toBe(Array.from({ length: 40 }, (_, i) => `${i}\n`).join(''));
    expect(sb.log()).not.toContain('reaping orphaned child');
  });

  it("a SIGKILLed keeper's children are reaped by the next start; a record whose start time does not match is ignored", async () => {
    const sb = sandbox();
    const first = await sb.start();
    const c = await sb.client();
    const child = await spawnRecorded(sb, c, 'sleeper', { command: 'sleep', args: ['300'] });
    const parent = await spawnRecorded(sb, c, 'tree', fixture('spawn-grandchild'));
    const [grandchild] = await announced(c, 'tree', 'grandchild');
    sb.track(grandchild!);
    const keeperInstance = JSON.parse(sb.read('keeper/keeper.lock')).instance as string;
    c.destroy();
    process.kill(first.pid, 'SIGKILL');
    await until(() => !processLive(first.pid), 10_000, 'daemon death');
    await killKeeper(sb.dir);
    expect(processLive(child)).toBe(true);
    expect(processLive(grandchild!)).toBe(true);

    // A record naming a live pid with another start time: that pid was reused by an unrelated process.
    const bystander = spawn('sleep', ['300'], { stdio: 'ignore', detached: true });
    const bpid = bystander.pid!;
    sb.track(bpid);
    const st = procStat(bpid)!;
    writeFileSync(
      sb.file(`children/${bpid}.json`),
      JSON.stringify({
        pid: bpid,
        startTime: String(Number(st.startTime) - 11),
        instance: first.instanceId,
        daemonPid: first.pid,
        daemonStartTime: '1',
        argv0: 'reused',
        at: Date.now(),
      }),
      { mode: 0o600 },
    );

    await sb.start();
    for (const pid of [child, parent, grandchild!]) expect(processLive(pid), `pid ${pid}`).toBe(false);
    expect(processLive(bpid)).toBe(true);
    expect(procStat(bpid)!.state).not.toBe('T');
    const log = sb.log();
    expect(log).toContain(`[daemon] reaping orphaned child pid ${child} (sleep) of dead keeper instance ${keeperInstance}`);
    expect(log).toContain(`[daemon] reaping orphaned child pid ${parent} (${process.execPath}) of dead keeper instance ${keeperInstance}`);
    expect(log).toContain('[daemon] reaped 2 orphaned child process(es) of dead keepers');
    expect(log).not.toContain(`pid ${bpid}`);
    expect(readdirSync(sb.file('children'))).toEqual([]);
    bystander.kill('SIGKILL');
  });

  it('the children of a live daemon are not reaped (records in a directory it still owns are left alone)', async () => {
    // A second daemon cannot share the directory, so this builds the case by hand: a record whose daemon is alive.
    const sb = sandbox();
    mkdirSync(path.join(sb.dir, 'children'), { recursive: true, mode: 0o700 });
    const owner = spawn('sleep', ['300'], { stdio: 'ignore' });
    const kid = spawn('sleep', ['300'], { stdio: 'ignore', detached: true });
    sb.track(owner.pid!);
    sb.track(kid.pid!);
    const rec = {
      pid: kid.pid!,
      startTime: procStat(kid.pid!)!.startTime,
      instance: 'f'.repeat(32),
      daemonPid: owner.pid!,
      daemonStartTime: procStat(owner.pid!)!.startTime,
      argv0: 'sleep',
      at: Date.now(),
    };
    writeFileSync(sb.file(`children/${kid.pid}.json`), JSON.stringify(rec), { mode: 0o600 });
    await sb.start();
    expect(processLive(kid.pid!)).toBe(true);
    expect(sb.exists(`children/${kid.pid}.json`)).toBe(true);
    owner.kill('SIGKILL');
    kid.kill('SIGKILL');
  });
});
