/**
 * The failure catalogue's own rules: how templates render, how they read in PROTOCOL.md, and that every template is
 * well formed (the docs test relies on that). The type checks run under `npm run typecheck`.
 */
import { describe, expect, it } from 'vitest';
import {
  FAILURE_TEMPLATES,
  FAILURES,
  type FailureTemplateText,
  failureDocText,
  failureText,
  renderFailure,
  worktreeCreateFailure,
} from '../../src/protocol/failures.js';
import type { WorktreeErrorCode } from '../../src/protocol/messages.js';

describe('renderFailure', () => {
  it('fills plain and quoted placeholders and unescapes \\<', () => {
    expect(renderFailure('a <x> "<y>" \\<z> <x>', { x: 1, y: '"q"' })).toBe('a 1 "q" <z> 1');
    expect(renderFailure('no slots')).toBe('no slots');
  });

  it('types a template: its placeholders are the required arguments, a quoted one takes a Quoted value', () => {
    // @ts-expect-error a missing placeholder
    renderFailure('a <x> <y>', { x: 'v' });
    // @ts-expect-error an unquoted value for "<y>"
    renderFailure('a "<y>"', { y: 'v' });
    // @ts-expect-error an escaped placeholder is not an argument
    renderFailure('a \\<y>', { y: 'v' });
    // @ts-expect-error a template without placeholders takes none
    failureText('extractTar', 'gzipEof', {});
    // @ts-expect-error a key of another group (and at run time there is no such entry)
    expect(() => failureText('extractTar', 'notARepo')).toThrow(TypeError);
    expect(failureText('extractTar', 'unsafePath', { entry: '../x' })).toBe('unsafe path in archive: ../x');
  });

  it('has exactly the errorCodes the wire type of git.worktree_create names', () => {
    type Catalogued = (typeof FAILURES)['worktreeCreate'][keyof (typeof FAILURES)['worktreeCreate']]['errorCode'];
    const same: [Catalogued] extends [WorktreeErrorCode] ? ([WorktreeErrorCode] extends [Catalogued] ? 'same' : 'fewer') : 'more' = 'same';
    expect(same).toBe('same');
  });

  it('gives a worktree_create failure its errorCode, error first', () => {
    const f = worktreeCreateFailure('addFailed', { gitText: 'fatal: no' });
    expect(Object.keys(f)).toEqual(['error', 'errorCode']);
    expect(f).toEqual({ error: 'git worktree add failed: fatal: no', errorCode: 'worktree_add_failed' });
  });
});

describe('the catalogue', () => {
  it('holds each template as one literal, so its slots are typed', () => {
    // A text joined with `+` is typed `string`: its placeholders would need no arguments and go unchecked.
    const literal: string extends FailureTemplateText ? 'concatenated' : 'literal' = 'literal';
    expect(literal).toBe('literal');
  });

  it('lists every entry once', () => {
    const count = Object.values(FAILURES).reduce((n, group) => n + Object.keys(group).length, 0);
    expect(FAILURE_TEMPLATES).toHaveLength(count);
    expect(FAILURE_TEMPLATES.filter((t) => t.group === 'worktreeCreate').every((t) => t.errorCode !== undefined)).toBe(true);
  });

  it('has only well-formed placeholders: a name of letters, each used either quoted or plain', () => {
    for (const { group, key, template } of FAILURE_TEMPLATES) {
      const where = `${group}.${key}`;
      const unescaped = template.replace(/\\</g, '');
      // Every remaining `<` opens a placeholder of letters closed by `>`.
      expect(unescaped.replace(/<[A-Za-z]+>/g, '').includes('<'), `${where}: a stray "<"`).toBe(false);
      const quoted = new Set([...unescaped.matchAll(/"<([A-Za-z]+)>"/g)].map((m) => m[1]));
      const plain = new Set([...unescaped.replace(/"<[A-Za-z]+>"/g, '').matchAll(/<([A-Za-z]+)>/g)].map((m) => m[1]));
      expect(
        [...quoted].filter((n) => plain.has(n)),
        `${where}: a name used both quoted and plain`,
      ).toEqual([]);
    }
  });

  it('reads in PROTOCOL.md form with <name> placeholders', () => {
    expect(failureDocText(FAILURES.worktreeRemove.outsideRepo)).toBe(
      'refusing to remove worktree: <p> is not inside the repository <repo>; session worktrees are only created and removed under <repository>/.claude/worktrees',
    );
    expect(failureDocText(FAILURES.extractTar.destDirNotAbsolute)).toBe('destDir must be an absolute, non-root path: "<destDir>"');
  });
});
