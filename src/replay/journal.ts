/**
 * The frame journal: every frame of a process, on disk, in seq order. The keeper (src/keeper/) writes it as it reads
 * the child; the daemon reads it into its replay buffers. Because the keeper writes a frame before anyone is told of
 * it, a daemon that dies (SIGKILL, OOM, a crash) loses nothing: the next one reads on from the files, with the same
 * seqs, and a client that reattaches with its last seq gets exactly what it missed.
 *
 * A process's journal is a directory of segment files, `seg-<first seq, 16 digits>.log`, each a 16-byte header
 * (magic, version) then records: a 16-byte header (length, kind, seq) and the payload (the raw bytes of an output
 * frame, a resize's size, an exit's JSON). One `writev` per record, so a reader sees whole records, or a torn tail
 * after the keeper itself died mid-write, which readers stop at and the next keeper cuts off. Whole segments are
 * deleted once the daemon's buffer let go of their frames (or, with no daemon, past the per-process cap), so the
 * disk holds about what memory would: JOURNAL_SEGMENT_BYTES of granularity above it.
 *
 * Not fsynced: the journal guards against the death of a process (whose writes the page cache keeps), not of the
 * host, whose reboot ends the children anyway (PROTOCOL.md, "Restarts and crashes").
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readdirSync, readSync, unlinkSync, writevSync, constants } from 'node:fs';
import path from 'node:path';
import type { KilledBy, OutputStream } from '../protocol/messages.js';

/** The journal format this build writes, and the newest it reads. */
export const JOURNAL_VERSION = 1;
const MAGIC = Buffer.from('CLMJRNL\0', 'latin1');
export const SEGMENT_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 16;
/**
 * A segment is closed and a new one begun past this size (4 MiB): the unit in which disk is given back, so small
 * enough that a process's journal is close to its buffer, large enough that a flood opens a file only every 128 reads.
 */
export const JOURNAL_SEGMENT_BYTES = 4 * 1024 * 1024;
/** The largest record a reader accepts: an output frame (32 KiB) or an exit's JSON, with room to spare. */
export const MAX_RECORD_BYTES = 1024 * 1024;

const KIND_STDOUT = 1;
const KIND_STDERR = 2;
const KIND_TERMINAL_CLEAN = 3;
const KIND_TERMINAL_TORN = 4;
const KIND_RESIZE = 5;
const KIND_EXIT = 6;

export interface ExitRecordBody {
  readonly exitCode: number;
  readonly signal?: string;
  readonly killedBy?: KilledBy;
  /** Epoch milliseconds of the exit frame. */
  readonly at: number;
}

export type JournalRecord =
  | { readonly kind: 'data'; readonly seq: number; readonly stream: OutputStream; readonly data: Buffer; readonly clean: boolean | undefined }
  | { readonly kind: 'resize'; readonly seq: number; readonly cols: number; readonly rows: number }
  | { readonly kind: 'exit'; readonly seq: number; readonly exit: ExitRecordBody };

/** The journal was written by a newer claustrum (or is not a journal): reading it would be guessing. */
export class JournalFormatError extends Error {}

export function segmentName(firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(16, '0')}.log`;
}

function parseSegmentName(name: string): number | undefined {
  const m = /^seg-(\d{16})\.log$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The first seqs of a journal's segments, oldest first. */
export function listSegments(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map(parseSegmentName)
    .filter((n): n is number => n !== undefined)
    .sort((a, b) => a - b);
}

function segmentHeader(): Buffer {
  const h = Buffer.alloc(SEGMENT_HEADER_BYTES);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(JOURNAL_VERSION, 8);
  return h;
}

function checkHeader(h: Buffer, file: string): void {
  if (h.length < SEGMENT_HEADER_BYTES || !h.subarray(0, 8).equals(MAGIC)) throw new JournalFormatError(`${file}: not a claustrum journal segment`);
  const version = h.readUInt32LE(8);
  if (version > JOURNAL_VERSION) {
    throw new JournalFormatError(`${file}: journal version ${version}, this claustrum reads up to ${JOURNAL_VERSION}: use the newer claustrum`);
  }
}

function recordHeader(kind: number, seq: number, payloadBytes: number): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  h.writeUInt32LE(RECORD_HEADER_BYTES + payloadBytes, 0);
  h.writeUInt8(kind, 4);
  h.writeUInt8(0, 5);
  h.writeUInt16LE(0, 6);
  h.writeUInt32LE(seq % 0x1_0000_0000, 8);
  h.writeUInt32LE(Math.floor(seq / 0x1_0000_0000), 12);
  return h;
}

/** Decodes the record at `at` of `buf`, or undefined when it is not all there. */
function decodeRecord(buf: Buffer, at: number, end: number, file: string): { record: JournalRecord; bytes: number } | undefined {
  if (end - at < RECORD_HEADER_BYTES) return undefined;
  const length = buf.readUInt32LE(at);
  if (length < RECORD_HEADER_BYTES || length > MAX_RECORD_BYTES) throw new JournalFormatError(`${file}: a record of ${length} bytes is corrupt`);
  if (end - at < length) return undefined;
  const kind = buf.readUInt8(at + 4);
  const seq = buf.readUInt32LE(at + 8) + buf.readUInt32LE(at + 12) * 0x1_0000_0000;
  const body = buf.subarray(at + RECORD_HEADER_BYTES, at + length);
  switch (kind) {
    case KIND_STDOUT:
    case KIND_STDERR:
      return { record: { kind: 'data', seq, stream: kind === KIND_STDOUT ? 'stdout' : 'stderr', data: body, clean: undefined }, bytes: length };
    case KIND_TERMINAL_CLEAN:
    case KIND_TERMINAL_TORN:
      return { record: { kind: 'data', seq, stream: 'stdout', data: body, clean: kind === KIND_TERMINAL_CLEAN }, bytes: length };
    case KIND_RESIZE:
      return { record: { kind: 'resize', seq, cols: body.readUInt16LE(0), rows: body.readUInt16LE(2) }, bytes: length };
    case KIND_EXIT:
      return { record: { kind: 'exit', seq, exit: JSON.parse(body.toString('utf8')) as ExitRecordBody }, bytes: length };
    default:
      throw new JournalFormatError(`${file}: record kind ${kind} is unknown (a newer claustrum wrote it?)`);
  }
}

interface Segment {
  readonly firstSeq: number;
  lastSeq: number;
  bytes: number;
}

/**
 * The keeper's side: appends records, rolls segments, deletes whole old ones. Synchronous on purpose: a record is
 * on disk (in the page cache) before the keeper tells the daemon about it, and the keeper serves no requests that
 * could wait behind it.
 */
export class JournalWriter {
  readonly dir: string;
  readonly #segmentBytes: number;
  readonly #segments: Segment[] = [];
  #fd = -1;
  #bytes = 0;

  constructor(dir: string, segmentBytes = JOURNAL_SEGMENT_BYTES) {
    this.dir = dir;
    this.#segmentBytes = segmentBytes;
  }

  /** Bytes on disk, headers included. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The seq of the oldest record still on disk; 0 when none. */
  get firstSeq(): number {
    return this.#segments[0]?.firstSeq ?? 0;
  }

  data(seq: number, stream: OutputStream, data: Uint8Array, clean?: boolean): void {
    const kind = clean === undefined ? (stream === 'stdout' ? KIND_STDOUT : KIND_STDERR) : clean ? KIND_TERMINAL_CLEAN : KIND_TERMINAL_TORN;
    this.#append(seq, kind, data);
  }

  resize(seq: number, cols: number, rows: number): void {
    const body = Buffer.allocUnsafe(4);
    body.writeUInt16LE(cols, 0);
    body.writeUInt16LE(rows, 2);
    this.#append(seq, KIND_RESIZE, body);
  }

  exit(seq: number, exit: ExitRecordBody): void {
    this.#append(seq, KIND_EXIT, Buffer.from(JSON.stringify(exit), 'utf8'));
  }

  /** Deletes every segment whose records all have seq ≤ `through`, except the one being written. Returns the bytes. */
  dropThrough(through: number): number {
    let freed = 0;
    while (this.#segments.length > 1 && this.#segments[0]!.lastSeq <= through) {
      freed += this.#deleteOldest();
    }
    return freed;
  }

  /** Deletes the oldest segment unless it is the one being written; returns the bytes freed (0: nothing). */
  dropOldest(): number {
    return this.#segments.length > 1 ? this.#deleteOldest() : 0;
  }

  /** The seq of the last record of the oldest segment, if it may be dropped (it is not the one being written). */
  get oldestDroppableThrough(): number | undefined {
    return this.#segments.length > 1 ? this.#segments[0]!.lastSeq : undefined;
  }

  /** Stops writing (the process exited); the files stay for readers. */
  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  #deleteOldest(): number {
    const seg = this.#segments.shift()!;
    try {
      unlinkSync(path.join(this.dir, segmentName(seg.firstSeq)));
    } catch {
      // gone already (a purge): nothing to give back twice
    }
    this.#bytes -= seg.bytes;
    return seg.bytes;
  }

  #append(seq: number, kind: number, body: Uint8Array): void {
    let seg = this.#segments[this.#segments.length - 1];
    if (seg === undefined || this.#fd < 0 || (seg.bytes + RECORD_HEADER_BYTES + body.length > this.#segmentBytes && seg.lastSeq >= seg.firstSeq)) {
      seg = this.#open(seq);
    }
    const n = writevSync(this.#fd, [recordHeader(kind, seq, body.length), body]);
    if (n !== RECORD_HEADER_BYTES + body.length) throw new Error(`journal ${this.dir}: short write (${n} bytes)`);
    seg.lastSeq = seq;
    seg.bytes += n;
    this.#bytes += n;
  }

  #open(firstSeq: number): Segment {
    if (this.#fd >= 0) closeSync(this.#fd);
    const file = path.join(this.dir, segmentName(firstSeq));
    this.#fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND | constants.O_NOFOLLOW, 0o600);
    const header = segmentHeader();
    writevSync(this.#fd, [header]);
    const seg: Segment = { firstSeq, lastSeq: firstSeq - 1, bytes: header.length };
    this.#segments.push(seg);
    this.#bytes += header.length;
    return seg;
  }
}

/** What a journal holds at its end, as found by reading its newest segment. */
export interface JournalEnd {
  /** The seq of the newest whole record; 0 when there is none. */
  readonly lastSeq: number;
  /** The exit record, when it is the newest. */
  readonly exit: ExitRecordBody | undefined;
  /** Bytes of every segment on disk. */
  readonly bytes: number;
}

/** Reads a journal's end. A torn last record (its keeper died mid-write) is not counted. */
export function journalEnd(dir: string): JournalEnd {
  const segments = listSegments(dir);
  let bytes = 0;
  for (const first of segments) {
    try {
      const fd = openSync(path.join(dir, segmentName(first)), constants.O_RDONLY | constants.O_NOFOLLOW);
      bytes += fstatSync(fd).size;
      closeSync(fd);
    } catch {
      // removed meanwhile
    }
  }
  const newest = segments[segments.length - 1];
  if (newest === undefined) return { lastSeq: 0, exit: undefined, bytes };
  const scan = scanSegment(dir, newest, false);
  return { lastSeq: scan.lastSeq, exit: scan.exit, bytes };
}

interface SegmentScan {
  readonly lastSeq: number;
  readonly exit: ExitRecordBody | undefined;
  /** Where the whole records end. */
  readonly goodEnd: number;
  readonly size: number;
}

function scanSegment(dir: string, firstSeq: number, truncate: boolean): SegmentScan {
  const file = path.join(dir, segmentName(firstSeq));
  const fd = openSync(file, (truncate ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NOFOLLOW);
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(Math.max(size, SEGMENT_HEADER_BYTES));
    const n = readSync(fd, buf, 0, size, 0);
    if (n < SEGMENT_HEADER_BYTES) {
      if (truncate) ftruncateSync(fd, 0);
      return { lastSeq: firstSeq - 1, exit: undefined, goodEnd: 0, size: n };
    }
    checkHeader(buf.subarray(0, n), file);
    let at = SEGMENT_HEADER_BYTES;
    let lastSeq = firstSeq - 1;
    let exit: ExitRecordBody | undefined;
    for (;;) {
      const r = decodeRecord(buf, at, n, file);
      if (r === undefined) break;
      lastSeq = r.record.seq;
      exit = r.record.kind === 'exit' ? r.record.exit : undefined;
      at += r.bytes;
    }
    if (truncate && at < n) ftruncateSync(fd, at);
    return { lastSeq, exit, goodEnd: at, size: n };
  } finally {
    closeSync(fd);
  }
}

/**
 * Finishes the journal of a process whose keeper died: cuts a torn last record off, then appends `exit` as the next
 * seq (unless the journal already ends with an exit). Returns the journal's end. For the next keeper, which adopts
 * the process as exited, its real exit unknown.
 */
export function sealJournal(dir: string, exit: ExitRecordBody): JournalEnd {
  const segments = listSegments(dir);
  const newest = segments[segments.length - 1];
  let seq = 1;
  if (newest !== undefined) {
    const scan = scanSegment(dir, newest, true);
    if (scan.exit !== undefined) return journalEnd(dir);
    if (scan.goodEnd >= SEGMENT_HEADER_BYTES) {
      seq = scan.lastSeq + 1;
      if (scan.lastSeq >= newest) {
        const fd = openSync(path.join(dir, segmentName(newest)), constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
        try {
          const body = Buffer.from(JSON.stringify(exit), 'utf8');
          writevSync(fd, [recordHeader(KIND_EXIT, seq, body.length), body]);
        } finally {
          closeSync(fd);
        }
        return journalEnd(dir);
      }
    }
    // The newest segment holds no whole record: the exit replaces it.
    seq = newest;
    unlinkSync(path.join(dir, segmentName(newest)));
  }
  const w = new JournalWriter(dir);
  w.exit(seq, exit);
  w.close();
  return journalEnd(dir);
}

/**
 * The daemon's side: follows a journal from a seq on, segment after segment. Reads are synchronous and bounded per
 * call (the caller gives a byte budget and comes back next turn for the rest): the files are in the page cache, just
 * written by the keeper, and a read of them costs less than the thread-pool round trip of an asynchronous one.
 */
export class JournalReader {
  readonly dir: string;
  #fd = -1;
  #file = '';
  #position = 0;
  /** The seq the next record handed out must have (older ones are skipped). */
  #nextSeq: number;
  #buf: Buffer;

  /** Reads records from `fromSeq` on (or from the oldest on disk, if that is later). */
  constructor(dir: string, fromSeq = 1, bufferBytes = 256 * 1024) {
    this.dir = dir;
    this.#nextSeq = fromSeq;
    this.#buf = Buffer.allocUnsafe(bufferBytes);
  }

  get nextSeq(): number {
    return this.#nextSeq;
  }

  /**
   * Hands out records in order until the one with seq `until` was handed out, the files hold no more, or about
   * `budget` bytes were read. Returns true when it stopped on the budget (call again). A record's `data` is a view
   * of a reused buffer, valid until the callback returns.
   */
  read(until: number, budget: number, onRecord: (record: JournalRecord) => void): boolean {
    let readBytes = 0;
    while (this.#nextSeq <= until) {
      if (readBytes >= budget) return true;
      if (this.#fd < 0 && !this.#openFor(this.#nextSeq)) return false;
      const n = readSync(this.#fd, this.#buf, 0, this.#buf.length, this.#position);
      readBytes += n;
      let at = 0;
      for (;;) {
        const r = decodeRecord(this.#buf, at, n, this.#file);
        if (r === undefined) break;
        at += r.bytes;
        if (r.record.seq >= this.#nextSeq) {
          this.#nextSeq = r.record.seq + 1;
          onRecord(r.record);
        }
        if (this.#nextSeq > until) break;
      }
      this.#position += at;
      if (at === 0) {
        if (n === this.#buf.length) {
          // A record larger than the buffer: grow it (records are bounded by MAX_RECORD_BYTES).
          this.#buf = Buffer.allocUnsafe(Math.min(MAX_RECORD_BYTES, this.#buf.length * 2));
          continue;
        }
        // The end of this segment: the next record, if written, begins the next one.
        if (!this.#openNext()) return false;
      }
    }
    return false;
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Opens the segment holding `seq`: the newest one starting at or before it, else the oldest (seqs were dropped). */
  #openFor(seq: number): boolean {
    const segments = listSegments(this.dir);
    if (segments.length === 0) return false;
    let pick = segments[0]!;
    for (const first of segments) if (first <= seq) pick = first;
    return this.#open(pick);
  }

  #openNext(): boolean {
    const file = path.join(this.dir, segmentName(this.#nextSeq));
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return false; // not written yet
    }
    closeSync(this.#fd);
    this.#fd = -1;
    return this.#adopt(fd, file);
  }

  #open(firstSeq: number): boolean {
    const file = path.join(this.dir, segmentName(firstSeq));
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return false;
    }
    return this.#adopt(fd, file);
  }

  #adopt(fd: number, file: string): boolean {
    const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
    const n = readSync(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
    if (n < SEGMENT_HEADER_BYTES) {
      // Created, header not yet written (the keeper writes it right after the open): come back later.
      closeSync(fd);
      return false;
    }
    try {
      checkHeader(header, file);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.#fd = fd;
    this.#file = file;
    this.#position = SEGMENT_HEADER_BYTES;
    return true;
  }
}
