/**
 * files.stat, files.list, files.read, files.validate over the real daemon socket, with a private HOME so tilde
 * expansion is observable.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_READ_MAX_BYTES, MAX_READ_BYTES } from '../../src/files/inspect.js';
import { Daemon } from '../helpers/daemon.js';
import { SERVED_METHODS } from '../helpers/methods.js';
import type { RpcClient } from '../helpers/rpc.js';

let home: string;
let d: Daemon;
let c: RpcClient;

beforeAll(async () => {
  home = realpathSync(mkdtempSync(path.join(tmpdir(), 'files-home-')));
  writeFileSync(path.join(home, 'hello.txt'), 'hi\n');
  chmodSync(path.join(home, 'hello.txt'), 0o644);
  mkdirSync(path.join(home, 'fdir', 'sub'), { recursive: true });
  writeFileSync(path.join(home, 'fdir', 'b.txt'), 'b');
  writeFileSync(path.join(home, 'fdir', 'a.txt'), 'a');
  writeFileSync(path.join(home, 'fdir', '.hidden'), 'h');
  mkdirSync(path.join(home, 'fdir', '.git'));
  symlinkSync(path.join(home, 'fdir', 'sub'), path.join(home, 'fdir', 'link-to-dir'));
  symlinkSync(path.join(home, 'nowhere'), path.join(home, 'fdir', 'dangling'));
  mkdirSync(path.join(home, '~'));
  writeFileSync(path.join(home, '~', 'f.txt'), 'literal tilde dir\n');
  d = await Daemon.start({ env: { HOME: home } });
  c = await d.client();
});

afterAll(async () => {
  await d.stop();
  rmSync(home, { recursive: true, force: true });
});

const p = (...parts: string[]) => path.join(home, ...parts);

describe('registration', () => {
  it('lists files.* and git.* between server.* and process.* in the reference order, and advertises git.status.baseRepo', async () => {
    const caps = await c.call('server.capabilities');
    const firstProcess = SERVED_METHODS.indexOf('process.spawn');
    expect(caps.methods.slice(0, firstProcess + 1)).toEqual(SERVED_METHODS.slice(0, firstProcess + 1));
    expect(SERVED_METHODS.slice(3, firstProcess).every((m) => /^(files|git)\./.test(m))).toBe(true);
    expect(caps.features.slice(0, 3)).toEqual(['process.stdin.offset', 'git.status.baseRepo', 'server.instance_id']);
  });
});

describe('files.stat', () => {
  it('answers {exists, isDir, size, mode} in that order with a Go mode string', async () => {
    const r = await c.call('files.stat', { path: p('hello.txt') });
    expect(Object.keys(r)).toEqual(['exists', 'isDir', 'size', 'mode']);
    expect(r).toEqual({ exists: true, isDir: false, size: 3, mode: '-rw-r--r--' });
    const dir = await c.call('files.stat', { path: p('fdir') });
    expect(dir).toMatchObject({ exists: true, isDir: true });
    expect(dir.mode).toMatch(/^drwx/);
    expect(await c.call('files.stat', { path: '/dev/null' })).toEqual({ exists: true, isDir: false, size: 0, mode: 'Dcrw-rw-rw-' });
  });

  it('answers a missing path as exists:false, not as an error', async () => {
    expect(await c.call('files.stat', { path: p('nope') })).toEqual({ exists: false, isDir: false, size: 0, mode: '' });
    expect(await c.call('files.stat', {})).toEqual({ exists: false, isDir: false, size: 0, mode: '' });
  });

  it('reports any other stat failure as -32603 stat <p>: <reason>', async () => {
    const notDir = `${p('hello.txt')}/../hello.txt`;
    expect((await c.request('files.stat', { path: notDir })).error).toEqual({ code: -32603, message: `stat ${notDir}: not a directory` });
    const long = p('L'.repeat(300));
    expect((await c.request('files.stat', { path: long })).error).toEqual({ code: -32603, message: `stat ${long}: file name too long` });
    const nul = p('a\u0000b');
    expect((await c.request('files.stat', { path: nul })).error).toEqual({ code: -32603, message: `stat ${nul}: invalid argument` });
  });
});

describe('files.list', () => {
  it('lists by name, skips dot-files, and follows symlinks for isDir (a dangling link is false)', async () => {
    const r = await c.call('files.list', { path: p('fdir') });
    expect(r.entries).toEqual([
      { name: 'a.txt', path: p('fdir', 'a.txt'), isDir: false },
      { name: 'b.txt', path: p('fdir', 'b.txt'), isDir: false },
      { name: 'dangling', path: p('fdir', 'dangling'), isDir: false },
      { name: 'link-to-dir', path: p('fdir', 'link-to-dir'), isDir: true },
      { name: 'sub', path: p('fdir', 'sub'), isDir: true },
    ]);
    expect(Object.keys(r.entries[0])).toEqual(['name', 'path', 'isDir']);
    expect(await c.call('files.list', { path: p('fdir', 'sub') })).toEqual({ entries: [] });
  });

  it('joins entry paths onto the cleaned directory', async () => {
    const r = await c.call('files.list', { path: `${p('fdir')}//./` });
    expect(r.entries[0].path).toBe(p('fdir', 'a.txt'));
  });

  it('fails at the open: missing, not a directory', async () => {
    expect((await c.request('files.list', { path: p('missing') })).error).toEqual({
      code: -32603,
      message: `open ${p('missing')}: no such file or directory`,
    });
    expect((await c.request('files.list', { path: p('hello.txt') })).error).toEqual({
      code: -32603,
      message: `open ${p('hello.txt')}: not a directory`,
    });
  });
});

describe('files.list and files.read without permission', () => {
  let locked: Daemon;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'files-perm-'));
    mkdirSync(path.join(dir, 'closed'), { mode: 0o000 });
    chmodSync(path.join(dir, 'closed'), 0o000);
    writeFileSync(path.join(dir, 'secret.txt'), 's');
    chmodSync(path.join(dir, 'secret.txt'), 0o000);
    // Root reads everything: a root test run drops the capabilities that bypass file modes.
    const asRoot = process.getuid?.() === 0;
    locked = await Daemon.start(asRoot ? { wrapper: ['setpriv', '--bounding-set=-dac_override,-dac_read_search'] } : {});
  });
  afterAll(async () => {
    await locked.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers open <p>: permission denied for an unreadable directory, and not a directory for a file, readable or not', async () => {
    const lc = await locked.client();
    const closed = path.join(dir, 'closed');
    const secret = path.join(dir, 'secret.txt');
    expect((await lc.request('files.list', { path: closed })).error).toEqual({ code: -32603, message: `open ${closed}: permission denied` });
    expect((await lc.request('files.list', { path: secret })).error).toEqual({ code: -32603, message: `open ${secret}: not a directory` });
    expect((await lc.request('files.read', { path: secret })).error).toEqual({ code: -32603, message: `open ${secret}: permission denied` });
  });
});

describe('files.read', () => {
  it('answers {content, exists:true} with the raw text', async () => {
    const r = await c.call('files.read', { path: p('hello.txt') });
    expect(Object.keys(r)).toEqual(['content', 'exists']);
    expect(r).toEqual({ content: 'hi\n', exists: true });
  });

  it('answers a missing file as {content:"", exists:false}', async () => {
    expect(await c.call('files.read', { path: p('nope') })).toEqual({ content: '', exists: false });
  });

  it('refuses a directory', async () => {
    expect((await c.request('files.read', { path: p('fdir') })).error).toEqual({ code: -32602, message: 'files.read: path is a directory' });
  });

  it('reads a file of exactly maxBytes and refuses one byte more', async () => {
    writeFileSync(p('ten.txt'), '0123456789');
    expect(await c.call('files.read', { path: p('ten.txt'), maxBytes: 10 })).toEqual({ content: '0123456789', exists: true });
    expect((await c.request('files.read', { path: p('ten.txt'), maxBytes: 9 })).error).toEqual({
      code: -32602,
      message: 'files.read: file exceeds maxBytes',
    });
  });

  it('applies the 262144-byte default when maxBytes is absent, zero or negative, and honours a larger one', async () => {
    expect(DEFAULT_READ_MAX_BYTES).toBe(262_144);
    writeFileSync(p('at-default.txt'), 'a'.repeat(DEFAULT_READ_MAX_BYTES));
    writeFileSync(p('over-default.txt'), 'a'.repeat(DEFAULT_READ_MAX_BYTES + 1));
    expect((await c.call('files.read', { path: p('at-default.txt') })).content.length).toBe(DEFAULT_READ_MAX_BYTES);
    for (const maxBytes of [undefined, 0, -1]) {
      const r = await c.request('files.read', { path: p('over-default.txt'), maxBytes });
      expect(r.error).toEqual({ code: -32602, message: 'files.read: file exceeds maxBytes' });
    }
    const big = await c.call('files.read', { path: p('over-default.txt'), maxBytes: DEFAULT_READ_MAX_BYTES + 1 });
    expect(big.content.length).toBe(DEFAULT_READ_MAX_BYTES + 1);
  });

  it('takes a maxBytes above 64 MiB as 64 MiB: a file of exactly the ceiling reads, one byte more is refused', async () => {
    expect(MAX_READ_BYTES).toBe(64 * 1024 * 1024);
    writeFileSync(p('ceiling.txt'), Buffer.alloc(MAX_READ_BYTES, 0x61));
    writeFileSync(p('over-ceiling.txt'), Buffer.alloc(MAX_READ_BYTES + 1, 0x61));
    const at = await c.call('files.read', { path: p('ceiling.txt'), maxBytes: 2 ** 40 });
    expect(at.content.length).toBe(MAX_READ_BYTES);
    const over = await c.request('files.read', { path: p('over-ceiling.txt'), maxBytes: 2 ** 40 });
    expect(over.error).toEqual({ code: -32602, message: 'files.read: file exceeds maxBytes' });
    rmSync(p('ceiling.txt'));
    rmSync(p('over-ceiling.txt'));
  });

  it('writes one U+FFFD per invalid UTF-8 byte, as the reference does', async () => {
    writeFileSync(p('bytes.bin'), Buffer.from([0x61, 0xe2, 0x82, 0x62, 0xff]));
    expect(await c.call('files.read', { path: p('bytes.bin') })).toEqual({ content: 'a\uFFFD\uFFFDb\uFFFD', exists: true });
  });

  it('refuses /dev/zero and a FIFO without reading, reads /dev/null as empty, and the daemon keeps answering', async () => {
    expect((await c.request('files.read', { path: '/dev/zero' })).error).toEqual({ code: -32602, message: 'files.read: not a regular file' });
    expect(await c.call('files.read', { path: '/dev/null' })).toEqual({ content: '', exists: true });
    const fifo = p('fifo');
    execFileSync('mkfifo', [fifo]);
    // No writer ever opens the FIFO: a blocking open or read would hang this request, and with it the ping.
    const [read, ping] = await Promise.all([c.request('files.read', { path: fifo }), c.request('server.ping')]);
    expect(read.error).toEqual({ code: -32602, message: 'files.read: not a regular file' });
    expect(ping.result).toEqual({ pong: true });
    expect((await c.request('files.read', { path: fifo, maxBytes: 1 })).error?.message).toBe('files.read: not a regular file');
  });

  it('answers a socket with its open failure, as the reference does on Linux', async () => {
    const sock = path.join(mkdtempSync(path.join(tmpdir(), 'fs-')), 's.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      expect((await c.request('files.read', { path: sock })).error).toEqual({ code: -32603, message: `open ${sock}: no such device or address` });
    } finally {
      server.close();
    }
  });
});

describe('files.validate', () => {
  it('answers {valid, isDir} for what exists', async () => {
    const r = await c.call('files.validate', { path: p('hello.txt') });
    expect(Object.keys(r)).toEqual(['valid', 'isDir']);
    expect(r).toEqual({ valid: true, isDir: false });
    expect(await c.call('files.validate', { path: p('fdir') })).toEqual({ valid: true, isDir: true });
  });

  it('answers a missing path with "Path does not exist", and any other stat failure with its text', async () => {
    const r = await c.call('files.validate', { path: p('nope') });
    expect(Object.keys(r)).toEqual(['valid', 'isDir', 'error']);
    expect(r).toEqual({ valid: false, isDir: false, error: 'Path does not exist' });
    const notDir = p('hello.txt', 'x');
    expect(await c.call('files.validate', { path: notDir })).toEqual({ valid: false, isDir: false, error: `stat ${notDir}: not a directory` });
  });
});

describe('tilde expansion', () => {
  it('expands ~/ and a bare ~ in every files.* path, and echoes the expanded spelling', async () => {
    expect(await c.call('files.stat', { path: '~/hello.txt' })).toMatchObject({ exists: true, size: 3 });
    expect(await c.call('files.validate', { path: '~/hello.txt' })).toEqual({ valid: true, isDir: false });
    expect(await c.call('files.read', { path: '~/hello.txt' })).toEqual({ content: 'hi\n', exists: true });
    expect(await c.call('files.validate', { path: '~' })).toEqual({ valid: true, isDir: true });
    expect(await c.call('files.validate', { path: '~/' })).toEqual({ valid: true, isDir: true });
    expect(await c.call('files.read', { path: '~//fdir/./sub/../a.txt' })).toEqual({ content: 'a', exists: true });
    const listed = await c.call('files.list', { path: '~/fdir' });
    expect(listed.entries[0].path).toBe(p('fdir', 'a.txt'));
    expect((await c.request('files.list', { path: '~/missing' })).error?.message).toBe(`open ${p('missing')}: no such file or directory`);
  });

  it('leaves ~user, $HOME and a ~ that is not first alone', async () => {
    expect(await c.call('files.stat', { path: '~nosuchuser/hello.txt' })).toMatchObject({ exists: false });
    expect(await c.call('files.stat', { path: '$HOME/hello.txt' })).toMatchObject({ exists: false });
    expect(await c.call('files.read', { path: p('~', 'f.txt') })).toEqual({ content: 'literal tilde dir\n', exists: true });
  });
});

describe('params', () => {
  it('requires params, types every field of the namespace (D9), and ignores unknown keys', async () => {
    expect((await c.request('files.stat')).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('files.stat', 'x')).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('files.stat', { path: 1 })).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('files.stat', { path: p('hello.txt'), maxBytes: '4' })).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('files.list', { path: p('fdir'), destDir: 7 })).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('files.read', { path: p('hello.txt'), maxBytes: 1.5 })).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect(await c.call('files.stat', { path: p('hello.txt'), whatever: [1] })).toMatchObject({ exists: true });
    expect(await c.call('files.stat', null)).toEqual({ exists: false, isDir: false, size: 0, mode: '' });
  });
});
