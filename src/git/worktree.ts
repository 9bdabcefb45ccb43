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
import { FAILURES, failureText, worktreeCreateFailure } from '../protocol/failures.js';
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

/** A step the deadline killed: the whole request answers `timeout`, in its method's words. */
class Deadline extends Error {
  constructor(
    readonly command: string,
    readonly duration: string,
  ) {
    super();
  }
}

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

/** The containment refusals both methods share, in the order they are checked; each group words them for its verb. */
type Refusal = 'relativePath' | 'dotDot' | 'outsideRepo' | 'holdsHome';

async function refusal(p: string, repo: string): Promise<Refusal | undefined> {
  if (!path.isAbsolute(p)) return 'relativePath';
  if (hasDotDotSegment(p)) return 'dotDot';
  if (!isStrictlyUnder(p, repo)) return 'outsideRepo';
  return (await reachesHomeDir(p)) ? 'holdsHome' : undefined;
}

/** A refusal in `group`'s words. */
function refusalText(group: 'worktreeCreate' | 'worktreeRemove', key: Refusal, p: string, repo: string): string {
  switch (key) {
    case 'relativePath':
    case 'dotDot':
      return failureText(group, key, { p });
    case 'outsideRepo':
      return failureText(group, key, { p, repo });
    case 'holdsHome':
      return failureText(group, key, { p: goQuote(p) });
  }
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

async function git(dir: string, args: readonly string[], options: GitOptions): Promise<GitResult> {
  const r = await runGit(dir, args, options);
  if (r.timedOut) throw new Deadline(args[0] ?? '', formatDuration(options.timeoutMs));
  return r;
}

export async function createWorktree(req: CreateRequest, options: GitOptions): Promise<CreateResult> {
  const fail = (failure: { readonly error: string; readonly errorCode: WorktreeErrorCode }): CreateResult => ({ success: false, ...failure });
  const repoDir = req.baseRepo || '.';
  const p = req.worktreePath;
  try {
    const repoCheck = await git(repoDir, ['rev-parse', '--is-inside-work-tree'], options);
    if (!(repoCheck.ok && outputLine(repoCheck) === 'true')) return fail(worktreeCreateFailure('notARepo'));
    if (p === '') return fail(worktreeCreateFailure('emptyPath'));
    const refused = await refusal(p, req.baseRepo);
    if (refused !== undefined) {
      return fail({ error: refusalText('worktreeCreate', refused, p, req.baseRepo), errorCode: FAILURES.worktreeCreate[refused].errorCode });
    }
    const link = await symlinkedComponent(req.baseRepo, p);
    if (link !== undefined) return fail(worktreeCreateFailure('symlinked', { dir: link }));
    if ((await lstat(p).catch(() => undefined)) !== undefined) return fail(worktreeCreateFailure('exists', { p }));
    try {
      await mkdirAll(path.dirname(cleanPath(p)), 0o755);
    } catch (err) {
      return fail(worktreeCreateFailure('mkdirParent', { text: (err as Error).message }));
    }
    const start = await startPoint(repoDir, req.sourceBranch, options);
    const add = await runGit(repoDir, ['worktree', 'add', '--no-track', '-b', req.branchName, p, ...(start.sha ? [start.sha] : [])], options);
    if (add.timedOut) return fail(worktreeCreateFailure('addTimedOut', { duration: formatDuration(options.timeoutMs) }));
    if (!add.ok) {
      // A failed add leaves nothing of ours behind: only an empty leaf is removed (rmdir refuses anything else).
      await rmdir(p).catch(() => {});
      return fail(worktreeCreateFailure('addFailed', { gitText: gitFailureText(add) }));
    }
    return { success: true, path: p, ...(start.echo !== undefined ? { sourceBranch: start.echo } : {}) };
  } catch (err) {
    if (err instanceof Deadline) return fail(worktreeCreateFailure('gitTimedOut', { command: err.command, duration: err.duration }));
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
  const repo = req.baseRepo;
  if (p === '') return fail(failureText('worktreeRemove', 'emptyPath'));
  const refused = await refusal(p, repo);
  if (refused !== undefined) return fail(refusalText('worktreeRemove', refused, p, repo));
  const link = await symlinkedComponent(repo, p);
  if (link !== undefined) return fail(failureText('worktreeRemove', 'symlinked', { dir: link }));
  const leaf = await lstat(p).catch((err: NodeJS.ErrnoException) => err);
  try {
    if (leaf instanceof Error) {
      if (leaf.code !== 'ENOENT') return fail(failureText('worktreeRemove', 'inspectFailed', { text: leaf.message }));
      // Already gone: drop a stale registration if git still has one, and succeed (lenient, as the reference is).
      await git(repoDir, ['worktree', 'prune'], options);
      return { success: true };
    }
    if (leaf.isSymbolicLink()) return fail(failureText('worktreeRemove', 'leafSymlink', { p }));
    const dotGit = await lstat(path.join(p, '.git')).catch(() => undefined);
    if (!leaf.isDirectory() || dotGit === undefined || !dotGit.isFile()) return fail(failureText('worktreeRemove', 'noDotGit', { p, repo }));
    const listing = await git(repoDir, ['worktree', 'list', '--porcelain', '-z'], options);
    if (!listing.ok) return fail(failureText('worktreeRemove', 'listFailed', { p }));
    const real = await realpath(p);
    const entry = parseWorktreeList(listing.stdout).find((w) => w.path === real);
    if (entry === undefined) return fail(failureText('worktreeRemove', 'notListed', { p, repo }));
    if (entry.locked) return fail(failureText('worktreeRemove', 'locked', { p }));
    const removed = await runGit(repoDir, ['worktree', 'remove', '--force', p], options);
    if (removed.timedOut) return fail(failureText('worktreeRemove', 'removeTimedOut', { duration: formatDuration(options.timeoutMs) }));
    if (!removed.ok) return fail(failureText('worktreeRemove', 'removeFailed', { gitText: gitFailureText(removed) }));
    return { success: true };
  } catch (err) {
    if (err instanceof Deadline) return fail(failureText('worktreeRemove', 'gitTimedOut', { command: err.command, duration: err.duration }));
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
