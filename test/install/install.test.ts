/**
 * `claustrum -install`, end to end: the built executable, real stand-in CLIs packed by the zstd tool, a loopback
 * HTTP server. No test asserts a duration; the short bounds come from the test-only environment variables.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { goArch } from '../../src/install/facts.js';
import { CLI_UNRESPONSIVE } from '../../src/install/install.js';
import { BIN, ROOT, tempDir, until, sleep } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';
import { age, claustrum, factsOf, names, progressOf, serveBytes, sha256, TestServer, writeCli, zstd } from '../helpers/install.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const MINUTE = 60_000;

let root: string;
let cliDir: string;
let cli: string;
let blob: { path: string; bytes: Buffer; sha256: string };

beforeEach(() => {
  root = tempDir('claustrum-install-');
  cliDir = path.join(root, 'cli');
  cli = path.join(cliDir, '1.2.3');
  const src = writeCli(path.join(root, 'cli-src'), 'echo "agent 1.2.3"');
  blob = zstd(src, path.join(root, 'agent.zst'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

function install(...args: string[]) {
  return claustrum(['-install', '-cli-dir', cliDir, '-cli-version', '1.2.3', ...args]);
}

/** The facts every run starts with. */
function head(cliPath: string) {
  return { serverVersion: VERSION, os: 'linux', arch: goArch(process.arch), cliPath, cliWasPresent: false };
}

describe('-install from -cli-zst', () => {
  it('installs, consumes the blob, and reports the CLI as present on the next run', async () => {
    const r = await install('-cli-zst', blob.path);
    expect(r.code).toBe(0);
    const f = factsOf(r);
    expect(f).toEqual({ ...head(cli), libc: f.libc });
    expect(['glibc', 'musl']).toContain(f.libc);
    expect(r.stdout.split('\n').length).toBe(2); // one line, no progress
    expect(readFileSync(cli, 'utf8')).toBe('#!/bin/sh\necho "agent 1.2.3"\n');
    expect(statSync(cli).mode & 0o777).toBe(0o755);
    expect(statSync(cliDir).mode & 0o777).toBe(0o700);
    expect(existsSync(blob.path)).toBe(false);
    expect(names(cliDir)).toEqual(['1.2.3']);

    const again = await install();
    expect(factsOf(again)).toEqual({ ...head(cli), libc: f.libc, cliWasPresent: true });
  });

  it('verifies the blob only when -cli-checksum is given, case-sensitively, and keeps a blob that failed', async () => {
    const upper = blob.sha256.toUpperCase();
    const f = factsOf(await install('-cli-zst', blob.path, '-cli-checksum', upper));
    expect(f.cliError).toBe(`checksum mismatch: expected=${upper}, actual=${blob.sha256}`);
    expect(existsSync(blob.path)).toBe(true);
    expect(names(cliDir)).toEqual([]);

    expect(factsOf(await install('-cli-zst', blob.path, '-cli-checksum', blob.sha256)).cliError).toBeUndefined();
    expect(existsSync(cli)).toBe(true);
  });

  it('reports a missing or unreadable blob as "opening input"', async () => {
    const missing = path.join(root, 'nope.zst');
    expect(factsOf(await install('-cli-zst', missing)).cliError).toBe(`opening input: open ${missing}: no such file or directory`);
    expect(factsOf(await install('-cli-zst', root)).cliError).toBe(`opening input: read ${root}: is a directory`);
  });

  it('reports a blob that is not zstd, keeps it, and leaves nothing in the cli-dir', async () => {
    const junk = path.join(root, 'junk.zst');
    writeFileSync(junk, 'this is not zstd at all');
    expect(factsOf(await install('-cli-zst', junk)).cliError).toBe('decompressing: invalid input: magic number mismatch');
    expect(existsSync(junk)).toBe(true);
    expect(names(cliDir)).toEqual([]);
  });

  it('stops at -max-cli-bytes while decompressing: no cliPath, no staging file, the blob kept', async () => {
    const big = writeCli(path.join(root, 'big'), `# ${'x'.repeat(5000)}\necho big`);
    const b = zstd(big, path.join(root, 'big.zst'));
    const f = factsOf(await install('-cli-zst', b.path, '-max-cli-bytes', '1000'));
    expect(f).toEqual({ ...head(cli), libc: f.libc, cliError: 'decompressing: decompressed CLI exceeds 1000 bytes' });
    expect(names(cliDir)).toEqual([]);
    expect(existsSync(b.path)).toBe(true);

    // At the cap exactly, it installs.
    const size = statSync(big).size;
    expect(factsOf(await install('-cli-zst', b.path, '-max-cli-bytes', String(size))).cliError).toBeUndefined();
  });

  it('removes a new CLI that does not answer --version, and still consumes the blob', async () => {
    const bad = zstd(writeCli(path.join(root, 'bad'), 'exit 3'), path.join(root, 'bad.zst'));
    const f = factsOf(await install('-cli-zst', bad.path));
    expect(f.cliError).toBe(`installed cli at ${cli} is not runnable`);
    expect(f.cliUnresponsive).toBeUndefined();
    expect(names(cliDir)).toEqual([]);
    expect(existsSync(bad.path)).toBe(false);
  });

  it('answers "missing" with no source, and creates the cli-dir', async () => {
    const f = factsOf(await install());
    expect(f).toEqual({ ...head(cli), libc: f.libc, cliError: 'cli 1.2.3 missing and no --cli-url or --cli-zst provided' });
    expect(names(cliDir)).toEqual([]);
  });

  it('prints facts with an empty cliPath and touches nothing without -cli-version', async () => {
    const r = await claustrum(['-install', '-cli-dir', cliDir, '-cli-zst', blob.path]);
    expect(r.code).toBe(0);
    const f = factsOf(r);
    expect(f).toEqual({ ...head(''), libc: f.libc });
    expect(existsSync(cliDir)).toBe(false);
    expect(existsSync(blob.path)).toBe(true);
  });
});

describe('-install refusals', () => {
  it.each([
    ['../victim', 'must be a single path component'],
    ['sub/victim', 'must be a single path component'],
    ['sub\\victim', 'must be a single path component'],
    ['.', 'must be a single path component'],
    ['..', 'must be a single path component'],
    ['.blob-1', 'collides with the install download blob'],
  ])('refuses -cli-version %j before touching anything', async (version, why) => {
    const victim = path.join(root, 'victim');
    mkdirSync(victim);
    writeFileSync(path.join(victim, 'keep.txt'), 'important');
    const r = await claustrum(['-install', '-cli-dir', cliDir, '-cli-version', version, '-cli-zst', blob.path]);
    expect(r.code).toBe(0);
    expect(factsOf(r).cliError).toBe(`cli version ${JSON.stringify(version)} ${why}`);
    expect(readFileSync(path.join(victim, 'keep.txt'), 'utf8')).toBe('important');
    expect(existsSync(cliDir)).toBe(false);
    expect(existsSync(blob.path)).toBe(true);
  });

  it.each([
    ['is', (p: string) => p],
    ['contains', (p: string) => path.join(p, 'alice')],
  ])('refuses a cliPath folder that %s the home directory, and deletes nothing', async (_how, homeOf) => {
    mkdirSync(path.join(cli, 'alice', 'docs'), { recursive: true });
    writeFileSync(path.join(cli, 'alice', 'docs', 'keep.txt'), 'keep');
    const r = await claustrum(['-install', '-cli-dir', cliDir, '-cli-version', '1.2.3', '-cli-zst', blob.path], { HOME: homeOf(cli) });
    expect(factsOf(r).cliError).toBe(`cli path must not be or contain the home directory: ${JSON.stringify(cli)}`);
    expect(readFileSync(path.join(cli, 'alice', 'docs', 'keep.txt'), 'utf8')).toBe('keep');
    expect(existsSync(blob.path)).toBe(true);
    expect(names(cliDir)).toEqual(['1.2.3']);
  });

  it('replaces a folder at cliPath that does not hold the home directory', async () => {
    mkdirSync(path.join(cli, 'inner'), { recursive: true });
    const f = factsOf(await install('-cli-zst', blob.path));
    expect(f.cliError).toBeUndefined();
    expect(statSync(cli).isFile()).toBe(true);
  });

  it('reports an uncreatable cli-dir with an empty cliPath and keeps the blob', async () => {
    const file = path.join(root, 'plain-file');
    writeFileSync(file, 'x');
    const r = await claustrum(['-install', '-cli-dir', path.join(file, 'cli'), '-cli-version', '1.2.3', '-cli-zst', blob.path]);
    const f = factsOf(r);
    expect(f).toEqual({ ...head(''), libc: f.libc, cliError: `mkdir cli dir: mkdir ${file}: not a directory` });
    expect(existsSync(blob.path)).toBe(true);
  });

  it('replaces a regular file at the -cli-dir path with the folder', async () => {
    writeFileSync(cliDir, 'not a folder');
    expect(factsOf(await install('-cli-zst', blob.path)).cliError).toBeUndefined();
    expect(statSync(cli).isFile()).toBe(true);
  });

  it('exits 2 on a flag error, printing no facts', async () => {
    for (const args of [
      ['-install', '-cli-keep', 'three'],
      ['-install', '-cli-download-timeout', '5 minutes'],
      ['-install', '-cli-nope'],
      ['-install', '-cli-version'],
      ['-install', '-cli-version', '1', '-cli-keep', '-1'],
    ]) {
      const r = await claustrum(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toBe('');
    }
  });
});

describe('-install default -cli-dir', () => {
  it('is ~/.claustrum/cli, made owner-only', async () => {
    const home = path.join(root, 'home');
    mkdirSync(home);
    const r = await claustrum(['-install', '-cli-version', '1.2.3', '-cli-zst', blob.path], { HOME: home });
    const dir = path.join(home, '.claustrum', 'cli');
    expect(factsOf(r)).toMatchObject({ cliPath: path.join(dir, '1.2.3'), cliWasPresent: false });
    expect(factsOf(r).cliError).toBeUndefined();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('needs a home directory', async () => {
    const r = await claustrum(['-install', '-cli-version', '1.2.3'], { HOME: '' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('claustrum: cannot resolve home directory: $HOME is not defined\n');
  });
});

describe('-install from -cli-url', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await TestServer.start(serveBytes(blob.bytes));
  });
  afterEach(() => server.stop());

  it('downloads with progress lines and fetch stats, then reports the CLI present without asking again', async () => {
    const r = await install('-cli-url', server.url(), '-cli-checksum', blob.sha256);
    expect(r.code).toBe(0);
    const f = factsOf(r);
    expect(f).toEqual({ ...head(cli), libc: f.libc, fetch: { bytes: blob.bytes.length, ms: f.fetch!.ms, longestPauseMs: f.fetch!.longestPauseMs } });
    expect(f.fetch!.ms).toBeGreaterThanOrEqual(0);
    const progress = progressOf(r);
    expect(progress[0]).toEqual({ phase: 'download', bytes: 0, total: blob.bytes.length });
    expect(progress.at(-1)).toEqual({ phase: 'download', bytes: blob.bytes.length, total: blob.bytes.length });
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.bytes).toBeGreaterThanOrEqual(progress[i - 1]!.bytes);
    // Nothing but progress lines before the facts line.
    expect(
      r.stdout
        .split('\n')
        .slice(0, -2)
        .every((l) => l.startsWith('__INSTALL_PROGRESS__')),
    ).toBe(true);
    expect(readFileSync(cli, 'utf8')).toContain('agent 1.2.3');
    expect(names(cliDir)).toEqual(['1.2.3']);
    expect(server.requests).toBe(1);

    const again = await install('-cli-url', server.url(), '-cli-checksum', blob.sha256);
    expect(factsOf(again)).toEqual({ ...head(cli), libc: f.libc, cliWasPresent: true });
    expect(progressOf(again)).toEqual([]);
    expect(server.requests).toBe(1);
  });

  it('drops total from progress lines when the server sends no Content-Length', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.end(blob.bytes);
    };
    const r = await install('-cli-url', server.url(), '-cli-checksum', blob.sha256);
    expect(factsOf(r).cliError).toBeUndefined();
    expect(progressOf(r)[0]).toEqual({ phase: 'download', bytes: 0 });
    expect(progressOf(r).at(-1)).toEqual({ phase: 'download', bytes: blob.bytes.length });
  });

  it('follows a redirect', async () => {
    server.handler = (req, res) => {
      if (req.url === '/cli.zst') {
        res.writeHead(302, { location: '/real.zst' });
        res.end();
      } else serveBytes(blob.bytes)(req, res);
    };
    expect(factsOf(await install('-cli-url', server.url(), '-cli-checksum', blob.sha256)).cliError).toBeUndefined();
    expect(server.requests).toBe(2);
  });

  it('always verifies the checksum, before decompressing: a mismatch leaves nothing behind', async () => {
    const wrong = 'f'.repeat(64);
    const r = await install('-cli-url', server.url(), '-cli-checksum', wrong);
    const f = factsOf(r);
    expect(f).toEqual({ ...head(cli), libc: f.libc, cliError: `checksum mismatch: expected=${wrong}, actual=${blob.sha256}`, fetch: f.fetch });
    expect(f.fetch!.bytes).toBe(blob.bytes.length);
    // The final progress line comes only after a good checksum (a loopback download is over before the first tick).
    expect(progressOf(r)).toEqual([{ phase: 'download', bytes: 0, total: blob.bytes.length }]);
    expect(names(cliDir)).toEqual([]);

    // An empty checksum is no exemption.
    expect(factsOf(await install('-cli-url', server.url())).cliError).toBe(`checksum mismatch: expected=, actual=${blob.sha256}`);
  });

  it('reports a non-200 as "download failed with status <code>", with fetch stats and no progress', async () => {
    server.handler = (_req, res) => {
      res.writeHead(404);
      res.end('no such file');
    };
    const r = await install('-cli-url', server.url(), '-cli-checksum', blob.sha256);
    const f = factsOf(r);
    expect(f).toEqual({
      ...head(cli),
      libc: f.libc,
      cliError: 'download failed with status 404',
      fetch: { bytes: 0, ms: f.fetch!.ms, longestPauseMs: 0 },
    });
    expect(progressOf(r)).toEqual([]);
    expect(names(cliDir)).toEqual([]);
  });

  it('aborts a stalled download (test-only shortened stall bound)', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write(blob.bytes.subarray(0, 5));
      // …and nothing more.
    };
    const stalled = await claustrum(
      ['-install', '-cli-dir', cliDir, '-cli-version', '1.2.3', '-cli-url', server.url(), '-cli-checksum', blob.sha256],
      {
        CLAUSTRUM_TEST_STALL_TIMEOUT_MS: '1000',
      },
    );
    const f = factsOf(stalled);
    expect(f.cliError).toBe('download stalled: no data for 1s after 5/100 bytes');
    expect(f.fetch!.bytes).toBe(5);
    expect(f.fetch!.longestPauseMs).toBeGreaterThan(0);
    expect(progressOf(stalled)[0]).toEqual({ phase: 'download', bytes: 0, total: 100 });
    expect(names(cliDir)).toEqual([]);
  });

  it('reports a connection that breaks mid-body as "download interrupted"', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write(blob.bytes.subarray(0, 10), () => setTimeout(() => res.socket?.resetAndDestroy(), 250));
    };
    const f = factsOf(await install('-cli-url', server.url(), '-cli-checksum', blob.sha256));
    expect(f.cliError).toMatch(
      /^download interrupted after 10\/100 bytes: read tcp 127\.0\.0\.1:\d+->127\.0\.0\.1:\d+: read: connection reset by peer$/,
    );
    expect(f.fetch!.bytes).toBe(10);

    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write(blob.bytes.subarray(0, 10), () => setTimeout(() => res.socket?.end(), 250));
    };
    expect(factsOf(await install('-cli-url', server.url(), '-cli-checksum', blob.sha256)).cliError).toBe(
      'download interrupted after 10/100 bytes: unexpected EOF',
    );
    expect(names(cliDir)).toEqual([]);
  });

  it('gives up on response headers that never come (test-only shortened bound)', async () => {
    server.handler = () => undefined;
    const r = await claustrum(['-install', '-cli-dir', cliDir, '-cli-version', '1.2.3', '-cli-url', server.url(), '-cli-checksum', blob.sha256], {
      CLAUSTRUM_TEST_HEADER_TIMEOUT_MS: '300',
    });
    const f = factsOf(r);
    expect(f.cliError).toBe(`download failed: Get "${server.url()}": net/http: timeout awaiting response headers`);
    expect(f.fetch).toMatchObject({ bytes: 0, longestPauseMs: 0 });
  });

  it('honours -cli-download-timeout on the whole exchange', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      const t = setInterval(() => res.write('x'), 20);
      res.on('close', () => clearInterval(t));
    };
    const f = factsOf(await install('-cli-url', server.url(), '-cli-checksum', blob.sha256, '-cli-download-timeout', '300ms'));
    expect(f.cliError).toBe('download failed: context deadline exceeded (Client.Timeout or context cancellation while reading body)');
    expect(names(cliDir)).toEqual([]);
  });

  it('caps the download at -max-cli-bytes', async () => {
    const cap = blob.bytes.length - 1;
    const f = factsOf(await install('-cli-url', server.url(), '-cli-checksum', blob.sha256, '-max-cli-bytes', String(cap)));
    expect(f.cliError).toBe(`download failed: response exceeds ${cap} bytes`);
    expect(names(cliDir)).toEqual([]);
  });

  it('reports a refused connection in Go words', async () => {
    const gone = await TestServer.start(serveBytes(blob.bytes));
    const url = gone.url();
    await gone.stop();
    const f = factsOf(await install('-cli-url', url, '-cli-checksum', blob.sha256));
    expect(f.cliError).toBe(`download failed: Get "${url}": dial tcp 127.0.0.1:${new URL(url).port}: connect: connection refused`);
    expect(f.fetch).toMatchObject({ bytes: 0, longestPauseMs: 0 });
  });
});

describe('-install and an unresponsive CLI', () => {
  /** A CLI that forks a sleeper into its own process group, records its pid, and never answers. */
  function hangingCli(file: string, pidFile: string): string {
    return writeCli(file, `sleep 60 &\necho $! > '${pidFile}'\nexec sleep 60`);
  }

  it('stops a present CLI at the 30 s bound (shortened), kills its group, and installs nothing', async () => {
    const pidFile = path.join(root, 'child.pid');
    mkdirSync(cliDir, { mode: 0o700 });
    hangingCli(cli, pidFile);
    const r = await claustrum(['-install', '-cli-dir', cliDir, '-cli-version', '1.2.3', '-cli-zst', blob.path, '-cli-keep', '1'], {
      // Long enough for the stand-in to have written its pid file before it is stopped.
      CLAUSTRUM_TEST_PROBE_TIMEOUT_MS: '1500',
    });
    const f = factsOf(r);
    expect(f).toEqual({ ...head(cli), libc: f.libc, cliError: CLI_UNRESPONSIVE, cliUnresponsive: true });
    expect(existsSync(cli)).toBe(true);
    expect(existsSync(blob.path)).toBe(true);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await until(() => !processLive(pid), 5000, 'the group to die');
  });

  it('stops a new CLI at the first-run bound (shortened): it stays, the blob is consumed', async () => {
    const pidFile = path.join(root, 'child.pid');
    const hang = zstd(hangingCli(path.join(root, 'hang'), pidFile), path.join(root, 'hang.zst'));
    const r = await claustrum(['-install', '-cli-dir', cliDir, '-cli-version', '1.2.3', '-cli-zst', hang.path], {
      CLAUSTRUM_TEST_FIRST_RUN_TIMEOUT_MS: '1500',
    });
    const f = factsOf(r);
    expect(f).toEqual({ ...head(cli), libc: f.libc, cliError: CLI_UNRESPONSIVE, cliUnresponsive: true });
    expect(names(cliDir)).toEqual(['1.2.3']);
    expect(existsSync(hang.path)).toBe(false);
    await until(() => !processLive(Number(readFileSync(pidFile, 'utf8'))), 5000, 'the group to die');
  });

  it('reinstalls over a present file that does not run', async () => {
    mkdirSync(cliDir, { mode: 0o700 });
    writeCli(cli, 'exit 1');
    const f = factsOf(await install('-cli-zst', blob.path));
    expect(f.cliError).toBeUndefined();
    expect(f.cliWasPresent).toBe(false);
    expect(readFileSync(cli, 'utf8')).toContain('agent 1.2.3');
  });

  it('runs a present CLI reached through a symlink', async () => {
    mkdirSync(cliDir, { mode: 0o700 });
    const real = writeCli(path.join(root, 'real-cli'), 'exit 0');
    symlinkSync(real, cli);
    expect(factsOf(await install()).cliWasPresent).toBe(true);
  });
});

describe('-install housekeeping', () => {
  /** Four old versions (oldest first), a fresh and an old pair of swept names, and our blob. */
  function litter(): void {
    mkdirSync(cliDir, { mode: 0o700 });
    const put = (name: string, ageMs: number) => {
      writeFileSync(path.join(cliDir, name), 'x');
      age(path.join(cliDir, name), ageMs);
    };
    put('.fetch-old', 11 * MINUTE);
    put('old.zst', 11 * MINUTE);
    put('.blob-old', 11 * MINUTE);
    put('.fetch-new', 0);
    put('new.zst', 0);
    put('.blob-new', 0);
    put('keep.zst.part', 6 * 24 * 60 * MINUTE);
    put('gone.zst.part', 8 * 24 * 60 * MINUTE);
    for (const [i, v] of ['1.0.0', '1.1.0', '1.2.0', '1.3.0'].entries()) put(v, (48 - i) * 60 * MINUTE);
  }
  const fresh = ['.blob-new', '.fetch-new', 'keep.zst.part', 'new.zst'];

  it('keeps the -cli-keep newest after a good install and sweeps old litter', async () => {
    litter();
    const f = factsOf(await install('-cli-zst', blob.path, '-cli-keep', '2'));
    expect(f.cliError).toBeUndefined();
    expect(names(cliDir)).toEqual([...fresh, '1.2.3', '1.3.0'].sort());
  });

  it('keeps the default 3', async () => {
    litter();
    factsOf(await install('-cli-zst', blob.path));
    expect(names(cliDir)).toEqual([...fresh, '1.2.0', '1.2.3', '1.3.0'].sort());
  });

  it('-cli-keep 0 keeps only the CLI just installed', async () => {
    litter();
    factsOf(await install('-cli-zst', blob.path, '-cli-keep', '0'));
    expect(names(cliDir)).toEqual([...fresh, '1.2.3'].sort());
  });

  it('counts folders, removes empty ones, and leaves a folder with content', async () => {
    mkdirSync(path.join(cliDir, '0.1.0'), { recursive: true });
    mkdirSync(path.join(cliDir, '0.2.0', 'inner'), { recursive: true });
    age(path.join(cliDir, '0.1.0'), 60 * MINUTE);
    age(path.join(cliDir, '0.2.0'), 50 * MINUTE);
    factsOf(await install('-cli-zst', blob.path, '-cli-keep', '1'));
    expect(names(cliDir)).toEqual(['0.2.0', '1.2.3']);
  });

  it('sweeps but does not prune after a failed attempt', async () => {
    litter();
    const f = factsOf(await install('-cli-keep', '1'));
    expect(f.cliError).toBe('cli 1.2.3 missing and no --cli-url or --cli-zst provided');
    expect(names(cliDir)).toEqual([...fresh, '1.0.0', '1.1.0', '1.2.0', '1.3.0'].sort());
  });

  it('neither sweeps nor prunes on a cache hit, except old *.zst.part', async () => {
    litter();
    writeCli(cli, 'exit 0');
    const f = factsOf(await install('-cli-keep', '1'));
    expect(f.cliWasPresent).toBe(true);
    expect(names(cliDir)).toEqual(['.blob-old', '.fetch-old', 'old.zst', ...fresh, '1.0.0', '1.1.0', '1.2.0', '1.2.3', '1.3.0'].sort());
  });

  it('never leaves a half-written cliPath: a killed install leaves at most a staging file, swept once old', async () => {
    // A CLI big enough that decompressing it takes a while: the install is killed as soon as its staging file shows.
    const bigSrc = path.join(root, 'big');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) % 251;
    writeFileSync(bigSrc, Buffer.concat([Buffer.from('#!/bin/sh\nexit 0\n'), ...Array.from({ length: 96 }, () => chunk)]));
    const big = zstd(bigSrc, path.join(root, 'big.zst'), '-1');
    const wanted = sha256(readFileSync(bigSrc));
    mkdirSync(cliDir, { mode: 0o700 });
    const child = spawn(process.execPath, [BIN, '-install', '-cli-dir', cliDir, '-cli-version', '1.2.3', '-cli-zst', big.path], {
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    let sawStaging = false;
    while (child.exitCode === null) {
      if (names(cliDir).some((n) => n.startsWith('.fetch-'))) {
        sawStaging = true;
        child.kill('SIGKILL');
        break;
      }
      await sleep(2);
    }
    await exited;
    expect(sawStaging).toBe(true);
    // Either the CLI is complete at its final name, or there is nothing there.
    if (existsSync(cli)) expect(sha256(readFileSync(cli))).toBe(wanted);
    const staging = names(cliDir).filter((n) => n.startsWith('.fetch-'));
    if (sawStaging && !existsSync(cli)) expect(staging.length).toBe(1);
    for (const s of staging) age(path.join(cliDir, s), 11 * MINUTE);
    await rm(cli, { force: true });
    factsOf(await install());
    expect(names(cliDir).filter((n) => n.startsWith('.fetch-'))).toEqual([]);
  });
});
