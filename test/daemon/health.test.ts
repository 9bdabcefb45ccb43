/**
 * Health for orchestrators on the metrics listener, across a daemon's life: /healthz, /readyz and /info while it
 * starts (the orphan reap keeps it "starting"), while it serves, and while it drains after SIGTERM with
 * -drain-timeout (spawns refused with a catalogued error, everything else served, then the shutdown).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli, sandboxes, type Sandbox } from '../helpers/cli.js';
import { until } from '../helpers/daemon.js';
import { freePort, get } from '../helpers/http.js';
import type { RpcClient } from '../helpers/rpc.js';
import { killKeeper, processLive } from '../helpers/procfs.js';

/** A dead daemon's recorded child that ignores SIGTERM: the next start's reap waits 2 s for it, then SIGKILLs it. */
async function orphanStubbornChild(sb: Sandbox): Promise<number> {
  const first = await sb.start(['-no-login-path']);
  const c = await sb.client();
  const r = await c.call('process.spawn', {
    id: 'stubborn',
    command: 'sh',
    args: ['-c', 'trap "" TERM; echo armed; sleep 300; sleep 300'],
    wantPid: true,
  });
  const child = r.pid as number;
  sb.track(child);
  await until(() => existsSync(sb.file(`children/${child}.json`)) && c.output('stubborn').toString() === 'armed\n', 10_000, 'armed and recorded');
  c.destroy();
  process.kill(first.pid, 'SIGKILL');
  await until(() => !processLive(first.pid), 10_000, 'daemon death');
  // Its keeper too: only then is the child an orphan for the next start to reap.
  await killKeeper(sb.dir);
  return child;
}

async function sleeper(c: RpcClient, id: string): Promise<number> {
  return (await c.call('process.spawn', { id, command: 'sleep', args: ['300'], wantPid: true })).pid as number;
}

describe('/healthz, /readyz and /info', () => {
  const sandbox = sandboxes();

  it('starting (the reap under way): healthy, not ready; then ready, with /info naming no process, command or path', async () => {
    const sb = sandbox();
    const child = await orphanStubbornChild(sb);
    const port = await freePort();
    const starting = sb.serve(['-metrics-addr', `127.0.0.1:${port}`, '-no-login-path']);
    const early = await until(
      async () => {
        const r = await get(port, '/readyz').catch(() => undefined);
        return r && sb.log().includes(`reaping orphaned child pid ${child}`) ? r : undefined;
      },
      10_000,
      'the listener during the reap',
    );
    expect(early).toMatchObject({ status: 503, body: 'starting\n' });
    expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await get(port, '/info')).body).toContain('"state":"starting"');
    const r = await starting;
    expect(r.code, r.stderr).toBe(0);

    const ready = await get(port, '/readyz');
    expect(ready).toMatchObject({ status: 200, body: 'ready\n' });
    expect(ready.headers['cache-control']).toBe('no-store');
    const c = await sb.client();
    const pid = await sleeper(c, 'secret-id-42');
    const info = await get(port, '/info');
    expect(info.status).toBe(200);
    expect(info.headers['content-type']).toBe('application/json');
    const doc = JSON.parse(info.body);
    expect(Object.keys(doc).sort()).toEqual(
      ['commit', 'connections', 'instance', 'processes', 'replayBytes', 'startedAt', 'state', 'version'].filter(
        (k) => k !== 'commit' || 'commit' in doc,
      ),
    );
    // Retained: the live sleeper, and the reaped orphan, adopted from its dead keeper's journal (exit unknown).
    expect(doc).toMatchObject({ instance: r.instanceId, state: 'ready', processes: { live: 1, retained: 2 }, connections: 1 });
    expect(new Date(doc.startedAt).toISOString()).toBe(doc.startedAt);
    for (const secret of ['secret-id-42', 'sleep', String(pid), sb.root]) expect(info.body).not.toContain(secret);
    // The same Host check as /metrics; no other methods.
    expect((await get(port, '/healthz', 'evil.example')).status).toBe(403);
  });

  it('SIGTERM with -drain-timeout: not ready, spawns refused (-32004), the rest served; the last child exits and it shuts down', async () => {
    const sb = sandbox();
    const port = await freePort();
    const { pid } = await sb.start(['-metrics-addr', `127.0.0.1:${port}`, '-drain-timeout', '60s', '-no-login-path']);
    const c = await sb.client();
    await sleeper(c, 'job');
    process.kill(pid, 'SIGTERM');
    const r = await until(
      async () => {
        const x = await get(port, '/readyz');
        return x.status === 503 ? x : undefined;
      },
      10_000,
      'not ready',
    );
    expect(r.body).toBe('draining\n');
    expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await c.request('process.spawn', { id: 'late', command: 'true' })).error).toEqual({
      code: -32004,
      message: 'Server is draining: no new processes are started',
    });
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect((await c.call('server.info')).state).toBe('draining');
    const run = await runCli(['-run', '-socket', sb.socket, '--', 'true']);
    expect(run.code).toBe(125);
    expect(run.stderr).toBe('claustrum: Server is draining: no new processes are started\n');
    expect(processLive(pid)).toBe(true);

    await c.call('process.kill', { id: 'job' });
    await until(() => !processLive(pid), 15_000, 'the shutdown after the drain');
    const log = sb.log();
    expect(log).toContain('[daemon] received terminated; draining for up to 1m0s (-drain-timeout), then shutting down');
    expect(log).toContain('[daemon] draining: refusing new processes; waiting up to 1m0s for 1 running process(es) to exit');
    expect(log).toContain('[daemon] drained: no process left');
    expect(log).toContain('[Server] shutdown requested');
  });

  it('the drain timeout passes: the shutdown kills what still runs', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-drain-timeout', '1s', '-no-login-path']);
    const c = await sb.client();
    const child = await sleeper(c, 'long');
    process.kill(pid, 'SIGTERM');
    await until(() => !processLive(pid), 15_000, 'the shutdown after the timeout');
    expect(processLive(child)).toBe(false);
    expect(sb.log()).toContain('[daemon] drain timeout: 1 process(es) still running after 1s');
  });

  it('a second SIGTERM ends the drain at once', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-drain-timeout', '10m', '-no-login-path']);
    const c = await sb.client();
    const child = await sleeper(c, 'long');
    process.kill(pid, 'SIGTERM');
    await until(() => sb.log().includes('draining: refusing new processes'), 10_000, 'the drain');
    process.kill(pid, 'SIGTERM');
    await until(() => !processLive(pid), 15_000, 'the shutdown');
    expect(processLive(child)).toBe(false);
    expect(sb.log()).not.toContain('drain timeout');
  });
});
