/**
 * files.extract_tar over the real daemon socket: side effects, every refusal, the size cap and streaming, with
 * archives made in the test by the system tar + gzip or byte by byte.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Daemon } from '../helpers/daemon.js';
import type { RpcClient } from '../helpers/rpc.js';
import { systemTar, tgzBytes } from '../helpers/tar.js';

let home: string;
let work: string;
let d: Daemon;
let c: RpcClient;
let n = 0;

beforeAll(async () => {
  home = realpathSync(mkdtempSync(path.join(tmpdir(), 'extract-home-')));
  writeFileSync(path.join(home, 'keep.txt'), 'precious');
  d = await Daemon.start({ env: { HOME: home } });
  c = await d.client();
});

afterAll(async () => {
  await d.stop();
  rmSync(home, { recursive: true, force: true });
});

beforeEach(() => {
  work = path.join(home, `case-${++n}`);
  mkdirSync(work);
});

const mode = (p: string) => statSync(p).mode & 0o7777;

/** A .tar.gz of `files` (relative path → content) made by the system tar and gzip. */
function systemArchive(files: Record<string, string>, extra: (src: string) => void = () => {}): string {
  const src = path.join(work, 'src');
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    writeFileSync(path.join(src, name), body);
  }
  extra(src);
  const archive = path.join(work, 'archive.tar.gz');
  systemTar(src, '--sort=name', '-czf', archive, '.');
  return archive;
}

function handArchive(bytes: Buffer): string {
  const archive = path.join(work, 'hand.tar.gz');
  writeFileSync(archive, bytes);
  return archive;
}

describe('files.extract_tar: success', () => {
  it('wipes destDir, writes files 0600 and directories 0700, adds an empty .synced, and consumes the archive', async () => {
    const archive = systemArchive({ 'one.txt': '1', 'sub/two.txt': '22', 'sub/deeper/three.sh': '#!/bin/sh\n' }, (src) =>
      chmodSync(path.join(src, 'sub/deeper/three.sh'), 0o755),
    );
    const dest = path.join(work, 'dest');
    mkdirSync(dest);
    writeFileSync(path.join(dest, 'stale.txt'), 'old');
    const r = await c.call('files.extract_tar', { archivePath: archive, destDir: dest });
    expect(Object.keys(r)).toEqual(['success', 'fileCount']);
    expect(r).toEqual({ success: true, fileCount: 3 });
    expect(readdirSync(dest).sort()).toEqual(['.synced', 'one.txt', 'sub']);
    expect(readFileSync(path.join(dest, 'sub/two.txt'), 'utf8')).toBe('22');
    expect(mode(path.join(dest, 'one.txt'))).toBe(0o600);
    expect(mode(path.join(dest, 'sub/deeper/three.sh'))).toBe(0o600);
    expect(mode(dest)).toBe(0o700);
    expect(mode(path.join(dest, 'sub'))).toBe(0o700);
    expect(mode(path.join(dest, 'sub/deeper'))).toBe(0o700);
    expect(statSync(path.join(dest, '.synced')).size).toBe(0);
    expect(mode(path.join(dest, '.synced'))).toBe(0o600);
    expect(existsSync(archive)).toBe(false);
  });

  it('creates a missing destDir with its parents, and puts an absolute entry name inside destDir', async () => {
    const archive = handArchive(
      tgzBytes([
        { name: '/abs.txt', body: 'a' },
        { name: './dot/x.txt', body: 'x' },
      ]),
    );
    const dest = path.join(work, 'a', 'b', 'dest');
    expect(await c.call('files.extract_tar', { archivePath: archive, destDir: dest })).toEqual({ success: true, fileCount: 2 });
    expect(readFileSync(path.join(dest, 'abs.txt'), 'utf8')).toBe('a');
    expect(readFileSync(path.join(dest, 'dot/x.txt'), 'utf8')).toBe('x');
  });

  it('expands ~ in both paths and accepts a destDir under home', async () => {
    writeFileSync(path.join(home, 'arc.tgz'), tgzBytes([{ name: 'one.txt', body: '1' }]));
    expect(await c.call('files.extract_tar', { archivePath: '~/arc.tgz', destDir: '~/plugins/p1' })).toEqual({ success: true, fileCount: 1 });
    expect(readFileSync(path.join(home, 'plugins/p1/one.txt'), 'utf8')).toBe('1');
    expect(existsSync(path.join(home, 'arc.tgz'))).toBe(false);
  });

  it('streams: a 256 MiB file extracts without the daemon holding it in memory', async () => {
    const big = path.join(work, 'big.tar.gz');
    execFileSync(
      'bash',
      ['-c', `set -o pipefail; mkdir s && head -c ${256 << 20} /dev/zero > s/zeros && tar -C s -cf - zeros | gzip -1 > ${big} && rm -rf s`],
      { cwd: work },
    );
    const dest = path.join(work, 'dest');
    expect(await c.call('files.extract_tar', { archivePath: big, destDir: dest })).toEqual({ success: true, fileCount: 1 });
    expect(statSync(path.join(dest, 'zeros')).size).toBe(256 << 20);
    // Peak resident memory of the daemon over its whole life stays far below the file's size.
    const status = readFileSync(`/proc/${d.proc.pid}/status`, 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]);
    expect(hwmKb * 1024).toBeLessThan(160 << 20);
  });
});

describe('files.extract_tar: refusals before the archive is opened (the archive stays)', () => {
  const archive = () => handArchive(tgzBytes([{ name: 'one.txt', body: '1' }]));

  it('requires both paths', async () => {
    for (const params of [{}, { archivePath: archive() }, { destDir: '/tmp/x' }, { archivePath: '', destDir: '/tmp/x' }]) {
      expect((await c.request('files.extract_tar', params)).error).toEqual({ code: -32602, message: 'archivePath and destDir are required' });
    }
  });

  it('refuses a relative or root destDir', async () => {
    const a = archive();
    for (const destDir of ['rel/dest', '/', '//', '/tmp/..']) {
      expect(await c.call('files.extract_tar', { archivePath: a, destDir })).toEqual({
        success: false,
        fileCount: 0,
        error: `destDir must be an absolute, non-root path: ${JSON.stringify(destDir)}`,
      });
    }
    expect(existsSync(a)).toBe(true);
  });

  it('refuses the home directory and its ancestors, whatever the spelling (D2), and deletes nothing', async () => {
    const a = archive();
    for (const [destDir, shown] of [
      ['~', home],
      ['~/', home],
      [home, home],
      [`${home}/sub/..`, `${home}/sub/..`],
      [path.dirname(home), path.dirname(home)],
    ] as const) {
      expect(await c.call('files.extract_tar', { archivePath: a, destDir })).toEqual({
        success: false,
        fileCount: 0,
        error: `destDir must not be or contain the home directory: ${JSON.stringify(shown)}`,
      });
    }
    expect(readFileSync(path.join(home, 'keep.txt'), 'utf8')).toBe('precious');
    expect(existsSync(a)).toBe(true);
  });

  it('refuses home reached through a symlinked directory, which a lexical test would miss', async () => {
    const a = archive();
    symlinkSync(path.dirname(home), path.join(work, 'alias'));
    const destDir = path.join(work, 'alias', path.basename(home));
    expect(await c.call('files.extract_tar', { archivePath: a, destDir })).toEqual({
      success: false,
      fileCount: 0,
      error: `destDir must not be or contain the home directory: ${JSON.stringify(destDir)}`,
    });
    expect(readFileSync(path.join(home, 'keep.txt'), 'utf8')).toBe('precious');
    expect(existsSync(a)).toBe(true);
  });

  it('reports a missing archive as open archive: …', async () => {
    const missing = path.join(work, 'nosuch.tar.gz');
    expect(await c.call('files.extract_tar', { archivePath: missing, destDir: path.join(work, 'dest') })).toEqual({
      success: false,
      fileCount: 0,
      error: `open archive: open ${missing}: no such file or directory`,
    });
  });

  it('refuses a FIFO as the archive without waiting for a writer, and leaves it', async () => {
    const fifo = path.join(work, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const [r, ping] = await Promise.all([
      c.call('files.extract_tar', { archivePath: fifo, destDir: path.join(work, 'dest') }),
      c.request('server.ping'),
    ]);
    expect(r).toEqual({ success: false, fileCount: 0, error: `open archive: ${fifo}: not a regular file` });
    expect(ping.result).toEqual({ pong: true });
    expect(existsSync(fifo)).toBe(true);
  });
});

describe('files.extract_tar: refusals after the archive is opened (the archive is consumed)', () => {
  async function refusedWith(bytes: Buffer, error: string, destExisted = true): Promise<string> {
    const archive = handArchive(bytes);
    const dest = path.join(work, 'dest');
    if (destExisted) {
      mkdirSync(dest);
      writeFileSync(path.join(dest, 'old.txt'), 'old');
    }
    expect(await c.call('files.extract_tar', { archivePath: archive, destDir: dest })).toEqual({ success: false, fileCount: 0, error });
    expect(existsSync(archive)).toBe(false);
    return dest;
  }

  it('refuses a ../ entry that escapes destDir, and writes nothing outside it', async () => {
    await refusedWith(
      tgzBytes([
        { name: 'ok.txt', body: 'ok' },
        { name: '../escape.txt', body: 'e' },
      ]),
      'unsafe path in archive: ../escape.txt',
    );
    expect(existsSync(path.join(work, 'escape.txt'))).toBe(false);
  });

  it('refuses a ../ entry made by the system tar (-P keeps the name)', async () => {
    mkdirSync(path.join(work, 'inner'));
    writeFileSync(path.join(work, 'outside.txt'), 'o');
    const archive = path.join(work, 'slip.tar.gz');
    systemTar(path.join(work, 'inner'), '-P', '-czf', archive, '../outside.txt');
    const dest = path.join(work, 'x', 'dest');
    expect(await c.call('files.extract_tar', { archivePath: archive, destDir: dest })).toEqual({
      success: false,
      fileCount: 0,
      error: 'unsafe path in archive: ../outside.txt',
    });
    expect(readFileSync(path.join(work, 'outside.txt'), 'utf8')).toBe('o');
    expect(existsSync(path.join(work, 'x', 'outside.txt'))).toBe(false);
  });

  it('refuses a name that leaves destDir and comes back, and one that climbs from a subdirectory', async () => {
    await refusedWith(tgzBytes([{ name: '../dest/x.txt', body: 'x' }]), 'unsafe path in archive: ../dest/x.txt');
    rmSync(path.join(work, 'dest'), { recursive: true, force: true });
    await refusedWith(tgzBytes([{ name: 'sub/../../dest-sibling/y.txt', body: 'y' }]), 'unsafe path in archive: sub/../../dest-sibling/y.txt');
  });

  it('refuses a symlink entry made by the system tar, and does not create the link', async () => {
    mkdirSync(path.join(work, 'src'));
    symlinkSync('/etc/passwd', path.join(work, 'src', 'link'));
    const archive = path.join(work, 'sym.tar.gz');
    systemTar(path.join(work, 'src'), '-czf', archive, 'link');
    const dest = path.join(work, 'dest');
    expect(await c.call('files.extract_tar', { archivePath: archive, destDir: dest })).toEqual({
      success: false,
      fileCount: 0,
      error: 'unsupported tar entry type 2: link',
    });
    expect(existsSync(path.join(dest, 'link'))).toBe(false);
  });

  it('refuses hard links, devices and FIFOs by typeflag', async () => {
    await refusedWith(
      tgzBytes([
        { name: 'a.txt', body: 'a' },
        { name: 'hard', type: '1', linkname: 'a.txt' },
      ]),
      'unsupported tar entry type 1: hard',
    );
    rmSync(path.join(work, 'dest'), { recursive: true, force: true });
    await refusedWith(tgzBytes([{ name: 'tty', type: '3' }]), 'unsupported tar entry type 3: tty');
    rmSync(path.join(work, 'dest'), { recursive: true, force: true });
    await refusedWith(tgzBytes([{ name: 'fifo', type: '6' }]), 'unsupported tar entry type 6: fifo');
  });

  it('refuses data that is not gzip before touching destDir', async () => {
    const dest = await refusedWith(Buffer.from('this is not a gzip stream at all'), 'gzip: gzip: invalid header');
    expect(readFileSync(path.join(dest, 'old.txt'), 'utf8')).toBe('old');
    rmSync(dest, { recursive: true });
    await refusedWith(Buffer.alloc(0), 'gzip: EOF');
    rmSync(dest, { recursive: true });
    await refusedWith(Buffer.from([0x1f, 0x8b, 8]), 'gzip: unexpected EOF');
  });

  it('reports a gzip stream that is not a tar, or is cut short, as tar read: …', async () => {
    await refusedWith(gzipSync(Buffer.from('short')), 'tar read: unexpected EOF');
    rmSync(path.join(work, 'dest'), { recursive: true, force: true });
    await refusedWith(gzipSync(Buffer.alloc(1024, 0x41)), 'tar read: archive/tar: invalid tar header');
    rmSync(path.join(work, 'dest'), { recursive: true, force: true });
    const whole = tgzBytes([{ name: 'a.txt', body: 'a'.repeat(100_000) }]);
    await refusedWith(whole.subarray(0, 60), 'tar read: unexpected EOF');
  });

  it('refuses a file entry where a directory already is', async () => {
    const dest = path.join(work, 'dest');
    await refusedWith(
      tgzBytes([
        { name: 'd/', type: '5' },
        { name: 'd', body: 'x' },
      ]),
      `create d: open ${dest}/d: is a directory`,
      false,
    );
  });
});

describe('files.extract_tar with -max-extract-bytes', () => {
  let capped: Daemon;
  let cc: RpcClient;
  beforeAll(async () => {
    capped = await Daemon.start({ args: ['-max-extract-bytes', '10'] });
    cc = await capped.client();
  });
  afterAll(() => capped.stop());

  it('writes exactly the cap', async () => {
    const archive = handArchive(
      tgzBytes([
        { name: 'a.txt', body: '1234' },
        { name: 'b.txt', body: '567890' },
      ]),
    );
    expect(await cc.call('files.extract_tar', { archivePath: archive, destDir: path.join(work, 'dest') })).toEqual({ success: true, fileCount: 2 });
  });

  it('refuses one byte more and removes the entry that crossed it', async () => {
    const archive = handArchive(
      tgzBytes([
        { name: 'a.txt', body: '1234' },
        { name: 'b.txt', body: '5678901' },
      ]),
    );
    const dest = path.join(work, 'dest');
    expect(await cc.call('files.extract_tar', { archivePath: archive, destDir: dest })).toEqual({
      success: false,
      fileCount: 0,
      error: 'extraction size limit exceeded',
    });
    expect(existsSync(path.join(dest, 'b.txt'))).toBe(false);
    expect(existsSync(archive)).toBe(false);
  });
});
