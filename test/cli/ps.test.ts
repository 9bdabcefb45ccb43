/**
 * `claustrum -ps`: the real executable against a real daemon, table and JSON; and the rendering of the columns that
 * newer daemons add (terminal size, observers), which appear only when a daemon reports them.
 */
import { describe, expect, it } from 'vitest';
import { renderPs, type PsRow } from '../../src/cli/ps.js';
import { runCli, sandboxes } from '../helpers/cli.js';

describe('claustrum -ps', () => {
  const sandbox = sandboxes();

  it('lists running and exited processes with pid, state, age, CPU, memory and the command line', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const c = await sb.client();
    const sleeper = (await c.call('process.spawn', { id: 'sleeper', command: 'sleep', args: ['300'], wantPid: true })).pid as number;
    await c.call('process.spawn', { id: 'three', command: 'sh', args: ['-c', 'exit 3'] });
    await c.call('process.spawn', { id: 'weird', command: 'printf', args: ['a\u001b[2Jb\nc'] });
    await c.waitExit('three');
    await c.waitExit('weird');

    const r = await runCli(['-ps', '-socket', sb.socket]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +PID +STATE +AGE +CPU% +MEM +OBS +COMMAND$/);
    const row = (id: string) => lines.find((l) => l.startsWith(`${id} `))!;
    expect(row('sleeper')).toMatch(new RegExp(`^sleeper +${sleeper} +running +\\S+ +\\d+\\.\\d +\\d+(\\.\\d)?(B|KiB|MiB) +0 +sleep 300$`));
    expect(row('three')).toMatch(/^three +\d+ +exited 3 +\S+ +- +- +0 +sh -c 'exit 3'$/);
    // Control characters from a command line never reach the terminal raw.
    expect(row('weird')).toContain("printf 'a\\x1b[2Jb\\nc'");
    expect(r.stdout).not.toContain('\u001b');
    // No terminal among them: no TTY column (the observer count is always reported).
    expect(lines[0]).not.toContain('TTY');

    const j = await runCli(['-ps', '-json', '-socket', sb.socket]);
    expect(j.code).toBe(0);
    const { processes } = JSON.parse(j.stdout);
    expect(processes.map((p: PsRow) => p.id)).toEqual(['sleeper', 'three', 'weird']);
    const s = processes[0];
    expect(s).toMatchObject({ id: 'sleeper', pid: sleeper, state: 'running', command: 'sleep', args: ['300'], descendants: 0 });
    expect(s.cpu).toBeGreaterThanOrEqual(0);
    expect(s.memory).toBeGreaterThan(0);
    expect(processes[1]).toMatchObject({ id: 'three', state: 'exited', exitCode: 3, cpu: null, memory: null });
  });

  it('says so when there are no processes, and fails with a clear message when no daemon answers', async () => {
    const sb = sandbox();
    await sb.start();
    expect(await runCli(['-ps', '-socket', sb.socket])).toMatchObject({ code: 0, stdout: 'no processes\n' });
    const none = sandbox();
    const r = await runCli(['-ps', '-socket', none.socket]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^claustrum: no token for .*daemon\.token does not exist/);
  });

  it('shows terminal sizes and observer counts once process.list carries them', () => {
    const base: PsRow = {
      id: 'a',
      pid: 10,
      state: 'running',
      command: 'bash',
      args: [],
      cwd: '/',
      startedAt: 0,
      elapsedMs: 65_000,
      cpu: 1.25,
      memory: 5 * 1024 * 1024,
      descendants: 0,
    };
    const out = renderPs([
      { ...base, pty: { cols: 120, rows: 40 }, observers: 2 },
      { ...base, id: 'piped', pid: 11, observers: 0 },
    ]);
    const [head, a, piped] = out.trimEnd().split('\n');
    expect(head).toMatch(/^ID +PID +STATE +AGE +CPU% +MEM +TTY +OBS +COMMAND$/);
    expect(a).toMatch(/^a +10 +running +1m5s +1\.3 +5\.0MiB +120x40 +2 +bash$/);
    expect(piped).toMatch(/^piped +11 +running +1m5s +1\.3 +5\.0MiB +- +0 +bash$/);
  });
});
