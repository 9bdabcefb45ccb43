/**
 * One child as the keeper holds it: its output source (pipes, or a pseudo-terminal), its seq counter, its journal,
 * its stdin, its exit. The keeper is the child's parent and the only reader of its output: every read becomes
 * journal records before anyone is told of them, so the daemon can die at any moment without losing a byte.
 *
 * Reading pauses while the daemon's owner lags (the daemon says `hold`), while the journal is over its bound and no
 * daemon has dropped from it, and while a terminal's journal is full with no daemon connected (a terminal's early
 * output can only be let go of once a daemon has made a screen of it). After the reap nothing holds the output: the
 * exit drain must never wait for a reader.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import type { KillSignal } from '../process/signals.js';
import { pipeSink, type StdinOutcome, type StdinSink, StdinWriter } from '../process/stdin.js';
import type { KilledBy, OutputStream } from '../protocol/messages.js';
import { type ExitRecordBody, JournalWriter } from '../replay/journal.js';
import { MAX_FRAME_DATA } from '../replay/frame.js';
import type { CutPiece } from '../terminal/cutter.js';
import type { Terminal, TerminalExit } from '../terminal/pty.js';
import type { ExitInfo, KeptState, ReapInfo, SpawnSpec, TerminalSize } from './protocol.js';

/** How long after the reap the exit frame waits for both pipes to reach EOF (a grandchild may hold them). */
export const EXIT_DRAIN_GRACE_MS = 5000;
/** How often a journal write that failed (a full disk) is tried again, the child held meanwhile. */
export const JOURNAL_RETRY_MS = 1000;
/** The version of meta.json this build writes, and the newest it reads. */
export const META_VERSION = 1;
export const META_FILE = 'meta.json';

/** What the keeper hears from its processes. */
export interface KeptHooks {
  /** Records were appended (the keeper tells the daemon once per turn). */
  appended(proc: KeptProcess): void;
  reaped(proc: KeptProcess, reap: ReapInfo): void;
  exited(proc: KeptProcess): void;
  drainTimedOut(proc: KeptProcess): void;
}

/** The terminal side of a terminal child: the PTY and the cutter that cuts its output at clean boundaries. */
export interface TerminalParts {
  readonly terminal: Terminal;
  readonly cutter: { push(bytes: Uint8Array): void; flush(): void; dispose(): void };
}

/**
 * The callbacks a terminal child must be started with, before the process object exists: they forward to the
 * KeptProcess once it is built; nothing can arrive before that, since events come from the event loop.
 */
export class TerminalEvents {
  #target: KeptProcess | undefined;
  readonly data = (bytes: Buffer): void => this.#target?.terminalData(bytes);
  readonly piece = (piece: CutPiece): void => this.#target?.terminalPiece(piece);
  readonly leaderExit = (code: number | null, signal: NodeJS.Signals | null): void => this.#target?.reap(code, signal);
  readonly exit = (exit: TerminalExit): void => this.#target?.terminalEnded(exit);

  bind(target: KeptProcess): void {
    this.#target = target;
  }
}

/** What a process is, as both the front (KeptState) and meta.json (KeptMeta) describe it. */
type KeptDescription = Pick<
  KeptState,
  'key' | 'id' | 'command' | 'args' | 'cwd' | 'pid' | 'startTime' | 'startedAt' | 'pty' | 'spawnPty' | 'spawnedBy' | 'restarts' | 'exit'
>;

/** meta.json: what a keeper that comes after this one needs to adopt the process's journal. */
export interface KeptMeta extends KeptDescription {
  readonly version: number;
}

export interface KeptOptions {
  readonly stdinQueueCapBytes: number;
  readonly drainGraceMs: number;
}

export class KeptProcess {
  readonly key: string;
  readonly dir: string;
  readonly spec: SpawnSpec;
  readonly pid: number;
  readonly startTime: number;
  readonly startedAt: number;
  readonly journal: JournalWriter;
  readonly stdin: StdinWriter;
  /** Daemons that adopted it after the one that spawned it. */
  restarts = 0;

  readonly #child: ChildProcess | undefined;
  readonly #tty: TerminalParts | undefined;
  readonly #log: Logger;
  readonly #hooks: KeptHooks;
  readonly #options: KeptOptions;
  #seq = 0;
  #reap: ReapInfo | undefined;
  #exit: ExitInfo | undefined;
  #killedBy: KilledBy | undefined;
  #openPipes = 2;
  #outputEnded = false;
  #drainTimer: NodeJS.Timeout | undefined;
  #frontHold = false;
  #journalHold = false;
  #held = false;
  #size: TerminalSize | undefined;
  /** Records that could not be written yet (ENOSPC, EIO), in order; the child is held until they are. */
  readonly #unwritten: (() => void)[] = [];
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(
    key: string,
    dir: string,
    spec: SpawnSpec,
    source: { readonly child: ChildProcess } | { readonly tty: TerminalParts; readonly events: TerminalEvents },
    options: KeptOptions,
    log: Logger,
    hooks: KeptHooks,
  ) {
    this.key = key;
    this.dir = dir;
    this.spec = spec;
    this.startedAt = Date.now();
    this.startTime = this.startedAt / 1000;
    this.#log = log;
    this.#hooks = hooks;
    this.#options = options;
    this.journal = new JournalWriter(dir);
    let sink: StdinSink;
    if ('child' in source) {
      const child = source.child;
      this.#child = child;
      this.pid = child.pid!;
      sink = pipeSink(child.stdin!, (err) => log.debug('process.Manager', `drainStdin ${spec.id}: write error: ${err.message}`));
      child.on('error', (err) => log.warn('process.Manager', `Process ${spec.id}: ${err.message}`));
      child.once('exit', (code, signal) => this.reap(code, signal));
      for (const stream of ['stdout', 'stderr'] as const) {
        const pipe = child[stream]!;
        pipe.on('data', (chunk: Buffer) => this.#onOutput(stream, chunk));
        pipe.on('error', (err) => log.warn('process.Manager', `Process ${spec.id}: ${stream} read error: ${err.message}`));
        pipe.once('close', () => this.#onPipeClosed());
      }
    } else {
      this.#tty = source.tty;
      this.pid = source.tty.terminal.pid;
      this.#size = { cols: source.tty.terminal.cols, rows: source.tty.terminal.rows };
      sink = terminalSink(source.tty.terminal);
      source.events.bind(this);
    }
    this.stdin = new StdinWriter(sink, options.stdinQueueCapBytes);
  }

  get id(): string {
    return this.spec.id;
  }

  get lastSeq(): number {
    return this.#seq;
  }

  get running(): boolean {
    return this.#reap === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.#exit;
  }

  get isTerminal(): boolean {
    return this.#tty !== undefined;
  }

  /** The daemon's owner lags (true) or caught up. */
  holdForFront(hold: boolean): void {
    this.#frontHold = hold;
    this.#applyHold();
  }

  /** The journal is over its bound (true) or back under it. */
  holdForJournal(hold: boolean): void {
    this.#journalHold = hold;
    this.#applyHold();
  }

  state(): KeptState {
    return {
      ...this.#description(),
      reaped: this.#reap,
      lastSeq: this.#seq,
      stdin: { applied: this.stdin.applied, ended: this.stdin.ended },
    };
  }

  /** Writes meta.json (a temporary name renamed into place: a reader sees all of it or none). */
  writeMeta(): void {
    writeMetaFile(this.dir, { version: META_VERSION, ...this.#description() });
  }

  #description(): KeptDescription {
    return {
      key: this.key,
      id: this.spec.id,
      command: this.spec.command,
      args: this.spec.args,
      cwd: this.spec.cwd,
      pid: this.pid,
      startTime: this.startTime,
      startedAt: this.startedAt,
      pty: this.#size,
      spawnPty: this.spec.pty,
      spawnedBy: this.spec.spawnedBy,
      restarts: this.restarts,
      exit: this.#exit,
    };
  }

  // ---- output and exit ----

  #applyHold(): void {
    const hold = this.#reap === undefined && (this.#frontHold || this.#journalHold || this.#unwritten.length > 0);
    if (hold === this.#held) return;
    this.#held = hold;
    if (this.#tty) {
      if (hold) this.#tty.terminal.pause();
      else this.#tty.terminal.resume();
      return;
    }
    for (const pipe of [this.#child!.stdout!, this.#child!.stderr!]) {
      if (hold) pipe.pause();
      else pipe.resume();
    }
  }

  #onOutput(stream: OutputStream, chunk: Buffer): void {
    for (let at = 0; at < chunk.length; at += MAX_FRAME_DATA) {
      const data = at === 0 && chunk.length <= MAX_FRAME_DATA ? chunk : chunk.subarray(at, at + MAX_FRAME_DATA);
      const seq = ++this.#seq;
      this.#record(() => this.journal.data(seq, stream, data));
    }
    this.#hooks.appended(this);
  }

  /**
   * Writes one record, or keeps it (and everything after it, in order) for a retry when the disk refuses it: the
   * bytes were read from the child already and exist nowhere else. Reading pauses until the backlog is written.
   */
  #record(write: () => void): void {
    if (this.#unwritten.length === 0) {
      try {
        write();
        return;
      } catch (err) {
        this.#log.error(
          'process.Manager',
          `Process ${this.id}: journal write failed (${(err as Error).message}); holding its output, retrying every ${JOURNAL_RETRY_MS} ms`,
        );
      }
    }
    this.#unwritten.push(write);
    this.#applyHold();
    this.#retryTimer ??= setInterval(() => this.#retry(), JOURNAL_RETRY_MS);
  }

  #retry(): void {
    while (this.#unwritten.length > 0) {
      try {
        this.#unwritten[0]!();
      } catch {
        return;
      }
      this.#unwritten.shift();
    }
    clearInterval(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#log.info('process.Manager', `Process ${this.id}: journal writable again`);
    this.#applyHold();
    this.#hooks.appended(this);
    if (this.#exit) this.#hooks.exited(this);
  }

  /** @internal A terminal's read, before cutting. */
  terminalData(bytes: Buffer): void {
    this.#tty!.cutter.push(bytes);
  }

  /** @internal A piece the cutter let through: one frame (pieces are at most MAX_FRAME_DATA). */
  terminalPiece(piece: CutPiece): void {
    const seq = ++this.#seq;
    // (A piece is a view of the terminal's read, or of a fresh concatenation: never reused, safe to keep.)
    this.#record(() => this.journal.data(seq, 'stdout', piece.data, piece.clean));
    this.#hooks.appended(this);
  }

  /** @internal The OS reaped the child (a terminal's leader, or the piped child). */
  reap(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#reap) return;
    this.#reap = { code, signal, at: Date.now() };
    this.#applyHold(); // never hold the output after the reap: the drain must not wait on a reader
    this.#hooks.reaped(this, this.#reap);
    // A terminal bounds its own drain (it reports its end once the output reached EIO, or after its grace).
    if (this.#child && this.#openPipes > 0) {
      this.#drainTimer = setTimeout(() => this.#forceDrain(), this.#options.drainGraceMs);
    }
    this.#finishIfDrained();
  }

  /** @internal A terminal's output ended (EIO), or its drain grace ran out. */
  terminalEnded(exit: TerminalExit): void {
    this.#tty!.cutter.flush();
    if (!exit.drained) this.#hooks.drainTimedOut(this);
    this.reap(exit.exitCode, exit.signal);
    this.#outputEnded = true;
    this.#finishIfDrained();
  }

  #onPipeClosed(): void {
    this.#openPipes--;
    if (this.#openPipes === 0) this.#outputEnded = true;
    this.#finishIfDrained();
  }

  #forceDrain(): void {
    this.#log.warn('process.Manager', `Process ${this.id}: pipe drain grace expired (grandchild holding stdio?); force-closing`);
    this.#hooks.drainTimedOut(this);
    this.#child!.stdout!.destroy();
    this.#child!.stderr!.destroy();
  }

  #finishIfDrained(): void {
    if (!this.#reap || !this.#outputEnded || this.#exit) return;
    clearTimeout(this.#drainTimer);
    const exit: ExitRecordBody = {
      exitCode: this.#reap.code ?? -1,
      ...(this.#reap.signal ? { signal: this.#reap.signal } : {}),
      ...(this.#killedBy ? { killedBy: this.#killedBy } : {}),
      at: Date.now(),
    };
    this.#exit = { exitCode: exit.exitCode, signal: exit.signal, killedBy: exit.killedBy, at: exit.at };
    let line = `Process ${this.id} exited with code ${exit.exitCode}`;
    if (exit.signal) line += `, terminated by ${exit.signal}`;
    if (this.#killedBy) line += this.#killedBy === 'client' ? ', signalled at client request' : ', signalled at shutdown request';
    this.#log.info('process.Manager', line);
    const seq = ++this.#seq;
    this.#record(() => {
      this.journal.exit(seq, exit);
      this.journal.close();
    });
    this.#tty?.terminal.close();
    this.#tty?.cutter.dispose();
    try {
      this.writeMeta();
    } catch (err) {
      // The exit frame is in the journal, which is what a later keeper reads first.
      this.#log.warn('process.Manager', `Process ${this.id}: cannot update ${path.join(this.dir, META_FILE)}: ${(err as Error).message}`);
    }
    this.#hooks.appended(this);
    // Exited once the exit frame is written (the daemon learns of the exit from the journal).
    if (this.#unwritten.length === 0) this.#hooks.exited(this);
  }

  // ---- control ----

  /**
   * Resizes the terminal (the program gets SIGWINCH) and records the size in the journal, so every reader, and a
   * later screen, knows the size in force from here on. False for a piped or reaped process.
   */
  resize(cols: number, rows: number): boolean {
    const tty = this.#tty;
    if (!tty || this.#reap) return false;
    tty.cutter.flush();
    tty.terminal.resize(cols, rows);
    this.#size = { cols, rows };
    const seq = ++this.#seq;
    this.#record(() => this.journal.resize(seq, cols, rows));
    this.#hooks.appended(this);
    return true;
  }

  /**
   * Sends a signal: SIGKILL to the whole process group, anything else to the direct child only (reference width),
   * or to the group when `group` asks for it. A terminal's INT, HUP and TERM go to its foreground process group, as
   * the terminal's own keys would, and KILL to its whole session. A reaped child is never signalled, since its pid
   * may already be someone else's; `afterReap` allows the exceptions, group signals while the exit frame still waits
   * on a pipe holder (a group id cannot be reused while the group has members).
   */
  signal(sig: KillSignal, by: KilledBy, afterReap = false, group = false): boolean {
    if (this.#reap && !afterReap) return false;
    if (this.#exit) return false;
    if (this.#tty) {
      void this.#tty.terminal.signal(sig).catch((err: Error) => this.#log.warn('process.Manager', `Process ${this.id}: kill ${sig}: ${err.message}`));
    } else {
      try {
        process.kill(sig === 'SIGKILL' || group ? -this.pid : this.pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
          this.#log.warn('process.Manager', `Process ${this.id}: kill ${sig}: ${(err as Error).message}`);
        }
      }
    }
    this.#killedBy = by;
    return true;
  }

  /** Applies one stdin write under the offset rules; never waits for the child to read. */
  writeStdin(data: Buffer, offset: number | undefined, eof: boolean): StdinOutcome {
    return this.stdin.write(data, offset, eof, this.#reap === undefined);
  }

  /** Lets go of the terminal (a process being forgotten); the journal's files are the caller's to remove. */
  dispose(): void {
    clearTimeout(this.#drainTimer);
    clearInterval(this.#retryTimer);
    this.journal.close();
    if (this.#tty) {
      this.#tty.cutter.dispose();
      this.#tty.terminal.close();
    }
  }
}

/** A terminal's input as a stdin sink: every byte in order, paced by the terminal; no end of input. */
function terminalSink(terminal: Terminal): StdinSink {
  let broken = false;
  return {
    write: (data) => {
      if (!broken && !terminal.write(data)) broken = true;
    },
    end: () => {},
    get queuedBytes() {
      return terminal.queuedBytes;
    },
    get broken() {
      return broken;
    },
    endable: false,
  };
}

/** Writes meta.json atomically (mode 0600). */
export function writeMetaFile(dir: string, meta: KeptMeta): void {
  const temp = path.join(dir, `.${META_FILE}.${process.pid}`);
  writeFileSync(temp, `${JSON.stringify(meta)}\n`, { mode: 0o600, flag: 'w' });
  renameSync(temp, path.join(dir, META_FILE));
}

/** Creates a process's journal directory (0700). */
export function makeProcessDir(dir: string): void {
  mkdirSync(dir, { mode: 0o700 });
}
