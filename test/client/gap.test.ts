/**
 * Frames evicted while the client is away: the daemon's replay buffer (16 MiB) overflows while the proxy refuses
 * the client, and on its return the client reports exactly the missing seq range as a `gap`, then delivers the
 * retained tail, every byte of it in its place in the pattern.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type GapInfo, type OutputItem } from '../../src/client/index.js';
import { Daemon, FIXTURES, until } from '../helpers/daemon.js';
import { b64 } from '../helpers/rpc.js';
import { CuttingProxy } from './proxy.js';
import { patternMismatch } from './util.js';
import { processLive } from '../helpers/procfs.js';

/** More than the 16 MiB cap even before base64 and framing. */
const FLOOD_BYTES = 20 * 1024 * 1024;

describe('gap event', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('names exactly the seq range evicted while the client was away', async () => {
    const proxy = await CuttingProxy.start(d.socket);
    const client = await connect({ socket: proxy.path, token: d.token, reconnect: { initialDelayMs: 5, maxDelayMs: 50 } });
    try {
      // "ready", then nothing until a line arrives on stdin, then 20 MiB of the pattern, then exit.
      const proc = client.spawn({
        command: 'sh',
        args: ['-c', 'echo ready; read x; exec "$0" "$1" "$2"', process.execPath, `${FIXTURES}/flood.mjs`, String(FLOOD_BYTES)],
        wantPid: true,
      });
      const items: OutputItem[] = [];
      const iterating = (async () => {
        for await (const item of proc.output()) items.push(item);
      })();
      const gapEvents: GapInfo[] = [];
      client.on('gap', (g) => gapEvents.push(g));
      await proc.ready;
      await until(() => proc.lastSeq >= 1, 10_000, '"ready"');
      const seenBeforeAway = proc.lastSeq;

      // Away: the proxy cuts the connection and refuses new ones; meanwhile the flood overflows the replay buffer.
      proxy.mode = 'refuse';
      proxy.cutAll();
      await until(() => !client.connected, 10_000, 'the client to notice the cut');
      const raw = await d.client();
      await raw.call('process.stdin', { id: proc.id, data: b64('go\n') });
      await until(() => !processLive(proc.pid!), 30_000, 'the flood to finish');

      // Back: the client reattaches from the last seq it delivered.
      proxy.mode = 'relay';
      const exit = await proc.exited;
      await iterating;
      // What the daemon still holds, asked after the fact (fromSeq at the end: nothing is replayed).
      const held = await raw.call('process.reattach', { id: proc.id, fromSeq: exit.seq });
      expect(held.firstSeq).toBeGreaterThan(seenBeforeAway + 1);

      const expected: GapInfo = { processId: proc.id, fromSeq: seenBeforeAway + 1, toSeq: held.firstSeq - 1 };
      expect(gapEvents).toEqual([expected]);
      expect(exit.gaps).toEqual([expected]);
      expect(exit.status).toBe(0);
      // The combined output carries the gap in its place: after "ready", before the retained tail.
      const gapAt = items.findIndex((i) => i.type === 'gap');
      expect(items[gapAt]).toEqual({ type: 'gap', fromSeq: expected.fromSeq, toSeq: expected.toSeq });
      const before = items.slice(0, gapAt);
      const after = items.slice(gapAt + 1);
      expect(Buffer.concat(before.map((i) => (i.type === 'gap' ? Buffer.alloc(0) : i.data))).toString()).toBe('ready\n');
      expect(after.every((i) => i.type === 'stdout')).toBe(true);
      expect(after[0]!.type === 'stdout' && after[0]!.seq).toBe(held.firstSeq);
      // The tail is the flood's last bytes, each in its place: evicted frames are missing whole, nothing else is.
      const tail = Buffer.concat(after.map((i) => (i.type === 'gap' ? Buffer.alloc(0) : i.data)));
      expect(tail.length).toBeGreaterThan(0);
      expect(tail.length).toBeLessThan(FLOOD_BYTES);
      expect(patternMismatch(tail, tail.length, FLOOD_BYTES - tail.length)).toBeUndefined();
    } finally {
      await client.close();
      await proxy.close();
    }
  });
});
