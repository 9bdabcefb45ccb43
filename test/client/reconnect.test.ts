/**
 * Reconnection, case by case: requests in flight at a drop, requests made while disconnected, a spawn whose
 * request or reply was lost, stdin the daemon refuses for a while, a daemon replaced under the client (new
 * token, new instance), and giving up.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, connect, InterruptedError, ProcessLostError, type Client } from '../../src/client/index.js';
import { Daemon, fixture, tempDir, until, sleep } from '../helpers/daemon.js';
import { CuttingProxy } from './proxy.js';
import { collect, startDaemonOn } from './util.js';
import { processLive, stopKeeper } from '../helpers/procfs.js';

const FAST = { initialDelayMs: 5, maxDelayMs: 50 };

describe('reconnection', () => {
  let d: Daemon;
  let proxy: CuttingProxy;
  let client: Client;
  beforeAll(async () => {
    d = await Daemon.start();
    proxy = await CuttingProxy.start(d.socket);
    client = await connect({ socket: proxy.path, token: d.token, reconnect: FAST });
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.close();
    await d?.stop();
  });

  /** Cuts the current connection with the proxy back in relay mode, and waits for the client to be back. */
  async function cutAndRelay(): Promise<void> {
    proxy.mode = 'relay';
    proxy.cutAll();
    await until(() => client.connected, 10_000, 'the client to reconnect');
  }

  it('sends idempotent requests that were in flight again, and rejects the others with InterruptedError', async () => {
    proxy.mode = 'swallowUp';
    const ping = client.ping();
    const caps = client.capabilities();
    const idempotentCall = client.call('server.ping', undefined, { idempotent: true });
    const caught = (p: Promise<unknown>) => p.catch((e: unknown) => e);
    const kill = caught(client.kill('no-such-process'));
    const killAndWait = caught(client.killAndWait('no-such-process'));
    const plainCall = caught(client.call('server.ping'));
    await cutAndRelay();
    expect(await ping).toEqual({ pong: true });
    expect((await caps).instanceId).toBe(client.instanceId);
    expect(await idempotentCall).toEqual({ pong: true });
    for (const p of [kill, killAndWait, plainCall]) {
      const err = await p;
      expect(err).toBeInstanceOf(InterruptedError);
      expect((err as Error).message).toMatch(/may or may not have been applied/);
    }
  });

  it('queues requests made while disconnected and sends them once back', async () => {
    proxy.mode = 'refuse';
    proxy.cutAll();
    await until(() => !client.connected, 10_000, 'the client to notice');
    const kill = client.kill('no-such-process');
    const ping = client.ping();
    proxy.mode = 'relay';
    expect(await kill).toEqual({ success: true });
    expect(await ping).toEqual({ pong: true });
  });

  it('spawns again when the spawn request was lost (the reattach finds nothing)', async () => {
    proxy.mode = 'swallowUp';
    const proc = client.spawn({ id: 'lost-request', command: 'sh', args: ['-c', 'echo once; exit 4'] });
    const out = collect(proc.stdout);
    await cutAndRelay();
    expect((await proc.exited).status).toBe(4);
    expect((await out).toString()).toBe('once\n');
    expect(d.log().split('Process lost-request started').length - 1).toBe(1);
  });

  it('does not spawn twice when only the reply was lost (the reattach finds the process)', async () => {
    proxy.mode = 'swallowDown';
    const proc = client.spawn({ id: 'lost-reply', command: 'sh', args: ['-c', 'echo once; exit 5'] });
    const out = collect(proc.stdout);
    await until(() => d.log().includes('Process lost-reply started'), 10_000, 'the spawn to land');
    await cutAndRelay();
    expect((await proc.exited).status).toBe(5);
    expect((await out).toString()).toBe('once\n');
    expect(d.log().split('Process lost-reply started').length - 1).toBe(1);
  });

  it('resends stdin the daemon refused while the child was not reading, exactly once', async () => {
    const proc = client.spawn(fixture('read-after-hup'));
    const out = collect(proc.stdout);
    await proc.ready;
    // 20 MiB against a 16 MiB queue: the daemon refuses (-32002) until the child reads.
    const input = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < input.length; i += 4096) input.writeUInt32LE(i, i);
    const writes = [];
    for (let at = 0; at < input.length; at += 1024 * 1024) writes.push(proc.write(input.subarray(at, at + 1024 * 1024)));
    const ended = proc.end();
    await until(() => proc.stdinRefusals > 0, 20_000, 'a refusal');
    await proc.kill('HUP');
    await Promise.all(writes);
    await ended;
    expect((await proc.exited).status).toBe(0);
    expect((await out).toString()).toBe(`ready\nSTDIN ${input.length} ${createHash('sha256').update(input).digest('hex')}\n`);
  });

  it('close() while reconnecting stops for good: no error, no further attempts', async () => {
    const own = await CuttingProxy.start(d.socket);
    try {
      const c = await connect({ socket: own.path, token: d.token, reconnect: FAST });
      const attempts: number[] = [];
      c.on('reconnecting', (i) => attempts.push(i.attempt));
      const closed = new Promise<Error | undefined>((resolve) => c.once('close', resolve));
      own.mode = 'refuse';
      own.cutAll();
      await until(() => attempts.length >= 2, 10_000, 'reconnect attempts');
      await c.close();
      expect(await closed).toBeUndefined();
      const seen = own.connections;
      own.mode = 'relay';
      await expect(c.ping()).rejects.toBeInstanceOf(ClosedError);
      // Room for a stray attempt to show up: the backoff here is at most 50 ms.
      await sleep(200);
      expect(own.connections).toBe(seen);
    } finally {
      await own.close();
    }
  });

  it('gives up after giveUpAfterMs without a connection, failing held processes', async () => {
    const c = await connect({ socket: proxy.path, token: d.token, reconnect: { ...FAST, giveUpAfterMs: 300 } });
    const proc = c.spawn({ command: 'sleep', args: ['30'], wantPid: true });
    await proc.ready;
    const closed = new Promise<Error | undefined>((resolve) => c.once('close', resolve));
    proxy.mode = 'refuse';
    proxy.cutAll();
    const err = await closed;
    proxy.mode = 'relay';
    expect(err).toBeInstanceOf(ClosedError);
    expect(err!.message).toMatch(/gave up reconnecting/);
    await expect(proc.exited).rejects.toBeInstanceOf(ClosedError);
    expect(c.closed).toBe(true);
    await client.killAndWait(proc.id, { signal: 'KILL' });
  });
});

describe('a daemon replaced under the client', () => {
  it('SIGKILLed: the next daemon adopts its processes; the client re-reads the token and reattaches, losing nothing', async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'rpc.sock');
    const a = await startDaemonOn(socket, 'token-of-a');
    let b: Awaited<ReturnType<typeof startDaemonOn>> | undefined;
    // No token given: daemon.token is read, and read again at each reconnect.
    const c = await connect({ socket, reconnect: { ...FAST, giveUpAfterMs: 30_000 } });
    try {
      const first = c.instanceId;
      const proc = c.spawn({ command: 'sh', args: ['-c', 'i=0; while [ $i -lt 60 ]; do echo $i; i=$((i+1)); sleep 0.05; done'], wantPid: true });
      const out = collect(proc.stdout);
      await proc.ready;
      const lost = new Promise<Error>((resolve) => proc.once('lost', resolve));
      await sleep(500);
      a.proc.kill('SIGKILL');
      await until(() => !c.connected, 10_000, 'the drop');
      b = await startDaemonOn(socket, 'token-of-b');
      const exit = await proc.exited;
      expect(exit.exitCode).toBe(0);
      const expected = Array.from({ length: 60 }, (_, i) => `${i}\n`).join('');
      expect((await out).toString()).toBe(expected);
      expect(await Promise.race([lost, sleep(10).then(() => 'not lost')])).toBe('not lost');
      expect(c.instanceId).not.toBe(first);
      // Authenticated with the new token, and usable.
      expect(await c.ping()).toEqual({ pong: true });
      const [entry] = (await c.list()).processes.filter((p) => p.id === proc.id);
      expect(entry).toMatchObject({ pid: proc.pid, restarts: 1, instance: first });
    } finally {
      await c.close();
      await a.stop();
      await b?.stop();
      await stopKeeper(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stopped with its processes, then another started: the processes are reported lost, the client carries on', async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'rpc.sock');
    const a = await startDaemonOn(socket, 'token-of-a');
    let b: Awaited<ReturnType<typeof startDaemonOn>> | undefined;
    const c = await connect({ socket, reconnect: { ...FAST, giveUpAfterMs: 30_000 } });
    try {
      const proc = c.spawn({ command: 'sleep', args: ['60'], wantPid: true });
      await proc.ready;
      const lost = new Promise<Error>((resolve) => proc.once('lost', resolve));
      await a.stop(); // SIGTERM: the daemon kills its children
      b = await startDaemonOn(socket, 'token-of-b');
      const err = await lost;
      expect(err).toBeInstanceOf(ProcessLostError);
      expect(err.message).toMatch(/no longer knows it/);
      await expect(proc.exited).rejects.toBe(err);
      expect(processLive(proc.pid!)).toBe(false);
      const next = c.spawn({ command: 'echo', args: ['second life'] });
      expect((await collect(next.stdout)).toString()).toBe('second life\n');
    } finally {
      await c.close();
      await a.stop();
      await b?.stop();
      await stopKeeper(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
