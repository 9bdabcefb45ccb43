/**
 * What process.spawn checks before it forks, with Go os/exec's error texts (claustrum-wire.md §4.4): the working
 * directory, then the command. Everything here is asynchronous: a request path never blocks the event loop on the
 * file system.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoText, syscallCode } from '../util/errno.js';

/** Why a spawn failed, in terms the method layer maps to its wire errors. */
export type SpawnFailure =
  | { readonly kind: 'chdirStat'; readonly cwd: string; readonly reason: string }
  | { readonly kind: 'chdirNotDirectory'; readonly cwd: string }
  | { readonly kind: 'chdir'; readonly cwd: string; readonly reason: string }
  | { readonly kind: 'executableNotFound'; readonly name: string }
  | { readonly kind: 'forkExec'; readonly path: string; readonly reason: string };

export class SpawnError extends Error {
  readonly failure: SpawnFailure;
  constructor(failure: SpawnFailure) {
    super(`spawn failed: ${failure.kind}`);
    this.failure = failure;
  }
}

/** `chdir <cwd>: stat <cwd>: no such file or directory` for a missing directory; `not a directory` for a file. */
export async function checkWorkingDirectory(cwd: string): Promise<void> {
  let st;
  try {
    st = await stat(cwd);
  } catch (err) {
    throw new SpawnError({ kind: 'chdirStat', cwd, reason: errnoText(syscallCode(err)) });
  }
  if (!st.isDirectory()) throw new SpawnError({ kind: 'chdirNotDirectory', cwd });
  // libuv reports a failed chdir in the child as the same errno as a failed exec; check here to name it right.
  try {
    await access(cwd, constants.X_OK);
  } catch (err) {
    throw new SpawnError({ kind: 'chdir', cwd, reason: errnoText(syscallCode(err)) });
  }
}

/**
 * Go's exec.LookPath against the daemon's own PATH (not the login-shell PATH children get): a name with a slash is
 * used as given; a bare name must be an executable non-directory in a PATH directory. Relative PATH entries are
 * skipped, as Go 1.19+ refuses executables found through them.
 */
export async function resolveCommand(name: string, searchPath: string | undefined): Promise<string> {
  if (name.includes('/')) return name;
  for (const dir of (searchPath ?? '').split(':')) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    try {
      const st = await stat(candidate);
      if (!st.isDirectory() && (st.mode & 0o111) !== 0) return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new SpawnError({ kind: 'executableNotFound', name });
}
