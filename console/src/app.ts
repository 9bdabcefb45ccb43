/**
 * The console: login, the process list, the output view with its actions, the daemon panel. One connection to the
 * daemon carries everything; the page reads as fast as frames arrive and draws at most once per animation frame.
 *
 * Who receives a process's frames (PROTOCOL.md, issue 11): the page receives the frames of processes it spawned
 * or took control of (it is their owner), and of the one process in view when the daemon has `process.observe`
 * (an observer never takes a process from its owner). Without `process.observe` the view shows what the page owns
 * and offers "take control" (a reattach, which disconnects the current owner) for the rest.
 */
import { byId, h } from './dom.js';
import { field, openDialog } from './dialog.js';
import { formatArgv, formatBytes, formatDuration, parseArgs, parseEnv, parseEscapes } from './format.js';
import { type DaemonFigures, type FallbackState, fromFallback, fromServerInfo, rate } from './info.js';
import { ProcessList, exitText, kindText } from './list.js';
import { LogModel, describeExit } from './logmodel.js';
import { LogView } from './logview.js';
import { DaemonPanel } from './panel.js';
import { ConnectionClosedError, Rpc, RpcError } from './rpc.js';
import { StdinWriter } from './stdin.js';
import { TermView } from './termview.js';
import {
  type CapabilitiesResult,
  ERR_INVALID_PARAMS,
  ERR_METHOD_NOT_FOUND,
  ERR_UNAUTHORIZED,
  type Frame,
  type MethodMap,
  type MethodName,
  type ProcessEntry,
  type SpawnParams,
} from './wire.js';

/** The tab's session storage key for the token (never a URL, a cookie or local storage). */
export const TOKEN_KEY = 'claustrum.console.token';
/** process.list is polled this often (the list's ages, states and exits). */
export const LIST_REFRESH_MS = 1000;
/** process.stats for the visible running rows, this often, at most STATS_PER_TICK of them. */
export const STATS_REFRESH_MS = 2000;
export const STATS_PER_TICK = 50;
/** server.info (or its fallback) for the daemon panel. */
export const INFO_REFRESH_MS = 2000;
/** Reconnect backoff after a lost connection: first wait, doubling up to the cap. */
export const RECONNECT_FIRST_MS = 250;
export const RECONNECT_MAX_MS = 5000;
/** How long a message stays in the message bar. */
const MESSAGE_MS = 10_000;

const SIGNALS = [
  ['TERM', 'SIGTERM: ask it to stop (the process only)'],
  ['INT', 'SIGINT: interrupt, as Ctrl-C (the process only)'],
  ['HUP', 'SIGHUP: hang up (the process only)'],
  ['KILL', 'SIGKILL: kill at once (its whole process group)'],
] as const;

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/rpc`;
}

const utf8 = new TextEncoder();
const noop = () => {};

// ---------------------------------------------------------------------------------------------------------------
// Login

export async function boot(root: HTMLElement): Promise<void> {
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored !== null) {
    try {
      const rpc = await Rpc.open(wsUrl(), stored);
      new App(root, rpc, stored);
      return;
    } catch (err) {
      if (err instanceof RpcError && err.code === ERR_UNAUTHORIZED) sessionStorage.removeItem(TOKEN_KEY);
      showLogin(root, (err as Error).message);
      return;
    }
  }
  showLogin(root, undefined);
}

function showLogin(root: HTMLElement, problem: string | undefined): void {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert', hidden: problem === undefined }, problem ?? '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Connect');
  const form = h(
    'form',
    { class: 'login', 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title' }, 'claustrum console'),
    h('p', {}, 'Paste the daemon’s token (the file daemon.token beside its socket). It is kept in this tab only and forgotten when the tab closes.'),
    field('Token', input),
    error,
    button,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (token === '') {
      error.textContent = 'Enter the token first.';
      error.hidden = false;
      input.focus();
      return;
    }
    button.disabled = true;
    error.hidden = true;
    try {
      const rpc = await Rpc.open(wsUrl(), token);
      sessionStorage.setItem(TOKEN_KEY, token);
      new App(root, rpc, token);
    } catch (err) {
      error.textContent = (err as Error).message;
      error.hidden = false;
      button.disabled = false;
      input.select();
      input.focus();
    }
  });
  root.replaceChildren(h('main', { class: 'login-page' }, form));
  input.focus();
}

// ---------------------------------------------------------------------------------------------------------------
// The console

interface Current {
  readonly id: string;
  readonly terminal: boolean;
  readonly log?: LogView;
  readonly term?: TermView;
  /** How this view gets frames: as an observer, as the owner, or not at all. */
  via: 'observe' | 'owner' | 'none';
  /** A subscription's replayed frames are arriving (its reply has not come yet). */
  replaying: boolean;
}

class App {
  readonly #root: HTMLElement;
  readonly #token: string;
  #rpc: Rpc | undefined;
  #caps: CapabilitiesResult | undefined;
  /** Settles once this connection's capabilities are known (or could not be asked). */
  #capsReady: Promise<void> = Promise.resolve();
  #entries = new Map<string, ProcessEntry>();
  /** Ids the last process.list showed (and the one in view). */
  #listed = new Set<string>();
  /** Processes whose receiver this connection is (spawned here, or taken). */
  readonly #owned = new Set<string>();
  /** Processes known to be terminals (a pty in the list, a screen or resize frame, or spawned with one). */
  readonly #terminals = new Set<string>();
  readonly #models = new Map<string, LogModel>();
  readonly #writers = new Map<string, StdinWriter>();
  #current: Current | undefined;
  #infoMissing = false;
  readonly #fallback: FallbackState = { keys: new Set(), spawns: 0 };
  #lastTotals: { at: number; spawns: number | undefined; output: number | undefined } | undefined;
  #reconnectMs = RECONNECT_FIRST_MS;
  #stopped = false;
  #listBusy = false;
  #frames = 0;
  #framesAtTick = 0;
  #frameRate = 0;

  readonly #list = new ProcessList();
  readonly #panel = new DaemonPanel();
  readonly #banner: HTMLElement;
  readonly #message: HTMLElement;
  readonly #counts: HTMLElement;
  readonly #view: HTMLElement;
  readonly #viewTitle: HTMLElement;
  readonly #viewState: HTMLElement;
  readonly #viewBody: HTMLElement;
  readonly #viewStatus: HTMLElement;
  readonly #pause: HTMLButtonElement;
  readonly #take: HTMLButtonElement;
  readonly #resize: HTMLButtonElement;
  readonly #kill: HTMLButtonElement;
  readonly #stdinForm: HTMLFormElement;
  readonly #stdinInput: HTMLInputElement;
  readonly #stdinMode: HTMLSelectElement;
  readonly #stdinEof: HTMLButtonElement;

  constructor(root: HTMLElement, rpc: Rpc, token: string) {
    this.#root = root;
    this.#token = token;
    this.#banner = h('p', { id: 'banner', class: 'banner', role: 'status', hidden: true });
    this.#message = h('p', { id: 'message', class: 'message', role: 'status', 'aria-live': 'polite', hidden: true });
    this.#counts = h('span', { id: 'counts', class: 'counts' });
    const spawn = h('button', { type: 'button', id: 'spawn', class: 'primary' }, 'Spawn…');
    const logout = h('button', { type: 'button', id: 'logout' }, 'Log out');
    spawn.addEventListener('click', () => void this.#spawnDialog());
    logout.addEventListener('click', () => this.#logout());

    this.#viewTitle = h('h2', { id: 'view-title' }, 'Output');
    this.#viewState = h('span', { id: 'view-state', class: 'view-state' });
    this.#pause = h('button', { type: 'button', id: 'pause', 'aria-pressed': 'false', disabled: true }, 'Pause');
    this.#take = h('button', { type: 'button', id: 'take', disabled: true }, 'Take control…');
    this.#resize = h('button', { type: 'button', id: 'resize', disabled: true, hidden: true }, 'Resize to view');
    this.#kill = h('button', { type: 'button', id: 'kill', class: 'danger', disabled: true }, 'Kill…');
    this.#pause.addEventListener('click', () => this.#current?.log?.setFollow(!this.#current.log.following));
    this.#take.addEventListener('click', () => void this.#takeControl());
    this.#resize.addEventListener('click', () => void this.#resizeToView());
    this.#kill.addEventListener('click', () => void this.#killDialog());
    this.#viewBody = h('div', { id: 'view-body', class: 'view-body' }, h('p', { class: 'placeholder' }, 'Select a process to see its output.'));
    this.#viewStatus = h('p', { id: 'view-status', class: 'view-status', 'aria-live': 'off' });
    this.#stdinInput = h('input', { type: 'text', id: 'stdin-text', autocomplete: 'off', spellcheck: 'false', disabled: true });
    this.#stdinMode = h(
      'select',
      { id: 'stdin-mode', disabled: true },
      h('option', { value: 'line' }, 'line (adds \\n)'),
      h('option', { value: 'raw' }, 'raw bytes (\\n \\r \\t \\e \\xHH)'),
    );
    const send = h('button', { type: 'submit', id: 'stdin-send', disabled: true }, 'Send');
    this.#stdinEof = h('button', { type: 'button', id: 'stdin-eof', disabled: true }, 'Close stdin…');
    this.#stdinEof.addEventListener('click', () => void this.#closeStdin());
    this.#stdinForm = h(
      'form',
      { class: 'stdin', 'aria-label': 'Send to stdin', novalidate: true },
      field('Stdin', this.#stdinInput),
      field('As', this.#stdinMode),
      send,
      this.#stdinEof,
    );
    this.#stdinForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.#sendStdin();
    });
    this.#view = h(
      'section',
      { class: 'view', id: 'view', 'aria-labelledby': 'view-title' },
      h(
        'div',
        { class: 'section-head' },
        this.#viewTitle,
        this.#viewState,
        h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Process actions' }, this.#pause, this.#take, this.#resize, this.#kill),
      ),
      this.#viewBody,
      this.#stdinForm,
      this.#viewStatus,
    );

    root.replaceChildren(
      h('header', { class: 'top' }, h('h1', {}, 'claustrum'), this.#counts, h('div', { class: 'top-actions' }, spawn, logout)),
      this.#banner,
      this.#message,
      h('main', { class: 'layout' }, h('div', { class: 'left' }, this.#list.element, this.#panel.element), this.#view),
    );
    this.#list.onSelect = (id) => void this.#select(id);
    document.addEventListener('keydown', (ev) => {
      if (
        ev.key === '/' &&
        !(ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement) &&
        !document.querySelector('dialog[open]')
      ) {
        ev.preventDefault();
        this.#list.focusFilter();
      }
    });

    this.#attach(rpc);
    this.#loop(LIST_REFRESH_MS, () => this.#refreshList());
    this.#loop(STATS_REFRESH_MS, () => this.#refreshStats());
    this.#loop(INFO_REFRESH_MS, () => this.#refreshInfo());
    this.#loop(500, () => this.#updateViewStatus());
    byId<HTMLInputElement>(root, 'filter').focus();
  }

  // ---- connection ----

  #attach(rpc: Rpc): void {
    rpc.onFrame = (f) => this.#onFrame(f);
    rpc.onClose = (why) => this.#onClose(why);
    if (rpc.closed) {
      this.#onClose('the connection to the daemon closed');
      return;
    }
    this.#rpc = rpc;
    this.#reconnectMs = RECONNECT_FIRST_MS;
    this.#infoMissing = false;
    this.#lastTotals = undefined;
    this.#banner.hidden = true;
    this.#capsReady = rpc.call('server.capabilities', undefined).then((caps) => {
      this.#caps = caps;
      this.#updateActions();
    }, noop);
    for (const w of this.#writers.values()) w.reconnected((p) => this.#call('process.stdin', p));
  }

  /** Calls on the live connection; fails with ConnectionClosedError while there is none. */
  #call<M extends MethodName>(method: M, params: MethodMap[M]['params']): Promise<MethodMap[M]['result']> {
    if (!this.#rpc || this.#rpc.closed) return Promise.reject(new ConnectionClosedError('not connected to the daemon'));
    return this.#rpc.call(method, params);
  }

  #onClose(why: string): void {
    if (this.#stopped) return;
    this.#rpc = undefined;
    // Whatever this connection received is no longer ours: another client may hold it now.
    this.#owned.clear();
    if (this.#current) {
      this.#current.via = 'none';
      this.#current.term?.setControl(false);
    }
    this.#banner.textContent = `${why}. Reconnecting…`;
    this.#banner.hidden = false;
    this.#updateActions();
    setTimeout(() => void this.#reconnect(), this.#reconnectMs);
    this.#reconnectMs = Math.min(RECONNECT_MAX_MS, this.#reconnectMs * 2);
  }

  async #reconnect(): Promise<void> {
    if (this.#stopped) return;
    try {
      const rpc = await Rpc.open(wsUrl(), this.#token);
      this.#attach(rpc);
      const cur = this.#current;
      if (cur) await this.#subscribe(cur);
      this.#updateActions();
    } catch (err) {
      if (err instanceof RpcError && err.code === ERR_UNAUTHORIZED) {
        this.#stopped = true;
        sessionStorage.removeItem(TOKEN_KEY);
        showLogin(this.#root, `${err.message} (the daemon may have restarted with a new token).`);
        return;
      }
      this.#onClose((err as Error).message);
    }
  }

  #logout(): void {
    this.#stopped = true;
    sessionStorage.removeItem(TOKEN_KEY);
    this.#rpc?.close();
    showLogin(this.#root, undefined);
  }

  #loop(ms: number, fn: () => Promise<void> | void): void {
    const tick = async () => {
      if (this.#stopped) return;
      try {
        await fn();
      } catch {
        // A failed poll is retried at the next tick; a lost connection shows in the banner.
      }
      if (!this.#stopped) setTimeout(tick, ms);
    };
    void tick();
  }

  #say(text: string, alert = false): void {
    this.#message.textContent = text;
    this.#message.setAttribute('role', alert ? 'alert' : 'status');
    this.#message.classList.toggle('error', alert);
    this.#message.hidden = false;
    const shown = text;
    setTimeout(() => {
      if (this.#message.textContent === shown) this.#message.hidden = true;
    }, MESSAGE_MS);
  }

  // ---- polling ----

  async #refreshList(): Promise<void> {
    if (!this.#rpc || this.#listBusy) return;
    this.#listBusy = true;
    try {
      const { processes } = await this.#call('process.list', {});
      this.#entries = new Map(processes.map((p) => [p.id, p]));
      // What the daemon forgot (pruned after its retention), the page forgets too, unless it is in view. Only ids
      // a list has shown count: a spawn in flight is not listed yet.
      const forgotten = [...this.#listed].filter((id) => !this.#entries.has(id) && this.#current?.id !== id);
      this.#listed = new Set([...processes.map((p) => p.id), ...[...this.#listed].filter((id) => this.#current?.id === id)]);
      for (const id of forgotten) {
        this.#models.delete(id);
        this.#writers.get(id)?.dispose(`${id} is no longer known to the daemon`);
        this.#writers.delete(id);
        this.#owned.delete(id);
        this.#terminals.delete(id);
      }
      for (const p of processes) if (p.pty) this.#terminals.add(p.id);
      this.#list.update(processes);
      const running = processes.filter((p) => p.running).length;
      const text = `${running} running · ${processes.length - running} exited`;
      this.#counts.textContent = text;
      document.title = `claustrum (${running} running, ${processes.length - running} exited)`;
      this.#updateActions();
    } finally {
      this.#listBusy = false;
    }
  }

  async #refreshStats(): Promise<void> {
    if (!this.#rpc) return;
    const ids = this.#list.visibleRunning().slice(0, STATS_PER_TICK);
    await Promise.all(ids.map((id) => this.#call('process.stats', { id }).then((s) => this.#list.setStats(id, s), noop)));
  }

  async #refreshInfo(): Promise<void> {
    if (!this.#rpc) return;
    let figures: DaemonFigures;
    if (!this.#infoMissing) {
      try {
        figures = fromServerInfo(await this.#call('server.info', undefined));
      } catch (err) {
        if (!(err instanceof RpcError && err.code === ERR_METHOD_NOT_FOUND)) throw err;
        this.#infoMissing = true;
        return this.#refreshInfo();
      }
    } else {
      figures = fromFallback(this.#caps, [...this.#entries.values()], this.#fallback);
    }
    const at = Date.now();
    const prev = this.#lastTotals;
    const spawnRate = rate(prev && { at: prev.at, value: prev.spawns }, at, figures.spawns);
    const outputRate = rate(prev && { at: prev.at, value: prev.output }, at, figures.output);
    this.#lastTotals = { at, spawns: figures.spawns, output: figures.output };
    this.#panel.show(figures, spawnRate, outputRate);
  }

  // ---- frames ----

  #onFrame(f: Frame): void {
    this.#frames++;
    const id = f.processId;
    const cur = this.#current?.id === id ? this.#current : undefined;
    if (f.type === 'stream' && (f.stream === 'screen' || f.stream === 'resize') && !this.#terminals.has(id)) {
      this.#terminals.add(id);
      if (cur && !cur.terminal) {
        // A terminal shown as a log: show it as a terminal, from a fresh subscription.
        void this.#select(id, true);
        return;
      }
    }
    if (cur?.term) {
      cur.term.frame(f, cur.replaying);
      if (f.type === 'stream' && f.stream === 'exit') this.#updateActions();
      return;
    }
    const model = this.#models.get(id);
    if (!model) return;
    if (f.type === 'gap') model.gap(f.fromSeq, f.toSeq);
    else if (f.seq <= model.lastSeq) return;
    else if (f.stream === 'stdout' || f.stream === 'stderr') model.data(f.stream, f.seq, f.data);
    else if (f.stream === 'exit') {
      model.exit(f.seq, describeExit(f.exitCode, f.signal, f.killedBy));
      if (cur) this.#updateActions();
    } else model.lastSeq = f.seq;
    cur?.log?.invalidate();
  }

  // ---- the view ----

  async #select(id: string, force = false): Promise<void> {
    if (this.#current?.id === id && !force) return;
    this.#closeView();
    const entry = this.#entries.get(id);
    const terminal = this.#terminals.has(id);
    this.#list.select(id);
    this.#viewTitle.textContent = `Output of ${id}`;
    let cur: Current;
    if (terminal) {
      const term = new TermView(entry?.pty?.cols ?? 80, entry?.pty?.rows ?? 24);
      term.onInput = (bytes) =>
        void this.#writer(id)
          .write(bytes)
          .catch((err: Error) => this.#say(err.message, true));
      term.onResync = () => {
        const c = this.#current;
        if (c?.term === term) void this.#subscribe(c, true);
      };
      cur = { id, terminal, term, via: 'none', replaying: false };
      this.#viewBody.replaceChildren(term.element);
    } else {
      let model = this.#models.get(id);
      if (!model) this.#models.set(id, (model = new LogModel()));
      const log = new LogView();
      log.onFollowChange = (follow) => {
        this.#pause.textContent = follow ? 'Pause' : 'Follow';
        this.#pause.setAttribute('aria-pressed', String(!follow));
      };
      log.setModel(model);
      cur = { id, terminal, log, via: 'none', replaying: false };
      this.#viewBody.replaceChildren(log.element);
      this.#pause.textContent = 'Pause';
      this.#pause.setAttribute('aria-pressed', 'false');
    }
    this.#current = cur;
    this.#updateActions();
    await this.#subscribe(cur);
  }

  /** Starts receiving the current process's frames: as its owner already, else as an observer when the daemon can. */
  async #subscribe(cur: Current, resync = false): Promise<void> {
    await this.#capsReady;
    if (this.#current !== cur) return;
    if (this.#owned.has(cur.id) && !cur.terminal) {
      cur.via = 'owner';
      this.#updateActions();
      return;
    }
    if (!this.#caps?.methods.includes('process.observe') && this.#caps !== undefined) {
      if (this.#owned.has(cur.id)) cur.via = 'owner';
      this.#notice(
        cur,
        this.#owned.has(cur.id)
          ? 'This daemon has no process.observe: the terminal shows output from now on only.'
          : 'This daemon cannot observe a process (process.observe is missing). Take control to see its output (that disconnects its current owner).',
      );
      this.#updateActions();
      return;
    }
    if (resync) await this.#call('process.unobserve', { id: cur.id }).catch(noop);
    // Frames evicted before this view opened come as a gap notice from the daemon (fromSeq below firstSeq).
    const model = this.#models.get(cur.id);
    cur.replaying = true;
    try {
      let result: { found: boolean };
      if (cur.terminal) {
        try {
          result = await this.#call('process.observe', { id: cur.id, screen: true });
        } catch (err) {
          if (!(err instanceof RpcError && err.code === ERR_INVALID_PARAMS)) throw err;
          result = await this.#call('process.observe', { id: cur.id });
        }
      } else {
        result = await this.#call('process.observe', { id: cur.id, fromSeq: model?.lastSeq ?? 0 });
      }
      if (this.#current !== cur) {
        void this.#call('process.unobserve', { id: cur.id }).catch(noop);
        return;
      }
      cur.via = this.#owned.has(cur.id) ? 'owner' : 'observe';
      if (!result.found) this.#notice(cur, `The daemon no longer knows ${cur.id}.`);
    } catch (err) {
      if (this.#current === cur && !(err instanceof ConnectionClosedError)) this.#notice(cur, `Cannot observe ${cur.id}: ${(err as Error).message}`);
    } finally {
      cur.replaying = false;
      this.#updateActions();
    }
  }

  #notice(cur: Current, text: string): void {
    if (cur.log) {
      this.#models.get(cur.id)?.note(text);
      cur.log.invalidate();
    } else this.#say(text);
  }

  #closeView(): void {
    const cur = this.#current;
    if (!cur) return;
    this.#current = undefined;
    if (cur.via === 'observe') void this.#call('process.unobserve', { id: cur.id }).catch(noop);
    cur.log?.dispose();
    cur.term?.dispose();
    // Output of a process this page does not own is kept only while it is in view.
    if (!this.#owned.has(cur.id)) this.#models.delete(cur.id);
  }

  #updateActions(): void {
    const cur = this.#current;
    const entry = cur ? this.#entries.get(cur.id) : undefined;
    const running = entry?.running ?? false;
    const exited = cur ? (this.#models.get(cur.id)?.exited ?? false) || (entry !== undefined && !entry.running) : false;
    this.#pause.disabled = !cur?.log;
    this.#take.disabled = !cur || !running || exited || this.#owned.has(cur.id) || !this.#rpc;
    this.#take.textContent = cur && this.#owned.has(cur.id) ? 'In control' : 'Take control…';
    this.#resize.hidden = !cur?.terminal;
    this.#resize.disabled = !cur?.terminal || !running;
    this.#kill.disabled = !cur || !running;
    const stdinOk = !!cur && running && !cur.terminal;
    for (const el of [this.#stdinInput, this.#stdinMode, this.#stdinEof, byId<HTMLButtonElement>(this.#stdinForm, 'stdin-send')])
      el.disabled = !stdinOk;
    this.#stdinForm.hidden = !!cur?.terminal;
    const via = !cur
      ? ''
      : cur.via === 'owner'
        ? cur.terminal
          ? 'in control: typing goes to the process'
          : 'this page receives it (owner)'
        : cur.via === 'observe'
          ? 'observing'
          : 'not receiving';
    this.#viewState.textContent = cur
      ? `${entry ? (entry.running ? 'running' : `exited ${exitText(entry)}`) : 'unknown'} · ${kindText(entry ?? ({ pty: undefined } as ProcessEntry))} · ${via}`
      : '';
  }

  #updateViewStatus(): void {
    const now = this.#frames;
    this.#frameRate = (now - this.#framesAtTick) * 2;
    this.#framesAtTick = now;
    const cur = this.#current;
    this.#view.dataset.frames = String(now);
    if (!cur) {
      this.#viewStatus.textContent = '';
      return;
    }
    const entry = this.#entries.get(cur.id);
    const age = entry ? ` · started ${formatDuration(Date.now() - entry.startedAt)} ago` : '';
    if (cur.log) {
      const m = this.#models.get(cur.id);
      if (!m) return;
      this.#view.dataset.renders = String(cur.log.renders);
      this.#view.dataset.requests = String(cur.log.requests);
      this.#view.dataset.bytes = String(m.bytes);
      this.#view.dataset.drawMs = String(Math.round(cur.log.drawMs));
      const lost =
        m.gaps === 0
          ? ''
          : ` · ⚠ ${m.lostFrames} frames lost${m.gaps === 1 && m.lastGap ? ` (${m.lastGap.fromSeq}–${m.lastGap.toSeq})` : ` in ${m.gaps} gaps`}`;
      this.#viewStatus.textContent = `${m.frames} frame${m.frames === 1 ? '' : 's'} · ${formatBytes(m.bytes)} · seq ${m.lastSeq}${lost} · ${this.#frameRate} frames/s · ${cur.log.renders} renders${cur.log.following ? '' : ' · paused'}${age}`;
    } else if (cur.term) {
      this.#view.dataset.renders = String(cur.term.parsed);
      this.#viewStatus.textContent = `terminal ${cur.term.term.cols}×${cur.term.term.rows} · seq ${cur.term.lastSeq} · ${this.#frameRate} frames/s${age}`;
    }
  }

  // ---- actions ----

  #writer(id: string): StdinWriter {
    let w = this.#writers.get(id);
    if (!w) this.#writers.set(id, (w = new StdinWriter(id, (p) => this.#call('process.stdin', p))));
    return w;
  }

  async #sendStdin(): Promise<void> {
    const cur = this.#current;
    if (!cur) return;
    let bytes: Uint8Array;
    try {
      bytes = this.#stdinMode.value === 'raw' ? parseEscapes(this.#stdinInput.value) : utf8.encode(`${this.#stdinInput.value}\n`);
    } catch (err) {
      this.#say(`Not sent: ${(err as Error).message}`, true);
      return;
    }
    const text = this.#stdinInput.value;
    this.#stdinInput.value = '';
    try {
      const applied = await this.#writer(cur.id).write(bytes);
      this.#say(`Sent ${bytes.length} byte${bytes.length === 1 ? '' : 's'} to ${cur.id} (stdin at byte ${applied}).`);
    } catch (err) {
      if (this.#stdinInput.value === '') this.#stdinInput.value = text;
      this.#say(`Stdin of ${cur.id}: ${(err as Error).message}`, true);
    }
  }

  async #closeStdin(): Promise<void> {
    const cur = this.#current;
    if (!cur) return;
    const ok = await openDialog({
      title: `Close the stdin of ${cur.id}?`,
      body: [h('p', {}, 'The process reads end-of-file once every byte sent so far is written. Stdin cannot be opened again.')],
      actions: [{ label: 'Close stdin', value: 'eof', primary: true, danger: true }],
    });
    if (ok !== 'eof') return;
    try {
      await this.#writer(cur.id).write(new Uint8Array(0), true);
      this.#say(`Closed the stdin of ${cur.id}.`);
    } catch (err) {
      this.#say(`Stdin of ${cur.id}: ${(err as Error).message}`, true);
    }
  }

  async #killDialog(): Promise<void> {
    const cur = this.#current;
    if (!cur) return;
    const entry = this.#entries.get(cur.id);
    const select = h('select', { id: 'kill-signal' }, ...SIGNALS.map(([v, text]) => h('option', { value: v }, text)));
    const grace = h('input', { type: 'number', id: 'kill-grace', min: 0, max: 30, step: 1, value: 3 });
    const escalate = h('input', { type: 'checkbox', id: 'kill-escalate', checked: true });
    const choice = await openDialog({
      title: `Kill ${cur.id}?`,
      body: [
        h('p', {}, `${entry ? `pid ${entry.pid}: ` : ''}${entry ? formatArgv(entry.command, entry.args) : ''}`),
        field('Signal', select),
        h(
          'fieldset',
          {},
          h('legend', {}, 'Kill and wait'),
          field('Grace (seconds)', grace),
          h('label', { class: 'check' }, escalate, ' then SIGKILL the group if it is still alive'),
        ),
      ],
      actions: [
        { label: 'Kill and wait', value: 'wait', danger: true },
        { label: 'Send signal', value: 'kill', primary: true, danger: true },
      ],
      validate: () => {
        const g = Number(grace.value);
        return Number.isFinite(g) && g >= 0 && g <= 30 ? undefined : 'Grace: 0 to 30 seconds.';
      },
    });
    if (choice === undefined) return;
    const signal = select.value;
    try {
      if (choice === 'kill') {
        await this.#call('process.kill', { id: cur.id, signal });
        this.#say(`SIG${signal} sent to ${cur.id}.`);
      } else {
        this.#say(`SIG${signal} sent to ${cur.id}; waiting up to ${grace.value} s…`);
        const r = await this.#call('process.killAndWait', {
          id: cur.id,
          signal,
          timeoutMs: Math.max(1, Number(grace.value) * 1000),
          escalate: escalate.checked,
        });
        this.#say(
          !r.found
            ? `${cur.id} is no longer known to the daemon.`
            : r.alreadyExited
              ? `${cur.id} had already exited.`
              : r.died
                ? `${cur.id} exited${r.escalated ? ' after SIGKILL' : ''}.`
                : `${cur.id} is still running${r.escalated ? ' even after SIGKILL' : ''}.`,
          r.found && !r.died,
        );
      }
    } catch (err) {
      this.#say(`Kill ${cur.id}: ${(err as Error).message}`, true);
    }
    void this.#refreshList();
  }

  async #takeControl(): Promise<void> {
    const cur = this.#current;
    if (!cur) return;
    const ok = await openDialog({
      title: `Take control of ${cur.id}?`,
      body: [
        h(
          'p',
          {},
          'This page becomes the process’s owner (process.reattach): the client that holds it now is disconnected, and its streams of other processes stop too.',
        ),
        cur.terminal ? h('p', {}, 'Then what you type in the terminal goes to the process.') : undefined,
      ],
      actions: [{ label: 'Take control', value: 'take', primary: true, danger: true }],
    });
    if (ok !== 'take' || this.#current !== cur) return;
    try {
      if (cur.via === 'observe') await this.#call('process.unobserve', { id: cur.id }).catch(noop);
      const fromSeq = cur.term ? cur.term.lastSeq : (this.#models.get(cur.id)?.lastSeq ?? 0);
      cur.replaying = true;
      this.#owned.add(cur.id);
      let r: { found: boolean; stdinApplied?: number };
      try {
        r = await this.#call('process.reattach', { id: cur.id, fromSeq });
      } finally {
        cur.replaying = false;
      }
      if (!r.found) {
        this.#owned.delete(cur.id);
        this.#say(`The daemon no longer knows ${cur.id}.`, true);
        return;
      }
      cur.via = 'owner';
      if (r.stdinApplied !== undefined) this.#writer(cur.id).setApplied(r.stdinApplied);
      cur.term?.setControl(true);
      this.#say(`This page now controls ${cur.id}.`);
    } catch (err) {
      this.#owned.delete(cur.id);
      this.#say(`Take control of ${cur.id}: ${(err as Error).message}`, true);
    }
    this.#updateActions();
  }

  async #resizeToView(): Promise<void> {
    const cur = this.#current;
    const size = cur?.term?.fittedSize();
    if (!cur || !size) return;
    try {
      await this.#call('process.resize', { id: cur.id, ...size });
      this.#say(`Resized ${cur.id} to ${size.cols}×${size.rows}.`);
    } catch (err) {
      this.#say(`Resize ${cur.id}: ${(err as Error).message}`, true);
    }
  }

  async #spawnDialog(): Promise<void> {
    const id = h('input', { type: 'text', id: 'spawn-id', value: `console-${Date.now().toString(36)}`, autocomplete: 'off', required: true });
    const command = h('input', { type: 'text', id: 'spawn-command', autocomplete: 'off', spellcheck: 'false', required: true });
    const args = h('textarea', { id: 'spawn-args', rows: 3, spellcheck: 'false' });
    const cwd = h('input', { type: 'text', id: 'spawn-cwd', autocomplete: 'off', spellcheck: 'false' });
    const env = h('textarea', { id: 'spawn-env', rows: 2, spellcheck: 'false' });
    // A daemon without terminals ignores an unknown `pty` param and spawns on pipes: offer it only where it exists.
    const canPty = this.#caps?.methods.includes('process.resize') ?? false;
    const pty = h('input', { type: 'checkbox', id: 'spawn-pty', disabled: !canPty });
    const cols = h('input', { type: 'number', id: 'spawn-cols', min: 1, max: 1000, value: 100 });
    const rows = h('input', { type: 'number', id: 'spawn-rows', min: 1, max: 1000, value: 30 });
    const built: { params?: SpawnParams } = {};
    const build = (): string | undefined => {
      try {
        if (id.value.trim() === '') return 'The id is required.';
        if (command.value.trim() === '') return 'The command is required.';
        const c = Number(cols.value);
        const r = Number(rows.value);
        if (pty.checked && !(Number.isInteger(c) && Number.isInteger(r) && c > 0 && r > 0)) return 'Terminal size: whole numbers above 0.';
        const e = parseEnv(env.value);
        const params: SpawnParams = {
          id: id.value.trim(),
          command: command.value.trim(),
          args: parseArgs(args.value),
          ...(cwd.value.trim() !== '' ? { cwd: cwd.value.trim() } : {}),
          ...(Object.keys(e).length > 0 ? { env: e } : {}),
          ...(pty.checked ? { pty: { cols: c, rows: r } } : {}),
        };
        if (this.#entries.get(params.id)?.running)
          return `A running process already has the id ${params.id}: pick another (a spawn would replace its table entry).`;
        built.params = params;
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    };
    const first = await openDialog({
      title: 'Spawn a process',
      body: [
        field('Id', id),
        field('Command', command, 'Looked up in the daemon’s PATH; never run through a shell.'),
        field('Arguments', args, 'One per line.'),
        field('Working directory', cwd, 'Empty: the daemon’s.'),
        field('Environment', env, 'KEY=VALUE per line, added to the daemon’s.'),
        h(
          'fieldset',
          {},
          h('legend', {}, 'Terminal'),
          h('label', { class: 'check' }, pty, ' run on a pseudo-terminal'),
          canPty ? undefined : h('p', { class: 'hint' }, 'This daemon has no terminals (process.resize is missing).'),
          field('Columns', cols),
          field('Rows', rows),
        ),
      ],
      actions: [{ label: 'Review…', value: 'review', primary: true }],
      validate: build,
    });
    const p = built.params;
    if (first !== 'review' || !p) return;
    const confirmed = await openDialog({
      title: `Run this as ${p.id}?`,
      body: [
        h('pre', { class: 'review', tabindex: 0 }, JSON.stringify({ command: p.command, args: p.args, cwd: p.cwd, env: p.env, pty: p.pty }, null, 2)),
      ],
      actions: [{ label: 'Spawn', value: 'spawn', primary: true }],
    });
    if (confirmed !== 'spawn') return;
    // Ready before the request: the spawn's frames follow its reply on this connection.
    this.#owned.add(p.id);
    if (p.pty) this.#terminals.add(p.id);
    else this.#models.set(p.id, new LogModel());
    try {
      await this.#call('process.spawn', p);
      this.#say(`Spawned ${p.id}: ${formatArgv(p.command, p.args ?? [])}`);
    } catch (err) {
      this.#owned.delete(p.id);
      this.#models.delete(p.id);
      this.#terminals.delete(p.id);
      this.#say(`Spawn ${p.id}: ${(err as Error).message}`, true);
      return;
    }
    await this.#refreshList().catch(noop);
    await this.#select(p.id, true);
  }
}
