/**
 * `-replay-budget` (issue 10, point 7): one budget for every replay buffer, exited processes evicted first, oldest
 * first, before a live process loses a frame.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture, until } from '../helpers/daemon.js';
import { runCli } from '../helpers/cli.js';

const MiB = 1024 * 1024;

describe('the replay budget', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start({ args: ['-replay-budget', '4MiB'] });
  });
  afterAll(() => d.stop());

  it('evicts the output of exited processes, oldest exit first, and keeps their exit', async () => {
    const c = await d.client({ keepFrames: false });
    // Each job writes 1 MiB (about 1.33 MiB of frames) and exits; four of them do not fit in 4 MiB.
    for (const id of ['job1', 'job2', 'job3', 'job4']) {
      await c.call('process.spawn', { id, ...fixture('flood', String(MiB)) });
      await until(() => c.tally(id).exit, 20_000, `${id} to exit`);
    }
    const live = 'live';
    await c.call('process.spawn', { id: live, command: 'sh', args: ['-c', 'head -c 1048576 /dev/zero; sleep 30'] });
    await until(() => c.tally(live).stdoutBytes === MiB, 20_000, 'the live process output');
    const { processes } = await c.call('process.list', {});
    const byId = Object.fromEntries(processes.map((p: { id: string }) => [p.id, p]));
    // The oldest jobs are down to their exit frame; the live process has lost nothing.
    expect(byId.job1.firstSeq).toBe(byId.job1.lastSeq);
    expect(byId.job2.firstSeq).toBe(byId.job2.lastSeq);
    expect(byId.job4.firstSeq).toBe(1);
    expect(byId[live].firstSeq).toBe(1);
    // An evicted job still tells how it ended.
    const o = await d.client();
    const r = await o.call('process.observe', { id: 'job1' });
    expect(r).toMatchObject({ found: true, running: false });
    expect(o.messages().find((m) => m.type === 'gap')).toEqual({ type: 'gap', processId: 'job1', fromSeq: 1, toSeq: byId.job1.lastSeq - 1 });
    expect(o.frames('job1')).toEqual([expect.objectContaining({ stream: 'exit', exitCode: 0 })]);
    await c.call('process.kill', { id: live, signal: 'KILL' });
  });

  it('is a flag that takes sizes, refuses nonsense, and is listed in -help', async () => {
    const bad = await runCli(['-serve', '-foreground', '-replay-budget', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid value "lots" for flag -replay-budget');
    const help = await runCli(['-help']);
    expect(help.stdout).toMatch(/-replay-budget size\n.*\(default 1GiB\)/);
  });
});
