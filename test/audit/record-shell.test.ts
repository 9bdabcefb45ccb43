/**
 * The shell recipe of docs/audit-design.md verifies a record's hash for real: the chain needs no JSON library.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/audit/record.js';

describe('the chain hash', () => {
  it('is what sha256sum gives over prev then the body, as the design document shows', () => {
    const { line, hash } = encodeRecord(
      { kind: 'stop', reason: 'shutdown' },
      { seq: 7, ts: '2025-01-02T03:04:05.678Z', log: 'a'.repeat(32), prev: 'f'.repeat(64) },
    );
    // The shell recipe of docs/audit-design.md, run for real.
    const shell = execFileSync(
      'sh',
      [
        '-c',
        `line=$(cat); body="\${line%,\\"hash\\":*}}"; prev=$(printf '%s' "$body" | sed 's/.*"prev":"\\([0-9a-f]*\\)".*/\\1/'); printf '%s%s' "$prev" "$body" | sha256sum | cut -c1-64`,
      ],
      { input: line.trimEnd(), encoding: 'utf8' },
    ).trim();
    expect(shell).toBe(hash);
  });
});
