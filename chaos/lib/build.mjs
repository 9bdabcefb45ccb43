// The second build directory an upgrade starts the daemon from: a copy of dist/ and package.json in the run's
// directory, node_modules linked, and a build-info.json with a version of its own, so the daemon that answers after
// an "upgrade" is provably the other build (server.info says which), as an editor's updated server would be.
import { cpSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The version suffix of the upgrade build (its server.info `version` ends with it). */
export const UPGRADE_SUFFIX = '+chaos-upgrade';

/** Copies `root`'s build into `target`; returns its executable (target/dist/cmd/claustrum.js). */
export function prepareUpgradeBuild(root, target) {
  cpSync(path.join(root, 'dist'), path.join(target, 'dist'), { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(target, 'package.json'));
  symlinkSync(path.join(root, 'node_modules'), path.join(target, 'node_modules'));
  const infoPath = path.join(target, 'dist/build-info.json');
  const info = JSON.parse(readFileSync(infoPath, 'utf8'));
  writeFileSync(infoPath, `${JSON.stringify({ ...info, version: `${info.version}${UPGRADE_SUFFIX}` })}\n`);
  return path.join(target, 'dist/cmd/claustrum.js');
}
