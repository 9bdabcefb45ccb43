/**
 * The audit's writer thread: the chain (seq, prev, SHA-256), the file, rotation and the disk's failures run here, off
 * the event loop that serves requests. The request side (recorder.ts) puts each record's canonical parts in a ring
 * of shared memory (ring.ts) and wakes this thread once per turn of its loop; this thread takes what the ring holds,
 * writes it, and counts what is on disk in shared counters the request side reads when it needs them.
 *
 * Messages are for what is rare: in, `{ type: 'close', reason, flushMs }`; out, `{ type: 'ready' }`,
 * `{ type: 'failed', message }` (the log cannot be opened: the daemon must not start), `{ type: 'failing', reason }`
 * (a write failure starts, changes or ends: null), `{ type: 'log', level, message }` and `{ type: 'closed' }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type LogLevel, Logger } from '../log/logger.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { GROUP_COMMIT_MS, RingConsumer, type RingMemory, SharedStatsWriter } from './ring.js';
import { AuditSetupError, AuditWriter } from './writer.js';

/** What the request side passes when it starts the thread. */
export interface ThreadOptions {
  readonly path: string;
  readonly maxBytes: number;
  readonly keep: number;
  readonly version: string;
  readonly retryMs?: number;
  readonly memory: RingMemory;
}

/** `lost` and `refused`: what the request side dropped or refused since its last record, for the stop record. */
export type ToThread = { readonly type: 'close'; readonly reason: string; readonly flushMs: number; readonly lost: number; readonly refused: number };

export type FromThread =
  | { readonly type: 'ready'; readonly log: string }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'failing'; readonly reason: string | null }
  | { readonly type: 'log'; readonly level: LogLevel; readonly message: string }
  | { readonly type: 'closed' };

/** Log lines go to the daemon's logger, on the other thread, which applies its level and format. */
class ForwardingLogger extends Logger {
  readonly #post: (m: FromThread) => void;

  constructor(post: (m: FromThread) => void) {
    super('debug', () => {});
    this.#post = post;
  }

  override debug(_component: string, message: string): void {
    this.#post({ type: 'log', level: 'debug', message });
  }

  override info(_component: string, message: string): void {
    this.#post({ type: 'log', level: 'info', message });
  }

  override warn(_component: string, message: string): void {
    this.#post({ type: 'log', level: 'warn', message });
  }

  override error(_component: string, message: string): void {
    this.#post({ type: 'log', level: 'error', message });
  }
}

/** Hands one frame of the ring to the writer. */
function frameInto(writer: AuditWriter): Parameters<RingConsumer['drain']>[0] {
  return (data, start, end) => void writer.appendFrame(data, start, end);
}

async function run(options: ThreadOptions, port: NonNullable<typeof parentPort>): Promise<void> {
  const post = (m: FromThread) => port.postMessage(m);
  const ring = new RingConsumer(options.memory);
  const shared = new SharedStatsWriter(options.memory);
  let writer: AuditWriter | undefined;
  let failing: string | undefined;
  let closing = false;
  const report = (written: number) => {
    if (writer === undefined) return;
    const s = writer.stats();
    shared.update({ ...s, failing: s.failing !== undefined }, written);
    if (s.failing !== failing) {
      failing = s.failing;
      post({ type: 'failing', reason: failing ?? null });
    }
  };
  port.on('message', (m: ToThread) => {
    if (m.type !== 'close' || closing || writer === undefined) return;
    closing = true;
    const w = writer;
    void (async () => {
      // Everything the request side published before it asked to close is in the ring now.
      ring.drain(frameInto(w));
      w.addGaps(m.lost, m.refused);
      await w.close(m.reason, m.flushMs);
      report(0);
      post({ type: 'closed' });
      ring.wake();
      port.close();
    })();
  });
  try {
    writer = await AuditWriter.open({ ...options, log: new ForwardingLogger(post), onProgress: report });
  } catch (err) {
    post({ type: 'failed', message: err instanceof AuditSetupError ? err.message : String((err as Error).stack ?? err) });
    port.close();
    return;
  }
  report(0);
  post({ type: 'ready', log: writer.stats().head.log });
  const take = frameInto(writer);
  // Group commit: while frames keep coming, take them every GROUP_COMMIT_MS (the writer writes each take in one
  // write); once the ring is found empty, sleep until the producer wakes us.
  while (!closing) {
    if (ring.drain(take) > 0) await sleep(GROUP_COMMIT_MS);
    else await ring.sleep(take);
  }
}

const port = parentPort;
const data = workerData as { audit?: ThreadOptions } | undefined;
if (port !== null && data?.audit !== undefined) await run(data.audit, port);
