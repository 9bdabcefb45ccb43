/** The daemon panel: what the daemon is and how busy, with two small live charts (spawns/s, output/s). */
import { h } from './dom.js';
import { formatBytes, formatDuration, formatRate } from './format.js';
import type { DaemonFigures } from './info.js';

/** Samples a chart keeps: two minutes at one sample per INFO_REFRESH_MS (2 s). */
export const CHART_SAMPLES = 60;

class Sparkline {
  readonly element: HTMLElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #value: HTMLElement;
  readonly #samples: number[] = [];

  constructor(label: string) {
    this.#canvas = h('canvas', { width: 240, height: 40, role: 'img', 'aria-label': `${label}, last two minutes` });
    this.#value = h('span', { class: 'value' }, 'n/a');
    this.element = h('figure', { class: 'spark' }, h('figcaption', {}, label, ': ', this.#value), this.#canvas);
  }

  push(value: number | undefined, text: string): void {
    this.#value.textContent = text;
    this.#samples.push(value ?? 0);
    if (this.#samples.length > CHART_SAMPLES) this.#samples.shift();
    const ctx = this.#canvas.getContext('2d');
    if (!ctx) return;
    const { width, height } = this.#canvas;
    ctx.clearRect(0, 0, width, height);
    const max = Math.max(1, ...this.#samples);
    ctx.strokeStyle = getComputedStyle(this.#canvas).color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    this.#samples.forEach((v, i) => {
      const x = (i / (CHART_SAMPLES - 1)) * (width - 2) + 1;
      const y = height - 2 - (v / max) * (height - 4);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
    this.#canvas.setAttribute('aria-label', `${this.#canvas.getAttribute('aria-label')?.split(',')[0]}, now ${text}`);
  }
}

export class DaemonPanel {
  readonly element: HTMLElement;
  readonly #facts: HTMLElement;
  readonly #spawns = new Sparkline('Spawns');
  readonly #output = new Sparkline('Output');
  readonly #audit: HTMLElement;
  readonly #source: HTMLElement;

  constructor() {
    this.#facts = h('dl', { class: 'facts' });
    this.#audit = h('pre', { class: 'audit', hidden: true, tabindex: 0, 'aria-label': 'Audit tail' });
    this.#source = h('p', { class: 'hint' });
    this.element = h(
      'section',
      { class: 'daemon', 'aria-labelledby': 'daemon-title' },
      h('h2', { id: 'daemon-title' }, 'Daemon'),
      this.#facts,
      h('div', { class: 'charts' }, this.#spawns.element, this.#output.element),
      this.#audit,
      this.#source,
    );
  }

  show(f: DaemonFigures, spawnRate: number | undefined, outputRate: number | undefined): void {
    const na = 'n/a';
    const rows: [string, string][] = [
      ['Version', f.version ?? na],
      ['Instance', f.instance ? f.instance.slice(0, 12) : na],
      ['Uptime', f.startedAt !== undefined ? formatDuration(Date.now() - f.startedAt) : na],
      ['Processes', f.processes === undefined ? na : `${f.processes}${f.running !== undefined ? ` (${f.running} running)` : ''}`],
      ['Connections', f.connections === undefined ? na : String(f.connections)],
      ['Replay bytes', f.replayBytes === undefined ? na : formatBytes(f.replayBytes)],
    ];
    if (f.auditHead !== undefined) rows.push(['Audit head', f.auditHead.slice(0, 16)]);
    this.#facts.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    this.#spawns.push(spawnRate, spawnRate === undefined ? na : formatRate(spawnRate, 'spawns'));
    this.#output.push(
      outputRate,
      outputRate === undefined ? na : f.outputUnit === 'bytes' ? `${formatBytes(Math.round(outputRate))}/s` : formatRate(outputRate, 'frames'),
    );
    this.#audit.hidden = f.auditTail.length === 0;
    this.#audit.textContent = f.auditTail.join('\n');
    this.#source.textContent =
      f.source === 'server.info'
        ? ''
        : 'This daemon has no server.info: connections and replay bytes are not known, output is counted in frames from process.list.';
  }
}
