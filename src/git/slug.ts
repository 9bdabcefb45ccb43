/**
 * git.info's `repoSlug`: `owner/repo` from `remote.origin.url`, only for a canonical github.com remote
 * (claustrum PROTOCOL, git.info; the reference's 42-shape table):
 *  - scheme https, http, ssh, git, or none (scp-like `[user@]host:owner/repo`); `git+ssh://`, `file://` and the rest
 *    give "".
 *  - host exactly github.com in any letter case, no port, userinfo ignored.
 *  - exactly two non-empty path segments after one optional trailing `/` and then one optional `.git`.
 *  - owner: letters and digits with hyphens only inside; repo: letters, digits, `.`, `_`, `-`, not starting with
 *    `-`, not `.` or `..`, not ending in lowercase `.wiki`.
 */

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const REPO = /^[A-Za-z0-9._-]+$/;
const SCHEMES = new Set(['https', 'http', 'ssh', 'git']);

export function repoSlug(url: string): string {
  let host: string;
  let rest: string;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (scheme) {
    if (!SCHEMES.has(scheme[1]!.toLowerCase())) return '';
    const afterScheme = url.slice(scheme[0].length);
    const slash = afterScheme.indexOf('/');
    const authority = slash === -1 ? afterScheme : afterScheme.slice(0, slash);
    host = authority.slice(authority.lastIndexOf('@') + 1);
    rest = slash === -1 ? '' : afterScheme.slice(slash + 1);
  } else {
    // scp-like: a colon before any slash.
    const colon = url.indexOf(':');
    const slash = url.indexOf('/');
    if (colon === -1 || (slash !== -1 && slash < colon)) return '';
    const authority = url.slice(0, colon);
    host = authority.slice(authority.lastIndexOf('@') + 1);
    rest = url.slice(colon + 1);
  }
  if (host.toLowerCase() !== 'github.com') return '';
  let p = rest;
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (p.endsWith('.git')) p = p.slice(0, -4);
  const parts = p.split('/');
  if (parts.length !== 2) return '';
  const [owner, repo] = parts as [string, string];
  if (!OWNER.test(owner)) return '';
  if (!REPO.test(repo) || repo.startsWith('-') || repo === '.' || repo === '..' || repo.endsWith('.wiki')) return '';
  return `${owner}/${repo}`;
}
