/**
 * Terminal output cut at clean boundaries: no piece marked clean ends inside an escape sequence or a UTF-8 character.
 *
 * A screen snapshot is only right when taken between sequences (a snapshot cut at a random byte mismatched the live
 * screen in 16 of 101 trials, one at a clean boundary in 0 of 199), and a terminal that starts from a snapshot has a
 * fresh parser: whatever sequence the previous bytes left open would be lost. So the supervisor snapshots only after
 * a piece marked clean, and this module decides which pieces are.
 *
 * "Clean" is defined by the parser that renders the snapshot: VtScanner follows the state machine of xterm.js 6.0's
 * EscapeSequenceParser (the DEC VT500 parser: CSI, OSC ended by BEL or ST, DCS, SOS/PM/APC strings ended by ST,
 * two-byte ESC sequences and ESC-intermediate ones such as charset designations, CAN/SUB aborting anything, ESC
 * starting over from anywhere, and the 8-bit C1 controls as decoded code points) after its UTF-8 decoder (a
 * character split across reads is held by the decoder). A position is clean when that parser is in its ground state
 * and the decoder holds no partial character. The tests check this against xterm.js itself.
 *
 * The unfinished tail after the last clean position is held back until the next read completes it, or until
 * CUT_HOLD_MS passes (OutputCutter), or until it passes CUT_HOLD_MAX_BYTES; then it goes out marked not clean, and
 * no snapshot may be taken until a later clean piece. The scanner keeps its state across such a flush, so "later
 * clean" means the parser really is back in ground.
 */
import { MAX_FRAME_DATA } from '../replay/frame.js';

/** How long an unfinished escape sequence or character is held back waiting for the rest (ms). */
export const CUT_HOLD_MS = 20;
/**
 * The most bytes held back at the end of the output. A sequence longer than this (an inline image, a clipboard
 * OSC 52) goes out in pieces marked not clean; 8 KiB is two PTY reads, far above any title, colour or cursor sequence.
 */
export const CUT_HOLD_MAX_BYTES = 8 * 1024;
/** The largest piece: one frame's data. */
export const CUT_MAX_PIECE_BYTES = MAX_FRAME_DATA;

export interface CutPiece {
  /** A view of the bytes pushed (or of their concatenation with a held tail). */
  readonly data: Buffer;
  /** True when the parser is in ground state with no partial character after the piece's last byte. */
  readonly clean: boolean;
}

// Parser states (xterm.js ParserState, SOS/PM/APC collapsed into one as in 6.0).
const GROUND = 0;
const ESCAPE = 1;
const ESC_INTERMEDIATE = 2;
const CSI_ENTRY = 3;
const CSI_PARAM = 4;
const CSI_INTERMEDIATE = 5;
const CSI_IGNORE = 6;
const OSC_STRING = 7;
const SOS_PM_APC_STRING = 8;
const DCS_ENTRY = 9;
const DCS_PARAM = 10;
const DCS_INTERMEDIATE = 11;
const DCS_IGNORE = 12;
const DCS_PASSTHROUGH = 13;

/** Every code point from 0xA0 on behaves alike in the parser ("non-ASCII printable"). */
const NON_ASCII = 0xa0;

/** The next parser state for code point class `c` (a code point below 0xA0, or NON_ASCII). */
function transition(state: number, c: number): number {
  // Anywhere: CAN, SUB and the C1 controls that end a sequence; ESC and the C1 introducers start one.
  if (c === 0x18 || c === 0x1a || c === 0x9c || (c >= 0x80 && c <= 0x8f) || (c >= 0x91 && c <= 0x97) || c === 0x99 || c === 0x9a) return GROUND;
  if (c === 0x1b) return ESCAPE;
  if (c === 0x9b) return CSI_ENTRY;
  if (c === 0x9d) return OSC_STRING;
  if (c === 0x90) return DCS_ENTRY;
  if (c === 0x98 || c === 0x9e || c === 0x9f) return SOS_PM_APC_STRING;
  // C0 controls other than CAN, SUB, ESC: executed or ignored, the state stays (except BEL, which ends an OSC).
  const control = c < 0x20 || c === 0x7f;
  switch (state) {
    case GROUND:
      return GROUND;
    case ESCAPE:
      if (control) return ESCAPE;
      if (c >= 0x20 && c <= 0x2f) return ESC_INTERMEDIATE;
      if (c === 0x5b) return CSI_ENTRY;
      if (c === 0x5d) return OSC_STRING;
      if (c === 0x50) return DCS_ENTRY;
      if (c === 0x58 || c === 0x5e || c === 0x5f) return SOS_PM_APC_STRING;
      return GROUND; // a final byte dispatches; a non-ASCII character is an error, back to ground
    case ESC_INTERMEDIATE:
      return control || (c >= 0x20 && c <= 0x2f) ? ESC_INTERMEDIATE : GROUND;
    case CSI_ENTRY:
      if (control) return CSI_ENTRY;
      if (c >= 0x30 && c <= 0x3f) return CSI_PARAM;
      if (c >= 0x20 && c <= 0x2f) return CSI_INTERMEDIATE;
      return GROUND;
    case CSI_PARAM:
      if (control || (c >= 0x30 && c <= 0x3b)) return CSI_PARAM;
      if (c >= 0x3c && c <= 0x3f) return CSI_IGNORE;
      if (c >= 0x20 && c <= 0x2f) return CSI_INTERMEDIATE;
      return GROUND;
    case CSI_INTERMEDIATE:
      if (control || (c >= 0x20 && c <= 0x2f)) return CSI_INTERMEDIATE;
      if (c >= 0x30 && c <= 0x3f) return CSI_IGNORE;
      return GROUND;
    case CSI_IGNORE:
      return c >= 0x40 && c <= 0x7e ? GROUND : CSI_IGNORE;
    case OSC_STRING:
      return c === 0x07 ? GROUND : OSC_STRING;
    case SOS_PM_APC_STRING:
      return c === NON_ASCII ? GROUND : SOS_PM_APC_STRING; // xterm 6.0 has no rule for non-ASCII here: error, ground
    case DCS_ENTRY:
      if (control) return DCS_ENTRY;
      if (c >= 0x20 && c <= 0x2f) return DCS_INTERMEDIATE;
      if (c >= 0x30 && c <= 0x3f) return DCS_PARAM;
      return c >= 0x40 && c <= 0x7e ? DCS_PASSTHROUGH : GROUND;
    case DCS_PARAM:
      if (control || (c >= 0x30 && c <= 0x3b)) return DCS_PARAM;
      if (c >= 0x3c && c <= 0x3f) return DCS_IGNORE;
      if (c >= 0x20 && c <= 0x2f) return DCS_INTERMEDIATE;
      return c >= 0x40 && c <= 0x7e ? DCS_PASSTHROUGH : GROUND;
    case DCS_INTERMEDIATE:
      if (control || (c >= 0x20 && c <= 0x2f)) return DCS_INTERMEDIATE;
      if (c >= 0x30 && c <= 0x3f) return DCS_IGNORE;
      return c >= 0x40 && c <= 0x7e ? DCS_PASSTHROUGH : GROUND;
    case DCS_IGNORE:
      return DCS_IGNORE;
    default:
      return DCS_PASSTHROUGH;
  }
}

/**
 * The byte-level state of the renderer's parser: UTF-8 decoding as xterm.js's Utf8ToUtf32 does it (a wrong
 * continuation drops the partial character and is read afresh; overlong forms, surrogates, U+FEFF and values past
 * U+10FFFF are dropped), then the escape-sequence state machine on each code point.
 */
export class VtScanner {
  #state = GROUND;
  /** Continuation bytes the current character still needs; 0 when none is open. */
  #need = 0;
  #length = 0;
  #codePoint = 0;

  /** True when the parser is in ground state and no character is half-read: a snapshot may be taken here. */
  get clean(): boolean {
    return this.#state === GROUND && this.#need === 0;
  }

  /** Advances over one byte. */
  step(b: number): void {
    if (this.#need > 0) {
      if ((b & 0xc0) === 0x80) {
        this.#codePoint = (this.#codePoint << 6) | (b & 0x3f);
        if (--this.#need === 0) this.#complete();
        return;
      }
      this.#need = 0; // wrong continuation: the partial character is dropped, this byte starts afresh
    }
    if (b < 0x80) {
      this.#state = transition(this.#state, b);
    } else if ((b & 0xe0) === 0xc0) {
      this.#start(b & 0x1f, 2);
    } else if ((b & 0xf0) === 0xe0) {
      this.#start(b & 0x0f, 3);
    } else if ((b & 0xf8) === 0xf0) {
      this.#start(b & 0x07, 4);
    } // any other byte (a stray continuation, 0xF8..0xFF) is skipped
  }

  /** Advances over `bytes[from..to)`; returns the offset after the last clean position in it, or -1 when none. */
  scan(bytes: Uint8Array, from = 0, to = bytes.length): number {
    let lastClean = -1;
    let i = from;
    while (i < to) {
      if (this.#state === GROUND && this.#need === 0) {
        // Fast path: printable ASCII and C0 controls other than ESC, CAN and SUB leave the parser in ground.
        let j = i;
        for (; j < to; j++) {
          const b = bytes[j]!;
          if (b >= 0x7f || b === 0x1b || b === 0x18 || b === 0x1a) break;
        }
        if (j > i) {
          lastClean = j;
          i = j;
          continue;
        }
      }
      this.step(bytes[i]!);
      if (this.#state === GROUND && this.#need === 0) lastClean = i + 1;
      i++;
    }
    return lastClean;
  }

  #start(bits: number, length: number): void {
    this.#codePoint = bits;
    this.#length = length;
    this.#need = length - 1;
  }

  #complete(): void {
    const cp = this.#codePoint;
    const valid =
      this.#length === 2
        ? cp >= 0x80
        : this.#length === 3
          ? cp >= 0x800 && !(cp >= 0xd800 && cp <= 0xdfff) && cp !== 0xfeff
          : cp >= 0x10000 && cp <= 0x10ffff;
    if (valid) this.#state = transition(this.#state, Math.min(cp, NON_ASCII));
  }
}

export interface CutterLimits {
  /** CUT_HOLD_MAX_BYTES by default. */
  readonly holdMaxBytes?: number;
  /** CUT_MAX_PIECE_BYTES by default. */
  readonly maxPieceBytes?: number;
}

/** The cutting itself, without timers: push() returns the pieces that are ready; flush() gives up the held tail. */
export class FrameCutter {
  readonly holdMaxBytes: number;
  readonly maxPieceBytes: number;
  readonly #scanner = new VtScanner();
  #held: Buffer = Buffer.alloc(0);

  constructor(limits: CutterLimits = {}) {
    this.holdMaxBytes = limits.holdMaxBytes ?? CUT_HOLD_MAX_BYTES;
    this.maxPieceBytes = limits.maxPieceBytes ?? CUT_MAX_PIECE_BYTES;
    if (!(this.maxPieceBytes >= 1 && this.holdMaxBytes >= 0)) throw new RangeError('cutter: limits must be positive');
  }

  /** Bytes held back after the last piece, waiting for the end of their sequence or character. */
  get heldBytes(): number {
    return this.#held.length;
  }

  /** True when the bytes so far end at a clean position (nothing held, the parser in ground). */
  get clean(): boolean {
    return this.#held.length === 0 && this.#scanner.clean;
  }

  /**
   * Takes the next bytes of output. Returns the pieces ready to go, in order: everything up to the last clean
   * position (split into pieces of at most maxPieceBytes, at clean positions where there are any), and the held tail
   * too, marked not clean, when it would pass holdMaxBytes.
   */
  push(input: Uint8Array): CutPiece[] {
    const pieces: CutPiece[] = [];
    const scanFrom = this.#held.length;
    const data = scanFrom === 0 ? asBuffer(input) : Buffer.concat([this.#held, input]);
    let start = 0;
    let lastClean = -1;
    let at = scanFrom;
    // Scan window by window, a window ending where a full piece would, so a full piece is cut at its last clean
    // position (or, inside one sequence longer than a piece, at the piece size, not clean).
    for (;;) {
      const end = Math.min(data.length, start + this.maxPieceBytes);
      if (at < end) {
        const c = this.#scanner.scan(data, at, end);
        if (c !== -1) lastClean = c;
        at = end;
      }
      if (end === data.length) break;
      const cut = lastClean > start ? lastClean : end;
      pieces.push({ data: data.subarray(start, cut), clean: cut === lastClean });
      start = cut;
    }
    if (lastClean > start) {
      pieces.push({ data: data.subarray(start, lastClean), clean: true });
      start = lastClean;
    }
    // What is left ends inside a sequence or character, and is at most one piece long.
    const tail = data.subarray(start);
    if (tail.length > this.holdMaxBytes) {
      pieces.push({ data: tail, clean: false });
      this.#held = Buffer.alloc(0);
    } else {
      // A copy: the held bytes outlive this call, the caller's buffer may not.
      this.#held = Buffer.from(tail);
    }
    return pieces;
  }

  /** Gives up the held tail (marked not clean), e.g. when the hold time ran out or the output ended. */
  flush(): CutPiece | undefined {
    if (this.#held.length === 0) return undefined;
    const data = this.#held;
    this.#held = Buffer.alloc(0);
    return { data, clean: false };
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface OutputCutterOptions extends CutterLimits {
  /** CUT_HOLD_MS by default. */
  readonly holdMs?: number;
}

/**
 * FrameCutter with its hold timer: a held tail goes out (not clean) once its oldest byte has waited holdMs, so an
 * unfinished sequence delays output by at most that much.
 */
export class OutputCutter {
  readonly holdMs: number;
  readonly #cutter: FrameCutter;
  readonly #emit: (piece: CutPiece) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(emit: (piece: CutPiece) => void, options: OutputCutterOptions = {}) {
    this.#cutter = new FrameCutter(options);
    this.#emit = emit;
    this.holdMs = options.holdMs ?? CUT_HOLD_MS;
  }

  get heldBytes(): number {
    return this.#cutter.heldBytes;
  }

  push(input: Uint8Array): void {
    const heldBefore = this.#cutter.heldBytes;
    const pieces = this.#cutter.push(input);
    for (const piece of pieces) this.#emit(piece);
    if (this.#cutter.heldBytes === 0) {
      this.#clear();
    } else if (heldBefore === 0 || pieces.length > 0) {
      // A new tail (the old one went out with the pieces): its own hold time starts now.
      this.#clear();
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, this.holdMs);
    }
  }

  /** Emits the held tail now, marked not clean (the output ended, or the hold time ran out). */
  flush(): void {
    this.#clear();
    const piece = this.#cutter.flush();
    if (piece) this.#emit(piece);
  }

  /** Stops the timer without emitting (the process is being forgotten). */
  dispose(): void {
    this.#clear();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
