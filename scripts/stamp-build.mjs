// Records the version and build time that `claustrum -version` prints, next to the compiled code.
import { readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
writeFileSync(
  new URL('../dist/build-info.json', import.meta.url),
  `${JSON.stringify({ version: pkg.version, builtAt: new Date().toISOString() })}\n`,
);
