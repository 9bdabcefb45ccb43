/**
 * The files of one audit log, as the writer, the verifier and the follower see them.
 *
 * A log lives at `<path>` (the file being written) and `<path>.1` … `<path>.<keep>` (rotated files, `.1` the newest).
 * Names move at every rotation, so readers never rely on them for order: each file starts with a header record whose
 * `file` number (1, 2, … over the life of the log) and `prev` (the last hash of the file before it) say where it
 * belongs. Files are opened with O_NOFOLLOW: a symbolic link planted at a log name is never read as the log.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { MAX_RECORD_BYTES, parseLine, type AuditRecord } from './record.js';

/** How much a reader asks the kernel for at once. */
export const READ_CHUNK_BYTES = 64 * 1024;

export function rotatedPath(logPath: string, n: number): string {
  return n === 0 ? logPath : `${logPath}.${n}`;
}

export interface LogFile {
  readonly path: string;
  /** 0 for the file being written, n for `<path>.n`. */
  readonly suffix: number;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  /** The first record, when the file starts with a valid header. */
  readonly header: AuditRecord | undefined;
  /** Why `header` is undefined (an empty file, a first line that is not a header record). */
  readonly headerProblem: string | undefined;
}

/** Opens a log file for reading, never through a link, never blocking on a FIFO planted at its name. */
export function openForReading(p: string): Promise<FileHandle> {
  return open(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
}

/**
 * Every file of the log at `logPath`, ordered as the log was written: by header `file` number when the headers are
 * there, else by name (the highest suffix is the oldest). Files are identified by device and inode, so one that a
 * rotation renames while this runs is listed once.
 *
 * Names are probed in ascending suffix order, from the name itself up to past the highest the directory shows:
 * a rotation only ever moves a file to a higher suffix, so a file renamed during the scan is met at its new name
 * later in it, never missed (a scan in directory order can miss one: it may look at `.1` before the rename and at
 * the name after it).
 */
export async function listLogFiles(logPath: string): Promise<LogFile[]> {
  const dir = path.dirname(logPath);
  const base = path.basename(logPath);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  let highest = 0;
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const rest = name.slice(base.length + 1);
    if (/^[1-9]\d{0,5}$/.test(rest)) highest = Math.max(highest, Number(rest));
  }
  const files: LogFile[] = [];
  const seen = new Set<string>();
  // Two past the highest: files the rotations during the scan pushed beyond it.
  for (let suffix = 0; suffix <= highest + 2; suffix++) {
    const f = await describe(logPath, suffix);
    if (f === undefined) continue;
    if (suffix > highest) highest = suffix;
    if (seen.has(`${f.dev}:${f.ino}`)) continue;
    seen.add(`${f.dev}:${f.ino}`);
    files.push(f);
  }
  return files.sort(compareFiles);
}

/**
 * Opens a listed file again, by identity: rotations since the listing may have moved it to a higher suffix (never a
 * lower one), so the names from its own up are tried. Undefined when it is gone (rotated out).
 */
export async function reopen(logPath: string, f: LogFile, ahead = 4): Promise<FileHandle | undefined> {
  for (let suffix = f.suffix; suffix <= f.suffix + ahead; suffix++) {
    let fh: FileHandle;
    try {
      fh = await openForReading(rotatedPath(logPath, suffix));
    } catch {
      continue;
    }
    const st = await fh.stat();
    if (st.dev === f.dev && st.ino === f.ino) return fh;
    await fh.close();
  }
  return undefined;
}

function compareFiles(a: LogFile, b: LogFile): number {
  const fa = headerFile(a);
  const fb = headerFile(b);
  if (fa !== undefined && fb !== undefined && fa !== fb) return fa - fb;
  // Without headers (or with equal numbers, which only damage can cause), name order: .N is older than .N-1.
  return (b.suffix === 0 ? -1 : b.suffix) - (a.suffix === 0 ? -1 : a.suffix);
}

function headerFile(f: LogFile): number | undefined {
  const n = f.header?.kind === 'header' ? f.header.file : undefined;
  return typeof n === 'number' ? n : undefined;
}

export async function describe(logPath: string, suffix: number): Promise<LogFile | undefined> {
  const p = rotatedPath(logPath, suffix);
  let fh: FileHandle;
  try {
    fh = await openForReading(p);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const first = await readFirstLine(fh);
    let header: AuditRecord | undefined;
    let headerProblem: string | undefined;
    if (first === undefined) headerProblem = st.size === 0 ? 'the file is empty' : 'the first line is incomplete or too long';
    else {
      const parsed = parseLine(first);
      if (!parsed.ok) headerProblem = `the first line is ${parsed.reason}`;
      else if (parsed.record.kind !== 'header') headerProblem = `the first record (seq ${parsed.record.seq}) is not a header`;
      else header = parsed.record;
    }
    return { path: p, suffix, dev: st.dev, ino: st.ino, size: st.size, header, headerProblem };
  } finally {
    await fh.close();
  }
}

/** The first line of a file (without its newline), or undefined when there is no complete line within the record cap. */
export async function readFirstLine(fh: FileHandle): Promise<string | undefined> {
  const buf = Buffer.alloc(MAX_RECORD_BYTES + 1);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
  return nl === -1 ? undefined : buf.toString('utf8', 0, nl);
}

export interface Tail {
  /** The last complete line (without its newline), if the window holds one. */
  readonly lastLine: string | undefined;
  /** Bytes after the last newline: an unfinished record. */
  readonly tornBytes: number;
}

/** Reads the end of a file of `size` bytes: enough to hold its last record and an unfinished one after it. */
export async function readTail(fh: FileHandle, size: number): Promise<Tail> {
  const window = Math.min(size, 2 * MAX_RECORD_BYTES + 2);
  const buf = Buffer.alloc(window);
  const { bytesRead } = await fh.read(buf, 0, window, size - window);
  const data = buf.subarray(0, bytesRead);
  const lastNl = data.lastIndexOf(0x0a);
  if (lastNl === -1) return { lastLine: undefined, tornBytes: data.length };
  const prevNl = data.lastIndexOf(0x0a, lastNl - 1);
  // A line that starts before the window is longer than any record: it is not one.
  const lastLine = prevNl === -1 && window < size ? undefined : data.toString('utf8', prevNl + 1, lastNl);
  return { lastLine, tornBytes: data.length - lastNl - 1 };
}

export interface Line {
  readonly text: string;
  /** Byte offset of the line's first byte in the file. */
  readonly offset: number;
  /** 1-based line number in the file. */
  readonly number: number;
}

export type LineEvent =
  | ({ readonly kind: 'line' } & Line)
  /** A line longer than the record cap: skipped up to its newline, never held in memory whole. */
  | { readonly kind: 'tooLong'; readonly offset: number; readonly number: number; readonly bytes: number }
  /** Bytes after the last newline at the end of the file: an unfinished record. */
  | { readonly kind: 'torn'; readonly offset: number; readonly number: number; readonly bytes: number };

/**
 * Every line of a file in order, read in chunks; memory stays within one record cap whatever the file holds.
 * Reads up to the size the file has when the call starts, so a file still being written yields its torn end.
 */
export async function* readLines(fh: FileHandle, limit?: number): AsyncGenerator<LineEvent> {
  const end = limit ?? (await fh.stat()).size;
  const buf = Buffer.alloc(READ_CHUNK_BYTES);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineStart = 0;
  let number = 1;
  let skipping = false;
  let pos = 0;
  while (pos < end) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) break;
    let from = 0;
    while (from < bytesRead) {
      const nl = buf.subarray(from, bytesRead).indexOf(0x0a);
      const stop = nl === -1 ? bytesRead : from + nl;
      const piece = buf.subarray(from, stop);
      if (!skipping) {
        if (pendingBytes + piece.length > MAX_RECORD_BYTES) {
          skipping = true;
          pending = [];
        } else {
          pending.push(Buffer.from(piece));
        }
      }
      pendingBytes += piece.length;
      if (nl === -1) break;
      if (skipping) yield { kind: 'tooLong', offset: lineStart, number, bytes: pendingBytes };
      else yield { kind: 'line', text: Buffer.concat(pending).toString('utf8'), offset: lineStart, number };
      number++;
      lineStart = pos + stop + 1;
      pending = [];
      pendingBytes = 0;
      skipping = false;
      from = stop + 1;
    }
    pos += bytesRead;
  }
  if (pendingBytes > 0) yield { kind: 'torn', offset: lineStart, number, bytes: pendingBytes };
}
