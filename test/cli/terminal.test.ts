/**
 * `claustrum -run -t` and `claustrum -attach` driven the way a person uses them: in a real terminal (tmux, on a
 * private socket: send-keys types, capture-pane reads the screen), through a fault proxy that cuts the connection.
 * Every wait is bounded; nothing here measures time.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_FILE } from '../../src/protocol/paths.js';
import { CuttingProxy } from '../client/proxy.js';
import { BIN, Daemon, FIXTURES, until } from '../helpers/daemon.js';

const run = promisify(execFile);

/** One tmux server on a socket of its own, one window. */
class Tmux {
  readonly #socket: string;
  constructor(dir: string) {
    this.#socket = path.join(dir, 'tmux.sock');
  }

  async tmux(...args: string[]): Promise<string> {
    const { stdout } = await run('tmux', ['-S', this.#socket, ...args], { env: { ...process.env, TMUX: '' } });
    return stdout;
  }

  /** A window of cols x rows running a plain sh whose prompt is `outer$ `. */
  async start(cols: number, rows: number): Promise<void> {
    await this.tmux('-f', '/dev/null', 'new-session', '-d', '-s', 't', '-x', String(cols), '-y', String(rows), "env PS1='outer$ ' sh");
    await this.waitFor(/^outer\$$/m);
  }

  /** Types `text` as it is, then Enter when asked. */
  async type(text: string, enter = true): Promise<void> {
    await this.tmux('send-keys', '-t', 't', '-l', text);
    if (enter) await this.tmux('send-keys', '-t', 't', 'Enter');
  }

  /** Presses keys by tmux's names (C-a, Enter). */
  async press(...keys: string[]): Promise<void> {
    await this.tmux('send-keys', '-t', 't', ...keys);
  }

  /** The visible rows, right-trimmed; `joined` joins rows that wrapped. */
  async screen(joined = false): Promise<string[]> {
    const out = await this.tmux('capture-pane', '-p', ...(joined ? ['-J'] : []), '-t', 't');
    return out
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => l.trimEnd());
  }

  async waitFor(pattern: RegExp, ms = 20_000): Promise<string> {
    let last = '';
    try {
      return await until(
        async () => {
          last = (await this.screen(true)).join('\n');
          return pattern.test(last) ? last : undefined;
        },
        ms,
        `${pattern}`,
      );
    } catch {
      throw new Error(`the screen never showed ${pattern}; it shows:\n${last}`);
    }
  }

  async kill(): Promise<void> {
    await this.tmux('kill-server').catch(() => {});
  }
}

let d: Daemon;
let proxy: CuttingProxy;
let tmux: Tmux;
beforeAll(async () => {
  d = await Daemon.start({ args: ['-no-login-path'] });
  proxy = await CuttingProxy.start(d.socket);
  // The CLI finds the token beside the socket it is given: the proxy's.
  writeFileSync(path.join(proxy.dir, TOKEN_FILE), d.token, { mode: 0o600 });
  tmux = new Tmux(d.dir);
});
afterAll(async () => {
  await tmux?.kill();
  await proxy?.close();
  await d?.stop();
});

const claustrum = (args: string) => `node ${BIN} ${args}`;
const count = (lines: string[], line: string) => lines.filter((l) => l === line).length;

describe('claustrum -run -t in a terminal', () => {
  it('types, resizes, rides through a cut connection with the screen intact, detaches, and -attach comes back', async () => {
    await tmux.start(80, 24);
    // At a terminal, -run runs the command on a terminal of the daemon (no -t needed).
    await tmux.type(claustrum(`-run -socket ${proxy.path} -- env PS1='remote$ ' sh`));
    await tmux.waitFor(/^remote\$$/m);

    // Typing, and the size: the spawn's, then the new one after a resize.
    await tmux.type('tty; stty size; echo typed-$((6*7))');
    await tmux.waitFor(/^typed-42$/m);
    const first = await tmux.screen();
    expect(first).toContain('24 80');
    expect(first.some((l) => /^\/dev\/pts\/\d+$/.test(l))).toBe(true);
    await tmux.tmux('resize-window', '-t', 't', '-x', '100', '-y', '30');
    await tmux.type('stty size');
    await tmux.waitFor(/^30 100$/m);

    // A clean screen, so nothing scrolls while the connection is cut.
    await tmux.type("printf '\\033[H\\033[2J'; echo before-cut");
    await tmux.waitFor(/^before-cut\n^remote\$$/m);
    const before = await tmux.screen();

    // Cut, and refuse reconnections for a moment: keys typed meanwhile wait in the client.
    const refusedFrom = proxy.connections;
    proxy.mode = 'refuse';
    proxy.cutAll();
    await tmux.type('echo during-$((40+2))');
    await until(() => proxy.connections >= refusedFrom + 2, 20_000, 'reconnection attempts');
    proxy.mode = 'relay';
    await tmux.waitFor(/^during-42\n^remote\$$/m);
    const after = await tmux.screen();
    // The screen as it was, plus exactly the command typed while cut and its output, each once.
    const prompt = before.findLastIndex((l) => l !== '');
    expect(before[prompt]).toBe('remote$');
    expect(after.slice(0, prompt)).toEqual(before.slice(0, prompt));
    expect(after.slice(prompt, prompt + 3)).toEqual(['remote$ echo during-$((40+2))', 'during-42', 'remote$']);
    expect(count(after, 'during-42')).toBe(1);
    expect(after.filter((l) => l.includes('claustrum:'))).toEqual([]);

    // Detach: Enter, then ~ . (ssh's escape). The process keeps running; the way back is printed.
    await tmux.press('Enter');
    await tmux.waitFor(/^remote\$\nremote\$$/m);
    const atDetach = await tmux.screen();
    await tmux.type('~.', false);
    const shown = await tmux.waitFor(/detached from (\S+); it keeps running\. Come back with: claustrum -attach \S+ -socket \S+\n^outer\$$/m);
    const id = /detached from (\S+);/.exec(shown)![1]!;
    const raw = await d.client();
    const listed = (await raw.call('process.list', {})).processes.find((p: { id: string }) => p.id === id);
    expect(listed).toMatchObject({ running: true, pty: { cols: 100, rows: 30 } });

    // -attach: the screen as it is now, then live.
    await tmux.type(claustrum(`-attach ${id} -socket ${proxy.path}`));
    await until(async () => JSON.stringify(await tmux.screen()) === JSON.stringify(atDetach), 20_000, 'the screen as it was at the detach').catch(
      async () => {
        expect(await tmux.screen()).toEqual(atDetach);
      },
    );
    await tmux.type('echo back-$((2+3))');
    await tmux.waitFor(/^back-5\n^remote\$$/m);

    // The program's end ends the session, with its exit code.
    await tmux.type('exit 3');
    await tmux.waitFor(/^outer\$$/m);
    await tmux.type('echo status=$?');
    await tmux.waitFor(/^status=3$/m);
  }, 120_000);

  it("drops the terminal's answers to queries in the replay of an -attach, and passes live ones", async () => {
    await tmux.type("printf '\\033[H\\033[2J'");
    await tmux.type(claustrum(`-run -socket ${proxy.path} -- node ${path.join(FIXTURES, 'report-answers.mjs')}`));
    await tmux.waitFor(/^asked 1$/m);
    // Live: the terminal (tmux) answered the program's questions.
    await tmux.press('C-a');
    await tmux.waitFor(/^input 1b5b.*52$/m);
    await tmux.press('Enter');
    await tmux.type('~.', false);
    const shown = await tmux.waitFor(/detached from (\S+);.*\n^outer\$$/m);
    const id = /detached from (\S+);/.exec(shown)![1]!;

    // The replay asks again (the questions are in it); tmux answers; nothing of that may reach the program.
    await tmux.type(claustrum(`-attach ${id} -socket ${proxy.path}`));
    // The old screen, replayed on a fresh one (the command line that started -attach is gone).
    await until(
      async () => {
        const screen = (await tmux.screen(true)).join('\n');
        return !screen.includes('-attach') && /^input 1b5b.*52$/m.test(screen);
      },
      20_000,
      'the replayed screen',
    );
    await tmux.press('C-a');
    // Only the Enter typed before the detach reached it since the last report.
    await tmux.waitFor(/^input 1b5b.*52\ninput 0d$/m);
    await tmux.press('C-d');
    await tmux.waitFor(/^outer\$$/m);
  }, 60_000);
});
