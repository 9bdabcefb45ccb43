/**
 * Fault injection: a proxy between the client and the daemon cuts the connection at random points (seeded; the
 * seed and the cut log are in the failure message, and CLAUSTRUM_FAULT_SEED replays a schedule) at least 100
 * times while a child streams a checksummed pattern and echoes the stdin fed through write(). At the end every
 * byte of output arrived exactly once and in order, and the child received its stdin exactly once.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type GapInfo } from '../../src/client/index.js';
import { Daemon, fixture, sleep, until } from '../helpers/daemon.js';
import { CuttingProxy, seededRandom } from './proxy.js';
import { patternMismatch } from './util.js';

const MIN_CUTS = 100;

function within<T>(p: Promise<T>, ms: number, context: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms; ${context()}`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

type Wire = 'unix+ndjson' | 'unix+msgpack' | 'websocket+msgpack';

describe.each<Wire>(['unix+ndjson', 'unix+msgpack', 'websocket+msgpack'])('fault injection over %s', (wire) => {
  let d: Daemon;
  let wsPort = 0;
  beforeAll(async () => {
    d = await Daemon.start({ args: wire.startsWith('websocket') ? ['-ws-addr', '127.0.0.1:0'] : [] });
    if (wire.startsWith('websocket')) {
      const m = await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'the websocket listener');
      wsPort = Number(m[1]);
    }
  });
  afterAll(() => d.stop());

  it(`loses nothing and duplicates nothing across ${MIN_CUTS}+ random connection cuts`, { timeout: 90_000 }, async () => {
    const seed = Number(process.env.CLAUSTRUM_FAULT_SEED) || Math.floor(Math.random() * 2 ** 31);
    const ws = wire.startsWith('websocket');
    const proxy = await CuttingProxy.start(ws ? { host: '127.0.0.1', port: wsPort } : d.socket, seededRandom(seed));
    const client = await connect({
      ...(ws
        ? { websocket: `ws://127.0.0.1:${proxy.port}/rpc` }
        : { socket: proxy.path, wire: wire === 'unix+msgpack' ? ('msgpack' as const) : ('ndjson' as const) }),
      token: d.token,
      reconnect: { initialDelayMs: 2, maxDelayMs: 40, giveUpAfterMs: 30_000, random: seededRandom(seed + 1) },
    });
    const reconnects = { n: 0 };
    client.on('connect', () => reconnects.n++);
    try {
      const proc = client.spawn(fixture('pattern-echo', '1024'));
      const stdoutChunks: Buffer[] = [];
      const consuming = (async () => {
        for await (const c of proc.stdout) stdoutChunks.push(c);
      })();
      const stderrChunks: Buffer[] = [];
      proc.on('stderr', (b) => stderrChunks.push(b));
      const gaps: GapInfo[] = [];
      proc.on('gap', (g) => gaps.push(g));
      await proc.ready;

      proxy.mode = 'random';
      const rnd = seededRandom(seed + 2);
      const sent: Buffer[] = [];
      const writes: Promise<number>[] = [];
      while (proxy.cuts < MIN_CUTS + 10) {
        const chunk = Buffer.alloc(1 + Math.floor(rnd() * 4096));
        for (let i = 0; i < chunk.length; i++) chunk[i] = Math.floor(rnd() * 256);
        sent.push(chunk);
        writes.push(proc.write(chunk));
        if (proc.stdinPending > 256 * 1024) await writes[writes.length - 1];
        else await sleep(2);
      }
      const context = () =>
        `${wire}, seed ${seed} (CLAUSTRUM_FAULT_SEED=${seed} replays the schedule), ${proxy.cuts} cuts, ${reconnects.n} connects, ` +
        `${proc.duplicatesDropped} duplicate frames dropped, ${proc.stdinRefusals} stdin refusals, ${proc.stdinResentDuplicates} stdin resends already applied, ` +
        `${proxy.lateBytes} bytes delivered late, stdin applied ` +
        `${proc.stdinApplied} of ${sent.reduce((n, b) => n + b.length, 0)}\nlast cuts:\n  ${proxy.log.slice(-12).join('\n  ')}`;
      // EOF (and the exit) go through the cutting proxy too. A deadline turns a hang into a failure with context.
      const exit = await within(
        (async () => {
          await proc.end();
          await Promise.all(writes);
          const e = await proc.exited;
          await consuming;
          return e;
        })(),
        40_000,
        context,
      );

      const input = Buffer.concat(sent);
      const stdout = Buffer.concat(stdoutChunks);
      const trailer = /\nSTDIN (\d+) ([0-9a-f]{64})\nPATTERN (\d+)\n$/.exec(stdout.subarray(-200).toString('latin1'));
      expect(exit.status, context()).toBe(0);
      expect(gaps, context()).toEqual([]);
      expect(proxy.cuts, context()).toBeGreaterThanOrEqual(MIN_CUTS);
      expect(trailer, `stdout does not end with the trailer; ${context()}`).not.toBeNull();
      const patternBytes = Number(trailer![3]);
      // Exactly the pattern, every byte in its place, then exactly the trailer: nothing lost, repeated or reordered.
      expect(stdout.length - trailer![0].length, context()).toBe(patternBytes);
      expect(patternMismatch(stdout, patternBytes), context()).toBeUndefined();
      // The child read every stdin byte exactly once, in order: its count and hash, and its echo.
      expect(Number(trailer![1]), context()).toBe(input.length);
      expect(trailer![2], context()).toBe(createHash('sha256').update(input).digest('hex'));
      expect(Buffer.concat(stderrChunks).equals(input), `stderr echo differs from stdin; ${context()}`).toBe(true);
      expect(proc.stdinApplied).toBe(input.length);
    } finally {
      proxy.mode = 'relay';
      await client.close();
      await proxy.close();
    }
  });
});
