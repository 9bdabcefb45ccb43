/**
 * Which directories the daemon trusts with its socket, token, lock and child records (issue 10, point 2;
 * SECURITY.md T1).
 *
 * The socket's own directory must belong to the daemon's user and be writable by nobody else, whatever its sticky
 * bit: in a shared directory such as `/tmp` (root's, mode 1777) another user could plant `children/`, a lock or a
 * socket before the daemon starts. Its ancestors are checked as OpenSSH checks the path of `authorized_keys`
 * (`safe_path()` in misc.c): each one, up to `/`, must belong to root or to the daemon's user and must not be
 * writable by group or others, or an ancestor's other writers could rename the directory away and put their own in
 * its place. One deliberate difference: an ancestor with the sticky bit may be writable by others (so a private
 * directory made with `mktemp -d` under `/tmp` is accepted), because in a sticky directory only an entry's owner (or
 * the directory's) can rename or remove it, and the entry below it must itself pass these checks.
 *
 * The walk runs on the real path (symbolic links resolved), so a link cannot stand in for a checked component.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoText, errorCode } from '../util/errno.js';

export class UntrustedPathError extends Error {}

const STICKY = 0o1000;
const GROUP_OR_OTHER_WRITE = 0o022;

function modeText(mode: number): string {
  return (mode & 0o7777).toString(8);
}

/**
 * Throws UntrustedPathError, naming the component and what is wrong with it, unless `dir` and all its ancestors
 * may be trusted by a daemon running as `uid` (the effective uid by default).
 */
export async function assertTrustedDirectory(dir: string, uid: number | undefined = process.geteuid?.()): Promise<void> {
  if (uid === undefined) return; // not a POSIX host: nothing to compare against
  let real: string;
  try {
    real = await realpath(dir);
  } catch (err) {
    throw new UntrustedPathError(`socket directory ${dir}: ${errnoText(errorCode(err))}`);
  }
  const own = await stat(real);
  if (!own.isDirectory()) throw new UntrustedPathError(`socket directory ${dir} is not a directory`);
  if (own.uid !== uid) {
    throw new UntrustedPathError(`socket directory ${dir} belongs to uid ${own.uid}, not to this user (uid ${uid}); choose a directory you own`);
  }
  if ((own.mode & GROUP_OR_OTHER_WRITE) !== 0) {
    throw new UntrustedPathError(`socket directory ${dir} is writable by other users (mode ${modeText(own.mode)}); use a directory of mode 0700`);
  }
  for (let at = path.dirname(real); ; at = path.dirname(at)) {
    const st = await stat(at);
    if (st.uid !== 0 && st.uid !== uid) {
      throw new UntrustedPathError(
        `socket directory ${dir}: its ancestor ${at} belongs to uid ${st.uid}, neither root nor this user (uid ${uid}), who could replace the directory; choose a directory under your home or $XDG_RUNTIME_DIR`,
      );
    }
    if ((st.mode & GROUP_OR_OTHER_WRITE) !== 0 && (st.mode & STICKY) === 0) {
      throw new UntrustedPathError(
        `socket directory ${dir}: its ancestor ${at} is writable by other users without the sticky bit (mode ${modeText(st.mode)}), who could replace the directory; choose a directory under your home or $XDG_RUNTIME_DIR`,
      );
    }
    if (at === '/') return;
  }
}
