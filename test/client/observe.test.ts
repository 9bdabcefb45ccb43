/**
 * client.observe() (issue 11): a read-only follower of a process through the library: the same output iteration as
 * an owned handle, gap events from the daemon's notices, and re-observing from the last seq after a drop.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, type GapInfo, type OutputItem } from '../../src/client/index.js';
import { patternBlock } from '../fixtures/lib/pattern.mjs';
import { Daemon, fixture, until } from '../helpers/daemon.js';
import { CuttingProxy, seededRandom } from './proxy.js';
import { patternMismatch } from './util.js';

const MiB = 1024 * 1024;

function patternHash(total: number): string {
  const h = createHash('sha256');
  for (let at = 0; at < total; at += MiB) h.update(patternBlock(at, Math.min(MiB, total - at)));
  return h.digest('hex');
}

let d: Daemon;
let owner: Client;
beforeAll(async () => {
  d = await Daemon.start();
  owner = await connect({ socket: d.socket });
});
afterAll(async () => {
  await owner?.close();
  await d?.stop();
});

describe('client.observe', () => {
  it('follows another client\u2019s process: every byte in order, its exit, and the owner keeps it', async () => {
    const total = 6 * MiB;
    const proc = owner.spawn({ ...fixture('flood', String(total)) });
    await proc.ready;
    const watcher = await connect({ socket: d.socket });
    const observer = watcher.observe(proc.id);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of observer.stdout) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    const exit = await observer.exited;
    expect(exit).toMatchObject({ exitCode: 0, gaps: [] });
    expect(bytes).toBe(total);
    expect(hash.digest('hex')).toBe(patternHash(total));
    // The owner was never displaced.
    expect((await proc.exited).exitCode).toBe(0);
    await watcher.close();
  });

  it('reports a gap with the exact evicted seqs when it falls behind, then delivers the rest', async () => {
    const total = 48 * MiB;
    const proc = owner.spawn({ ...fixture('flood', String(total)) });
    const drained = (async () => {
      for await (const _ of proc.stdout);
    })();
    await proc.ready;
    const watcher = await connect({ socket: d.socket });
    const observer = watcher.observe(proc.id);
    // Take the iterator now so its bytes count toward the client's read pause, but do not consume it yet.
    const items = observer.output()[Symbol.asyncIterator]();
    const gaps: GapInfo[] = [];
    observer.on('gap', (g) => gaps.push(g));
    // Not consuming: the client stops reading at its high-water mark and the daemon moves on without this observer.
    await proc.exited;
    await drained;
    const seen: OutputItem[] = [];
    for (let r = await items.next(); !r.done; r = await items.next()) seen.push(r.value);
    const exit = await observer.exited;
    expect(gaps).toHaveLength(1);
    const { processes } = await owner.list();
    const firstRetained = processes.find((p) => p.id === proc.id)!.firstSeq;
    expect(gaps[0]!.toSeq).toBe(firstRetained - 1);
    // The output items: frames 1..a, the gap a+1..firstRetained-1, then every frame to the exit.
    const at = seen.findIndex((i) => i.type === 'gap');
    const seqsBefore = seen.slice(0, at).map((i) => (i.type === 'gap' ? -1 : i.seq));
    const seqsAfter = seen.slice(at + 1).map((i) => (i.type === 'gap' ? -1 : i.seq));
    expect(seqsBefore).toEqual(seqsBefore.map((_, k) => k + 1));
    expect(gaps[0]!.fromSeq).toBe(seqsBefore.length + 1);
    expect(seqsAfter[0]).toBe(firstRetained);
    expect(seqsAfter).toEqual(seqsAfter.map((_, k) => firstRetained + k));
    expect(exit.seq).toBe(seqsAfter.at(-1)! + 1);
    expect(exit.gaps).toEqual(gaps);
    await watcher.close();
  });

  it('rides through dropped connections: re-observes from the last seq, nothing lost or repeated', async () => {
    const proxy = await CuttingProxy.start(d.socket, seededRandom(11));
    const watcher = await connect({ socket: proxy.path, token: d.token, reconnect: { initialDelayMs: 2, maxDelayMs: 40, giveUpAfterMs: 30_000 } });
    const proc = owner.spawn({ ...fixture('pattern-echo', '65536') });
    await proc.ready;
    const observer = watcher.observe(proc.id);
    const chunks: Buffer[] = [];
    let bytes = 0;
    const reading = (async () => {
      for await (const chunk of observer.stdout) {
        chunks.push(chunk);
        bytes += chunk.length;
      }
    })();
    await until(() => bytes > MiB, 30_000, 'some output');
    for (let i = 0; i < 5; i++) {
      proxy.cutAll(`cut ${i}`);
      await until(() => watcher.connected, 10_000, 'the reconnect');
      const before = bytes;
      await until(() => bytes > before + 256 * 1024, 30_000, 'output after the reconnect');
    }
    await proc.end();
    await reading;
    const exit = await observer.exited;
    expect(exit.gaps).toEqual([]);
    expect(proxy.cuts).toBeGreaterThanOrEqual(5);
    // pattern-echo prints its pattern, then `\nSTDIN …\nPATTERN <n>\n`: the first n bytes must be the pattern, whole.
    const all = Buffer.concat(chunks);
    const n = Number(/PATTERN (\d+)\n$/.exec(all.toString('latin1'))?.[1]);
    expect(n).toBeGreaterThan(MiB);
    expect(patternMismatch(all, n)).toBeUndefined();
    expect(all.subarray(n).toString()).toBe(`\nSTDIN 0 ${createHash('sha256').digest('hex')}\nPATTERN ${n}\n`);
    expect(observer.lastSeq).toBe(exit.seq);
    await watcher.close();
    await proxy.close();
  });

  it('unobserve() ends the iteration and the daemon\u2019s subscription; an unknown id rejects ready', async () => {
    const proc = owner.spawn({ command: 'sleep', args: ['30'] });
    await proc.ready;
    const watcher = await connect({ socket: d.socket });
    const observer = watcher.observe(proc.id);
    await observer.ready;
    expect((await owner.list()).processes.find((p) => p.id === proc.id)!.observers).toBe(1);
    await observer.unobserve();
    await expect(observer.exited).rejects.toThrow(/no longer observed/);
    await until(async () => (await owner.list()).processes.find((p) => p.id === proc.id)!.observers === 0);
    const ghost = watcher.observe('no-such-process');
    await expect(ghost.ready).rejects.toThrow(/no such process/);
    expect(() => owner.observe(proc.id)).toThrow(/already held/);
    await proc.kill('KILL');
    await watcher.close();
  });
});
