/**
 * files.extract_tar as logic: unpack a gzip tar into a directory it first wipes, with every refusal of T7
 * (SECURITY.md) and the reference's texts (PROTOCOL.md).
 *
 * Order, which decides what a failure leaves behind:
 *  1. `destDir` must be absolute, not a root, and neither the home directory nor an ancestor of it (D2), as spelled
 *     or with symlinks resolved. These are checked before the archive is opened, so a refused request does not
 *     consume it.
 *  2. The archive is opened. From here on it is removed when the request ends, whatever the outcome.
 *  3. The gzip header is checked; a bad one fails before `destDir` is touched.
 *  4. `destDir` is wiped and recreated (0700).
 *  5. Entries stream from the archive through gunzip into files (0600) and directories (0700). An entry whose name
 *     leaves `destDir`, or any entry that is not a regular file or a directory, fails the whole request.
 *  6. An empty `.synced` marker is written (not counted).
 *
 * Nothing holds the archive in memory: bytes flow file → gunzip → tar reader → file in chunks, each write awaited.
 */
import type { ExtractTarResult as ExtractResult } from '../protocol/messages.js';
import { constants } from 'node:fs';
import { lstat, open, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { failureText } from '../protocol/failures.js';
import { errnoText, errorCode } from '../util/errno.js';
import { goQuote } from '../util/gotext.js';
import { cleanPath } from '../util/paths.js';
import { mkdirAll, pathRejection } from './fsops.js';
import { isFilesystemRoot, reachesHomeDir } from './guards.js';
import { TarError, TarReader } from './tar.js';

/** `-max-extract-bytes` default: 0, no cap (reference parity). A positive cap allows exactly that many bytes. */
export const DEFAULT_MAX_EXTRACT_BYTES = 0;

/** Length of a gzip member header's fixed part; fewer bytes than this is Go's `unexpected EOF`. */
const GZIP_FIXED_HEADER = 10;

export interface ExtractOptions {
  /** The most content bytes one extraction may write; 0 or less means no cap. */
  readonly maxExtractBytes: number;
}

/** A failure that ends the extraction; `fileCount` is what the result reports. */
class ExtractFailure extends Error {
  readonly fileCount: number;
  constructor(message: string, fileCount = 0) {
    super(message);
    this.fileCount = fileCount;
  }
}

export async function extractArchive(archivePath: string, destDir: string, options: ExtractOptions): Promise<ExtractResult> {
  if (!path.isAbsolute(destDir) || isFilesystemRoot(destDir)) {
    return refused(failureText('extractTar', 'destDirNotAbsolute', { destDir: goQuote(destDir) }));
  }
  if (await reachesHomeDir(destDir)) return refused(failureText('extractTar', 'destDirHoldsHome', { destDir: goQuote(destDir) }));

  let fh: FileHandle;
  try {
    const rejected = pathRejection(archivePath);
    if (rejected !== undefined) return refused(failureText('extractTar', 'openArchive', { archivePath, reason: errnoText(rejected) }));
    // O_NONBLOCK: a FIFO named as the archive must not park the request in its open.
    fh = await open(archivePath, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    return refused(failureText('extractTar', 'openArchive', { archivePath, reason: errnoText(errorCode(err)) }));
  }
  let consume = true;
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      // Not consumed: removing a device node or a FIFO that was named by mistake would be worse than refusing.
      consume = false;
      return refused(failureText('extractTar', 'archiveNotRegular', { archivePath }));
    }
    const count = await unpack(fh, destDir, options);
    return { success: true, fileCount: count };
  } catch (err) {
    if (err instanceof ExtractFailure) return { success: false, fileCount: err.fileCount, error: err.message };
    throw err;
  } finally {
    await fh.close().catch(() => {});
    if (consume) await unlink(archivePath).catch(() => {});
  }
}

function refused(error: string): ExtractResult {
  return { success: false, fileCount: 0, error };
}

async function unpack(fh: FileHandle, destDir: string, options: ExtractOptions): Promise<number> {
  await checkGzipHeader(fh);

  try {
    await rm(destDir, { recursive: true, force: true });
  } catch (err) {
    throw new ExtractFailure(
      failureText('extractTar', 'cleanDestDir', { p: (err as { path?: string }).path ?? destDir, reason: errnoText(errorCode(err)) }),
    );
  }
  try {
    await mkdirAll(destDir, 0o700);
  } catch (err) {
    throw new ExtractFailure(failureText('extractTar', 'mkdirDestDir', { text: (err as Error).message }));
  }
  // The directory just made must still be a real directory, not a link another process put in its place.
  const made = await lstat(destDir).catch(() => undefined);
  if (made === undefined || !made.isDirectory()) {
    throw new ExtractFailure(failureText('extractTar', 'destDirChanged', { baseName: goQuote(path.basename(destDir)) }));
  }

  const source = fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 64 * 1024 });
  const gunzip = createGunzip();
  pipeline(source, gunzip, () => {});
  try {
    const count = await writeEntries(new TarReader(gunzip), cleanPath(destDir), options);
    await writeMarker(destDir, count);
    return count;
  } finally {
    gunzip.destroy();
    source.destroy();
  }
}

/** Go's gzip.NewReader verdicts on the member header, read before anything is deleted. */
async function checkGzipHeader(fh: FileHandle): Promise<void> {
  const head = Buffer.alloc(GZIP_FIXED_HEADER);
  let got: number;
  try {
    ({ bytesRead: got } = await fh.read(head, 0, GZIP_FIXED_HEADER, 0));
  } catch (err) {
    throw new ExtractFailure(failureText('extractTar', 'gzipRead', { reason: errnoText(errorCode(err)) }));
  }
  if (got === 0) throw new ExtractFailure(failureText('extractTar', 'gzipEof'));
  if (got < GZIP_FIXED_HEADER) throw new ExtractFailure(failureText('extractTar', 'gzipUnexpectedEof'));
  if (head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8) throw new ExtractFailure(failureText('extractTar', 'gzipInvalidHeader'));
}

/** A stream failure in Go's words: the tar reader's own texts, or gunzip's errors as Go's gzip/flate report them. */
function streamErrorText(err: unknown): string {
  if (err instanceof TarError) return err.message;
  const e = err as { code?: string; message?: string };
  if (e.code === 'Z_BUF_ERROR') return failureText('extractTarStream', 'unexpectedEof');
  if (e.code === 'Z_DATA_ERROR') {
    if (e.message === 'incorrect data check' || e.message === 'incorrect length check') return failureText('extractTarStream', 'invalidChecksum');
    if (e.message === 'incorrect header check') return failureText('extractTarStream', 'invalidHeader');
    return failureText('extractTarStream', 'corruptInput');
  }
  if (e.code !== undefined && /^E[A-Z]+$/.test(e.code)) return failureText('extractTarStream', 'read', { reason: errnoText(e.code) });
  return e.message ?? String(err);
}

/** Go's filepath.IsLocal on the name without its leading separators: it never climbs above where it starts. */
function staysInside(name: string): boolean {
  const local = name.replace(/^\/+/, '');
  if (local === '') return true;
  const c = cleanPath(local);
  return c !== '..' && !c.startsWith('../');
}

async function writeEntries(tar: TarReader, cleanDest: string, options: ExtractOptions): Promise<number> {
  const cap = Math.max(options.maxExtractBytes, 0);
  const destPrefix = cleanDest.endsWith('/') ? cleanDest : `${cleanDest}/`;
  let count = 0;
  let total = 0;
  for (;;) {
    let entry;
    try {
      entry = await tar.next();
    } catch (err) {
      throw new ExtractFailure(failureText('extractTar', 'tarRead', { text: streamErrorText(err) }));
    }
    if (entry === null) return count;
    const { name } = entry;
    const target = name === '' ? cleanDest : cleanPath(path.join(cleanDest, name));
    if ((target !== cleanDest && !target.startsWith(destPrefix)) || !staysInside(name)) {
      throw new ExtractFailure(failureText('extractTar', 'unsafePath', { entry: name }));
    }
    switch (entry.typeflag) {
      case '5':
        if (target !== cleanDest) {
          try {
            await mkdirAll(target, 0o700);
          } catch (err) {
            throw new ExtractFailure(failureText('extractTar', 'mkdirEntry', { entry: name, text: (err as Error).message }));
          }
        }
        break;
      case '0': {
        const parent = path.dirname(target);
        if (parent !== cleanDest) {
          try {
            await mkdirAll(parent, 0o700);
          } catch (err) {
            throw new ExtractFailure(failureText('extractTar', 'mkdirParent', { entry: name, text: (err as Error).message }));
          }
        }
        let out: FileHandle;
        try {
          // O_NOFOLLOW: never write through a link at the target, whoever put it there.
          out = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
        } catch (err) {
          throw new ExtractFailure(failureText('extractTar', 'createEntry', { entry: name, target, reason: errnoText(errorCode(err)) }));
        }
        let over = false;
        try {
          for await (const chunk of readBody(tar)) {
            let part = chunk;
            if (cap > 0 && total + part.length > cap) {
              // One byte past the cap is enough to know the archive exceeds it.
              part = part.subarray(0, cap - total + 1);
              over = true;
            }
            try {
              await out.write(part);
            } catch (err) {
              throw new ExtractFailure(failureText('extractTar', 'writeEntryFile', { entry: name, target, reason: errnoText(errorCode(err)) }));
            }
            total += part.length;
            if (over) break;
          }
        } catch (err) {
          if (err instanceof BodyFailure) throw new ExtractFailure(failureText('extractTar', 'writeEntry', { entry: name, text: err.message }));
          throw err;
        } finally {
          await out.close().catch(() => {});
        }
        if (over) {
          // The entry that crossed the cap is cut short: remove it rather than leave a truncated file.
          await unlink(target).catch(() => {});
          throw new ExtractFailure(failureText('extractTar', 'sizeLimit'));
        }
        count++;
        break;
      }
      default:
        throw new ExtractFailure(failureText('extractTar', 'unsupportedType', { typeflag: entry.typeflag, entry: name }));
    }
  }
}

/** The entry's content; a failure of the stream underneath is the write's failure, as Go's io.Copy reports it. */
async function* readBody(tar: TarReader): AsyncGenerator<Buffer, void, void> {
  const it = tar.body();
  for (;;) {
    let r: IteratorResult<Buffer, void>;
    try {
      r = await it.next();
    } catch (err) {
      throw new BodyFailure(streamErrorText(err));
    }
    if (r.done) return;
    yield r.value;
  }
}

class BodyFailure extends Error {}

/**
 * The empty `.synced` marker at the top of destDir, replacing whatever an entry put at that name. A failure reports
 * `count`, the files already written.
 */
async function writeMarker(destDir: string, count: number): Promise<void> {
  const marker = path.join(destDir, '.synced');
  try {
    await rm(marker, { recursive: true, force: true });
  } catch (err) {
    throw new ExtractFailure(failureText('extractTar', 'markerUnlink', { path: marker, reason: errnoText(errorCode(err)) }), count);
  }
  let fh: FileHandle;
  try {
    fh = await open(marker, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new ExtractFailure(failureText('extractTar', 'markerOpen', { path: marker, reason: errnoText(errorCode(err)) }), count);
  }
  try {
    await fh.close();
  } catch (err) {
    throw new ExtractFailure(failureText('extractTar', 'marker', { text: (err as Error).message }), count);
  }
}
