/**
 * Where a keeper lives: `keeper/` in the socket's directory (0700), holding `keeper.sock`, `keeper.lock`,
 * `keeper.log` and `procs/<key>/` (each process's meta.json and journal). Shared by the keeper, the daemon that
 * starts it, and the operator commands that report on it; importing this starts nothing.
 */
import { constants, openSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const KEEPER_DIR = 'keeper';
export const KEEPER_SOCKET = 'keeper.sock';
export const KEEPER_LOCK = 'keeper.lock';
export const KEEPER_LOG = 'keeper.log';
/** The exit status of a keeper that did not start (its stdout says why). */
export const KEEPER_REFUSED_EXIT = 3;

export interface KeeperLockRecord {
  readonly pid: number;
  /** OS start time of `pid` (/proc/<pid>/stat field 22). */
  readonly startTime: string;
  readonly instance: string;
  readonly protocol: number;
  readonly build: string;
  readonly startedAt: number;
}

/** The keeper directory of a daemon's socket directory. */
export function keeperDirectory(runDir: string): string {
  return path.join(runDir, KEEPER_DIR);
}

/** The longest path a Unix socket can be bound to or reached by (sun_path, 108 bytes with its NUL). */
const SOCKET_PATH_MAX_BYTES = 107;
const dirHandles = new Map<string, number>();

/**
 * A path to `keeper.sock` that fits a socket address. The keeper's socket sits one level below the daemon's, so a
 * daemon socket near the 107-byte limit would put it past: then the path goes through an open descriptor of the
 * directory (`/proc/self/fd/<n>/keeper.sock`, Linux), which names the same file in a few bytes. The descriptor stays
 * open for the life of the process (one per keeper directory).
 */
export function keeperSocketPath(dir: string): string {
  const direct = path.join(dir, KEEPER_SOCKET);
  if (Buffer.byteLength(direct) <= SOCKET_PATH_MAX_BYTES) return direct;
  let fd = dirHandles.get(dir);
  if (fd === undefined) {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    dirHandles.set(dir, fd);
  }
  return `/proc/self/fd/${fd}/${KEEPER_SOCKET}`;
}

export function readLockRecord(dir: string): KeeperLockRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(path.join(dir, KEEPER_LOCK), 'utf8')) as KeeperLockRecord;
    return Number.isInteger(rec.pid) && typeof rec.startTime === 'string' ? rec : undefined;
  } catch {
    return undefined;
  }
}
