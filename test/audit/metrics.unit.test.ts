/** The audit's metrics read its counters at scrape time, and the head hash is one series at a time; /info has no path. */
import path from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { auditInfo } from '../../src/audit/info.js';
import { AUDIT_METRICS, registerAuditMetrics } from '../../src/audit/metrics.js';
import type { AuditStats } from '../../src/audit/writer.js';
import { auditSandbox, requestRecord } from './helpers.js';

const sb = auditSandbox();

describe('audit metrics', () => {
  it('mirror the writer: records, bytes, queue, head', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    let on: AuditStats | undefined;
    const registry = new Registry();
    registerAuditMetrics(registry, () => on);
    expect(await registry.metrics()).toMatch(new RegExp(`^${AUDIT_METRICS.records} 0$`, 'm'));
    on = undefined;
    for (let i = 0; i < 4; i++) w.append(requestRecord(i));
    await w.flushed();
    const read = () => {
      on = { ...w.stats(), dropped: 0, refused: 0, reserved: 0 };
      return registry.metrics();
    };
    const text = await read();
    const s = w.stats();
    expect(text).toMatch(new RegExp(`^${AUDIT_METRICS.records} 5$`, 'm'));
    expect(text).toMatch(new RegExp(`^${AUDIT_METRICS.bytes} ${s.bytes}$`, 'm'));
    expect(text).toMatch(new RegExp(`^${AUDIT_METRICS.queue} 0$`, 'm'));
    expect(text).toMatch(new RegExp(`^${AUDIT_METRICS.head}\\{log="${s.head.log}",hash="${s.head.hash}"\\} 5$`, 'm'));
    w.append(requestRecord(9));
    await w.flushed();
    const again = await read();
    expect(again.match(new RegExp(`^${AUDIT_METRICS.head}\\{`, 'gm'))?.length).toBe(1);
    expect(again).toMatch(new RegExp(`^${AUDIT_METRICS.headSeq} 6$`, 'm'));
    expect(auditInfo({ ...w.stats(), dropped: 0, refused: 0, reserved: 0 })).toEqual({
      log: s.head.log,
      seq: 6,
      head: w.stats().head.hash,
      records: 6,
      dropped: 0,
      refused: 0,
      queueDepth: 0,
      failing: null,
    });
  });
});
