/**
 * `remote-server.log` in the socket's directory: rotated to `remote-server.log.old` at each start, created fresh
 * with mode 0600. A log that is a symlink or belongs to another user is declined, never followed or written
 * (reference D8, SECURITY.md): the daemon then runs without a log file and the launcher says so.
 */
import { constants } from 'node:fs';
import { lstat, open, rename, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { errnoText, errorCode } from '../util/errno.js';

export const LOG_FILE = 'remote-server.log';

export type OpenedLog = { readonly handle: FileHandle; readonly path: string } | { readonly declined: string };

export async function openDaemonLog(runDir: string): Promise<OpenedLog> {
  const file = path.join(runDir, LOG_FILE);
  const st = await lstat(file).catch(() => undefined);
  if (st) {
    if (st.isSymbolicLink()) return { declined: `${file} is a symlink; not following it` };
    if (!st.isFile()) return { declined: `${file} is not a regular file` };
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) return { declined: `${file} belongs to uid ${st.uid}; not writing into it` };
    try {
      await rename(file, `${file}.old`);
    } catch (err) {
      return { declined: `rotate ${file}: ${errnoText(errorCode(err))}` };
    }
  }
  try {
    const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_APPEND, 0o600);
    return { handle: fh, path: file };
  } catch (err) {
    return { declined: `create ${file}: ${errnoText(errorCode(err))}` };
  }
}

/** The last `lines` lines of the daemon log, for a launcher explaining a failed start. */
export async function tailLog(runDir: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(path.join(runDir, LOG_FILE), 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
