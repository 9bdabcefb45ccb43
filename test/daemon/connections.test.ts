/**
 * Idle connections, the orphan self-probe, and the login-shell PATH children get.
 * The test-only variables shorten the fixed timings (PROTOCOL.md, "Test-only environment variables").
 */
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, fixture, sleep, until } from '../helpers/daemon.js';
import { sandboxes, type Sandbox } from '../helpers/cli.js';
import { RpcClient } from '../helpers/rpc.js';
import { processLive } from '../helpers/procfs.js';

const FAKE_SHELL = path.join(FIXTURES, 'fake-login-shell.sh');
const HANGING_SHELL = path.join(FIXTURES, 'hanging-login-shell.sh');
const PROFILE_BIN = '/opt/claustrum-login-profile/bin';

describe('idle connections', () => {
  const sandbox = sandboxes();

  it('closes a connection idle in both directions; the daemon keeps serving', async () => {
    const sb = sandbox();
    const { pid } = await sb.start([], { env: { CLAUSTRUM_TEST_IDLE_TIMEOUT_MS: '300' } });
    const c = await sb.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
    await c.closed; // closed by the daemon, not by us
    expect(c.lines).toHaveLength(1); // no frame, no farewell
    expect(processLive(pid)).toBe(true);
    const d = await sb.client();
    expect(await d.call('server.ping')).toEqual({ pong: true });
    expect(sb.log()).toMatch(/INFO {2}\[Server\] closing connection idle 300ms in both directions: unix#2/);
  });

  it('counts every read as activity, even bytes of a request not yet complete', async () => {
    const sb = sandbox();
    await sb.start([], { env: { CLAUSTRUM_TEST_IDLE_TIMEOUT_MS: '300' } });
    const c = await sb.client();
    const line = `{"jsonrpc":"2.0","id":1,"method":"server.ping","auth":${JSON.stringify(sb.token())}}\n`;
    // One byte every 50 ms: the request takes far longer than the idle timeout to arrive, and is answered.
    for (const ch of line) {
      c.sendRaw(ch);
      await sleep(50);
    }
    expect(await c.waitFor((m) => m.id === 1)).toEqual({ jsonrpc: '2.0', id: 1, result: { pong: true } });
    expect(c.isClosed).toBe(false);
    c.destroy();
  });
});

describe('orphan self-probe', () => {
  const sandbox = sandboxes();
  const env = { CLAUSTRUM_TEST_ORPHAN_PROBE_MS: '100', CLAUSTRUM_TEST_ORPHAN_GRACE_MS: '300' };

  it('a daemon whose socket was unlinked shuts down by itself, gracefully', async () => {
    const sb = sandbox();
    const { pid } = await sb.start([], { env });
    const c = await sb.client();
    const child = (await c.call('process.spawn', { id: 's', command: 'sleep', args: ['300'], wantPid: true })).pid as number;
    sb.track(child);
    c.destroy();
    unlinkSync(sb.socket);
    await until(() => !processLive(pid), 15_000, 'daemon exit');
    expect(processLive(child)).toBe(false);
    expect(sb.exists('daemon.lock')).toBe(false);
    expect(sb.exists('daemon.token')).toBe(false);
    expect(sb.log()).toContain(`WARN  [Server] socket ${sb.socket} no longer leads to this daemon and no client has connected for `);
    expect(sb.log()).toContain('[Server] cleanup: closed 0 connection(s), killed 1 child process group(s)');
  });

  it('a socket path replaced by another file counts as lost too, and the shutdown leaves that file alone', async () => {
    const sb = sandbox();
    const { pid } = await sb.start([], { env });
    writeFileSync(sb.file('impostor'), 'x');
    renameSync(sb.file('impostor'), sb.socket);
    await until(() => !processLive(pid), 15_000, 'daemon exit');
    expect(sb.read('rpc.sock')).toBe('x');
    expect(sb.exists('daemon.lock')).toBe(false);
  });

  it('stays up while a client is still connected, and leaves once it is gone', async () => {
    const sb = sandbox();
    const { pid } = await sb.start([], { env });
    const c = await RpcClient.connect(sb.socket, sb.token());
    unlinkSync(sb.socket);
    await sleep(1500); // many probe periods and graces
    expect(processLive(pid)).toBe(true);
    expect(await c.call('server.ping')).toEqual({ pong: true });
    c.destroy();
    await until(() => !processLive(pid), 15_000, 'daemon exit');
  });

  it('a daemon whose socket is in place stays up', async () => {
    const sb = sandbox();
    const { pid } = await sb.start([], { env });
    await sleep(1000);
    expect(processLive(pid)).toBe(true);
    const c = await sb.client();
    expect(await c.call('server.ping')).toEqual({ pong: true });
  });
});

describe('login-shell PATH', () => {
  const sandbox = sandboxes();

  const daemonPath = `/usr/local/bin:/usr/bin:/bin:${path.dirname(process.execPath)}`;

  /** Starts a daemon with $SHELL and $HOME set, spawns print-env `spawns` times, returns each child's PATH. */
  async function childPaths(sb: Sandbox, args: string[], shell: string, spawns = 1): Promise<string[]> {
    await sb.start(args, { env: { SHELL: shell, PATH: daemonPath, HOME: sb.root } });
    const c = await sb.client();
    const out: string[] = [];
    for (let i = 0; i < spawns; i++) {
      await c.call('process.spawn', { id: `env${i}`, ...fixture('print-env') });
      await c.waitExit(`env${i}`);
      out.push(JSON.parse(c.output(`env${i}`).toString()).PATH);
    }
    return out;
  }

  it("children get the PATH the user's login shell sets up, read once", async () => {
    const sb = sandbox();
    const paths = await childPaths(sb, [], FAKE_SHELL, 2);
    expect(paths).toEqual([`${PROFILE_BIN}:${daemonPath}`, `${PROFILE_BIN}:${daemonPath}`]);
    expect(readFileSync(path.join(sb.root, 'login-shell-runs'), 'utf8')).toBe('run\n');
  });

  it('-no-login-path gives children the daemon PATH and never runs the shell', async () => {
    const sb = sandbox();
    expect(await childPaths(sb, ['-no-login-path'], FAKE_SHELL)).toEqual([daemonPath]);
    expect(existsSync(path.join(sb.root, 'login-shell-runs'))).toBe(false);
  });

  it('a login shell that hangs is killed at the 4 s cap and children get the inherited PATH', async () => {
    const sb = sandbox();
    expect(await childPaths(sb, [], HANGING_SHELL)).toEqual([daemonPath]);
    const shellPid = Number(readFileSync(path.join(sb.root, 'login-shell.pid'), 'utf8'));
    sb.track(shellPid);
    await until(() => !processLive(shellPid), 10_000, 'the hung shell killed');
  });

  it('a login shell that fails leaves children the inherited PATH', async () => {
    expect(await childPaths(sandbox(), [], '/bin/false')).toEqual([daemonPath]);
  });
});
