/**
 * Keeps PROTOCOL.md and README.md in step with the code: every served method, every catalogue error text, every
 * feature and every flag must be documented. Each failure says what to add where.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../src/protocol/errors.js';
import { BIN, Daemon, ROOT } from '../helpers/daemon.js';

const protocol = readFileSync(path.join(ROOT, 'PROTOCOL.md'), 'utf8');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** Flag names as `claustrum -help` prints them. */
function helpFlags(): string[] {
  const help = execFileSync(process.execPath, [BIN, '-help'], { encoding: 'utf8' });
  return [...help.matchAll(/^ {2}-([a-z][a-z0-9-]*)/gm)].map((m) => m[1]!);
}

describe('PROTOCOL.md', () => {
  let d: Daemon;
  let caps: { methods: string[]; features: string[] };
  beforeAll(async () => {
    d = await Daemon.start();
    caps = await (await d.client()).call('server.capabilities');
  });
  afterAll(() => d.stop());

  it('has a section for every method server.capabilities lists', () => {
    const missing = caps.methods.filter((m) => !protocol.includes(`### \`${m}\``));
    expect(missing, `add a "### \`<method>\`" section to PROTOCOL.md for: ${missing.join(', ')}`).toEqual([]);
  });

  it('names no method the daemon does not serve', () => {
    const documented = [...protocol.matchAll(/^### `([a-z]+\.[A-Za-z_]+)`/gm)].map((m) => m[1]!);
    const extra = documented.filter((m) => !caps.methods.includes(m));
    expect(extra, `PROTOCOL.md documents methods the daemon does not serve: ${extra.join(', ')}`).toEqual([]);
  });

  it('lists methods in server.capabilities order', () => {
    const documented = [...protocol.matchAll(/^### `([a-z]+\.[A-Za-z_]+)`/gm)].map((m) => m[1]!);
    expect(documented).toEqual(caps.methods);
  });

  it('names every feature server.capabilities advertises', () => {
    const missing = caps.features.filter((f) => !protocol.includes(`\`${f}\``));
    expect(missing, `mention these features in PROTOCOL.md: ${missing.join(', ')}`).toEqual([]);
  });

  it('contains every error text of the catalogue verbatim, with its code', () => {
    for (const [key, { code, message }] of Object.entries(CATALOGUE)) {
      expect(protocol.includes(`\`${message}\``), `PROTOCOL.md lacks the error text of ${key}: \`${message}\``).toBe(true);
      expect(protocol.includes(String(code)), `PROTOCOL.md lacks the error code ${code}`).toBe(true);
    }
  });
});

describe('flags', () => {
  const flags = helpFlags();

  it('are all in -help (sanity)', () => {
    expect(flags).toContain('serve');
    expect(flags).toContain('socket');
  });

  it('are all documented in PROTOCOL.md and README.md', () => {
    const missingP = flags.filter((f) => !protocol.includes(`\`-${f}`));
    const missingR = flags.filter((f) => !readme.includes(`-${f}`));
    expect(missingP, `document these flags in PROTOCOL.md: ${missingP.join(', ')}`).toEqual([]);
    expect(missingR, `document these flags in README.md: ${missingR.join(', ')}`).toEqual([]);
  });
});

describe('README.md', () => {
  it('opens with the two commands for a fresh machine', () => {
    const blocks = [...readme.matchAll(/```(?:sh|bash)?\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    expect(blocks[0]).toBe('npm install && npm start');
    expect(blocks[1]).toBe('npm test');
  });
});
