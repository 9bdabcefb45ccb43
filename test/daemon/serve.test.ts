/**
 * The self-daemonizing `-serve`: banner, files, token sources, and the failure path.
 */
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, until } from '../helpers/daemon.js';
import { procStat, procText, runCli, sandboxes } from '../helpers/cli.js';
import { RpcClient } from '../helpers/rpc.js';
import { processLive } from '../helpers/procfs.js';

const mode = (p: string) => statSync(p).mode & 0o777;

/** Every regular file under `dir` whose content contains `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    if (readFileSync(p).includes(needle)) hits.push(p);
  }
  return hits;
}

async function ping(socket: string, token: string): Promise<unknown> {
  const c = await RpcClient.connect(socket, token);
  try {
    const reply = await c.request('server.ping');
    return reply.result ?? reply.error;
  } finally {
    c.destroy();
  }
}

describe('-serve (self-daemonizing)', () => {
  const sandbox = sandboxes();

  it('prints the banner, exits 0, and leaves a detached daemon with its files in a new 0700 directory', async () => {
    const sb = sandbox('a/b'); // two missing levels
    const r = await sb.serve();
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`Claustrum remote server listening on ${sb.socket} (pid ${r.pid}, instance ${r.instanceId})\n`);
    expect(r.instanceId).toMatch(/^[0-9a-f]{32}$/);
    const pid = r.pid!;
    expect(processLive(pid)).toBe(true);
    // Detached: not the launcher (which has exited), in a session of its own.
    const st = procStat(pid)!;
    expect(st.sid).toBe(pid);
    expect(pid).not.toBe(process.pid);

    expect(mode(sb.dir)).toBe(0o700);
    expect(statSync(sb.socket).isSocket()).toBe(true);
    expect(mode(sb.socket)).toBe(0o600);
    expect(mode(sb.file('daemon.token'))).toBe(0o600);
    expect(mode(sb.file('daemon.lock'))).toBe(0o600);
    expect(mode(sb.file('remote-server.log'))).toBe(0o600);
    // The launcher made no temp file it left behind.
    expect(readdirSync(sb.dir).sort()).toEqual(['children', 'daemon.lock', 'daemon.token', 'keeper', 'remote-server.log', 'rpc.sock']);

    const lock = sb.lock();
    expect(lock).toMatchObject({ pid, startTime: st.startTime, socket: sb.socket, role: 'serve', instanceId: r.instanceId });
    expect(typeof lock.startedAt).toBe('number');

    // The generated token works, and capabilities name the same instance.
    const token = sb.token();
    expect(token.length).toBeGreaterThanOrEqual(16);
    const c = await sb.client(token);
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect((await c.call('server.capabilities')).instanceId).toBe(r.instanceId);
    expect(lock.startedAt).toBe((await c.call('server.capabilities')).startedAt);
  });

  it('exits 1 with the reason and the log tail when the daemon cannot come up (socket path is a regular file)', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    writeFileSync(sb.socket, 'not a socket');
    const r = await sb.serve();
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`claustrum: ${sb.socket} exists and is not a socket; refusing to replace it\n`);
    expect(r.stderr).toContain(`--- last lines of ${sb.dir}/remote-server.log ---`);
    expect(r.stderr).toMatch(/ERROR \[daemon\] start-up failed: .* exists and is not a socket/);
    // Once the launcher has reported the failure, nothing claims the directory, and the file is untouched.
    expect(readFileSync(sb.socket, 'utf8')).toBe('not a socket');
    expect(sb.exists('daemon.lock')).toBe(false);
    expect(sb.exists('daemon.token')).toBe(false);
  });

  it('-token-file: read, unlinked, served; an empty or missing file fails at once', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    const tf = path.join(sb.root, 'tok');
    writeFileSync(tf, '', { mode: 0o600 });
    let r = await sb.serve(['-token-file', tf]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`claustrum: read -token-file: ${tf} is empty; put the token in it (one line)\n`);
    r = await sb.serve(['-token-file', path.join(sb.root, 'missing')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`claustrum: read -token-file: open ${path.join(sb.root, 'missing')}: no such file or directory\n`);
    expect(sb.exists('daemon.lock')).toBe(false);

    writeFileSync(tf, 'file-token-1 \r\n', { mode: 0o600 });
    r = await sb.serve(['-token-file', tf]);
    expect(r.code).toBe(0);
    expect(sb.token()).toBe('file-token-1 ');
    expect(await ping(sb.socket, 'file-token-1 ')).toEqual({ pong: true });
    expect(() => statSync(tf)).toThrow(); // unlinked
  });

  it('-token-fd 3 (a pipe): the token is served and lives in no argv, environment or file, daemon.token included', async () => {
    const sb = sandbox();
    const token = `fd3-secret-${Math.random().toString(36).slice(2)}`;
    const r = await sb.serve(['-token-fd', '3'], { extraFds: ['pipe'], fd3: `${token}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(await ping(sb.socket, token)).toEqual({ pong: true });
    expect(sb.exists('daemon.token')).toBe(false);
    const pid = r.pid!;
    expect(procText(pid, 'cmdline')).not.toContain(token);
    expect(procText(pid, 'environ')).not.toContain(token);
    expect(filesContaining(sb.root, token)).toEqual([]);
  });

  it('-token-fd with -write-token writes daemon.token (0600), and only there', async () => {
    const sb = sandbox();
    const token = `fd3-written-${Math.random().toString(36).slice(2)}`;
    const r = await sb.serve(['-token-fd', '3', '-write-token'], { extraFds: ['pipe'], fd3: `${token}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(sb.token()).toBe(token);
    expect(statSync(sb.file('daemon.token')).mode & 0o777).toBe(0o600);
    expect(filesContaining(sb.root, token)).toEqual([sb.file('daemon.token')]);
  });

  it('-token-fd 0 (the token piped on stdin) works the same way', async () => {
    const sb = sandbox();
    const token = `stdin-secret-${Math.random().toString(36).slice(2)}`;
    const r = await sb.serve(['-token-fd', '0'], { input: `${token}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(await ping(sb.socket, token)).toEqual({ pong: true });
    expect(await ping(sb.socket, 'wrong')).toMatchObject({ code: -32001 });
    const pid = r.pid!;
    expect(procText(pid, 'cmdline')).not.toContain(token);
    expect(procText(pid, 'environ')).not.toContain(token);
    expect(filesContaining(sb.root, token)).toEqual([]);
  });

  it('-token-fd with an empty token or a closed descriptor exits 1 with a clear message, starting nothing', async () => {
    const sb = sandbox();
    let r = await sb.serve(['-token-fd', '0'], { input: '' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('claustrum: read -token-fd: the token is empty; write the token (one line) to fd 0\n');
    r = await sb.serve(['-token-fd', '3'], { extraFds: ['pipe'], fd3: '\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('claustrum: read -token-fd: the token is empty; write the token (one line) to fd 3\n');
    r = await sb.serve(['-token-fd', '99']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('claustrum: read -token-fd: fd 99: bad file descriptor\n');
    expect(sb.exists('daemon.lock')).toBe(false);
    expect(sb.exists('rpc.sock')).toBe(false);
  });

  it('CLAUDE_RPC_TOKEN is not read, does not reach the daemon, and no child sees it or the launcher markers', async () => {
    const sb = sandbox();
    const r = await sb.serve([], { env: { CLAUDE_RPC_TOKEN: 'env-token-not-used' } });
    expect(r.code).toBe(0);
    expect(sb.token()).not.toBe('env-token-not-used');
    expect(await ping(sb.socket, 'env-token-not-used')).toMatchObject({ code: -32001 });
    expect(procText(r.pid!, 'environ')).not.toContain('CLAUDE_RPC_TOKEN');
    const c = await sb.client();
    await c.call('process.spawn', {
      id: 'env',
      ...fixture('print-env'),
      env: { CLAUDE_RPC_TOKEN: 'x', CLAUSTRUM_DAEMON_CHILD: '1', CLAUSTRUM_HANDOVER: '1', KEPT: 'yes' },
    });
    await c.waitExit('env');
    const childEnv = JSON.parse(c.output('env').toString());
    expect(childEnv.KEPT).toBe('yes');
    for (const k of ['CLAUDE_RPC_TOKEN', 'CLAUSTRUM_DAEMON_CHILD', 'CLAUSTRUM_READY_FD', 'CLAUSTRUM_TOKEN_PIPE', 'CLAUSTRUM_HANDOVER'])
      expect(childEnv, k).not.toHaveProperty(k);
  });

  it('refuses a socket directory other users can write, and a socket path too long for sun_path', async () => {
    const sb = sandbox();
    mkdirSync(sb.dir, { mode: 0o700 });
    chmodSync(sb.dir, 0o777);
    let r = await sb.serve();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`claustrum: socket directory ${sb.dir} is writable by other users (mode 777); use a directory of mode 0700\n`);
    const long = path.join(sb.root, 'new', `${'x'.repeat(120)}.sock`);
    r = await runCli(['-serve', '-socket', long]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `claustrum: socket path ${long} is ${Buffer.byteLength(long)} bytes; the limit is 107 (a Unix socket address): choose a shorter -socket\n`,
    );
    // Refused before anything was created.
    expect(existsSync(path.join(sb.root, 'new'))).toBe(false);
  });

  it('serves a socket path at the length limit (107 bytes)', async () => {
    const sb = sandbox();
    const dirLen = Buffer.byteLength(sb.dir) + 1;
    const sock = path.join(sb.dir, `${'s'.repeat(107 - dirLen - 5)}.sock`);
    expect(Buffer.byteLength(sock)).toBe(107);
    const r = await runCli(['-serve', '-socket', sock]);
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(/\(pid (\d+),/.exec(r.stdout)![1]);
    sb.track(pid, true);
    expect(await ping(sock, sb.token())).toEqual({ pong: true });
    expect((await runCli(['-stop', '-socket', sock])).stdout).toBe('stopped\n');
    expect(readdirSync(sb.dir).sort()).toEqual(['children', 'keeper', 'remote-server.log']);
    expect(readdirSync(path.join(sb.dir, 'keeper'))).toEqual(['keeper.log']);
  });

  it('a socket at the length limit with a short name: the keeper, one directory deeper, is reached all the same', async () => {
    const sb = sandbox();
    // A directory of 105 bytes and a one-letter socket: keeper/keeper.sock would be 124 bytes, past the limit.
    let dir = sb.dir;
    while (Buffer.byteLength(dir) < 105 - 11) dir = path.join(dir, 'd'.repeat(10));
    dir = path.join(dir, 'e'.repeat(105 - Buffer.byteLength(dir) - 1));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const sock = path.join(dir, 's');
    expect(Buffer.byteLength(sock)).toBe(107);
    const r = await runCli(['-serve', '-socket', sock, '-no-login-path']);
    expect(r.code, r.stderr).toBe(0);
    sb.track(Number(/\(pid (\d+),/.exec(r.stdout)![1]), true);
    const c = await RpcClient.connect(sock, readFileSync(path.join(dir, 'daemon.token'), 'utf8').trim());
    const spawned = await c.call('process.spawn', { id: 'deep', command: 'echo', args: ['deep'] });
    expect(spawned).toEqual({ success: true });
    await until(() => c.output('deep').toString() === 'deep\n', 10_000, 'the output through the keeper');
    c.destroy();
    expect((await runCli(['-stop', '-socket', sock])).stdout).toBe('stopped\n');
  });

  it('refuses to start when a generated token cannot be written to daemon.token (nobody could ever authenticate)', async () => {
    const sb = sandbox();
    mkdirSync(sb.file('daemon.token'), { recursive: true, mode: 0o700 });
    const r = await runCli(['-serve', '-socket', sb.socket]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`claustrum: cannot write ${sb.file('daemon.token')}`);
    expect(r.stderr).toContain('give -token-file or -token-fd');
    expect(existsSync(sb.socket)).toBe(false);
    expect(existsSync(sb.file('daemon.lock'))).toBe(false);
  });

  it('a daemon.token that cannot be written is logged, and the daemon serves on', async () => {
    const sb = sandbox();
    mkdirSync(sb.file('daemon.token'), { recursive: true, mode: 0o700 });
    const r = await sb.serve(['-token-fd', '0', '-write-token'], { input: 'known-token\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(sb.log()).toMatch(/ERROR \[daemon\] failed to persist token: /);
    expect(sb.log()).not.toContain('known-token');
    expect(await ping(sb.socket, 'known-token')).toEqual({ pong: true });
    expect(readdirSync(sb.dir).filter((n) => n.startsWith('daemon.token-'))).toEqual([]); // no temp file left
    expect((await sb.stop()).stdout).toBe('stopped\n');
    expect(statSync(sb.file('daemon.token')).isDirectory()).toBe(true);
  });

  it('daemon.token is removed at shutdown, but not when another file replaced it meanwhile', async () => {
    const sb = sandbox();
    await sb.start();
    expect(sb.exists('daemon.token')).toBe(true);
    expect((await sb.stop()).stdout).toBe('stopped\n');
    expect(sb.exists('daemon.token')).toBe(false);
    expect(sb.exists('daemon.lock')).toBe(false);
    expect(sb.exists('rpc.sock')).toBe(false);

    const second = await sb.start();
    const replacement = sb.file('daemon.token.new');
    writeFileSync(replacement, 'someone-else', { mode: 0o600 });
    renameSync(replacement, sb.file('daemon.token'));
    process.kill(second.pid, 'SIGTERM');
    await until(() => !processLive(second.pid), 10_000, 'daemon exit');
    expect(sb.read('daemon.token')).toBe('someone-else');
    expect(sb.exists('rpc.sock')).toBe(false);
    expect(sb.exists('daemon.lock')).toBe(false);
  });
});
