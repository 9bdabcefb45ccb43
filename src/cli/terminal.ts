/**
 * The resumable terminal: `claustrum -run -t -- <cmd>` runs a command on a pseudo-terminal of the daemon and makes
 * this terminal its screen and keyboard; `claustrum -attach <id>` comes back to one.
 *
 * - The local terminal goes raw (Node's raw mode plus `stty -opost`, so the program's bytes reach it as they are:
 *   a full-screen program's bare line feed must not become CR LF). Node restores the terminal's settings when it
 *   exits, whatever the path; every path of this module also restores them itself before it prints.
 * - The size is sent at the start and on every SIGWINCH (`process.resize`, coalesced: one in flight, the latest next).
 * - A dropped connection is resumed by the client library (reattach from the last seq drawn, stdin resent by offset:
 *   every byte drawn once, every key sent once). Frames the daemon evicted meanwhile come back as the screen.
 * - Replayed output (an attach's, a resume's) goes through the AnswerGate: the terminal's answers to old queries in
 *   it are dropped (terminal-input.ts).
 * - `Enter ~ .` detaches (EscapeFilter; `-escape-char` changes or disables it): the process keeps running, and the
 *   way back is printed. A connection that keeps being taken away right after each resume (another client attached,
 *   which makes the daemon close this one) ends the same way rather than taking it back and forth.
 * - SIGTERM, SIGHUP and SIGINT sent to this process reach the terminal's foreground process group.
 */
import { execFileSync } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { ReadStream, WriteStream } from 'node:tty';
import {
  type Client,
  ClosedError,
  ConnectError,
  connect,
  type ProcessHandle,
  ProcessLostError,
  RpcError,
  TERMINAL_MAX_COLS,
  TERMINAL_MAX_ROWS,
} from '../client/index.js';
import type { OwnerRecord } from '../daemon/lock.js';
import { readTokenFd } from '../daemon/token.js';
import { startTimeOf } from '../process/procfs.js';
import { formatDuration } from '../util/duration.js';
import { shellQuote } from './format.js';
import { daemonRecord, drained, failed, remoteFate, STDIN_BACKLOG_BYTES, watchDaemon } from './run.js';
import { AnswerGate, EscapeFilter, escapeName } from './terminal-input.js';

export const ATTACH_USAGE = 'claustrum -attach <id> [-socket path] [-escape-char c] [-reconnect-budget d] [-token-fd n]';

/** The size sent when this side is no terminal (`-t` with output to a pipe): the classic 80x24. */
export const FALLBACK_SIZE = { cols: 80, rows: 24 } as const;
/** Drops of the connection within TAKEOVER_WINDOW_MS, each after a successful resume, that mean another client is taking the process. */
export const TAKEOVER_DROPS = 3;
export const TAKEOVER_WINDOW_MS = 10_000;
/** How long a lost connection stays quiet before it says so on the screen (a resume is usually far quicker). */
export const TERMINAL_QUIET_RECONNECT_MS = 2000;
/** How long a detach waits for keys typed before it to be acknowledged by the daemon. */
export const DETACH_STDIN_WAIT_MS = 5000;

/**
 * Written to the local terminal when the session ends without the program's own goodbye (detach, lost): the pen,
 * the cursor, mouse reporting, bracketed paste and the keypad back to normal, so the shell here is usable. Leaving
 * the alternate screen is added only when the program was seen entering it: on the normal screen that sequence
 * restores a saved cursor position and would misplace the prompt.
 */
const SANE_MODES = '\x1b[0m\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1004l\x1b[?2004l\x1b[?1l\x1b>';
const LEAVE_ALT_SCREEN = '\x1b[?1049l';
/** RIS: a fresh terminal, for a screen (snapshot) or an attach's replay to draw on. */
const RESET = '\x1bc';
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching an escape sequence is the point
const ALT_SCREEN_SWITCH = /\x1b\[\?(?:1049|1047|47)([hl])/g;

export interface TerminalSessionOptions {
  readonly client: Client;
  readonly socket: string;
  /** How to name the socket in the way back (`-socket …` when not the default). */
  readonly socketHint: string;
  readonly holder: OwnerRecord | undefined;
  readonly what:
    | { readonly spawn: { command: string; args: readonly string[]; cwd: string; env?: Record<string, string> } }
    | { readonly attach: string };
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** TERM for the program: this terminal's. */
  readonly term: string | undefined;
  readonly budgetMs: number;
  /** The escape character (undefined: none). */
  readonly escape: number | undefined;
}

/** Columns and rows of this terminal, within what the daemon accepts. */
function sizeOf(out: Writable): { cols: number; rows: number } {
  const tty = out as Partial<WriteStream>;
  if (!tty.isTTY || !tty.columns || !tty.rows) return { ...FALLBACK_SIZE };
  return { cols: Math.min(TERMINAL_MAX_COLS, Math.max(1, tty.columns)), rows: Math.min(TERMINAL_MAX_ROWS, Math.max(1, tty.rows)) };
}

/** Raw mode on this terminal, and back. */
class RawMode {
  readonly #stdin: Partial<ReadStream>;
  #on = false;

  constructor(stdin: Readable) {
    this.#stdin = stdin as Partial<ReadStream>;
  }

  get on(): boolean {
    return this.#on;
  }

  /** Raw mode was entered at some point. */
  get used(): boolean {
    return this.#used;
  }
  #used = false;

  enter(): boolean {
    const s = this.#stdin;
    if (!s.isTTY || typeof s.setRawMode !== 'function') return false;
    s.setRawMode(true);
    this.#on = true;
    this.#used = true;
    // Node's raw mode leaves output processing on (ONLCR): the program's own bytes must arrive untouched.
    try {
      execFileSync('stty', ['-opost'], { stdio: [(s as { fd?: number }).fd ?? 0, 'ignore', 'ignore'], timeout: 5000 });
    } catch {
      // No stty: line feeds are drawn as CR LF, which only some full-screen programs notice.
    }
    return true;
  }

  /** Back to the settings before enter() (Node saved them; they include output processing). */
  leave(): void {
    if (!this.#on) return;
    this.#on = false;
    try {
      this.#stdin.setRawMode?.(false);
    } catch {
      // The terminal is gone (hangup): nothing to restore.
    }
  }
}

export async function runTerminalSession(o: TerminalSessionOptions): Promise<number> {
  const { client, stdout, stderr } = o;
  const raw = new RawMode(o.stdin);
  const say = (line: string) => {
    if (raw.on) stderr.write(`\r\nclaustrum: ${line.replace(/\n/g, '\r\n')}\r\n`);
    // After the session, on a line of its own (the program's last line may not have ended).
    else stderr.write(`${raw.used ? '\n' : ''}claustrum: ${line}\n`);
  };
  const what = o.what;
  const attachId = 'attach' in what ? what.attach : undefined;
  const proc: ProcessHandle =
    'attach' in what
      ? client.attach(what.attach, { screen: true, wantPid: true })
      : client.spawn({ ...what.spawn, wantPid: true, pty: sizeOf(stdout), ...(o.term ? { term: o.term } : {}) });
  // Taken at once: an attach's replay (up to the daemon's 16 MiB) arrives before its reply, and is drawn as it comes.
  const output = proc.output()[Symbol.asyncIterator]();
  const comeBack = `claustrum -attach ${shellQuote(proc.id)}${o.socketHint}`;

  let remote: { pid: number; startTime: string } | undefined;
  const watch = watchDaemon({
    client,
    holder: o.holder,
    socket: o.socket,
    budgetMs: o.budgetMs,
    say,
    fate: () => remoteFate(remote),
    quietMs: TERMINAL_QUIET_RECONNECT_MS,
  });

  // ---- how the session ends ----
  let ending: 'detach' | 'takeover' | undefined;
  let altScreen = false;
  const restore = (sane: boolean) => {
    if (!raw.on) return;
    if (sane) write(`${SANE_MODES}${altScreen ? LEAVE_ALT_SCREEN : ''}`);
    raw.leave();
  };

  // ---- output ----
  let stdoutBroken = false;
  const onStdoutError = () => {
    stdoutBroken = true; // a hung-up terminal: the program gets the HUP (below); nothing more to draw
  };
  stdout.on('error', onStdoutError);
  const write = (data: string | Uint8Array): boolean => (stdoutBroken ? true : stdout.write(data));

  const gate = new AnswerGate();
  /** The seq of the last item written to the terminal, and the last seq of the replay being written. */
  let written = 0;
  let replayEnd: number | undefined;
  const finishReplay = () => {
    if (replayEnd === undefined || written < replayEnd) return;
    replayEnd = undefined;
    const query = gate.finish();
    if (query !== undefined) write(query);
  };
  // The reply of an attach or a resume: every frame before it is replay (already drawn, or drawn by another).
  const replied = () => {
    replayEnd = proc.lastSeq;
    finishReplay();
  };
  proc.on('ready', replied);
  proc.on('reattach', replied);

  // ---- size ----
  let sizing = false;
  let sizeAgain = false;
  const sendSize = () => {
    if (sizing) {
      sizeAgain = true;
      return;
    }
    sizing = true;
    const { cols, rows } = sizeOf(stdout);
    void proc
      .resize(cols, rows)
      .catch(() => {})
      .finally(() => {
        sizing = false;
        if (sizeAgain) {
          sizeAgain = false;
          sendSize();
        }
      });
  };
  const onResize = () => sendSize();

  // ---- input ----
  // As ssh: escapes only from a terminal (piped input is data, `~.` included).
  const escapes = new EscapeFilter((o.stdin as Partial<ReadStream>).isTTY ? o.escape : undefined);
  let lastWrite: Promise<unknown> = Promise.resolve();
  let detach: () => void = () => {};
  const detached = new Promise<void>((resolve) => (detach = resolve));
  const escapeHelp = () => {
    const e = escapeName(o.escape ?? 0x7e);
    say(
      `escapes (typed after Enter):\n  ${e}.  detach: leave ${proc.id} running (${comeBack} comes back)\n  ${e}?  this list\n  ${e}${e}  send ${e} itself`,
    );
  };
  const onInput = (chunk: Buffer) => {
    const r = escapes.push(chunk);
    const data = gate.input(r.data);
    if (data.length > 0 && !proc.finished) {
      const w = proc.write(data).catch(() => {});
      lastWrite = w;
      if (proc.stdinPending > STDIN_BACKLOG_BYTES) {
        o.stdin.pause();
        void w.finally(() => o.stdin.resume());
      }
    }
    if (r.help) escapeHelp();
    if (r.detach) {
      ending = 'detach';
      detach();
    }
  };
  const onInputEnd = () => {
    // A pipe behind -t: a terminal has no end of input, but Ctrl-D at a line's start is what a shell reads as one.
    if (!proc.finished) lastWrite = proc.write('\x04').catch(() => {});
  };

  // ---- signals ----
  const forward = (signal: 'INT' | 'TERM' | 'HUP') => {
    proc.ready.then(
      () => client.kill(proc.id, signal).catch(() => {}),
      () => {},
    );
  };
  const signals = [
    ['SIGINT', () => forward('INT')],
    ['SIGTERM', () => forward('TERM')],
    ['SIGHUP', () => forward('HUP')],
  ] as const;

  // ---- takeover ----
  const drops: number[] = [];
  const onDisconnect = () => {
    const now = performance.now();
    drops.push(now);
    while (drops.length > 0 && now - drops[0]! > TAKEOVER_WINDOW_MS) drops.shift();
    if (drops.length >= TAKEOVER_DROPS && ending === undefined) {
      ending = 'takeover';
      detach();
    }
  };
  client.on('disconnect', onDisconnect);

  const cleanup = () => {
    for (const [s, h] of signals) process.off(s, h);
    stdout.off('resize', onResize);
    stdout.off('error', onStdoutError);
    o.stdin.off('data', onInput);
    o.stdin.off('end', onInputEnd);
    client.off('disconnect', onDisconnect);
    gate.dispose();
  };

  try {
    raw.enter();
    for (const [s, h] of signals) process.on(s, h);
    stdout.on('resize', onResize);
    o.stdin.on('data', onInput);
    o.stdin.on('end', onInputEnd);
    o.stdin.resume();

    const pump = (async () => {
      let first = true;
      for (let r = await output.next(); !r.done; r = await output.next()) {
        const item = r.value;
        if (item.type === 'gap') {
          say(`output lost: frames ${item.fromSeq}..${item.toSeq} were evicted from the daemon's replay buffer`);
          continue;
        }
        if (item.type === 'resize') {
          written = item.seq;
          finishReplay();
          continue;
        }
        // An attach draws on a fresh terminal; a screen (a snapshot) always does.
        if (item.type === 'screen' || (first && attachId !== undefined)) write(RESET);
        first = false;
        if (item.type === 'screen' || item.replay === true) gate.replayed(item.data);
        if (item.data.includes('\x1b[?')) {
          for (const m of item.data.toString('latin1').matchAll(ALT_SCREEN_SWITCH)) altScreen = m[1] === 'h';
        }
        const ok = write(item.data);
        written = item.seq;
        finishReplay();
        if (!ok) await drained(stdout);
      }
    })();
    pump.catch(() => {});

    try {
      await proc.ready;
      if (proc.pid !== undefined) {
        const startTime = await startTimeOf(proc.pid);
        if (startTime !== undefined) remote = { pid: proc.pid, startTime };
      }
    } catch (err) {
      restore(false);
      if (attachId !== undefined && err instanceof ProcessLostError) {
        say(`no process ${attachId} on ${o.socket} (claustrum -ps lists them)`);
        return 1;
      }
      if (err instanceof RpcError && err.message.startsWith('terminals are not available')) {
        say(`${err.message}; -T runs the command on pipes`);
        return 125;
      }
      return failed(err, say);
    }
    if (attachId !== undefined) sendSize(); // the program redraws for this terminal

    const outcome = await Promise.race([pump.then(() => 'exit' as const), detached.then(() => 'detach' as const)]).catch((err: unknown) => err);
    if (outcome === 'exit') {
      restore(false);
      return (await proc.exited).status;
    }
    if (outcome === 'detach') {
      // Keys typed before the escape are the program's: wait (bounded) until the daemon has them.
      await Promise.race([lastWrite, new Promise((resolve) => setTimeout(resolve, DETACH_STDIN_WAIT_MS).unref())]);
      proc.detach();
      await pump.catch(() => {});
      restore(true);
      if (ending === 'takeover') {
        say(
          `the connection was closed ${TAKEOVER_DROPS} times within ${formatDuration(TAKEOVER_WINDOW_MS)}: another client is probably attached to ${proc.id}. Detached here; it keeps running: ${comeBack}`,
        );
        return 1;
      }
      say(`detached from ${proc.id}; it keeps running. Come back with: ${comeBack}`);
      return 0;
    }
    restore(true);
    const err = outcome as Error;
    if (watch.lost !== undefined) say(watch.lost);
    else if (err instanceof ClosedError) say(`${err.message}; ${proc.id} keeps running on the daemon: ${comeBack}`);
    else say(err.message);
    return 125;
  } finally {
    cleanup();
    restore(true);
    // A terminal's stdin would keep this process alive after the session.
    o.stdin.destroy();
    await client.close();
  }
}

export interface AttachOptions {
  readonly socket: string;
  readonly socketHint: string;
  readonly id: string;
  readonly tokenFd: number;
  readonly budgetMs: number;
  readonly escape: number | undefined;
  readonly stdin?: Readable;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
}

/** `claustrum -attach <id>`: back to a terminal process, with its screen as it is now. */
export async function runAttach(a: AttachOptions): Promise<number> {
  const stdin = a.stdin ?? process.stdin;
  const stdout = a.stdout ?? process.stdout;
  const stderr = a.stderr ?? process.stderr;
  const say = (line: string) => stderr.write(`claustrum: ${line}\n`);
  if (!(stdin as Partial<ReadStream>).isTTY) {
    say('-attach needs a terminal on stdin: it puts it in raw mode and sends it every key (follow output with claustrum -logs -f <id>)');
    return 2;
  }
  let client: Client;
  try {
    const token = a.tokenFd >= 0 ? await readTokenFd(a.tokenFd) : undefined;
    client = await connect({ socket: a.socket, reconnect: { giveUpAfterMs: a.budgetMs }, ...(token !== undefined ? { token } : {}) });
  } catch (err) {
    say(err instanceof ConnectError ? `no daemon answers on ${a.socket} (${err.message})` : (err as Error).message);
    return 125;
  }
  try {
    const entry = (await client.list()).processes.find((p) => p.id === a.id);
    if (entry === undefined) {
      say(`no process ${a.id} on ${a.socket} (claustrum -ps lists them)`);
      await client.close();
      return 1;
    }
    if (entry.pty === undefined) {
      say(`process ${a.id} is not a terminal (it runs on pipes): follow it with claustrum -logs -f ${shellQuote(a.id)}`);
      await client.close();
      return 1;
    }
  } catch (err) {
    say((err as Error).message);
    await client.close();
    return 125;
  }
  const holder = await daemonRecord(a.socket, client.instanceId);
  return runTerminalSession({
    client,
    socket: a.socket,
    socketHint: a.socketHint,
    holder,
    what: { attach: a.id },
    stdin,
    stdout,
    stderr,
    term: undefined,
    budgetMs: a.budgetMs,
    escape: a.escape,
  });
}
