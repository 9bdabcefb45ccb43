/**
 * `npm run bench:audit` at tiny sizes (BENCH_SMOKE=1): the figure and every component run end to end against the
 * built daemon, audit.json is well formed and RESULTS.md gets its audit section. No timing is asserted; the numbers
 * of a smoke run mean nothing. (The script had stopped at its first component unnoticed once: this is its guard.)
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/daemon.js';

const out = tempDir('claustrum-bench-audit-');
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench:audit (smoke sizes)', () => {
  it('measures the figure and the components, writes audit.json and renders the audit section', async () => {
    // RESULTS.md is rendered from a results.json beside audit.json: the committed one will do.
    copyFileSync(path.join(ROOT, 'bench/results.json'), path.join(out, 'results.json'));
    await promisify(execFile)(process.execPath, [path.join(ROOT, 'bench/figures/audit.mjs'), '--write'], {
      env: { ...process.env, BENCH_SMOKE: '1', BENCH_OUT: out },
      timeout: 180_000,
    });
    const r = JSON.parse(readFileSync(path.join(out, 'audit.json'), 'utf8'));
    expect(r.mode).toBe('smoke');
    expect(r.overhead.runs).toHaveLength(1);
    for (const k of ['pingsOn', 'pingsOff', 'spawnsOn', 'spawnsOff', 'pingRatio', 'recordMainUs', 'bytesPerPingRecord']) {
      expect(Number.isFinite(r.overhead[k]), k).toBe(true);
    }
    // A ping's record is a few hundred bytes: the daemon with -audit on did write them.
    expect(r.overhead.bytesPerPingRecord).toBeGreaterThan(200);
    expect(r.components.read.ok).toBe(true);
    expect(r.components.writer.recordsPerSecond).toBeGreaterThan(0);
    expect(r.components.peer.lookupsFound).toBe(r.components.peer.connections);
    const md = readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
    expect(md).toContain('## The audit trail (-audit)');
    expect(md).toContain('| server.ping per second, 64 in flight on one NDJSON connection | ≥ 0.9× |');
  });
});
