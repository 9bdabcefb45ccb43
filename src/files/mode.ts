/**
 * Go's fs.FileMode.String() for a POSIX st_mode, as files.stat reports it (`-rw-r--r--`, `drwxr-xr-x`,
 * `Dcrw-rw-rw-` for /dev/null).
 *
 * Go maps the file type and the special bits to type letters, written in the fixed order `dalTLDpSugct?`, then the
 * nine permission bits as `rwxrwxrwx`, with `-` for a bit that is off. A plain file has no type letter and gets one
 * `-` in its place. Only the letters a stat on Linux or macOS can produce are reachable here: d, L, D, p, S, u, g, c, t.
 */
import { constants } from 'node:fs';

const S_IFMT = constants.S_IFMT;
/** The special bits, the same on Linux and macOS (node:fs does not export them). */
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

export function goModeString(mode: number): string {
  const letters = new Set<string>();
  switch (mode & S_IFMT) {
    case constants.S_IFDIR:
      letters.add('d');
      break;
    case constants.S_IFLNK:
      letters.add('L');
      break;
    case constants.S_IFBLK:
      letters.add('D');
      break;
    case constants.S_IFCHR:
      letters.add('D').add('c');
      break;
    case constants.S_IFIFO:
      letters.add('p');
      break;
    case constants.S_IFSOCK:
      letters.add('S');
      break;
  }
  if (mode & S_ISUID) letters.add('u');
  if (mode & S_ISGID) letters.add('g');
  if (mode & S_ISVTX) letters.add('t');
  let out = '';
  for (const c of 'dalTLDpSugct?') if (letters.has(c)) out += c;
  if (out === '') out = '-';
  const rwx = 'rwxrwxrwx';
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? rwx[i] : '-';
  return out;
}
