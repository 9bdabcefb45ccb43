/**
 * The view of a terminal process: xterm.js fed with the process's frames. A `screen` frame (the daemon's serialized
 * screen as of its seq) resets the emulator to that screen; `resize` frames set the size in force; output frames
 * are written in seq order, each at most once (a frame at or below the last seq drawn is a duplicate, as happens
 * when this page both owns and observes a process). Typing reaches the process only in control (after "take
 * control"), and never while replayed output is being parsed: terminal queries in the replay (DA, cursor position)
 * make xterm answer, and those answers must not reach the program as input (terminals issue).
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { h } from './dom.js';
import type { Frame } from './wire.js';

/** Bytes handed to xterm and not yet parsed past which the view stops writing and asks for a fresh screen (xterm discards past 50 MB). */
export const TERM_MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** Lines of scrollback kept by the view's emulator. */
export const TERM_SCROLLBACK = 1000;

/**
 * xterm's DOM renderer writes cell sizes and colours into <style> elements it creates; the page's CSP allows inline
 * styles only with this response's nonce (src/console/assets.ts), which the page's own <script> tag carries.
 */
export function stampStyleNonces(doc: Document): void {
  const nonce = doc.querySelector<HTMLScriptElement>('script[nonce]')?.nonce;
  if (!nonce) return;
  const create = doc.createElement.bind(doc) as (tag: string, options?: ElementCreationOptions) => HTMLElement;
  doc.createElement = ((tag: string, options?: ElementCreationOptions) => {
    const el = create(tag, options);
    if (tag.toLowerCase() === 'style') el.nonce = nonce;
    return el;
  }) as typeof doc.createElement;
}

const utf8 = new TextEncoder();

export class TermView {
  readonly element: HTMLElement;
  readonly term: Terminal;
  readonly #fit = new FitAddon();
  #pending = 0;
  #suppress = 0;
  #resyncing = false;
  #control = false;
  lastSeq = 0;
  /** Frames written, and writes xterm has finished parsing (the difference is its backlog). */
  written = 0;
  parsed = 0;
  onInput: ((bytes: Uint8Array) => void) | undefined;
  /** The backlog passed TERM_MAX_PENDING_BYTES: frames are being dropped until a new screen frame arrives. */
  onResync: (() => void) | undefined;

  constructor(cols: number, rows: number) {
    const host = h('div', { class: 'term-host' });
    this.element = h('div', { class: 'term', role: 'region', 'aria-label': 'Terminal' }, host);
    this.term = new Terminal({ cols, rows, scrollback: TERM_SCROLLBACK, disableStdin: true, convertEol: false, allowProposedApi: false });
    this.term.loadAddon(this.#fit);
    this.term.open(host);
    this.term.onData((data) => {
      if (this.#control && this.#suppress === 0) this.onInput?.(utf8.encode(data));
    });
    this.term.onBinary((data) => {
      if (this.#control && this.#suppress === 0) this.onInput?.(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
    });
  }

  get control(): boolean {
    return this.#control;
  }

  setControl(on: boolean): void {
    this.#control = on;
    this.term.options.disableStdin = !on;
    if (on) this.term.focus();
  }

  /** The size that fits the view's box, for "resize to view"; undefined when the view is not laid out. */
  fittedSize(): { cols: number; rows: number } | undefined {
    const d = this.#fit.proposeDimensions();
    return d && d.cols > 0 && d.rows > 0 ? { cols: d.cols, rows: d.rows } : undefined;
  }

  /** `replay`: the frame precedes the subscription's reply (already-seen output): xterm's answers to it are dropped. */
  frame(f: Frame, replay: boolean): void {
    if (f.type === 'gap') {
      this.lastSeq = Math.max(this.lastSeq, f.toSeq);
      return;
    }
    if (f.stream === 'screen') {
      this.#resyncing = false;
      this.term.reset();
      if (f.cols !== this.term.cols || f.rows !== this.term.rows) this.term.resize(f.cols, f.rows);
      this.lastSeq = f.seq;
      this.#write(f.data, true);
      return;
    }
    if (f.seq <= this.lastSeq || this.#resyncing) return;
    // While this view's observe replays (from seq 1, or from a screen), a frame ahead of the next one is the owner's
    // own copy on this connection (a process the page spawned) arriving before the replay reached it: taking it would
    // skip the frames between, which the replay is about to bring in order. (Seen: a spawned terminal missing its
    // first line.)
    if (replay && f.seq > this.lastSeq + 1) return;
    this.lastSeq = f.seq;
    switch (f.stream) {
      case 'resize':
        this.term.resize(f.cols, f.rows);
        return;
      case 'stdout':
      case 'stderr':
        this.#write(f.data, replay);
        if (this.#pending > TERM_MAX_PENDING_BYTES) {
          this.#resyncing = true;
          this.onResync?.();
        }
        return;
      case 'exit':
        this.setControl(false);
        return;
    }
  }

  /** Resolves once everything written so far is parsed (tests compare the screen after this). */
  flushed(): Promise<void> {
    return new Promise((resolve) => this.term.write('', () => resolve()));
  }

  dispose(): void {
    this.term.dispose();
  }

  #write(data: Uint8Array | string, replay: boolean): void {
    const n = typeof data === 'string' ? data.length : data.length;
    this.#pending += n;
    this.written++;
    if (replay) this.#suppress++;
    this.term.write(data, () => {
      this.#pending -= n;
      this.parsed++;
      if (replay) this.#suppress--;
    });
  }
}
