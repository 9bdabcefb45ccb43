/**
 * Exits a previous daemon already recorded. A daemon that adopts the keeper's processes (a `-restart`, an upgrade, a
 * crash: issue 16) reads each adopted process's journal to its end, exit included, so its supervisor reports again
 * the exits the previous daemon saw and recorded. Each exit is to be recorded once: before writing those, the
 * recorder asks this file whether the log already holds an exit record of the same process id and pid, reading it
 * newest record first, back to a little before the earliest of their start times (an exit cannot be older than its
 * process), and at most MAX_ADOPTED_SCAN_BYTES. What it cannot find is recorded: a duplicate at worst, never a loss.
 *
 * This runs once, at start-up, before the daemon listens: no request waits for it. Reads are asynchronous.
 */
import { openForReading, listLogFiles, READ_CHUNK_BYTES } from './files.js';

/**
 * How far before the earliest start time the scan still reads. Records are in seq order, and their `ts` is when
 * each was made (a request's: its reply), so times step back a little where a long request's record follows a short
 * one; a minute covers any request (a spawn's reply waits at most for the login-shell probe, 4 s).
 */
export const ADOPTED_SCAN_SLACK_MS = 60_000;

/**
 * The most the scan reads, all files together: the size of one audit file by default (DEFAULT_AUDIT_MAX_BYTES), so
 * a daemon adopting a process that ran for weeks does not read the whole history before it listens. Past it, the
 * exits not found are recorded (a possible duplicate, said in the log).
 */
export const MAX_ADOPTED_SCAN_BYTES = 64 * 1024 * 1024;

/** An exit the new daemon saw at adoption: the process id as the record holds it (scrubbed and cut), and its pid. */
export interface AdoptedExit {
  readonly processId: string;
  readonly pid: number;
  /** Epoch milliseconds of the process's start. */
  readonly startedAt: number;
}

export function exitKey(processId: string, pid: number): string {
  return `${pid} ${processId}`;
}

export interface ScanResult {
  /** exitKey()s of the exits the log already holds. */
  readonly found: Set<string>;
  /** The scan stopped at MAX_ADOPTED_SCAN_BYTES before reaching the earliest start time. */
  readonly cut: boolean;
}

const TS = /"ts":"([^"]{1,40})"/;

/** Which of `wanted` the log at `logPath` (all its files) already holds an exit record of. */
export async function findRecordedExits(logPath: string, wanted: readonly AdoptedExit[], maxBytes = MAX_ADOPTED_SCAN_BYTES): Promise<ScanResult> {
  const found = new Set<string>();
  if (wanted.length === 0) return { found, cut: false };
  const keys = new Set(wanted.map((w) => exitKey(w.processId, w.pid)));
  const oldest = Math.min(...wanted.map((w) => w.startedAt)) - ADOPTED_SCAN_SLACK_MS;
  let budget = maxBytes;
  const files = (await listLogFiles(logPath)).reverse();
  for (const f of files) {
    const fh = await openForReading(f.path).catch(() => undefined);
    if (fh === undefined) continue; // rotated out since the listing
    try {
      let end = (await fh.stat()).size;
      // The start of the line that began before the last chunk read (its end is known, its start not yet).
      let carry = Buffer.alloc(0);
      while (end > 0) {
        if (budget <= 0) return { found, cut: true };
        const n = Math.min(4 * READ_CHUNK_BYTES, end, budget);
        const chunk = Buffer.allocUnsafe(n);
        const { bytesRead } = await fh.read(chunk, 0, n, end - n);
        if (bytesRead !== n) break; // the file shrank under us: what is left is not this log's history any more
        budget -= n;
        end -= n;
        const data = carry.length > 0 ? Buffer.concat([chunk, carry]) : chunk;
        // Unless this is the file's start, the first piece may be the tail of a line that began earlier.
        const cut = end === 0 ? 0 : data.indexOf(10) + 1;
        if (end > 0 && cut === 0) {
          carry = data;
          continue;
        }
        carry = data.subarray(0, cut);
        const lines = data.subarray(cut).toString('utf8').split('\n');
        for (let i = lines.length - 1; i >= 0; i--) {
          const line = lines[i]!;
          if (line === '') continue;
          if (line.includes('"kind":"exit"')) {
            try {
              const r = JSON.parse(line) as { processId?: unknown; pid?: unknown };
              if (typeof r.processId === 'string' && typeof r.pid === 'number') {
                const k = exitKey(r.processId, r.pid);
                if (keys.has(k)) {
                  found.add(k);
                  if (found.size === keys.size) return { found, cut: false };
                }
              }
            } catch {
              // a damaged line is the verifier's to report
            }
          }
          const ts = TS.exec(line);
          if (ts && Date.parse(ts[1]!) < oldest) return { found, cut: false };
        }
      }
    } finally {
      await fh.close();
    }
  }
  return { found, cut: false };
}
