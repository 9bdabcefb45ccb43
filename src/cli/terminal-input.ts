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
 *   the gate sends after it, every escape sequence in the input is dropped (every answer is one; typed characters
 *   pass). Terminals answer in order, so every answer to the replay comes before the answer to the gate's own query;
 *   the gate counts the replay's cursor-position queries to know which answer is its own. Bounded by
 *   REPLAY_ANSWER_WAIT_MS for a terminal that never answers.
 */

/** The default escape character: `~`, as ssh. */
export const DEFAULT_ESCAPE_CHAR = '~';
/** How long answers stay dropped after a replay when the terminal does not answer the gate's query, at most (1.5 s). */
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

/** The input scanner's states: what the bytes so far of an escape sequence are. */
enum Scan {
  Ground,
  Esc,
  /** ESC [ …: parameters until a final byte. */
  Csi,
  /** ESC ] / ESC P / ESC _ / ESC ^ / ESC X …: a string until BEL or ESC \. */
  Str,
  /** An ESC inside a string: ST if a backslash follows. */
  StrEsc,
  /** ESC O: one more byte (a key in application mode). */
  Ss3,
}

export class AnswerGate {
  #state: GateState = 'open';
  /** Cursor-position answers still to come before input flows again (the replay's, then the gate's own). */
  #expected = 0;
  #tail = '';
  #timer: NodeJS.Timeout | undefined;
  readonly #waitMs: number;
  #scan: Scan = Scan.Ground;
  /** Bytes of input dropped so far (answers, and keys sent as escape sequences meanwhile). */
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

  /** Replayed output is about to be written to the terminal: answers are dropped from now on. */
  replayed(data: Uint8Array): void {
    if (this.#state === 'open') {
      this.#tail = '';
      this.#scan = Scan.Ground;
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
   * Answers are dropped until the terminal answered it, or until the wait is over.
   */
  finish(): string | undefined {
    if (this.#state !== 'replaying') return undefined;
    this.#state = 'closing';
    this.#expected++;
    this.#timer = setTimeout(() => this.#open(), this.#waitMs);
    this.#timer.unref?.();
    return GATE_QUERY;
  }

  /**
   * Input from the local terminal: returns what may go to the program. While the gate is closed, escape sequences
   * (every answer is one: CSI, OSC, DCS) are dropped and counted; typed characters pass. Keys that send escape
   * sequences (arrows, function keys) are dropped too in that short window.
   */
  input(chunk: Buffer): Buffer {
    if (this.#state === 'open') return chunk;
    const out: number[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      const inSequence = this.#scan !== Scan.Ground || b === ESC;
      const cpr = this.#step(b);
      if (!inSequence) {
        out.push(b);
        continue;
      }
      this.dropped++;
      if (!cpr) continue;
      if (this.#expected > 0) this.#expected--;
      if (this.#expected === 0 && this.#state === 'closing') {
        this.#open();
        const rest = chunk.subarray(i + 1);
        return out.length === 0 ? rest : Buffer.concat([Buffer.from(out), rest]);
      }
    }
    return Buffer.from(out);
  }

  /** Stops the wait (the session ends). */
  dispose(): void {
    this.#clearTimer();
  }

  /** Feeds one input byte to the scanner; true when it ends a cursor-position answer (`ESC [ … R`). */
  #step(b: number): boolean {
    switch (this.#scan) {
      case Scan.Ground:
        if (b === ESC) this.#scan = Scan.Esc;
        return false;
      case Scan.Esc:
        if (b === 0x5b) this.#scan = Scan.Csi;
        else if (b === 0x5d || b === 0x50 || b === 0x5f || b === 0x5e || b === 0x58) this.#scan = Scan.Str;
        else if (b === 0x4f) this.#scan = Scan.Ss3;
        else if (b !== ESC) this.#scan = Scan.Ground; // a two-byte sequence (or Alt and a key)
        return false;
      case Scan.Csi:
        if (b >= 0x40 && b <= 0x7e) {
          this.#scan = Scan.Ground;
          return b === 0x52; // R
        }
        if (b === ESC) this.#scan = Scan.Esc;
        else if (b < 0x20) this.#scan = Scan.Ground; // not a CSI after all
        return false;
      case Scan.Str:
        if (b === 0x07) this.#scan = Scan.Ground;
        else if (b === ESC) this.#scan = Scan.StrEsc;
        return false;
      case Scan.StrEsc:
        this.#scan = b === 0x5c ? Scan.Ground : Scan.Str;
        return false;
      case Scan.Ss3:
        this.#scan = Scan.Ground;
        return false;
    }
  }

  #open(): void {
    this.#clearTimer();
    this.#state = 'open';
    this.#expected = 0;
    this.#scan = Scan.Ground;
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
