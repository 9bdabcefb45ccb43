/**
 * A daemon that takes over hears the keeper's notices from its hello on: a child that exits (or writes) while the
 * new daemon is still starting up, after its hello and before it adopted the processes, must not be lost to it.
 * The window is made wide on purpose: a SIGSTOPped predecessor makes the newcomer's lock wait 2 s for it.
 */
import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/cli.js';
import { until } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';

describe('notices between a takeover hello and the adoption', () => {
  const sandbox = sandboxes();

  it('a child that exits while its adopting daemon starts up is adopted as exited, with its last output', async () => {
    const sb = sandbox();
    const first = await sb.start();
    const c = await sb.client();
    const { pid: child } = await c.call('process.spawn', {
      id: 'brief',
      command: 'sh',
      args: ['-c', 'trap \'echo "last words"; exit 7\' USR1; echo started; while :; do sleep 0.05; done'],
      wantPid: true,
    });
    sb.track(child);
    await until(() => c.output('brief').toString() === 'started\n', 10_000, 'its first line');
    c.destroy();
    process.kill(first.pid, 'SIGSTOP');
    const second = sb.start();
    // The hello is said (the keeper now reports to the newcomer), the lock's 2 s wait for the stopped predecessor runs.
    await until(() => sb.log().includes(`taking over from daemon ${first.instanceId}`), 20_000, "the newcomer's hello");
    // The child is told to finish by a signal of the test's own: the daemons take no part.
    process.kill(child, 'SIGUSR1');
    await until(() => !processLive(child), 10_000, 'the child to exit');
    await second;
    const again = await sb.client();
    const entry = await until(
      async () => ((await again.call('process.list', {})).processes as any[]).find((p) => p.id === 'brief' && !p.running),
      10_000,
      'the child listed as exited',
    );
    expect(entry).toMatchObject({ exitCode: 7 });
    await again.call('process.reattach', { id: 'brief', fromSeq: 0 });
    const exit = await again.waitExit('brief', 10_000);
    expect(exit).toMatchObject({ exitCode: 7 });
    expect(again.output('brief').toString()).toBe('started\nlast words\n');
  });
});
