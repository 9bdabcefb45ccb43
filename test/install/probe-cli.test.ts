/** `claustrum -probe-cli <path>`, end to end: always exit 0, and one of three answers on stdout. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir, until } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';
import { claustrum, writeCli } from '../helpers/install.js';

let root: string;
beforeEach(() => {
  root = tempDir('claustrum-probe-');
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('-probe-cli', () => {
  it('prints nothing for a CLI that answers --version, and passes it that flag', async () => {
    const seen = path.join(root, 'argv');
    const cli = writeCli(path.join(root, 'cli'), `echo "$@" > '${seen}'; echo "agent 9.9.9"`);
    expect(await claustrum(['-probe-cli', cli])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(seen, 'utf8')).toBe('--version\n');
  });

  it('prints __CLI_HUNG__ when the bound (test-only, shortened) kills it, and kills its process group', async () => {
    const pidFile = path.join(root, 'child.pid');
    const cli = writeCli(path.join(root, 'cli'), `sleep 60 &\necho $! > '${pidFile}'\nexec sleep 60`);
    // Long enough for the stand-in to have written its pid file before it is stopped.
    const r = await claustrum(['-probe-cli', cli], { CLAUSTRUM_TEST_PROBE_TIMEOUT_MS: '1500' });
    expect(r).toMatchObject({ code: 0, stdout: '__CLI_HUNG__\n', stderr: '' });
    await until(() => !processLive(Number(readFileSync(pidFile, 'utf8'))), 5000, 'the group to die');
  });

  it.each([
    ['is missing', (dir: string) => path.join(dir, 'nope')],
    ['exits non-zero', (dir: string) => writeCli(path.join(dir, 'cli'), 'exit 7')],
    ['is killed by a signal it did not get from us', (dir: string) => writeCli(path.join(dir, 'cli'), 'kill -9 $$')],
    [
      'is not executable',
      (dir: string) => {
        const p = path.join(dir, 'cli');
        writeFileSync(p, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
        return p;
      },
    ],
    [
      'is a folder',
      (dir: string) => {
        const p = path.join(dir, 'folder');
        mkdirSync(p);
        return p;
      },
    ],
  ])('prints __CLI_BAD__ when the CLI %s', async (_what, make) => {
    expect(await claustrum(['-probe-cli', make(root)])).toMatchObject({ code: 0, stdout: '__CLI_BAD__\n', stderr: '' });
  });

  it('is one mode: given with another it runs nothing and exits 2', async () => {
    const cli = writeCli(path.join(root, 'cli'), 'exit 1');
    for (const other of ['-stop', '-version', '-install']) {
      const r = await claustrum([other, '-probe-cli', cli]);
      expect(r.code, other).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^claustrum: -[a-z-]+ and -[a-z-]+ are different modes: give one\n$/);
    }
  });
});
