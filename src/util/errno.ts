/**
 * OS error reasons as Go's syscall.Errno prints them, for error texts that must match the reference byte for byte
 * (`fork/exec /x: permission denied`, `open /x: not a directory`). libuv's own messages mostly agree; the table
 * covers the ones that differ and the common ones, and libuv's text is the fallback.
 */
import { getSystemErrorMap } from 'node:util';

const GO_TEXT: Readonly<Record<string, string>> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ESRCH: 'no such process',
  EINTR: 'interrupted system call',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
  E2BIG: 'argument list too long',
  ENOEXEC: 'exec format error',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  EXDEV: 'invalid cross-device link',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ENFILE: 'too many open files in system',
  EMFILE: 'too many open files',
  ETXTBSY: 'text file busy',
  EFBIG: 'file too large',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EPIPE: 'broken pipe',
  ENAMETOOLONG: 'file name too long',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many levels of symbolic links',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  ETIMEDOUT: 'connection timed out',
  EADDRINUSE: 'address already in use',
};

let libuv: Map<string, string> | undefined;

/** The Go text for an error code such as `ENOENT`; unknown codes fall back to libuv's message, then the code. */
export function errnoText(code: string | undefined): string {
  if (code === undefined) return 'unknown error';
  const go = GO_TEXT[code];
  if (go !== undefined) return go;
  libuv ??= new Map([...getSystemErrorMap().values()].map(([name, message]) => [name, message]));
  return libuv.get(code) ?? code;
}

/** The `code` of a Node system error, if the value is one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The errno a Go syscall would have reported for this failure. Node refuses some arguments before any syscall is
 * made (a path or variable with NUL gives ERR_INVALID_ARG_VALUE); Go's syscall layer answers those with EINVAL.
 */
export function syscallCode(err: unknown): string | undefined {
  const code = errorCode(err);
  return code?.startsWith('ERR_') ? 'EINVAL' : code;
}
