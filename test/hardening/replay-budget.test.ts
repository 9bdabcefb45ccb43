/**
 * Issue 10, point 7 (left for the lead, implemented on main in 0e6ea82): one memory budget for the replay buffers of
 * all processes. Written before that implementation (it failed then: the flag did not exist) and passing against it.
 *
 * The behaviour pinned: `-replay-budget <bytes>` (default 256 MiB), a global cap on the serialized bytes held by
 * all replay buffers; when a frame would pass it, whole frames are evicted from the buffers of exited processes first,
 * oldest exit first, before any live process loses one; an exited process's buffer shrinks to what it holds; the
 * metrics report `claustrum_replay_bytes` and `claustrum_replay_budget_bytes`. Today 60 finished jobs of 20 MB each
 * hold 762 MiB for 15 minutes.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, fixture } from '../helpers/daemon.js';

const MiB = 1024 * 1024;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function rss(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

describe('the global replay budget (for the lead)', () => {
  it('twelve finished 8 MiB jobs under a 64 MiB budget: RSS stays near the budget, the newest job replays whole', async () => {
    const d = await Daemon.start({ args: ['-replay-budget', String(64 * MiB), '-no-login-path'] });
    cleanup.push(() => d.stop());
    const c = await d.client();
    const base = rss(d.proc.pid!);
    // 8 MiB each: under the per-process cap (16 MiB serialized), so only the global budget can evict.
    for (let i = 0; i < 12; i++) {
      await c.call('process.spawn', { id: `job${i}`, ...fixture('flood', String(8 * MiB)) });
      await c.waitExit(`job${i}`, 60_000);
    }
    const other = await d.client();
    const newest = await other.call('process.reattach', { id: 'job11', fromSeq: 0 });
    expect(newest.firstSeq).toBe(1);
    expect(other.output('job11').length).toBe(8 * MiB);
    const oldest = await other.call('process.reattach', { id: 'job0', fromSeq: 0 });
    expect(oldest.firstSeq).toBeGreaterThan(1); // evicted first: the oldest exit
    expect(rss(d.proc.pid!) - base).toBeLessThan(64 * MiB + 96 * MiB);
  });
});
