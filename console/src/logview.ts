/**
 * The log view of a piped process. Rendering is rate-limited, never the data: frames update the model (logmodel.ts)
 * as they arrive, and the DOM is brought up to date at most once per animation frame, with at most MAX_DOM_LINES
 * line elements. While paused (the button, or scrolling up) nothing is drawn; the model keeps taking every frame.
 */
import { h } from './dom.js';
import type { LogEntry, LogModel } from './logmodel.js';

/** Line elements kept in the document: enough to scroll back a few screens, few enough that a layout stays cheap. */
export const MAX_DOM_LINES = 1000;

function entryElement(e: LogEntry): HTMLElement {
  switch (e.kind) {
    case 'stdout':
    case 'stderr':
      return h('div', { class: `line ${e.kind}` }, e.text);
    case 'gap':
      return h(
        'div',
        { class: 'marker gap', role: 'note' },
        `⚠ frames ${e.fromSeq}–${e.toSeq} lost (${e.toSeq - e.fromSeq + 1}): evicted from the daemon's buffer before this view read them`,
      );
    case 'exit':
      return h('div', { class: 'marker exit', role: 'note' }, `■ ${e.text}`);
    case 'note':
      return h('div', { class: 'marker note', role: 'note' }, e.text);
  }
}

export class LogView {
  readonly element: HTMLElement;
  readonly #lines: HTMLElement;
  readonly #tail: HTMLElement;
  #model: LogModel | undefined;
  #drawnEnd = 0;
  #follow = true;
  #scheduled = 0;
  #ourScrollTop = -1;
  /** DOM updates done, and model updates that asked for one (the difference was merged into later frames). */
  renders = 0;
  requests = 0;
  onFollowChange: ((follow: boolean) => void) | undefined;

  constructor() {
    this.#lines = h('div', { class: 'lines' });
    this.#tail = h('div', { class: 'tail' });
    this.element = h(
      'div',
      { class: 'log', tabindex: 0, role: 'log', 'aria-live': 'off', 'aria-label': 'Output (stdout plain, stderr marked !)' },
      this.#lines,
      this.#tail,
    );
    this.element.addEventListener('scroll', () => {
      if (this.element.scrollTop === this.#ourScrollTop) return;
      const atBottom = this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 8;
      if (this.#follow && !atBottom) this.setFollow(false);
    });
  }

  get following(): boolean {
    return this.#follow;
  }

  setModel(model: LogModel): void {
    this.#model = model;
    this.#drawnEnd = model.start;
    this.#lines.replaceChildren();
    this.#tail.replaceChildren();
    this.#draw();
  }

  /** The model changed: draw on the next animation frame (once, however many frames arrive before it). */
  invalidate(): void {
    this.requests++;
    if (!this.#follow || this.#scheduled !== 0) return;
    this.#scheduled = requestAnimationFrame(() => {
      this.#scheduled = 0;
      this.#draw();
    });
  }

  setFollow(follow: boolean): void {
    if (this.#follow === follow) return;
    this.#follow = follow;
    this.onFollowChange?.(follow);
    if (follow) this.invalidate();
  }

  dispose(): void {
    if (this.#scheduled !== 0) cancelAnimationFrame(this.#scheduled);
    this.#scheduled = 0;
    this.#model = undefined;
  }

  #draw(): void {
    const model = this.#model;
    if (!model) return;
    this.renders++;
    const { from, entries } = model.since(this.#drawnEnd);
    if (from > this.#drawnEnd || entries.length >= MAX_DOM_LINES) {
      // Too much is new (or what was drawn was dropped from the model): draw the newest screenful from scratch.
      const frag = document.createDocumentFragment();
      for (const e of entries.slice(-MAX_DOM_LINES)) frag.append(entryElement(e));
      this.#lines.replaceChildren(frag);
    } else if (entries.length > 0) {
      const frag = document.createDocumentFragment();
      for (const e of entries) frag.append(entryElement(e));
      this.#lines.append(frag);
      let extra = this.#lines.childElementCount - MAX_DOM_LINES;
      while (extra-- > 0) this.#lines.firstElementChild?.remove();
    }
    this.#drawnEnd = model.end;
    this.#tail.replaceChildren(...model.partials().map(entryElement));
    this.#ourScrollTop = this.element.scrollTop = this.element.scrollHeight;
    this.#ourScrollTop = this.element.scrollTop;
  }
}
