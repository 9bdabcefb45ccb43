// Records the version, commit and build time that `claustrum -version`, `-status` and /info print, next to the
// compiled code. The commit is absent when the build does not run in a git checkout (a tarball build).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
let commit;
try {
  commit = execFileSync('git', ['rev-parse', 'HEAD'], {
    cwd: new URL('..', import.meta.url),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim();
} catch {
  commit = undefined;
}
writeFileSync(
  new URL('../dist/build-info.json', import.meta.url),
  `${JSON.stringify({ version: pkg.version, builtAt: new Date().toISOString(), ...(commit ? { commit } : {}) })}\n`,
);
