/**
 * A process handle: one child on the daemon, owned by this client across connections. This file is its state
 * machine (spawn, reattach, recovery after a drop, exit); the output it delivers is an OutputReader's
 * (src/client/output.ts) and its stdin a StdinWindow's (src/client/stdin.ts).
 *
 * After a reconnect the handle reattaches from the last seq it delivered, and resends unacknowledged stdin from the
 * reattach's `stdinApplied`: every output byte exactly once and in order, every stdin byte exactly once.
 */
import { EventEmitter } from 'node:events';
import { ClaustrumError, ClosedError, DroppedError, ProcessLostError } from './errors.js';
import { type ExitInfo, type GapInfo, type OutputItem, OutputReader, type ScreenInfo } from './output.js';
import { StdinWindow } from './stdin.js';
import type { IncomingFrame, KillAndWaitResult, ReattachResult, SpawnParams, SpawnResult } from './wire.js';

export { type ExitInfo, type GapInfo, type OutputItem, type ScreenInfo, shellStatus, UNCONSUMED_QUEUE_CAP_BYTES } from './output.js';
export { STDIN_CHUNK_BYTES, STDIN_INITIAL_WINDOW_BYTES, STDIN_WINDOW_BYTES } from './stdin.js';

/** What a handle needs from its client (implemented by Client; kept narrow so the two stay decoupled). */
export interface HandleHost {
  /** The generation of the authenticated connection, or undefined while there is none. */
  readonly liveGeneration: number | undefined;
  /** Sends on connection `gen` only; `done` gets `undefined, result`, an RpcError, or a DroppedError. */
  sendOn(gen: number, method: string, params: object, done: (error: Error | undefined, result: unknown) => void): void;
  /**
   * A request through the client's queue (sent when connected). Interrupted by a drop, it is rejected, or sent again
   * on the next connection when `idempotent`.
   */
  request<T>(method: string, params: object, idempotent?: boolean): Promise<T>;
  /** Bytes held by output queues being iterated changed by `delta`. */
  queuedBytes(delta: number): void;
  /** The handle is finished: stop routing frames to it and stop resyncing it. */
  release(handle: { readonly id: string }): void;
  /** Forwards a handle event to the client's listeners. */
  report(event: 'gap' | 'lost', payload: GapInfo | ProcessLostError): void;
}

type State =
  /** spawn() not yet written: waits for a connection. */
  | 'unsent'
  /** spawn written on `gen`, no reply yet. */
  | 'spawning'
  /** spawn written on a connection that dropped before the reply: it may or may not exist. */
  | 'uncertain'
  /** A reattach is in flight on `gen`. */
  | 'attaching'
  /** This connection (`gen`) is the process's receiver. */
  | 'attached'
  /** Held, but the connection it was attached on is gone. */
  | 'detached'
  | 'done';

export interface ProcessHandleEvents {
  stdout: [data: Buffer, seq: number];
  stderr: [data: Buffer, seq: number];
  exit: [info: ExitInfo];
  gap: [gap: GapInfo];
  /** The process cannot be followed any more (daemon replaced, pruned, client closed). */
  lost: [error: ClaustrumError];
  /** Spawned (or found by attach): pid and startTime when asked for. */
  ready: [info: { pid?: number; startTime?: number }];
  /** Reattached after a reconnect. */
  reattach: [result: ReattachResult];
  /** A terminal's screen, standing for every frame up to its seq (extension `process.pty`). */
  screen: [screen: ScreenInfo];
  /** A terminal was resized: everything after it was drawn at this size. */
  resize: [size: { cols: number; rows: number; seq: number }];
}

/** Terminal sizes the daemon accepts (`process.spawn` `pty`, `process.resize`): 1 to 1000 columns and rows. */
export const TERMINAL_MAX_COLS = 1000;
export const TERMINAL_MAX_ROWS = 1000;

export class ProcessHandle extends EventEmitter<ProcessHandleEvents> {
  readonly id: string;
  pid: number | undefined;
  startTime: number | undefined;
  /** Resolves once the daemon has the process (spawned, or found by attach); rejects if it never will. */
  readonly ready: Promise<void>;
  /** Resolves with the exit record; rejects if the process is lost or the client closed first. */
  readonly exited: Promise<ExitInfo>;

  readonly #host: HandleHost;
  readonly #spawn: SpawnParams | undefined;
  readonly #wantPid: boolean;
  readonly #out: OutputReader;
  readonly #stdin: StdinWindow;
  #state: State;
  #gen = -1;
  #resolvedOnce = false;
  #resolveReady!: () => void;
  #rejectReady!: (e: Error) => void;
  #resolveExit!: (i: ExitInfo) => void;
  #rejectExit!: (e: Error) => void;
  #exitInfo: ExitInfo | undefined;
  /** Exited with writes unacknowledged: still held, to learn what the daemon applied. */
  #settling = false;
  /**
   * The process's pid and start time as the daemon first reported them (always asked for, whatever the caller
   * asked): after a daemon handover, the process found under this id must be this very one.
   */
  #identity: { readonly pid: number; readonly startTime: number } | undefined;

  /** @internal Created by Client.spawn / Client.attach. */
  constructor(host: HandleHost, id: string, how: { spawn: SpawnParams } | { attachFrom: number; wantPid: boolean; screen?: boolean }) {
    super();
    this.#host = host;
    this.id = id;
    const spawned = 'spawn' in how;
    this.#spawn = spawned ? { ...how.spawn, wantPid: true } : undefined;
    this.#wantPid = spawned ? how.spawn.wantPid === true : how.wantPid;
    this.#screenFirst = !spawned && how.screen === true;
    this.#state = spawned ? 'unsent' : 'detached';
    this.#out = new OutputReader(
      id,
      spawned ? 0 : how.attachFrom,
      {
        data: (stream, data, seq) => this.emit(stream, data, seq),
        gap: (gap) => {
          this.emit('gap', gap);
          host.report('gap', gap);
        },
        screen: (screen) => this.emit('screen', screen),
        resize: (cols, rows, seq) => this.emit('resize', { cols, rows, seq }),
      },
      (delta) => host.queuedBytes(delta),
    );
    this.#stdin = new StdinWindow(
      id,
      {
        get liveGeneration() {
          return host.liveGeneration;
        },
        send: (gen, params, done) => host.sendOn(gen, 'process.stdin', params, done),
      },
      spawned,
    );
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.exited = new Promise<ExitInfo>((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    // Callers may ignore either promise; their failures are also reported as events.
    this.ready.catch(noop);
    this.exited.catch(noop);
  }

  /** stdout as Buffers, exactly once and in order; ends at exit; throws if the process is lost. Iterable once. */
  get stdout(): AsyncIterable<Buffer> {
    return this.#out.stdout;
  }

  get stderr(): AsyncIterable<Buffer> {
    return this.#out.stderr;
  }

  /** stdout, stderr and gaps interleaved in seq order (the order the daemon read them in). Iterable once. */
  output(): AsyncIterable<OutputItem> {
    return this.#out.output;
  }

  /** The last seq delivered (the reattach point). */
  get lastSeq(): number {
    return this.#out.lastSeq;
  }

  /** Gaps reported so far. */
  get gaps(): readonly GapInfo[] {
    return this.#out.gaps;
  }

  /** Frames received again after a reconnect and dropped as duplicates. */
  get duplicatesDropped(): number {
    return this.#out.duplicates;
  }

  /** The exit record once the exit frame arrived. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  /** Stdin bytes written but not yet acknowledged by the daemon. */
  get stdinPending(): number {
    return this.#stdin.pending;
  }

  /** Stdin writes the daemon refused for now (queue full, or the offset gap behind such a refusal) and that were resent. */
  get stdinRefusals(): number {
    return this.#stdin.refusals;
  }

  /** Stdin writes sent again that the daemon had already applied (it dropped them by their offset). */
  get stdinResentDuplicates(): number {
    return this.#stdin.resentDuplicates;
  }

  /** Stdin bytes the daemon has acknowledged. */
  get stdinApplied(): number {
    return this.#stdin.applied;
  }

  get finished(): boolean {
    return this.#state === 'done';
  }

  // ---- stdin ----

  /**
   * Queues bytes for the child's stdin at the next offsets. Resolves with the daemon's applied count once they are
   * acknowledged (accepted, not necessarily read by the child); rejects if they never will be (process exited or
   * lost, stdin closed). The returned promise may be ignored.
   */
  write(data: string | Uint8Array): Promise<number> {
    return this.#stdin.write(toBuffer(data));
  }

  /** Writes `data` if given, then closes the child's stdin after every byte (extension `process.stdin.eof`). */
  end(data?: string | Uint8Array): Promise<void> {
    return this.#stdin.end(data === undefined ? undefined : toBuffer(data));
  }

  // ---- signals ----

  /** `process.kill`: fire and forget (rejected with InterruptedError if the connection drops before the reply). */
  async kill(signal?: string): Promise<void> {
    await this.#host.request('process.kill', signal === undefined ? { id: this.id } : { id: this.id, signal });
  }

  /** `process.killAndWait`: signal, wait up to `timeoutMs` (default 3 s), then escalate to the group's SIGKILL. */
  killAndWait(options: { signal?: string; timeoutMs?: number; escalate?: boolean } = {}): Promise<KillAndWaitResult> {
    return this.#host.request<KillAndWaitResult>('process.killAndWait', { id: this.id, ...options });
  }

  // ---- terminals ----

  /**
   * `process.resize` (extension `process.pty`): the terminal takes this size and the program gets SIGWINCH; a
   * `resize` frame records it. Resolves once the daemon applied it. Sent again after a dropped connection (setting a
   * size twice is harmless), in the order resizes were asked for. Throws RangeError for a size the daemon refuses.
   */
  async resize(cols: number, rows: number): Promise<void> {
    checkTerminalSize(cols, rows);
    await this.#host.request('process.resize', { id: this.id, cols, rows }, true);
  }

  /** Stops following the process (it keeps running on the daemon); iterations end, `exited` rejects. */
  detach(): void {
    this.#finish(new ClosedError(`process ${this.id}: detached`), false);
  }

  // ---- driven by the client ----

  /** @internal True while no daemon is known to have it: its spawn was never written, or its outcome is unknown. */
  get spawnPending(): boolean {
    return this.#state === 'unsent' || this.#state === 'uncertain';
  }

  /** @internal The connection it was using is gone. */
  channelDown(): void {
    this.#stdin.down();
    if (this.#state === 'spawning') this.#state = 'uncertain';
    // A reattach that was looking for an uncertain spawn proved nothing: the spawn is still uncertain.
    else if (this.#state === 'attaching') this.#state = this.#recovering ? 'uncertain' : 'detached';
    else if (this.#state === 'attached') this.#state = 'detached';
  }

  /**
   * @internal Brings the handle onto connection `gen`: spawn (again, if it is known not to exist), or reattach from
   * the last seq delivered. Resolves when done or when the connection failed (the next one retries).
   */
  resync(gen: number): Promise<void> {
    switch (this.#state) {
      case 'unsent':
        return this.#sendSpawn(gen);
      case 'uncertain':
        // The spawn may have happened: look before spawning again (a second spawn would replace the first child).
        return this.#reattach(gen, 0, true);
      case 'detached':
        return this.#reattach(gen, this.#screenFirst ? undefined : this.#out.lastSeq, false);
      default:
        if (this.#settling) this.#settleAfterExit(gen);
        return Promise.resolve();
    }
  }

  /** @internal A frame for this process, from whatever connection is current. */
  deliver(frame: IncomingFrame): void {
    if (this.#state === 'done') return;
    // Frames before a reattach's reply are its replay (a spawn has none).
    const exit = this.#out.deliver(frame, this.#state === 'attaching');
    if (exit === undefined) return;
    this.#exitInfo = exit;
    this.#state = 'done';
    this.#stdin.halt();
    if (!this.#resolvedOnce) {
      this.#resolvedOnce = true;
      this.#resolveReady();
    }
    if (!this.#stdin.unsettled) this.#host.release(this);
    else {
      // Writes still unacknowledged may have landed through a dropped connection: ask the daemon (it keeps the
      // exited process's counters) before settling them, on this connection or, if it drops, the next one.
      this.#settling = true;
      if (this.#host.liveGeneration !== undefined) this.#settleAfterExit(this.#host.liveGeneration);
    }
    this.emit('exit', exit);
    this.#resolveExit(exit);
  }

  /** @internal Ends the handle without an exit: lost, failed to spawn, detached, or the client closed. */
  fail(err: ClaustrumError): void {
    if (this.#settling) {
      this.#settling = false;
      this.#stdin.fail(err);
      this.#host.release(this);
    }
    this.#finish(err, true);
  }

  /** After the exit: learn `stdinApplied` and `stdinClosed` once more, settle the writes, fail the rest, let go. */
  #settleAfterExit(gen: number): void {
    this.#host.sendOn(gen, 'process.reattach', { id: this.id, fromSeq: this.#out.lastSeq }, (err, result) => {
      if (!this.#settling || err instanceof DroppedError) return;
      if (err === undefined) {
        const r = result as ReattachResult;
        // (Writes queued before an attached process's offsets were known were never sent.)
        if (r.found) this.#stdin.reported(r.stdinApplied, r.stdinClosed === true);
      }
      this.#settling = false;
      this.#stdin.fail(err ?? new ClaustrumError('PROCESS_EXITED', `process ${this.id} exited before taking this stdin`));
      this.#host.release(this);
    });
  }

  #sendSpawn(gen: number): Promise<void> {
    this.#state = 'spawning';
    this.#gen = gen;
    return new Promise((resolve) => {
      this.#host.sendOn(gen, 'process.spawn', this.#spawn!, (err, result) => {
        resolve();
        if (this.#state !== 'spawning' || this.#gen !== gen) return;
        if (err instanceof DroppedError) {
          this.#state = 'uncertain';
          return;
        }
        if (err) {
          this.#finish(err, true);
          return;
        }
        const r = result as SpawnResult;
        this.#attached(gen, 'pid' in r ? { pid: r.pid, startTime: r.startTime } : {});
      });
      // The daemon orders a stdin naming a pending spawn after it: stdin may flow at once.
      this.#stdin.open(gen, false);
    });
  }

  /** `fromSeq` undefined: the first attach of `attach(id, {screen: true})`, which asks for the screen as it is. */
  #reattach(gen: number, fromSeq: number | undefined, recovering: boolean): Promise<void> {
    this.#state = 'attaching';
    this.#recovering = recovering;
    this.#gen = gen;
    const from = fromSeq === undefined ? { screen: true } : { fromSeq };
    // (The pid is always asked for: see #identity.)
    const params = { id: this.id, ...from, wantPid: true };
    return new Promise((resolve) => {
      this.#host.sendOn(gen, 'process.reattach', params, (err, result) => {
        if (this.#state !== 'attaching' || this.#gen !== gen) return resolve();
        if (err instanceof DroppedError) {
          this.#state = recovering ? 'uncertain' : 'detached';
          return resolve();
        }
        if (err) {
          this.#finish(err, true);
          return resolve();
        }
        const r = result as ReattachResult;
        if (!r.found) {
          if (recovering) {
            // Not there: the interrupted spawn never happened (or failed); doing it now is safe.
            void this.#sendSpawn(gen).then(resolve);
            return;
          }
          const why = this.#resolvedOnce
            ? 'the daemon no longer knows it (replaced, restarted, or the process was pruned)'
            : 'no such process on the daemon';
          this.#finish(new ProcessLostError(this.id, why), true);
          return resolve();
        }
        const same =
          this.#identity === undefined || r.pid === undefined || (r.pid === this.#identity.pid && r.startTime === this.#identity.startTime);
        if (!same) {
          // A daemon took over and has a process by this id, but not this one (started after it was lost).
          this.#finish(
            new ProcessLostError(this.id, `the daemon has another process by this id now (pid ${r.pid}, not ${this.#identity!.pid})`),
            true,
          );
          return resolve();
        }
        // Once answered, the screen was given (or every frame was): later reattaches resume from the last seq.
        this.#screenFirst = false;
        if (this.#resolvedOnce) this.emit('reattach', r);
        // A stream replayed up to its exit frame finished the handle already.
        if (this.#state === 'attaching') {
          this.#stdin.rebase(r.stdinApplied);
          this.#stdin.reported(r.stdinApplied, r.stdinClosed === true);
          this.#attached(gen, r.pid !== undefined ? { pid: r.pid, startTime: r.startTime } : {});
        }
        resolve();
      });
      // A reattach's long replay must not hold stdin back; the probe learns where the daemon is first.
      if (!recovering) this.#stdin.open(gen, true);
    });
  }

  /** The reattach in flight is looking for a spawn whose outcome is unknown (not following a known process). */
  #recovering = false;
  /** attach(id, {screen: true}) not yet answered: ask for the screen, not the frames from a seq. */
  #screenFirst: boolean;

  #attached(gen: number, info: { pid?: number; startTime?: number }): void {
    this.#state = 'attached';
    this.#gen = gen;
    if (info.pid !== undefined && info.startTime !== undefined) this.#identity ??= { pid: info.pid, startTime: info.startTime };
    if (!this.#resolvedOnce) {
      this.#resolvedOnce = true;
      // The pid is always asked for (see #identity), but only shown to a caller who asked.
      const shown = this.#wantPid ? info : {};
      if (shown.pid !== undefined) this.pid = shown.pid;
      if (shown.startTime !== undefined) this.startTime = shown.startTime;
      this.#resolveReady();
      this.emit('ready', shown);
    }
    this.#stdin.open(gen, true);
  }

  #finish(err: Error, asLost: boolean): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#host.release(this);
    this.#stdin.fail(err);
    this.#out.fail(err);
    this.#rejectReady(err);
    this.#rejectExit(err);
    if (asLost && (err instanceof ProcessLostError || err instanceof ClosedError)) {
      this.emit('lost', err);
      if (err instanceof ProcessLostError) this.#host.report('lost', err);
    }
  }
}

/** Throws RangeError unless both are integers from 1 to the daemon's maximum (1000). */
export function checkTerminalSize(cols: number, rows: number): void {
  const ok = (n: number, max: number) => Number.isInteger(n) && n >= 1 && n <= max;
  if (!ok(cols, TERMINAL_MAX_COLS) || !ok(rows, TERMINAL_MAX_ROWS)) {
    throw new RangeError(`terminal size ${cols}x${rows}: columns and rows must be integers from 1 to ${TERMINAL_MAX_COLS}`);
  }
}

function toBuffer(data: string | Uint8Array): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function noop(): void {}
