/**
 * The published tarball (`npm pack --dry-run`): it carries README, PROTOCOL.md, SECURITY.md and LICENSE, the build
 * stamp the executable reads, and no source map naming a file the tarball does not ship.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon.js';

describe('npm pack', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));

  it('ships the documents, the license and the build stamp', () => {
    for (const f of [
      'README.md',
      'PROTOCOL.md',
      'SECURITY.md',
      'LICENSE',
      'package.json',
      'dist/cmd/claustrum.js',
      'dist/build-info.json',
      'dist/src/client/index.js',
    ]) {
      expect(files.has(f), f).toBe(true);
    }
    expect(readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toContain('Apache License\n                           Version 2.0');
  });

  it('ships the file behind every source map and every map a script points to', () => {
    const maps = [...files].filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(path.join(ROOT, map), 'utf8')) as { sources: string[] };
      for (const s of sources) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(map), s));
        if (!files.has(target)) missing.push(`${map} → ${target}`);
      }
    }
    for (const js of [...files].filter((f) => f.endsWith('.js'))) {
      const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(path.join(ROOT, js), 'utf8'));
      if (m && !files.has(path.posix.join(path.posix.dirname(js), m[1]!))) missing.push(`${js} → ${m[1]}`);
    }
    expect(missing).toEqual([]);
  });
});
