/**
 * The structure ARCHITECTURE.md describes, kept true by test: the import boundaries of the data path, and every file
 * the document names exists.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(ROOT, dir))) {
    const rel = path.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) out.push(...filesUnder(rel));
    else if (name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** Every module a source file imports (static, dynamic and type-only), resolved to a repository path when relative. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.map((s) => (s.startsWith('.') ? path.normalize(path.join(path.dirname(file), s)).replace(/\.js$/, '.ts') : s));
}

function offenders(files: string[], allowed: (spec: string) => boolean): string[] {
  return files.flatMap((f) =>
    importsOf(f)
      .filter((s) => !allowed(s))
      .map((s) => `${f} imports ${s}`),
  );
}

const external = (s: string) => !s.startsWith('src/') && !s.startsWith('cmd/') && !s.startsWith('..');

describe('import boundaries', () => {
  it('the client library imports only the protocol core and its own files', () => {
    const bad = offenders(filesUnder('src/client'), (s) => external(s) || s.startsWith('src/client/') || s.startsWith('src/protocol/'));
    expect(bad, 'src/client may import src/protocol and src/client only (it is published on its own)').toEqual([]);
  });

  it('the protocol core imports nothing else under src/', () => {
    const bad = offenders(filesUnder('src/protocol'), (s) => external(s) || s.startsWith('src/protocol/'));
    expect(bad, 'src/protocol is shared by the daemon and the client: it must not depend on either').toEqual([]);
  });

  it('the connection knows subscriptions, not processes; transports know no methods', () => {
    expect(importsOf('src/server/rpc/connection.ts').filter((s) => s.startsWith('src/process/'))).toEqual([]);
    const transports = filesUnder('src/server/transport');
    expect(offenders(transports, (s) => !s.startsWith('src/server/rpc/methods/') && !s.startsWith('src/process/'))).toEqual([]);
  });

  it('the replay layer knows neither processes nor sockets', () => {
    const bad = offenders(filesUnder('src/replay'), (s) => !s.startsWith('src/process/') && !s.startsWith('src/server/') && s !== 'node:net');
    expect(bad).toEqual([]);
  });

  it('the keeper knows no socket of a client, no RPC, no metrics: it changes rarely and outlives daemons', () => {
    const bad = offenders(
      filesUnder('src/keeper'),
      (s) => !['src/server/', 'src/client/', 'src/metrics/', 'src/console/', 'src/files/', 'src/git/', 'src/cli/'].some((p) => s.startsWith(p)),
    );
    expect(bad, 'src/keeper must not import the daemon side').toEqual([]);
  });

  it('src/server holds its transports and its RPC layer in folders, and only an index at its top level', () => {
    const top = readdirSync(path.join(ROOT, 'src/server')).filter((n) => !statSync(path.join(ROOT, 'src/server', n)).isDirectory());
    expect(top).toEqual(['index.ts']);
    expect(readdirSync(path.join(ROOT, 'src/server')).sort()).toEqual(['index.ts', 'rpc', 'transport']);
  });
});

describe('ARCHITECTURE.md', () => {
  const doc = readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8');

  it('names only files and folders that exist', () => {
    const named = [...doc.matchAll(/`((?:src|cmd|test|bench|scripts|deploy|docs|console)\/[^`\s]*)`/g)].map((m) => m[1]!.replace(/[/:]$/, ''));
    expect(named.length).toBeGreaterThan(20);
    const missing = named.filter((p) => {
      try {
        statSync(path.join(ROOT, p));
        return false;
      } catch {
        return true;
      }
    });
    expect(missing, 'ARCHITECTURE.md names paths that do not exist').toEqual([]);
  });

  it('has a row for every source folder', () => {
    const folders = readdirSync(path.join(ROOT, 'src')).filter((n) => statSync(path.join(ROOT, 'src', n)).isDirectory());
    const missing = folders.filter((f) => !doc.includes(`\`src/${f}/`));
    expect(missing, 'add these folders to the table in ARCHITECTURE.md').toEqual([]);
  });
});
