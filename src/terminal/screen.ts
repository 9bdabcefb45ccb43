/**
 * The screen model of one terminal: a headless xterm.js fed the terminal's frames in seq order, and its snapshot
 * `{seq, cols, rows, data}`, a byte stream that draws on a fresh terminal exactly what the model shows as of `seq`.
 *
 * Placement (docs/terminal-design.md has the measurements): ScreenKeeper creates the model lazily, at the first
 * eviction from the replay buffer, and feeds it each frame as the frame is evicted. A terminal whose output fits its
 * replay buffer never pays for a model; a snapshot is "the screen as of firstSeq - 1" followed by the retained raw
 * frames, which a reattach replays anyway. The model is also usable fed as frames arrive (ScreenModel alone).
 *
 * Snapshots are only taken after a frame the cutter marked clean (cutter.ts); after an unclean one the keeper feeds
 * the model forward over retained frames until a clean one, so the snapshot's seq may be past firstSeq - 1.
 *
 * What @xterm/addon-serialize 0.14 leaves out, measured by round trips (test/terminal/screen.unit.test.ts): the scroll
 * region (DECSTBM), the saved cursor (DECSC: position, colours, charset), the charsets (G0..G3, SO/SI: a box drawn
 * in DEC line graphics continues in ASCII), tab stops, the cursor's visibility and style, the mouse encoding, the
 * cursor position under origin mode (its `?6h` comes last and homes the cursor), and the cursor after a full row
 * when the cursor was put back on the row's last cell (xtermjs/xterm.js#6165: restored one column left, because it
 * restores with relative moves from the pending-wrap position). It also draws the alternate screen with the pen the
 * normal screen's part left behind (cells it does not style come out bold, inverse, … when the program's current
 * pen is), and it drops the screen's last rows when they hold no character, even when they were erased in a colour.
 * `snapshotData` appends and corrects all of these, read from
 * xterm.js internals of the pinned 6.0.0 (the addon itself reads `_core` the same way); a missing internal only
 * drops that part, and the round-trip tests fail loudly if an upgrade moves them.
 */
import { createRequire } from 'node:module';
import type { SerializeAddon } from '@xterm/addon-serialize';
import type { Terminal as XTerminal } from '@xterm/headless';

/**
 * xterm.js is loaded at the first model, not with this module: about 100 ms and 1 MB of heap (measured) that a
 * daemon whose terminals never overflow their replay buffer never pays. Both packages are CommonJS.
 */
let xterm: { readonly Terminal: typeof XTerminal; readonly SerializeAddon: typeof SerializeAddon } | undefined;
function loadXterm(): NonNullable<typeof xterm> {
  if (xterm === undefined) {
    const require = createRequire(import.meta.url);
    xterm = {
      Terminal: (require('@xterm/headless') as { Terminal: typeof XTerminal }).Terminal,
      SerializeAddon: (require('@xterm/addon-serialize') as { SerializeAddon: typeof SerializeAddon }).SerializeAddon,
    };
  }
  return xterm;
}

/** Scrollback lines kept by a model (and serialized into a snapshot), at most. */
export const SCREEN_SCROLLBACK_LINES = 1000;
/**
 * Scrollback bytes kept by a model, at most: lines are cut to fit, given the width, at SCREEN_LINE_BYTES_PER_COLUMN.
 * 4 MiB is the 1,000 lines of an 80-column screen with room for 340 columns.
 */
export const SCREEN_SCROLLBACK_BYTES = 4 * 1024 * 1024;
/** xterm.js keeps 3 32-bit words per cell (content, foreground, background); objects per line come on top. */
export const SCREEN_LINE_BYTES_PER_COLUMN = 12;
/**
 * The largest snapshot data (UTF-8 bytes): a snapshot frame must fit a line a client accepts (1 MiB requests today;
 * base64 in NDJSON adds a third). Past it, the serialized scrollback is shortened until the snapshot fits.
 */
export const SNAPSHOT_MAX_BYTES = 512 * 1024;
/**
 * The most bytes written to the model and not yet parsed. Parsing runs in time slices (xterm.js yields every few
 * milliseconds), so a terminal producing faster than the model parses (13-20 MB/s measured) builds a backlog: past
 * this, `congested` is true and the owner of the model should pause the terminal's reading, as for a slow receiver.
 */
export const SCREEN_MAX_PENDING_BYTES = 4 * 1024 * 1024;

export interface ScreenSnapshot {
  /** The seq of the last frame the screen includes: replay continues with seq + 1. */
  readonly seq: number;
  readonly cols: number;
  readonly rows: number;
  /** Drawn on a fresh cols x rows terminal (after a reset), shows the screen as of seq. UTF-8 text. */
  readonly data: string;
}

export interface ScreenOptions {
  readonly cols: number;
  readonly rows: number;
  /** SCREEN_SCROLLBACK_LINES by default. */
  readonly scrollbackLines?: number;
  /** SCREEN_SCROLLBACK_BYTES by default. */
  readonly scrollbackBytes?: number;
  /** SNAPSHOT_MAX_BYTES by default. */
  readonly snapshotMaxBytes?: number;
}

/** The scrollback a model of this width keeps: the line limit, or fewer lines when the byte limit says so. */
export function scrollbackFor(cols: number, lines = SCREEN_SCROLLBACK_LINES, bytes = SCREEN_SCROLLBACK_BYTES): number {
  return Math.max(0, Math.min(lines, Math.floor(bytes / (cols * SCREEN_LINE_BYTES_PER_COLUMN))));
}

/**
 * A headless terminal fed in seq order. Output and resizes are applied in the order given; `snapshot()` waits for
 * the parser to catch up and answers as of the last seq fed, or undefined when that frame did not end clean.
 */
export class ScreenModel {
  readonly scrollbackLines: number;
  readonly scrollbackBytes: number;
  readonly snapshotMaxBytes: number;
  readonly #term: XTerminal;
  readonly #serializer: SerializeAddon;
  #seq = 0;
  #clean = true;
  #pending = 0;
  #drainWaiters: (() => void)[] = [];
  #title = '';
  #disposed = false;

  constructor(options: ScreenOptions) {
    this.scrollbackLines = options.scrollbackLines ?? SCREEN_SCROLLBACK_LINES;
    this.scrollbackBytes = options.scrollbackBytes ?? SCREEN_SCROLLBACK_BYTES;
    this.snapshotMaxBytes = options.snapshotMaxBytes ?? SNAPSHOT_MAX_BYTES;
    const { Terminal, SerializeAddon } = loadXterm();
    this.#serializer = new SerializeAddon();
    this.#term = new Terminal({
      cols: options.cols,
      rows: options.rows,
      scrollback: scrollbackFor(options.cols, this.scrollbackLines, this.scrollbackBytes),
      allowProposedApi: true,
      logLevel: 'off',
    });
    this.#term.loadAddon(this.#serializer);
    // Queries in the output (DA, DSR, …) make xterm.js answer on onData; nothing listens, so nothing reaches the program.
    this.#term.onTitleChange((title) => (this.#title = title));
  }

  /** The seq of the last frame fed. */
  get seq(): number {
    return this.#seq;
  }

  /** Whether the last frame fed ended at a clean boundary (a snapshot may be taken). */
  get clean(): boolean {
    return this.#clean;
  }

  get cols(): number {
    return this.#term.cols;
  }

  get rows(): number {
    return this.#term.rows;
  }

  /** Bytes written and not yet parsed. */
  get pendingBytes(): number {
    return this.#pending;
  }

  /** True while pendingBytes is over SCREEN_MAX_PENDING_BYTES: the terminal's reading should pause. */
  get congested(): boolean {
    return this.#pending > SCREEN_MAX_PENDING_BYTES;
  }

  /** The headless terminal, for tests and renderers. */
  get terminal(): XTerminal {
    return this.#term;
  }

  /**
   * Output frame `seq`; `clean` is the cutter's mark. Frames must come in seq order. The bytes are copied: xterm.js
   * parses them later, and a replay buffer's frame data is a view into a ring that is reused once the frame is gone.
   */
  output(seq: number, data: Uint8Array, clean: boolean): void {
    this.#advance(seq);
    this.#clean = clean;
    if (data.length === 0 || this.#disposed) return;
    this.#pending += data.length;
    const n = data.length;
    this.#term.write(Uint8Array.prototype.slice.call(data), () => this.#parsed(n));
  }

  /** Resize frame `seq`: applied after everything written before it has been parsed. */
  resize(seq: number, cols: number, rows: number): void {
    this.#advance(seq);
    const apply = () => {
      if (this.#disposed) return;
      this.#term.options.scrollback = scrollbackFor(cols, this.scrollbackLines, this.scrollbackBytes);
      this.#term.resize(cols, rows);
    };
    if (this.#pending === 0) apply();
    else this.#term.write(new Uint8Array(0), apply); // the write queue runs callbacks in order
  }

  /** A frame the model does not draw (exit, stderr of a terminal: none): only its seq is recorded. */
  skip(seq: number): void {
    this.#advance(seq);
  }

  /** Resolves once everything written has been parsed. */
  whenParsed(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /**
   * The screen as of the last seq fed, or undefined when that frame ended inside a sequence or character. The
   * serialization itself is synchronous: about SCREEN_SCROLLBACK_LINES lines' worth (docs/terminal-design.md).
   */
  async snapshot(): Promise<ScreenSnapshot | undefined> {
    await this.whenParsed();
    if (!this.#clean || this.#disposed) return undefined;
    return { seq: this.#seq, cols: this.#term.cols, rows: this.#term.rows, data: this.#fit() };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#term.dispose();
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  #advance(seq: number): void {
    if (seq <= this.#seq) throw new Error(`screen: frame ${seq} does not follow ${this.#seq}`);
    this.#seq = seq;
  }

  #parsed(n: number): void {
    this.#pending -= n;
    if (this.#pending === 0) for (const w of this.#drainWaiters.splice(0)) w();
  }

  /** The snapshot data, with as much scrollback as fits snapshotMaxBytes. */
  #fit(): string {
    let scrollback = this.#term.buffer.normal.baseY;
    for (;;) {
      const data = snapshotData(this.#term, this.#serializer, scrollback, this.#title);
      const size = Buffer.byteLength(data);
      if (size <= this.snapshotMaxBytes || scrollback === 0) return data;
      // Cut the scrollback in proportion, a little more than needed, so this rarely runs thrice.
      scrollback = Math.floor((scrollback * this.snapshotMaxBytes * 0.9) / size);
    }
  }
}

// ---- the snapshot ----

/** The parts of xterm.js 6.0.0's core a complete snapshot reads (see the top of this file). */
interface CoreInternals {
  readonly _core?: {
    readonly buffer?: BufferInternals;
    readonly _inputHandler?: { readonly _curAttrData?: Attr };
    readonly _charsetService?: { readonly glevel?: number; readonly _charsets?: (Charset | undefined)[] };
    readonly coreService?: {
      readonly isCursorHidden?: boolean;
      readonly decPrivateModes?: { readonly origin?: boolean; readonly cursorStyle?: string; readonly cursorBlink?: boolean };
    };
    readonly coreMouseService?: { readonly activeEncoding?: string };
  };
}
interface BufferInternals {
  readonly x: number;
  readonly y: number;
  readonly ybase: number;
  readonly scrollTop: number;
  readonly scrollBottom: number;
  readonly savedX: number;
  readonly savedY: number;
  readonly savedCurAttrData?: Attr;
  readonly savedCharset?: Charset;
  readonly tabs?: Record<number, boolean | undefined>;
}
interface Attr {
  readonly fg: number;
  readonly bg: number;
}
type Charset = Record<string, string | undefined>;

const ESC = '\x1b';
const CSI = '\x1b[';
/** What the addon writes to switch to the alternate screen before drawing it. */
const ALT_SCREEN_SWITCH = '\x1b[?1049h\x1b[H';

/**
 * addon.serialize() (with `scrollback` lines of the normal buffer, no modes), then what it leaves out. The order
 * matters: everything that moves the cursor or prints comes before the charsets and modes that would change its
 * meaning (insert mode would shift a reprinted cell, origin mode would move a CUP).
 */
export function snapshotData(term: XTerminal, serializer: SerializeAddon, scrollback: number, title = ''): string {
  const core = (term as unknown as CoreInternals)._core;
  const buf = core?.buffer;
  let out = serializer.serialize({ scrollback, excludeModes: true });
  // The addon ends the normal screen by restoring the current pen, then draws the alternate screen as if the pen were
  // the default one: every alternate-screen cell it does not style explicitly would take that pen (bold, inverse, …).
  // A cell cannot contain ESC, so this sequence, which the addon writes before the alternate screen, occurs once.
  if (term.buffer.active.type === 'alternate') out = out.replace(ALT_SCREEN_SWITCH, `${CSI}0m${ALT_SCREEN_SWITCH}`);
  out += trailingColouredRows(term);
  if (buf === undefined) return out + modes(term, core);

  const cols = term.cols;
  const rows = term.rows;
  const origin = core?.coreService?.decPrivateModes?.origin === true;
  const region = buf.scrollTop !== 0 || buf.scrollBottom !== rows - 1;
  const saved = buf.savedX !== 0 || buf.savedY !== 0 || !isDefaultAttr(buf.savedCurAttrData) || buf.savedCharset !== undefined;
  const tabs = buf.tabs !== undefined && !defaultTabs(buf.tabs, cols);

  // Tab stops: clear all, set each (HTS at the column), on the cursor's row.
  if (tabs) {
    out += `${CSI}3g`;
    for (const col of Object.keys(buf.tabs!).map(Number)) if (buf.tabs![col] && col < cols) out += `${CSI}${col + 1}G${ESC}H`;
  }
  if (region) out += `${CSI}${buf.scrollTop + 1};${buf.scrollBottom + 1}r`; // homes the cursor
  if (saved) {
    const row = Math.min(rows - 1, Math.max(0, buf.savedY - buf.ybase));
    // DECSC saves position, pen and the charset in GL; G0 goes back to ASCII at once, for the reprint below.
    out += `${CSI}0m${sgr(buf.savedCurAttrData)}${ESC}(${designation(buf.savedCharset)}\x0f`;
    out += `${CSI}${row + 1};${Math.min(buf.savedX, cols - 1) + 1}H${ESC}7${ESC}(B`;
  }
  // Origin mode homes the cursor when set, so it goes first; then the cursor, by CUP (relative moves are what #6165
  // gets wrong; under origin mode CUP counts from the region's top), then the pen.
  if (origin) out += `${CSI}?6h`;
  out += cursor(term, buf, origin);
  out += `${CSI}0m${sgr(core?._inputHandler?._curAttrData)}`;
  // Charsets after everything printed: G0..G3 designations, then the shift state.
  const charsets = core?._charsetService?._charsets ?? [];
  const intro = ['(', ')', '*', '+'];
  for (let g = 0; g < 4; g++) if (charsets[g] !== undefined || (g === 0 && saved)) out += `${ESC}${intro[g]}${designation(charsets[g])}`;
  const glevel = core?._charsetService?.glevel ?? 0;
  if (glevel !== 0) out += ['', '\x0e', `${ESC}n`, `${ESC}o`][glevel] ?? '';
  out += modes(term, core);
  if (title !== '') out += `${ESC}]2;${printable(title)}\x07`;
  return out;
}

/**
 * The screen's last rows that hold no character but cells erased in a colour (an ED or EL with a background set):
 * the addon drops trailing rows without characters when the buffer fits the screen (always on the alternate screen),
 * so they come back here, run by run (SGR background, ECH). Redrawing a row the addon did draw changes nothing.
 */
function trailingColouredRows(term: XTerminal): string {
  const buf = term.buffer.active;
  let out = '';
  for (let y = term.rows - 1; y >= 0; y--) {
    const line = buf.getLine(buf.baseY + y);
    if (line === undefined) continue;
    let row = '';
    let runBg = 0;
    let runStart = 0;
    const flush = (end: number) => {
      if (runBg !== 0 && end > runStart) row += `${CSI}${runStart + 1}G${CSI}0m${sgr({ fg: 0, bg: runBg })}${CSI}${end - runStart}X`;
    };
    let hasChars = false;
    for (let x = 0; x < term.cols; x++) {
      const cell = line.getCell(x) as unknown as (Partial<Attr> & { getChars(): string }) | undefined;
      if (cell === undefined) break;
      if (cell.getChars() !== '') {
        hasChars = true;
        break;
      }
      const bg = (cell.bg ?? 0) & (CM_MASK | 0xffffff); // the colour only: an erased cell has no flags
      if (bg !== runBg) {
        flush(x);
        runBg = bg;
        runStart = x;
      }
    }
    if (hasChars) break; // the addon drew this row and every row above it
    flush(term.cols);
    if (row !== '') out += `${CSI}${y + 1};1H${row}`;
  }
  return out === '' ? '' : `${out}${CSI}0m`;
}

/** A CUP to the cursor; a cursor past the last column (pending wrap) is recreated by reprinting the last cell. */
function cursor(term: XTerminal, buf: BufferInternals, origin: boolean): string {
  const cols = term.cols;
  const row = origin ? buf.y - buf.scrollTop : buf.y;
  if (buf.x < cols) return `${CSI}${row + 1};${buf.x + 1}H`;
  // Pending wrap: the cursor sits past the last column until the next character. Reprint the row's last character
  // with its own attributes to get there (a wide character starts one column earlier).
  const line = term.buffer.active.getLine(buf.ybase + buf.y);
  let at = cols - 1;
  let cell = line?.getCell(at);
  if (cell && cell.getWidth() === 0 && at > 0) cell = line?.getCell(--at);
  const chars = cell?.getChars() || ' ';
  const attr = cell as unknown as Partial<Attr> | undefined;
  const pen = attr && typeof attr.fg === 'number' && typeof attr.bg === 'number' ? sgr(attr as Attr) : '';
  return `${CSI}${row + 1};${at + 1}H${CSI}0m${pen}${chars}`;
}

/** The modes the addon serializes (without origin, handled with the cursor), and those it does not. */
function modes(term: XTerminal, core: CoreInternals['_core']): string {
  const m = term.modes;
  let out = '';
  if (m.applicationCursorKeysMode) out += `${CSI}?1h`;
  if (m.applicationKeypadMode) out += `${CSI}?66h`;
  if (m.bracketedPasteMode) out += `${CSI}?2004h`;
  if (m.insertMode) out += `${CSI}4h`;
  if (m.reverseWraparoundMode) out += `${CSI}?45h`;
  if (m.sendFocusMode) out += `${CSI}?1004h`;
  if (!m.wraparoundMode) out += `${CSI}?7l`;
  const mouse = { none: '', x10: '?9h', vt200: '?1000h', drag: '?1002h', any: '?1003h' }[m.mouseTrackingMode];
  if (mouse) out += `${CSI}${mouse}`;
  const encoding = core?.coreMouseService?.activeEncoding;
  if (encoding === 'SGR') out += `${CSI}?1006h`;
  else if (encoding === 'SGR_PIXELS') out += `${CSI}?1016h`;
  const styles: Record<string, number> = { block: 2, underline: 4, bar: 6 };
  const style = core?.coreService?.decPrivateModes?.cursorStyle;
  if (style !== undefined && styles[style] !== undefined) {
    out += `${CSI}${styles[style]! - (core?.coreService?.decPrivateModes?.cursorBlink ? 1 : 0)} q`;
  }
  if (core?.coreService?.isCursorHidden) out += `${CSI}?25l`;
  return out;
}

/** The text without control characters, which would end or corrupt the OSC that carries it. */
function printable(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c !== 0x7f && !(c >= 0x80 && c < 0xa0)) out += ch;
  }
  return out;
}

function defaultTabs(tabs: Record<number, boolean | undefined>, cols: number): boolean {
  for (let c = 0; c < cols; c++) if (Boolean(tabs[c]) !== (c % 8 === 0)) return false;
  return true;
}

/** The final byte designating a charset: DEC special graphics, UK, or US ASCII (xterm.js's other sets are rare). */
function designation(charset: Charset | undefined): string {
  if (charset === undefined) return 'B';
  if (charset.q === '\u2500') return '0';
  if (charset['#'] === '£') return 'A';
  return 'B';
}

// xterm.js AttributeData bits (common/buffer/Constants.ts, 6.0.0).
const CM_MASK = 0x3000000;
const CM_P16 = 0x1000000;
const CM_P256 = 0x2000000;
const CM_RGB = 0x3000000;
const FG_FLAGS: [number, number][] = [
  [0x8000000, 1], // bold
  [0x10000000, 4], // underline
  [0x20000000, 5], // blink
  [0x4000000, 7], // inverse
  [0x40000000, 8], // invisible
  [0x80000000, 9], // strikethrough
];
const BG_FLAGS: [number, number][] = [
  [0x8000000, 2], // dim
  [0x4000000, 3], // italic
  [0x40000000, 53], // overline
];

function isDefaultAttr(a: Attr | undefined): boolean {
  return a === undefined || (a.fg === 0 && a.bg === 0);
}

/** The SGR sequence that sets a pen from its default state (empty for the default pen). */
export function sgr(a: Attr | undefined): string {
  if (a === undefined) return '';
  const params: string[] = [];
  for (const [bit, code] of FG_FLAGS) if ((a.fg & bit) !== 0) params.push(String(code));
  for (const [bit, code] of BG_FLAGS) if ((a.bg & bit) !== 0) params.push(String(code));
  const colour = (v: number, base: number, bright: number, ext: number) => {
    // A palette index is the low byte only: xterm.js leaves an earlier RGB value in the bits above it.
    const c = (v & CM_MASK) === CM_RGB ? v & 0xffffff : v & 0xff;
    switch (v & CM_MASK) {
      case CM_P16:
        params.push(String(c < 8 ? base + c : bright + c - 8));
        break;
      case CM_P256:
        params.push(`${ext};5;${c}`);
        break;
      case CM_RGB:
        params.push(`${ext};2;${(c >> 16) & 0xff};${(c >> 8) & 0xff};${c & 0xff}`);
        break;
      default:
        break;
    }
  };
  colour(a.fg, 30, 90, 38);
  colour(a.bg, 40, 100, 48);
  return params.length === 0 ? '' : `${CSI}${params.join(';')}m`;
}

// ---- lazy placement over a replay buffer ----

/** A frame of a terminal process as the screen needs it (the supervisor's frames carry more). */
export type ScreenFrame =
  | { readonly seq: number; readonly kind: 'output'; readonly data: Uint8Array; readonly clean: boolean }
  | { readonly seq: number; readonly kind: 'resize'; readonly cols: number; readonly rows: number }
  | { readonly seq: number; readonly kind: 'other' };

/**
 * The model of one terminal process, created at the first eviction from its replay buffer and fed each frame as it
 * is evicted, so the model is always the screen as of some seq at or past firstSeq - 1.
 */
export class ScreenKeeper {
  readonly #options: ScreenOptions;
  #model: ScreenModel | undefined;

  /** `cols` and `rows`: the size at spawn, the size in force before the first frame. */
  constructor(options: ScreenOptions) {
    this.#options = options;
  }

  /** The model, once created. */
  get model(): ScreenModel | undefined {
    return this.#model;
  }

  /** The replay buffer evicted `frame` (in seq order). Frames the model already consumed are skipped. */
  evicted(frame: ScreenFrame): void {
    this.#model ??= new ScreenModel(this.#options);
    if (frame.seq <= this.#model.seq) return;
    this.#feed(frame);
  }

  /**
   * Starts the model from a snapshot instead of from the first frame: a daemon adopting a terminal whose early frames
   * the journal no longer holds (only the screen made of them, src/process/child.ts).
   */
  seed(snap: ScreenSnapshot): void {
    this.#model?.dispose();
    this.#model = new ScreenModel({ ...this.#options, cols: snap.cols, rows: snap.rows });
    this.#model.output(snap.seq, Buffer.from(snap.data, 'utf8'), true);
  }

  /**
   * A snapshot to precede a replay that cannot start at `firstSeq` from raw frames, or undefined when nothing was
   * ever evicted (the raw frames from seq 1 are all there). If the last frame fed did not end clean, the model is
   * fed forward over the retained frames (`retained(seq)`) up to the first clean one; resolves undefined when there
   * is none yet (a sequence is still open at the newest frame: ask again after the next frame).
   */
  async snapshot(retained: (seq: number) => ScreenFrame | undefined): Promise<ScreenSnapshot | undefined> {
    const model = this.#model;
    if (model === undefined) return undefined;
    while (!model.clean) {
      const next = retained(model.seq + 1);
      if (next === undefined) return undefined;
      this.#feed(next);
    }
    return model.snapshot();
  }

  dispose(): void {
    this.#model?.dispose();
    this.#model = undefined;
  }

  #feed(frame: ScreenFrame): void {
    const model = this.#model!;
    if (frame.kind === 'output') model.output(frame.seq, frame.data, frame.clean);
    else if (frame.kind === 'resize') model.resize(frame.seq, frame.cols, frame.rows);
    else model.skip(frame.seq);
  }
}
