/**
 * A process's stdin as the client sends it: byte offsets it assigns itself, and every chunk kept until the daemon's
 * `applied` count covers it.
 *
 * Resending is always safe (the daemon trims or drops bytes below `applied`), so after a drop, a refused write
 * (queue full) or an offset gap, the window simply resends everything unacknowledged: the child receives each byte
 * exactly once. What it sends on is given to it (`StdinLink`), so it is unit-tested without a daemon.
 */
import { ClaustrumError, DroppedError, RpcError } from './errors.js';

/**
 * Raw bytes per `process.stdin` request: 95 KiB is 129,708 characters of base64, so the base64 string a request makes
 * (on the client, and on the daemon's general path) stays under V8's 128 KiB large-object threshold, over which every
 * string is mapped from fresh pages. Measured end to end (bench/figures/stdin-chunks.mjs, bench/METHOD.md "stdin chunk
 * size"): from 95 to 96 KiB the client's CPU per MiB of NDJSON stdin doubled (2.3 → 5.2 ms), and 95 KiB cost the client
 * and the daemon the least of the sizes under the threshold (32–95 KiB: fewer requests, less per-request work).
 */
export const STDIN_CHUNK_BYTES = 95 * 1024;
/**
 * Unacknowledged stdin bytes in flight per process: the window starts at STDIN_INITIAL_WINDOW_BYTES on every
 * connection and grows by what gets acknowledged, up to STDIN_WINDOW_BYTES, so a reconnect does not answer a drop
 * with a burst of a whole megabyte of resends.
 */
export const STDIN_WINDOW_BYTES = 1024 * 1024;
export const STDIN_INITIAL_WINDOW_BYTES = 64 * 1024;
/** The longest wait before a write refused with "queue full" is tried again (it doubles from 20 ms). */
export const STDIN_FULL_RETRY_MAX_MS = 1000;

const ERR_STDIN_GAP = -32003;
const ERR_STDIN_FULL = -32002;

export interface StdinRequest {
  readonly id: string;
  readonly data?: Buffer;
  readonly offset: number;
  readonly eof?: true;
}

/** Where the window sends (the client, or a test). */
export interface StdinLink {
  /** The generation of the authenticated connection, or undefined while there is none. */
  readonly liveGeneration: number | undefined;
  /** Sends on connection `gen` only; `done` gets `undefined, result`, an RpcError, or a DroppedError. */
  send(gen: number, params: StdinRequest, done: (error: Error | undefined, result: unknown) => void): void;
}

interface Chunk {
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

export class StdinWindow {
  readonly #id: string;
  readonly #link: StdinLink;
  #chunks: Chunk[] = [];
  #waiters: Waiter[] = [];
  #nextOffset = 0;
  #applied = 0;
  /** Index in #chunks of the next chunk to send. */
  #sendIdx = 0;
  /** Bumped at every rewind: replies to older sends still count as acknowledgements, their errors do not. */
  #pumpGen = 0;
  /** The connection stdin may be sent on, -1 while the process is not known to exist there. */
  #gen = -1;
  #retryTimer: NodeJS.Timeout | undefined;
  #fullRetries = 0;
  #refusals = 0;
  #resentDuplicates = 0;
  #window = STDIN_INITIAL_WINDOW_BYTES;
  /** A zero-byte probe is out: it learns the daemon's `applied` before anything is resent. */
  #probing = false;
  #eofQueued = false;
  #eofAcked = false;
  #error: Error | undefined;
  /** The process exited: nothing more is sent. */
  #halted = false;
  /**
   * Whether offsets are known. A spawned process starts at 0; an attached one at the `stdinApplied` of the first
   * reattach (someone else may have written before), so until then writes queue without being sent.
   */
  #based: boolean;

  constructor(id: string, link: StdinLink, based: boolean) {
    this.#id = id;
    this.#link = link;
    this.#based = based;
  }

  /** Bytes written but not yet acknowledged. */
  get pending(): number {
    return this.#nextOffset - this.#applied;
  }

  /** Bytes the daemon has acknowledged. */
  get applied(): number {
    return this.#applied;
  }

  /** Writes the daemon refused for now (queue full, or the gap behind such a refusal) and that were resent. */
  get refusals(): number {
    return this.#refusals;
  }

  /** Writes sent again that the daemon had already applied (it dropped them by their offset). */
  get resentDuplicates(): number {
    return this.#resentDuplicates;
  }

  /** Whether offsets are known yet (see the constructor). */
  get based(): boolean {
    return this.#based;
  }

  /** True while some write waits for its acknowledgement. */
  get unsettled(): boolean {
    return this.#waiters.length > 0;
  }

  /** The connection stdin flows on, or -1. */
  get generation(): number {
    return this.#gen;
  }

  /** Queues bytes at the next offsets; resolves with `applied` once acknowledged. */
  write(data: Buffer): Promise<number> {
    return this.#enqueue(data, false);
  }

  /** Writes `data` if given, then closes the child's stdin after every byte (extension `process.stdin.eof`). */
  end(data?: Buffer): Promise<void> {
    if (data !== undefined && data.length > 0) void this.write(data).catch(noop);
    return this.#enqueue(Buffer.alloc(0), true).then(noop);
  }

  /**
   * Stdin may flow on connection `gen` from now on: resend everything unacknowledged there. With `probe`, first ask
   * where the daemon is (a zero-byte write at our acknowledged offset is always a duplicate, answered with the
   * daemon's `applied` at once, even while a reattach replay is still streaming), so what already landed through
   * the dropped connection is not sent again.
   */
  open(gen: number, probe: boolean): void {
    if (this.#gen === gen || !this.#based) return;
    this.#gen = gen;
    this.#rewind();
    this.#window = STDIN_INITIAL_WINDOW_BYTES;
    if (probe && this.#chunks.length > 0 && this.#link.liveGeneration === gen) {
      this.#probing = true;
      const pumpGen = this.#pumpGen;
      this.#link.send(gen, { id: this.#id, offset: this.#applied }, (err, result) => {
        if (pumpGen !== this.#pumpGen || this.#gen !== gen || this.#error) return;
        this.#probing = false;
        if (err instanceof DroppedError) return;
        if (err) return this.fail(err);
        this.#acknowledge(result);
        this.#window = STDIN_INITIAL_WINDOW_BYTES;
        this.#settle();
        this.#pump();
      });
    }
    this.#pump();
  }

  /** The connection it was using is gone. */
  down(): void {
    this.#gen = -1;
    this.#probing = false;
    this.#clearRetry();
  }

  /** An attached process's stdin starts where the daemon is: shift what was queued (nothing was sent yet). */
  rebase(base: number): void {
    if (this.#based) return;
    this.#based = true;
    this.#chunks = this.#chunks.map((c) => ({ ...c, offset: c.offset + base, end: c.end + base }));
    this.#waiters = this.#waiters.map((w) => ({ ...w, end: w.end + base }));
    this.#nextOffset += base;
    this.#applied = base;
  }

  /** What a reattach reported: the daemon's `stdinApplied`, and whether stdin was closed. */
  reported(stdinApplied: number, stdinClosed: boolean): void {
    if (!this.#based) return;
    this.#applied = Math.max(this.#applied, stdinApplied);
    if (stdinClosed) this.#eofAcked = true;
    this.#settle();
  }

  /** The process exited: send nothing more (what is unacknowledged is settled by the owner, then failed). */
  halt(): void {
    this.#halted = true;
    this.#clearRetry();
  }

  /** Rejects every write not yet acknowledged, and every later one. */
  fail(err: Error): void {
    if (this.#error) return;
    this.#error = err;
    this.#clearRetry();
    this.#chunks = [];
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  #enqueue(data: Buffer, eof: boolean): Promise<number> {
    if (this.#error) return rejected(this.#error);
    if (this.#eofQueued) return rejected(new ClaustrumError('STDIN_ENDED', `process ${this.#id}: stdin already ended`));
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
    this.#settle();
    this.#pump();
    return p;
  }

  #pump(): void {
    if (this.#retryTimer !== undefined || this.#error || this.#probing || this.#halted) return;
    if (this.#gen < 0 || this.#link.liveGeneration !== this.#gen) return;
    let inflight = 0;
    for (let i = 0; i < this.#sendIdx; i++) inflight += this.#chunks[i]!.data.length;
    while (this.#sendIdx < this.#chunks.length && (inflight < this.#window || this.#sendIdx === 0)) {
      const chunk = this.#chunks[this.#sendIdx++]!;
      inflight += chunk.data.length;
      const pumpGen = this.#pumpGen;
      const params: StdinRequest = chunk.eof
        ? { id: this.#id, data: chunk.data, offset: chunk.offset, eof: true }
        : { id: this.#id, data: chunk.data, offset: chunk.offset };
      this.#link.send(this.#gen, params, (err, result) => this.#onReply(chunk, pumpGen, err, result));
    }
  }

  #onReply(chunk: Chunk, pumpGen: number, err: Error | undefined, result: unknown): void {
    if (this.#error) return;
    if (err === undefined) {
      if ((result as { duplicate?: unknown }).duplicate === true && chunk.data.length > 0) this.#resentDuplicates++;
      this.#acknowledge(result);
      if (chunk.eof) this.#eofAcked = true;
      if (pumpGen === this.#pumpGen) this.#fullRetries = 0;
      this.#settle();
      this.#pump();
      return;
    }
    if (err instanceof DroppedError || pumpGen !== this.#pumpGen) return; // the reattach (or the newer rewind) resends
    if (err instanceof RpcError && (err.rpcCode === ERR_STDIN_FULL || err.rpcCode === ERR_STDIN_GAP)) {
      // Queue full: the child is not reading; try again later from the first unacknowledged byte. A gap only follows
      // a refused write pipelined before it and is healed by the same resend.
      this.#refusals++;
      const delay = err.rpcCode === ERR_STDIN_FULL ? Math.min(STDIN_FULL_RETRY_MAX_MS, 20 * 2 ** this.#fullRetries++) : 0;
      this.#rewind();
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#pump();
      }, delay);
      return;
    }
    this.fail(err);
  }

  /** Takes a reply's `applied` (the daemon's count of accepted bytes); the window grows by what it newly covers. */
  #acknowledge(result: unknown): void {
    const applied = (result as { applied?: unknown }).applied;
    if (typeof applied !== 'number' || applied <= this.#applied) return;
    this.#window = Math.min(STDIN_WINDOW_BYTES, this.#window + (applied - this.#applied));
    this.#applied = applied;
  }

  /** Drops acknowledged chunks and settles the writes they complete. */
  #settle(): void {
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

  /** Resend every unacknowledged chunk on the next pump; replies to what was sent before no longer steer. */
  #rewind(): void {
    this.#sendIdx = 0;
    this.#probing = false;
    this.#pumpGen++;
    this.#clearRetry();
  }

  #clearRetry(): void {
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
  }
}

function noop(): void {}

function rejected<T>(err: Error): Promise<T> {
  const p = Promise.reject<T>(err);
  p.catch(noop);
  return p;
}
