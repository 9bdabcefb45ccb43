/**
 * Tilde expansion exactly as the reference does it (PROTOCOL.md): a leading `~/` becomes the home
 * directory and the rest is cleaned lexically; a bare `~` is the home directory verbatim; `~user`, `$HOME` and a `~`
 * anywhere else are left alone. Error texts then carry the expanded spelling.
 */
import { homedir } from 'node:os';
import path from 'node:path';

/** The home directory as Go's os.UserHomeDir sees it: `$HOME`, else the password database. */
export function homeDirectory(): string {
  return process.env.HOME || homedir();
}

export function expandTilde(p: string): string {
  if (p === '~') return homeDirectory();
  if (p.startsWith('~/')) return cleanPath(path.join(homeDirectory(), p.slice(2)));
  return p;
}

/** Go's filepath.Clean: path.normalize without the trailing slash it keeps. */
export function cleanPath(p: string): string {
  const n = path.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}
