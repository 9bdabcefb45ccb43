/**
 * docs/audit-design.md stays in step with the code: every method of the redaction table, every wire error text the
 * audit adds, every metric name and every -serve flag is there.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_SERVE_FLAGS } from '../../src/audit/cli.js';
import { AUDIT_METRICS } from '../../src/audit/metrics.js';
import { REDACTION } from '../../src/audit/record.js';
import { CATALOGUE } from '../../src/protocol/errors.js';
import { ROOT } from '../helpers/daemon.js';

const doc = readFileSync(path.join(ROOT, 'docs/audit-design.md'), 'utf8');

describe('docs/audit-design.md', () => {
  it('lists every method of the redaction table', () => {
    const missing = Object.keys(REDACTION).filter((m) => !doc.includes(`\`${m}\``));
    expect(missing, 'add these methods to the table "What is kept of params and results"').toEqual([]);
  });

  it('gives every error text the audit adds, with its code', () => {
    for (const { code, message } of [CATALOGUE.auditUnavailable, CATALOGUE.invalidCaller, CATALOGUE.callerAlreadyDeclared]) {
      expect(doc, message).toContain(`| ${code} | \`${message}\``);
    }
  });

  it('names every metric and every -serve flag', () => {
    for (const name of Object.values(AUDIT_METRICS)) expect(doc, name).toContain(`\`${name}`);
    for (const f of AUDIT_SERVE_FLAGS) expect(doc, f.name).toContain(`\`-${f.name} `);
  });
});
