/**
 * files.stat, files.validate, files.list and files.read as logic: what each finds on disk, with failures as
 * FsError / ReadRefusal for the wire layer to name. Every call is asynchronous, and nothing here opens a path in a
 * way that can block: files.read opens with O_NONBLOCK and checks the kind of what it opened before reading, and it
 * never reads more than its limit plus one byte.
 */
import type { FilesListEntry as ListEntry, ReadResult, StatResult, ValidateResult } from '../protocol/messages.js';
import { constants, type Dirent, type Stats } from 'node:fs';
import { open, opendir, stat } from 'node:fs/promises';
import { goString } from '../util/gotext.js';
import { cleanPath } from '../util/paths.js';
import { errorCode } from '../util/errno.js';
import { CatalogueError } from '../protocol/errors.js';
import { FsError, fsCall } from './fsops.js';
import { goModeString } from './mode.js';

/** files.read's limit when `maxBytes` is absent, zero or negative: 256 KiB (a file of exactly this size reads). */
export const DEFAULT_READ_MAX_BYTES = 262_144;

/**
 * The largest `maxBytes` honoured: 64 MiB. The content goes out as one JSON string, and a V8 string tops out near
 * 512 MiB while escaping can grow text sixfold; a larger `maxBytes` is taken as this (divergence: the reference has
 * no ceiling).
 */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

/** How many entries files.list stats at once to resolve `isDir`. */
const LIST_STAT_CONCURRENCY = 16;

/** Stat following symlinks: undefined for a genuine ENOENT, FsError('stat') for any other failure. */
async function statOrAbsent(p: string): Promise<Stats | undefined> {
  try {
    return await fsCall('stat', p, () => stat(p));
  } catch (err) {
    if (err instanceof FsError && err.errno === 'ENOENT') return undefined;
    throw err;
  }
}

export async function statPath(p: string): Promise<StatResult> {
  const st = await statOrAbsent(p);
  if (st === undefined) return { exists: false, isDir: false, size: 0, mode: '' };
  return { exists: true, isDir: st.isDirectory(), size: st.size, mode: goModeString(st.mode) };
}

export const PATH_DOES_NOT_EXIST = 'Path does not exist';

/** Like stat, but every failure stays in the result: a stat error's Go text replaces `Path does not exist`. */
export async function validatePath(p: string): Promise<ValidateResult> {
  let st: Stats | undefined;
  try {
    st = await statOrAbsent(p);
  } catch (err) {
    if (err instanceof FsError) return { valid: false, isDir: false, error: err.message };
    throw err;
  }
  if (st === undefined) return { valid: false, isDir: false, error: PATH_DOES_NOT_EXIST };
  return { valid: true, isDir: st.isDirectory() };
}

/**
 * The entries of a directory sorted by name (byte order, as Go sorts), dot-files left out, `isDir` from a stat that
 * follows symlinks (a dangling link is false). Opening a non-directory fails `open <p>: not a directory`.
 */
export async function listDirectory(p: string): Promise<ListEntry[]> {
  const dir = await fsCall('open', p, () => opendir(p, { encoding: 'buffer' as BufferEncoding }));
  const names: Buffer[] = [];
  try {
    for (;;) {
      let ent: Dirent | null;
      try {
        ent = await dir.read();
      } catch (err) {
        throw new FsError('readdirent', p, errorCode(err));
      }
      if (ent === null) break;
      const raw = ent.name as unknown as Buffer;
      if (raw[0] === 0x2e /* . */) continue;
      names.push(raw);
    }
  } finally {
    await dir.close().catch(() => {});
  }
  names.sort(Buffer.compare);
  // Go's filepath.Join(p, name): the cleaned directory, a separator, the name; an empty directory adds nothing.
  const base = p === '' ? '' : cleanPath(p);
  const prefix = base === '' ? Buffer.alloc(0) : Buffer.from(base === '/' ? '/' : `${base}/`);
  const entries: ListEntry[] = new Array(names.length);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      const full = Buffer.concat([prefix, names[i]!]);
      let isDir = false;
      try {
        isDir = (await stat(full)).isDirectory();
      } catch {
        // dangling link, vanished entry, no permission: not a directory
      }
      entries[i] = { name: goString(names[i]!), path: goString(full), isDir };
    }
  };
  await Promise.all(Array.from({ length: Math.min(LIST_STAT_CONCURRENCY, names.length) }, worker));
  return entries;
}

/** files.read's -32602 answers. */
export class ReadRefusal extends CatalogueError<'filesReadIsDirectory' | 'filesReadNotRegular' | 'filesReadTooLarge'> {
  constructor(key: 'filesReadIsDirectory' | 'filesReadNotRegular' | 'filesReadTooLarge') {
    super(key, {});
  }
}

let nullDevice: Promise<number | undefined> | undefined;

/** The device number of /dev/null, which files.read reads as empty content although it is not a regular file. */
function nullDeviceId(): Promise<number | undefined> {
  nullDevice ??= stat('/dev/null').then(
    (st) => (st.isCharacterDevice() ? st.rdev : undefined),
    () => undefined,
  );
  return nullDevice;
}

/**
 * Reads a regular file of at most `maxBytes` (DEFAULT_READ_MAX_BYTES when absent or not positive) as raw text.
 *
 * The open never waits: O_NONBLOCK makes a FIFO open return at once, and a socket fails its open (ENXIO). What was
 * opened is then checked by kind, so a FIFO, a device such as /dev/zero, or anything else that is not a regular file
 * is refused before a single byte is read; /dev/null alone reads as empty content. A regular file is read to its
 * end but never past `maxBytes + 1` bytes, so a file that grows after the size check is refused, not slurped.
 */
export async function readFile(p: string, maxBytes: number | undefined): Promise<ReadResult> {
  const limit = maxBytes !== undefined && maxBytes > 0 ? Math.min(maxBytes, MAX_READ_BYTES) : DEFAULT_READ_MAX_BYTES;
  let fh;
  try {
    fh = await fsCall('open', p, () => open(p, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY));
  } catch (err) {
    if (err instanceof FsError && err.errno === 'ENOENT') return { content: '', exists: false };
    throw err;
  }
  try {
    const st = await fsCall('stat', p, () => fh.stat());
    if (st.isDirectory()) throw new ReadRefusal('filesReadIsDirectory');
    if (!st.isFile()) {
      if (st.isCharacterDevice() && st.rdev === (await nullDeviceId())) return { content: '', exists: true };
      throw new ReadRefusal('filesReadNotRegular');
    }
    if (st.size > limit) throw new ReadRefusal('filesReadTooLarge');
    // Read at most limit + 1 bytes: one byte past the limit is enough to know the file outgrew it.
    const cap = Math.min(limit, Number.MAX_SAFE_INTEGER - 1) + 1;
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < cap) {
      const want = Math.min(cap - total, Math.max(st.size + 1 - total, 64 * 1024));
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fsCall('read', p, () => fh.read(buf, 0, want, null));
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total > limit) throw new ReadRefusal('filesReadTooLarge');
    return { content: goString(Buffer.concat(chunks, total)), exists: true };
  } finally {
    await fh.close().catch(() => {});
  }
}
