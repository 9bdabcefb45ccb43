/**
 * What every command checks about `-socket` before it touches anything, and the directory a starting daemon needs.
 *
 * Node's recursive mkdir loops forever when a missing component cannot be created although its parent exists:
 * `mkdir -p /proc/x` spins a core (procfs answers ENOENT to the mkdir and the parent exists, so it retries; measured
 * on Node 20.20). So directories are created here one component at a time, and each failure is named.
 */
import { lstat, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoText, errorCode } from '../util/errno.js';

/** sun_path holds 108 bytes on Linux, one of them the terminating NUL (the same bound as src/server/unix.ts). */
export const MAX_SOCKET_PATH_BYTES = 107;

export class SocketPathError extends Error {}

/** Refuses a socket path that can never be bound. Pure: nothing is read or created. */
export function checkSocketPath(socketPath: string): void {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SocketPathError(
      `socket path ${socketPath} is ${bytes} bytes; the limit is ${MAX_SOCKET_PATH_BYTES} (a Unix socket address): choose a shorter -socket`,
    );
  }
  if (socketPath.endsWith('/')) throw new SocketPathError(`socket path ${socketPath} names a directory; give a file name such as rpc.sock`);
}

/**
 * Makes sure the socket's directory exists, creating each missing component with mode 0700, one at a time. An
 * existing component that is not a directory, or one that cannot be created, is reported by name at once. The
 * directory's ownership and mode are checked later, by the daemon (src/server/unix.ts).
 */
export async function ensureSocketDirectory(socketPath: string): Promise<string> {
  checkSocketPath(socketPath);
  const dir = path.dirname(path.resolve(socketPath));
  await makeDirectories(dir, 0o700, `socket path ${socketPath}`);
  return dir;
}

/** `mkdir -p` one component at a time (see the top of this file), new components with `mode`; errors name `what`. */
export async function makeDirectories(dir: string, mode: number, what: string): Promise<void> {
  const parts = path
    .resolve(dir)
    .split('/')
    .filter((p) => p !== '');
  let current = '/';
  for (const part of parts) {
    current = path.join(current, part);
    const existing = await stat(current).catch((err: unknown) => errorCode(err) ?? 'EIO');
    if (typeof existing !== 'string') {
      if (!existing.isDirectory()) throw new SocketPathError(`${what}: ${current} is not a directory`);
      continue;
    }
    if (existing === 'ENOTDIR') throw new SocketPathError(`${what}: ${path.dirname(current)} is not a directory`);
    if (existing !== 'ENOENT') throw new SocketPathError(`${what}: cannot look at ${current}: ${errnoText(existing)}`);
    // A dangling symlink stats as missing; creating through it would follow it somewhere else.
    if ((await lstat(current).catch(() => undefined))?.isSymbolicLink()) {
      throw new SocketPathError(`${what}: ${current} is a dangling symbolic link`);
    }
    try {
      await mkdir(current, { mode });
    } catch (err) {
      const code = errorCode(err);
      if (code === 'EEXIST' && (await stat(current).catch(() => undefined))?.isDirectory()) continue; // made meanwhile
      throw new SocketPathError(`${what}: cannot create ${current}: ${errnoText(code)}`);
    }
  }
}
