/**
 * `claustrum -run` as if the command ran here: the caller's PATH, directory and environment (and `-daemon-env` for
 * the daemon's), a shell's exit codes, signals that reach the remote process group (a shell's child included), the
 * Ctrl-C escalation, a lost daemon reported at once, and the reconnect budget.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CuttingProxy } from '../client/proxy.js';
import { runCli, sandboxes } from '../helpers/cli.js';
import { BIN, FIXTURES, until } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';

interface Running {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly closed: Promise<number | null>;
}

/** `claustrum -run <flags> -- <argv>` with its own environment and directory, stdin closed. */
function run(flags: readonly string[], argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Running {
  const child = spawn(process.execPath, [BIN, '-run', ...flags, '--', ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  const r = {
    child,
    stdout: '',
    stderr: '',
    closed: new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code))),
  };
  child.stdout!.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}

/**
 * The only child of `pid` once it runs `sleep`, from /proc. Until the exec, the child is the shell's fork, whose
 * SIGINT handling is the shell's: a signal in that window is the shell's business, as on a terminal.
 */
function childOf(pid: number): Promise<number> {
  return until(
    () => {
      try {
        const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean);
        if (kids.length !== 1) return undefined;
        return readFileSync(`/proc/${kids[0]}/comm`, 'utf8').trim() === 'sleep' ? Number(kids[0]) : undefined;
      } catch {
        return undefined;
      }
    },
    10_000,
    `the child of ${pid}`,
  );
}

/** A shell that prints its pid and waits for `sleep 303`: returns both pids once the sleep runs. */
async function shellWithSleep(r: Running): Promise<{ sh: number; sleep: number }> {
  const sh = Number(await until(() => /^(\d+)\n/.exec(r.stdout)?.[1], 15_000, 'the shell pid'));
  return { sh, sleep: await childOf(sh) };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function scratch(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cl-here-'));
  dirs.push(d);
  return d;
}

describe('claustrum -run, as if here', () => {
  const sandbox = sandboxes();

  it("looks the command up in the caller's PATH and runs it in the caller's directory with exactly the caller's environment", async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path'], { env: { DAEMON_ONLY: 'yes' } });
    const bin = scratch();
    const work = scratch();
    const script = path.join(bin, 'here-only');
    writeFileSync(
      script,
      '#!/bin/sh\nprintf "%s\\n" "$0" "$PWD" "${CALLER_ONLY-unset}" "${DAEMON_ONLY-unset}" "${CLAUDE_RPC_TOKEN-unset}" "${LISTEN_FDS-unset}"\n',
    );
    chmodSync(script, 0o755);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      CALLER_ONLY: 'yes',
      CLAUDE_RPC_TOKEN: 'not-for-children',
      LISTEN_FDS: '1',
    };
    delete env.DAEMON_ONLY;
    const r = run(['-socket', sb.socket], ['here-only'], { env, cwd: work });
    expect(await r.closed, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${script}\n${work}\nyes\nunset\nunset\nunset\n`);
    expect(r.stderr).toBe('');
  });

  it("-daemon-env: the daemon's environment and the daemon's PATH lookup", async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path'], { env: { DAEMON_ONLY: 'yes' } });
    const bin = scratch();
    writeFileSync(path.join(bin, 'here-only'), '#!/bin/sh\necho found\n', { mode: 0o755 });
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, CALLER_ONLY: 'yes' };
    const r = run(['-socket', sb.socket, '-daemon-env'], ['sh', '-c', 'echo ${DAEMON_ONLY-unset} ${CALLER_ONLY-unset}'], { env });
    expect(await r.closed, r.stderr).toBe(0);
    expect(r.stdout).toBe('yes unset\n');
    const missing = run(['-socket', sb.socket, '-daemon-env'], ['here-only'], { env });
    expect(await missing.closed).toBe(127);
    expect(missing.stderr).toBe('claustrum: exec: "here-only": executable file not found in $PATH\n');
  });

  it('exits as a shell does for a path that is missing (127), not executable or a directory (126)', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const work = scratch();
    writeFileSync(path.join(work, 'plain'), 'echo no\n', { mode: 0o644 });
    mkdirSync(path.join(work, 'dir'));
    for (const [cmd, code, words] of [
      ['./nope', 127, 'No such file or directory'],
      ['./plain', 126, 'Permission denied'],
      ['./dir', 126, 'Is a directory'],
      ['no-such-command-here', 127, 'command not found'],
    ] as const) {
      const local = await new Promise<number | null>((resolve) => spawn('sh', ['-c', cmd], { cwd: work, stdio: 'ignore' }).once('close', resolve));
      expect(local, `sh -c ${cmd}`).toBe(code);
      const r = run(['-socket', sb.socket], [cmd], { cwd: work });
      expect(await r.closed, cmd).toBe(code);
      expect(r.stderr).toBe(`claustrum: ${cmd}: ${words}\n`);
    }
  });

  it('Ctrl-C reaches the process group: sh -c "sleep 303" ends at the first SIGINT (130), its sleep with it', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const r = run(['-socket', sb.socket], ['sh', '-c', 'echo $$; sleep 303']);
    const { sh, sleep } = await shellWithSleep(r);
    r.child.kill('SIGINT');
    expect(await r.closed).toBe(130);
    expect(r.stderr).toBe('');
    await until(() => !processLive(sleep) && !processLive(sh), 10_000, 'the shell and its sleep gone');
  });

  it('SIGTERM and SIGHUP reach the process group too', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      const r = run(['-socket', sb.socket], ['sh', '-c', 'echo $$; sleep 303']);
      const { sleep } = await shellWithSleep(r);
      r.child.kill(signal);
      expect(await r.closed, signal).toBe(code);
      await until(() => !processLive(sleep), 10_000, 'the sleep gone');
    }
  });

  it('a second Ctrl-C within 2 s sends SIGTERM, a third SIGKILL, each announced on stderr', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const r = run(['-socket', sb.socket], [process.execPath, path.join(FIXTURES, 'ignore-sigterm.mjs')]);
    await until(() => r.stdout.includes('ready'), 15_000, 'handlers in place');
    r.child.kill('SIGINT');
    await until(() => r.stdout.includes('ignored SIGINT'), 10_000, 'the first interrupt');
    r.child.kill('SIGINT');
    await until(() => r.stdout.includes('ignored SIGTERM'), 10_000, 'the SIGTERM');
    r.child.kill('SIGINT');
    expect(await r.closed).toBe(137);
    expect(r.stderr).toBe(
      'claustrum: interrupted again within 2s: sending SIGTERM to the remote process group (once more: SIGKILL)\n' +
        'claustrum: interrupted a third time: sending SIGKILL to the remote process group\n',
    );
  });

  it('a daemon that dies is reported at once, however long the reconnect budget, and the remote process is killed', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-no-login-path']);
    const r = run(['-socket', sb.socket, '-reconnect-budget', '10m'], ['sh', '-c', 'echo $$; sleep 303']);
    const { sh, sleep } = await shellWithSleep(r);
    process.kill(pid, 'SIGKILL');
    const code = await Promise.race([r.closed, until(() => false, 20_000, '-run to give up').catch(() => 'hung')]);
    expect(code).toBe(125);
    expect(r.stderr).toBe(
      `claustrum: the daemon on ${sb.socket} (pid ${pid}) is gone; the remote process (pid ${sh}) was still running: sent SIGKILL to its process group\n`,
    );
    await until(() => !processLive(sh) && !processLive(sleep), 10_000, 'the orphans gone');
  });

  it('a daemon stopped under it: reported with the fate of the remote process', async () => {
    const sb = sandbox();
    const { pid } = await sb.start(['-no-login-path']);
    const r = run(['-socket', sb.socket], ['sh', '-c', 'echo $$; sleep 303']);
    const { sh } = await shellWithSleep(r);
    expect((await sb.stop()).stdout).toBe('stopped\n');
    expect(await r.closed).toBe(125);
    expect(r.stderr).toBe(
      `claustrum: the daemon on ${sb.socket} (pid ${pid}) is gone; the remote process (pid ${sh}) is gone too; its exit status was not delivered\n`,
    );
  });

  it('-reconnect-budget: gives up after it when the daemon cannot be reached, and ends the remote process', async () => {
    const sb = sandbox();
    await sb.start(['-no-login-path']);
    const proxy = await CuttingProxy.start(sb.socket);
    writeFileSync(path.join(proxy.dir, 'daemon.token'), sb.token(), { mode: 0o600 });
    try {
      const r = run(['-socket', proxy.path, '-reconnect-budget', '1s'], ['sh', '-c', 'echo $$; sleep 303']);
      const { sleep } = await shellWithSleep(r);
      proxy.mode = 'refuse';
      proxy.cutAll('test');
      expect(await r.closed).toBe(125);
      expect(r.stderr).toMatch(
        /^claustrum: gave up reconnecting to unix:.*; the remote process \(pid \d+\) was still running: sent SIGKILL to its process group\n$/,
      );
      await until(() => !processLive(sleep), 10_000, 'the sleep gone');
    } finally {
      await proxy.close();
    }
  });

  it('refuses -token-fd 0 (stdin belongs to the command) and flags of other modes', async () => {
    const r = await runCli(['-run', '-token-fd', '0', '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("claustrum: -run -token-fd 0: stdin is the command's; hand the token on another descriptor (-token-fd 3 3<file)\n");
    const k = await runCli(['-run', '-keep-children', '--', 'true']);
    expect(k.code).toBe(2);
    expect(k.stderr.split('\n')[0]).toBe('claustrum: -keep-children does not apply to -run (it goes with -serve, -service)');
  });
});
