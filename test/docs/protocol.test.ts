/**
 * Keeps PROTOCOL.md and README.md in step with the code: every served method, every catalogue error text, every
 * result-level failure text, every limit constant, every feature and every flag must be documented. Each failure
 * says what to add where.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../src/protocol/errors.js';
import { FAILURE_TEMPLATES, type FailureGroup, failureDocText } from '../../src/protocol/failures.js';
import { BIN, Daemon, ROOT } from '../helpers/daemon.js';
import { inUnit, LIMITS, type LimitRow } from './limits.js';

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

/** The heading under which each group of result-level failures is documented. */
const FAILURE_SECTIONS: Readonly<Record<FailureGroup, string>> = {
  extractTar: '### `files.extract_tar`',
  extractTarStream: '### `files.extract_tar`',
  worktreeCreate: '### `git.worktree_create`',
  worktreeRemove: '### `git.worktree_remove`',
  cliError: '### cliError catalogue',
  download: '### cliError catalogue',
  os: '### cliError catalogue',
  decompress: '## -install and -probe-cli',
  installUsage: '## -install and -probe-cli',
};

/** The text from `heading` to the next heading of the same or a higher level. */
function section(heading: string): string {
  const lines = protocol.split('\n');
  const start = lines.indexOf(heading);
  if (start === -1) return '';
  const level = heading.indexOf(' ');
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(' ') <= level);
  return lines.slice(start, end === -1 ? undefined : end).join('\n');
}

describe('PROTOCOL.md result-level failures', () => {
  it('has a section for every group', () => {
    const missing = Object.values(FAILURE_SECTIONS).filter((h) => section(h) === '');
    expect(missing, `PROTOCOL.md lacks these headings: ${missing.join(', ')}`).toEqual([]);
  });

  it('contains every failure template verbatim in its section, a worktree_create one beside its errorCode', () => {
    const missing: string[] = [];
    for (const { group, key, template, errorCode } of FAILURE_TEMPLATES) {
      const text = `\`${failureDocText(template)}\``;
      const body = section(FAILURE_SECTIONS[group]);
      const found = errorCode === undefined ? body.includes(text) : body.split('\n').some((l) => l.includes(text) && l.includes(`\`${errorCode}\``));
      if (!found) missing.push(`${group}.${key}: ${text}${errorCode === undefined ? '' : ` with \`${errorCode}\``}`);
    }
    expect(missing, `add to PROTOCOL.md (under each group's heading, ${JSON.stringify(FAILURE_SECTIONS)}):\n${missing.join('\n')}`).toEqual([]);
  });
});

interface DocTable {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** The first table after the line `marker`. */
function tableAfter(marker: string): DocTable {
  const lines = protocol.split('\n');
  const at = lines.indexOf(marker);
  if (at === -1) return { header: [], rows: [] };
  let i = at + 1;
  while (i < lines.length && !lines[i]!.startsWith('|')) i++;
  const table: string[][] = [];
  for (; i < lines.length && lines[i]!.startsWith('|'); i++) {
    table.push(
      lines[i]!.slice(1, lines[i]!.endsWith('|') ? -1 : undefined)
        .split('|')
        .map((c) => c.trim()),
    );
  }
  const [header = [], , ...rows] = table;
  return { header, rows };
}

describe('PROTOCOL.md limits tables', () => {
  const tables = new Map<LimitRow['table'], DocTable>(LIMITS.map((l) => [l.table, tableAfter(l.table)]));

  it('are where the limit rows say, with limit, default and boundary columns', () => {
    for (const [marker, t] of tables) expect(t.header, `the table after "${marker}"`).toEqual(['limit', 'default', 'boundary']);
  });

  it('state every limit constant in its row', () => {
    const wrong: string[] = [];
    for (const l of LIMITS) {
      const t = tables.get(l.table)!;
      const row = t.rows.find((r) => r[0] === l.row);
      if (row === undefined) {
        wrong.push(`${l.name}: no row "${l.row}" in the table after "${l.table}"`);
        continue;
      }
      const cell = (row[t.header.indexOf(l.column)] ?? '').replace(/,/g, '');
      // Digits, letters and spaces only: safe in a pattern. A longer number (16 MiB for 6 MiB) does not count.
      const shown = inUnit(l.value, l.unit);
      const says = shown !== undefined && new RegExp(`(^|[^\\d.])${shown}(?!\\d)`).test(cell);
      if (!says) {
        const want = shown ?? `a whole number of ${l.unit}`;
        wrong.push(`${l.name} = ${l.value}: the ${l.column} of "${l.row}" should say ${want} (commas aside)`);
      }
    }
    expect(wrong, `PROTOCOL.md's limits tables disagree with the code:\n${wrong.join('\n')}`).toEqual([]);
  });

  it('have no row without a constant behind it', () => {
    const bare: string[] = [];
    for (const [marker, t] of tables) {
      for (const [row] of t.rows) if (!LIMITS.some((l) => l.table === marker && l.row === row)) bare.push(`${marker}: ${row}`);
    }
    expect(bare, `name the constant behind these rows in test/docs/limits.ts:\n${bare.join('\n')}`).toEqual([]);
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
