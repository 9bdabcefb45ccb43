/**
 * `connect({caller})`: the client declares its caller (`session.identify`) on every connection before anything else,
 * so the daemon's audit log attributes each of its requests, across a reconnect too; a caller the daemon refuses
 * fails the connect with the daemon's reason.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, RpcError } from '../../src/client/index.js';
import { Daemon, until } from '../helpers/daemon.js';
import { CuttingProxy } from './proxy.js';

const CALLER = { driver: 'agent-host', identity: 'alice@example.com', runId: 'run-42' };

let d: Daemon;
let proxy: CuttingProxy;
beforeAll(async () => {
  d = await Daemon.start({ args: ['-audit', 'on', '-no-login-path'] });
  proxy = await CuttingProxy.start(d.socket);
});
afterAll(async () => {
  await proxy?.close();
  await d?.stop();
});

interface Rec {
  kind: string;
  method?: string;
  transport?: string;
  caller: Record<string, string> | null;
}

describe('connect({caller})', () => {
  it('identifies every connection before any request: each request after it is recorded with the caller', async () => {
    const client = await connect({ socket: proxy.path, token: d.token, caller: CALLER, reconnect: { initialDelayMs: 5, maxDelayMs: 50 } });
    try {
      expect(await client.ping()).toEqual({ pong: true });
      // The client is back within milliseconds: wait for its reconnect event, not for a moment it is seen away.
      const back = new Promise((resolve) => client.once('connect', resolve));
      proxy.cutAll();
      expect(await back).toMatchObject({ reconnect: true });
      const proc = client.spawn({ command: 'true' });
      expect((await proc.exited).exitCode).toBe(0);
    } finally {
      await client.close();
    }
    const records = () =>
      readFileSync(path.join(d.dir, 'audit.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Rec)
        .filter((r) => r.kind === 'request');
    // The writer thread takes records every few milliseconds: wait for the spawn's.
    await until(() => records().some((r) => r.method === 'process.spawn'), 5000, "the spawn's record");
    const mine = records();
    // Two connections, each: the handshake (no caller yet), the identify, then requests that carry it.
    expect(mine.map((r) => r.method)).toEqual([
      'server.capabilities',
      'session.identify',
      'server.ping',
      'server.capabilities',
      'session.identify',
      'process.spawn',
    ]);
    expect(mine.map((r) => r.caller)).toEqual([null, CALLER, CALLER, null, CALLER, CALLER]);
  });

  it('a caller the daemon refuses fails the connect with its reason', async () => {
    const err = await connect({ socket: d.socket, token: d.token, caller: { driver: 'ci', identity: 'line\nbreak' }, reconnect: false }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RpcError);
    expect((err as Error).message).toBe('Invalid caller: identity contains a control character');
  });
});
