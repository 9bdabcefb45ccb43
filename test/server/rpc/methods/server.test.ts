/**
 * server.ping, server.capabilities and server.shutdown (claustrum-wire.md §4.1, issue 2 "Methods").
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, until } from '../../../helpers/daemon.js';
import { processLive } from '../../../helpers/procfs.js';
import { RpcClient } from '../../../helpers/rpc.js';
import { errorLine, exchange } from '../../../helpers/wire.js';
import { SERVED_METHODS } from '../../../helpers/methods.js';

/** Every feature name of the reference, in its server.capabilities order (claustrum-wire.md §4.1). */
const REFERENCE_FEATURES = [
  'process.stdin.offset',
  'git.status.baseRepo',
  'git.info.discovered_root',
  'git.worktree_create.timeoutMs',
  'git.worktree_create.existingBranch',
  'git.worktree_remove.unpushedGuard',
  'process.spawn.shellAgentSocket',
  'launcher.managed',
  'server.peer_check',
  'git.worktree.external_root',
  'server.instance_id',
];

describe('server.ping and server.capabilities', () => {
  let d: Daemon;
  let bootedAfter: number;
  beforeAll(async () => {
    bootedAfter = Date.now();
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('ping answers {"pong":true}, byte for byte', async () => {
    const c = await d.client();
    expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"method":"server.ping","auth":${JSON.stringify(d.token)}}\n`)).toBe(
      '{"jsonrpc":"2.0","id":1,"result":{"pong":true}}',
    );
  });

  it('capabilities has the reference keys in the reference order', async () => {
    const c = await d.client();
    const raw = await exchange(c, `{"jsonrpc":"2.0","id":2,"method":"server.capabilities","auth":${JSON.stringify(d.token)}}\n`);
    const result = JSON.parse(raw).result;
    expect(Object.keys(result)).toEqual(['version', 'methods', 'instanceId', 'startedAt', 'features']);
    expect(raw.startsWith('{"jsonrpc":"2.0","id":2,"result":{"version":')).toBe(true);
  });

  it('lists exactly the methods this daemon serves, in the reference order, and each one answers', async () => {
    const c = await d.client();
    const { methods } = await c.call('server.capabilities');
    expect(methods).toEqual(SERVED_METHODS);
    for (const m of methods.filter((name: string) => name !== 'server.shutdown')) {
      const reply = await c.request(m, {});
      expect(reply.error?.code).not.toBe(-32601);
    }
  });

  it('advertises reference features in the reference order, server.instance_id last among them, then extensions', async () => {
    const c = await d.client();
    const { features } = await c.call('server.capabilities');
    expect(features).toContain('process.stdin.offset');
    const split = features.indexOf('server.instance_id');
    expect(split).toBeGreaterThan(0);
    const reference = features.slice(0, split + 1);
    expect(features.slice(split + 1)).toEqual([
      'process.stdin.eof',
      'process.list',
      'process.stats',
      'process.observe',
      'process.pty',
      'wire.msgpack',
      'process.kill.group',
      'process.spawn.clearEnv',
      'process.handover',
      'session.identify',
    ]);
    const positions = reference.map((f: string) => REFERENCE_FEATURES.indexOf(f));
    expect(positions.every((p: number) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it("has a 32-lowercase-hex instanceId, the banner's, stable across connections", async () => {
    const a = await (await d.client()).call('server.capabilities');
    const b = await (await d.client()).call('server.capabilities');
    expect(a.instanceId).toMatch(/^[0-9a-f]{32}$/);
    expect(b.instanceId).toBe(a.instanceId);
    expect(d.stdout).toContain(`instance ${a.instanceId}`);
  });

  it('has startedAt in Unix milliseconds from this boot, and a version', async () => {
    const { startedAt, version } = await (await d.client()).call('server.capabilities');
    expect(Number.isInteger(startedAt)).toBe(true);
    expect(startedAt).toBeGreaterThanOrEqual(bootedAfter);
    expect(startedAt).toBeLessThanOrEqual(Date.now());
    expect(typeof version).toBe('string');
    expect(version.length).toBeGreaterThan(0);
  });
});

describe('server.shutdown', () => {
  it('needs no auth: it stops the daemon (exit 0), kills its children, removes the socket and daemon.token', async () => {
    const d = await Daemon.start();
    try {
      const owner = await d.client();
      const { pid } = await owner.call('process.spawn', { id: 'sleeper', command: 'sleep', args: ['60'], wantPid: true });
      const idle = await d.client();
      expect(d.tokenFile()).toBe(d.token);
      expect(existsSync(d.socket)).toBe(true);

      const c = await RpcClient.connect(d.socket);
      c.sendRaw('{"jsonrpc":"2.0","id":1,"method":"server.shutdown"}\n');
      expect(await d.exited).toBe(0);
      await c.closed;
      await idle.closed;
      // The reference's reply usually loses the race with the teardown; whatever arrives must be the right one.
      for (const l of c.lines) expect(l).toBe('{"jsonrpc":"2.0","id":1,"result":{"ok":true}}');
      expect(idle.lines).toEqual([]);

      expect(existsSync(d.socket)).toBe(false);
      expect(existsSync(path.join(d.dir, 'daemon.token'))).toBe(false);
      await until(() => !processLive(pid), 5000, 'the child to be killed');
      expect(d.log()).toContain('server.shutdown received over RPC');
      expect(d.log()).toMatch(/cleanup: closed \d+ connection\(s\), killed 1 child process group\(s\)/);
      const exit = owner.frames('sleeper').find((f) => f.stream === 'exit');
      if (exit) expect(exit).toMatchObject({ exitCode: -1, signal: 'SIGKILL', killedBy: 'shutdown' });
    } finally {
      await d.stop();
    }
  });

  it('stops the daemon with a wrong token and mistyped params too', async () => {
    const d = await Daemon.start();
    try {
      const c = await RpcClient.connect(d.socket);
      c.sendRaw('{"jsonrpc":"2.0","id":"s","method":"server.shutdown","params":"x","auth":"wrong"}\n');
      expect(await d.exited).toBe(0);
      expect(existsSync(d.socket)).toBe(false);
    } finally {
      await d.stop();
    }
  });

  it('with a bad or missing jsonrpc gets -32600 (not -32001, even without auth) and the daemon stays up', async () => {
    const d = await Daemon.start();
    try {
      const c = await RpcClient.connect(d.socket);
      expect(await exchange(c, '{"jsonrpc":"1.0","id":1,"method":"server.shutdown"}\n')).toBe(errorLine('1', -32600, 'Invalid JSON-RPC version'));
      expect(await exchange(c, '{"id":2,"method":"server.shutdown"}\n')).toBe(errorLine('2', -32600, 'Invalid JSON-RPC version'));
      expect(await exchange(c, `{"id":3,"method":"server.shutdown","auth":${JSON.stringify(d.token)}}\n`)).toBe(
        errorLine('3', -32600, 'Invalid JSON-RPC version'),
      );
      expect(d.alive).toBe(true);
      expect(await (await d.client()).call('server.ping')).toEqual({ pong: true });
      expect(existsSync(d.socket)).toBe(true);
    } finally {
      await d.stop();
    }
  });
});
