/**
 * The audit's member of the metrics listener's `/info` document: where the chain stands and what was lost. The
 * head is what an operator ships elsewhere (a scrape, a log collector) to make a cut or rewritten log detectable
 * later (`claustrum -audit-verify -audit-head <hash>`). Like the rest of `/info` it names no path: the listener has
 * no auth.
 */
import type { AuditStats } from './writer.js';

export interface AuditInfo {
  /** The log's id, and the seq and hash of the last record on disk. */
  readonly log: string;
  readonly seq: number;
  readonly head: string;
  readonly records: number;
  readonly dropped: number;
  readonly refused: number;
  readonly queueDepth: number;
  /** The current write failure, or null while writes succeed. */
  readonly failing: string | null;
}

export function auditInfo(s: AuditStats): AuditInfo {
  return {
    log: s.head.log,
    seq: s.head.seq,
    head: s.head.hash,
    records: s.records,
    dropped: s.dropped,
    refused: s.refused,
    queueDepth: s.queueDepth,
    failing: s.failing ?? null,
  };
}
