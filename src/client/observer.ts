/**
 * An observer: a read-only follower of a process (extension `process.observe`). It never takes the process from its
 * owner and never holds the child back. Its output is an OutputReader's: exactly once and in order, with a `gap`
 * wherever the daemon evicted frames before this observer was written them (it says so with a notice). After a
 * reconnect it observes again from the last seq it delivered.
 */
import { EventEmitter } from 'node:events';
import { type ClaustrumError, ClosedError, DroppedError, ProcessLostError } from './errors.js';
import { type ExitInfo, type GapInfo, type OutputItem, OutputReader, type ScreenInfo } from './output.js';
import type { HandleHost } from './process.js';
import type { IncomingFrame, IncomingGap, ObserveResult } from './wire.js';

export interface ObserverEvents {
  stdout: [data: Buffer, seq: number];
  stderr: [data: Buffer, seq: number];
  exit: [info: ExitInfo];
  gap: [gap: GapInfo];
  /** The process cannot be followed any more (daemon replaced, pruned, client closed). */
  lost: [error: ClaustrumError];
  /** The daemon answered the (first) observe: what it holds of the process. */
  ready: [result: ObserveResult];
  /** A terminal's screen, standing for every frame up to its seq (also when this observer fell behind). */
  screen: [screen: ScreenInfo];
  /** A terminal was resized. */
  resize: [size: { cols: number; rows: number; seq: number }];
}

type State = 'detached' | 'observing' | 'done';

export class ObserverHandle extends EventEmitter<ObserverEvents> {
  readonly id: string;
  /** Resolves with the first observe's answer; rejects when the daemon does not know the process. */
  readonly ready: Promise<ObserveResult>;
  /** Resolves with the exit record; rejects if the process is lost, the observation ended or the client closed. */
  readonly exited: Promise<ExitInfo>;

  readonly #host: HandleHost;
  readonly #out: OutputReader;
  #state: State = 'detached';
  #gen = -1;
  #resolvedOnce = false;
  #resolveReady!: (r: ObserveResult) => void;
  #rejectReady!: (e: Error) => void;
  #resolveExit!: (i: ExitInfo) => void;
  #rejectExit!: (e: Error) => void;
  #exitInfo: ExitInfo | undefined;
  /** An observe is in flight: the frames arriving are its replay. */
  #replaying = false;

  /** @internal Created by Client.observe. */
  constructor(host: HandleHost, id: string, fromSeq: number) {
    super();
    this.#host = host;
    this.id = id;
    this.#out = new OutputReader(
      id,
      fromSeq,
      {
        data: (stream, data, seq) => this.emit(stream, data, seq),
        gap: (gap) => {
          this.emit('gap', gap);
          host.report('gap', gap);
        },
        screen: (screen) => this.emit('screen', screen),
        resize: (cols, rows, seq) => this.emit('resize', { cols, rows, seq }),
      },
      (delta) => host.queuedBytes(delta),
    );
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.exited = new Promise((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    this.ready.catch(noop);
    this.exited.catch(noop);
  }

  get stdout(): AsyncIterable<Buffer> {
    return this.#out.stdout;
  }

  get stderr(): AsyncIterable<Buffer> {
    return this.#out.stderr;
  }

  /** stdout, stderr and gaps interleaved in seq order. Iterable once. */
  output(): AsyncIterable<OutputItem> {
    return this.#out.output;
  }

  get lastSeq(): number {
    return this.#out.lastSeq;
  }

  get gaps(): readonly GapInfo[] {
    return this.#out.gaps;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  get finished(): boolean {
    return this.#state === 'done';
  }

  /** Ends the observation (`process.unobserve`); the process runs on. Iterations end, `exited` rejects. */
  async unobserve(): Promise<void> {
    if (this.#state === 'done') return;
    this.#finish(new ClosedError(`process ${this.id}: no longer observed`), false);
    await this.#host.request('process.unobserve', { id: this.id }).catch(noop);
  }

  // ---- driven by the client ----

  /** @internal */
  channelDown(): void {
    if (this.#state === 'observing') this.#state = 'detached';
  }

  /** @internal Observes on connection `gen` from the last seq delivered. */
  resync(gen: number): Promise<void> {
    if (this.#state !== 'detached') return Promise.resolve();
    this.#state = 'observing';
    this.#gen = gen;
    this.#replaying = true;
    return new Promise((resolve) => {
      this.#host.sendOn(gen, 'process.observe', { id: this.id, fromSeq: this.#out.lastSeq }, (err, result) => {
        resolve();
        if (this.#gen === gen) this.#replaying = false;
        if (this.#gen !== gen) return;
        if (this.#state === 'done') {
          // The replay ran up to the exit frame before this reply: the observation is over, and it did succeed.
          if (err === undefined && !this.#resolvedOnce) this.#answered(result as ObserveResult);
          return;
        }
        if (this.#state !== 'observing') return;
        if (err instanceof DroppedError) {
          this.#state = 'detached';
          return;
        }
        if (err) return this.#finish(err, true);
        const r = result as ObserveResult;
        if (!r.found) {
          const why = this.#resolvedOnce
            ? 'the daemon no longer knows it (replaced, restarted, or the process was pruned)'
            : 'no such process on the daemon';
          return this.#finish(new ProcessLostError(this.id, why), true);
        }
        if (!this.#resolvedOnce) this.#answered(r);
      });
    });
  }

  #answered(r: ObserveResult): void {
    this.#resolvedOnce = true;
    this.#resolveReady(r);
    this.emit('ready', r);
  }

  /** @internal */
  deliver(frame: IncomingFrame): void {
    if (this.#state === 'done') return;
    const exit = this.#out.deliver(frame, this.#replaying);
    if (exit === undefined) return;
    this.#exitInfo = exit;
    this.#state = 'done';
    this.#host.release(this);
    this.emit('exit', exit);
    this.#resolveExit(exit);
  }

  /** @internal */
  gapNotice(gap: IncomingGap): void {
    if (this.#state !== 'done') this.#out.gapNotice(gap.fromSeq, gap.toSeq);
  }

  /** @internal */
  fail(err: ClaustrumError): void {
    this.#finish(err, true);
  }

  #finish(err: Error, asLost: boolean): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#host.release(this);
    this.#out.fail(err);
    this.#rejectReady(err);
    this.#rejectExit(err);
    if (asLost && (err instanceof ProcessLostError || err instanceof ClosedError)) {
      this.emit('lost', err);
      if (err instanceof ProcessLostError) this.#host.report('lost', err);
    }
  }
}

function noop(): void {}
