/**
 * Detaching a handle and attaching the same process again on the same client. The connection stays the process's
 * owner on the daemon after `detach()` (nothing is said on the wire), so frames of the old subscription are still
 * in flight when the new `process.reattach` is sent, and they arrive before its replay. The new handle must not
 * take them for the start of its stream (a spurious gap, then the replay dropped as duplicates): every byte exactly
 * once and in order, across every detach and attach, and no gap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, type GapInfo, type ObserverHandle, type ProcessHandle } from '../../src/client/index.js';
import { Daemon, fixture, sleep, until } from '../helpers/daemon.js';
import { patternMismatch } from './util.js';

/**
 * Enough cycles that the unfixed client failed every run: a stale frame lands between the reattach request and its
 * replay in roughly one cycle in five at a frame per millisecond (measured on the 2-core test machine, loaded).
 */
const CYCLES = 30;

let d: Daemon;
let client: Client;
beforeAll(async () => {
  d = await Daemon.start();
  client = await connect({ socket: d.socket, token: d.token });
});
afterAll(async () => {
  await client?.close();
  await d?.stop();
});

describe('detach() then attach() on the same client', () => {
  it('delivers every byte exactly once and in order, with no gap, across repeated cycles', async () => {
    // A frame of 64 pattern bytes about every millisecond, until stdin ends.
    const first = client.spawn({ ...fixture('pattern-echo', '64') });
    const chunks: Buffer[] = [];
    const seqs: number[] = [];
    const gaps: GapInfo[] = [];
    client.on('gap', (g) => gaps.push(g));
    const follow = (h: ProcessHandle) => {
      h.on('stdout', (data, seq) => {
        chunks.push(data);
        seqs.push(seq);
      });
      h.on('stderr', (_data, seq) => seqs.push(seq));
    };
    follow(first);
    await first.ready;
    let h = first;
    for (let i = 0; i < CYCLES; i++) {
      const seen = h.lastSeq;
      await until(() => h.lastSeq > seen + 5, 10_000, 'output before detaching');
      const at = h.lastSeq;
      h.detach();
      expect(h.finished).toBe(true);
      // Detached a varying while: the frames emitted meanwhile reach the connection and are not this client's.
      await sleep(20 + ((i * 37) % 120));
      h = client.attach(first.id, { fromSeq: at });
      follow(h);
      await h.ready;
      expect(gaps).toEqual([]);
    }
    await until(() => h.lastSeq > 0, 10_000, 'output after the last attach');
    await h.end();
    const exit = await h.exited;
    expect(exit.exitCode).toBe(0);
    expect(exit.gaps).toEqual([]);
    expect(gaps).toEqual([]);

    // Seqs consecutive from 1, the exit frame right after the last one delivered.
    const bad = seqs.findIndex((s, k) => s !== k + 1);
    expect(bad === -1 ? undefined : `seq ${seqs[bad]} at position ${bad}`).toBeUndefined();
    expect(exit.seq).toBe(seqs.length + 1);

    // The bytes: the pattern from its first byte, then the trailer that names its length.
    const all = Buffer.concat(chunks);
    const trailerAt = all.lastIndexOf('\nSTDIN ');
    const trailer = all.subarray(trailerAt).toString();
    const m = /^\nSTDIN 0 [0-9a-f]{64}\nPATTERN (\d+)\n$/.exec(trailer);
    expect(m, trailer).not.toBeNull();
    const written = Number(m![1]);
    expect(trailerAt).toBe(written);
    expect(patternMismatch(all.subarray(0, trailerAt), written)).toBeUndefined();
  });

  it('hands a process between a handle and observers on one client without a loss or a gap', async () => {
    // detach() then observe(), unobserve() (not awaited) then observe() again, and at last unobserve() then attach():
    // each new follower meets the frames of the previous one's subscription still in flight.
    const first = client.spawn({ ...fixture('pattern-echo', '64') });
    const chunks: Buffer[] = [];
    const seqs: number[] = [];
    const gaps: GapInfo[] = [];
    client.on('gap', (g) => gaps.push(g));
    const follow = (f: ProcessHandle | ObserverHandle) => {
      f.on('stdout', (data, seq) => {
        chunks.push(data);
        seqs.push(seq);
      });
    };
    follow(first);
    await first.ready;
    await until(() => first.lastSeq > 5, 10_000, 'output before detaching');
    first.detach();
    let last = first.lastSeq;
    for (let i = 0; i < CYCLES / 2; i++) {
      await sleep(10 + ((i * 37) % 60));
      const o = client.observe(first.id, { fromSeq: last });
      follow(o);
      await o.ready;
      await until(() => o.lastSeq > last + 5, 10_000, 'output while observing');
      last = o.lastSeq;
      void o.unobserve();
      expect(gaps).toEqual([]);
    }
    const h = client.attach(first.id, { fromSeq: last });
    follow(h);
    await h.ready;
    await h.end();
    const exit = await h.exited;
    expect(exit.exitCode).toBe(0);
    expect(gaps).toEqual([]);
    const bad = seqs.findIndex((s, k) => s !== k + 1);
    expect(bad === -1 ? undefined : `seq ${seqs[bad]} at position ${bad}`).toBeUndefined();
    expect(exit.seq).toBe(seqs.length + 1);
    const all = Buffer.concat(chunks);
    const trailerAt = all.lastIndexOf('\nSTDIN ');
    const m = /^\nSTDIN 0 [0-9a-f]{64}\nPATTERN (\d+)\n$/.exec(all.subarray(trailerAt).toString());
    expect(m).not.toBeNull();
    expect(trailerAt).toBe(Number(m![1]));
    expect(patternMismatch(all.subarray(0, trailerAt), trailerAt)).toBeUndefined();
  });

  it('reports only what the daemon evicted when the frames after fromSeq are gone, and delivers all it holds', async () => {
    // 32 KiB frames about every millisecond: the 16 MiB replay buffer turns over in about half a second.
    const first = client.spawn({ ...fixture('pattern-echo', String(32 * 1024)) });
    type Item = { seq: number; data?: Buffer; toSeq?: number };
    const items: Item[] = [];
    const follow = (h: ProcessHandle) => {
      h.on('stdout', (data, seq) => items.push({ seq, data }));
      h.on('gap', (g) => items.push({ seq: g.fromSeq, toSeq: g.toSeq }));
    };
    follow(first);
    await first.ready;
    await until(() => first.lastSeq > 10, 10_000, 'output before detaching');
    const at = first.lastSeq;
    first.detach();
    // Still running (the connection still receives its frames), and the frames after `at` evicted.
    const listed = async () => (await client.list()).processes.find((p) => p.id === first.id)!;
    await until(async () => (await listed()).firstSeq > at + 1, 30_000, 'the frames after the detach to be evicted');
    const h = client.attach(first.id, { fromSeq: at });
    follow(h);
    await h.ready;
    // What the daemon holds now (it may have evicted more since the reattach, never less).
    const heldFrom = (await listed()).firstSeq;
    await h.end();
    const exit = await h.exited;
    expect(exit.exitCode).toBe(0);

    // Gaps only for evicted frames: the first one right after `at`, none reaching a frame still held.
    expect(exit.gaps.length).toBeGreaterThan(0);
    expect(exit.gaps[0]!.fromSeq).toBe(at + 1);
    for (const g of exit.gaps) expect(g.toSeq).toBeLessThan(heldFrom);
    // Every seq exactly once, in order, as a frame or within a gap; the exit frame right after.
    let next = 1;
    for (const item of items) {
      expect(item.seq).toBe(next);
      next = (item.toSeq ?? item.seq) + 1;
    }
    expect(exit.seq).toBe(next);

    // Before the first gap, the pattern from its start; after the last, the pattern up to its end, then the trailer.
    const firstGap = items.findIndex((i) => i.toSeq !== undefined);
    const lastGap = items.findLastIndex((i) => i.toSeq !== undefined);
    const before = Buffer.concat(items.slice(0, firstGap).map((i) => i.data!));
    expect(patternMismatch(before, before.length)).toBeUndefined();
    const after = Buffer.concat(items.slice(lastGap + 1).map((i) => i.data!));
    const trailerAt = after.lastIndexOf('\nSTDIN ');
    const m = /^\nSTDIN 0 [0-9a-f]{64}\nPATTERN (\d+)\n$/.exec(after.subarray(trailerAt).toString());
    expect(m).not.toBeNull();
    const written = Number(m![1]);
    // Each byte after the last gap in its place: the pattern up to its end.
    expect(trailerAt).toBeGreaterThan(0);
    expect(patternMismatch(after.subarray(0, trailerAt), trailerAt, written - trailerAt)).toBeUndefined();
  });
});
