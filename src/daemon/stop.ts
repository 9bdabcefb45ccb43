/**
 * `-stop`: ask the daemon on a socket to shut down, and say in one word what happened (PROTOCOL.md).
 *
 * - `stopped`: a daemon answered the connect and was sent `server.shutdown` (no auth, as the reference's -stop);
 * - `none`: nothing accepts and `daemon.lock` is free (or names a process that is gone);
 * - `terminated` / `killed`: nothing accepts, but the lock names a verified live claustrum daemon, which exited on
 *   SIGTERM / had to be SIGKILLed;
 * - `survivor`: the holder is not verifiably ours (never signalled) or outlived SIGKILL; nothing is removed.
 * After a failed connect, unless the word is `survivor`, the stale socket and `daemon.token` are removed.
 */
import net from 'node:net';
import path from 'node:path';
import { lstat, unlink } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { waitGone } from '../process/procfs.js';
import { evict, LOCK_FILE, readLock, verifyHolder, type EvictionOutcome } from './lock.js';
import { runDirectory, TOKEN_FILE } from '../protocol/paths.js';

export type StopWord = 'stopped' | 'none' | EvictionOutcome;

/** How long -stop waits to read the daemon's answer (reference: one read with a 2 s deadline). */
export const STOP_READ_DEADLINE_MS = 2000;
/** How long a verified holder gets after SIGTERM, and after SIGKILL (reference -stop: 4 s and 1.5 s). */
export const STOP_TERM_GRACE_MS = 4000;
export const STOP_KILL_GRACE_MS = 1500;
/** After `stopped`, how long -stop waits for the daemon to be gone before returning. */
export const STOP_EXIT_WAIT_MS = 5000;

export async function stopDaemon(socketPath: string, log: Logger): Promise<StopWord> {
  const runDir = runDirectory(socketPath);
  const before = await readLock(runDir).catch(() => undefined);
  if (await askShutdown(socketPath)) {
    // Return once the daemon is really gone, so `claustrum -stop && claustrum -serve` never overlaps.
    const rec = before?.record;
    if (rec && (await verifyHolder(rec, socketPath)) === 'ours') await waitGone(rec.pid, rec.startTime, STOP_EXIT_WAIT_MS);
    return 'stopped';
  }
  let word: StopWord = 'none';
  const snap = await readLock(runDir).catch(() => undefined);
  if (snap?.record) {
    const verdict = await verifyHolder(snap.record, socketPath);
    if (verdict === 'foreign') return 'survivor';
    if (verdict === 'ours') {
      word = await evict(snap.record, socketPath, log, { termGraceMs: STOP_TERM_GRACE_MS, killGraceMs: STOP_KILL_GRACE_MS });
      if (word === 'survivor') return word;
    }
    // The holder is gone: its lock is stale.
    const now = await lstat(path.join(runDir, LOCK_FILE)).catch(() => undefined);
    if (now && now.ino === snap.ino) await unlink(path.join(runDir, LOCK_FILE)).catch(() => {});
  }
  await removeStale(socketPath);
  await unlink(path.join(runDir, TOKEN_FILE)).catch(() => {});
  return word;
}

/** Connects, sends the shutdown line, reads once; true when a daemon answered the connect. */
function askShutdown(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let connected = false;
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(connected);
    };
    const timer = setTimeout(finish, STOP_READ_DEADLINE_MS);
    s.once('connect', () => {
      connected = true;
      s.write('{"jsonrpc":"2.0","id":1,"method":"server.shutdown"}\n');
    });
    s.once('data', finish);
    s.once('close', finish);
    s.once('error', () => {});
  });
}

/** Removes the socket path only if it is a socket nobody accepts on. */
async function removeStale(socketPath: string): Promise<void> {
  const st = await lstat(socketPath).catch(() => undefined);
  if (st?.isSocket()) await unlink(socketPath).catch(() => {});
}
