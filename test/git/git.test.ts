/**
 * git.* over the real daemon socket, on real temporary repositories made with a fixed identity.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_ENTRY_MAX_BYTES, STATUS_MAX_ENTRIES, WORKTREE_RECORD_MAX_BYTES } from '../../src/git/repo.js';
import { Daemon } from '../helpers/daemon.js';
import type { RpcClient } from '../helpers/rpc.js';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
};

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim();
}

/** A repository with one commit on `main`, a `feature` branch and a github origin. */
function makeRepo(parent: string, name: string): string {
  git(parent, 'init', '-q', '-b', 'main', name);
  const repo = path.join(parent, name);
  writeFileSync(path.join(repo, 'README.md'), 'hello\n');
  writeFileSync(path.join(repo, 'staged.txt'), 'one\n');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'init');
  git(repo, 'branch', 'feature');
  return repo;
}

const UNSAFE_TAIL = 'choose the session folder by its absolute path, without ".."';
const OUTSIDE_TAIL = 'session worktrees are only created and removed under <repository>/.claude/worktrees';
const SYMLINK_TAIL =
  'is a symbolic link; a symlinked .claude or .claude/worktrees inside the repository is not supported for SSH sessions, because a repository can plant such a link and a planted one cannot reliably be told apart from your own. Replace it with a real directory (or delete it and it will be recreated)';

let root: string;
let home: string;
let repo: string;
let d: Daemon;
let c: RpcClient;

beforeAll(async () => {
  root = realpathSync(mkdtempSync(path.join(tmpdir(), 'git-')));
  home = path.join(root, 'home');
  mkdirSync(home);
  repo = makeRepo(home, 'repo');
  git(repo, 'remote', 'add', 'origin', 'git@github.com:acme/widget.git');
  mkdirSync(path.join(root, 'plain'));
  git(root, 'init', '-q', '--bare', '-b', 'main', 'bare.git');
  d = await Daemon.start({ env: { HOME: home } });
  c = await d.client();
});

afterAll(async () => {
  await d.stop();
  rmSync(root, { recursive: true, force: true });
});

const wt = (name: string) => path.join(repo, '.claude', 'worktrees', name);

describe('git.info', () => {
  it('answers {isRepo, repo, branch, root, repoSlug, defaultBranch} in that order', async () => {
    const r = await c.call('git.info', { path: repo });
    expect(Object.keys(r)).toEqual(['isRepo', 'repo', 'branch', 'root', 'repoSlug', 'defaultBranch']);
    expect(r).toEqual({ isRepo: true, repo: 'repo', branch: 'main', root: repo, repoSlug: 'acme/widget', defaultBranch: '' });
  });

  it('reports the top level for a subdirectory, and the default branch from origin/HEAD', async () => {
    const other = makeRepo(root, 'other');
    mkdirSync(path.join(other, 'sub', 'deeper'), { recursive: true });
    git(other, 'remote', 'add', 'origin', 'https://github.com/acme/other.git');
    git(other, 'update-ref', 'refs/remotes/origin/trunk', 'HEAD');
    git(other, 'symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/trunk');
    expect(await c.call('git.info', { path: path.join(other, 'sub', 'deeper') })).toEqual({
      isRepo: true,
      repo: 'other',
      branch: 'main',
      root: other,
      repoSlug: 'acme/other',
      defaultBranch: 'trunk',
    });
  });

  it('names a detached HEAD detached:<short sha>, and gives no slug for a non-github origin', async () => {
    const det = makeRepo(root, 'detached');
    git(det, 'remote', 'add', 'origin', 'https://gitlab.com/acme/widget.git');
    git(det, 'checkout', '-q', '--detach');
    const sha = git(det, 'rev-parse', '--short', 'HEAD');
    expect(await c.call('git.info', { path: det })).toMatchObject({ branch: `detached:${sha}`, repoSlug: '' });
  });

  it('answers {isRepo:false, repoSlug:"", defaultBranch:""} for a plain directory, a bare repository and a missing path', async () => {
    for (const p of [path.join(root, 'plain'), path.join(root, 'bare.git'), path.join(repo, '.git'), path.join(root, 'missing')]) {
      const r = await c.call('git.info', { path: p });
      expect(Object.keys(r)).toEqual(['isRepo', 'repoSlug', 'defaultBranch']);
      expect(r).toEqual({ isRepo: false, repoSlug: '', defaultBranch: '' });
    }
  });
});

describe('git.list_branches', () => {
  it('lists local branches sorted', async () => {
    const r = await c.call('git.list_branches', { path: repo });
    expect(Object.keys(r)).toEqual(['isRepo', 'branches']);
    expect(r).toEqual({ isRepo: true, branches: ['feature', 'main'] });
  });

  it('counts a bare repository and the inside of .git as repositories, a plain directory not', async () => {
    expect(await c.call('git.list_branches', { path: path.join(root, 'bare.git') })).toEqual({ isRepo: true, branches: [] });
    expect(await c.call('git.list_branches', { path: path.join(repo, '.git') })).toEqual({ isRepo: true, branches: ['feature', 'main'] });
    expect(await c.call('git.list_branches', { path: path.join(root, 'plain') })).toEqual({ isRepo: false, branches: [] });
  });
});

describe('git.worktree_create, git.status, git.worktree_remove', () => {
  it('creates a worktree on a new branch from the current one', async () => {
    const r = await c.call('git.worktree_create', { baseRepo: repo, branchName: 'wt-a', worktreePath: wt('a') });
    expect(Object.keys(r)).toEqual(['success', 'path', 'sourceBranch']);
    expect(r).toEqual({ success: true, path: wt('a'), sourceBranch: 'main' });
    expect(readFileSync(path.join(wt('a'), 'README.md'), 'utf8')).toBe('hello\n');
    expect(git(wt('a'), 'branch', '--show-current')).toBe('wt-a');
    expect((await c.call('git.list_branches', { path: repo })).branches).toContain('wt-a');
  });

  it('reports a clean worktree, then every porcelain shape of a dirty one, leading spaces kept', async () => {
    expect(await c.call('git.status', { path: wt('a'), baseRepo: repo })).toEqual({ isRepo: true, clean: true });
    writeFileSync(path.join(wt('a'), 'README.md'), 'changed\n');
    writeFileSync(path.join(wt('a'), 'staged.txt'), 'two\n');
    git(wt('a'), 'add', 'staged.txt');
    mkdirSync(path.join(wt('a'), 'newdir'));
    writeFileSync(path.join(wt('a'), 'newdir', 'u.txt'), 'u\n');
    const r = await c.call('git.status', { path: wt('a'), baseRepo: repo });
    expect(Object.keys(r)).toEqual(['isRepo', 'clean', 'changes']);
    expect(r).toEqual({ isRepo: true, clean: false, changes: [' M README.md', 'M  staged.txt', '?? newdir/u.txt'] });
  });

  it('answers git.status only for a linked worktree of baseRepo', async () => {
    const notLinked = { isRepo: false, clean: false };
    expect(await c.call('git.status', { path: repo, baseRepo: repo })).toEqual(notLinked);
    expect(await c.call('git.status', { path: path.join(root, 'plain'), baseRepo: repo })).toEqual(notLinked);
    expect(await c.call('git.status', { path: wt('a'), baseRepo: path.join(root, 'plain') })).toEqual(notLinked);
    expect(await c.call('git.status', { path: wt('a'), baseRepo: path.join(root, 'missing') })).toEqual(notLinked);
    const other = makeRepo(root, 'status-other');
    expect(await c.call('git.status', { path: wt('a'), baseRepo: other })).toEqual(notLinked);
  });

  it('returns a change line of exactly 512 bytes whole and cuts a longer one, and at most 10,000 lines', async () => {
    expect([STATUS_ENTRY_MAX_BYTES, STATUS_MAX_ENTRIES]).toEqual([512, 10_000]);
    await c.call('git.worktree_create', { baseRepo: repo, branchName: 'wt-big', worktreePath: wt('big') });
    // "?? " + path: a path of 509 bytes makes a 512-byte line.
    const dir = path.join(wt('big'), 'd'.repeat(200), 'e'.repeat(200));
    mkdirSync(dir, { recursive: true });
    const exact = `${'d'.repeat(200)}/${'e'.repeat(200)}/${'x'.repeat(107)}`;
    writeFileSync(path.join(wt('big'), exact), '');
    let r = await c.call('git.status', { path: wt('big'), baseRepo: repo });
    expect(r.changes).toEqual([`?? ${exact}`]);
    expect(Buffer.byteLength(r.changes[0])).toBe(512);
    rmSync(path.join(wt('big'), exact));
    const longer = `${exact}y`;
    writeFileSync(path.join(wt('big'), longer), '');
    r = await c.call('git.status', { path: wt('big'), baseRepo: repo });
    expect(r.changes).toEqual([`?? ${exact}…`]);
    rmSync(path.join(wt('big'), 'd'.repeat(200)), { recursive: true });
    const many = path.join(wt('big'), 'many');
    mkdirSync(many);
    for (let i = 0; i <= STATUS_MAX_ENTRIES; i++) writeFileSync(path.join(many, `f${String(i).padStart(5, '0')}`), '');
    r = await c.call('git.status', { path: wt('big'), baseRepo: repo });
    expect(r.changes.length).toBe(STATUS_MAX_ENTRIES);
    expect(r.changes[STATUS_MAX_ENTRIES - 1]).toBe(`?? many/f${String(STATUS_MAX_ENTRIES - 1).padStart(5, '0')}`);
    rmSync(many, { recursive: true });
  });

  it('reads a worktree record of exactly 1 MiB and ignores one byte more', async () => {
    expect(WORKTREE_RECORD_MAX_BYTES).toBe(1 << 20);
    const entry = path.join(repo, '.git', 'worktrees', 'big', 'gitdir');
    const record = `${path.join(wt('big'), '.git')}\n`;
    writeFileSync(entry, record.padEnd(WORKTREE_RECORD_MAX_BYTES, ' '));
    expect(await c.call('git.status', { path: wt('big'), baseRepo: repo })).toEqual({ isRepo: true, clean: true });
    writeFileSync(entry, record.padEnd(WORKTREE_RECORD_MAX_BYTES + 1, ' '));
    expect(await c.call('git.status', { path: wt('big'), baseRepo: repo })).toEqual({ isRepo: false, clean: false });
    writeFileSync(entry, record);
  });

  it('requires baseRepo for git.status', async () => {
    expect((await c.request('git.status', { path: wt('a') })).error).toEqual({ code: -32602, message: 'baseRepo is required' });
    expect((await c.request('git.status', { path: wt('a'), baseRepo: '' })).error).toEqual({ code: -32602, message: 'baseRepo is required' });
  });

  it('starts from a sourceBranch that names a branch, and from HEAD otherwise', async () => {
    git(repo, 'checkout', '-q', 'feature');
    writeFileSync(path.join(repo, 'feature.txt'), 'f\n');
    git(repo, 'add', 'feature.txt');
    git(repo, 'commit', '-q', '-m', 'feature work');
    git(repo, 'checkout', '-q', 'main');
    expect(await c.call('git.worktree_create', { baseRepo: repo, branchName: 'wt-f', worktreePath: wt('f'), sourceBranch: 'feature' })).toEqual({
      success: true,
      path: wt('f'),
      sourceBranch: 'feature',
    });
    expect(existsSync(path.join(wt('f'), 'feature.txt'))).toBe(true);
    expect(
      await c.call('git.worktree_create', { baseRepo: repo, branchName: 'wt-n', worktreePath: wt('n'), sourceBranch: 'no-such-branch' }),
    ).toEqual({
      success: true,
      path: wt('n'),
      sourceBranch: 'main',
    });
    expect(existsSync(path.join(wt('n'), 'feature.txt'))).toBe(false);
  });

  it('requires branchName', async () => {
    expect((await c.request('git.worktree_create', { baseRepo: repo, worktreePath: wt('x') })).error).toEqual({
      code: -32602,
      message: 'branchName is required',
    });
  });

  it('answers not_a_repo for a baseRepo that is not a repository', async () => {
    expect(
      await c.call('git.worktree_create', { baseRepo: path.join(root, 'plain'), branchName: 'x', worktreePath: path.join(root, 'plain', 'x') }),
    ).toEqual({
      success: false,
      error: 'not a git repository',
      errorCode: 'not_a_repo',
    });
  });

  it('answers worktree_add_failed with git’s words when git refuses', async () => {
    const r = await c.call('git.worktree_create', { baseRepo: repo, branchName: 'feature', worktreePath: wt('dup') });
    expect(r).toEqual({
      success: false,
      error: "git worktree add failed: Preparing worktree (new branch 'feature') fatal: a branch named 'feature' already exists",
      errorCode: 'worktree_add_failed',
    });
    expect(existsSync(wt('dup'))).toBe(false);
  });

  it('refuses unsafe worktree paths with unsafe_path, creating nothing', async () => {
    const unsafe = async (worktreePath: string, error: string) => {
      expect(await c.call('git.worktree_create', { baseRepo: repo, branchName: 'never', worktreePath })).toEqual({
        success: false,
        error,
        errorCode: 'unsafe_path',
      });
    };
    await unsafe('rel/wt', `refusing to create worktree: rel/wt is a relative path; ${UNSAFE_TAIL}`);
    await unsafe(`${repo}/x/../wt`, `refusing to create worktree: ${repo}/x/../wt contains a ".." component; ${UNSAFE_TAIL}`);
    await unsafe(
      path.join(root, 'outside'),
      `refusing to create worktree: ${path.join(root, 'outside')} is not inside the repository ${repo}; ${OUTSIDE_TAIL}`,
    );
    await unsafe(repo, `refusing to create worktree: ${repo} is not inside the repository ${repo}; ${OUTSIDE_TAIL}`);
    await unsafe(wt('a'), `refusing to create worktree: ${wt('a')} already exists, and a new worktree is only ever created in a fresh directory`);
    mkdirSync(path.join(root, 'elsewhere'));
    symlinkSync(path.join(root, 'elsewhere'), path.join(repo, 'planted'));
    await unsafe(path.join(repo, 'planted', 'wt'), `refusing to create worktree: ${path.join(repo, 'planted')} ${SYMLINK_TAIL}`);
    expect(existsSync(path.join(root, 'elsewhere', 'wt'))).toBe(false);
    expect((await c.call('git.list_branches', { path: repo })).branches).not.toContain('never');
    expect(await c.call('git.worktree_create', { baseRepo: repo, branchName: 'never', worktreePath: '' })).toEqual({
      success: false,
      error: 'failed to create parent directory: "" does not name a directory',
      errorCode: 'mkdir_failed',
    });
  });

  it('expands ~ in baseRepo, path and worktreePath', async () => {
    expect(await c.call('git.info', { path: '~/repo' })).toMatchObject({ isRepo: true, root: repo });
    expect(await c.call('git.worktree_create', { baseRepo: '~/repo', branchName: 'wt-t', worktreePath: '~/repo/.claude/worktrees/t' })).toEqual({
      success: true,
      path: wt('t'),
      sourceBranch: 'main',
    });
    expect(await c.call('git.status', { path: '~/repo/.claude/worktrees/t', baseRepo: '~/repo' })).toEqual({ isRepo: true, clean: true });
    expect(await c.call('git.worktree_remove', { baseRepo: '~/repo', worktreePath: '~/repo/.claude/worktrees/t' })).toEqual({ success: true });
    expect(existsSync(wt('t'))).toBe(false);
  });

  it('removes a worktree, and answers success again once it is gone', async () => {
    expect(await c.call('git.worktree_remove', { baseRepo: repo, worktreePath: wt('a') })).toEqual({ success: true });
    expect(existsSync(wt('a'))).toBe(false);
    expect(git(repo, 'worktree', 'list')).not.toContain(wt('a'));
    expect(await c.call('git.worktree_remove', { baseRepo: repo, worktreePath: wt('a') })).toEqual({ success: true });
    expect(existsSync(path.join(repo, 'README.md'))).toBe(true);
  });

  it('refuses to remove what is not a worktree of baseRepo, a locked worktree, or through a symlink', async () => {
    const refused = async (worktreePath: string, error: string) => {
      expect(await c.call('git.worktree_remove', { baseRepo: repo, worktreePath })).toEqual({ success: false, error });
    };
    await refused(repo, `refusing to remove worktree: ${repo} is not inside the repository ${repo}; ${OUTSIDE_TAIL}`);
    await refused(
      path.join(root, 'plain'),
      `refusing to remove worktree: ${path.join(root, 'plain')} is not inside the repository ${repo}; ${OUTSIDE_TAIL}`,
    );
    await refused('rel', `refusing to remove worktree: rel is a relative path; ${UNSAFE_TAIL}`);
    mkdirSync(path.join(repo, 'not-a-worktree'));
    writeFileSync(path.join(repo, 'not-a-worktree', 'keep.txt'), 'k');
    await refused(
      path.join(repo, 'not-a-worktree'),
      `refusing to remove worktree: ${path.join(repo, 'not-a-worktree')} is not a worktree of ${repo} (${path.join(repo, 'not-a-worktree')} has no .git file), so it is left in place; remove it by hand if it is a leftover`,
    );
    expect(existsSync(path.join(repo, 'not-a-worktree', 'keep.txt'))).toBe(true);
    mkdirSync(path.join(root, 'elsewhere', 'victim'), { recursive: true });
    await refused(path.join(repo, 'planted', 'victim'), `refusing to remove worktree: ${path.join(repo, 'planted')} ${SYMLINK_TAIL}`);
    expect(existsSync(path.join(root, 'elsewhere', 'victim'))).toBe(true);
    git(repo, 'worktree', 'lock', wt('f'));
    await refused(wt('f'), `refusing to remove worktree: ${wt('f')} is locked (git worktree lock); unlock it to remove it`);
    expect(existsSync(path.join(wt('f'), 'feature.txt'))).toBe(true);
    // A worktree of another repository is not this repository's to remove.
    const other = makeRepo(path.join(repo, '.claude'), 'nested');
    git(other, 'worktree', 'add', '-q', path.join(repo, '.claude', 'worktrees', 'foreign'), '-b', 'foreign');
    await refused(
      wt('foreign'),
      `refusing to remove worktree: ${wt('foreign')} is not a worktree of ${repo} (git does not list it), so it is left in place; remove it by hand if it is a leftover`,
    );
    expect(existsSync(path.join(wt('foreign'), 'README.md'))).toBe(true);
  });
});

describe('the home directory under a repository (D2)', () => {
  let hd: Daemon;
  let hc: RpcClient;
  let outer: string;
  beforeAll(async () => {
    outer = makeRepo(root, 'outer');
    mkdirSync(path.join(outer, 'home'));
    writeFileSync(path.join(outer, 'home', 'keep.txt'), 'k');
    hd = await Daemon.start({ env: { HOME: path.join(outer, 'home') } });
    hc = await hd.client();
  });
  afterAll(() => hd.stop());

  it('refuses to create or remove a worktree at home or above it', async () => {
    const homeDir = path.join(outer, 'home');
    expect(await hc.call('git.worktree_create', { baseRepo: outer, branchName: 'h', worktreePath: '~' })).toEqual({
      success: false,
      error: `worktreePath must not be or contain the home directory: ${JSON.stringify(homeDir)}`,
      errorCode: 'unsafe_path',
    });
    expect(await hc.call('git.worktree_remove', { baseRepo: outer, worktreePath: homeDir })).toEqual({
      success: false,
      error: `worktreePath must not be or contain the home directory: ${JSON.stringify(homeDir)}`,
    });
    expect(readFileSync(path.join(homeDir, 'keep.txt'), 'utf8')).toBe('k');
  });

  it('also when home is reached through a symlinked spelling of the repository', async () => {
    const alias = path.join(root, 'outer-alias');
    symlinkSync(outer, alias);
    const viaAlias = path.join(alias, 'home');
    expect(await hc.call('git.worktree_remove', { baseRepo: alias, worktreePath: viaAlias })).toEqual({
      success: false,
      error: `worktreePath must not be or contain the home directory: ${JSON.stringify(viaAlias)}`,
    });
    expect(readFileSync(path.join(outer, 'home', 'keep.txt'), 'utf8')).toBe('k');
  });
});

describe('-git-timeout', () => {
  let td: Daemon;
  let tc: RpcClient;
  let slowRepo: string;
  beforeAll(async () => {
    // A git that hangs on for-each-ref and worktree add, and is the real git otherwise.
    const bin = path.join(root, 'slow-bin');
    mkdirSync(bin);
    const realGit = execFileSync('bash', ['-c', 'command -v git']).toString().trim();
    writeFileSync(
      path.join(bin, 'git'),
      `#!/bin/sh\nfor a in "$@"; do case "$a" in for-each-ref|add) exec sleep 20;; esac; done\nexec ${realGit} "$@"\n`,
    );
    chmodSync(path.join(bin, 'git'), 0o755);
    slowRepo = makeRepo(root, 'slow');
    td = await Daemon.start({ args: ['-git-timeout', '3s'], env: { PATH: `${bin}:${process.env.PATH}` } });
    tc = await td.client();
  });
  afterAll(() => td.stop());

  it('kills a git call past the deadline, answering signal: killed, while other requests are served', async () => {
    const listing = tc.request('git.list_branches', { path: slowRepo });
    let listed = false;
    void listing.then(() => (listed = true));
    expect(await tc.call('server.ping')).toEqual({ pong: true });
    expect(await tc.call('git.info', { path: slowRepo })).toMatchObject({ isRepo: true, branch: 'main' });
    expect(listed).toBe(false);
    expect((await listing).error).toEqual({ code: -32603, message: 'signal: killed' });
  });

  it('answers errorCode timeout when worktree add is killed', async () => {
    expect(await tc.call('git.worktree_create', { baseRepo: slowRepo, branchName: 'w', worktreePath: path.join(slowRepo, 'wt') })).toEqual({
      success: false,
      error: 'git worktree add timed out after 3s; no cleanup was attempted, and git may have partially created the worktree',
      errorCode: 'timeout',
    });
  });
});

describe('params', () => {
  it('types every field of the namespace (D9)', async () => {
    expect((await c.request('git.info', { path: repo, branchName: 1 })).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('git.status', { path: repo, baseRepo: [1, 2] })).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect((await c.request('git.list_branches')).error).toEqual({ code: -32602, message: 'Invalid params' });
  });
});
