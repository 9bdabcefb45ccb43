/**
 * The audit log's single writer: one file, appended to, rotated by size, chained across rotations and restarts.
 *
 * - The file is opened O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW, mode 0600: never through a symbolic link, refused
 *   when it is not a regular file or belongs to another user, narrowed to 0600 when it is wider. Its directory must
 *   be the user's and not writable by others (the socket directory's rule): whoever can rename in it can swap logs.
 * - One writer per log: `<path>.lock` (O_EXCL, holding the owner's pid and OS start time; a holder that is gone is
 *   replaced). Two daemons appending to one chain would fork it.
 * - It runs in the audit's own thread (thread.ts): the request path hands it each record as its canonical parts in
 *   UTF-8 (`appendFrame`, from the ring of ring.ts), and the writer assigns seq, prev and hash, assembles the line
 *   and queues it. Lines queued during one turn of the event loop go out in one write() (at most MAX_BATCH_BYTES),
 *   and `onProgress` tells the request side how many of its records are on disk.
 * - Rotation is decided when a record is queued: a record that would take the file past `maxBytes` goes into a new
 *   file instead, behind a header whose `prev` is the last hash of the file before it. The old file is complete
 *   before it is renamed (`<path>` → `<path>.1` → … → `<path>.<keep>`, the oldest overwritten), so a follower that
 *   drains it after the rename loses nothing. The new file is created O_EXCL.
 * - A slow or failing disk: records wait in the queue. A failed write (ENOSPC, EIO, EFBIG) is cut back to the last
 *   whole record (ftruncate of our own partial write) and retried every `retryMs`. The queue's limit and the
 *   `-audit-full` policy are the request side's (recorder.ts), which counts what it refused or dropped and hands the
 *   counts on (`addGaps`): the next record carries them as `refused` and `lost`.
 * - `stats()` gives the counters for metrics and the head (log, seq, hash of the last record on disk) for /info.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { isSameProcess, startTimeOf } from '../process/procfs.js';
import { errnoText, errorCode } from '../util/errno.js';
import { readFirstLine, readTail, rotatedPath } from './files.js';
import { AUDIT_FORMAT, type ChainFields, encodeRecord, type Entry, GENESIS_HASH, LineAssembler, MAX_RECORD_BYTES, parseLine } from './record.js';

export type FullPolicy = 'block' | 'drop';

/** Rotate once the file would pass this: at ~400 bytes a record, about 160,000 requests per file. */
export const DEFAULT_AUDIT_MAX_BYTES = 64 * 1024 * 1024;
/** Rotated files kept beside the current one: with the default size, at most 384 MiB of audit on disk. */
export const DEFAULT_AUDIT_KEEP = 5;
/** Most rotated files: names stay short, and a rotation renames each one. */
export const MAX_AUDIT_KEEP = 999;
/** The smallest file size allowed: a header and one record of the largest size must fit. */
export const MIN_AUDIT_MAX_BYTES = 2 * MAX_RECORD_BYTES;
/**
 * Records that may wait for the disk (queued plus reserved by requests in progress). At the largest record size
 * that is 64 MiB; at a typical 400 bytes, 1.6 MB. Enough for a disk that stalls 200 ms under 20,000 requests/s.
 */
export const DEFAULT_AUDIT_QUEUE_RECORDS = 4096;
export const DEFAULT_AUDIT_FULL: FullPolicy = 'block';
/** One write() at most: a large batch after a stall is written in pieces, each a whole number of records. */
export const MAX_BATCH_BYTES = 1024 * 1024;
/** After a failed write, the queue is tried again this often (a full disk is not polled in a loop). */
export const DEFAULT_RETRY_MS = 1000;
/** How long close() waits for the queue to reach the disk. */
export const CLOSE_FLUSH_MS = 2000;

export const LOCK_SUFFIX = '.lock';

export class AuditSetupError extends Error {}

export interface AuditWriterOptions {
  readonly path: string;
  readonly maxBytes?: number;
  readonly keep?: number;
  readonly retryMs?: number;
  /** The daemon's version, written in headers. */
  readonly version: string;
  readonly log: Logger;
  /**
   * After each write that succeeded (`written`: how many appended records it completed, headers and stop records
   * not counted) and each that failed (`written` 0, `stats().failing` says why).
   */
  readonly onProgress?: (written: number) => void;
}

export interface AuditHead {
  readonly log: string;
  readonly seq: number;
  readonly hash: string;
}

/** What the writer knows: the file's side of the audit's counters. */
export interface WriterStats {
  /** Records written to the file (headers included). */
  readonly records: number;
  readonly bytes: number;
  /** write() calls that succeeded: records / writes is the batching factor. */
  readonly writes: number;
  /** Records queued here and not yet written. */
  readonly queueDepth: number;
  readonly rotations: number;
  readonly writeErrors: number;
  /** The last write failure while it lasts (cleared by the next successful write). */
  readonly failing: string | undefined;
  /** The last record on disk: what an operator ships elsewhere to make truncation detectable. */
  readonly head: AuditHead;
}

/** The audit's counters as metrics and /info show them: the writer's, and the request side's queue and losses. */
export interface AuditStats extends WriterStats {
  /** Records dropped under `-audit-full drop`. */
  readonly dropped: number;
  /** Requests refused under `-audit-full block`. */
  readonly refused: number;
  /** Places held by requests in progress (`block`), whose records are not made yet. */
  readonly reserved: number;
}

/** A record as the ring carries it: its frame text (record.ts, frameText) in `src[start, end)`, read during the call. */
interface FrameRecord {
  readonly kind: 'frame';
  readonly src: Buffer;
  readonly start: number;
  readonly end: number;
}

type QueueItem =
  | {
      readonly kind: 'line';
      /** The line is `buf[start, start + bytes)`. */
      readonly buf: Buffer;
      readonly start: number;
      readonly bytes: number;
      readonly seq: number;
      readonly hash: string;
      /** An appended record (not a header or stop record the writer made itself). */
      readonly appended: boolean;
    }
  | { readonly kind: 'rotate' };

interface ChainState {
  log: string;
  seq: number;
  prev: string;
  /** The number of the file being written. */
  file: number;
}

export class AuditWriter {
  readonly path: string;
  readonly maxBytes: number;
  readonly keep: number;
  readonly #retryMs: number;
  readonly #onProgress: ((written: number) => void) | undefined;
  readonly #version: string;
  readonly #log: Logger;
  #fh: FileHandle | undefined;
  /** Device and inode of the file being written, to notice it being replaced behind our back. */
  #identity: { dev: number; ino: number } | undefined;
  readonly #chain: ChainState;
  /** Bytes of the current file on disk, as we wrote them. */
  #diskBytes = 0;
  /** Bytes the current file will hold once its queued lines are written: what rotation decides on. */
  #plannedBytes = 0;
  /** Records planned in the current file (a file holding only its header is never rotated). */
  #plannedRecords = 0;
  readonly #queue: QueueItem[] = [];
  #queuedRecords = 0;
  #lostSinceLast = 0;
  #refusedSinceLast = 0;
  #scheduled = false;
  #writing = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Our last write was cut short: the file must be cut back to #diskBytes before the next one. */
  #mustTruncate = false;
  /** Where an interrupted rotation resumes: the next rename of the cascade, or -1 once the renames are done. */
  #renameFrom: number | undefined;
  #closing = false;
  #closed = false;
  #drainWaiters: (() => void)[] = [];
  // counters
  #records = 0;
  #bytes = 0;
  #writes = 0;
  #rotations = 0;
  #writeErrors = 0;
  #failing: string | undefined;
  #head: AuditHead;

  private constructor(o: AuditWriterOptions, chain: ChainState, head: AuditHead) {
    this.path = o.path;
    this.maxBytes = o.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.keep = o.keep ?? DEFAULT_AUDIT_KEEP;
    this.#retryMs = o.retryMs ?? DEFAULT_RETRY_MS;
    this.#onProgress = o.onProgress;
    this.#version = o.version;
    this.#log = o.log;
    this.#chain = chain;
    this.#head = head;
  }

  /**
   * Opens (or creates) the log at `o.path`, continues its chain, and writes a start header. Resolves once the
   * header is on disk, so a log that cannot be written fails the daemon's start with the reason.
   */
  static async open(o: AuditWriterOptions): Promise<AuditWriter> {
    checkOptions(o);
    const logPath = path.resolve(o.path);
    await prepareDirectory(path.dirname(logPath));
    await takeLock(logPath);
    let writer: AuditWriter | undefined;
    let fh: FileHandle | undefined;
    try {
      fh = await openLog(logPath, false);
      const st = await fh.stat();
      const found = await findChain(logPath, fh, st.size);
      const chain: ChainState = found?.chain ?? { log: randomBytes(16).toString('hex'), seq: 0, prev: GENESIS_HASH, file: 1 };
      writer = new AuditWriter({ ...o, path: logPath }, chain, { log: chain.log, seq: chain.seq, hash: chain.prev });
      writer.#fh = fh;
      writer.#identity = { dev: st.dev, ino: st.ino };
      writer.#diskBytes = st.size;
      writer.#plannedBytes = st.size;
      if (found?.torn !== undefined) {
        // The file ends inside a record (a crash mid-write): it is rotated away as it is, for the verifier to
        // report, and the chain goes on in a fresh file from the last whole record.
        o.log.warn('Audit', `${logPath} ends with ${found.torn} bytes of an unfinished record; starting a new file after seq ${chain.seq}`);
        writer.#queue.push({ kind: 'rotate' });
        writer.#chain.file++;
        writer.#plannedBytes = 0;
      } else if (found?.fromPrevious) {
        // The current file is empty and the chain continues from the newest rotated one.
        writer.#chain.file++;
      }
      writer.#enqueue(writer.#header('start'), false);
      await writer.#drained();
      if (writer.#failing !== undefined) throw new AuditSetupError(`cannot write the audit log ${logPath}: ${writer.#failing}`);
      return writer;
    } catch (err) {
      if (writer !== undefined) await writer.#abort();
      else await fh?.close().catch(() => {});
      await unlink(`${logPath}${LOCK_SUFFIX}`).catch(() => {});
      throw err instanceof AuditSetupError ? err : new AuditSetupError(`audit log ${logPath}: ${(err as Error).message}`);
    }
  }

  /**
   * Queues a record. The queue has no limit of its own: the request side bounds what it hands over (recorder.ts).
   * False once the writer is closing: the record is not written.
   */
  append(entry: Entry): boolean {
    if (this.#closed || this.#closing) return false;
    this.#enqueue(entry, true);
    return true;
  }

  /**
   * `append` for a record from the ring (ring.ts): its frame text in `src[start, end)`, read before this returns. The
   * text holds its time and log id already, and the gaps (`lost`, `refused`) before it: addGaps is for the writer's
   * own records (the stop record).
   */
  appendFrame(src: Buffer, start: number, end: number): boolean {
    if (this.#closed || this.#closing) return false;
    this.#enqueue({ kind: 'frame', src, start, end }, true);
    return true;
  }

  /** Records the request side dropped (`lost`) or requests it refused (`refused`): the next record carries them. */
  addGaps(lost: number, refused: number): void {
    this.#lostSinceLast += lost;
    this.#refusedSinceLast += refused;
  }

  /** Resolves once every record queued so far is on disk (or the writer closed). */
  flushed(): Promise<void> {
    return this.#drained();
  }

  stats(): WriterStats {
    return {
      records: this.#records,
      bytes: this.#bytes,
      writes: this.#writes,
      queueDepth: this.#queuedRecords,
      rotations: this.#rotations,
      writeErrors: this.#writeErrors,
      failing: this.#failing,
      head: this.#head,
    };
  }

  /** Writes a stop record and what is queued (for at most `flushMs`), closes the file and releases the lock. */
  async close(reason = 'shutdown', flushMs = CLOSE_FLUSH_MS): Promise<void> {
    if (this.#closing || this.#closed) return;
    this.#enqueue({ kind: 'stop', reason }, false);
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, flushMs)));
    await Promise.race([this.#drained(), deadline]);
    clearTimeout(timer);
    if (this.#queuedRecords > 0) this.#log.error('Audit', `closing with ${this.#queuedRecords} records not written to ${this.path}`);
    await this.#abort();
    await unlink(`${this.path}${LOCK_SUFFIX}`).catch(() => {});
  }

  async #abort(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    // A write in progress finishes on its own; the handle is closed once it has.
    while (this.#writing) await new Promise((r) => setTimeout(r, 5));
    await this.#fh?.close().catch(() => {});
    this.#fh = undefined;
    for (const wake of this.#drainWaiters.splice(0)) wake();
  }

  // ---- queueing ----

  #header(reason: 'start' | 'rotate'): Entry {
    return { kind: 'header', format: AUDIT_FORMAT, file: this.#chain.file, reason, pid: process.pid, version: this.#version };
  }

  #enqueue(entry: Entry | FrameRecord, appended: boolean): void {
    let item = this.#encode(entry, appended);
    if (this.#plannedRecords > 0 && this.#plannedBytes + item.bytes > this.maxBytes && entry.kind !== 'header') {
      // The record goes to a new file, behind a header; both are encoded again on the chain as it will be.
      this.#queue.push({ kind: 'rotate' });
      this.#chain.file++;
      this.#plannedBytes = 0;
      this.#plannedRecords = 0;
      this.#push(this.#commit(this.#encode(this.#header('rotate'), false)));
      item = this.#encode(entry, appended);
    }
    this.#push(this.#commit(item));
    this.#schedule();
  }

  /** The record's line on the chain as it stands; nothing changes until #commit. */
  #encode(entry: Entry | FrameRecord, appended: boolean): Extract<QueueItem, { kind: 'line' }> {
    const c = this.#chain;
    if (entry.kind === 'frame') {
      const a = this.#assembler.assemble(entry.src, entry.start, entry.end, c.seq + 1, c.prev);
      return { kind: 'line', buf: a.slab, start: a.at, bytes: a.bytes, seq: c.seq + 1, hash: a.hash, appended };
    }
    const chain: ChainFields = {
      seq: c.seq + 1,
      ts: this.#iso(Date.now()),
      log: c.log,
      prev: c.prev,
      lost: this.#lostSinceLast > 0 ? this.#lostSinceLast : undefined,
      refused: this.#refusedSinceLast > 0 ? this.#refusedSinceLast : undefined,
    };
    const { line, hash } = encodeRecord(entry, chain);
    const buf = Buffer.from(line);
    return { kind: 'line', buf, start: 0, bytes: buf.length, seq: chain.seq, hash, appended };
  }

  readonly #assembler = new LineAssembler();
  #lastMs = 0;
  #lastIso = '';
  /** A time as ISO 8601; formatted once per millisecond however many records share it. */
  #iso(ms: number): string {
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      this.#lastIso = new Date(ms).toISOString();
    }
    return this.#lastIso;
  }

  #commit(item: Extract<QueueItem, { kind: 'line' }>): Extract<QueueItem, { kind: 'line' }> {
    this.#chain.seq = item.seq;
    this.#chain.prev = item.hash;
    this.#lostSinceLast = 0;
    this.#refusedSinceLast = 0;
    return item;
  }

  #push(item: Extract<QueueItem, { kind: 'line' }>): void {
    this.#queue.push(item);
    this.#queuedRecords++;
    this.#plannedBytes += item.bytes;
    this.#plannedRecords++;
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || this.#retryTimer !== undefined || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  /** Resolves once the queue is empty, or the writer closed. */
  #drained(): Promise<void> {
    if (this.#queue.length === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  // ---- writing ----

  async #flush(): Promise<void> {
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        if (this.#queue[0]!.kind === 'rotate') {
          await this.#rotate();
          this.#queue.shift();
          continue;
        }
        const batch: Extract<QueueItem, { kind: 'line' }>[] = [];
        let bytes = 0;
        for (const item of this.#queue) {
          if (item.kind !== 'line' || (batch.length > 0 && bytes + item.bytes > MAX_BATCH_BYTES)) break;
          batch.push(item);
          bytes += item.bytes;
        }
        let appended = 0;
        for (const b of batch) if (b.appended) appended++;
        await this.#write(joined(batch, bytes));
        this.#queue.splice(0, batch.length);
        this.#queuedRecords -= batch.length;
        this.#records += batch.length;
        this.#bytes += bytes;
        this.#writes++;
        const last = batch.at(-1)!;
        this.#head = { log: this.#chain.log, seq: last.seq, hash: last.hash };
        if (this.#failing !== undefined) this.#log.info('Audit', `writing ${this.path} works again`);
        this.#failing = undefined;
        this.#onProgress?.(appended);
      }
      for (const wake of this.#drainWaiters.splice(0)) wake();
    } catch (err) {
      this.#writeErrors++;
      const text = describeError(err);
      if (this.#failing !== text) this.#log.error('Audit', `cannot write ${this.path}: ${text}; retrying every ${this.#retryMs} ms`);
      this.#failing = text;
      this.#onProgress?.(0);
      // open() waits for the start header and learns of the failure from #failing.
      if (this.#records === 0) for (const wake of this.#drainWaiters.splice(0)) wake();
      if (!this.#closed) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#schedule();
        }, this.#retryMs);
        this.#retryTimer.unref();
      }
    } finally {
      this.#writing = false;
    }
    if (this.#queue.length > 0 && this.#retryTimer === undefined) this.#schedule();
  }

  /** Writes all of `data` at the end of the file, or leaves the file exactly as it was before and throws. */
  async #write(data: Buffer): Promise<void> {
    const fh = this.#fh;
    if (fh === undefined) throw new Error('the audit file is not open');
    if (this.#mustTruncate) {
      await fh.truncate(this.#diskBytes);
      this.#mustTruncate = false;
    }
    let done = 0;
    try {
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done);
        if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
        done += bytesWritten;
      }
    } catch (err) {
      // A write cut short (a full disk takes what fits) must not leave half a record for the next one to follow.
      if (done > 0) {
        this.#mustTruncate = true;
        await fh.truncate(this.#diskBytes).then(
          () => (this.#mustTruncate = false),
          () => {},
        );
      }
      throw err;
    }
    this.#diskBytes += data.length;
  }

  /**
   * Moves the full file aside and opens a new one. Each step is done once: a rotation interrupted by an error
   * resumes where it stopped, so a retry never renames a file twice.
   */
  async #rotate(): Promise<void> {
    if (this.#renameFrom === undefined) {
      await this.#fh?.close();
      this.#fh = undefined;
      this.#renameFrom = this.keep;
    }
    while (this.#renameFrom > 0) {
      const n: number = this.#renameFrom;
      if (n === 1 && !(await this.#stillOurs())) {
        // Whatever is at the log's name now is not the file we wrote: it is never moved into the log's history.
        this.#log.error('Audit', `${this.path} was replaced or removed behind the writer; the file written so far is not at its name any more`);
      } else {
        await renameIfPresent(rotatedPath(this.path, n - 1), rotatedPath(this.path, n));
      }
      this.#renameFrom = n - 1;
    }
    const fh = await openLog(this.path, true);
    const st = await fh.stat();
    this.#fh = fh;
    this.#identity = { dev: st.dev, ino: st.ino };
    this.#renameFrom = undefined;
    this.#diskBytes = 0;
    this.#mustTruncate = false;
    this.#rotations++;
  }

  async #stillOurs(): Promise<boolean> {
    try {
      const st = await lstat(this.path);
      return st.dev === this.#identity?.dev && st.ino === this.#identity.ino;
    } catch {
      return false;
    }
  }
}

/** The lines as one buffer: a view of their slab when they lie next to each other there (the usual case), else a copy. */
function joined(lines: readonly { readonly buf: Buffer; readonly start: number; readonly bytes: number }[], bytes: number): Buffer {
  const first = lines[0]!;
  let next = first.start;
  for (const l of lines) {
    if (l.buf !== first.buf || l.start !== next)
      return Buffer.concat(
        lines.map((x) => x.buf.subarray(x.start, x.start + x.bytes)),
        bytes,
      );
    next += l.bytes;
  }
  return first.buf.subarray(first.start, first.start + bytes);
}

function checkOptions(o: AuditWriterOptions): void {
  const maxBytes = o.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
  const keep = o.keep ?? DEFAULT_AUDIT_KEEP;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_AUDIT_MAX_BYTES) {
    throw new AuditSetupError(
      `-audit-max-bytes ${maxBytes} is too small: a file must hold at least ${MIN_AUDIT_MAX_BYTES} bytes (two records of the largest size)`,
    );
  }
  if (!Number.isSafeInteger(keep) || keep < 1 || keep > MAX_AUDIT_KEEP) {
    throw new AuditSetupError(`-audit-keep ${keep} is out of range: keep 1 to ${MAX_AUDIT_KEEP} rotated files`);
  }
}

/** The directory's rule is the socket directory's: ours (or root's), and not writable by others unless sticky. */
async function prepareDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new AuditSetupError(`mkdir ${dir}: ${errnoText(errorCode(err))}`);
  }
  const st = await stat(dir);
  if (!st.isDirectory()) throw new AuditSetupError(`audit directory ${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new AuditSetupError(`audit directory ${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}); choose a directory you own`);
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new AuditSetupError(
      `audit directory ${dir} is writable by other users (mode ${(st.mode & 0o7777).toString(8)}), who could replace the log's files; use a directory of mode 0700`,
    );
  }
}

/** O_EXCL lock file with `<pid> <start time>`; a holder that is gone (or a reused pid) is replaced once. */
async function takeLock(logPath: string): Promise<void> {
  const lockPath = `${logPath}${LOCK_SUFFIX}`;
  const me = `${process.pid} ${(await startTimeOf('self')) ?? '0'}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      await fh.writeFile(me);
      await fh.close();
      return;
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw new AuditSetupError(`cannot create ${lockPath}: ${errnoText(errorCode(err))}`);
    }
    const text = await readFile(lockPath, 'utf8').catch(() => '');
    const [pid, start] = text.trim().split(' ');
    if (pid !== undefined && start !== undefined && (await isSameProcess(Number(pid), start))) {
      throw new AuditSetupError(`the audit log ${logPath} is in use by process ${pid} (${lockPath}); give each daemon its own -audit path`);
    }
    await unlink(lockPath).catch(() => {});
  }
  throw new AuditSetupError(`cannot take ${lockPath}: another process keeps creating it`);
}

/** Opens the log for appending: never through a link, only a regular file of ours, mode narrowed to 0600. */
async function openLog(p: string, fresh: boolean): Promise<FileHandle> {
  const flags =
    constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK | (fresh ? constants.O_EXCL : 0);
  let fh: FileHandle;
  try {
    fh = await open(p, flags, 0o600);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ELOOP') throw new AuditSetupError(`${p} is a symbolic link; the audit log is never written through a link`);
    if (code === 'EEXIST')
      throw new AuditSetupError(`${p} appeared while the log was being rotated; someone else is creating files at the log's name`);
    throw new AuditSetupError(`open ${p}: ${errnoText(code)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AuditSetupError(`${p} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid)
      throw new AuditSetupError(`${p} belongs to uid ${st.uid}, not to this user (uid ${uid}); refusing to append to it`);
    if ((st.mode & 0o077) !== 0) await fh.chmod(0o600);
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

interface FoundChain {
  readonly chain: ChainState;
  /** Bytes of an unfinished record at the end of the current file. */
  readonly torn?: number;
  /** The current file is empty; the chain continues from `<path>.1`. */
  readonly fromPrevious?: boolean;
}

/** Where an existing log's chain stands: its id, last seq and hash, and the number of its current file. */
async function findChain(logPath: string, fh: FileHandle, size: number): Promise<FoundChain | undefined> {
  if (size > 0) {
    const found = await chainOf(logPath, fh, size);
    return found;
  }
  let prev: FileHandle;
  try {
    prev = await open(rotatedPath(logPath, 1), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await prev.stat();
    if (!st.isFile() || st.size === 0) return undefined;
    const found = await chainOf(rotatedPath(logPath, 1), prev, st.size);
    // A torn end in the rotated file stays there for the verifier; the chain goes on from its last whole record.
    return { chain: found.chain, fromPrevious: true };
  } finally {
    await prev.close();
  }
}

async function chainOf(p: string, fh: FileHandle, size: number): Promise<FoundChain> {
  const advice = `check it with claustrum -audit-verify ${p}, then move it away or choose another -audit path`;
  const first = await readFirstLine(fh);
  const header = first === undefined ? undefined : parseLine(first);
  if (header === undefined || !header.ok || header.record.kind !== 'header') {
    throw new AuditSetupError(`${p} does not start with an audit header record; ${advice}`);
  }
  const tail = await readTail(fh, size);
  if (tail.lastLine === undefined) throw new AuditSetupError(`${p} does not end with an audit record; ${advice}`);
  const last = parseLine(tail.lastLine);
  if (!last.ok) throw new AuditSetupError(`the last record of ${p} is damaged (${last.reason}); ${advice}`);
  if (last.record.log !== header.record.log) throw new AuditSetupError(`${p} holds records of two logs; ${advice}`);
  const file = (header.record as { file?: unknown }).file;
  if (typeof file !== 'number') throw new AuditSetupError(`${p} has a header without a file number; ${advice}`);
  return {
    chain: { log: last.record.log, seq: last.record.seq, prev: last.hash, file },
    torn: tail.tornBytes > 0 ? tail.tornBytes : undefined,
  };
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    // A link at a rotated name is moved as a link (rename never follows), never read.
    await lstat(from);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw err;
  }
  await rename(from, to);
}

function describeError(err: unknown): string {
  const code = errorCode(err);
  if (err instanceof AuditSetupError) return err.message;
  return code !== undefined ? errnoText(code) : String((err as Error)?.message ?? err);
}
