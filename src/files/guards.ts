/**
 * Guards for destructive targets (reliability.md T7): a recursive delete must never reach a filesystem root, the
 * home directory or a directory that holds it (divergence D2). The tests are lexical, on the cleaned spelling, so
 * they run before anything touches the disk.
 */
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
  const home = cleanPath(homeRaw);
  const c = cleanPath(p);
  if (c === home) return true;
  return home.startsWith(c === '/' ? '/' : `${c}/`);
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
