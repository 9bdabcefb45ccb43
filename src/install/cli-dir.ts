/**
 * The cli-dir's housekeeping (PROTOCOL.md "Mechanics"): the orphan sweep, the `-cli-keep` prune, the
 * home-directory guard (D2) and the owner-only `mkdir -p`. Each remove is one unlink or rmdir of a direct child of the
 * cli-dir, never recursive and never through a symlink: a folder with content survives the sweep and the prune.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, realpath, rmdir, stat, unlink } from 'node:fs/promises';
import type { BigIntStats, Stats } from 'node:fs';
import path from 'node:path';
import { homeDirectory } from '../util/paths.js';
import { pathErrorText } from './oserror.js';

/** The download blob's name prefix in the cli-dir. The prune never counts it, and no -cli-version may start with it. */
export const BLOB_PREFIX = '.blob-';

/** The random part of `.fetch-*` and `.blob-*` names. */
export function randomName(): string {
  return randomBytes(6).toString('hex');
}

/** Interrupted-install litter that the sweep claims: `.fetch-*` (staging files) and stray `*.zst` blobs. */
export function isSweptName(name: string): boolean {
  return (name.startsWith('.fetch-') || name.endsWith('.zst')) && !isZstPartName(name);
}

/** Partial downloads of another tool (`*.zst.part`): swept on their own, much longer, age rule. */
export function isZstPartName(name: string): boolean {
  return name.endsWith('.zst.part');
}

/**
 * Our own download blob: never a version. An in-flight one is written to all the time (a stall aborts it within 60 s),
 * so one older than the sweep's 10 minutes is a leftover of a killed install and the sweep takes it (a divergence:
 * the reference leaves such blobs forever).
 */
export function isBlobName(name: string): boolean {
  return name.startsWith(BLOB_PREFIX);
}

/** Whether `p`, a path that will be deleted, is the home directory or one of its parents (D2). */
export async function holdsHome(p: string): Promise<boolean> {
  const home = path.resolve(homeDirectory());
  const target = path.resolve(p);
  if (target === home || home.startsWith(target.endsWith(path.sep) ? target : target + path.sep)) return true;
  // By identity too: a spelling through a symlink, or a home reached through one.
  let st: Stats;
  try {
    st = await lstat(target);
  } catch {
    return false;
  }
  if (!st.isDirectory()) return false;
  const homes = [home];
  try {
    const real = await realpath(home);
    if (real !== home) homes.push(real);
  } catch {
    // No such home: only the lexical test applies.
  }
  for (let h of homes) {
    for (;;) {
      try {
        const hs = await stat(h);
        if (hs.dev === st.dev && hs.ino === st.ino) return true;
      } catch {
        // An unreadable step is skipped.
      }
      const parent = path.dirname(h);
      if (parent === h) break;
      h = parent;
    }
  }
  return false;
}

/** One unlink, or one rmdir for a folder (which fails, harmlessly, unless it is empty). */
async function removeOne(p: string, st: Stats | BigIntStats): Promise<void> {
  try {
    if (st.isDirectory()) await rmdir(p);
    else await unlink(p);
  } catch {
    // Gone already, not empty, or not ours to remove: the entry stays.
  }
}

/** Removes each entry whose name `claims` and whose own mtime is more than `minAgeMs` before `now`. */
export async function sweep(cliDir: string, now: number, minAgeMs: number, claims: (name: string) => boolean): Promise<void> {
  let names: string[];
  try {
    names = await readdir(cliDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!claims(name)) continue;
    const p = path.join(cliDir, name);
    let st: Stats;
    try {
      st = await lstat(p);
    } catch {
      continue;
    }
    // A future mtime is not old.
    if (now - st.mtimeMs <= minAgeMs) continue;
    if (await holdsHome(p)) continue;
    await removeOne(p, st);
  }
}

/**
 * The `-cli-keep` prune, after a good install only: every entry counts (files, folders, links) except swept names,
 * `*.zst.part` and our blobs; newest mtime first, ties in byte order of the name; all past the first `keep` are
 * removed. Divergence: `installed`, the CLI this run just put in place, is never removed and always takes the first
 * place (the reference removes it under `-cli-keep 0`, or when other entries carry future mtimes).
 */
export async function prune(cliDir: string, keep: number, installed: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(cliDir);
  } catch {
    return;
  }
  const installedName = path.basename(installed);
  const entries: { name: string; mtime: bigint; st: BigIntStats }[] = [];
  for (const name of names) {
    if (isSweptName(name) || isZstPartName(name) || isBlobName(name) || name === installedName) continue;
    try {
      const st = await lstat(path.join(cliDir, name), { bigint: true });
      entries.push({ name, mtime: st.mtimeNs, st });
    } catch {
      // Vanished meanwhile.
    }
  }
  entries.sort((a, b) => {
    if (a.mtime !== b.mtime) return a.mtime > b.mtime ? -1 : 1;
    return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
  });
  for (const e of entries.slice(Math.max(0, keep - 1))) {
    const p = path.join(cliDir, e.name);
    if (await holdsHome(p)) continue;
    await removeOne(p, e.st);
  }
}

/** A failure whose message is already the Go-style text. */
export class MkdirError extends Error {}

/** Go's os.MkdirAll with mode 0700: errors as `mkdir <path>: <reason>`, naming the component that failed. */
export async function mkdirAll(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (st !== undefined) {
    if (st.isDirectory()) return;
    throw new MkdirError(pathErrorText('mkdir', dir, { code: 'ENOTDIR' }));
  }
  const parent = path.dirname(dir);
  if (parent !== dir) await mkdirAll(parent);
  try {
    await mkdir(dir, 0o700);
  } catch (err) {
    // Someone else made it meanwhile: fine, as long as it is a folder.
    if ((await lstat(dir).catch(() => undefined))?.isDirectory()) return;
    throw new MkdirError(pathErrorText('mkdir', dir, err));
  }
}

/**
 * Makes room for the cli-dir when its path names a regular file, a symlink to one, or a FIFO: that one entry is
 * removed (a link as a link). A folder, a link to a folder, a dangling link or anything else is left alone.
 */
export async function clearNonFolder(dir: string): Promise<void> {
  let lst: Stats;
  let st: Stats;
  try {
    lst = await lstat(dir);
    st = await stat(dir);
  } catch {
    return;
  }
  if (st.isFile() || lst.isFIFO()) await unlink(dir).catch(() => undefined);
}
