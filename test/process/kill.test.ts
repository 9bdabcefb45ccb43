/**
 * process.kill and process.killAndWait (claustrum-wire.md §4.6–4.7, §5 exit drain; issue 2 "Methods" and "Stream
 * frames"): signal names, signal width (KILL to the group, the rest to the child), the killAndWait outcomes, and
 * the exit drain when a grandchild holds the pipes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture, sleep, until } from '../helpers/daemon.js';
import { killQuietly, processLive } from '../helpers/procfs.js';
import type { RpcClient } from '../helpers/rpc.js';
import { rawReply } from '../helpers/wire.js';

let d: Daemon;
let c: RpcClient;
const strays: number[] = [];
beforeAll(async () => {
  d = await Daemon.start();
  c = await d.client();
});
afterAll(async () => {
  for (const pid of strays) killQuietly(pid);
  await d.stop();
});

let seq = 0;
/** The raw result (or error) member of a request's reply. */
async function raw(method: string, params: unknown): Promise<string> {
  const id = `k${++seq}`;
  c.sendRaw(`${JSON.stringify({ jsonrpc: '2.0', id, method, params, auth: d.token })}\n`);
  const line = await rawReply(c, id);
  return line.slice(`{"jsonrpc":"2.0","id":"${id}",`.length, -1);
}

/** The pid a fixture printed as "grandchild <pid>". */
async function grandchildOf(id: string): Promise<number> {
  await until(() => /grandchild (\d+)/.test(c.output(id).toString()), 10_000, `${id} to report its grandchild`);
  const pid = Number(/grandchild (\d+)/.exec(c.output(id).toString())![1]);
  strays.push(pid);
  return pid;
}

describe('process.kill', () => {
  it('always answers {"success":true}: unknown id, missing id, exited process', async () => {
    expect(await raw('process.kill', { id: 'nobody' })).toBe('"result":{"success":true}');
    expect(await raw('process.kill', { id: 'nobody', signal: 'KILL' })).toBe('"result":{"success":true}');
    expect(await raw('process.kill', {})).toBe('"result":{"success":true}');
    await c.call('process.spawn', { id: 'done', command: 'true' });
    await c.waitExit('done');
    expect(await raw('process.kill', { id: 'done', signal: 'KILL' })).toBe('"result":{"success":true}');
  });

  it('maps signal names case-sensitively with an optional SIG prefix; anything else is TERM', async () => {
    await c.call('process.spawn', { id: 'sig', ...fixture('report-signals') });
    await c.waitFor((m) => m.processId === 'sig' && m.stream === 'stdout');
    const cases: [string | undefined, string][] = [
      ['INT', 'SIGINT'],
      ['SIGINT', 'SIGINT'],
      ['HUP', 'SIGHUP'],
      ['SIGHUP', 'SIGHUP'],
      ['TERM', 'SIGTERM'],
      ['SIGTERM', 'SIGTERM'],
      [undefined, 'SIGTERM'],
      ['', 'SIGTERM'],
      ['int', 'SIGTERM'],
      ['sigint', 'SIGTERM'],
      ['Hup', 'SIGTERM'],
      ['QUIT', 'SIGTERM'],
      ['SIGQUIT', 'SIGTERM'],
      ['USR1', 'SIGTERM'],
      ['9', 'SIGTERM'],
      ['kill', 'SIGTERM'],
      [' KILL', 'SIGTERM'],
      ['SIGSIGKILL', 'SIGTERM'],
    ];
    for (let i = 0; i < cases.length; i++) {
      const [name, want] = cases[i]!;
      await c.call('process.kill', name === undefined ? { id: 'sig' } : { id: 'sig', signal: name });
      await until(
        () =>
          c
            .output('sig')
            .toString()
            .split('\n')
            .filter((l) => l.startsWith('got ')).length > i,
        10_000,
        `signal ${name}`,
      );
      const got = c
        .output('sig')
        .toString()
        .split('\n')
        .filter((l) => l.startsWith('got '));
      expect(got[i], `signal ${JSON.stringify(name)}`).toBe(`got ${want}`);
    }
    await c.call('process.kill', { id: 'sig', signal: 'SIGKILL' });
    expect(await c.waitExit('sig')).toMatchObject({ exitCode: -1, signal: 'SIGKILL', killedBy: 'client' });
  });

  it('KILL reaches a grandchild through the process group', async () => {
    await c.call('process.spawn', { id: 'grp', ...fixture('spawn-grandchild') });
    const grandchild = await grandchildOf('grp');
    expect(processLive(grandchild)).toBe(true);
    await c.call('process.kill', { id: 'grp', signal: 'KILL' });
    expect(await c.waitExit('grp')).toMatchObject({ exitCode: -1, signal: 'SIGKILL', killedBy: 'client' });
    await until(() => !processLive(grandchild), 5000, 'the grandchild to die');
  });

  it('TERM reaches only the direct child; the grandchild lives on', async () => {
    await c.call('process.spawn', { id: 'grp2', ...fixture('spawn-grandchild') });
    const grandchild = await grandchildOf('grp2');
    await c.call('process.kill', { id: 'grp2', signal: 'TERM' });
    expect(await c.waitExit('grp2')).toMatchObject({ exitCode: -1, signal: 'SIGTERM', killedBy: 'client' });
    await sleep(200);
    expect(processLive(grandchild)).toBe(true);
    killQuietly(grandchild);
  });
});

describe('process.killAndWait', () => {
  it('requires an id', async () => {
    expect(await raw('process.killAndWait', {})).toBe('"error":{"code":-32602,"message":"Process ID is required"}');
    expect(await raw('process.killAndWait', { id: '' })).toBe('"error":{"code":-32602,"message":"Process ID is required"}');
  });

  it('an unknown id: {"found":false,"died":false}', async () => {
    expect(await raw('process.killAndWait', { id: 'nobody' })).toBe('"result":{"found":false,"died":false}');
  });

  it('a process that already exited: alreadyExited, no signal', async () => {
    await c.call('process.spawn', { id: 'early', command: 'true' });
    expect(await c.waitExit('early')).toEqual({ type: 'stream', processId: 'early', stream: 'exit', seq: 1, exitCode: 0 });
    expect(await raw('process.killAndWait', { id: 'early' })).toBe('"result":{"found":true,"died":true,"alreadyExited":true}');
  });

  it('a process that dies within the grace: {"found":true,"died":true}, after its exit frame', async () => {
    await c.call('process.spawn', { id: 'meek', command: 'cat' });
    const reply = await raw('process.killAndWait', { id: 'meek' });
    expect(reply).toBe('"result":{"found":true,"died":true}');
    const exitAt = c.lines.findIndex((l) => l.includes('"processId":"meek"') && l.includes('"exit"'));
    const replyAt = c.lines.findIndex((l) => l.includes('"found":true,"died":true}') && !l.includes('alreadyExited'));
    expect(exitAt).toBeGreaterThanOrEqual(0);
    expect(exitAt).toBeLessThan(replyAt);
    expect(c.frames('meek').at(-1)).toMatchObject({ stream: 'exit', exitCode: -1, signal: 'SIGTERM', killedBy: 'client' });
  });

  it('uses the signal given, with the same mapping', async () => {
    await c.call('process.spawn', { id: 'meek2', command: 'cat' });
    expect(await raw('process.killAndWait', { id: 'meek2', signal: 'SIGINT' })).toBe('"result":{"found":true,"died":true}');
    expect(c.frames('meek2').at(-1)).toMatchObject({ stream: 'exit', signal: 'SIGINT', killedBy: 'client' });
  });

  it('does not sweep the group when the child dies within the grace', async () => {
    await c.call('process.spawn', { id: 'grp3', ...fixture('spawn-grandchild') });
    const grandchild = await grandchildOf('grp3');
    expect(await raw('process.killAndWait', { id: 'grp3' })).toBe('"result":{"found":true,"died":true}');
    expect(processLive(grandchild)).toBe(true);
    killQuietly(grandchild);
  });

  it('escalates to a group SIGKILL when the child outlives the grace', async () => {
    await c.call('process.spawn', { id: 'stubborn', ...fixture('ignore-sigterm') });
    await c.waitFor((m) => m.processId === 'stubborn' && m.stream === 'stdout');
    expect(await raw('process.killAndWait', { id: 'stubborn', timeoutMs: 300 })).toBe('"result":{"found":true,"died":true,"escalated":true}');
    expect(c.frames('stubborn').at(-1)).toMatchObject({ stream: 'exit', exitCode: -1, signal: 'SIGKILL', killedBy: 'client' });
    expect(c.output('stubborn').toString()).toContain('ignored SIGTERM');
    expect(d.log()).toContain('Process stubborn: still alive after 300ms; escalating');
  });

  it('escalation reaches the whole group', async () => {
    // sh ignores TERM and so does the sleeper it backgrounds (an ignored signal stays ignored across exec).
    await c.call('process.spawn', { id: 'stubgrp', command: 'sh', args: ['-c', 'trap "" TERM; sleep 600 & echo "grandchild $!"; wait'] });
    const grandchild = await grandchildOf('stubgrp');
    expect(await raw('process.killAndWait', { id: 'stubgrp', timeoutMs: 200, escalate: null })).toBe(
      '"result":{"found":true,"died":true,"escalated":true}',
    );
    await until(() => !processLive(grandchild), 5000, 'the grandchild to die');
  });

  it('with escalate:false: {"found":true,"died":false}, and the process keeps running', async () => {
    const { pid } = await c.call('process.spawn', { id: 'spared', ...fixture('ignore-sigterm'), wantPid: true });
    await c.waitFor((m) => m.processId === 'spared' && m.stream === 'stdout');
    expect(await raw('process.killAndWait', { id: 'spared', timeoutMs: 200, escalate: false })).toBe('"result":{"found":true,"died":false}');
    expect(processLive(pid)).toBe(true);
    expect(await c.call('process.reattach', { id: 'spared', fromSeq: 1e15 })).toMatchObject({ found: true, running: true });
    expect(c.frames('spared').some((f) => f.stream === 'exit')).toBe(false);
    await c.call('process.kill', { id: 'spared', signal: 'KILL' });
    await c.waitExit('spared');
  });

  it('a pending killAndWait holds up nothing else on its connection', async () => {
    await c.call('process.spawn', { id: 'slowdeath', ...fixture('ignore-sigterm') });
    await c.waitFor((m) => m.processId === 'slowdeath' && m.stream === 'stdout');
    // One write, so the daemon reads all four lines before the killAndWait grace can possibly run out.
    const req = (id: string, method: string, params?: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method, params, auth: d.token });
    c.sendRaw(
      `${req('kw', 'process.killAndWait', { id: 'slowdeath', timeoutMs: 500, escalate: false })}\n[]\n${req('pg', 'server.ping')}\n${req('kl', 'process.kill', { id: 'nobody' })}\n`,
    );
    const done = await c.waitFor((m) => m.id === 'kw');
    expect(done.result).toEqual({ found: true, died: false });
    const order = c.lines.map((l) => JSON.parse(l)).filter((m) => m.type !== 'stream');
    const waitAt = order.findIndex((m) => m.id === 'kw');
    expect(order.slice(waitAt - 3, waitAt).map((m) => m.id)).toEqual([null, 'pg', 'kl']);
    expect(order[waitAt - 3].error.code).toBe(-32700);
    await c.call('process.kill', { id: 'slowdeath', signal: 'KILL' });
    await c.waitExit('slowdeath');
  });

  it('a client that disconnects while waiting costs nothing: the kill still completes', async () => {
    const e = await d.client();
    await e.call('process.spawn', { id: 'orphanwait', ...fixture('ignore-sigterm') });
    await e.waitFor((m) => m.processId === 'orphanwait' && m.stream === 'stdout');
    e.sendRaw(
      `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'process.killAndWait', params: { id: 'orphanwait', timeoutMs: 200 }, auth: d.token })}\n`,
    );
    await sleep(20);
    e.destroy();
    await until(
      async () => (await c.call('process.reattach', { id: 'orphanwait', fromSeq: 1e15 })).running === false,
      10_000,
      'the kill to complete',
    );
    expect(await raw('process.killAndWait', { id: 'orphanwait' })).toBe('"result":{"found":true,"died":true,"alreadyExited":true}');
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });
});

describe('the exit drain', () => {
  it('waits for output written after the reap by a grandchild that then lets go of the pipes', async () => {
    await c.call('process.spawn', { id: 'late', command: 'sh', args: ['-c', '(sleep 1; echo late) & echo early'] });
    const exit = await c.waitExit('late');
    expect(exit).toMatchObject({ exitCode: 0 });
    expect(c.output('late').toString()).toBe('early\nlate\n');
    expect(c.frames('late').at(-1)!.stream).toBe('exit');
    expect(d.log()).not.toContain('Process late: pipe drain grace expired');
  });

  it('emits the exit frame while a grandchild still holds the pipes, and says so in the log; kill and killAndWait in the window signal nothing', async () => {
    await c.call('process.spawn', { id: 'held', ...fixture('hold-pipes', '60') });
    const grandchild = await grandchildOf('held');
    // Reaped (running flips at the reap), but the exit frame waits for the pipes.
    await until(async () => (await c.call('process.reattach', { id: 'held', fromSeq: 1e15 })).running === false, 10_000, 'the reap');
    expect(c.frames('held').some((f) => f.stream === 'exit')).toBe(false);
    expect(await raw('process.stdin', { id: 'held', data: 'eA==' })).toBe('"error":{"code":-32602,"message":"Process not running"}');
    // A reaped child is never signalled, not even its group by KILL: the grandchild keeps the pipes.
    expect(await raw('process.kill', { id: 'held', signal: 'KILL' })).toBe('"result":{"success":true}');
    await sleep(100);
    expect(processLive(grandchild)).toBe(true);

    expect(await raw('process.killAndWait', { id: 'held' })).toBe('"result":{"found":true,"died":true}');
    const exit = c.frames('held').at(-1)!;
    expect(exit).toEqual({ type: 'stream', processId: 'held', stream: 'exit', seq: exit.seq, exitCode: 0 });
    expect(processLive(grandchild)).toBe(true);
    expect(d.log()).toContain('Process held: pipe drain grace expired (grandchild holding stdio?); force-closing');
    expect(await raw('process.killAndWait', { id: 'held' })).toBe('"result":{"found":true,"died":true,"alreadyExited":true}');
    killQuietly(grandchild);
  });
});
