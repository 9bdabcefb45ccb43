/**
 * The output side of a followed process (an owned handle or an observer): every frame delivered exactly once and in
 * seq order, and every loss reported.
 *
 * The reader remembers the last seq it delivered. A frame at or below it is a duplicate (a replay overlapping what
 * was already seen) and is dropped. A loss is reported as a gap, before the frame after it: an owner learns of one
 * from a seq jump (the daemon evicted frames it had not been sent), an observer from the daemon's explicit notice.
 */
import { constants as osConstants } from 'node:os';
import { ClaustrumError } from './errors.js';
import { ByteQueue } from './queue.js';
import type { IncomingFrame, OutputStream } from './wire.js';

/** What an output queue nobody iterates may hold before it is dropped (its iteration then throws). */
export const UNCONSUMED_QUEUE_CAP_BYTES = 4 * 1024 * 1024;

export interface GapInfo {
  readonly processId: string;
  /** First missing seq. */
  readonly fromSeq: number;
  /** Last missing seq (inclusive). */
  readonly toSeq: number;
}

export interface ExitInfo {
  readonly processId: string;
  /** The exit status, or -1 when a signal ended the process. */
  readonly exitCode: number;
  /** `SIGTERM`-style name of the signal that ended it. */
  readonly signal?: string;
  readonly killedBy?: 'client' | 'shutdown' | 'lost';
  /** A shell's view: `exitCode`, or 128 + the signal's number. */
  readonly status: number;
  readonly seq: number;
  /** Every gap reported while the process was followed (empty when nothing was lost). */
  readonly gaps: readonly GapInfo[];
}

/** A terminal's screen as of `seq`, in place of the frames up to it (extension `process.pty`). */
export interface ScreenInfo {
  readonly seq: number;
  readonly cols: number;
  readonly rows: number;
  /** UTF-8 text that draws the screen on a fresh `cols`×`rows` terminal. */
  readonly data: Buffer;
}

/**
 * One item of `output()`, in seq order. `replay` (terminals): the frame arrived before the reply of the reattach or
 * observe that carried it, so it is output another reader may have seen and answered already; a terminal that draws
 * it must not send its answers to the program's queries back as input (TerminalScreen drops them). A `screen` is
 * always drawn that way.
 */
export type OutputItem =
  | { readonly type: OutputStream; readonly seq: number; readonly data: Buffer; readonly replay?: true }
  | { readonly type: 'gap'; readonly fromSeq: number; readonly toSeq: number }
  | { readonly type: 'resize'; readonly seq: number; readonly cols: number; readonly rows: number; readonly replay?: true }
  | ({ readonly type: 'screen'; readonly replay?: true } & ScreenInfo);

export interface OutputEvents {
  data(stream: OutputStream, data: Buffer, seq: number): void;
  gap(gap: GapInfo): void;
  resize?(cols: number, rows: number, seq: number): void;
  screen?(screen: ScreenInfo): void;
}

const REPLAY = { replay: true } as const;

export class OutputReader {
  readonly id: string;
  #lastSeq: number;
  readonly #gaps: GapInfo[] = [];
  #duplicates = 0;
  #ended = false;
  readonly #events: OutputEvents;
  readonly #queuedBytes: (delta: number) => void;
  readonly #queues: { stdout: ByteQueue<Buffer>; stderr: ByteQueue<Buffer>; output: ByteQueue<OutputItem> };

  /** `queuedBytes` hears how many bytes iterated queues hold (the client pauses reading above a mark). */
  constructor(id: string, fromSeq: number, events: OutputEvents, queuedBytes: (delta: number) => void) {
    this.id = id;
    this.#lastSeq = fromSeq;
    this.#events = events;
    this.#queuedBytes = queuedBytes;
    const track = (q: { consumed: boolean }) => (delta: number) => {
      if (q.consumed) queuedBytes(delta);
      else this.#checkUnconsumed();
    };
    const stdout: ByteQueue<Buffer> = new ByteQueue<Buffer>(
      (b) => b.length,
      (d) => track(stdout)(d),
    );
    const stderr: ByteQueue<Buffer> = new ByteQueue<Buffer>(
      (b) => b.length,
      (d) => track(stderr)(d),
    );
    const output: ByteQueue<OutputItem> = new ByteQueue<OutputItem>(
      (i) => (i.type === 'gap' || i.type === 'resize' ? 0 : i.data.length),
      (d) => track(output)(d),
    );
    this.#queues = { stdout, stderr, output };
  }

  /** The last seq delivered (where to resume). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get gaps(): readonly GapInfo[] {
    return this.#gaps;
  }

  /** Frames received again (a replay overlapping what was seen) and dropped. */
  get duplicates(): number {
    return this.#duplicates;
  }

  get stdout(): AsyncIterable<Buffer> {
    return this.#iterable(this.#queues.stdout);
  }

  get stderr(): AsyncIterable<Buffer> {
    return this.#iterable(this.#queues.stderr);
  }

  get output(): AsyncIterable<OutputItem> {
    return this.#iterable(this.#queues.output);
  }

  /**
   * Takes one frame. Returns the exit record when it is the exit frame (the queues have then ended), undefined
   * otherwise; a duplicate is dropped. `replay`: it precedes the reply of the request that asked for it.
   */
  deliver(frame: IncomingFrame, replay = false): ExitInfo | undefined {
    const mark = replay ? REPLAY : undefined;
    if (this.#ended) return undefined;
    if (frame.seq <= this.#lastSeq) {
      this.#duplicates++;
      return undefined;
    }
    if (frame.stream === 'screen') {
      // The screen stands for every frame up to its seq: no gap, whatever was evicted.
      this.#lastSeq = frame.seq;
      const screen: ScreenInfo = { seq: frame.seq, cols: frame.cols, rows: frame.rows, data: frame.data };
      this.#queues.output.push({ type: 'screen', ...screen, ...mark });
      this.#events.screen?.(screen);
      return undefined;
    }
    if (frame.seq > this.#lastSeq + 1) this.#gap(this.#lastSeq + 1, frame.seq - 1);
    this.#lastSeq = frame.seq;
    if (frame.stream === 'exit') {
      this.#ended = true;
      for (const q of Object.values(this.#queues)) q.end();
      return {
        processId: this.id,
        exitCode: frame.exitCode,
        ...(frame.signal !== undefined ? { signal: frame.signal } : {}),
        ...(frame.killedBy !== undefined ? { killedBy: frame.killedBy } : {}),
        status: shellStatus(frame.exitCode, frame.signal),
        seq: frame.seq,
        gaps: [...this.#gaps],
      };
    }
    if (frame.stream === 'resize') {
      this.#queues.output.push({ type: 'resize', seq: frame.seq, cols: frame.cols, rows: frame.rows, ...mark });
      this.#events.resize?.(frame.cols, frame.rows, frame.seq);
      return undefined;
    }
    this.#queues[frame.stream].push(frame.data);
    this.#queues.output.push({ type: frame.stream, seq: frame.seq, data: frame.data, ...mark });
    this.#events.data(frame.stream, frame.data, frame.seq);
    return undefined;
  }

  /** The daemon says seqs `fromSeq`..`toSeq` are gone (an observer fell behind): report what was not seen yet. */
  gapNotice(fromSeq: number, toSeq: number): void {
    if (this.#ended || toSeq <= this.#lastSeq) return;
    this.#gap(Math.max(fromSeq, this.#lastSeq + 1), toSeq);
    this.#lastSeq = toSeq;
  }

  /** Ends every iteration with `err` (lost, detached, closed). */
  fail(err: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const q of Object.values(this.#queues)) q.fail(err);
  }

  #gap(fromSeq: number, toSeq: number): void {
    const gap: GapInfo = { processId: this.id, fromSeq, toSeq };
    this.#gaps.push(gap);
    this.#queues.output.push({ type: 'gap', fromSeq, toSeq });
    this.#events.gap(gap);
  }

  #iterable<T>(q: ByteQueue<T>): AsyncIterable<T> {
    return {
      [Symbol.asyncIterator]: () => {
        const it = q[Symbol.asyncIterator]();
        // From now on this queue's bytes count toward the client's read pause (see Client).
        this.#queuedBytes(q.bytes);
        return it;
      },
    };
  }

  /** An output queue nobody iterates must not grow without bound: past the cap it is dropped, loudly. */
  #checkUnconsumed(): void {
    for (const [name, q] of Object.entries(this.#queues) as [string, ByteQueue<unknown>][]) {
      if (!q.consumed && q.bytes > UNCONSUMED_QUEUE_CAP_BYTES) {
        q.discard(
          new ClaustrumError(
            'NOT_ITERATED',
            `process ${this.id}: ${name} was not iterated while more than ${UNCONSUMED_QUEUE_CAP_BYTES} bytes arrived; take the iterator before awaiting, or use the events`,
          ),
        );
      }
    }
  }
}

/** 128 + the signal's number when a signal ended the process, as a shell reports it. */
export function shellStatus(exitCode: number, signal: string | undefined): number {
  if (exitCode >= 0 || signal === undefined) return exitCode;
  const n = (osConstants.signals as Record<string, number | undefined>)[signal];
  return n === undefined ? exitCode : 128 + n;
}
