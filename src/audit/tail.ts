/**
 * `claustrum -audit-tail`: prints an audit log's records in order and, with `follow`, keeps following it across
 * rotations. Nothing is skipped silently: a gap, a truncation, a damaged line or a new log is reported (on stderr
 * for the CLI) at the place it happens.
 *
 * How it follows (peers' lessons: fluent-bit's inode bookkeeping has skipped and re-read logs when inodes were
 * reused; `tail -F` polls every second):
 * - Position is (log id, seq), never an inode: each record says which log it belongs to and where it stands, and a
 *   file's header says which record comes before it (`prev`). A follower holds the file it reads by its open
 *   descriptor; when the log's name points at another file, it drains the one it holds to its end (the writer
 *   finished it before renaming it) and continues with the file whose header's `prev` is the last hash it read.
 *   If that file was already rotated out of existence (the follower fell more than `keep` files behind), the gap is
 *   reported with its seq range and the follower continues with the oldest file after it.
 * - A file that shrinks below the offset read so far was truncated: reported, and reading continues at its new end.
 * - Wake-ups: `fs.watch` on the log's directory (inotify: one event per write, none while idle), plus a check of
 *   the open descriptor's size and the name's inode every TAIL_CHECK_INTERVAL_MS in case an event was missed. No
 *   loop polls faster than that.
 * - Records are handed on one at a time and the next is not read before the handler's promise settles, so a slow
 *   consumer (a full stdout) makes the follower wait instead of buffering.
 */
import { type FSWatcher, watch } from 'node:fs';
import { type FileHandle, stat } from 'node:fs/promises';
import path from 'node:path';
import { listLogFiles, type LogFile, openForReading, READ_CHUNK_BYTES } from './files.js';
import { type AuditRecord, MAX_RECORD_BYTES, parseLine } from './record.js';
import { NoLogError } from './verify.js';

/** The safety-net check of the open file against the log's name, when no watch event came. */
export const TAIL_CHECK_INTERVAL_MS = 1000;
/** Attempts to open a listed file that a rotation renamed in between, before listing again. */
const OPEN_ATTEMPTS = 5;

export interface TailOptions {
  readonly path: string;
  readonly follow: boolean;
  /** Records with seq above this are shown (0: all). Resume with the last seq shown, as process.reattach does. */
  readonly fromSeq?: number;
  /** The log that `fromSeq` belongs to; when the file holds another log, that is reported and it is shown whole. */
  readonly fromLog?: string;
  readonly checkIntervalMs?: number;
  /** One record, its line exactly as in the file (without the newline). Its promise is awaited before the next. */
  onRecord(line: string, record: AuditRecord): void | Promise<void>;
  /** Something a reader must know: gaps, truncations, damaged lines, a new log. */
  onReport(message: string): void;
  readonly signal?: AbortSignal;
}

export interface TailResult {
  readonly records: number;
  readonly reports: number;
  readonly last: { readonly log: string; readonly seq: number; readonly hash: string } | undefined;
}

interface Open {
  readonly fh: FileHandle;
  readonly dev: number;
  readonly ino: number;
  /** The name it had when opened, for reports. */
  readonly name: string;
  readonly file: number | undefined;
  offset: number;
  /** Bytes of a line not finished yet. */
  partial: Buffer[];
  partialBytes: number;
  /** A line longer than any record is being skipped up to its newline. */
  skipping: boolean;
}

export async function tailLog(o: TailOptions): Promise<TailResult> {
  const f = new Follower(o);
  try {
    return await f.run();
  } finally {
    await f.close();
  }
}

class Follower {
  readonly #o: TailOptions;
  readonly #base: string;
  #cur: Open | undefined;
  #last: { log: string; seq: number; hash: string } | undefined;
  /** Records at or below this seq are not shown (the resume point), for the log being read. */
  #skipUpTo: number;
  #records = 0;
  #reports = 0;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #dirty = false;
  #wake: (() => void) | undefined;
  /** Why the next seq gap happened, when the follower knows (files rotated out before it got to them). */
  #gapReason: string | undefined;

  constructor(o: TailOptions) {
    this.#o = o;
    this.#base = path.basename(o.path);
    this.#skipUpTo = o.fromSeq ?? 0;
  }

  async run(): Promise<TailResult> {
    if (this.#o.follow) this.#startWatching();
    while (!(await this.#start())) {
      if (!this.#o.follow) throw new NoLogError(`no audit log at ${this.#o.path}`);
      if (!(await this.#waitForChange())) return this.#result();
    }
    for (;;) {
      await this.#checkTruncation();
      await this.#drain();
      if (await this.#advance()) continue;
      if (!this.#o.follow) {
        this.#reportTorn();
        break;
      }
      if (!(await this.#waitForChange())) break;
    }
    return this.#result();
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    clearInterval(this.#timer);
    await this.#cur?.fh.close().catch(() => {});
    this.#cur = undefined;
  }

  #result(): TailResult {
    return { records: this.#records, reports: this.#reports, last: this.#last };
  }

  #report(message: string): void {
    this.#reports++;
    this.#o.onReport(message);
  }

  // ---- choosing files ----

  /** Opens the file holding the first record to show; false when there is no log (yet). */
  async #start(): Promise<boolean> {
    for (let attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
      const all = await listLogFiles(this.#o.path);
      const newest = all.filter((f) => f.header !== undefined).at(-1);
      if (newest === undefined) {
        // No header anywhere: at most a file at the name that is empty (about to get its header) or damaged.
        const bare = all.find((f) => f.suffix === 0);
        if (bare === undefined) return false;
        if (bare.size > 0) this.#report(`${bare.path} does not start with an audit header (${bare.headerProblem}); reading it anyway`);
        if (await this.#open(bare)) return true;
        continue;
      }
      const log = newest.header!.log;
      if (this.#o.fromLog !== undefined && this.#o.fromLog !== log) {
        this.#report(`${this.#o.path} holds log ${log}, not ${this.#o.fromLog}: the log was replaced; showing log ${log} from its first record`);
        this.#skipUpTo = 0;
      }
      const files = all.filter((f) => f.header?.log === log);
      for (const f of all)
        if (f.header !== undefined && f.header.log !== log) this.#report(`ignoring ${f.path}: it belongs to another log (${f.header.log})`);
      const want = this.#skipUpTo + 1;
      let pick = files.filter((f) => f.header!.seq <= want).at(-1);
      if (pick === undefined) {
        pick = files[0]!;
        if (this.#skipUpTo > 0) {
          this.#report(
            `records ${want}..${pick.header!.seq - 1} were rotated out before they could be read; continuing at seq ${pick.header!.seq} (${pick.path})`,
          );
        }
      }
      if (await this.#open(pick)) return true;
    }
    return false;
  }

  /** Opens a listed file by its name, if the name still leads to it (a rotation may have renamed it since). */
  async #open(f: LogFile): Promise<boolean> {
    let fh: FileHandle;
    try {
      fh = await openForReading(f.path);
    } catch {
      return false;
    }
    const st = await fh.stat();
    if (st.dev !== f.dev || st.ino !== f.ino) {
      await fh.close();
      return false;
    }
    await this.#cur?.fh.close().catch(() => {});
    const file = f.header?.kind === 'header' ? f.header.file : undefined;
    this.#cur = { fh, dev: st.dev, ino: st.ino, name: f.path, file, offset: 0, partial: [], partialBytes: 0, skipping: false };
    return true;
  }

  /**
   * Moves on when the file held is no longer the newest: to its successor by the chain, else to the oldest file
   * after it (reporting the files rotated out in between). False when there is nothing to move to.
   */
  async #advance(): Promise<boolean> {
    const cur = this.#cur;
    if (cur === undefined) return false;
    const named = await stat(this.#o.path).catch(() => undefined);
    if (named !== undefined && named.dev === cur.dev && named.ino === cur.ino) return false;
    // The writer finished this file before renaming it: read what landed since the last drain.
    await this.#drain();
    for (let attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
      const files = (await listLogFiles(this.#o.path)).filter((f) => f.header !== undefined && (f.dev !== cur.dev || f.ino !== cur.ino));
      const last = this.#last;
      let next = last === undefined ? undefined : files.find((f) => f.header!.prev === last.hash && f.header!.seq === last.seq + 1);
      if (next === undefined) {
        const fileOf = (f: LogFile) => (f.header?.kind === 'header' ? f.header.file : 0);
        // Without a header, the held file's place is unknown: the newest file is the one to go on with.
        const later =
          cur.file === undefined ? files.slice(-1) : files.filter((f) => f.header!.log === (last?.log ?? f.header!.log) && fileOf(f) > cur.file!);
        next = later[0];
        if (next === undefined) {
          // Another log took the name (the old one was moved away): follow it, from its start.
          next = files.find((f) => last !== undefined && f.header!.log !== last.log);
          if (next === undefined) return false;
        } else if (cur.file !== undefined && fileOf(next) > cur.file + 1) {
          this.#gapReason = 'were rotated out before they could be read (the follower fell more than -audit-keep files behind)';
        }
      }
      this.#reportTorn();
      if (await this.#open(next)) return true;
    }
    return false;
  }

  // ---- reading ----

  async #checkTruncation(): Promise<void> {
    const cur = this.#cur;
    if (cur === undefined) return;
    const { size } = await cur.fh.stat();
    if (size < cur.offset) {
      this.#report(
        `${cur.name} was truncated from ${cur.offset} to ${size} bytes while it was followed: what it held past byte ${size} is gone (last record read: seq ${this.#last?.seq ?? 0})`,
      );
      cur.offset = size;
      cur.partial = [];
      cur.partialBytes = 0;
      cur.skipping = false;
    }
  }

  /** Reads the held file from where it stopped to its current end. */
  async #drain(): Promise<void> {
    const cur = this.#cur;
    if (cur === undefined) return;
    const buf = Buffer.alloc(READ_CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await cur.fh.read(buf, 0, buf.length, cur.offset);
      if (bytesRead === 0) return;
      const lineStart = cur.offset - cur.partialBytes;
      cur.offset += bytesRead;
      let from = 0;
      let start = lineStart;
      while (from < bytesRead) {
        const nl = buf.subarray(from, bytesRead).indexOf(0x0a);
        const stop = nl === -1 ? bytesRead : from + nl;
        const piece = buf.subarray(from, stop);
        if (!cur.skipping && cur.partialBytes + piece.length > MAX_RECORD_BYTES) {
          cur.skipping = true;
          cur.partial = [];
          this.#report(`${cur.name}: the line at byte ${start} is longer than any record; skipped`);
        }
        if (!cur.skipping) cur.partial.push(Buffer.from(piece));
        cur.partialBytes += piece.length;
        if (nl === -1) break;
        const text = cur.skipping ? undefined : Buffer.concat(cur.partial).toString('utf8');
        cur.partial = [];
        cur.partialBytes = 0;
        cur.skipping = false;
        if (text !== undefined) await this.#line(cur, text, start);
        from = stop + 1;
        start = cur.offset - bytesRead + from;
      }
    }
  }

  async #line(cur: Open, text: string, offset: number): Promise<void> {
    const p = parseLine(text);
    if (!p.ok) {
      this.#report(`${cur.name}: the line at byte ${offset} is not a valid record (${p.reason}); not shown (check the log with -audit-verify)`);
      return;
    }
    const r = p.record;
    const last = this.#last;
    if (last !== undefined && r.log !== last.log) {
      this.#report(`a new log ${r.log} begins at seq ${r.seq} in ${cur.name}; log ${last.log} ended at seq ${last.seq}`);
      this.#last = undefined;
      this.#skipUpTo = 0;
    } else if (last !== undefined) {
      if (r.seq <= last.seq) return; // already shown: the same file read again
      if (r.seq > last.seq + 1) {
        this.#report(
          `records ${last.seq + 1}..${r.seq - 1} ${this.#gapReason ?? `are missing before seq ${r.seq} in ${cur.name} (check the log with -audit-verify)`}`,
        );
      } else if (r.prev !== last.hash) {
        this.#report(
          `record seq ${r.seq} in ${cur.name} does not follow seq ${last.seq}: its prev is not that record's hash (check the log with -audit-verify)`,
        );
      }
    }
    this.#gapReason = undefined;
    this.#last = { log: r.log, seq: r.seq, hash: p.hash };
    if (r.seq <= this.#skipUpTo) return;
    this.#records++;
    await this.#o.onRecord(text, r);
  }

  #reportTorn(): void {
    const cur = this.#cur;
    if (cur !== undefined && cur.partialBytes > 0) {
      this.#report(
        `${cur.name} ends inside a record: ${cur.partialBytes} bytes after seq ${this.#last?.seq ?? 0} (check the log with -audit-verify)`,
      );
      cur.partial = [];
      cur.partialBytes = 0;
    }
  }

  // ---- waiting ----

  #startWatching(): void {
    const poke = () => {
      this.#dirty = true;
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    try {
      this.#watcher = watch(path.dirname(this.#o.path), (_event, name) => {
        if (name === null || name.startsWith(this.#base)) poke();
      });
      this.#watcher.on('error', (err) => {
        this.#report(`watching ${path.dirname(this.#o.path)} failed (${err.message}); checking every ${this.#interval} ms instead`);
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (err) {
      this.#report(`cannot watch ${path.dirname(this.#o.path)} (${(err as Error).message}); checking every ${this.#interval} ms instead`);
    }
    this.#timer = setInterval(poke, this.#interval);
    this.#o.signal?.addEventListener('abort', poke, { once: true });
  }

  get #interval(): number {
    return this.#o.checkIntervalMs ?? TAIL_CHECK_INTERVAL_MS;
  }

  /** Waits for a change in the directory or the next periodic check; false once aborted. */
  async #waitForChange(): Promise<boolean> {
    if (this.#o.signal?.aborted) return false;
    if (!this.#dirty) await new Promise<void>((resolve) => (this.#wake = resolve));
    this.#dirty = false;
    return !this.#o.signal?.aborted;
  }
}
