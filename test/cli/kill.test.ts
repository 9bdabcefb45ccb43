/**
 * `claustrum -kill <id>`: the signal reaches the whole process group (a shell's child included), -signal and -wait,
 * and the refusals.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, sandboxes } from '../helpers/cli.js';
import { FIXTURES, until } from '../helpers/daemon.js';
import type { RpcClient } from '../helpers/rpc.js';
import { processLive } from '../helpers/procfs.js';

/** The pid of the only child of `parent`, from /proc. */
async function childOf(parent: number): Promise<number> {
  const { readFileSync } = await import('node:fs');
  return until(
    () => {
      try {
        const kids = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(' ').filter(Boolean);
        // Once it runs sleep, not while it is still the shell's fork (a signal then is the shell's business).
        if (kids.length !== 1) return undefined;
        return readFileSync(`/proc/${kids[0]}/comm`, 'utf8').trim() === 'sleep' ? Number(kids[0]) : undefined;
      } catch {
        return undefined;
      }
    },
    10_000,
    `the child of ${parent}`,
  );
}

async function spawnShell(c: RpcClient, id: string): Promise<{ sh: number; sleep: number }> {
  const sh = (await c.call('process.spawn', { id, command: 'sh', args: ['-c', 'sleep 300; echo after'], wantPid: true })).pid as number;
  return { sh, sleep: await childOf(sh) };
}

describe('claustrum -kill', () => {
  const sandbox = sandboxes();

  it('sends TERM to the process group: the shell and the child it waits for both end', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const c = await sb.client();
    const { sh, sleep } = await spawnShell(c, 'job');
    const r = await runCli(['-kill', 'job', '-socket', sb.socket]);
    expect(r).toMatchObject({ code: 0, stdout: `sent SIGTERM to the process group of job (pid ${sh})\n`, stderr: '' });
    const exit = await c.waitExit('job');
    expect(exit.signal).toBe('SIGTERM');
    await until(() => !processLive(sleep), 10_000, 'the grandchild gone');
  });

  it('-signal INT -wait -json: waits for the end and says how it ended', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const c = await sb.client();
    const { sh, sleep } = await spawnShell(c, 'job');
    const r = await runCli(['-kill', 'job', '-signal', 'sigint', '-wait', '-json', '-socket', sb.socket]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      id: 'job',
      pid: sh,
      signal: 'SIGINT',
      group: true,
      sent: true,
      exited: true,
      exitCode: -1,
      exitSignal: 'SIGINT',
    });
    expect(processLive(sleep)).toBe(false);
    // Again: it has already exited, nothing is sent.
    const again = await runCli(['-kill', 'job', '-socket', sb.socket]);
    expect(again).toMatchObject({ code: 0, stdout: `job (pid ${sh}) had already exited (killed by SIGINT); nothing sent\n` });
  });

  it('-wait escalates to SIGKILL of the group when TERM is ignored', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const c = await sb.client();
    await c.call('process.spawn', { id: 'stubborn', command: process.execPath, args: [path.join(FIXTURES, 'ignore-sigterm.mjs')] });
    await until(() => c.output('stubborn').toString().includes('ready'), 10_000, 'handlers in place');
    const r = await runCli(['-kill', 'stubborn', '-wait', '-socket', sb.socket]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^sent SIGTERM to the process group of stubborn \(pid \d+\), which outlived it: SIGKILL to its group; stubborn ended \(killed by SIGKILL\)\n$/,
    );
  });

  it('refuses an unknown process (exit 1), a signal the daemon cannot send and a missing id (exit 2)', async () => {
    const sb = sandbox();
    await sb.start();
    const r = await runCli(['-kill', 'ghost', '-socket', sb.socket]);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toBe(`claustrum: no process ghost on ${sb.socket} (claustrum -ps lists them)\n`);
    const s = await runCli(['-kill', 'ghost', '-signal', 'QUIT', '-socket', sb.socket]);
    expect(s.code).toBe(2);
    expect(s.stderr).toBe('claustrum: -signal QUIT: the daemon sends TERM, INT, HUP or KILL (with or without SIG)\n');
    const n = await runCli(['-kill', '', '-socket', sb.socket]);
    expect(n.code).toBe(2);
  });
});
