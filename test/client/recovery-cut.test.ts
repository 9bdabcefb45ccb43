/**
 * A spawn whose request was cut, and then the reattach that looks for it cut too: the client must still spawn it
 * (it was never started), not report it lost. Found by the chaos suite (chaos/, round `cuts`): the second cut turned
 * the handle's "uncertain" state into "detached", and the next reattach took "not found" for a lost process.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Client } from '../../src/client/index.js';
import { Daemon, tempDir } from '../helpers/daemon.js';
import { collect } from './util.js';

/** A relay that drops the first client → daemon chunk mentioning each method in `cut` (and the connection with it). */
function methodCutter(target: string, cut: Map<string, number>): Promise<{ path: string; close: () => void }> {
  const dir = tempDir('cutter-');
  const p = path.join(dir, 'p.sock');
  const server = net.createServer((client) => {
    const daemon = net.connect(target);
    client.on('data', (chunk) => {
      for (const [method, left] of cut) {
        if (left > 0 && chunk.includes(`"${method}"`)) {
          cut.set(method, left - 1);
          client.destroy();
          daemon.destroy();
          return;
        }
      }
      daemon.write(chunk);
    });
    daemon.on('data', (chunk) => client.write(chunk));
    for (const s of [client, daemon]) {
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        daemon.destroy();
      });
    }
  });
  return new Promise((resolve) =>
    server.listen(p, () =>
      resolve({
        path: p,
        close: () => {
          server.close();
          rmSync(dir, { recursive: true, force: true });
        },
      }),
    ),
  );
}

describe('a spawn whose request and recovery reattach were both cut', () => {
  let d: Daemon;
  let relay: { path: string; close: () => void };
  let client: Client;
  const cuts = new Map([
    ['process.spawn', 1],
    ['process.reattach', 1],
  ]);
  beforeAll(async () => {
    d = await Daemon.start();
    relay = await methodCutter(d.socket, cuts);
    client = await connect({ socket: relay.path, token: d.token, reconnect: { initialDelayMs: 5, maxDelayMs: 50 } });
  });
  afterAll(async () => {
    await client?.close();
    relay?.close();
    await d?.stop();
  });

  it('is spawned once, not reported lost', async () => {
    const proc = client.spawn({ id: 'twice-cut', command: 'sh', args: ['-c', 'echo once; exit 6'] });
    const out = collect(proc.stdout);
    expect((await proc.exited).status).toBe(6);
    expect((await out).toString()).toBe('once\n');
    expect([...cuts.values()]).toEqual([0, 0]);
    expect(d.log().split('Process twice-cut started').length - 1).toBe(1);
  });
});
