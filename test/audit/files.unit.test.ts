/**
 * Listing a log's files while the writer rotates it: every listing must hold consecutive file numbers. (A scan in
 * directory order could look at `.1` before a rename and at the name after it, and miss the file in between; the
 * follower then took a live file for one rotated out.)
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listLogFiles } from '../../src/audit/files.js';
import { verifyLog } from '../../src/audit/verify.js';
import { MIN_AUDIT_MAX_BYTES } from '../../src/audit/writer.js';
import { auditSandbox, requestRecord } from './helpers.js';

const sb = auditSandbox();

describe('listLogFiles', () => {
  it('misses no file while rotations rename them under it', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES, keep: 50 });
    let listings = 0;
    let writing = true;
    const lister = (async () => {
      while (writing) {
        const numbers = (await listLogFiles(file)).flatMap((f) => (f.header?.kind === 'header' ? [f.header.file] : []));
        for (let k = 1; k < numbers.length; k++) expect(numbers[k], `listing ${listings}: ${numbers.join(',')}`).toBe(numbers[k - 1]! + 1);
        listings++;
      }
    })();
    let i = 0;
    while (w.stats().rotations < 40) {
      for (let k = 0; k < 20; k++) w.append(requestRecord(i++));
      await w.flushed();
    }
    writing = false;
    await lister;
    expect(listings).toBeGreaterThan(10);
  });

  it('-audit-verify of a log being written and rotated finds nothing wrong', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES, keep: 50 });
    let writing = true;
    let runs = 0;
    const verifier = (async () => {
      while (writing) {
        const report = await verifyLog(file, { settleMs: 50 });
        expect(report.findings, `run ${runs}`).toEqual([]);
        runs++;
      }
    })();
    let i = 0;
    while (w.stats().rotations < 30) {
      for (let k = 0; k < 20; k++) w.append(requestRecord(i++));
      await w.flushed();
    }
    writing = false;
    await verifier;
    expect(runs).toBeGreaterThan(2);
  });
});
