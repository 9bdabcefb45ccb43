/**
 * git.*: info, status, list_branches, worktree_create, worktree_remove (PROTOCOL.md). The handlers bind
 * params, expand a leading tilde in `path`, `baseRepo` and `worktreePath` (never in branch names), call src/git,
 * whose failures carry their catalogue entries. Every git call runs asynchronously, bounded by `-git-timeout` when set.
 *
 * D9: the namespace binds one set of fields, so a mistyped `branchName` is `Invalid params` even for git.info.
 */
import type { GitOptions } from '../../../git/run.js';
import { gitInfo, gitStatus, listBranches } from '../../../git/repo.js';
import { createWorktree, removeWorktree } from '../../../git/worktree.js';
import { failure } from '../../../protocol/errors.js';
import { expandTilde } from '../../../util/paths.js';
import { defineMethod, type MethodDef } from '../dispatch.js';

const GIT_PARAMS = { path: 'string', baseRepo: 'string', branchName: 'string', worktreePath: 'string', sourceBranch: 'string' } as const;

export interface GitMethodOptions {
  /** `-git-timeout` in milliseconds; 0 means no deadline. */
  readonly gitTimeoutMs: number;
}

export function gitMethods(options: GitMethodOptions): MethodDef[] {
  const run: GitOptions = { timeoutMs: options.gitTimeoutMs };
  return [
    defineMethod('git.info', GIT_PARAMS, (p) => gitInfo(expandTilde(p.path ?? ''), run)),
    defineMethod('git.status', GIT_PARAMS, (p) => {
      if (!p.baseRepo) throw failure('baseRepoRequired');
      return gitStatus(expandTilde(p.path ?? ''), expandTilde(p.baseRepo), run);
    }),
    defineMethod('git.list_branches', GIT_PARAMS, (p) => listBranches(expandTilde(p.path ?? ''), run)),
    defineMethod('git.worktree_create', GIT_PARAMS, (p) => {
      if (!p.branchName) throw failure('branchNameRequired');
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
    defineMethod('git.worktree_remove', GIT_PARAMS, (p) =>
      removeWorktree({ baseRepo: expandTilde(p.baseRepo ?? ''), worktreePath: expandTilde(p.worktreePath ?? '') }, run),
    ),
  ];
}
