/**
 * Issue 10 (5): no catchable signal ends the daemon without its teardown, SIGUSR1 opens no inspector, and a launcher
 * killed during start-up does not take the new daemon down.
 *
 * Before the fix: SIGUSR1 opened Node's inspector on a TCP port any local user could reach (here checked by a second
 * user, uid 65534, fetching its /json/list); SIGUSR2, SIGQUIT, SIGALRM and the others killed the daemon outright; and
 * the readiness report to a dead launcher raised an uncaught EPIPE that shut the daemon down.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { IGNORED_SIGNALS, SHUTDOWN_SIGNALS } from '../../src/daemon/signals.js';
import { BIN, Daemon, fixture, until } from '../helpers/daemon.js';
import { killQuietly, processLive } from '../helpers/procfs.js';
import { RpcClient } from '../helpers/rpc.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** host:port of every TCP socket `pid` listens on, read from /proc (its descriptors and the TCP tables). */
function tcpListeners(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkOr(`/proc/${pid}/fd/${fd}`));
    if (m) inodes.add(m[1]!);
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9]!)) {
        const port = Number.parseInt(f[1]!.split(':')[1]!, 16);
        out.push(`127.0.0.1:${port}`);
      }
    }
  }
  return out;
}

function readlinkOr(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}

describe('signals', () => {
  it('SIGUSR1 opens no inspector port that another local user could use', async () => {
    // Port 0: were an inspector opened, it would pick a free port rather than collide with anything on 9229.
    const d = await Daemon.start({ env: { NODE_OPTIONS: '--inspect-port=0' } });
    cleanup.push(() => d.stop());
    d.proc.kill('SIGUSR1');
    await sleep(700);
    const listeners = tcpListeners(d.proc.pid!);
    // What a second user gets from each listener: an inspector answers /json/list with a debugger URL.
    const seen = listeners.map((addr) => {
      const r = spawnSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          '-e',
          `fetch('http://${addr}/json/list').then(r=>r.text()).then(t=>process.stdout.write(t))`,
        ],
        { encoding: 'utf8', timeout: 5000 },
      );
      return `${addr}: ${r.stdout.slice(0, 200)}`;
    });
    expect(seen).toEqual([]);
    expect(d.alive).toBe(true);
    const c = await d.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect(d.log()).toContain('received SIGUSR1; ignored (the inspector stays closed)');
  });

  it('every ignored signal leaves the daemon serving, and says so in the log', async () => {
    const d = await Daemon.start();
    cleanup.push(() => d.stop());
    for (const sig of IGNORED_SIGNALS) {
      d.proc.kill(sig);
      await until(() => d.log().includes(`received ${sig}; ignored`), 5000, `${sig} to be logged`).catch(() => undefined);
      expect(d.alive, `after ${sig}: ${d.proc.signalCode}`).toBe(true);
    }
    const c = await d.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });

  it.each(SHUTDOWN_SIGNALS.filter((s) => !['SIGTERM', 'SIGINT', 'SIGHUP'].includes(s)))(
    '%s runs the graceful shutdown: children killed, socket removed, exit 0',
    async (sig) => {
      const d = await Daemon.start();
      cleanup.push(() => d.stop());
      const c = await d.client();
      const r = await c.call('process.spawn', { id: 'child', ...fixture('ignore-sigterm'), wantPid: true });
      cleanup.push(() => killQuietly(r.pid));
      d.proc.kill(sig);
      expect(await d.exited).toBe(0);
      expect(d.log()).toContain('shutting down (children will be killed)');
      expect(existsSync(d.socket)).toBe(false);
      await until(() => !processLive(r.pid), 5000, 'the child to be killed');
    },
  );
});

describe('the readiness pipe', () => {
  it('a launcher killed during start-up does not take the new daemon down', async () => {
    // A first daemon leaves an orphan that ignores SIGTERM: its successor's start-up then spends the reap's grace
    // (2 s) before it reports, which leaves time to kill the launcher first.
    const first = await Daemon.start({ args: ['-no-login-path'] });
    const dir = first.dir;
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = await first.client();
    const orphan = await c.call('process.spawn', { id: 'orphan', ...fixture('ignore-sigterm'), wantPid: true });
    cleanup.push(() => killQuietly(orphan.pid));
    c.destroy();
    first.proc.kill('SIGKILL');
    await first.exited;

    const tokenFile = path.join(dir, 'token-again');
    writeFileSync(tokenFile, `${first.token}\n`, { mode: 0o600 });
    const launcher = spawn(process.execPath, [BIN, '-serve', '-no-login-path', '-socket', first.socket, '-token-file', tokenFile], {
      stdio: 'ignore',
    });
    const lock = path.join(dir, 'daemon.lock');
    const daemonPid = await until(
      () => {
        try {
          const pid = (JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }).pid;
          return pid !== first.proc.pid ? pid : undefined; // the dead daemon's record until the successor takes over
        } catch {
          return undefined;
        }
      },
      10_000,
      'the new daemon to take the lock',
    );
    cleanup.push(() => killQuietly(daemonPid));
    // Hold the daemon while the launcher dies, so the launcher is surely gone before the report (on a loaded host
    // the reap's grace alone might not be enough).
    process.kill(daemonPid, 'SIGSTOP');
    launcher.kill('SIGKILL');
    await new Promise((resolve) => launcher.once('exit', resolve));
    process.kill(daemonPid, 'SIGCONT');
    await until(() => existsSync(path.join(dir, 'daemon.token')), 15_000, 'the daemon to finish starting').catch(() => undefined);
    await sleep(500);
    expect(processLive(daemonPid)).toBe(true);
    const after = await RpcClient.connect(first.socket, first.token);
    cleanup.push(() => after.destroy());
    expect(await after.call('server.ping')).toEqual({ pong: true });
    expect(readFileSync(path.join(dir, 'remote-server.log'), 'utf8')).toMatch(/readiness report not delivered \(the launcher is gone\)/);
    process.kill(daemonPid, 'SIGTERM');
    await until(() => !processLive(daemonPid), 10_000, 'the daemon to stop');
  });
});
