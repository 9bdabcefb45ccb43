/**
 * The audit's Prometheus metrics, read from the recorder's counters at scrape time (nothing on the request path);
 * src/metrics/metrics.ts registers them. (Its `/info` member is info.ts: this module loads prom-client, which the
 * daemon loads only with -metrics-addr.)
 *
 * The head hash is what makes a cut tail detectable: an operator who ships it elsewhere (a scrape, a log collector)
 * can later check the log still reaches it (`claustrum -audit-verify -audit-head <hash>`). As a Prometheus label it
 * is one series at a time (the gauge is reset at every scrape), at the cost of a new series per scrape while
 * requests come in.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditStats } from './writer.js';

export const AUDIT_METRICS = {
  records: 'claustrum_audit_records_total',
  bytes: 'claustrum_audit_bytes_total',
  dropped: 'claustrum_audit_dropped_total',
  refused: 'claustrum_audit_refused_total',
  writeErrors: 'claustrum_audit_write_errors_total',
  rotations: 'claustrum_audit_rotations_total',
  queue: 'claustrum_audit_queue_depth',
  failing: 'claustrum_audit_failing',
  headSeq: 'claustrum_audit_head_seq',
  head: 'claustrum_audit_head_info',
} as const;

/** `stats` returns undefined while the audit is off: every audit metric then reads 0 (and no head series). */
export function registerAuditMetrics(registry: Registry, stats: () => AuditStats | undefined): void {
  const registers = [registry];
  const total = (name: string, help: string, read: (s: AuditStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        // The writer keeps the running total; the counter mirrors it.
        this.reset();
        const s = stats();
        if (s) this.inc(read(s));
      },
    });
  const gauge = (name: string, help: string, read: (s: AuditStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const s = stats();
        this.set(s ? read(s) : 0);
      },
    });
  total(AUDIT_METRICS.records, 'Audit records written to the log (headers included).', (s) => s.records);
  total(AUDIT_METRICS.bytes, 'Bytes of audit records written.', (s) => s.bytes);
  total(AUDIT_METRICS.dropped, 'Audit records dropped because the audit queue was full (-audit-full drop).', (s) => s.dropped);
  total(AUDIT_METRICS.refused, 'Requests refused because the audit queue was full (-audit-full block).', (s) => s.refused);
  total(AUDIT_METRICS.writeErrors, 'Failed writes to the audit log (each retried).', (s) => s.writeErrors);
  total(AUDIT_METRICS.rotations, 'Audit log rotations.', (s) => s.rotations);
  gauge(AUDIT_METRICS.queue, 'Audit records waiting for the disk, plus places reserved by requests in progress.', (s) => s.queueDepth + s.reserved);
  gauge(AUDIT_METRICS.failing, '1 while writes to the audit log fail.', (s) => (s.failing === undefined ? 0 : 1));
  gauge(AUDIT_METRICS.headSeq, 'Seq of the last audit record on disk.', (s) => s.head.seq);
  new Gauge({
    name: AUDIT_METRICS.head,
    help: 'The last audit record on disk: its log id and hash (ship it elsewhere to make a cut tail detectable).',
    labelNames: ['log', 'hash'],
    registers,
    collect() {
      this.reset();
      const s = stats();
      if (s) this.set({ log: s.head.log, hash: s.head.hash }, s.head.seq);
    },
  });
}
