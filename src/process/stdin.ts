/**
 * A child's stdin: the offset rules (PROTOCOL.md), pure so they are unit-tested on their own, and the
 * writer that applies them to the child's pipe.
 *
 * A write names the byte offset its data starts at; `applied` is how many bytes the daemon has accepted. A client
 * that lost its connection resends from any offset it likes and the daemon keeps exactly-once semantics:
 * - offset beyond applied: a gap, refused (-32003);
 * - the data lies wholly below applied: a duplicate, answered with success and nothing sent;
 * - the data straddles applied: only the new tail is written;
 * - no offset, or offset == applied: everything is appended.
 */
import type { Writable } from 'node:stream';

export type StdinVerdict = { readonly kind: 'gap' } | { readonly kind: 'duplicate' } | { readonly kind: 'write'; readonly skip: number };

export function stdinVerdict(applied: number, offset: number | undefined, length: number): StdinVerdict {
  if (offset === undefined) return { kind: 'write', skip: 0 };
  if (offset > applied) return { kind: 'gap' };
  if (offset + length <= applied) return { kind: 'duplicate' };
  return { kind: 'write', skip: applied - offset };
}

/** The most unwritten stdin bytes a process may have queued before writes are refused (-32002). */
export const STDIN_QUEUE_CAP_BYTES = 16 * 1024 * 1024;

/**
 * Decodes standard base64 as strictly as Go's StdEncoding: padding required, no URL alphabet, `\r` and `\n`
 * skipped. Returns undefined when Go would have refused it.
 *
 * Node's decoder accepts nearly anything: it skips characters outside its alphabet, stops at a `=`, takes the URL
 * alphabet too, and reads only the low byte of a character above U+00FF. So the text must be ASCII without `-` or
 * `_`, and must decode to exactly the bytes its length promises, which it does only if every character before the
 * padding is in the alphabet and the padding is one or two trailing `=`. (This replaced a regular expression that
 * ran at 120 MB/s, the whole cost of a 512 KiB stdin write; a test checks both agree on random strings.)
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const s = text.includes('\n') || text.includes('\r') ? text.replace(/[\r\n]/g, '') : text;
  if (s.length % 4 !== 0) return undefined;
  if (Buffer.byteLength(s, 'utf8') !== s.length || s.includes('-') || s.includes('_')) return undefined;
  const bytes = Buffer.from(s, 'base64');
  const padding = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  return bytes.length === (s.length / 4) * 3 - padding ? bytes : undefined;
}

/** The outcome of one `process.stdin` write, for the method layer to answer. */
export type StdinOutcome =
  | { readonly kind: 'gap' }
  | { readonly kind: 'duplicate'; readonly applied: number }
  | { readonly kind: 'notRunning' }
  | { readonly kind: 'full' }
  | { readonly kind: 'closed' }
  | { readonly kind: 'noEof' }
  | { readonly kind: 'accepted'; readonly applied: number; readonly bytes: number };

/** Where a child's stdin bytes go: its stdin pipe, or its terminal. */
export interface StdinSink {
  /** Queues bytes in order; never waits. */
  write(data: Buffer): void;
  /** Closes the input once everything queued is written (pipes only: see `endable`). */
  end(): void;
  /** Bytes queued and not yet taken by the child. */
  readonly queuedBytes: number;
  /** The sink failed (EPIPE, a terminal gone): what is queued was dropped and nothing more goes in. */
  readonly broken: boolean;
  /** False for a terminal: it has no end of input, only the bytes a user would type (Ctrl-D). */
  readonly endable: boolean;
}

/** A child's stdin pipe as a sink. `onBroken` hears the error that broke it (EPIPE once the child closed or died). */
export function pipeSink(pipe: Writable, onBroken: (err: Error) => void): StdinSink {
  let broken = false;
  pipe.on('error', (err) => {
    // Drop what is queued, keep counting (reference behaviour).
    broken = true;
    onBroken(err);
  });
  return {
    write: (data) => {
      if (!broken && !pipe.destroyed) pipe.write(data);
    },
    end: () => {
      if (!broken && !pipe.destroyed) pipe.end(); // after the queued bytes
    },
    get queuedBytes() {
      return broken || pipe.destroyed ? 0 : pipe.writableLength;
    },
    get broken() {
      return broken || pipe.destroyed;
    },
    endable: true,
  };
}

/**
 * A child's stdin under the offset rules: what has been applied, what is queued, and the `eof` close. Never waits
 * for the child to read: bytes are queued in the sink, bounded by `capBytes`.
 */
export class StdinWriter {
  readonly #sink: StdinSink;
  readonly #capBytes: number;
  #applied = 0;
  /** The client closed stdin (an `eof` write): no fresh bytes are accepted after it. */
  #ended = false;

  constructor(sink: StdinSink, capBytes: number) {
    this.#sink = sink;
    this.#capBytes = capBytes;
  }

  get applied(): number {
    return this.#applied;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes accepted but not yet taken by the child. */
  get queuedBytes(): number {
    return this.#sink.queuedBytes;
  }

  /**
   * Applies one write. With `eof`, stdin is closed once everything accepted has been written (an extension: a write
   * is a duplicate only if its bytes are all applied and, when it asks for EOF, stdin is already closed).
   */
  write(data: Buffer, offset: number | undefined, eof: boolean, running: boolean): StdinOutcome {
    const verdict = stdinVerdict(this.#applied, offset, data.length);
    if (verdict.kind === 'gap') return verdict;
    if (eof && !this.#sink.endable) return { kind: 'noEof' };
    const eofPending = eof && !this.#ended;
    if (verdict.kind === 'duplicate' && !(eofPending && offset! + data.length === this.#applied)) {
      return { kind: 'duplicate', applied: this.#applied };
    }
    if (!running) return { kind: 'notRunning' };
    const fresh = verdict.kind === 'write' ? data.subarray(verdict.skip) : data.subarray(data.length);
    if (this.#ended && fresh.length > 0) return { kind: 'closed' };
    const queued = this.queuedBytes;
    if (queued > 0 && queued + fresh.length > this.#capBytes) return { kind: 'full' };
    if (fresh.length > 0) this.#sink.write(fresh);
    this.#applied += fresh.length;
    if (eofPending) {
      this.#ended = true;
      this.#sink.end();
    }
    return { kind: 'accepted', applied: this.#applied, bytes: fresh.length };
  }
}
