/**
 * What process.spawn checks before it forks, with Go os/exec's error texts (PROTOCOL.md): the working
 * directory, then the command. Everything here is asynchronous: a request path never blocks the event loop on the
 * file system.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { CatalogueError } from '../protocol/errors.js';
import { errnoText, syscallCode } from '../util/errno.js';

/** The catalogue entries a spawn can fail with, in the reference's check order. */
export type SpawnFailureKey = 'chdirStat' | 'chdirNotDirectory' | 'chdir' | 'executableNotFound' | 'forkExec' | 'ptyUnavailable';

/** Why a spawn failed: the wire error itself (Go os/exec's texts), its key doubling as the metrics label. */
export class SpawnError<K extends SpawnFailureKey = SpawnFailureKey> extends CatalogueError<K> {}

/** `chdir <cwd>: stat <cwd>: no such file or directory` for a missing directory; `not a directory` for a file. */
export async function checkWorkingDirectory(cwd: string): Promise<void> {
  let st;
  try {
    st = await stat(cwd);
  } catch (err) {
    throw new SpawnError('chdirStat', { cwd, reason: errnoText(syscallCode(err)) });
  }
  if (!st.isDirectory()) throw new SpawnError('chdirNotDirectory', { cwd });
  // libuv reports a failed chdir in the child as the same errno as a failed exec; check here to name it right.
  try {
    await access(cwd, constants.X_OK);
  } catch (err) {
    throw new SpawnError('chdir', { cwd, reason: errnoText(syscallCode(err)) });
  }
}

/**
 * Go's exec.LookPath against the daemon's own PATH (not the login-shell PATH children get): a name with a slash is
 * used as given; a bare name must be an executable non-directory in a PATH directory. Relative PATH entries are
 * skipped, as Go 1.19+ refuses executables found through them.
 *
 * Every candidate is stat'ed at once and the first match in PATH order wins, which is the sequential walk's answer
 * in one thread-pool round trip instead of one per directory (`true` sits in the 9th entry of a common PATH; the
 * walk cost 1.5 ms of the spawn's latency, bench/RESULTS.md).
 */
export async function resolveCommand(name: string, searchPath: string | undefined): Promise<string> {
  if (name.includes('/')) return name;
  const candidates = (searchPath ?? '')
    .split(':')
    .filter((dir) => path.isAbsolute(dir))
    .map((dir) => path.join(dir, name));
  const found = await Promise.all(candidates.map(isExecutableFile));
  const at = found.indexOf(true);
  if (at === -1) throw new SpawnError('executableNotFound', { name });
  return candidates[at]!;
}

async function isExecutableFile(candidate: string): Promise<boolean> {
  try {
    const st = await stat(candidate);
    return !st.isDirectory() && (st.mode & 0o111) !== 0;
  } catch {
    return false; // not here; keep looking
  }
}
