/**
 * Guards for destructive targets (SECURITY.md): a recursive delete must never reach a filesystem root, the
 * home directory or a directory that holds it (divergence D2). The tests are lexical, on the cleaned spelling, so
 * they run before anything touches the disk.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { cleanPath, homeDirectory } from '../util/paths.js';

/** True for `/` in any spelling (`//`, `/.`, `/..`). */
export function isFilesystemRoot(p: string): boolean {
  const c = cleanPath(p);
  return path.dirname(c) === c;
}

/** True when `p` is the home directory or one of its ancestors, so that deleting `p` would delete home. */
export function wipesHomeDir(p: string): boolean {
  const homeRaw = homeDirectory();
  if (!homeRaw || !path.isAbsolute(homeRaw)) return false;
  return contains(cleanPath(p), cleanPath(homeRaw));
}

function contains(dir: string, home: string): boolean {
  return dir === home || home.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/**
 * wipesHomeDir, and the same test on the spellings with symlinks resolved: a destructive target reached through a
 * linked directory (`/tmp/link/me` with `/tmp/link -> /home`) must not reach home either. The part of `p` that does
 * not exist yet is kept as spelled.
 */
export async function reachesHomeDir(p: string): Promise<boolean> {
  if (wipesHomeDir(p)) return true;
  const homeRaw = homeDirectory();
  if (!homeRaw || !path.isAbsolute(homeRaw) || !path.isAbsolute(p)) return false;
  const home = await realpath(homeRaw).catch(() => cleanPath(homeRaw));
  return contains(await resolveExisting(p), home);
}

/** `p` with the symlinks of its longest existing prefix resolved. */
async function resolveExisting(p: string): Promise<string> {
  let cur = cleanPath(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(cur), ...rest);
    } catch {
      if (cur === '/') return cleanPath(p);
      rest.unshift(path.basename(cur));
      cur = path.dirname(cur);
    }
  }
}

/** Go's filepath.Rel(root, p) is local and not `.`: `p` lies strictly below `root`. Both must be absolute. */
export function isStrictlyUnder(p: string, root: string): boolean {
  if (!path.isAbsolute(p) || !path.isAbsolute(root)) return false;
  const rel = path.relative(cleanPath(root), cleanPath(p));
  return rel !== '' && rel !== '..' && !rel.startsWith('../') && !path.isAbsolute(rel);
}

/** True when a segment of the path, as spelled, is exactly `..`. */
export function hasDotDotSegment(p: string): boolean {
  return p.split('/').includes('..');
}
