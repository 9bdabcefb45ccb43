/**
 * The client's stdin window (src/client/stdin.ts) with an injected link standing in for the connection: it applies
 * the daemon's offset rules itself (src/process/stdin.ts), so every resend scenario is checked for exactly-once.
 */
import { describe, expect, it } from 'vitest';
import { DroppedError, RpcError } from '../../src/client/errors.js';
import { STDIN_CHUNK_BYTES, STDIN_INITIAL_WINDOW_BYTES, StdinWindow, type StdinLink, type StdinRequest } from '../../src/client/stdin.js';
import { stdinVerdict } from '../../src/process/stdin.js';
import { sleep } from '../helpers/daemon.js';

/** The daemon side of stdin, by the real offset rules, with requests answered when the test says. */
class FakeDaemonStdin implements StdinLink {
  liveGeneration: number | undefined = 1;
  applied = 0;
  received: Buffer[] = [];
  eof = false;
  /** Requests sent and not yet answered. */
  pending: { gen: number; params: StdinRequest; done: (e: Error | undefined, r: unknown) => void }[] = [];
  /** Refuse the next n writes with "queue full". */
  refuse = 0;

  send(gen: number, params: StdinRequest, done: (e: Error | undefined, r: unknown) => void): void {
    this.pending.push({ gen, params, done });
  }

  /** Applies and answers the oldest pending request. */
  answer(): void {
    const { params, done } = this.pending.shift()!;
    const data = params.data ?? Buffer.alloc(0);
    const v = stdinVerdict(this.applied, params.offset, data.length);
    if (v.kind === 'gap') {
      done(new RpcError('process.stdin', -32003, 'stdin offset gap: offset ahead of applied bytes'), undefined);
      return;
    }
    if (this.refuse > 0 && v.kind === 'write' && data.length > v.skip) {
      this.refuse--;
      done(new RpcError('process.stdin', -32002, 'stdin backpressure: queue full'), undefined);
      return;
    }
    const closing = params.eof === true && !this.eof && params.offset + data.length === this.applied;
    if (v.kind === 'duplicate' && !closing) {
      done(undefined, { success: true, applied: this.applied, duplicate: true });
      return;
    }
    if (v.kind === 'duplicate') {
      this.eof = true;
      done(undefined, { success: true, applied: this.applied });
      return;
    }
    this.received.push(data.subarray(v.skip));
    this.applied += data.length - v.skip;
    if (params.eof) this.eof = true;
    done(undefined, { success: true, applied: this.applied });
  }

  answerAll(): void {
    while (this.pending.length > 0) this.answer();
  }

  /** The connection drops: every pending request fails with DroppedError. */
  drop(): void {
    for (const p of this.pending.splice(0)) p.done(new DroppedError(), undefined);
    this.liveGeneration = undefined;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('StdinWindow', () => {
  it('cuts writes into chunks at consecutive offsets and resolves each write with the applied count', async () => {
    const d = new FakeDaemonStdin();
    const w = new StdinWindow('p', d, true);
    w.open(1, false);
    const data = bytes(STDIN_CHUNK_BYTES + 100);
    const done = w.write(data);
    // The first chunk fills the initial window; the second waits for its acknowledgement.
    expect(d.pending.map((p) => p.params.offset)).toEqual([0]);
    d.answerAll();
    d.answerAll();
    expect(await done).toBe(data.length);
    expect(d.bytes.equals(data)).toBe(true);
    expect(w.pending).toBe(0);
  });

  it('the window starts at 64 KiB and grows with acknowledgements', () => {
    const d = new FakeDaemonStdin();
    const w = new StdinWindow('p', d, true);
    w.open(1, false);
    for (let i = 0; i < 40; i++) void w.write(bytes(16 * 1024, i));
    expect(d.pending.length).toBe(STDIN_INITIAL_WINDOW_BYTES / (16 * 1024));
    d.answer();
    // One 16 KiB acknowledgement grows the window by 16 KiB: two more sends.
    expect(d.pending.length).toBe(STDIN_INITIAL_WINDOW_BYTES / (16 * 1024) - 1 + 2);
  });

  it('after a drop resends from the acknowledged offset, probing first: every byte exactly once', async () => {
    const d = new FakeDaemonStdin();
    const w = new StdinWindow('p', d, true);
    w.open(1, false);
    const data = bytes(40_000);
    const done = w.write(data);
    // The daemon applied the request, but the reply was lost with the connection.
    const lost = d.pending.shift()!;
    d.pending.unshift({ ...lost, done: () => {} });
    d.answer();
    d.drop();
    w.down();
    d.liveGeneration = 2;
    w.open(2, true);
    // The probe is a zero-byte write at the acknowledged offset (0): a duplicate that reports applied = 40,000.
    expect(d.pending).toHaveLength(1);
    expect(d.pending[0]!.params).toEqual({ id: 'p', offset: 0 });
    d.answerAll();
    d.answerAll();
    expect(await done).toBe(40_000);
    expect(d.bytes.equals(data)).toBe(true);
    expect(w.resentDuplicates).toBe(0);
  });

  it('a queue-full refusal is retried from the first unacknowledged byte; nothing is lost or doubled', async () => {
    const d = new FakeDaemonStdin();
    const w = new StdinWindow('p', d, true);
    w.open(1, false);
    d.refuse = 1;
    const data = bytes(20_000);
    const done = w.write(data);
    d.answerAll();
    expect(w.refusals).toBe(1);
    // The retry comes after a backoff timer.
    await sleep(50);
    d.answerAll();
    expect(await done).toBe(20_000);
    expect(d.bytes.equals(data)).toBe(true);
  });

  it('end() closes stdin after every byte; later writes are refused', async () => {
    const d = new FakeDaemonStdin();
    const w = new StdinWindow('p', d, true);
    w.open(1, false);
    const ended = w.end(Buffer.from('last'));
    d.answerAll();
    d.answerAll();
    await ended;
    expect(d.eof).toBe(true);
    expect(d.bytes.toString()).toBe('last');
    await expect(w.write(Buffer.from('more'))).rejects.toThrow(/stdin already ended/);
  });

  it('an attached window queues until rebased on the daemon count, then sends at the shifted offsets', async () => {
    const d = new FakeDaemonStdin();
    d.applied = 100; // someone else wrote 100 bytes before this client attached
    const w = new StdinWindow('p', d, false);
    const done = w.write(Buffer.from('abc'));
    w.open(1, true);
    expect(d.pending).toHaveLength(0);
    w.rebase(100);
    w.down();
    w.open(1, false);
    expect(d.pending.map((p) => p.params.offset)).toEqual([100]);
    d.answerAll();
    expect(await done).toBe(103);
    expect(d.bytes.toString()).toBe('abc');
  });
});
