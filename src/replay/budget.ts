/**
 * One memory budget for every replay buffer of the daemon. Each buffer keeps its own 16 MiB cap; the budget bounds
 * their sum, counted the same way (NDJSON-encoded frame bytes), so a daemon that ran many chatty jobs does not hold
 * 16 MiB for each of them for the 15 minutes of retention (60 finished jobs of 20 MB held 762 MiB before it).
 *
 * Over the budget, frames are evicted in this order, until the total is back under it with some room to spare:
 * 1. the buffers of exited processes, oldest exit first, each down to its newest frame (its exit frame, so a
 *    reattach still learns how it ended);
 * 2. then live processes, the largest buffer first, oldest frames first, but never a frame its owner has not been
 *    written (the owner's delivery stays lossless: a lagging owner holds its child, so that part stays small).
 * Observers that lose frames this way get a gap notice, as for any eviction.
 */
import type { ReplayBuffer } from './buffer.js';

/** The default budget: 1 GiB of encoded frames, 64 full buffers. */
export const DEFAULT_REPLAY_BUDGET_BYTES = 1024 * 1024 * 1024;
/** Reclaiming goes this far below the budget, so that a flood does not trigger it on every frame. */
export const REPLAY_BUDGET_SLACK = 0.05;

/** A buffer as the budget sees it. */
export interface BudgetMember {
  readonly buffer: ReplayBuffer;
  /** False once the process exited (its buffer goes first). */
  readonly live: boolean;
  /** performance.now() of the exit frame; 0 while live. */
  readonly exitedAt: number;
  /** Frames above this seq are still owed to the owner and must stay. */
  readonly keepAbove: number;
}

export class ReplayBudget {
  readonly limit: number;
  readonly #members: () => Iterable<BudgetMember>;
  readonly #onReclaimed: (bytes: number) => void;
  #used = 0;
  #reclaiming = false;

  /** `members` lists every buffer counted; `onReclaimed` hears the bytes each reclaim freed. */
  constructor(limit: number, members: () => Iterable<BudgetMember>, onReclaimed: (bytes: number) => void = () => {}) {
    this.limit = limit;
    this.#members = members;
    this.#onReclaimed = onReclaimed;
  }

  /** Bytes held by every buffer, counted as their caps count them. */
  get used(): number {
    return this.#used;
  }

  /** A buffer's byte count changed by `delta` (pass as the buffer's ByteAccount). */
  readonly account = (delta: number): void => {
    this.#used += delta;
    if (this.#used > this.limit && !this.#reclaiming) this.reclaim();
  };

  /** Evicts frames, in the documented order, until the total is under the budget less its slack. */
  reclaim(): number {
    this.#reclaiming = true;
    const target = Math.floor(this.limit * (1 - REPLAY_BUDGET_SLACK));
    let freed = 0;
    try {
      const members = [...this.#members()];
      const exited = members.filter((m) => !m.live).sort((a, b) => a.exitedAt - b.exitedAt);
      for (const m of exited) {
        if (this.#used <= target) break;
        freed += m.buffer.trim(m.buffer.bytes);
        m.buffer.compact();
      }
      const live = members.filter((m) => m.live).sort((a, b) => b.buffer.bytes - a.buffer.bytes);
      for (const m of live) {
        if (this.#used <= target) break;
        freed += m.buffer.trim(this.#used - target, m.keepAbove);
      }
    } finally {
      this.#reclaiming = false;
    }
    if (freed > 0) this.#onReclaimed(freed);
    return freed;
  }
}
