/**
 * git.*: info, status, list_branches, worktree_create, worktree_remove (claustrum-wire.md §4.2). The handlers bind
 * params, expand a leading tilde in `path`, `baseRepo` and `worktreePath` (never in branch names), call src/git,
 * and name failures from the catalogue. Every git call runs asynchronously, bounded by `-git-timeout` when set.
 *
 * D9: the namespace binds one set of fields, so a mistyped `branchName` is `Invalid params` even for git.info.
 */
import { GitError, type GitExecFailure, type GitOptions } from '../../git/run.js';
import { gitInfo, gitStatus, listBranches } from '../../git/repo.js';
import { createWorktree, removeWorktree } from '../../git/worktree.js';
import { goSignalText } from '../../util/gotext.js';
import { expandTilde } from '../../util/paths.js';
import { defineMethod, type MethodDef } from '../dispatch.js';
import { wireError, type WireError } from '../errors.js';
import type { GitBranchesResult, GitInfoResult, GitStatusResult, WorktreeCreateResult, WorktreeRemoveResult } from '../wire.js';

const GIT_PARAMS = { path: 'string', baseRepo: 'string', branchName: 'string', worktreePath: 'string', sourceBranch: 'string' } as const;

export interface GitMethodOptions {
  /** `-git-timeout` in milliseconds; 0 means no deadline. */
  readonly gitTimeoutMs: number;
}

export function gitMethods(options: GitMethodOptions): MethodDef[] {
  const run: GitOptions = { timeoutMs: options.gitTimeoutMs };
  return [
    defineMethod('git.info', GIT_PARAMS, (p): Promise<GitInfoResult> => gitInfo(expandTilde(p.path ?? ''), run)),
    defineMethod('git.status', GIT_PARAMS, async (p): Promise<GitStatusResult> => {
      if (!p.baseRepo) throw wireError('baseRepoRequired');
      return wire(gitStatus(expandTilde(p.path ?? ''), expandTilde(p.baseRepo), run));
    }),
    defineMethod('git.list_branches', GIT_PARAMS, (p): Promise<GitBranchesResult> => wire(listBranches(expandTilde(p.path ?? ''), run))),
    defineMethod('git.worktree_create', GIT_PARAMS, (p): Promise<WorktreeCreateResult> => {
      if (!p.branchName) throw wireError('branchNameRequired');
      return createWorktree(
        {
          baseRepo: expandTilde(p.baseRepo ?? ''),
          branchName: p.branchName,
          worktreePath: expandTilde(p.worktreePath ?? ''),
          sourceBranch: p.sourceBranch ?? '',
        },
        run,
      );
    }),
    defineMethod(
      'git.worktree_remove',
      GIT_PARAMS,
      (p): Promise<WorktreeRemoveResult> =>
        removeWorktree({ baseRepo: expandTilde(p.baseRepo ?? ''), worktreePath: expandTilde(p.worktreePath ?? '') }, run),
    ),
  ];
}

async function wire<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof GitError) throw execError(err.failure);
    throw err;
  }
}

function execError(f: GitExecFailure): WireError {
  switch (f.kind) {
    case 'exit':
      return wireError('gitExitStatus', { status: String(f.status) });
    case 'signal':
      return wireError('gitSignal', { signal: goSignalText(f.signal) });
    case 'notFound':
      return wireError('executableNotFound', { name: f.name });
    case 'spawn':
      return wireError('forkExec', { path: f.path, reason: f.reason });
  }
}
