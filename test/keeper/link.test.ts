/**
 * The daemon's link to a real keeper (the built dist/, which starts `dist/src/keeper/main.js`): notices the keeper
 * sends before the daemon listens for them are kept and delivered, merged, once it does. A daemon spends a while
 * between its hello and the supervisor's attach (the lock, the orphan reap, the listeners); a terminal that finished
 * drawing in that window sent its last `appended` then, and was never read further.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KeeperLink } from '../../dist/src/keeper/link.js';
import type { KeeperNotice } from '../../dist/src/keeper/protocol.js';
import { Logger } from '../../dist/src/log/logger.js';
import { tempDir, until } from '../helpers/daemon.js';
import { stopKeeper } from '../helpers/procfs.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) {
    await stopKeeper(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

async function openLink(runDir: string) {
  return KeeperLink.open({
    runDir,
    instance: 'f'.repeat(32),
    build: 'test',
    token: 'link-test-token',
    budgetBytes: 1 << 30,
    log: new Logger('error', () => {}),
  });
}

/** A keeper spawn request for `sh -c <script>`. */
function shSpawn(id: string, script: string) {
  return {
    t: 'spawn' as const,
    spec: {
      id,
      command: 'sh',
      file: '/bin/sh',
      args: ['-c', script],
      cwd: undefined,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      pty: undefined,
      term: undefined,
      spawnedBy: 'f'.repeat(32),
    },
  };
}

describe('KeeperLink', () => {
  it('a keeper lost before anyone listened is reported to the listener set later, at once', async () => {
    const runDir = tempDir('cl-link-');
    dirs.push(runDir);
    const { link } = await openLink(runDir);
    const keeper = JSON.parse(readFileSync(path.join(runDir, 'keeper/keeper.lock'), 'utf8')).pid as number;
    process.kill(keeper, 'SIGKILL');
    // The close event comes once, before the daemon's adoption sets the listener.
    await new Promise((r) => setTimeout(r, 300));
    const heard: string[] = [];
    link.onLost = (why) => heard.push(why);
    expect(heard).toEqual(['the keeper connection closed']);
  });

  it('keeps the notices that came before anyone listened: the last appended seq and the reap of each process', async () => {
    const runDir = tempDir('cl-link-');
    dirs.push(runDir);
    const { link } = await openLink(runDir);
    try {
      const reply = (await link.request(shSpawn('early', 'echo one; echo two; echo three'))) as { state: { key: string } };
      const key = reply.state.key;
      // Nobody listens yet: the keeper journals the output and reaps the child meanwhile.
      await until(() => existsSync(path.join(runDir, 'keeper/procs', key)), 5000, 'the journal');
      await new Promise((r) => setTimeout(r, 500));
      const got: KeeperNotice[] = [];
      link.onNotice = (n) => got.push(n);
      const appended = got.filter((n) => n.t === 'appended').flatMap((n) => n.procs.filter(([k]) => k === key).map(([, seq]) => seq));
      // Merged into one notice with the last seq: the exit's, the frames' count plus one.
      expect(appended.length).toBe(1);
      expect(appended[0]).toBeGreaterThanOrEqual(2);
      expect(got.filter((n) => n.t === 'reaped' && n.key === key)).toHaveLength(1);
      // Later notices go straight to the listener.
      const second = (await link.request(shSpawn('late', 'echo late'))) as { state: { key: string } };
      await until(() => got.some((n) => n.t === 'reaped' && n.key === second.state.key), 5000, 'the second reap');
    } finally {
      await link.request({ t: 'bye', keep: false }).catch(() => undefined);
      link.close();
    }
  });
});
