/** The pure and near-pure pieces of -install: the facts line, names, bounds, the version rules, libc detection. */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testBound } from '../../src/install/bounds.js';
import { holdsHome, isBlobName, isSweptName, isZstPartName } from '../../src/install/cli-dir.js';
import { formatFacts, formatProgress, goArch, goOs } from '../../src/install/facts.js';
import { versionError } from '../../src/install/install.js';
import { classifyLddOutput, detectLibc, hasMuslLoader } from '../../src/install/libc.js';
import { tempDir } from '../helpers/daemon.js';
import { writeCli } from '../helpers/install.js';

describe('the facts line', () => {
  const base = { serverVersion: '1.0.0', os: 'linux', arch: 'amd64', libc: 'glibc', cliPath: '/c/1', cliWasPresent: false };

  it('keeps the reference order whatever order the fields were set in, and omits what does not apply', () => {
    expect(formatFacts({ ...base })).toBe(
      '__INSTALL_RESULT__{"serverVersion":"1.0.0","os":"linux","arch":"amd64","libc":"glibc","cliPath":"/c/1","cliWasPresent":false}',
    );
    const all = { fetch: { longestPauseMs: 3, ms: 2, bytes: 1 }, cliUnresponsive: true as const, cliError: 'e', ...base };
    expect(formatFacts(all)).toBe(
      '__INSTALL_RESULT__{"serverVersion":"1.0.0","os":"linux","arch":"amd64","libc":"glibc","cliPath":"/c/1","cliWasPresent":false,"cliError":"e","cliUnresponsive":true,"fetch":{"bytes":1,"ms":2,"longestPauseMs":3}}',
    );
    expect(formatFacts({ ...base, cliError: '' })).not.toContain('cliError');
  });

  it('names the platform as Go does', () => {
    expect(goArch('x64')).toBe('amd64');
    expect(goArch('arm64')).toBe('arm64');
    expect(goArch('ia32')).toBe('386');
    expect(goOs('linux')).toBe('linux');
    expect(goOs('darwin')).toBe('darwin');
  });

  it('formats progress lines with total only when known', () => {
    expect(formatProgress(0, 10)).toBe('__INSTALL_PROGRESS__{"phase":"download","bytes":0,"total":10}');
    expect(formatProgress(5, 0)).toBe('__INSTALL_PROGRESS__{"phase":"download","bytes":5}');
  });
});

describe('names in the cli-dir', () => {
  it('sweeps .fetch-* and *.zst, but not *.zst.part, case-sensitively', () => {
    expect(['.fetch-', '.fetch-abc', 'x.zst', '.zst'].every(isSweptName)).toBe(true);
    expect(['.FETCH-a', 'a.ZST', 'a.zst.part', '.fetch-a.zst.part', '1.2.3', 'fetch-a'].some(isSweptName)).toBe(false);
    expect(isZstPartName('a.zst.part')).toBe(true);
    expect(isBlobName('.blob-1')).toBe(true);
    expect(isBlobName('blob-1')).toBe(false);
  });

  it('accepts real versions and refuses paths and the blob prefix', () => {
    for (const v of ['1.0.86', '2.0.0-beta.1', 'latest', '1.0.86+build.5', '.fetch-x', '1.0.zst', '...']) expect(versionError(v), v).toBeUndefined();
    expect(versionError('../x')).toBe('cli version "../x" must be a single path component');
    expect(versionError('a\\b')).toBe('cli version "a\\\\b" must be a single path component');
    expect(versionError('')).toBeUndefined(); // no version means no install at all; runInstall never asks
    expect(versionError('.blob-x')).toBe('cli version ".blob-x" collides with the install download blob');
  });
});

describe('the home guard', () => {
  let dir: string;
  let savedHome: string | undefined;
  beforeAll(() => {
    dir = tempDir('claustrum-home-');
    savedHome = process.env.HOME;
    mkdirSync(path.join(dir, 'users', 'alice', 'docs'), { recursive: true });
    mkdirSync(path.join(dir, 'other'));
    symlinkSync(path.join(dir, 'users'), path.join(dir, 'link'));
    process.env.HOME = path.join(dir, 'users', 'alice');
  });
  afterAll(async () => {
    process.env.HOME = savedHome;
    await rm(dir, { recursive: true, force: true });
  });

  it('holds for the home folder and every parent, lexically', async () => {
    expect(await holdsHome(path.join(dir, 'users', 'alice'))).toBe(true);
    expect(await holdsHome(path.join(dir, 'users'))).toBe(true);
    expect(await holdsHome('/')).toBe(true);
    expect(await holdsHome(path.join(dir, 'users', 'alice', 'docs'))).toBe(false);
    expect(await holdsHome(path.join(dir, 'other'))).toBe(false);
    expect(await holdsHome(path.join(dir, 'users', 'al'))).toBe(false);
  });

  it('holds by identity when the home is spelled through a link, and not for the link itself', async () => {
    process.env.HOME = path.join(dir, 'link', 'alice');
    try {
      expect(await holdsHome(path.join(dir, 'users'))).toBe(true);
      expect(await holdsHome(path.join(dir, 'users', 'alice'))).toBe(true);
      expect(await holdsHome(path.join(dir, 'other'))).toBe(false);
    } finally {
      process.env.HOME = path.join(dir, 'users', 'alice');
    }
    // A link is removed as a link: what it points at is never touched, so it holds nothing.
    expect(await holdsHome(path.join(dir, 'link'))).toBe(false);
  });
});

describe('bounds', () => {
  it('take a test-only override only as a positive integer', () => {
    expect(testBound('X', 30_000, { X: '250' })).toBe(250);
    for (const bad of ['', '0', '-5', '1.5', 'soon', ' 250']) expect(testBound('X', 30_000, { X: bad }), bad).toBe(30_000);
    expect(testBound('X', 30_000, {})).toBe(30_000);
  });
});

describe('libc', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('claustrum-libc-');
    mkdirSync(path.join(dir, 'musl-lib'));
    writeFileSync(path.join(dir, 'musl-lib', 'ld-musl-aarch64.so.1'), '');
    mkdirSync(path.join(dir, 'glibc-lib'));
    writeFileSync(path.join(dir, 'glibc-lib', 'ld-linux-x86-64.so.2'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('classifies ldd output: musl anywhere wins, any other output is glibc, none defers to the loader', () => {
    expect(classifyLddOutput('musl libc (x86_64)\nVersion 1.2.4\n')).toBe('musl');
    expect(classifyLddOutput('ldd (Debian GLIBC 2.36-9) 2.36\n')).toBe('glibc');
    expect(classifyLddOutput('MUSL')).toBe('musl');
    expect(classifyLddOutput('')).toBeUndefined();
  });

  it('finds a musl loader of any architecture', async () => {
    expect(await hasMuslLoader(path.join(dir, 'musl-lib'))).toBe(true);
    expect(await hasMuslLoader(path.join(dir, 'glibc-lib'))).toBe(false);
    expect(await hasMuslLoader(path.join(dir, 'nowhere'))).toBe(false);
  });

  it('is empty off Linux, and answers on this host', async () => {
    expect(await detectLibc({ platform: 'darwin' })).toBe('');
    expect(['glibc', 'musl']).toContain(await detectLibc());
  });

  it('reads a musl banner from stderr whatever the exit code', async () => {
    const ldd = writeCli(path.join(dir, 'ldd-musl'), 'echo "musl libc (x86_64)" >&2; exit 1');
    expect(await detectLibc({ ldd, loaderDir: path.join(dir, 'glibc-lib') })).toBe('musl');
  });

  it('falls back to the loader when ldd is missing', async () => {
    const ldd = path.join(dir, 'no-ldd');
    expect(await detectLibc({ ldd, loaderDir: path.join(dir, 'musl-lib') })).toBe('musl');
    expect(await detectLibc({ ldd, loaderDir: path.join(dir, 'glibc-lib') })).toBe('glibc');
  });

  it('drops the output of an ldd stopped at the bound, and the loader decides', async () => {
    const ldd = writeCli(path.join(dir, 'ldd-stall'), 'echo "musl libc"; exec sleep 30');
    expect(await detectLibc({ ldd, boundMs: 200, loaderDir: path.join(dir, 'glibc-lib') })).toBe('glibc');
  });

  it('uses what ldd printed when a child of it holds the pipe past the grace', async () => {
    const ldd = writeCli(path.join(dir, 'ldd-holder'), 'echo "musl libc"; setsid sleep 30 & exit 0');
    expect(await detectLibc({ ldd, graceMs: 200, boundMs: 60_000, loaderDir: path.join(dir, 'glibc-lib') })).toBe('musl');
  });
});
