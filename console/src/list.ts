/**
 * The process table: one row per process the daemon knows, sortable by any column, filtered by text. Rows are kept
 * by id and updated in place (focus and selection survive a refresh); which rows are on screen is tracked so that
 * `process.stats` is asked only for those.
 */
import { h } from './dom.js';
import { formatArgv, formatBytes, formatDuration } from './format.js';
import type { ProcessEntry, StatsResult } from './wire.js';

type Key = 'id' | 'command' | 'state' | 'age' | 'exit' | 'cpu' | 'memory' | 'observers' | 'kind';

interface Column {
  readonly key: Key;
  readonly label: string;
  readonly numeric?: boolean;
}

const COLUMNS: readonly Column[] = [
  { key: 'id', label: 'ID' },
  { key: 'command', label: 'Command' },
  { key: 'state', label: 'State' },
  { key: 'age', label: 'Age', numeric: true },
  { key: 'exit', label: 'Exit' },
  { key: 'cpu', label: 'CPU', numeric: true },
  { key: 'memory', label: 'Memory', numeric: true },
  { key: 'observers', label: 'Obs.', numeric: true },
  { key: 'kind', label: 'Kind' },
];

export function exitText(p: ProcessEntry): string {
  if (p.running) return '';
  if (p.signal) return p.signal;
  return p.exitCode === undefined ? '?' : String(p.exitCode);
}

export function kindText(p: ProcessEntry): string {
  return p.pty ? `terminal ${p.pty.cols}×${p.pty.rows}` : 'pipes';
}

interface Row {
  readonly tr: HTMLTableRowElement;
  readonly cells: Record<Key, HTMLTableCellElement>;
}

export class ProcessList {
  readonly element: HTMLElement;
  readonly #filter: HTMLInputElement;
  readonly #tbody: HTMLTableSectionElement;
  readonly #empty: HTMLElement;
  readonly #headers = new Map<Key, HTMLTableCellElement>();
  readonly #rows = new Map<string, Row>();
  readonly #visible = new Set<string>();
  readonly #observer: IntersectionObserver;
  #entries: readonly ProcessEntry[] = [];
  #stats = new Map<string, StatsResult>();
  #sort: { key: Key; dir: 1 | -1 } = { key: 'age', dir: 1 };
  #selected: string | undefined;
  onSelect: ((id: string) => void) | undefined;

  constructor() {
    this.#filter = h('input', { type: 'search', id: 'filter', placeholder: 'id, command, state…', autocomplete: 'off' });
    this.#filter.addEventListener('input', () => this.#render());
    const headRow = h('tr');
    for (const c of COLUMNS) {
      const button = h('button', { type: 'button', class: 'sort' }, c.label);
      button.addEventListener('click', () => {
        this.#sort = this.#sort.key === c.key ? { key: c.key, dir: this.#sort.dir === 1 ? -1 : 1 } : { key: c.key, dir: 1 };
        this.#render();
      });
      const th = h('th', { scope: 'col', class: c.numeric ? 'num' : undefined }, button);
      this.#headers.set(c.key, th);
      headRow.append(th);
    }
    this.#tbody = h('tbody');
    this.#empty = h('p', { class: 'empty', role: 'status' });
    this.element = h(
      'section',
      { class: 'processes', 'aria-labelledby': 'processes-title' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', { id: 'processes-title' }, 'Processes'),
        h('label', { class: 'filter' }, h('span', { class: 'sr' }, 'Filter processes'), this.#filter),
      ),
      h('div', { class: 'table-wrap' }, h('table', { class: 'plist', 'aria-describedby': 'processes-title' }, h('thead', {}, headRow), this.#tbody)),
      this.#empty,
    );
    this.#observer = new IntersectionObserver((items) => {
      for (const it of items) {
        const id = (it.target as HTMLElement).dataset.id!;
        if (it.isIntersecting) this.#visible.add(id);
        else this.#visible.delete(id);
      }
    });
  }

  /** Running processes whose rows are on screen (and pass the filter): the ones worth a stats request. */
  visibleRunning(): string[] {
    return this.#entries.filter((p) => p.running && this.#visible.has(p.id) && this.#rows.get(p.id)?.tr.hidden === false).map((p) => p.id);
  }

  update(entries: readonly ProcessEntry[]): void {
    this.#entries = entries;
    const live = new Set(entries.map((p) => p.id));
    for (const [id, row] of this.#rows) {
      if (live.has(id)) continue;
      this.#observer.unobserve(row.tr);
      row.tr.remove();
      this.#rows.delete(id);
      this.#stats.delete(id);
      this.#visible.delete(id);
    }
    this.#render();
  }

  setStats(id: string, stats: StatsResult): void {
    this.#stats.set(id, stats);
    const row = this.#rows.get(id);
    const p = this.#entries.find((e) => e.id === id);
    if (row && p) this.#fill(row, p);
  }

  select(id: string | undefined): void {
    this.#selected = id;
    for (const [rid, row] of this.#rows) row.tr.setAttribute('aria-selected', String(rid === id));
  }

  focusFilter(): void {
    this.#filter.focus();
  }

  #value(p: ProcessEntry, key: Key): string | number {
    const s = this.#stats.get(p.id);
    switch (key) {
      case 'id':
        return p.id;
      case 'command':
        return formatArgv(p.command, p.args);
      case 'state':
        return p.running ? 'running' : 'exited';
      case 'age':
        return -p.startedAt;
      case 'exit':
        return exitText(p);
      case 'cpu':
        return p.running && s?.found ? (s.cpu ?? 0) : -1;
      case 'memory':
        return p.running && s?.found ? (s.memory ?? 0) : -1;
      case 'observers':
        return p.observers ?? -1;
      case 'kind':
        return kindText(p);
    }
  }

  #render(): void {
    const needle = this.#filter.value.trim().toLowerCase();
    const { key, dir } = this.#sort;
    const sorted = [...this.#entries].sort((a, b) => {
      const va = this.#value(a, key);
      const vb = this.#value(b, key);
      const c = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
      return c * dir || a.startedAt - b.startedAt;
    });
    let shown = 0;
    let order = 0;
    const children = this.#tbody.children;
    for (const p of sorted) {
      const row = this.#rows.get(p.id) ?? this.#newRow(p.id);
      this.#fill(row, p);
      const text = `${p.id} ${formatArgv(p.command, p.args)} ${p.running ? 'running' : 'exited'} ${kindText(p)} ${exitText(p)}`.toLowerCase();
      row.tr.hidden = needle !== '' && !text.includes(needle);
      if (!row.tr.hidden) shown++;
      // Moved only when out of place: moving a focused row would drop its focus.
      if (children[order] !== row.tr) this.#tbody.insertBefore(row.tr, children[order] ?? null);
      order++;
    }
    for (const [k, th] of this.#headers) th.setAttribute('aria-sort', k === key ? (dir === 1 ? 'ascending' : 'descending') : 'none');
    this.#empty.textContent =
      this.#entries.length === 0
        ? 'No processes. Spawn one with the Spawn button.'
        : shown === 0
          ? `No process matches “${this.#filter.value}”.`
          : '';
    this.#empty.hidden = this.#empty.textContent === '';
  }

  #newRow(id: string): Row {
    const cells = {} as Record<Key, HTMLTableCellElement>;
    const tr = h('tr', { tabindex: 0, 'data-id': id, 'aria-selected': String(id === this.#selected) });
    for (const c of COLUMNS) {
      const td = h('td', { class: `c-${c.key}${c.numeric ? ' num' : ''}` });
      cells[c.key] = td;
      tr.append(td);
    }
    tr.addEventListener('click', () => this.onSelect?.(id));
    tr.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        this.onSelect?.(id);
      } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        let next = ev.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
        while (next && (next as HTMLElement).hidden) next = ev.key === 'ArrowDown' ? next.nextElementSibling : next.previousElementSibling;
        (next as HTMLElement | null)?.focus();
      }
    });
    const row = { tr, cells };
    this.#rows.set(id, row);
    this.#observer.observe(tr);
    return row;
  }

  #fill(row: Row, p: ProcessEntry): void {
    const s = this.#stats.get(p.id);
    const set = (k: Key, text: string) => {
      if (row.cells[k].textContent !== text) row.cells[k].textContent = text;
    };
    set('id', p.id);
    set('command', formatArgv(p.command, p.args));
    set('state', p.running ? 'running' : 'exited');
    row.tr.dataset.state = p.running ? 'running' : 'exited';
    set('age', formatDuration(Date.now() - p.startedAt));
    set('exit', exitText(p));
    set('cpu', p.running && s?.found && s.cpu !== undefined ? `${s.cpu.toFixed(1)}%` : '');
    set('memory', p.running && s?.found && s.memory !== undefined ? formatBytes(s.memory) : '');
    set('observers', p.observers === undefined ? '—' : String(p.observers));
    set('kind', kindText(p));
    row.cells.command.title = formatArgv(p.command, p.args);
  }
}
