/**
 * The file-system failures of the files.* methods, named the way Go's os.PathError prints them
 * (`stat <path>: not a directory`, `open <path>: permission denied`), so the wire layer can map each to its
 * catalogue entry.
 */
import { lstat, mkdir, stat } from 'node:fs/promises';
import { CatalogueError, type ErrorKey } from '../protocol/errors.js';
import { errnoText, errorCode } from '../util/errno.js';

export type FsOp = 'stat' | 'lstat' | 'open' | 'read' | 'readdirent' | 'mkdir' | 'unlinkat';

/** The catalogue entry of each operation's failure; the others read as their bare OS text (`internal`). */
const KEY_OF: Partial<Record<FsOp, ErrorKey>> = { stat: 'statFailed', open: 'openFailed', read: 'readFailed', readdirent: 'readdirFailed' };

export class FsError extends CatalogueError {
  readonly op: FsOp;
  readonly path: string;
  /** The errno name, such as `ENOENT`. */
  readonly errno: string | undefined;

  constructor(op: FsOp, path: string, errno: string | undefined) {
    const key = KEY_OF[op];
    const reason = errnoText(errno);
    super(key ?? 'internal', (key ? { path, reason } : { detail: `${op} ${path}: ${reason}` }) as never);
    this.name = 'FsError';
    this.op = op;
    this.path = path;
    this.errno = errno;
  }

  /** The OS reason as Go prints it (`no such file or directory`). */
  get reason(): string {
    return errnoText(this.errno);
  }
}

/**
 * The errno Go would get for a path Node refuses before any system call: a NUL byte makes the kernel-facing string
 * invalid, and Go's syscall layer answers EINVAL (`invalid argument`) for it. Undefined when Node can take the path.
 */
export function pathRejection(p: string): string | undefined {
  return p.includes('\0') ? 'EINVAL' : undefined;
}

/** Runs an fs call on `p`, turning its failure (or a path Node cannot take) into an FsError for `op`. */
export async function fsCall<T>(op: FsOp, p: string, call: () => Promise<T>): Promise<T> {
  const rejected = pathRejection(p);
  if (rejected !== undefined) throw new FsError(op, p, rejected);
  try {
    return await call();
  } catch (err) {
    throw new FsError(op, p, errorCode(err));
  }
}

/**
 * Go's os.MkdirAll: an existing directory is success, an existing non-directory is `mkdir <p>: not a directory`, and
 * missing parents are made first, each with `mode` (less the umask). Failures are FsError('mkdir') naming the
 * directory that could not be made.
 */
export async function mkdirAll(p: string, mode: number): Promise<void> {
  const rejected = pathRejection(p);
  if (rejected !== undefined) throw new FsError('mkdir', p, rejected);
  try {
    const st = await stat(p);
    if (st.isDirectory()) return;
    throw new FsError('mkdir', p, 'ENOTDIR');
  } catch (err) {
    if (err instanceof FsError) throw err;
  }
  let i = p.length;
  while (i > 0 && p[i - 1] === '/') i--;
  let j = i;
  while (j > 0 && p[j - 1] !== '/') j--;
  if (j > 1) await mkdirAll(p.slice(0, j - 1), mode);
  try {
    await mkdir(p, mode);
  } catch (err) {
    try {
      if ((await lstat(p)).isDirectory()) return;
    } catch {
      // report the mkdir failure
    }
    throw new FsError('mkdir', p, errorCode(err));
  }
}
