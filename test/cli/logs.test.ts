/**
 * `claustrum -logs <id> [-f]` (issue 11): a process's output read as an observer, through the real executable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, until } from '../helpers/daemon.js';
import { runCli } from '../helpers/cli.js';
import { b64 } from '../helpers/rpc.js';

let d: Daemon;
beforeAll(async () => {
  d = await Daemon.start();
});
afterAll(() => d.stop());

describe('claustrum -logs', () => {
  it('prints an exited process: stdout to stdout, stderr to stderr, and exits with its code', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'past', command: 'sh', args: ['-c', 'echo out1; echo err1 >&2; echo out2; exit 5'] });
    await c.waitExit('past');
    const r = await runCli(['-logs', 'past', '-socket', d.socket]);
    expect(r).toMatchObject({ code: 5, stdout: 'out1\nout2\n', stderr: 'err1\n' });
  });

  it('-f follows a running process to its exit and exits with its code; the owner keeps it', async () => {
    const owner = await d.client();
    await owner.call('process.spawn', { id: 'live', command: 'sh', args: ['-c', 'echo before; read x; echo "got $x"; exit 7'] });
    await owner.waitFor((m) => m.type === 'stream' && m.processId === 'live');
    const following = runCli(['-socket', d.socket, '-logs', 'live', '-f'], { timeoutMs: 30_000 });
    await until(async () => (await owner.call('process.list', {})).processes.find((p: { id: string }) => p.id === 'live')?.observers === 1);
    await owner.call('process.stdin', { id: 'live', data: b64('it\n') });
    const r = await following;
    expect(r).toMatchObject({ code: 7, stdout: 'before\ngot it\n', stderr: '' });
    expect(owner.isClosed).toBe(false);
    expect((await owner.waitExit('live')).exitCode).toBe(7);
  });

  it('without -f a running process prints what is retained and exits 0, leaving it running', async () => {
    const owner = await d.client();
    await owner.call('process.spawn', { id: 'ongoing', command: 'sh', args: ['-c', 'echo so far; sleep 30'] });
    await owner.waitFor((m) => m.type === 'stream' && m.processId === 'ongoing');
    const r = await runCli(['-socket', d.socket, '-logs', 'ongoing']);
    expect(r).toMatchObject({ code: 0, stdout: 'so far\n' });
    const entry = (await owner.call('process.list', {})).processes.find((p: { id: string }) => p.id === 'ongoing');
    expect(entry).toMatchObject({ running: true, observers: 0 });
    await owner.call('process.kill', { id: 'ongoing', signal: 'KILL' });
  });

  it('a signal death exits 128 + its number', async () => {
    const c = await d.client();
    await c.call('process.spawn', { id: 'killed', command: 'sh', args: ['-c', 'kill -TERM $$'] });
    await c.waitExit('killed');
    expect((await runCli(['-socket', d.socket, '-logs', 'killed'])).code).toBe(143);
  });

  it('an unknown id is exit 1 with a hint; a missing id is a usage error', async () => {
    const r = await runCli(['-socket', d.socket, '-logs', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no process nope on the daemon');
    const u = await runCli(['-socket', d.socket, '-logs', '']);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('-logs needs a process id');
  });
});
