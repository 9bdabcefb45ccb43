/**
 * process.spawn (claustrum-wire.md §4.4, issue 2 "Methods" and "Children"): the reply, the error texts in their
 * check order, tilde expansion of cwd, the child environment, the process group, and respawning a live id.
 */
import { accessSync, chmodSync, constants, mkdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture, tempDir } from '../helpers/daemon.js';
import { killQuietly, processGroup, processLive } from '../helpers/procfs.js';
import type { RpcClient } from '../helpers/rpc.js';
import { rawReply } from '../helpers/wire.js';

/** Where the daemon's own PATH (the test runner's, inherited) finds a bare command name: Go's exec.LookPath. */
function lookPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (!statSync(candidate).isDirectory()) return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} is not on the PATH`);
}

async function spawnError(c: RpcClient, params: unknown): Promise<{ code: number; message: string }> {
  const reply = await c.request('process.spawn', params);
  expect(reply.result).toBeUndefined();
  return reply.error!;
}

describe('process.spawn', () => {
  let d: Daemon;
  let c: RpcClient;
  let scratch: string;
  beforeAll(async () => {
    d = await Daemon.start();
    c = await d.client();
    scratch = tempDir('claustrum-spawn-');
  });
  afterAll(() => d.stop());

  describe('the reply', () => {
    it('is exactly {"success":true} without wantPid (and with wantPid false)', async () => {
      c.sendRaw(`{"jsonrpc":"2.0","id":"s1","method":"process.spawn","params":{"id":"plain","command":"true"},"auth":${JSON.stringify(d.token)}}\n`);
      expect(await rawReply(c, 's1')).toBe('{"jsonrpc":"2.0","id":"s1","result":{"success":true}}');
      c.sendRaw(
        `{"jsonrpc":"2.0","id":"s2","method":"process.spawn","params":{"id":"plain2","command":"true","wantPid":false},"auth":${JSON.stringify(d.token)}}\n`,
      );
      expect(await rawReply(c, 's2')).toBe('{"jsonrpc":"2.0","id":"s2","result":{"success":true}}');
    });

    it('adds pid and startTime (epoch seconds, the daemon clock at spawn) with wantPid, in that order', async () => {
      const before = Date.now() / 1000;
      const r = await c.call('process.spawn', { id: 'withpid', command: 'sleep', args: ['30'], wantPid: true });
      const after = Date.now() / 1000;
      expect(Object.keys(r)).toEqual(['success', 'pid', 'startTime']);
      expect(r.success).toBe(true);
      expect(Number.isInteger(r.pid)).toBe(true);
      expect(processLive(r.pid)).toBe(true);
      expect(r.startTime).toBeGreaterThanOrEqual(before - 0.001);
      expect(r.startTime).toBeLessThanOrEqual(after + 0.001);
      await c.call('process.kill', { id: 'withpid', signal: 'KILL' });
      await c.waitExit('withpid');
    });

    it('streams stdout and stderr frames, seq from 1 across both, then the exit frame with the exit status', async () => {
      await c.call('process.spawn', { id: 'p1', command: 'sh', args: ['-c', 'echo hello; echo oops 1>&2; exit 3'] });
      await c.waitExit('p1');
      const lines = c.lines.filter((l) => l.includes('"processId":"p1"'));
      expect(lines).toHaveLength(3);
      expect(lines).toContain('{"type":"stream","processId":"p1","stream":"exit","seq":3,"exitCode":3}');
      expect(lines.at(-1)).toBe('{"type":"stream","processId":"p1","stream":"exit","seq":3,"exitCode":3}');
      expect(lines.slice(0, 2).sort()).toEqual(
        [
          '{"type":"stream","processId":"p1","stream":"stdout","seq":1,"data":"aGVsbG8K"}',
          '{"type":"stream","processId":"p1","stream":"stderr","seq":2,"data":"b29wcwo="}',
          '{"type":"stream","processId":"p1","stream":"stdout","seq":2,"data":"aGVsbG8K"}',
          '{"type":"stream","processId":"p1","stream":"stderr","seq":1,"data":"b29wcwo="}',
        ]
          .filter((l) => lines.includes(l))
          .sort(),
      );
      expect(c.output('p1').toString()).toBe('hello\n');
      expect(c.output('p1', 'stderr').toString()).toBe('oops\n');
    });

    it('names the terminating signal in the exit frame, with exitCode -1', async () => {
      await c.call('process.spawn', { id: 'selfkill', command: 'sh', args: ['-c', 'kill -TERM $$'] });
      const exit = await c.waitExit('selfkill');
      expect(exit).toEqual({ type: 'stream', processId: 'selfkill', stream: 'exit', seq: 1, exitCode: -1, signal: 'SIGTERM' });
    });
  });

  describe('errors, in the reference order and words', () => {
    it.each([
      [{}, 'Process ID is required'],
      [{ id: '' }, 'Process ID is required'],
      [{ command: 'true' }, 'Process ID is required'],
      [{ id: '', command: 'true', cwd: '/definitely/missing' }, 'Process ID is required'],
      [{ id: 'e' }, 'Command is required'],
      [{ id: 'e', command: '' }, 'Command is required'],
      [{ id: 'e', command: '', cwd: '/definitely/missing' }, 'Command is required'],
    ])('%j → -32602 %s', async (params, message) => {
      expect(await spawnError(c, params)).toEqual({ code: -32602, message });
    });

    it('a missing cwd: chdir <cwd>: stat <cwd>: no such file or directory (before the command check)', async () => {
      const cwd = path.join(scratch, 'nope');
      const msg = `chdir ${cwd}: stat ${cwd}: no such file or directory`;
      expect(await spawnError(c, { id: 'e', command: 'true', cwd })).toEqual({ code: -32603, message: msg });
      expect(await spawnError(c, { id: 'e', command: 'no-such-command-xyz', cwd })).toEqual({ code: -32603, message: msg });
    });

    it('a cwd that is a file: chdir <cwd>: not a directory', async () => {
      const file = path.join(scratch, 'a-file');
      writeFileSync(file, 'x');
      expect(await spawnError(c, { id: 'e', command: 'true', cwd: file })).toEqual({ code: -32603, message: `chdir ${file}: not a directory` });
    });

    it('a bare name not on the PATH: exec: "<name>": executable file not found in $PATH', async () => {
      expect(await spawnError(c, { id: 'e', command: 'no-such-command-xyz' })).toEqual({
        code: -32603,
        message: 'exec: "no-such-command-xyz": executable file not found in $PATH',
      });
    });

    it('a missing path: fork/exec <path>: no such file or directory', async () => {
      expect(await spawnError(c, { id: 'e', command: '/nonexistent/bin/tool' })).toEqual({
        code: -32603,
        message: 'fork/exec /nonexistent/bin/tool: no such file or directory',
      });
      expect(await spawnError(c, { id: 'e', command: './no-such-tool' })).toEqual({
        code: -32603,
        message: 'fork/exec ./no-such-tool: no such file or directory',
      });
    });

    it('an unstartable file: fork/exec <path>: <errno text>', async () => {
      const plain = path.join(scratch, 'not-executable');
      writeFileSync(plain, '#!/bin/sh\necho hi\n');
      chmodSync(plain, 0o644);
      expect(await spawnError(c, { id: 'e', command: plain })).toEqual({ code: -32603, message: `fork/exec ${plain}: permission denied` });
      expect(await spawnError(c, { id: 'e', command: scratch })).toEqual({ code: -32603, message: `fork/exec ${scratch}: permission denied` });
    });

    it('NUL in args or env: fork/exec <path>: invalid argument, never a crash', async () => {
      const truePath = lookPath('true');
      expect(await spawnError(c, { id: 'e', command: 'true', args: ['a\u0000b'] })).toEqual({
        code: -32603,
        message: `fork/exec ${truePath}: invalid argument`,
      });
      expect(await spawnError(c, { id: 'e', command: 'true', env: { A: 'x\u0000y' } })).toEqual({
        code: -32603,
        message: `fork/exec ${truePath}: invalid argument`,
      });
    });

    it("NUL in cwd: chdir <cwd>: stat <cwd>: invalid argument (Go's text for EINVAL, not a Node error code)", async () => {
      const cwd = `${scratch}/a\u0000b`;
      expect(await spawnError(c, { id: 'e', command: 'true', cwd })).toEqual({
        code: -32603,
        message: `chdir ${cwd}: stat ${cwd}: invalid argument`,
      });
    });

    it('logs the failure, and registers nothing under the id', async () => {
      expect(d.log()).toContain('Failed to start process e: exec: "no-such-command-xyz": executable file not found in $PATH');
      expect(await c.call('process.reattach', { id: 'e' })).toEqual({ found: false, running: false, firstSeq: 0, lastSeq: 0, stdinApplied: 0 });
    });
  });

  describe('children', () => {
    it('each child leads its own process group', async () => {
      const daemonGroup = processGroup(d.proc.pid!);
      const pids: number[] = [];
      for (const id of ['g1', 'g2']) {
        await c.call('process.spawn', { id, ...fixture('print-pgid') });
        await c.waitExit(id);
        const [pid, pgid] = c.output(id).toString().trim().split(' ').map(Number);
        expect(pgid).toBe(pid);
        expect(pgid).not.toBe(daemonGroup);
        pids.push(pid!);
      }
      expect(pids[0]).not.toBe(pids[1]);
    });

    it('a respawn of a live id replaces the entry and leaves the old process running, streaming under its own seq', async () => {
      const old = await c.call('process.spawn', { id: 'dup', command: 'sh', args: ['-c', 'echo old; exec sleep 60'], wantPid: true });
      await c.waitFor((m) => m.processId === 'dup' && m.data === Buffer.from('old\n').toString('base64'));
      const young = await c.call('process.spawn', { id: 'dup', command: 'sh', args: ['-c', 'echo young; exec sleep 60'], wantPid: true });
      try {
        expect(young.pid).not.toBe(old.pid);
        await c.waitFor((m) => m.processId === 'dup' && m.data === Buffer.from('young\n').toString('base64'));
        expect(processLive(old.pid)).toBe(true);

        // kill, stdin and reattach now reach the new process only.
        expect(await c.call('process.reattach', { id: 'dup', wantPid: true, fromSeq: 99 })).toMatchObject({ pid: young.pid, running: true });
        await c.call('process.kill', { id: 'dup', signal: 'KILL' });
        const youngExit = await c.waitExit('dup');
        expect(youngExit).toMatchObject({ seq: 2, exitCode: -1, signal: 'SIGKILL', killedBy: 'client' });
        expect(processLive(old.pid)).toBe(true);

        // The old one still streams to this connection, under the same id, with its own seq.
        process.kill(old.pid, 'SIGKILL');
        await c.waitFor((m) => m.processId === 'dup' && m.stream === 'exit' && m.killedBy === undefined);
        const exits = c.frames('dup').filter((f) => f.stream === 'exit');
        expect(exits).toHaveLength(2);
        expect(exits[1]).toEqual({ type: 'stream', processId: 'dup', stream: 'exit', seq: 2, exitCode: -1, signal: 'SIGKILL' });
      } finally {
        killQuietly(old.pid);
        killQuietly(young.pid);
      }
    });
  });
});

describe('cwd tilde expansion', () => {
  let d: Daemon;
  let c: RpcClient;
  let home: string;
  beforeAll(async () => {
    home = realpathSync(tempDir('claustrum-home-'));
    mkdirSync(path.join(home, 'sub'));
    d = await Daemon.start({ env: { HOME: home } });
    c = await d.client();
  });
  afterAll(() => d.stop());

  async function cwdOf(id: string, cwd: string): Promise<string> {
    await c.call('process.spawn', { id, ...fixture('print-cwd'), cwd });
    await c.waitExit(id);
    return c.output(id).toString().trim();
  }

  it('a bare ~ is the home directory', async () => {
    expect(await cwdOf('t1', '~')).toBe(home);
  });

  it('a leading ~/ is the home directory, the rest cleaned', async () => {
    expect(await cwdOf('t2', '~/sub')).toBe(path.join(home, 'sub'));
    expect(await cwdOf('t3', '~/sub/../sub/./')).toBe(path.join(home, 'sub'));
  });

  it('error texts carry the expanded spelling', async () => {
    const want = path.join(home, 'missing');
    expect(await spawnError(c, { id: 'e', command: 'true', cwd: '~/missing/' })).toEqual({
      code: -32603,
      message: `chdir ${want}: stat ${want}: no such file or directory`,
    });
  });

  it('~user, $HOME and a ~ elsewhere are not expanded', async () => {
    for (const cwd of ['~nobody-here', '$HOME', `${home}/~`]) {
      expect(await spawnError(c, { id: 'e', command: 'true', cwd })).toEqual({
        code: -32603,
        message: `chdir ${cwd}: stat ${cwd}: no such file or directory`,
      });
    }
  });
});

describe('the child environment', () => {
  let d: Daemon;
  let c: RpcClient;
  const token = `tok-${Math.random().toString(36).slice(2)}`;
  beforeAll(async () => {
    // The daemon is started with the token itself in CLAUDE_RPC_TOKEN, as a careless launcher might do.
    d = await Daemon.start({ token, env: { CLAUDE_RPC_TOKEN: token, FROM_DAEMON: 'd', SHARED: 'daemon' } });
    c = await d.client();
  });
  afterAll(() => d.stop());

  async function envOf(id: string, env?: Record<string, string>): Promise<Record<string, string>> {
    await c.call('process.spawn', { id, ...fixture('print-env'), ...(env ? { env } : {}) });
    await c.waitExit(id);
    return JSON.parse(c.output(id).toString());
  }

  function expectNoToken(env: Record<string, string>): void {
    expect(Object.hasOwn(env, 'CLAUDE_RPC_TOKEN')).toBe(false);
    for (const [k, v] of Object.entries(env)) {
      expect(v.includes(token), `env ${k} carries the token`).toBe(false);
      expect(k.includes(token)).toBe(false);
    }
  }

  it("is the daemon's, without CLAUDE_RPC_TOKEN or the token", async () => {
    const env = await envOf('env1');
    expect(env.FROM_DAEMON).toBe('d');
    expect(env.PATH).toBeTruthy();
    expectNoToken(env);
  });

  it("is merged with the request's env, which cannot put CLAUDE_RPC_TOKEN back", async () => {
    const env = await envOf('env2', { FROM_REQUEST: 'r', SHARED: 'request', CLAUDE_RPC_TOKEN: 'from-request', EMPTY: '' });
    expect(env.FROM_REQUEST).toBe('r');
    expect(env.SHARED).toBe('request');
    expect(env.FROM_DAEMON).toBe('d');
    expect(env.EMPTY).toBe('');
    expectNoToken(env);
    expect(Object.values(env)).not.toContain('from-request');
  });

  it("resolves the command with the daemon's PATH, while the child gets the PATH it was given", async () => {
    await c.call('process.spawn', { id: 'path', command: 'sh', args: ['-c', 'printf %s "$PATH"'], env: { PATH: '/nowhere' } });
    await c.waitExit('path');
    expect(c.output('path').toString()).toBe('/nowhere');
  });

  it('never leaks the token into the log', () => {
    expect(d.log()).not.toContain(token);
  });
});
