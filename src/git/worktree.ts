/**
 * git.worktree_create and git.worktree_remove as logic. Worktrees are confined to the repository (the reference's
 * 7d193f89 containment): `worktreePath` must be absolute, carry no `..` segment and lie strictly below `baseRepo`.
 * On top of that (T7, D2), neither method acts on the home directory or an ancestor of it, nor through a symlinked
 * directory between `baseRepo` and the worktree. Failures are results, `{success:false, error[, errorCode]}`, in the
 * reference's words.
 *
 * git.worktree_remove never deletes anything itself: it removes only a folder git lists as a worktree of `baseRepo`,
 * through `git worktree remove --force`, and refuses a locked one.
 */
import type { WorktreeCreateResult as CreateResult, WorktreeErrorCode, WorktreeRemoveResult as RemoveResult } from '../protocol/messages.js';
import { lstat, realpath, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { formatDuration } from '../util/duration.js';
import { goQuote, isGoPrintable, validUtf8Only } from '../util/gotext.js';
import { cleanPath } from '../util/paths.js';
import { mkdirAll } from '../files/fsops.js';
import { hasDotDotSegment, isStrictlyUnder, reachesHomeDir } from '../files/guards.js';
import { outputLine } from './repo.js';
import { execErrorText, runGit, type GitOptions, type GitResult } from './run.js';

/** How many bytes of git's stderr a failure text quotes (the reference's text rule). */
export const GIT_TEXT_MAX_BYTES = 512;

export interface CreateRequest {
  /** `baseRepo` as sent (after tilde expansion); "" when absent, and then git runs in the daemon's directory. */
  readonly baseRepo: string;
  readonly branchName: string;
  readonly worktreePath: string;
  readonly sourceBranch: string;
}

/** A step the deadline killed: the whole request answers `timeout`. */
class Deadline extends Error {}

/**
 * The reference's text rule for git's words in a failure: stderr only, its first 512 bytes, invalid UTF-8 dropped,
 * every non-printable character one space, spaces trimmed; Go's exec error when nothing is left.
 */
export function gitFailureText(r: GitResult): string {
  const text = [...validUtf8Only(r.stderr.subarray(0, GIT_TEXT_MAX_BYTES))]
    .map((ch) => (isGoPrintable(ch) ? ch : ' '))
    .join('')
    .replace(/^ +| +$/g, '');
  return text !== '' ? text : r.failure !== undefined ? execErrorText(r.failure) : '';
}

function refusal(verb: 'create' | 'remove', p: string, repo: string): string | undefined {
  const spelling = 'choose the session folder by its absolute path, without ".."';
  if (!path.isAbsolute(p)) return `refusing to ${verb} worktree: ${p} is a relative path; ${spelling}`;
  if (hasDotDotSegment(p)) return `refusing to ${verb} worktree: ${p} contains a ".." component; ${spelling}`;
  if (!isStrictlyUnder(p, repo)) {
    return `refusing to ${verb} worktree: ${p} is not inside the repository ${repo}; session worktrees are only created and removed under <repository>/.claude/worktrees`;
  }
  return undefined;
}

async function homeRefusal(p: string): Promise<string | undefined> {
  return (await reachesHomeDir(p)) ? `worktreePath must not be or contain the home directory: ${goQuote(p)}` : undefined;
}

/** The first directory strictly between `repo` and the leaf of `p` that is a symbolic link, if any. */
async function symlinkedComponent(repo: string, p: string): Promise<string | undefined> {
  const base = cleanPath(repo);
  const parts = path.relative(base, cleanPath(p)).split('/');
  let cur = base;
  for (const part of parts.slice(0, -1)) {
    cur = path.join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (st?.isSymbolicLink()) return cur;
  }
  return undefined;
}

function symlinkRefusal(verb: 'create' | 'remove', link: string): string {
  return (
    `refusing to ${verb} worktree: ${link} is a symbolic link; a symlinked .claude or .claude/worktrees inside the ` +
    'repository is not supported for SSH sessions, because a repository can plant such a link and a planted one ' +
    'cannot reliably be told apart from your own. Replace it with a real directory (or delete it and it will be recreated)'
  );
}

async function git(dir: string, args: readonly string[], options: GitOptions): Promise<GitResult> {
  const r = await runGit(dir, args, options);
  if (r.timedOut) throw new Deadline(`git ${args[0]} timed out after ${formatDuration(options.timeoutMs)}`);
  return r;
}

export async function createWorktree(req: CreateRequest, options: GitOptions): Promise<CreateResult> {
  const fail = (errorCode: WorktreeErrorCode, error: string): CreateResult => ({ success: false, error, errorCode });
  const repoDir = req.baseRepo || '.';
  const p = req.worktreePath;
  try {
    const repoCheck = await git(repoDir, ['rev-parse', '--is-inside-work-tree'], options);
    if (!(repoCheck.ok && outputLine(repoCheck) === 'true')) return fail('not_a_repo', 'not a git repository');
    if (p === '') return fail('mkdir_failed', 'failed to create parent directory: "" does not name a directory');
    const refused = refusal('create', p, req.baseRepo) ?? (await homeRefusal(p));
    if (refused !== undefined) return fail('unsafe_path', refused);
    const link = await symlinkedComponent(req.baseRepo, p);
    if (link !== undefined) return fail('unsafe_path', symlinkRefusal('create', link));
    if ((await lstat(p).catch(() => undefined)) !== undefined) {
      return fail('unsafe_path', `refusing to create worktree: ${p} already exists, and a new worktree is only ever created in a fresh directory`);
    }
    try {
      await mkdirAll(path.dirname(cleanPath(p)), 0o755);
    } catch (err) {
      return fail('mkdir_failed', `failed to create parent directory: ${(err as Error).message}`);
    }
    const start = await startPoint(repoDir, req.sourceBranch, options);
    const add = await runGit(repoDir, ['worktree', 'add', '--no-track', '-b', req.branchName, p, ...(start.sha ? [start.sha] : [])], options);
    if (add.timedOut) {
      return fail(
        'timeout',
        `git worktree add timed out after ${formatDuration(options.timeoutMs)}; no cleanup was attempted, and git may have partially created the worktree`,
      );
    }
    if (!add.ok) {
      // A failed add leaves nothing of ours behind: only an empty leaf is removed (rmdir refuses anything else).
      await rmdir(p).catch(() => {});
      return fail('worktree_add_failed', `git worktree add failed: ${gitFailureText(add)}`);
    }
    return { success: true, path: p, ...(start.echo !== undefined ? { sourceBranch: start.echo } : {}) };
  } catch (err) {
    if (err instanceof Deadline) return fail('timeout', err.message);
    throw err;
  }
}

/**
 * The start of the new branch. A non-empty `sourceBranch` names a local branch (L) or an `origin` tracking branch
 * (R); with both, R wins unless L has diverged from it with no change to the repository's `.claude` or `.mcp.json`
 * (the reference's rule). The echo is `sourceBranch` as sent when it resolved, else the current branch (absent on a
 * detached or unborn HEAD).
 */
async function startPoint(repo: string, source: string, options: GitOptions): Promise<{ sha?: string; echo?: string }> {
  if (source !== '') {
    const verify = async (ref: string) => {
      const r = await git(repo, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], options);
      return r.ok ? outputLine(r) : undefined;
    };
    const [local, remote] = await Promise.all([verify(`refs/heads/${source}`), verify(`refs/remotes/origin/${source}`)]);
    let sha = local ?? remote;
    if (local !== undefined && remote !== undefined && local !== remote) {
      sha = remote;
      const behind = await git(repo, ['merge-base', '--is-ancestor', local, remote], options);
      if (!behind.ok) {
        const mb = await git(repo, ['merge-base', remote, local], options);
        if (mb.ok) {
          const diff = await git(
            repo,
            [
              'diff',
              '--quiet',
              '--no-ext-diff',
              '--no-textconv',
              '--submodule=short',
              outputLine(mb),
              local,
              '--',
              ':(top,icase).claude',
              ':(top,icase).mcp.json',
            ],
            options,
          );
          if (diff.ok) sha = local;
        }
      }
    }
    if (sha !== undefined) return { sha, echo: source };
  }
  const head = await git(repo, ['rev-parse', '--abbrev-ref', 'HEAD'], options);
  const name = head.ok ? outputLine(head) : '';
  return name !== '' && name !== 'HEAD' ? { echo: name } : {};
}

export interface RemoveRequest {
  readonly baseRepo: string;
  readonly worktreePath: string;
}

export async function removeWorktree(req: RemoveRequest, options: GitOptions): Promise<RemoveResult> {
  const fail = (error: string): RemoveResult => ({ success: false, error });
  const repoDir = req.baseRepo || '.';
  const p = req.worktreePath;
  if (p === '') return fail('failed to remove worktree: "" does not name a directory');
  const refused = refusal('remove', p, req.baseRepo) ?? (await homeRefusal(p));
  if (refused !== undefined) return fail(refused);
  const link = await symlinkedComponent(req.baseRepo, p);
  if (link !== undefined) return fail(symlinkRefusal('remove', link));
  const leaf = await lstat(p).catch((err: NodeJS.ErrnoException) => err);
  try {
    if (leaf instanceof Error) {
      if (leaf.code !== 'ENOENT') return fail(`failed to remove worktree: ${leaf.message}`);
      // Already gone: drop a stale registration if git still has one, and succeed (lenient, as the reference is).
      await git(repoDir, ['worktree', 'prune'], options);
      return { success: true };
    }
    if (leaf.isSymbolicLink()) return fail(`refusing to remove worktree: ${p} is a symbolic link, not a worktree directory`);
    const dotGit = await lstat(path.join(p, '.git')).catch(() => undefined);
    if (!leaf.isDirectory() || dotGit === undefined || !dotGit.isFile()) {
      return fail(
        `refusing to remove worktree: ${p} is not a worktree of ${req.baseRepo} (${p} has no .git file), so it is left in place; remove it by hand if it is a leftover`,
      );
    }
    const listing = await git(repoDir, ['worktree', 'list', '--porcelain', '-z'], options);
    if (!listing.ok)
      return fail(`failed to remove worktree: could not check whether ${p} is locked (its registrations could not be examined); retry`);
    const real = await realpath(p);
    const entry = parseWorktreeList(listing.stdout).find((w) => w.path === real);
    if (entry === undefined) {
      return fail(
        `refusing to remove worktree: ${p} is not a worktree of ${req.baseRepo} (git does not list it), so it is left in place; remove it by hand if it is a leftover`,
      );
    }
    if (entry.locked) return fail(`refusing to remove worktree: ${p} is locked (git worktree lock); unlock it to remove it`);
    const removed = await runGit(repoDir, ['worktree', 'remove', '--force', p], options);
    if (removed.timedOut) {
      return fail(
        `git worktree remove timed out after ${formatDuration(options.timeoutMs)}; no cleanup was attempted, and git may have partially removed the worktree`,
      );
    }
    if (!removed.ok) return fail(`failed to remove worktree: ${gitFailureText(removed)}`);
    return { success: true };
  } catch (err) {
    if (err instanceof Deadline) return fail(err.message);
    throw err;
  }
}

interface ListedWorktree {
  readonly path: string;
  readonly locked: boolean;
}

/** `git worktree list --porcelain -z`: NUL-terminated lines, an empty one between worktrees. */
function parseWorktreeList(out: Buffer): ListedWorktree[] {
  const list: ListedWorktree[] = [];
  let current: { path: string; locked: boolean } | undefined;
  for (const line of out.toString('utf8').split('\0')) {
    if (line.startsWith('worktree ')) {
      current = { path: line.slice('worktree '.length), locked: false };
      list.push(current);
    } else if (current !== undefined && (line === 'locked' || line.startsWith('locked '))) {
      current.locked = true;
    }
  }
  return list;
}
