/** Helpers shared by the client tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, until } from '../helpers/daemon.js';
import { patternByte } from '../fixtures/lib/pattern.mjs';

export async function collect(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of iterable) chunks.push(c);
  return Buffer.concat(chunks);
}

/** The pattern of flood.mjs and pattern-echo.mjs. */
export { patternByte } from '../fixtures/lib/pattern.mjs';

/** Where `buf` (starting at pattern offset `start`) first differs from the pattern within `n` bytes, or undefined. */
export function patternMismatch(buf: Buffer, n: number, start = 0): string | undefined {
  if (buf.length < n) return `only ${buf.length} of ${n} bytes`;
  for (let k = 0; k < n; k++) {
    if (buf[k] !== patternByte(start + k)) return `byte ${start + k}: ${buf[k]} != ${patternByte(start + k)}`;
  }
  return undefined;
}

/** A foreground daemon on a socket of the test's choosing (Daemon.start picks its own directory). */
export async function startDaemonOn(socket: string, token: string): Promise<{ proc: ChildProcess; log: () => string; stop: () => Promise<void> }> {
  const tokenFile = path.join(path.dirname(socket), `token-in-${token}`);
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const proc = spawn(process.execPath, [BIN, '-serve', '-foreground', '-no-login-path', '-socket', socket, '-token-file', tokenFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await until(() => out.includes('listening on') || proc.exitCode !== null, 15_000, 'the daemon to listen');
  if (proc.exitCode !== null) throw new Error(`daemon exited ${proc.exitCode}: ${err}`);
  return {
    proc,
    log: () => err,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}
