/**
 * What a terminal process shows: its output items (a `screen`, `resize` frames, output) drawn by a headless terminal
 * emulator (@xterm/headless, the emulator VS Code and the daemon's own screen model use), read back as text.
 *
 * ```ts
 * const proc = client.attach('shell-1', { screen: true });
 * const screen = new TerminalScreen({ cols: 80, rows: 24, onAnswer: (a) => void proc.write(a) });
 * for await (const item of proc.output()) screen.apply(item);
 * await screen.flushed();
 * console.log(screen.text());
 * ```
 *
 * Terminal queries (device attributes, cursor position, colours) make an emulator answer, as a real terminal would;
 * `onAnswer` hears the answers to live output, so a program that asks gets its reply. Answers to replayed output (an
 * item marked `replay`, and every `screen`) are dropped: the program asked long ago and another terminal answered
 * then; answering again would reach it as typed junk (coder/wsep#24).
 *
 * @xterm/headless (about 1 MB of heap and 100 ms to load) is loaded by the first TerminalScreen, not with the client.
 */
import { createRequire } from 'node:module';
import type { Terminal as XTerminal } from '@xterm/headless';
import type { OutputItem } from './output.js';

/** Scrollback a TerminalScreen keeps by default: the daemon's snapshot keeps at most as much (SCREEN_SCROLLBACK_LINES). */
export const TERMINAL_SCREEN_SCROLLBACK = 1000;

let headless: { readonly Terminal: typeof XTerminal } | undefined;
function loadHeadless(): NonNullable<typeof headless> {
  // CommonJS; required at the first screen so a client that never renders one does not load it.
  headless ??= createRequire(import.meta.url)('@xterm/headless') as { Terminal: typeof XTerminal };
  return headless;
}

export interface TerminalScreenOptions {
  /**
   * The size the output was drawn at until a `screen` or `resize` item says otherwise: the spawn's `pty` size for a
   * process followed from its start.
   */
  readonly cols: number;
  readonly rows: number;
  /** Scrollback lines kept (TERMINAL_SCREEN_SCROLLBACK by default). */
  readonly scrollback?: number;
  /** The emulator's answers to queries in live output (pass them to the process's stdin to answer as a terminal). */
  readonly onAnswer?: (answer: Buffer) => void;
}

/** What a screen shows, as text. */
export interface ScreenText {
  /** The visible rows, right-trimmed, joined with `\n`. */
  readonly text: string;
  /** The visible rows, right-trimmed. */
  readonly lines: readonly string[];
  /** 0-based. */
  readonly cursor: { readonly x: number; readonly y: number };
  /** Whether the alternate screen (full-screen programs) is up. */
  readonly alternate: boolean;
  readonly cols: number;
  readonly rows: number;
}

const EMPTY = new Uint8Array(0);

export class TerminalScreen {
  readonly #term: XTerminal;
  readonly #onAnswer: ((answer: Buffer) => void) | undefined;
  /** True while the emulator parses replayed output: its answers are dropped. Toggled in parse order. */
  #muted = false;
  #disposed = false;
  /** Answers dropped because they answered replayed output. */
  droppedAnswers = 0;

  constructor(options: TerminalScreenOptions) {
    const { Terminal } = loadHeadless();
    this.#term = new Terminal({
      cols: options.cols,
      rows: options.rows,
      scrollback: options.scrollback ?? TERMINAL_SCREEN_SCROLLBACK,
      allowProposedApi: true,
      logLevel: 'off',
    });
    this.#onAnswer = options.onAnswer;
    this.#term.onData((data) => this.#answer(Buffer.from(data, 'utf8')));
    this.#term.onBinary((data) => this.#answer(Buffer.from(data, 'latin1')));
  }

  /**
   * Draws one output item, in seq order: a `screen` resets the emulator to that screen and size, a `resize` takes
   * effect after everything before it, output is written (answers dropped for `replay`). Gaps change nothing (what
   * was lost cannot be drawn). Parsing is asynchronous: `flushed()` waits for it.
   */
  apply(item: OutputItem): void {
    if (this.#disposed) return;
    const term = this.#term;
    switch (item.type) {
      case 'screen':
        term.write(EMPTY, () => {
          this.#muted = true;
          term.reset();
          if (term.cols !== item.cols || term.rows !== item.rows) term.resize(item.cols, item.rows);
        });
        term.write(item.data, () => (this.#muted = false));
        return;
      case 'resize':
        // xterm.js resizes at once but parses later: the resize waits for the output before it.
        term.write(EMPTY, () => term.resize(item.cols, item.rows));
        return;
      case 'stdout':
      case 'stderr':
        if (item.replay === true) {
          term.write(EMPTY, () => (this.#muted = true));
          term.write(item.data, () => (this.#muted = false));
        } else term.write(item.data);
        return;
      case 'gap':
        return;
    }
  }

  /** Resolves once everything applied so far is parsed. */
  flushed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#disposed) resolve();
      else this.#term.write(EMPTY, resolve);
    });
  }

  /** The visible rows, right-trimmed (call after `flushed()`). */
  lines(): string[] {
    const buf = this.#term.buffer.active;
    const out: string[] = [];
    for (let y = 0; y < this.#term.rows; y++) out.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? '');
    return out;
  }

  /** The visible rows joined with `\n`. */
  text(): string {
    return this.lines().join('\n');
  }

  /** Everything at once: text, rows, cursor, which screen, size. */
  read(): ScreenText {
    const lines = this.lines();
    const buf = this.#term.buffer.active;
    return {
      text: lines.join('\n'),
      lines,
      cursor: { x: buf.cursorX, y: buf.cursorY },
      alternate: buf.type === 'alternate',
      cols: this.#term.cols,
      rows: this.#term.rows,
    };
  }

  get cols(): number {
    return this.#term.cols;
  }

  get rows(): number {
    return this.#term.rows;
  }

  /** The emulator itself (its buffers, modes, addons), for what the text does not show. */
  get terminal(): XTerminal {
    return this.#term;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#term.dispose();
  }

  #answer(bytes: Buffer): void {
    if (this.#muted) this.droppedAnswers++;
    else this.#onAnswer?.(bytes);
  }
}

/**
 * Renders output items (a `screen` and the frames after it, or a whole run) into the screen they draw, as text: for
 * tests, logs and previews. Items may come from an array or from `handle.output()` (which ends at the exit).
 */
export async function renderScreen(
  items: Iterable<OutputItem> | AsyncIterable<OutputItem>,
  options: Omit<TerminalScreenOptions, 'onAnswer'>,
): Promise<ScreenText> {
  const screen = new TerminalScreen(options);
  try {
    for await (const item of items) screen.apply(item);
    await screen.flushed();
    return screen.read();
  } finally {
    screen.dispose();
  }
}
