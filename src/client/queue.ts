/**
 * A single-consumer async queue: what a process handle's `stdout`, `stderr` and `output()` iterate.
 *
 * It counts the bytes it holds and reports every change, so the client can stop reading the connection while
 * consumers lag (the daemon then pauses the children) instead of growing without bound.
 */
export class ByteQueue<T> implements AsyncIterable<T> {
  readonly #sizeOf: (item: T) => number;
  readonly #onBytes: (delta: number) => void;
  #items: T[] = [];
  #head = 0;
  #bytes = 0;
  #ended = false;
  #error: Error | undefined;
  #waiter: ((r: IteratorResult<T>) => void) | undefined;
  #failWaiter: ((e: Error) => void) | undefined;
  #iterating = false;
  /** Once the consumer stopped (break, return) or the queue was discarded, pushes are ignored. */
  #discarded = false;

  constructor(sizeOf: (item: T) => number, onBytes: (delta: number) => void) {
    this.#sizeOf = sizeOf;
    this.#onBytes = onBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** True once an iterator was taken. */
  get consumed(): boolean {
    return this.#iterating;
  }

  push(item: T): void {
    if (this.#ended || this.#discarded) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = this.#failWaiter = undefined;
      w({ value: item, done: false });
      return;
    }
    this.#items.push(item);
    this.#account(this.#sizeOf(item));
  }

  /** No more items: the iterator finishes after the buffered ones. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiter && this.#head >= this.#items.length) {
      const w = this.#waiter;
      this.#waiter = this.#failWaiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  /** No more items, and the iterator throws `error` after the buffered ones. */
  fail(error: Error): void {
    if (this.#ended) return;
    this.#error = error;
    this.#ended = true;
    if (this.#failWaiter) {
      const f = this.#failWaiter;
      this.#waiter = this.#failWaiter = undefined;
      f(error);
    }
  }

  /** Drops everything held; a later iteration throws `error`. */
  discard(error: Error): void {
    this.#clear();
    this.#discarded = true;
    this.#error = error;
    this.#ended = true;
  }

  #clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#account(-this.#bytes);
  }

  #account(delta: number): void {
    if (delta === 0) return;
    this.#bytes += delta;
    this.#onBytes(delta);
  }

  #next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const item = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined as unknown as T;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      this.#account(-this.#sizeOf(item));
      return Promise.resolve({ value: item, done: false });
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#failWaiter = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) throw new Error('this output can be iterated once; it was already taken');
    this.#iterating = true;
    return {
      next: () => this.#next(),
      return: () => {
        this.#clear();
        this.#discarded = true;
        this.#ended = true;
        const w = this.#waiter;
        this.#waiter = this.#failWaiter = undefined;
        w?.({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
