/**
 * The two filters between the local terminal's input and a remote terminal process (`claustrum -run -t`,
 * `claustrum -attach`):
 *
 * - EscapeFilter: the detach key, ssh's convention. The escape character (`~` by default) is special only right
 *   after Enter (or at the start): `~.` detaches (the process keeps running), `~?` lists the escapes, `~~` sends one
 *   `~`; any other character after it sends both. Elsewhere `~` is an ordinary character, so typing it costs nothing.
 * - AnswerGate: a replay written to the local terminal may contain the program's old queries (device attributes,
 *   cursor position, colours); the terminal answers them, and those answers must not reach the program as typed
 *   input (coder/wsep#24). While a replay is written, and until the terminal has answered a cursor-position query
 *   the gate sends after it, input is dropped. Terminals answer in order, so every answer to the replay comes before
 *   the answer to the gate's own query; the gate counts the replay's cursor-position queries to know which answer is
 *   its own. Bounded by REPLAY_ANSWER_WAIT_MS for a terminal that never answers.
 */

/** The default escape character: `~`, as ssh. */
export const DEFAULT_ESCAPE_CHAR = '~';
/** How long input stays dropped after a replay when the terminal does not answer the gate's query, at most (1.5 s). */
export const REPLAY_ANSWER_WAIT_MS = 1500;

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const QUESTION = 0x3f;
const ESC = 0x1b;

/**
 * `-escape-char`: one character (`~`), a control character as `^X` (`^]` is 0x1d), or `none` (no escapes at all).
 * Returns the byte, undefined for `none`, or throws with what is allowed.
 */
export function parseEscapeChar(text: string): number | undefined {
  if (text === 'none') return undefined;
  if (text.length === 2 && text[0] === '^') {
    const c = text.charCodeAt(1);
    if (c >= 0x40 && c <= 0x5f) return c - 0x40;
    if (c >= 0x61 && c <= 0x7a) return c - 0x60;
    if (c === 0x3f) return 0x7f; // ^? is DEL
  }
  if (text.length === 1 && text.charCodeAt(0) < 0x80 && text !== '.' && text !== '\r' && text !== '\n') return text.charCodeAt(0);
  throw new Error(`-escape-char ${JSON.stringify(text)}: want one ASCII character (not "."), ^X for a control character, or none`);
}

/** How an escape character reads in help text. */
export function escapeName(c: number): string {
  if (c === 0x7f) return '^?';
  return c < 0x20 ? `^${String.fromCharCode(c + 0x40)}` : String.fromCharCode(c);
}

export interface EscapeResult {
  /** The bytes to send on. */
  readonly data: Buffer;
  /** `~.` was typed: detach (the bytes after it in the chunk are not sent). */
  readonly detach: boolean;
  /** `~?` was typed: show the escapes. */
  readonly help: boolean;
}

export class EscapeFilter {
  readonly #escape: number | undefined;
  /** At the start of a line: the escape character would be special. */
  #lineStart = true;
  /** The escape character was typed at the start of a line and is held until the next byte says what it was. */
  #pending = false;

  constructor(escapeChar: number | undefined) {
    this.#escape = escapeChar;
  }

  /** True while an escape character is held back (nothing of it has been sent yet). */
  get holding(): boolean {
    return this.#pending;
  }

  push(chunk: Buffer): EscapeResult {
    const esc = this.#escape;
    if (esc === undefined) return { data: chunk, detach: false, help: false };
    // The common case, a chunk without the escape character: as it is.
    if (!this.#pending && chunk.length > 0 && !chunk.includes(esc)) {
      const last = chunk[chunk.length - 1];
      this.#lineStart = last === CR || last === LF;
      return { data: chunk, detach: false, help: false };
    }
    const out: number[] = [];
    let help = false;
    for (const b of chunk) {
      if (this.#pending) {
        this.#pending = false;
        if (b === DOT) return { data: Buffer.from(out), detach: true, help };
        if (b === QUESTION) {
          help = true;
          this.#lineStart = true; // another escape may follow at once, as in ssh
          continue;
        }
        if (b === esc) {
          out.push(esc);
          this.#lineStart = false;
          continue;
        }
        out.push(esc, b);
        this.#lineStart = b === CR || b === LF;
        continue;
      }
      if (this.#lineStart && b === esc) {
        this.#pending = true;
        continue;
      }
      out.push(b);
      this.#lineStart = b === CR || b === LF;
    }
    return { data: Buffer.from(out), detach: false, help };
  }
}

/** What a cursor-position query in output looks like: `ESC [ 6 n`, or DEC's `ESC [ ? 6 n`. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching an escape sequence is the point
const CPR_QUERY = /\x1b\[\??6n/g;
/** The longest tail of one output chunk that may be the start of a query the next chunk completes. */
const QUERY_TAIL = 4;
/** The gate's own query. */
export const GATE_QUERY = '\x1b[6n';

type GateState = 'open' | 'replaying' | 'closing';

export class AnswerGate {
  #state: GateState = 'open';
  /** Cursor-position answers still to come before input flows again (the replay's, then the gate's own). */
  #expected = 0;
  #tail = '';
  #timer: NodeJS.Timeout | undefined;
  readonly #waitMs: number;
  /** The answer scanner's state: 0 ground, 1 after ESC, 2 inside a CSI. */
  #scan = 0;
  /** Bytes of input dropped so far (answers, and whatever was typed meanwhile). */
  dropped = 0;

  constructor(waitMs = REPLAY_ANSWER_WAIT_MS) {
    this.#waitMs = waitMs;
  }

  get open(): boolean {
    return this.#state === 'open';
  }

  get replaying(): boolean {
    return this.#state === 'replaying';
  }

  /** Replayed output is about to be written to the terminal: input is dropped from now on. */
  replayed(data: Uint8Array): void {
    if (this.#state === 'open') {
      this.#tail = '';
      this.#scan = 0;
    }
    if (this.#state !== 'replaying') this.#clearTimer();
    this.#state = 'replaying';
    const text = this.#tail + Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
    // A query split across chunks is counted once: only matches ending in this chunk's part count.
    for (const m of text.matchAll(CPR_QUERY)) if (m.index + m[0].length > this.#tail.length) this.#expected++;
    this.#tail = text.slice(-QUERY_TAIL);
  }

  /**
   * The replay has been written: returns the query to write after it (undefined when no replay was in progress).
   * Input flows again once the terminal answered it, or after the wait.
   */
  finish(): string | undefined {
    if (this.#state !== 'replaying') return undefined;
    this.#state = 'closing';
    this.#expected++;
    this.#timer = setTimeout(() => this.#open(), this.#waitMs);
    this.#timer.unref?.();
    return GATE_QUERY;
  }

  /** Input from the local terminal: returns what may go to the program. */
  input(chunk: Buffer): Buffer {
    if (this.#state === 'open') return chunk;
    for (let i = 0; i < chunk.length; i++) {
      if (!this.#answerEnds(chunk[i]!)) continue;
      if (this.#expected > 0) this.#expected--;
      if (this.#expected === 0 && this.#state === 'closing') {
        this.#open();
        this.dropped += i + 1;
        return chunk.subarray(i + 1);
      }
    }
    this.dropped += chunk.length;
    return chunk.subarray(0, 0);
  }

  /** Stops the wait (the session ends). */
  dispose(): void {
    this.#clearTimer();
  }

  /** Feeds one input byte to the scanner; true when it ends a cursor-position answer (`ESC [ … R`). */
  #answerEnds(b: number): boolean {
    switch (this.#scan) {
      case 0:
        if (b === ESC) this.#scan = 1;
        return false;
      case 1:
        this.#scan = b === 0x5b ? 2 : b === ESC ? 1 : 0;
        return false;
      default:
        if (b >= 0x40 && b <= 0x7e) {
          this.#scan = 0;
          return b === 0x52; // R
        }
        if (b === ESC) this.#scan = 1;
        else if (b < 0x20 || b > 0x3f) this.#scan = 0; // not a CSI after all
        return false;
    }
  }

  #open(): void {
    this.#clearTimer();
    this.#state = 'open';
    this.#expected = 0;
    this.#scan = 0;
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
