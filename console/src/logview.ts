/**
 * The log view of a piped process. Rendering is rate-limited, never the data: frames update the model (logmodel.ts)
 * as they arrive, and the DOM is brought up to date at most once per animation frame, less often when drawing is
 * slow (RENDER_BUDGET), and with a bounded number of line elements. While following, only the newest
 * FOLLOW_DOM_LINES are in the document (a flood scrolls past faster than anyone reads); on pause (the button, or
 * scrolling up) the view fills back to MAX_DOM_LINES so there is something to scroll through, and draws nothing new
 * until it follows again. The model keeps taking every frame throughout.
 */
import { h } from './dom.js';
import type { LogEntry, LogModel } from './logmodel.js';

/** Line elements kept while following: a few screens (a 1280×720 view shows about 35 lines). */
export const FOLLOW_DOM_LINES = 100;
/** Line elements kept while paused, to scroll back through; the model keeps more (MAX_LOG_LINES). */
export const MAX_DOM_LINES = 1000;
/**
 * The share of the page's time drawing may take. A draw's cost is measured from its start to the start of the next
 * animation frame, so it includes what the browser does after the script (style, layout, paint: most of it, as the
 * profile of a flood showed); the next draw then waits at least cost × (1 / RENDER_BUDGET − 1). Measured on a loaded
 * 2-core machine under a flood: a 200-line redraw frame took 60–150 ms, so floods are drawn 2–5 times a second and
 * the page keeps three quarters of its time for input; a quiet log is drawn at up to about 15 frames a second.
 */
export const RENDER_BUDGET = 0.25;

function entryElement(e: LogEntry): HTMLElement {
  switch (e.kind) {
    case 'stdout':
      return h('div', { class: 'line stdout' }, e.text);
    case 'stderr':
      return h('div', { class: 'line stderr' }, e.text);
    case 'gap':
      return h(
        'div',
        { class: 'marker gap', role: 'note' },
        `⚠ frames ${e.fromSeq}–${e.toSeq} lost (${e.toSeq - e.fromSeq + 1}): evicted from the daemon’s buffer before this view read them`,
      );
    case 'exit':
      return h('div', { class: 'marker exit', role: 'note' }, `■ ${e.text}`);
    case 'note':
      return h('div', { class: 'marker note', role: 'note' }, e.text);
  }
}

function fragment(entries: readonly LogEntry[]): DocumentFragment {
  const frag = document.createDocumentFragment();
  for (const e of entries) frag.append(entryElement(e));
  return frag;
}

export class LogView {
  readonly element: HTMLElement;
  readonly #lines: HTMLElement;
  readonly #tail: HTMLElement;
  /** The frames lost so far, pinned at the top: a gap's own entry scrolls away (and out of the model) under a flood. */
  readonly #gapBar: HTMLElement;
  #model: LogModel | undefined;
  /** Model indexes of the first line element and one past the last. */
  #drawnStart = 0;
  #drawnEnd = 0;
  #follow = true;
  #frame = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #notBefore = 0;
  #ourScrollTop = -1;
  /** DOM updates done, and model updates that asked for one (the difference was merged into later draws). */
  renders = 0;
  requests = 0;
  /** Time spent drawing, in ms (style and layout included). */
  drawMs = 0;
  onFollowChange: ((follow: boolean) => void) | undefined;

  constructor() {
    this.#lines = h('div', { class: 'lines' });
    this.#tail = h('div', { class: 'tail' });
    this.#gapBar = h('div', { class: 'marker gap gap-bar', role: 'note', hidden: true });
    this.element = h(
      'div',
      { class: 'log', tabindex: 0, role: 'log', 'aria-live': 'off', 'aria-label': 'Output (stderr lines marked in red at the left edge)' },
      this.#gapBar,
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
    this.#drawnStart = this.#drawnEnd = model.start;
    this.#lines.replaceChildren();
    this.#tail.replaceChildren();
    this.#draw(true);
  }

  /** The model changed: draw soon (once, however many updates arrive before then). */
  invalidate(): void {
    this.requests++;
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#follow || this.#frame !== 0 || this.#timer !== undefined) return;
    const wait = this.#notBefore - performance.now();
    const schedule = () => {
      this.#timer = undefined;
      this.#frame = requestAnimationFrame(() => {
        this.#frame = 0;
        this.#draw();
      });
    };
    if (wait > 0) this.#timer = setTimeout(schedule, wait);
    else schedule();
  }

  setFollow(follow: boolean): void {
    if (this.#follow === follow) return;
    this.#follow = follow;
    this.onFollowChange?.(follow);
    if (follow) this.#schedule();
    else this.#backfill();
  }

  dispose(): void {
    if (this.#frame !== 0) cancelAnimationFrame(this.#frame);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#frame = 0;
    this.#timer = undefined;
    this.#model = undefined;
  }

  /** `force`: draw even while paused (a new model must show something). */
  #draw(force = false): void {
    const model = this.#model;
    if (!model || (!this.#follow && !force)) return;
    const t0 = performance.now();
    this.renders++;
    const { from, entries } = model.since(this.#drawnEnd);
    if (from > this.#drawnEnd || entries.length >= FOLLOW_DOM_LINES || this.#drawnStart < model.start) {
      // Too much is new (or what was drawn left the model): draw the newest lines from scratch.
      const keep =
        entries.length >= FOLLOW_DOM_LINES ? entries.slice(-FOLLOW_DOM_LINES) : model.range(model.end - FOLLOW_DOM_LINES, model.end).entries;
      this.#lines.replaceChildren(fragment(keep));
      this.#drawnStart = model.end - keep.length;
    } else if (entries.length > 0) {
      this.#lines.append(fragment(entries));
      let extra = this.#lines.childElementCount - FOLLOW_DOM_LINES;
      this.#drawnStart += Math.max(0, extra);
      while (extra-- > 0) this.#lines.firstElementChild?.remove();
    }
    this.#drawnEnd = model.end;
    this.#tail.replaceChildren(...model.partials().map(entryElement));
    this.#showGaps(model);
    this.element.scrollTop = this.element.scrollHeight;
    this.#ourScrollTop = this.element.scrollTop;
    // Nothing is drawn until the cost is known: the next frame's start ends this draw's rendering.
    this.#notBefore = Number.POSITIVE_INFINITY;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      const now = performance.now();
      const cost = now - t0;
      this.drawMs += cost;
      this.#notBefore = now + cost * (1 / RENDER_BUDGET - 1);
      if (this.#model && this.#model.end !== this.#drawnEnd) this.#schedule();
    });
  }

  #showGaps(model: LogModel): void {
    this.#gapBar.hidden = model.gaps === 0;
    if (model.gaps === 0 || !model.lastGap) return;
    const { fromSeq, toSeq } = model.lastGap;
    const text =
      model.gaps === 1
        ? `⚠ frames ${fromSeq}–${toSeq} lost (${model.lostFrames}): evicted from the daemon’s buffer before this view read them`
        : `⚠ ${model.lostFrames} frames lost in ${model.gaps} gaps, the last ${fromSeq}–${toSeq}: evicted before this view read them`;
    if (this.#gapBar.textContent !== text) this.#gapBar.textContent = text;
  }

  /**
   * Paused: older lines above what is drawn, up to MAX_DOM_LINES, without moving what the reader sees. Under a flood
   * the model may have moved past everything drawn since the last draw; then the view shows the model's newest lines.
   */
  #backfill(): void {
    const model = this.#model;
    if (!model) return;
    if (this.#drawnStart < model.start) {
      const { from, entries } = model.range(model.end - MAX_DOM_LINES, model.end);
      this.#lines.replaceChildren(fragment(entries));
      this.#tail.replaceChildren(...model.partials().map(entryElement));
      this.#drawnStart = from;
      this.#drawnEnd = model.end;
      this.element.scrollTop = this.element.scrollHeight;
      this.#ourScrollTop = this.element.scrollTop;
      return;
    }
    if (this.#drawnStart === model.start) return;
    const { from, entries } = model.range(this.#drawnEnd - MAX_DOM_LINES, this.#drawnStart);
    if (entries.length === 0) return;
    const before = this.element.scrollHeight;
    const top = this.element.scrollTop;
    this.#lines.prepend(fragment(entries));
    this.#drawnStart = from;
    this.element.scrollTop = top + (this.element.scrollHeight - before);
    this.#ourScrollTop = this.element.scrollTop;
  }
}
