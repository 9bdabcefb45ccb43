/**
 * A budget for files.read across all connections (issue 10, point 8): before it, four concurrent reads of a 64 MiB
 * file held over 1.3 copies of each in flight at once (chunks, their concatenation, the text, the JSON reply), took
 * +668 MiB of RSS and stalled every other connection for seconds (bench/figures/filesread.mjs, figure 11).
 *
 * A read reserves its file's size before it allocates anything, and holds the reservation until its reply has been
 * encoded and handed to the socket; reads that would pass the budget, or the concurrency cap, wait their turn in
 * arrival order. The budget is MAX_READ_BYTES, so one maximal read runs alone while small reads pass beside smaller
 * ones; a file larger than the budget is refused before this by files.read's own cap.
 */
import { MAX_READ_BYTES } from './inspect.js';

/** Reads in progress at once, all connections together: 4. */
export const FILES_READ_MAX_CONCURRENT = 4;
/** Bytes of file content reserved by reads in progress, all connections together: 64 MiB (= MAX_READ_BYTES). */
export const FILES_READ_BUDGET_BYTES = MAX_READ_BYTES;

export class ReadGate {
  readonly maxConcurrent: number;
  readonly budgetBytes: number;
  #active = 0;
  #reserved = 0;
  readonly #waiting: { bytes: number; grant: (release: () => void) => void }[] = [];

  constructor(maxConcurrent = FILES_READ_MAX_CONCURRENT, budgetBytes = FILES_READ_BUDGET_BYTES) {
    this.maxConcurrent = maxConcurrent;
    this.budgetBytes = budgetBytes;
  }

  get active(): number {
    return this.#active;
  }

  get reservedBytes(): number {
    return this.#reserved;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves with a release function once `bytes` fit (a request larger than the whole budget is let through alone,
   * when nothing else runs). Calling the release more than once has no further effect.
   */
  acquire(bytes: number): Promise<() => void> {
    return new Promise((grant) => {
      this.#waiting.push({ bytes, grant });
      this.#admit();
    });
  }

  #admit(): void {
    // Arrival order: a large read at the head is not overtaken by small ones forever.
    while (this.#waiting.length > 0) {
      const head = this.#waiting[0]!;
      const fits = this.#active === 0 || (this.#active < this.maxConcurrent && this.#reserved + head.bytes <= this.budgetBytes);
      if (!fits) return;
      this.#waiting.shift();
      this.#active++;
      this.#reserved += head.bytes;
      let released = false;
      head.grant(() => {
        if (released) return;
        released = true;
        this.#active--;
        this.#reserved -= head.bytes;
        this.#admit();
      });
    }
  }
}
