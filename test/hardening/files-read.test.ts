/**
 * Issue 10 (8): files.read shares one budget across all connections: at most FILES_READ_MAX_CONCURRENT reads and
 * FILES_READ_BUDGET_BYTES of content in progress at once, waiting in arrival order. The ping latency during four
 * concurrent maximal reads is a benchmark figure (bench/figures/filesread.mjs, figure 11), not asserted here.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_READ_BYTES } from '../../src/files/inspect.js';
import { FILES_READ_BUDGET_BYTES, FILES_READ_MAX_CONCURRENT, ReadGate } from '../../src/files/read-gate.js';
import { Daemon, tempDir } from '../helpers/daemon.js';

describe('ReadGate', () => {
  it('admits up to the concurrency cap, then waits; a release admits the next in arrival order', async () => {
    const gate = new ReadGate(FILES_READ_MAX_CONCURRENT, FILES_READ_BUDGET_BYTES);
    const releases = await Promise.all(Array.from({ length: FILES_READ_MAX_CONCURRENT }, () => gate.acquire(1)));
    expect(gate.active).toBe(FILES_READ_MAX_CONCURRENT);
    let fifth = false;
    const next = gate.acquire(1).then((r) => {
      fifth = true;
      return r;
    });
    await Promise.resolve();
    expect(fifth).toBe(false);
    expect(gate.waiting).toBe(1);
    releases[0]!();
    releases[0]!(); // a second release changes nothing
    const r5 = await next;
    expect(gate.active).toBe(FILES_READ_MAX_CONCURRENT);
    for (const r of [...releases.slice(1), r5]) r();
    expect(gate.active).toBe(0);
    expect(gate.reservedBytes).toBe(0);
  });

  it('admits a read whose bytes bring the total exactly to the budget, and holds one byte more', async () => {
    const gate = new ReadGate(10, 100);
    const a = await gate.acquire(60);
    const b = await gate.acquire(40); // 60 + 40 = 100: exactly the budget
    expect(gate.reservedBytes).toBe(100);
    let admitted = false;
    const c = gate.acquire(1).then((r) => {
      admitted = true;
      return r;
    });
    await Promise.resolve();
    expect(admitted).toBe(false);
    b();
    (await c)();
    a();
    expect(gate.reservedBytes).toBe(0);
  });

  it('lets a read larger than the budget run alone, and keeps arrival order behind it', async () => {
    const gate = new ReadGate(10, 100);
    const small = await gate.acquire(10);
    const order: string[] = [];
    const big = gate.acquire(500).then((r) => {
      order.push('big');
      return r;
    });
    const after = gate.acquire(1).then((r) => {
      order.push('after');
      return r;
    });
    await Promise.resolve();
    expect(order).toEqual([]); // the big one waits for the small one, and the next small one waits behind it
    small();
    (await big)();
    (await after)();
    expect(order).toEqual(['big', 'after']);
  });

  it('the budget is the largest read files.read serves', () => {
    expect(FILES_READ_BUDGET_BYTES).toBe(MAX_READ_BYTES);
  });
});

describe('files.read under concurrency', () => {
  let d: Daemon;
  let dir: string;
  beforeAll(async () => {
    d = await Daemon.start();
    dir = tempDir('read-');
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('eight concurrent reads on eight connections all get their own complete content, and pings are answered meanwhile', async () => {
    const files = Array.from({ length: 8 }, (_, i) => {
      const f = path.join(dir, `f${i}`);
      writeFileSync(f, randomBytes(2 * 1024 * 1024 + i).toString('hex'));
      return f;
    });
    const clients = await Promise.all(files.map(() => d.client()));
    const pinger = await d.client();
    const reads = files.map((f, i) => clients[i]!.call('files.read', { path: f, maxBytes: 8 * 1024 * 1024 }));
    expect(await pinger.call('server.ping')).toEqual({ pong: true });
    const results = await Promise.all(reads);
    for (const [i, r] of results.entries()) expect(r.content.length).toBe(2 * (2 * 1024 * 1024 + i));
    // A refused read holds no reservation: later reads still run.
    writeFileSync(files[0]!, 'x'.repeat(300_000));
    const refused = await clients[0]!.request('files.read', { path: files[0]! });
    expect(refused.error?.code).toBe(-32602);
    expect((await clients[1]!.call('files.read', { path: files[1]!, maxBytes: 8 * 1024 * 1024 })).content.length).toBe(2 * (2 * 1024 * 1024 + 1));
  });
});
