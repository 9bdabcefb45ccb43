/**
 * Writes to one process's stdin with byte offsets, as the client library does (src/client/process.ts), so a write
 * that is sent again after a lost connection is applied exactly once (PROTOCOL.md `process.stdin`).
 *
 * The page is usually not the process's only writer, so it never assumes where stdin stands: before its first
 * write it asks (a zero-byte write at offset 0 is always a duplicate, answered with the daemon's `applied`), and it
 * asks again after anything that may have moved it. Writes go one request at a time; bytes queued meanwhile are
 * coalesced into the next request (a terminal's keystrokes), up to STDIN_CHUNK_BYTES each.
 */
import { ConnectionClosedError, RpcError } from './rpc.js';
import { ERR_STDIN_FULL, ERR_STDIN_GAP, type StdinParams, type StdinResult } from './wire.js';

/** Bytes per request: well under the daemon's 1,048,575-byte message cap with the envelope around them. */
export const STDIN_CHUNK_BYTES = 256 * 1024;
/** First wait after "queue full" (-32002); doubles per refusal up to STDIN_RETRY_MAX_MS (the client library's). */
export const STDIN_RETRY_FIRST_MS = 20;
export const STDIN_RETRY_MAX_MS = 1000;

export type StdinSend = (params: StdinParams) => Promise<StdinResult>;

interface Write {
  readonly data: Uint8Array;
  readonly eof: boolean;
  readonly resolve: (applied: number) => void;
  readonly reject: (err: Error) => void;
}

interface InFlight {
  readonly offset: number;
  readonly data: Uint8Array;
  readonly eof: boolean;
  readonly writes: Write[];
  /** Sent before over a connection that closed: a duplicate answer then means it landed the first time. */
  resent: boolean;
}

export class StdinConflictError extends Error {
  constructor(id: string) {
    super(`stdin of ${id}: another client wrote at the same offsets first; this write was not applied (send it again)`);
    this.name = 'StdinConflictError';
  }
}

export class StdinWriter {
  readonly id: string;
  #send: StdinSend;
  #applied: number | undefined;
  #queue: Write[] = [];
  #inflight: InFlight | undefined;
  #busy = false;
  #retryMs = STDIN_RETRY_FIRST_MS;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** "Queue full" refusals retried so far. */
  refusals = 0;

  constructor(id: string, send: StdinSend) {
    this.id = id;
    this.#send = send;
  }

  /** Where stdin stands as far as this writer knows (undefined until asked). */
  get applied(): number | undefined {
    return this.#applied;
  }

  /** Starts from a known position (a reattach's `stdinApplied`). */
  setApplied(applied: number): void {
    if (this.#inflight === undefined) this.#applied = applied;
  }

  /** Resolves with the daemon's applied count once every byte is accepted; rejects with the daemon's refusal. */
  write(data: Uint8Array, eof = false): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#queue.push({ data, eof, resolve, reject });
      void this.#pump();
    });
  }

  /** A new connection: whatever was in flight is sent again at its offset, and the daemon drops what it already has. */
  reconnected(send: StdinSend): void {
    this.#send = send;
    if (this.#inflight) this.#inflight.resent = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#pump();
  }

  /** Fails everything pending (the view closed). */
  dispose(why: string): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const err = new Error(why);
    for (const w of [...(this.#inflight?.writes ?? []), ...this.#queue]) w.reject(err);
    this.#inflight = undefined;
    this.#queue = [];
  }

  async #pump(): Promise<void> {
    if (this.#busy || this.#timer !== undefined) return;
    this.#busy = true;
    try {
      while (this.#inflight !== undefined || this.#queue.length > 0) {
        if (this.#applied === undefined) this.#applied = (await this.#send({ id: this.id, offset: 0 })).applied;
        const f = (this.#inflight ??= this.#take(this.#applied));
        let result: StdinResult;
        try {
          result = await this.#send(
            f.eof ? { id: this.id, data: f.data, offset: f.offset, eof: true } : { id: this.id, data: f.data, offset: f.offset },
          );
        } catch (err) {
          if (err instanceof ConnectionClosedError) return; // reconnected() sends it again
          if (err instanceof RpcError && err.code === ERR_STDIN_FULL) {
            // The child is not reading: wait, then the same bytes at the same offset.
            this.refusals++;
            this.#timer = setTimeout(() => {
              this.#timer = undefined;
              void this.#pump();
            }, this.#retryMs);
            this.#retryMs = Math.min(STDIN_RETRY_MAX_MS, this.#retryMs * 2);
            return;
          }
          // A gap means stdin is not where this writer thought (a new process under the same id): ask again next time.
          if (err instanceof RpcError && err.code === ERR_STDIN_GAP) this.#applied = undefined;
          this.#inflight = undefined;
          for (const w of f.writes) w.reject(err as Error);
          continue;
        }
        this.#retryMs = STDIN_RETRY_FIRST_MS;
        this.#inflight = undefined;
        this.#applied = result.applied;
        if (result.duplicate === true && !f.resent && (f.data.length > 0 || f.eof)) {
          // Someone else's bytes took these offsets: nothing of ours went in.
          this.#applied = undefined;
          for (const w of f.writes) w.reject(new StdinConflictError(this.id));
          continue;
        }
        for (const w of f.writes) w.resolve(result.applied);
      }
    } catch (err) {
      // The position probe failed: nothing was sent, so every queued write fails with the reason.
      if (err instanceof ConnectionClosedError) return;
      this.#applied = undefined;
      const queued = [...(this.#inflight?.writes ?? []), ...this.#queue];
      this.#inflight = undefined;
      this.#queue = [];
      for (const w of queued) w.reject(err as Error);
    } finally {
      this.#busy = false;
    }
  }

  /** Takes queued writes (whole ones, up to the chunk size; a larger single write is split) into one request. */
  #take(offset: number): InFlight {
    const writes: Write[] = [];
    const parts: Uint8Array[] = [];
    let size = 0;
    let eof = false;
    while (this.#queue.length > 0 && !eof) {
      const w = this.#queue[0]!;
      if (w.data.length > STDIN_CHUNK_BYTES && size === 0) {
        // A large write goes out in chunks; only its last chunk settles it.
        const head = w.data.subarray(0, STDIN_CHUNK_BYTES);
        this.#queue[0] = { ...w, data: w.data.subarray(STDIN_CHUNK_BYTES) };
        return { offset, data: head, eof: false, writes: [], resent: false };
      }
      if (size + w.data.length > STDIN_CHUNK_BYTES) break;
      this.#queue.shift();
      writes.push(w);
      parts.push(w.data);
      size += w.data.length;
      eof = w.eof;
    }
    const data = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    return { offset, data, eof, writes, resent: false };
  }
}
