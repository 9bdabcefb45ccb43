/**
 * The daemon's end of the keeper link keeps the notices that come between its hello and the moment the supervisor
 * takes them (the adoption, seconds later under load): merged per process, and log notices up to their bound. The
 * keeper here is a socket speaking the keeper protocol, so that the notices and their timing are the test's.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EARLY_LOG_NOTICES_MAX, KeeperLink } from '../../src/keeper/link.js';
import { KEEPER_SOCKET, keeperDirectory } from '../../src/keeper/paths.js';
import { encodeMessage, KEEPER_PROTOCOL, type KeeperNotice, MessageReader } from '../../src/keeper/protocol.js';
import { Logger } from '../../src/log/logger.js';

const dirs: string[] = [];
const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A keeper socket that answers the hello, then writes `notices` at once (before the daemon can take them). */
async function keeperSaying(notices: KeeperNotice[]): Promise<string> {
  const runDir = mkdtempSync(path.join(tmpdir(), 'cl-link-'));
  dirs.push(runDir);
  const dir = keeperDirectory(runDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const server = net.createServer((socket) => {
    const reader = new MessageReader();
    socket.on('data', (chunk: Buffer) =>
      reader.push(chunk, (msg) => {
        const m = msg as { t: string; rid: number };
        if (m.t !== 'hello') return;
        const body = {
          protocol: KEEPER_PROTOCOL,
          keeper: { pid: 1, instance: 'k', build: 'test', startedAt: 0 },
          token: undefined,
          superseded: undefined,
          processes: [],
        };
        socket.write(Buffer.concat([encodeMessage({ t: 'reply', rid: m.rid, ok: true, body } as never), ...notices.map((n) => encodeMessage(n))]));
      }),
    );
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path.join(dir, KEEPER_SOCKET), resolve));
  return runDir;
}

async function linked(runDir: string): Promise<KeeperLink> {
  const { link } = await KeeperLink.open({ runDir, instance: 'd', build: 'test', token: 't', budgetBytes: 1 << 20, log: new Logger('error') });
  // Long enough for every notice written with the reply to have been read, with nobody taking them.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return link;
}

describe('KeeperLink: notices before the supervisor takes them', () => {
  it('hands a reap, the journal growth (the newest seq per process) and a superseded notice to the first handler', async () => {
    const runDir = await keeperSaying([
      {
        t: 'appended',
        procs: [
          ['a', 3],
          ['b', 1],
        ],
      },
      { t: 'reaped', key: 'a', reap: { code: 7, signal: null, at: 1 } },
      { t: 'appended', procs: [['a', 5]] },
      { t: 'superseded', by: 'next' },
    ]);
    const link = await linked(runDir);
    const got: KeeperNotice[] = [];
    link.onNotice = (n) => got.push(n);
    expect(got).toEqual([
      { t: 'reaped', key: 'a', reap: { code: 7, signal: null, at: 1 } },
      {
        t: 'appended',
        procs: [
          ['a', 5],
          ['b', 1],
        ],
      },
      { t: 'superseded', by: 'next' },
    ]);
    link.close();
  });

  it(`keeps the last ${EARLY_LOG_NOTICES_MAX} log notices: one more drops the oldest`, async () => {
    const logs: KeeperNotice[] = Array.from({ length: EARLY_LOG_NOTICES_MAX + 1 }, (_, i) => ({
      t: 'log',
      level: 'info',
      component: 'keeper',
      msg: `m${i}`,
    }));
    const link = await linked(await keeperSaying(logs));
    const got: KeeperNotice[] = [];
    link.onNotice = (n) => got.push(n);
    expect(got).toHaveLength(EARLY_LOG_NOTICES_MAX);
    expect(got[0]).toMatchObject({ msg: 'm1' });
    expect(got.at(-1)).toMatchObject({ msg: `m${EARLY_LOG_NOTICES_MAX}` });
    link.close();
  });

  it(`keeps exactly ${EARLY_LOG_NOTICES_MAX} log notices whole`, async () => {
    const logs: KeeperNotice[] = Array.from({ length: EARLY_LOG_NOTICES_MAX }, (_, i) => ({
      t: 'log',
      level: 'info',
      component: 'keeper',
      msg: `m${i}`,
    }));
    const link = await linked(await keeperSaying(logs));
    const got: KeeperNotice[] = [];
    link.onNotice = (n) => got.push(n);
    expect(got).toHaveLength(EARLY_LOG_NOTICES_MAX);
    expect(got[0]).toMatchObject({ msg: 'm0' });
    link.close();
  });
});
