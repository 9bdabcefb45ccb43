/**
 * `claustrum -audit-verify`: checks an audit log's hash chain over all its files, in the order the headers give, and
 * reports each problem at the record where it is:
 *
 * - `broken`: a record whose bytes do not match its hash, or whose `prev` is not the previous record's hash;
 * - `malformed`: a line that is not a record (not canonical JSON, longer than any record);
 * - `missing`: records absent from the middle of a file (a seq gap);
 * - `reordered`: a record out of seq order (found within the next REORDER_WINDOW lines);
 * - `fileMissing`: a whole file absent between two rotations (the header `file` numbers skip);
 * - `truncated`: a file that ends inside a record, or a log that ends before a head hash the operator kept elsewhere;
 * - `dropped`: records the writer had to drop (`lost` on the next record, `-audit-full drop`);
 * - `foreign`: a record of another log among this log's.
 *
 * After a problem the check resynchronizes on the next record, so one edit is one finding, not a cascade. Notes that
 * are not problems (requests refused under `-audit-full block`, daemon restarts, files rotated out before the oldest
 * kept one) are listed apart. Without an external anchor, whole records cut from the end of the newest file cannot
 * be told from a log that simply ended: `-audit-head <hash>` (the head from /info or the metrics, shipped elsewhere)
 * closes that gap.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type LineEvent, listLogFiles, type LogFile, openForReading, readLines, reopen } from './files.js';
import { GENESIS_HASH, parseLine } from './record.js';

/** How far ahead a record out of order is looked for before the gap is called missing records. */
export const REORDER_WINDOW = 64;
/** Findings reported at most; the count of the rest is still given. */
export const MAX_FINDINGS = 100;
/** How long a torn end of the newest file is watched for the rest of its record (a writer mid-write). */
export const SETTLE_MS = 250;

export type FindingKind = 'broken' | 'malformed' | 'missing' | 'reordered' | 'fileMissing' | 'truncated' | 'dropped' | 'foreign';

export interface Finding {
  readonly kind: FindingKind;
  /** The file, and the 1-based line in it, where the problem is. */
  readonly file: string;
  readonly line?: number;
  /** The seq of the record concerned (for `missing`, the first missing one). */
  readonly seq?: number;
  readonly message: string;
}

export interface FileSummary {
  readonly path: string;
  /** The header's file number, when the file has a header. */
  readonly file?: number;
  readonly records: number;
  readonly firstSeq?: number;
  readonly lastSeq?: number;
  readonly bytes: number;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly path: string;
  readonly log?: string;
  readonly files: readonly FileSummary[];
  readonly records: number;
  readonly firstSeq?: number;
  readonly lastSeq?: number;
  /** The last record verified: compare it with the head shipped elsewhere. */
  readonly head?: { readonly seq: number; readonly hash: string };
  readonly findings: readonly Finding[];
  /** Findings past MAX_FINDINGS, counted only. */
  readonly moreFindings: number;
  readonly notes: readonly string[];
}

export interface VerifyOptions {
  /** A head hash kept elsewhere: the log must contain it, else its end was cut. */
  readonly head?: string;
  readonly settleMs?: number;
}

export class NoLogError extends Error {}

interface Pending {
  readonly ev: LineEvent;
  readonly parsed: ReturnType<typeof parseLine> | undefined;
}

export async function verifyLog(logPath: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const files = await listLogFiles(logPath);
  if (files.length === 0) throw new NoLogError(`no audit log at ${logPath} (nor rotated files ${logPath}.1, …)`);
  return new Verifier(logPath, files, options).run();
}

class Verifier {
  readonly #path: string;
  readonly #files: readonly LogFile[];
  readonly #options: VerifyOptions;
  readonly #findings: Finding[] = [];
  #more = 0;
  readonly #notes: string[] = [];
  readonly #summaries: FileSummary[] = [];
  #log: string | undefined;
  /** The seq the next record must have; undefined before the first record. */
  #expected: number | undefined;
  /** The hash the next record's prev must be; undefined right after a damaged record (anything is taken). */
  #prev: string | undefined;
  #records = 0;
  #firstSeq: number | undefined;
  #last: { seq: number; hash: string } | undefined;
  #headSeen = false;
  #fileNumber: number | undefined;

  constructor(logPath: string, files: readonly LogFile[], options: VerifyOptions) {
    this.#path = logPath;
    this.#files = files;
    this.#options = options;
  }

  async run(): Promise<VerifyReport> {
    for (const [i, f] of this.#files.entries()) await this.#file(f, i === 0, i === this.#files.length - 1);
    if (this.#options.head !== undefined && !this.#headSeen) {
      const last = this.#files.at(-1)!;
      this.#find({
        kind: 'truncated',
        file: last.path,
        seq: this.#last ? this.#last.seq + 1 : undefined,
        message: `the head ${this.#options.head} kept elsewhere is not in the log: the records after seq ${this.#last?.seq ?? 0} were cut from its end (or the head belongs to another log)`,
      });
    }
    return {
      ok: this.#findings.length === 0,
      path: this.#path,
      log: this.#log,
      files: this.#summaries,
      records: this.#records,
      firstSeq: this.#firstSeq,
      lastSeq: this.#last?.seq,
      head: this.#last,
      findings: this.#findings,
      moreFindings: this.#more,
      notes: this.#notes,
    };
  }

  #find(f: Finding): void {
    if (this.#findings.length < MAX_FINDINGS) this.#findings.push(f);
    else this.#more++;
  }

  async #file(f: LogFile, first: boolean, newest: boolean): Promise<void> {
    const header = f.header;
    const number = header?.kind === 'header' ? header.file : undefined;
    if (header !== undefined) {
      if (first) {
        if (number !== 1 || header.prev !== GENESIS_HASH) {
          this.#notes.push(
            `the log begins at file ${number}, seq ${header.seq}: earlier files were rotated out (-audit-keep), so the chain is checked from there on`,
          );
        }
        this.#expected = header.seq;
        this.#prev = header.prev;
      } else if (number !== undefined && this.#fileNumber !== undefined && number > this.#fileNumber + 1) {
        const from = (this.#last?.seq ?? 0) + 1;
        const missing = number - this.#fileNumber - 1;
        this.#find({
          kind: 'fileMissing',
          file: f.path,
          line: 1,
          seq: from,
          message: `${missing === 1 ? `file ${this.#fileNumber + 1} is` : `files ${this.#fileNumber + 1}..${number - 1} are`} missing before ${f.path}: records ${from}..${header.seq - 1} were removed between rotations`,
        });
        this.#expected = header.seq;
        this.#prev = header.prev;
      }
      if (number !== undefined) this.#fileNumber = number;
    } else if (f.size > 0) {
      this.#find({ kind: 'malformed', file: f.path, line: 1, message: `${f.path} does not start with a header record: ${f.headerProblem}` });
    }

    let records = 0;
    let firstSeq: number | undefined;
    let lastSeq: number | undefined;
    const fh = await reopen(this.#path, f);
    if (fh === undefined) {
      this.#find({ kind: 'fileMissing', file: f.path, message: `${f.path} disappeared while it was being verified (rotated out?); verify again` });
      return;
    }
    try {
      const window: Pending[] = [];
      const lines = readLines(fh);
      let done = false;
      const fill = async () => {
        while (!done && window.length < REORDER_WINDOW) {
          const next = await lines.next();
          if (next.done) done = true;
          else window.push({ ev: next.value, parsed: next.value.kind === 'line' ? parseLine(next.value.text) : undefined });
        }
      };
      for (;;) {
        await fill();
        if (window.length === 0) break;
        let item = window[0]!;
        // A record ahead of its turn: if the one that should come is close behind, take that first (reordered).
        if (item.parsed?.ok && this.#expected !== undefined && item.parsed.record.seq > this.#expected) {
          const j = window.findIndex((p) => p.parsed?.ok === true && p.parsed.record.seq === this.#expected && p.parsed.record.log === this.#log);
          if (j > 0) {
            const moved = window[j]!;
            this.#find({
              kind: 'reordered',
              file: f.path,
              line: (moved.ev as { number: number }).number,
              seq: this.#expected,
              message: `record seq ${this.#expected} is out of order: it is on line ${(moved.ev as { number: number }).number}, after seq ${item.parsed.record.seq} on line ${(item.ev as { number: number }).number} (lines moved or swapped)`,
            });
            window.splice(j, 1);
            item = moved;
            window.unshift(moved);
          }
        }
        window.shift();
        const seq = await this.#event(f, item, newest && done && window.length === 0);
        if (seq !== undefined) {
          records++;
          firstSeq ??= seq;
          lastSeq = seq;
        }
      }
    } finally {
      await fh.close();
    }
    this.#summaries.push({ path: f.path, file: number, records, firstSeq, lastSeq, bytes: f.size });
  }

  /** Checks one line; returns the seq of a record that joined the chain. */
  async #event(f: LogFile, item: Pending, lastOfLog: boolean): Promise<number | undefined> {
    const { ev, parsed } = item;
    if (ev.kind === 'tooLong') {
      this.#find({ kind: 'malformed', file: f.path, line: ev.number, message: `line ${ev.number} is ${ev.bytes} bytes, longer than any record` });
      this.#expected = this.#expected === undefined ? undefined : this.#expected + 1;
      this.#prev = undefined;
      return undefined;
    }
    if (ev.kind === 'torn') {
      if (lastOfLog && (await this.#grew(f))) {
        this.#notes.push(`${f.path} was being written while it was verified: checked up to seq ${this.#last?.seq ?? 0}`);
        return undefined;
      }
      this.#find({
        kind: 'truncated',
        file: f.path,
        line: ev.number,
        seq: this.#expected,
        message: `${f.path} ends inside a record: ${ev.bytes} bytes after seq ${this.#last?.seq ?? 0} on line ${ev.number} (the file was cut, or the writer crashed mid-write)`,
      });
      return undefined;
    }
    const p = parsed!;
    if (!p.ok) {
      const what = p.seq !== undefined ? `record seq ${p.seq}` : `line ${ev.number}`;
      this.#find({
        kind: p.seq !== undefined ? 'broken' : 'malformed',
        file: f.path,
        line: ev.number,
        seq: p.seq ?? this.#expected,
        message: `${what} (line ${ev.number}): ${p.reason}`,
      });
      // The damaged record takes the slot it was in; the next one is taken whatever its prev says.
      if (this.#expected !== undefined) this.#expected++;
      this.#prev = undefined;
      return undefined;
    }
    const r = p.record;
    if (this.#log === undefined) this.#log = r.log;
    if (r.log !== this.#log) {
      this.#find({
        kind: 'foreign',
        file: f.path,
        line: ev.number,
        seq: r.seq,
        message: `line ${ev.number} is a record of another log (${r.log}, seq ${r.seq})`,
      });
      return undefined;
    }
    const expected = this.#expected ?? r.seq;
    if (r.seq < expected) {
      this.#find({
        kind: 'reordered',
        file: f.path,
        line: ev.number,
        seq: r.seq,
        message: `record seq ${r.seq} (line ${ev.number}) comes after seq ${expected - 1}: a record repeated or moved back`,
      });
      return undefined;
    }
    if (r.seq > expected) {
      this.#find({
        kind: 'missing',
        file: f.path,
        line: ev.number,
        seq: expected,
        message: `${r.seq - expected === 1 ? `record ${expected} is` : `records ${expected}..${r.seq - 1} are`} missing before seq ${r.seq} (line ${ev.number})`,
      });
    } else if (this.#prev !== undefined && r.prev !== this.#prev) {
      this.#find({
        kind: 'broken',
        file: f.path,
        line: ev.number,
        seq: r.seq,
        message: `record seq ${r.seq} (line ${ev.number}) does not follow seq ${r.seq - 1}: its prev is not that record's hash (a record was replaced, or a file from elsewhere was put in)`,
      });
    }
    if (r.lost !== undefined) {
      this.#find({
        kind: 'dropped',
        file: f.path,
        line: ev.number,
        seq: r.seq,
        message: `${r.lost} records were dropped before seq ${r.seq} (line ${ev.number}): the audit queue was full (-audit-full drop)`,
      });
    }
    if (r.refused !== undefined)
      this.#notes.push(`${r.refused} requests were refused before seq ${r.seq} while the audit queue was full (-audit-full block)`);
    if (r.kind === 'header' && r.reason === 'start' && ev.number > 1)
      this.#notes.push(`the daemon (pid ${r.pid}) started again at seq ${r.seq} in ${f.path}`);
    this.#expected = r.seq + 1;
    this.#prev = p.hash;
    this.#records++;
    this.#firstSeq ??= r.seq;
    this.#last = { seq: r.seq, hash: p.hash };
    if (p.hash === this.#options.head) this.#headSeen = true;
    return r.seq;
  }

  async #grew(f: LogFile): Promise<boolean> {
    await sleep(this.#options.settleMs ?? SETTLE_MS);
    const fh = await openForReading(f.path).catch(() => undefined);
    if (fh === undefined) return true;
    try {
      return (await fh.stat()).size !== f.size;
    } finally {
      await fh.close();
    }
  }
}

// ------------------------------------------------------------------------------------------------ output

/** The human report: one line per file, each finding at its place, the notes, and a verdict. */
export function formatReport(r: VerifyReport): string {
  const out: string[] = [];
  for (const f of r.files) {
    const range = f.firstSeq !== undefined ? `seq ${f.firstSeq}..${f.lastSeq}` : 'no records';
    out.push(`${f.path}: ${f.file !== undefined ? `file ${f.file}, ` : ''}${f.records} records, ${range}`);
  }
  for (const f of r.findings) out.push(`${f.kind.toUpperCase()}: ${f.file}${f.line !== undefined ? `:${f.line}` : ''}: ${f.message}`);
  if (r.moreFindings > 0) out.push(`… and ${r.moreFindings} more problems`);
  for (const n of r.notes) out.push(`note: ${n}`);
  const head = r.head ? `; head seq ${r.head.seq} ${r.head.hash}` : '';
  const problems = r.findings.length + r.moreFindings;
  out.push(
    problems === 0
      ? `ok: ${r.records} records in ${r.files.length} files, log ${r.log ?? '-'}${head}`
      : `FAILED: ${problems} problem${problems === 1 ? '' : 's'} in ${r.records} records, ${r.files.length} files, log ${r.log ?? '-'}${head}`,
  );
  return `${out.join('\n')}\n`;
}
