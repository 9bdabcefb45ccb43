/**
 * A process handle: one child on the daemon, as this client holds it across connections.
 *
 * Output: every frame is delivered exactly once and in seq order. The handle remembers the last seq it delivered;
 * a frame at or below it is a duplicate (a replay overlapping what was already seen) and dropped; a frame above the
 * next expected seq means the daemon evicted the frames in between, which is reported as a `gap` event (and in the
 * exit record) before the frame is delivered. After a reconnect the client reattaches from that last seq.
 *
 * Stdin: `write()` assigns byte offsets itself and keeps every chunk until the daemon's `applied` count covers it.
 * Resending is always safe (the daemon trims or drops bytes below `applied`), so after a drop, a refused write
 * (queue full) or an offset gap, the handle simply resends everything unacknowledged, from the reattach's
 * `stdinApplied`: the child receives each byte exactly once.
 */
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { ClaustrumError, ClosedError, ProcessLostError, RpcError } from './errors.js';
import { ByteQueue } from './queue.js';
import type { KillAndWaitResult, OutputStream, ReattachResult, SpawnParams, SpawnResult, StreamFrame } from './wire.js';

/** Raw bytes per `process.stdin` request: 192 KiB is 256 KiB of base64, far below the 1 MiB line cap. */
export const STDIN_CHUNK_BYTES = 192 * 1024;
/**
 * Unacknowledged stdin bytes in flight per process: the window starts at STDIN_INITIAL_WINDOW_BYTES on every
 * connection and grows by what gets acknowledged, up to STDIN_WINDOW_BYTES, so a reconnect does not answer a drop
 * with a burst of a whole megabyte of resends.
 */
export const STDIN_WINDOW_BYTES = 1024 * 1024;
export const STDIN_INITIAL_WINDOW_BYTES = 64 * 1024;
/** What an output queue nobody iterates may hold before it is dropped (its iteration then throws). */
export const UNCONSUMED_QUEUE_CAP_BYTES = 4 * 1024 * 1024;

const ERR_STDIN_GAP = -32003;
const ERR_STDIN_FULL = -32002;

export interface GapInfo {
  readonly processId: string;
  /** First missing seq. */
  readonly fromSeq: number;
  /** Last missing seq (inclusive). */
  readonly toSeq: number;
}

export interface ExitInfo {
  readonly processId: string;
  /** The exit status, or -1 when a signal ended the process. */
  readonly exitCode: number;
  /** `SIGTERM`-style name of the signal that ended it. */
  readonly signal?: string;
  readonly killedBy?: 'client' | 'shutdown';
  /** A shell's view: `exitCode`, or 128 + the signal's number. */
  readonly status: number;
  readonly seq: number;
  /** Every gap reported while the handle was held (empty when nothing was lost). */
  readonly gaps: readonly GapInfo[];
}

export type OutputItem =
  | { readonly type: OutputStream; readonly seq: number; readonly data: Buffer }
  | { readonly type: 'gap'; readonly fromSeq: number; readonly toSeq: number };

/** What a handle needs from its client (implemented by Client; kept narrow so the two stay decoupled). */
export interface HandleHost {
  /** The generation of the authenticated connection, or undefined while there is none. */
  readonly liveGeneration: number | undefined;
  /** Sends on connection `gen` only; `done` gets `undefined, result`, an RpcError, or a DroppedError. */
  sendOn(gen: number, method: string, params: object, done: (error: Error | undefined, result: unknown) => void): void;
  /** A request through the client's queue (sent when connected; rejected if interrupted). */
  request<T>(method: string, params: object): Promise<T>;
  /** Bytes held by output queues being iterated changed by `delta`. */
  queuedBytes(delta: number): void;
  /** The handle is finished: stop routing frames to it and stop reattaching it. */
  release(handle: ProcessHandle): void;
  /** Forwards a handle event to the client's listeners. */
  report(event: 'gap' | 'lost', payload: GapInfo | ProcessLostError): void;
}

/** The connection a request was written to dropped before its reply. */
export class DroppedError extends Error {}

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

interface StdinChunk {
  readonly offset: number;
  readonly data: Buffer;
  readonly end: number;
  readonly eof: boolean;
}

interface Waiter {
  readonly end: number;
  readonly eof: boolean;
  readonly resolve: (applied: number) => void;
  readonly reject: (err: Error) => void;
}

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
}

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
  #state: State;
  #gen = -1;
  /**
   * The connection stdin may be sent on: set as soon as the spawn or the reattach is written (the daemon orders a
   * stdin naming a pending spawn after it, and a reattach's long replay must not hold stdin back), -1 while the
   * process is not known to exist there.
   */
  #stdinGen = -1;
  #lastSeq: number;
  readonly #gaps: GapInfo[] = [];
  #duplicates = 0;
  #resolveReady!: () => void;
  #rejectReady!: (e: Error) => void;
  #resolveExit!: (i: ExitInfo) => void;
  #rejectExit!: (e: Error) => void;
  #exitInfo: ExitInfo | undefined;
  readonly #queues: { stdout: ByteQueue<Buffer>; stderr: ByteQueue<Buffer>; output: ByteQueue<OutputItem> };

  // stdin
  #chunks: StdinChunk[] = [];
  #waiters: Waiter[] = [];
  #nextOffset = 0;
  #applied = 0;
  /** Index in #chunks of the next chunk to send. */
  #sendIdx = 0;
  /** Bumped at every rewind: replies to older sends still count as acknowledgements, their errors do not. */
  #pumpGen = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #fullRetries = 0;
  #refusals = 0;
  #resentDuplicates = 0;
  #window = STDIN_INITIAL_WINDOW_BYTES;
  /** A zero-byte probe is out: it learns the daemon's `applied` before anything is resent. */
  #probing = false;
  #eofQueued = false;
  #eofAcked = false;
  #stdinError: Error | undefined;
  /** Exited with writes unacknowledged: still held, to learn what the daemon applied. */
  #settling = false;
  /**
   * Whether stdin offsets are known. A spawned process starts at 0; an attached one at the `stdinApplied` of the
   * first reattach (someone else may have written before), so until then writes queue without being sent.
   */
  #stdinBased: boolean;

  /** @internal Created by Client.spawn / Client.attach. */
  constructor(host: HandleHost, id: string, how: { spawn: SpawnParams } | { attachFrom: number; wantPid: boolean }) {
    super();
    this.#host = host;
    this.id = id;
    if ('spawn' in how) {
      this.#spawn = how.spawn;
      this.#wantPid = how.spawn.wantPid === true;
      this.#state = 'unsent';
      this.#lastSeq = 0;
      this.#stdinBased = true;
    } else {
      this.#spawn = undefined;
      this.#wantPid = how.wantPid;
      this.#state = 'detached';
      this.#lastSeq = how.attachFrom;
      this.#stdinBased = false;
    }
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
    const track = (q: { consumed: boolean }) => (delta: number) => {
      if (q.consumed) host.queuedBytes(delta);
      else this.#checkUnconsumed();
    };
    const stdout: ByteQueue<Buffer> = new ByteQueue<Buffer>(
      (b) => b.length,
      (d) => track(stdout)(d),
    );
    const stderr: ByteQueue<Buffer> = new ByteQueue<Buffer>(
      (b) => b.length,
      (d) => track(stderr)(d),
    );
    const output: ByteQueue<OutputItem> = new ByteQueue<OutputItem>(
      (i) => (i.type === 'gap' ? 0 : i.data.length),
      (d) => track(output)(d),
    );
    this.#queues = { stdout, stderr, output };
  }

  /** stdout as Buffers, exactly once and in order; ends at exit; throws if the process is lost. Iterable once. */
  get stdout(): AsyncIterable<Buffer> {
    return this.#iterable(this.#queues.stdout);
  }

  get stderr(): AsyncIterable<Buffer> {
    return this.#iterable(this.#queues.stderr);
  }

  /** stdout, stderr and gaps interleaved in seq order (the order the daemon read them in). Iterable once. */
  output(): AsyncIterable<OutputItem> {
    return this.#iterable(this.#queues.output);
  }

  /** The last seq delivered (the reattach point). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Gaps reported so far. */
  get gaps(): readonly GapInfo[] {
    return this.#gaps;
  }

  /** Frames received again after a reconnect and dropped as duplicates. */
  get duplicatesDropped(): number {
    return this.#duplicates;
  }

  /** The exit record once the exit frame arrived. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  /** Stdin bytes written but not yet acknowledged by the daemon. */
  get stdinPending(): number {
    return this.#nextOffset - this.#applied;
  }

  /** Stdin writes the daemon refused for now (queue full, or the offset gap behind such a refusal) and that were resent. */
  get stdinRefusals(): number {
    return this.#refusals;
  }

  /** Stdin writes sent again that the daemon had already applied (it dropped them by their offset). */
  get stdinResentDuplicates(): number {
    return this.#resentDuplicates;
  }

  /** Stdin bytes the daemon has acknowledged. */
  get stdinApplied(): number {
    return this.#applied;
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
    return this.#enqueue(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength), false);
  }

  /** Writes `data` if given, then closes the child's stdin after every byte (extension `process.stdin.eof`). */
  end(data?: string | Uint8Array): Promise<void> {
    if (data !== undefined && data.length > 0) void this.write(data).catch(noop);
    return this.#enqueue(Buffer.alloc(0), true).then(noop);
  }

  #enqueue(data: Buffer, eof: boolean): Promise<number> {
    if (this.#stdinError) return rejected(this.#stdinError);
    if (this.#eofQueued) return rejected(new ClaustrumError('STDIN_ENDED', `process ${this.id}: stdin already ended`));
    if (eof) this.#eofQueued = true;
    const p = new Promise<number>((resolve, reject) => {
      for (let at = 0; at < data.length; at += STDIN_CHUNK_BYTES) {
        const piece = data.subarray(at, Math.min(data.length, at + STDIN_CHUNK_BYTES));
        this.#chunks.push({ offset: this.#nextOffset, data: piece, end: this.#nextOffset + piece.length, eof: false });
        this.#nextOffset += piece.length;
      }
      if (eof) this.#chunks.push({ offset: this.#nextOffset, data: data.subarray(0, 0), end: this.#nextOffset, eof: true });
      this.#waiters.push({ end: this.#nextOffset, eof, resolve, reject });
    });
    p.catch(noop);
    this.#settleStdin();
    this.#pump();
    return p;
  }

  #pump(): void {
    if (this.#retryTimer !== undefined || this.#stdinError || this.#probing || this.#state === 'done') return;
    if (this.#stdinGen < 0 || this.#host.liveGeneration !== this.#stdinGen) return;
    let inflight = 0;
    for (let i = 0; i < this.#sendIdx; i++) inflight += this.#chunks[i]!.data.length;
    while (this.#sendIdx < this.#chunks.length && (inflight < this.#window || this.#sendIdx === 0)) {
      const chunk = this.#chunks[this.#sendIdx++]!;
      inflight += chunk.data.length;
      const pumpGen = this.#pumpGen;
      const params = chunk.eof
        ? { id: this.id, data: chunk.data, offset: chunk.offset, eof: true }
        : { id: this.id, data: chunk.data, offset: chunk.offset };
      this.#host.sendOn(this.#stdinGen, 'process.stdin', params, (err, result) => this.#onStdinReply(chunk, pumpGen, err, result));
    }
  }

  #onStdinReply(chunk: StdinChunk, pumpGen: number, err: Error | undefined, result: unknown): void {
    if (this.#stdinError) return;
    if (err === undefined) {
      if ((result as { duplicate?: unknown }).duplicate === true && chunk.data.length > 0) this.#resentDuplicates++;
      this.#acknowledge(result);
      if (chunk.eof) this.#eofAcked = true;
      if (pumpGen === this.#pumpGen) this.#fullRetries = 0;
      this.#settleStdin();
      this.#pump();
      return;
    }
    if (err instanceof DroppedError || pumpGen !== this.#pumpGen) return; // the reattach (or the newer rewind) resends
    if (err instanceof RpcError && (err.rpcCode === ERR_STDIN_FULL || err.rpcCode === ERR_STDIN_GAP)) {
      // Queue full: the child is not reading; try again later from the first unacknowledged byte. A gap only follows
      // a refused write pipelined before it and is healed by the same resend.
      this.#refusals++;
      const delay = err.rpcCode === ERR_STDIN_FULL ? Math.min(1000, 20 * 2 ** this.#fullRetries++) : 0;
      this.#rewind();
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#pump();
      }, delay);
      return;
    }
    this.#failStdin(err);
  }

  /** An attached process's stdin starts where the daemon is: shift what was queued (nothing was sent yet). */
  #rebaseStdin(base: number): void {
    this.#stdinBased = true;
    this.#chunks = this.#chunks.map((c) => ({ ...c, offset: c.offset + base, end: c.end + base }));
    this.#waiters = this.#waiters.map((w) => ({ ...w, end: w.end + base }));
    this.#nextOffset += base;
    this.#applied = base;
  }

  /** Takes a reply's `applied` (the daemon's count of accepted bytes); the window grows by what it newly covers. */
  #acknowledge(result: unknown): void {
    const applied = (result as { applied?: unknown }).applied;
    if (typeof applied !== 'number' || applied <= this.#applied) return;
    this.#window = Math.min(STDIN_WINDOW_BYTES, this.#window + (applied - this.#applied));
    this.#applied = applied;
  }

  /** Drops acknowledged chunks and settles the writes they complete. */
  #settleStdin(): void {
    let drop = 0;
    while (drop < this.#chunks.length) {
      const c = this.#chunks[drop]!;
      if (c.eof ? !this.#eofAcked : c.end > this.#applied) break;
      drop++;
    }
    if (drop > 0) {
      this.#chunks.splice(0, drop);
      this.#sendIdx = Math.max(0, this.#sendIdx - drop);
    }
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0]!;
      if (w.eof ? !this.#eofAcked : w.end > this.#applied) break;
      this.#waiters.shift();
      w.resolve(this.#applied);
    }
  }

  /**
   * Stdin may flow on connection `gen` from now on: resend everything unacknowledged there. With `probe`, first ask
   * where the daemon is (a zero-byte write at our acknowledged offset is always a duplicate, answered with the
   * daemon's `applied` at once, even while a reattach replay is still streaming), so what already landed through
   * the dropped connection is not sent again.
   */
  #openStdin(gen: number, probe: boolean): void {
    if (this.#stdinGen === gen || !this.#stdinBased) return;
    this.#stdinGen = gen;
    this.#rewind();
    this.#window = STDIN_INITIAL_WINDOW_BYTES;
    if (probe && this.#chunks.length > 0 && this.#host.liveGeneration === gen) {
      this.#probing = true;
      const pumpGen = this.#pumpGen;
      this.#host.sendOn(gen, 'process.stdin', { id: this.id, offset: this.#applied }, (err, result) => {
        if (pumpGen !== this.#pumpGen || this.#stdinGen !== gen || this.#stdinError) return;
        this.#probing = false;
        if (err instanceof DroppedError) return;
        if (err) return this.#failStdin(err);
        this.#acknowledge(result);
        this.#window = STDIN_INITIAL_WINDOW_BYTES;
        this.#settleStdin();
        this.#pump();
      });
    }
    this.#pump();
  }

  /** Resend every unacknowledged chunk on the next pump; replies to what was sent before no longer steer. */
  #rewind(): void {
    this.#sendIdx = 0;
    this.#probing = false;
    this.#pumpGen++;
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
  }

  #failStdin(err: Error): void {
    if (this.#stdinError) return;
    this.#stdinError = err;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#chunks = [];
    for (const w of this.#waiters.splice(0)) w.reject(err);
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
    this.#stdinGen = -1;
    this.#probing = false;
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    switch (this.#state) {
      case 'spawning':
        this.#state = 'uncertain';
        break;
      case 'attaching':
        // A reattach that was looking for an uncertain spawn proved nothing: the spawn is still uncertain.
        this.#state = this.#recovering ? 'uncertain' : 'detached';
        break;
      case 'attached':
        this.#state = 'detached';
        break;
      default:
    }
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
        return this.#reattach(gen, this.#lastSeq, false);
      default:
        if (this.#settling) this.#settleAfterExit(gen);
        return Promise.resolve();
    }
  }

  /** After the exit: learn `stdinApplied` and `stdinClosed` once more, settle the writes, fail the rest, let go. */
  #settleAfterExit(gen: number): void {
    this.#host.sendOn(gen, 'process.reattach', { id: this.id, fromSeq: this.#lastSeq }, (err, result) => {
      if (!this.#settling || err instanceof DroppedError) return;
      if (err === undefined) {
        const r = result as ReattachResult;
        // (Writes queued before an attached process's offsets were known were never sent.)
        if (r.found && this.#stdinBased) {
          this.#applied = Math.max(this.#applied, r.stdinApplied);
          if (r.stdinClosed) this.#eofAcked = true;
          this.#settleStdin();
        }
      }
      this.#settling = false;
      this.#failStdin(err ?? new ClaustrumError('PROCESS_EXITED', `process ${this.id} exited before taking this stdin`));
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
      this.#openStdin(gen, false);
    });
  }

  #reattach(gen: number, fromSeq: number, recovering: boolean): Promise<void> {
    this.#state = 'attaching';
    this.#recovering = recovering;
    this.#gen = gen;
    const params = this.#wantPid ? { id: this.id, fromSeq, wantPid: true } : { id: this.id, fromSeq };
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
        if (this.#resolvedOnce) this.emit('reattach', r);
        // A stream replayed up to its exit frame finished the handle already.
        if (this.#state === 'attaching') {
          if (!this.#stdinBased) this.#rebaseStdin(r.stdinApplied);
          this.#applied = Math.max(this.#applied, r.stdinApplied);
          if (r.stdinClosed) this.#eofAcked = true;
          this.#settleStdin();
          this.#attached(gen, r.pid !== undefined ? { pid: r.pid, startTime: r.startTime } : {});
        }
        resolve();
      });
      if (!recovering) this.#openStdin(gen, true);
    });
  }

  #resolvedOnce = false;
  /** The reattach in flight is looking for a spawn whose outcome is unknown (not following a known process). */
  #recovering = false;

  #attached(gen: number, info: { pid?: number; startTime?: number }): void {
    this.#state = 'attached';
    this.#gen = gen;
    if (!this.#resolvedOnce) {
      this.#resolvedOnce = true;
      if (info.pid !== undefined) this.pid = info.pid;
      if (info.startTime !== undefined) this.startTime = info.startTime;
      this.#resolveReady();
      this.emit('ready', info);
    }
    this.#openStdin(gen, true);
  }

  /** @internal A frame for this process, from whatever connection is current. */
  deliver(frame: StreamFrame): void {
    if (this.#state === 'done') return;
    if (frame.seq <= this.#lastSeq) {
      this.#duplicates++;
      return;
    }
    if (frame.seq > this.#lastSeq + 1) {
      const gap: GapInfo = { processId: this.id, fromSeq: this.#lastSeq + 1, toSeq: frame.seq - 1 };
      this.#gaps.push(gap);
      this.#queues.output.push({ type: 'gap', fromSeq: gap.fromSeq, toSeq: gap.toSeq });
      this.emit('gap', gap);
      this.#host.report('gap', gap);
    }
    this.#lastSeq = frame.seq;
    if (frame.stream === 'exit') {
      const info: ExitInfo = {
        processId: this.id,
        exitCode: frame.exitCode,
        ...(frame.signal !== undefined ? { signal: frame.signal } : {}),
        ...(frame.killedBy !== undefined ? { killedBy: frame.killedBy } : {}),
        status: shellStatus(frame.exitCode, frame.signal),
        seq: frame.seq,
        gaps: [...this.#gaps],
      };
      this.#exitInfo = info;
      this.#state = 'done';
      if (!this.#resolvedOnce) {
        this.#resolvedOnce = true;
        this.#resolveReady();
      }
      if (this.#waiters.length === 0) this.#host.release(this);
      else {
        // Writes still unacknowledged may have landed through a dropped connection: ask the daemon (it keeps the
        // exited process's counters) before settling them, on this connection or, if it drops, the next one.
        this.#settling = true;
        if (this.#host.liveGeneration !== undefined) this.#settleAfterExit(this.#host.liveGeneration);
      }
      for (const q of Object.values(this.#queues)) q.end();
      this.emit('exit', info);
      this.#resolveExit(info);
      return;
    }
    this.#queues[frame.stream].push(frame.data);
    this.#queues.output.push({ type: frame.stream, seq: frame.seq, data: frame.data });
    this.emit(frame.stream, frame.data, frame.seq);
  }

  /** @internal Ends the handle without an exit: lost, failed to spawn, detached, or the client closed. */
  fail(err: ClaustrumError): void {
    if (this.#settling) {
      this.#settling = false;
      this.#failStdin(err);
      this.#host.release(this);
    }
    this.#finish(err, true);
  }

  #finish(err: Error, asLost: boolean): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#host.release(this);
    this.#failStdin(err);
    for (const q of Object.values(this.#queues)) q.fail(err);
    this.#rejectReady(err);
    this.#rejectExit(err);
    if (asLost && (err instanceof ProcessLostError || err instanceof ClosedError)) {
      this.emit('lost', err);
      if (err instanceof ProcessLostError) this.#host.report('lost', err);
    }
  }

  #iterable<T>(q: ByteQueue<T>): AsyncIterable<T> {
    return {
      [Symbol.asyncIterator]: () => {
        const it = q[Symbol.asyncIterator]();
        // From now on this queue's bytes count toward the client's read pause (see Client).
        this.#host.queuedBytes(q.bytes);
        return it;
      },
    };
  }

  /** An output queue nobody iterates must not grow without bound: past the cap it is dropped, loudly. */
  #checkUnconsumed(): void {
    for (const [name, q] of Object.entries(this.#queues) as [string, ByteQueue<unknown>][]) {
      if (!q.consumed && q.bytes > UNCONSUMED_QUEUE_CAP_BYTES) {
        q.discard(
          new ClaustrumError(
            'NOT_ITERATED',
            `process ${this.id}: ${name} was not iterated while more than ${UNCONSUMED_QUEUE_CAP_BYTES} bytes arrived; take the iterator before awaiting, or use the events`,
          ),
        );
      }
    }
  }
}

/** 128 + the signal's number when a signal ended the process, as a shell reports it. */
export function shellStatus(exitCode: number, signal: string | undefined): number {
  if (exitCode >= 0 || signal === undefined) return exitCode;
  const n = (osConstants.signals as Record<string, number | undefined>)[signal];
  return n === undefined ? exitCode : 128 + n;
}

function noop(): void {}

function rejected<T>(err: Error): Promise<T> {
  const p = Promise.reject<T>(err);
  p.catch(noop);
  return p;
}
