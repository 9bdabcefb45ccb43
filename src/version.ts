/** The version, commit and build time of this build, stamped by scripts/stamp-build.mjs. Read once, at start-up. */
import { readFileSync } from 'node:fs';

interface BuildInfo {
  readonly version: string;
  readonly builtAt: string;
  /** The git commit built, when the build ran in a checkout. */
  readonly commit?: string;
}

function load(): BuildInfo {
  try {
    return JSON.parse(readFileSync(new URL('../build-info.json', import.meta.url), 'utf8')) as BuildInfo;
  } catch {
    return { version: '0.0.0-dev', builtAt: 'unknown' };
  }
}

export const BUILD: BuildInfo = load();
