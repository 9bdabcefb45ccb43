/**
 * `claustrum -run`: the real executable against a real daemon. Exit codes, stdin (EOF included), stderr, signal
 * forwarding, a daemon started on demand, and riding through dropped connections.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Daemon, FIXTURES, tempDir, until, sleep } from '../helpers/daemon.js';
import { CuttingProxy } from '../client/proxy.js';
import { patternMismatch } from '../client/util.js';
import { processLive } from '../helpers/procfs.js';

const execFileP = promisify(execFile);

interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `claustrum -run -socket <socket> -- argv…` with `input` on stdin (or nothing: /dev/null). */
function runClaustrum(socket: string, argv: string[], input?: Buffer | string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '-run', '-socket', socket, '--', ...argv], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    if (input !== undefined) child.stdin!.end(input);
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

describe('claustrum -run', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('exits with the command exit code: 0, 3, and 128+15 for SIGTERM', async () => {
    expect((await runClaustrum(d.socket, ['true'])).code).toBe(0);
    expect((await runClaustrum(d.socket, ['sh', '-c', 'exit 3'])).code).toBe(3);
    expect((await runClaustrum(d.socket, ['sh', '-c', 'kill -TERM $$'])).code).toBe(143);
  });

  it('streams stdout to stdout and stderr to stderr', async () => {
    const r = await runClaustrum(d.socket, ['sh', '-c', 'echo to-out; echo to-err >&2; echo more-out']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('to-out\nmore-out\n');
    expect(r.stderr).toBe('to-err\n');
  });

  it('forwards piped stdin, EOF included, so cat ends on its own', async () => {
    const input = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < input.length; i++) input[i] = (i * 31) & 0xff;
    const r = await runClaustrum(d.socket, ['cat'], input);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(input)).toBe(true);
    // Empty stdin: EOF at once.
    expect((await runClaustrum(d.socket, ['wc', '-c'], '')).stdout.toString().trim()).toBe('0');
  });

  it('forwards SIGINT to the child, and exits 128+2 when it dies of it', async () => {
    const child = spawn(process.execPath, [BIN, '-run', '-socket', d.socket, '--', 'sh', '-c', 'echo $$; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
    const pid = Number(await until(() => /^(\d+)\n/.exec(out)?.[1], 15_000, 'the child pid'));
    child.kill('SIGINT');
    expect(await closed).toBe(130);
    await until(() => !processLive(pid), 10_000, 'the child to be gone');
  });

  it('forwards SIGTERM and SIGHUP too', async () => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      const child = spawn(process.execPath, [BIN, '-run', '-socket', d.socket, '--', 'sh', '-c', 'echo up; exec sleep 30'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
      await until(() => out.includes('up'), 15_000, 'the child to start');
      child.kill(signal);
      expect(await closed).toBe(code);
    }
  });

  it('reports a command that cannot be found with 127', async () => {
    const r = await runClaustrum(d.socket, ['no-such-command-claustrum']);
    expect(r.code).toBe(127);
    expect(r.stderr).toBe('claustrum: exec: "no-such-command-claustrum": executable file not found in $PATH\n');
  });

  it('needs a command', async () => {
    const r = await runClaustrum(d.socket, []);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-run needs a command/);
  });

  it('rides through dropped connections, losing and repeating nothing', async () => {
    const proxy = await CuttingProxy.start(d.socket);
    // -run finds the token beside the socket it is given, as with a real daemon.
    writeFileSync(path.join(proxy.dir, 'daemon.token'), d.token, { mode: 0o600 });
    try {
      const child = spawn(
        process.execPath,
        [BIN, '-run', '-socket', proxy.path, '--', process.execPath, path.join(FIXTURES, 'pattern-echo.mjs'), '256'],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
      await until(() => out.length > 0, 15_000, 'output');
      proxy.mode = 'random';
      const input: Buffer[] = [];
      let n = 0;
      while (proxy.cuts < 15) {
        const line = Buffer.from(`line ${n++}\n`);
        input.push(line);
        child.stdin.write(line);
        await sleep(5);
      }
      child.stdin.end();
      const code = await closed;
      proxy.mode = 'relay';
      const stdin = Buffer.concat(input);
      const stdout = Buffer.concat(out);
      const trailer = /\nSTDIN (\d+) ([0-9a-f]{64})\nPATTERN (\d+)\n$/.exec(stdout.subarray(-200).toString('latin1'));
      const stderrText = Buffer.concat(err).toString();
      expect(code, stderrText.slice(-500)).toBe(0);
      expect(trailer).not.toBeNull();
      expect(stdout.length - trailer![0].length).toBe(Number(trailer![3]));
      expect(patternMismatch(stdout, Number(trailer![3]))).toBeUndefined();
      expect(Number(trailer![1])).toBe(stdin.length);
      expect(trailer![2]).toBe(createHash('sha256').update(stdin).digest('hex'));
      // The child echoes stdin on stderr: exactly what was typed, once.
      expect(stderrText).toBe(stdin.toString());
    } finally {
      await proxy.close();
    }
  });
});

describe('claustrum -run with no daemon', () => {
  it('starts one on demand, runs the command, and leaves the daemon for the next run', async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'rpc.sock');
    try {
      const r = await runClaustrum(socket, ['sh', '-c', 'echo started on demand; exit 7']);
      expect(r.stderr).toBe('');
      expect(r.stdout.toString()).toBe('started on demand\n');
      expect(r.code).toBe(7);
      expect(existsSync(path.join(dir, 'daemon.token'))).toBe(true);
      const again = await runClaustrum(socket, ['echo', 'same daemon']);
      expect(again.stdout.toString()).toBe('same daemon\n');
    } finally {
      const { stdout } = await execFileP(process.execPath, [BIN, '-stop', '-socket', socket]);
      expect(stdout.trim()).toBe('stopped');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
