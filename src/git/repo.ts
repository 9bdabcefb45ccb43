/**
 * git.info, git.list_branches and git.status as logic (PROTOCOL.md, reference PROTOCOL git.*).
 *
 * - git.info is a repository when `rev-parse --is-inside-work-tree` says `true` (a bare repository or the inside of
 *   a `.git` directory is not); git.list_branches when `rev-parse --git-dir` succeeds (both of those are).
 * - git.status reports only for a linked worktree of `baseRepo` (the reference's `git.status.baseRepo` gate): `path`
 *   must be the folder named by exactly one worktree entry under `baseRepo`'s common git directory. Anything else,
 *   the main checkout included, is `{isRepo:false, clean:false}`. The gate reads those entries itself and runs git
 *   in `path` only once it has passed.
 */
import type { GitBranchesResult as BranchesResult, GitInfoResult as InfoResult, GitStatusResult as StatusResult } from '../protocol/messages.js';
import { constants } from 'node:fs';
import { lstat, open, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { goString } from '../util/gotext.js';
import { cleanPath } from '../util/paths.js';
import { GitError, runGit, type GitOptions, type GitResult } from './run.js';
import { repoSlug } from './slug.js';

/** A git.status change line longer than this many bytes is cut there and `…` appended. */
export const STATUS_ENTRY_MAX_BYTES = 512;
/** At most this many git.status change lines are returned; the rest are dropped without a marker. */
export const STATUS_MAX_ENTRIES = 10_000;
/** The largest worktree-entry file (`gitdir`, `commondir`) the git.status gate reads: 1 MiB. */
export const WORKTREE_RECORD_MAX_BYTES = 1 << 20;

/** stdout as text without its trailing newlines. */
export function outputLine(r: GitResult): string {
  return goString(r.stdout).replace(/\n+$/, '');
}

function outputLines(buf: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl === -1) break;
    lines.push(buf.subarray(start, nl));
    start = nl + 1;
  }
  if (start < buf.length) lines.push(buf.subarray(start));
  return lines;
}

export async function isWorkTree(dir: string, options: GitOptions): Promise<boolean> {
  const r = await runGit(dir, ['rev-parse', '--is-inside-work-tree'], options);
  return r.ok && outputLine(r) === 'true';
}

export async function gitInfo(dir: string, options: GitOptions): Promise<InfoResult> {
  if (!(await isWorkTree(dir, options))) return { isRepo: false, repoSlug: '', defaultBranch: '' };
  const [top, branch, slug, defaultBranch] = await Promise.all([
    runGit(dir, ['rev-parse', '--show-toplevel'], options),
    currentBranch(dir, options),
    runGit(dir, ['remote', 'get-url', 'origin'], options),
    originHead(dir, options),
  ]);
  const root = top.ok ? outputLine(top) : '';
  return {
    isRepo: true,
    repo: path.basename(root),
    ...(branch !== undefined ? { branch } : {}),
    root,
    repoSlug: slug.ok ? repoSlug(outputLine(slug)) : '',
    defaultBranch,
  };
}

/** `branch --show-current` (works on an unborn HEAD); a detached HEAD is `detached:<short sha>`; a failure is absent. */
async function currentBranch(dir: string, options: GitOptions): Promise<string | undefined> {
  const r = await runGit(dir, ['branch', '--show-current'], options);
  if (!r.ok) return undefined;
  const name = outputLine(r);
  if (name !== '') return name;
  const sha = await runGit(dir, ['rev-parse', '--short', 'HEAD'], options);
  return `detached:${sha.ok ? outputLine(sha) : ''}`;
}

/** What `refs/remotes/origin/HEAD` points to, if that names a commit; else "". */
async function originHead(dir: string, options: GitOptions): Promise<string> {
  const r = await runGit(dir, ['symbolic-ref', '--quiet', 'refs/remotes/origin/HEAD'], options);
  if (!r.ok) return '';
  const ref = outputLine(r);
  const name = ref.startsWith('refs/remotes/origin/') ? ref.slice('refs/remotes/origin/'.length) : ref;
  if (name === '' || name.startsWith('-')) return '';
  const v = await runGit(dir, ['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${name}^{commit}`], options);
  return v.ok ? name : '';
}

/** Local branches, sorted byte-wise; a git failure after the repository check is a GitError (-32603). */
export async function listBranches(dir: string, options: GitOptions): Promise<BranchesResult> {
  const probe = await runGit(dir, ['rev-parse', '--git-dir'], options);
  if (!probe.ok) return { isRepo: false, branches: [] };
  const r = await runGit(dir, ['for-each-ref', '--format=%(refname:short)', '--sort=refname', 'refs/heads'], options);
  if (!r.ok) throw new GitError(r.failure!);
  const branches = outputLines(r.stdout)
    .map((l) => goString(l).trim())
    .filter((l) => l !== '')
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return { isRepo: true, branches };
}

const NOT_A_WORKTREE: StatusResult = { isRepo: false, clean: false };

export async function gitStatus(worktree: string, baseRepo: string, options: GitOptions): Promise<StatusResult> {
  if (!(await isLinkedWorktreeOf(worktree, baseRepo, options))) return NOT_A_WORKTREE;
  const r = await runGit(worktree, ['status', '--porcelain', '--untracked-files=all', '--ignore-submodules=all'], options);
  if (!r.ok) throw new GitError(r.failure!);
  const changes: string[] = [];
  for (const line of outputLines(r.stdout)) {
    if (changes.length === STATUS_MAX_ENTRIES) break;
    if (line.length === 0) continue;
    changes.push(line.length > STATUS_ENTRY_MAX_BYTES ? `${goString(line.subarray(0, STATUS_ENTRY_MAX_BYTES))}…` : goString(line));
  }
  return changes.length === 0 ? { isRepo: true, clean: true } : { isRepo: true, clean: false, changes };
}

/**
 * The gate: `worktree` is the folder of exactly one linked-worktree entry of `baseRepo`'s repository, and that
 * entry's `commondir` leads back to it. Entries are read as files (regular, bounded, opened without blocking); a
 * symlinked entry does not count.
 */
async function isLinkedWorktreeOf(worktree: string, baseRepo: string, options: GitOptions): Promise<boolean> {
  let base: string;
  try {
    base = await realpath(baseRepo);
  } catch {
    return false;
  }
  const common = await runGit(base, ['rev-parse', '--path-format=absolute', '--git-common-dir'], options);
  if (!common.ok) return false;
  const commonDir = cleanPath(outputLine(common));
  const entriesDir = path.join(commonDir, 'worktrees');
  let names: string[];
  try {
    names = await readdir(entriesDir);
  } catch {
    return false;
  }
  const spellings = new Set<string>([cleanPath(path.resolve(worktree))]);
  const resolved = await realpath(worktree).catch(() => undefined);
  if (resolved !== undefined) spellings.add(resolved);
  let matches = 0;
  for (const name of names) {
    const entry = path.join(entriesDir, name);
    const st = await lstat(entry).catch(() => undefined);
    if (st === undefined || !st.isDirectory()) continue;
    const gitdir = await readRecord(path.join(entry, 'gitdir'));
    if (gitdir === undefined) continue;
    const target = cleanPath(path.resolve(entry, gitdir));
    if (path.basename(target) !== '.git' || !spellings.has(path.dirname(target))) continue;
    const commondir = await readRecord(path.join(entry, 'commondir'));
    if (commondir === undefined || cleanPath(path.resolve(entry, commondir)) !== commonDir) return false;
    matches++;
  }
  return matches === 1;
}

/** A small regular file's trimmed content, or undefined for anything else; never waits on a FIFO. */
async function readRecord(p: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(p, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > WORKTREE_RECORD_MAX_BYTES) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(Math.max(st.size + 1 - total, 4096), WORKTREE_RECORD_MAX_BYTES + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > WORKTREE_RECORD_MAX_BYTES) return undefined;
    }
    return goString(Buffer.concat(chunks, total)).trim();
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => {});
  }
}
