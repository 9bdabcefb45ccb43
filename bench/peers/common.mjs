/** What every peer measurement shares: the text child, timing helpers, RSS. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { MiB } from '../lib/stats.mjs';

/**
 * A child writing exactly `total` bytes of text: `cat` of one file of printable lines (base64 of random bytes, 76
 * characters and a newline, as `base64` prints) listed total/fileSize times. Text, because tmux sends output through
 * a terminal and pm2 through strings: random bytes would be mangled and not count.
 */
export function textChild(dir, total) {
  const fileSize = Math.min(total, 16 * MiB);
  if (total % fileSize !== 0) throw new Error('total must be a multiple of the file size');
  const lines = [];
  let size = 0;
  while (size < fileSize) {
    const line = `${randomBytes(57).toString('base64')}\n`;
    lines.push(line);
    size += line.length;
  }
  const text = `${lines.join('').slice(0, fileSize - 1)}\n`;
  const file = path.join(dir, 'text.txt');
  writeFileSync(file, text);
  return { command: 'cat', args: Array.from({ length: total / fileSize }, () => file), total };
}

/**
 * Waits for a stream's end: `exited` resolves when the system reports the child's exit; bytes may still trail it
 * (pm2's bus, supervisord's log tail). Resolves once `count()` reaches `expected`, or has not moved for `quietMs`
 * after the exit; returns the time of the last byte (or the exit, if later), so the quiet wait is not timed.
 */
export async function streamEnd({ exited, count, expected, quietMs = Number(process.env.PEERS_QUIET_MS ?? 1500), lastByteAt }) {
  await exited;
  const exitAt = performance.now();
  let last = count();
  let still = performance.now();
  while (count() < expected) {
    await new Promise((r) => setTimeout(r, 20));
    const now = count();
    if (now !== last) {
      last = now;
      still = performance.now();
    } else if (performance.now() - still >= quietMs) break;
  }
  return Math.max(exitAt, lastByteAt());
}

/** Runs `fn` for `n` jobs with `inFlight` at a time; resolves with the seconds it took. */
export async function inFlight(n, width, fn) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return (performance.now() - t0) / 1000;
}
