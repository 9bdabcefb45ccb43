/**
 * The git runner's bounds, exercised on ordinary commands through the same code path git takes.
 */
import { describe, expect, it } from 'vitest';
import { execErrorText, GIT_MAX_OUTPUT_BYTES, GIT_WAIT_DELAY_MS, runCommand, runGit } from '../../src/git/run.js';
import { gitFailureText, GIT_TEXT_MAX_BYTES } from '../../src/git/worktree.js';
import { until } from '../helpers/daemon.js';
import { processLive } from '../helpers/procfs.js';

const node = (script: string) => [process.execPath, ['-e', script]] as const;

describe('runCommand', () => {
  it('keeps exactly maxOutputBytes of output and marks one byte more as truncated', async () => {
    const [file, args] = node('process.stdout.write("x".repeat(100))');
    const exact = await runCommand(file, args, { timeoutMs: 0, maxOutputBytes: 100 });
    expect(exact).toMatchObject({ ok: true, truncated: false });
    expect(exact.stdout.length).toBe(100);
    const over = await runCommand(file, args, { timeoutMs: 0, maxOutputBytes: 99 });
    expect(over).toMatchObject({ ok: true, truncated: true });
    expect(over.stdout.length).toBe(99);
    expect(GIT_MAX_OUTPUT_BYTES).toBe(16 * 1024 * 1024);
  });

  it('reports a failed exit and a signal in Go’s words', async () => {
    const [file, args] = node('process.exit(3)');
    const r = await runCommand(file, args, { timeoutMs: 0 });
    expect(r.ok).toBe(false);
    expect(execErrorText(r.failure!)).toBe('exit status 3');
    const [f2, a2] = node('process.kill(process.pid, "SIGTERM")');
    expect(execErrorText((await runCommand(f2, a2, { timeoutMs: 0 })).failure!)).toBe('signal: terminated');
  });

  it('kills the whole process group when the deadline fires', async () => {
    const [file, args] = node(
      'const c = require("child_process").spawn("sleep", ["30"], { stdio: "ignore" }); console.log(c.pid); setInterval(() => {}, 1000);',
    );
    const r = await runCommand(file, args, { timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(execErrorText(r.failure!)).toBe('signal: killed');
    const grandchild = Number(r.stdout.toString().trim());
    await until(() => !processLive(grandchild), 5000, 'the grandchild to die with the group');
  });

  it('does not wait forever for output a descendant keeps open after the command exits', async () => {
    const [file, args] = node('require("child_process").spawn("sleep", ["30"], { stdio: ["ignore", "inherit", "inherit"] }); process.exit(0)');
    const r = await runCommand(file, args, { timeoutMs: 0, waitDelayMs: 100 });
    expect(r.ok).toBe(true);
    expect(GIT_WAIT_DELAY_MS).toBe(5000);
  });

  it('names a missing executable as Go’s LookPath does', async () => {
    const r = await runCommand('no-such-git-binary', [], { timeoutMs: 0 });
    expect(execErrorText(r.failure!)).toBe('exec: "no-such-git-binary": executable file not found in $PATH');
  });
});

describe('runGit', () => {
  it('runs git in the named directory with hooks and fsmonitor off', async () => {
    const r = await runGit('/', ['config', '--get', 'core.hooksPath'], { timeoutMs: 0 });
    expect(r.stdout.toString().trim()).toBe('/dev/null');
    const f = await runGit('/', ['config', '--get', 'core.fsmonitor'], { timeoutMs: 0 });
    expect(f.stdout.toString().trim()).toBe('false');
  });
});

describe('the text rule for git’s words in a failure', () => {
  const result = (stderr: Buffer) => ({
    ok: false,
    failure: { kind: 'exit' as const, status: 128 },
    stdout: Buffer.alloc(0),
    stderr,
    timedOut: false,
    truncated: false,
  });

  it('turns each non-printable character into one space, drops invalid UTF-8 and trims', () => {
    expect(gitFailureText(result(Buffer.from('\n  fatal: bad\r\nthing\t\xff end  \n', 'latin1')))).toBe('fatal: bad  thing  end');
    expect(gitFailureText(result(Buffer.from([0x66, 0xff, 0x61, 0x0a, 0x62])))).toBe('fa b');
  });

  it('quotes at most 512 bytes, and falls back to the exec error when nothing is left', () => {
    expect(GIT_TEXT_MAX_BYTES).toBe(512);
    expect(gitFailureText(result(Buffer.from('y'.repeat(600))))).toBe('y'.repeat(512));
    expect(gitFailureText(result(Buffer.from('  \n\t')))).toBe('exit status 128');
  });
});
