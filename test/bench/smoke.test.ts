/**
 * The benchmark suite at tiny sizes (BENCH_SMOKE=1): it must run end to end against the built daemon and write a
 * well-formed results file. No timing is asserted; the numbers of a smoke run mean nothing.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/daemon.js';

const out = tempDir('claustrum-bench-');
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench (smoke sizes)', () => {
  it('measures every figure and writes RESULTS.md and results.json', async () => {
    await promisify(execFile)(process.execPath, [path.join(ROOT, 'bench/run.mjs')], {
      env: { ...process.env, BENCH_SMOKE: '1', BENCH_OUT: out },
      timeout: 200_000,
    });
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(results.mode).toBe('smoke');
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(typeof results.machine.cpu).toBe('string');
    expect(results.machine.node).toBe(process.version);
    for (const [key, f] of Object.entries(results.figures) as [string, { ok: boolean; error?: string }][]) {
      expect(f.ok, `figure ${key}: ${f.error}`).toBe(true);
    }
    const ids = new Set(results.rows.map((r: { id: string }) => r.id));
    expect([...ids].sort()).toEqual(['1', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (const row of results.rows) {
      expect(row.measured).toMatch(/^\d/);
      expect([true, false, null]).toContain(row.met);
    }
    const md = readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
    expect(md).toContain('| # | figure | target | measured (median) | baseline, same run | ratio | met |');
    expect(md).toContain(results.machine.cpu);
    const lines = md.split('\n');
    const header = lines.indexOf('| # | figure | target | measured (median) | baseline, same run | ratio | met |');
    const end = lines.indexOf('', header);
    expect(lines.slice(header + 2, end)).toHaveLength(results.rows.length);
  }, 230_000);
});
