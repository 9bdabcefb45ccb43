/**
 * A program on a pseudo-terminal: what the supervisor needs of a terminal child, as a small object.
 *
 * How the child starts. native.ts opens the pair (openpty with the window size set); child_process.spawn starts
 * `/bin/sh` as a new session (`detached`: setsid) with the slave as stdio, and that shell, a session leader without a
 * controlling terminal, opens the slave by path without O_NOCTTY, which makes it the controlling terminal
 * (System V rule, Linux tty_open), then execs the program in place. So the program is the session leader
 * (pid = pgid = sid) with the PTY as its controlling terminal, `tty` names it and `stty size` reports the spawn size.
 * It is an ordinary ChildProcess: libuv waits for it as for every other child, no thread per terminal.
 * The stdio array goes through descriptors.ts, so no descriptor of the daemon above 2 reaches it.
 *
 * Reading: a tty.ReadStream on the master (epoll). The kernel hands out at most about 4 KB per read (n_tty's read
 * buffer) and libuv reads once per wakeup after a read shorter than its 64 KiB buffer, so a flood costs one turn of
 * the event loop per 4 KB; each wakeup therefore reads on synchronously (the master is non-blocking: a read that
 * would wait says EAGAIN at once) up to PTY_READ_BURST_BYTES, and hands the bytes on as one chunk. pause() stops
 * reading (readStop after at most one buffered chunk), so a lagging owner makes the program block on write, as with
 * pipes.
 *
 * The exit tail. node-pty loses the end of a fast exit (27 of 40 `cat` runs of 20 KB here) because libuv treats
 * POLLHUP after a short read as end of file: right for pipes, wrong for a PTY master, which returns at most about
 * 4 KB per read while more is queued. Once the last slave descriptor closes, the master polls POLLHUP, libuv reports
 * EOF with data still in the kernel, and node-pty's socket (allowHalfOpen false) then closes the master, discarding
 * it. Here the stream is half-open, so a premature EOF leaves the master open, and the rest is read with fs.read
 * until the kernel answers EIO (all slaves closed, nothing left). The exit is reported only after that end of
 * output, or after PTY_EXIT_DRAIN_MS from the leader's exit (a background process may hold the slave open forever),
 * whichever comes first; the master is then closed, which hangs up whatever still holds the slave.
 *
 * Writing: fs.write on the non-blocking master, one write in flight, in order; a write the terminal cannot take yet
 * (EAGAIN) is retried after a pause that doubles from PTY_WRITE_RETRY_MIN_MS to PTY_WRITE_RETRY_MAX_MS while nothing
 * goes in, and resets on progress (node-pty 1.2's retry spun at 143,000 tries a second, node-pty#956; node-pty 1.1's
 * socket write spins inside libuv and blocks the event loop).
 *
 * Descriptor lifetime: the master is closed by the stream's handle; a read or write on the threadpool must never run
 * after that close (the number could already name another file), so the stream's destroy waits for them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { close, read, readSync, write } from 'node:fs';
import { MAX_FRAME_DATA } from '../replay/frame.js';
import { ReadStream } from 'node:tty';
import { descendantsOf, processTable, readStat, signalPid } from '../process/procfs.js';
import { guardedStdio, prepareDescriptorGuard, track, untrack } from './descriptors.js';
import { loadPty, type PtyNative, type PtyPair, type PtyUnavailable } from './native.js';

/** How long the exit report waits, after the leader's exit, for the output to reach EOF/EIO. */
export const PTY_EXIT_DRAIN_MS = 2000;
/** First pause before retrying a write the terminal refused (EAGAIN). */
export const PTY_WRITE_RETRY_MIN_MS = 1;
/** Longest pause between retries while the program reads nothing: at most 20 attempts a second. */
export const PTY_WRITE_RETRY_MAX_MS = 50;
/** Pause between reads of a master that said EAGAIN after its end of file (a slave was reopened). */
export const PTY_DRAIN_POLL_MS = 10;
/**
 * The most bytes one wakeup of the master's reader takes (32 KiB, one frame's data): libuv's read, then synchronous
 * reads until the kernel has no more. `cat` of 10 MiB on a terminal read by node-pty (4 KB per wakeup) took 1,099 ms;
 * reading on to EAGAIN in the same wakeup (about 31 KB each), 282 ms, on the 2-core machine of bench/RESULTS.md.
 */
export const PTY_READ_BURST_BYTES = MAX_FRAME_DATA;
/** The size of the reads of the drain after a premature EOF; the kernel hands out at most about 4 KB per read. */
export const PTY_DRAIN_READ_BYTES = 64 * 1024;
/** Window size bounds: the kernel's winsize fields are 16 bits; a screen model sized past these is all cost. */
export const PTY_MAX_COLS = 1000;
export const PTY_MAX_ROWS = 1000;
/** TERM when the caller names none. */
export const DEFAULT_TERM = 'xterm-256color';

/** The shell that acquires the controlling terminal and becomes the program: `$1` is the slave, the rest the argv. */
const TRAMPOLINE = 'exec 0<>"$1" 1>&0 2>&0 || exit 126; shift; exec "$@"';
const TRAMPOLINE_NAME = 'claustrum-pty';
/** dash and bash agree; `sh` from PATH could be anything. */
const TRAMPOLINE_SHELL = '/bin/sh';

export type TerminalSignal = 'SIGINT' | 'SIGHUP' | 'SIGTERM' | 'SIGKILL';

export interface TerminalExit {
  /** The exit status, or null when a signal ended the program. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when the output was read to its end; false when PTY_EXIT_DRAIN_MS ran out first. */
  readonly drained: boolean;
}

export interface TerminalOptions {
  /** The program, resolved (the supervisor's resolveCommand): it is exec'd by path. */
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd?: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly cols: number;
  readonly rows: number;
  /** TERM for the program; DEFAULT_TERM when omitted. */
  readonly term?: string | undefined;
  /** Output bytes, in order, as read. The buffer is the caller's to keep. */
  readonly onData: (bytes: Buffer) => void;
  /** Once, after the last onData. */
  readonly onExit: (exit: TerminalExit) => void;
  /**
   * Once, when the leader is reaped, before the drain ends (the supervisor's "running: false" and reap time); onExit
   * follows with the same status once the output has ended or PTY_EXIT_DRAIN_MS has passed.
   */
  readonly onLeaderExit?: (exitCode: number | null, signal: NodeJS.Signals | null) => void;
  readonly drainMs?: number;
}

/** Terminals cannot start here (the native package is missing or unusable); piped processes are unaffected. */
export class PtyUnavailableError extends Error {
  readonly code = 'ptyUnavailable';
  constructor(reason: PtyUnavailable) {
    super(reason.message);
  }
}

/**
 * The program could not be started; `reason` is libuv's errno code (ENOENT for a missing cwd, EINVAL for a NUL in an
 * argument), or `openpty` when the system has no pseudo-terminal to give.
 */
export class TerminalSpawnError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** An error text for a size outside 1..PTY_MAX_COLS x 1..PTY_MAX_ROWS, or undefined when it is acceptable. */
export function checkTerminalSize(cols: unknown, rows: unknown): string | undefined {
  const ok = (n: unknown, max: number) => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= max;
  if (!ok(cols, PTY_MAX_COLS)) return `cols must be an integer from 1 to ${PTY_MAX_COLS}, got ${String(cols)}`;
  if (!ok(rows, PTY_MAX_ROWS)) return `rows must be an integer from 1 to ${PTY_MAX_ROWS}, got ${String(rows)}`;
  return undefined;
}

/** Starts `file` on a new pseudo-terminal. Rejects with PtyUnavailableError, TerminalSpawnError or RangeError. */
export async function spawnTerminal(options: TerminalOptions): Promise<Terminal> {
  const load = loadPty();
  if (!load.ok) throw new PtyUnavailableError(load.error);
  const bad = checkTerminalSize(options.cols, options.rows);
  if (bad) throw new RangeError(bad);
  await prepareDescriptorGuard();

  // From open() to spawn() is one synchronous stretch: no other spawn can see this pair's slave.
  let pair: PtyPair;
  try {
    pair = load.native.open(options.cols, options.rows);
  } catch (err) {
    throw new TerminalSpawnError(
      'openpty',
      `no pseudo-terminal could be opened (${(err as Error).message}); see /proc/sys/kernel/pty/nr against pty/max, and the daemon's descriptor limit`,
    );
  }
  track(pair.master);
  track(pair.slave);
  let child: ChildProcess;
  try {
    child = spawn(TRAMPOLINE_SHELL, ['-c', TRAMPOLINE, TRAMPOLINE_NAME, pair.pty, options.file, ...options.args], {
      cwd: options.cwd,
      env: { ...options.env, TERM: options.term ?? DEFAULT_TERM },
      detached: true,
      stdio: guardedStdio([pair.slave, pair.slave, pair.slave]),
    });
  } catch (err) {
    closeTracked(pair.slave);
    closeTracked(pair.master);
    const code = (err as NodeJS.ErrnoException).code ?? 'EINVAL';
    throw new TerminalSpawnError(code === 'ERR_INVALID_ARG_VALUE' ? 'EINVAL' : code, (err as Error).message);
  }
  // The child holds the slave now (its stdio). The daemon's copy closes on the threadpool; until it has, it stays
  // tracked, so a spawn in between covers it.
  closeTracked(pair.slave);
  if (child.pid === undefined) {
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
    closeTracked(pair.master);
    throw new TerminalSpawnError(err.code ?? 'EIO', `cannot start ${options.file}: ${err.message}`);
  }
  return new Terminal(load.native, pair.master, pair.pty, child, options);
}

/** Where a wakeup's further reads land before they are copied out with libuv's chunk (reads are synchronous). */
const burstScratch = Buffer.allocUnsafe(PTY_READ_BURST_BYTES);

function closeTracked(fd: number): void {
  close(fd, () => untrack(fd));
}

/**
 * The master's reader. Its destroy (which closes the master through the libuv handle) waits until no fs.read or
 * fs.write on the master is in flight.
 */
class MasterStream extends ReadStream {
  inFlight = 0;
  #pendingDestroy: (() => void) | undefined;

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const finish = () => super._destroy(err, cb);
    if (this.inFlight === 0) finish();
    else this.#pendingDestroy = finish;
  }

  /** An fs call on the master completed. */
  settled(): void {
    if (--this.inFlight === 0 && this.#pendingDestroy) {
      const finish = this.#pendingDestroy;
      this.#pendingDestroy = undefined;
      finish();
    }
  }
}

export class Terminal {
  readonly pid: number;
  /** `/dev/pts/N`. */
  readonly ptsName: string;
  /** A read error other than the EIO that ends every terminal's output (none seen in practice). */
  readError: Error | undefined;

  readonly #native: PtyNative;
  readonly #fd: number;
  readonly #stream: MasterStream;
  readonly #onData: (bytes: Buffer) => void;
  readonly #onExit: (exit: TerminalExit) => void;
  readonly #onLeaderExit: ((exitCode: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  readonly #drainMs: number;
  #cols: number;
  #rows: number;
  #paused = false;
  /** The master is being (or has been) closed: no fs call may start. */
  #closing = false;
  #outputEnded = false;
  #draining = false;
  #leaderExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #exitReported = false;
  // input
  #queue: Buffer[] = [];
  #queued = 0;
  #writing = false;
  #retryMs = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #inputBroken = false;
  #writeCalls = 0;

  constructor(native: PtyNative, fd: number, ptsName: string, child: ChildProcess, options: TerminalOptions) {
    this.#native = native;
    this.#fd = fd;
    this.ptsName = ptsName;
    this.pid = child.pid!;
    this.#cols = options.cols;
    this.#rows = options.rows;
    this.#onData = options.onData;
    this.#onExit = options.onExit;
    this.#onLeaderExit = options.onLeaderExit;
    this.#drainMs = options.drainMs ?? PTY_EXIT_DRAIN_MS;

    // allowHalfOpen: an EOF must not close the master; the drain still has to read what the kernel holds.
    this.#stream = new MasterStream(fd, { allowHalfOpen: true });
    this.#stream.on('data', (chunk: Buffer) => this.#onData(this.#readOn(chunk)));
    this.#stream.on('end', () => this.#drainAfterEof());
    this.#stream.on('error', (err: NodeJS.ErrnoException) => {
      // EIO: every slave descriptor is closed and the kernel's buffer is empty, the PTY's end of output.
      if (err.code !== 'EIO') this.readError = err;
      this.#endOfOutput();
    });
    this.#stream.on('close', () => untrack(fd));
    child.on('error', () => {}); // spawn errors were handled in spawnTerminal; later ones (kill) need no listener
    child.once('exit', (code, signal) => this.#leaderExited(code, signal));
  }

  get cols(): number {
    return this.#cols;
  }

  get rows(): number {
    return this.#rows;
  }

  /** Input accepted by write() and not yet taken by the terminal. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** write(2) calls made on the master so far, refused ones included: what pacing keeps small. */
  get writeCalls(): number {
    return this.#writeCalls;
  }

  /** True once the exit was reported. */
  get exited(): boolean {
    return this.#exitReported;
  }

  /** True while reading is held by pause(). */
  get paused(): boolean {
    return this.#paused && this.#leaderExit === undefined;
  }

  /** Stops reading the terminal: the program blocks once the kernel's buffer fills. Ignored after the leader's exit. */
  pause(): void {
    this.#paused = true;
    if (this.#leaderExit === undefined && !this.#closing) this.#stream.pause();
  }

  resume(): void {
    this.#paused = false;
    if (!this.#closing) this.#stream.resume();
  }

  /**
   * Queues input for the program, in order, every byte; the bytes are not copied, so the caller must not reuse
   * them. Returns false (and takes nothing) once the terminal can no
   * longer take input: after the exit, or after the slave side went away (EIO).
   */
  write(bytes: Uint8Array): boolean {
    if (this.#closing || this.#inputBroken || this.#stream.destroyed) return false;
    if (bytes.length === 0) return true;
    this.#queue.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.#queued += bytes.length;
    this.#pumpInput();
    return true;
  }

  /** Sets the window size; the kernel sends SIGWINCH to the foreground process group. */
  resize(cols: number, rows: number): void {
    const bad = checkTerminalSize(cols, rows);
    if (bad) throw new RangeError(bad);
    if (this.#closing) return;
    this.#native.resize(this.#fd, cols, rows);
    this.#cols = cols;
    this.#rows = rows;
  }

  /**
   * INT, HUP and TERM go to the terminal's foreground process group, as the terminal's own keys would send them
   * (tpgid read from /proc); KILL goes to every process of the session (sid = the leader's pid) and
   * every descendant of the leader, from one /proc pass. Resolves with the pids (or -pgid) signalled.
   */
  async signal(sig: TerminalSignal): Promise<number[]> {
    if (this.#exitReported) return [];
    if (sig === 'SIGKILL') {
      const table = await processTable();
      const victims = new Set<number>();
      // By session id alone: once the leader has exited, the kernel has taken the terminal from the session (tty_nr
      // reads 0), and a session id cannot be reused while any member lives.
      for (const st of table.values()) if (st.sid === this.pid) victims.add(st.pid);
      // And what left the session (setsid) but descends from the leader, read before anything dies.
      if (!this.#leaderExit) for (const pid of descendantsOf(this.pid, table)) victims.add(pid);
      if (!this.#leaderExit) victims.add(this.pid);
      for (const pid of victims) signalPid(pid, 'SIGKILL');
      return [...victims].sort((a, b) => a - b);
    }
    const group = await this.foregroundGroup();
    if (group === undefined) return [];
    signalPid(-group, sig);
    return [-group];
  }

  /**
   * The terminal's foreground process group: tpgid of the leader, or of any process still in the session once the
   * leader is gone; undefined when nothing of the session is left.
   */
  async foregroundGroup(): Promise<number | undefined> {
    const own = this.#leaderExit ? undefined : await readStat(this.pid);
    if (own && own.sid === this.pid && own.tpgid > 0) return own.tpgid;
    const table = await processTable();
    for (const st of table.values()) if (st.sid === this.pid && st.tpgid > 0 && st.state !== 'Z') return st.tpgid;
    return own && own.state !== 'Z' ? this.pid : undefined;
  }

  /**
   * Stops everything and closes the master now (the session gets SIGHUP from the kernel's hangup); the exit is still
   * reported once the leader is reaped, with `drained` false if output was cut.
   */
  close(): void {
    if (this.#closing) return;
    this.#closeMaster();
  }

  /**
   * What the kernel holds after libuv's read, read now into one chunk with it, up to PTY_READ_BURST_BYTES. The reads
   * are synchronous on a non-blocking descriptor, so they never wait; they run inside the stream's own 'data', so no
   * other read of the master is in flight, and the master cannot be closed under them. EAGAIN (nothing more yet), EIO
   * (the end of output: libuv's next read reports it) and a paused stream stop them.
   */
  #readOn(chunk: Buffer): Buffer {
    if (chunk.length >= PTY_READ_BURST_BYTES || this.paused || this.#closing || this.#draining || this.#stream.destroyed) return chunk;
    const more = burstScratch;
    const room = PTY_READ_BURST_BYTES - chunk.length;
    let got = 0;
    while (got < room) {
      let n: number;
      try {
        n = readSync(this.#fd, more, got, room - got, null);
      } catch {
        break; // EAGAIN: the kernel has no more yet; EIO: the end, which libuv's next read reports
      }
      if (n <= 0) break;
      got += n;
    }
    if (got === 0) return chunk;
    // A fresh buffer: the scratch is every terminal's, and the caller keeps what it is given.
    return Buffer.concat([chunk, more.subarray(0, got)], chunk.length + got);
  }

  // ---- output end and exit ----

  #leaderExited(code: number | null, signal: NodeJS.Signals | null): void {
    this.#leaderExit = { code, signal };
    this.#onLeaderExit?.(code, signal);
    // Mirror of the piped rule: once the leader is reaped, a slow receiver cannot hold up the exit drain.
    if (!this.#closing) this.#stream.resume();
    if (this.#outputEnded || this.#closing) {
      this.#reportExit();
      return;
    }
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      this.#closeMaster();
      this.#reportExit();
    }, this.#drainMs);
  }

  /** libuv's EOF: premature for a PTY master (see the top of this file); read the rest until EIO. */
  #drainAfterEof(): void {
    if (this.#draining || this.#closing) return;
    this.#draining = true;
    const buf = Buffer.allocUnsafe(PTY_DRAIN_READ_BYTES);
    let pollMs = 0;
    const next = (): void => {
      if (this.#closing || this.#stream.destroyed) return;
      this.#stream.inFlight++;
      read(this.#fd, buf, 0, buf.length, null, (err, n) => {
        this.#stream.settled();
        if (this.#closing) return;
        if (err) {
          if (err.code === 'EAGAIN') {
            // Someone reopened the slave: the output is not over. Poll (rare path), slower while it stays quiet.
            pollMs = Math.min(Math.max(PTY_DRAIN_POLL_MS, pollMs * 2), 200);
            setTimeout(next, pollMs).unref();
            return;
          }
          this.#endOfOutput(); // EIO: all of it was read
          return;
        }
        if (n === 0) {
          this.#endOfOutput();
          return;
        }
        pollMs = 0;
        this.#onData(Buffer.from(buf.subarray(0, n)));
        next();
      });
    };
    next();
  }

  #endOfOutput(): void {
    if (this.#outputEnded) return;
    this.#outputEnded = true;
    this.#inputBroken = true;
    this.#dropInput();
    if (this.#leaderExit) {
      this.#closeMaster();
      this.#reportExit();
    }
  }

  #closeMaster(): void {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    this.#dropInput();
    this.#stream.destroy();
  }

  #reportExit(): void {
    if (this.#exitReported || !this.#leaderExit) return;
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    if (!this.#closing) this.#closeMaster();
    this.#exitReported = true;
    this.#onExit({ exitCode: this.#leaderExit.code, signal: this.#leaderExit.signal, drained: this.#outputEnded });
  }

  // ---- input ----

  #dropInput(): void {
    this.#queue = [];
    this.#queued = 0;
  }

  #pumpInput(): void {
    // destroyed: the master may be closed already, before the 'error' that says why reaches #endOfOutput.
    if (this.#writing || this.#retryTimer !== undefined || this.#queue.length === 0 || this.#closing || this.#stream.destroyed) return;
    const head = this.#queue[0]!;
    this.#writing = true;
    this.#writeCalls++;
    this.#stream.inFlight++;
    write(this.#fd, head, 0, head.length, null, (err, n) => {
      this.#stream.settled();
      this.#writing = false;
      if (this.#closing || this.#queue[0] !== head) return; // dropped meanwhile
      if (err) {
        if (err.code === 'EAGAIN') {
          this.#retryLater();
          return;
        }
        // EIO: the slave side is gone; nothing queued can ever arrive.
        this.#inputBroken = true;
        this.#dropInput();
        return;
      }
      this.#retryMs = 0;
      this.#queued -= n;
      if (n === head.length) this.#queue.shift();
      else this.#queue[0] = head.subarray(n);
      this.#pumpInput();
    });
  }

  #retryLater(): void {
    this.#retryMs = this.#retryMs === 0 ? PTY_WRITE_RETRY_MIN_MS : Math.min(this.#retryMs * 2, PTY_WRITE_RETRY_MAX_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pumpInput();
    }, this.#retryMs);
  }
}
