/**
 * Finding a daemon: the token beside its socket, and starting one on demand.
 *
 * `claustrum -serve` evicts a daemon that already owns the socket, so two clients that both find nothing and both
 * launch would have the second kill the first (and its children). Starting is therefore serialized among clients
 * by an O_EXCL file beside the socket (`client-start.lock`), and whoever holds it checks again before launching.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeToken, TOKEN_FILE } from '../protocol/paths.js';
import { ClaustrumError } from './errors.js';

export { defaultSocketPath } from '../protocol/paths.js';

/** The file that serializes on-demand starts among clients, in the socket's directory. */
export const START_LOCK_FILE = 'client-start.lock';
/** A start lock older than this is someone's crash, not a start in progress (the launcher gives up after 12 s). */
const START_LOCK_STALE_MS = 20_000;

/** The token a daemon wrote beside its socket, or undefined when there is none (no daemon, or not readable). */
export function readDaemonToken(socketPath: string): Promise<string | undefined> {
  return readTokenFile(path.join(path.dirname(socketPath), TOKEN_FILE));
}

/** A token file's one line (a trailing `\n` or `\r\n` stripped), or undefined when absent, unreadable or empty. */
export async function readTokenFile(file: string): Promise<string | undefined> {
  try {
    const token = normalizeToken(await readFile(file, 'utf8'));
    return token === '' ? undefined : token;
  } catch {
    return undefined;
  }
}

/** True when something accepts a connection on the socket within `timeoutMs`. */
export function socketAccepts(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The built `claustrum` executable of this package (dist/cmd/claustrum.js). */
export function claustrumExecutable(): string {
  const candidates = ['../../cmd/claustrum.js', '../../dist/cmd/claustrum.js'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

export interface StartDaemonOptions {
  /** Path of claustrum.js to run with this Node; this package's by default. */
  readonly executable?: string;
  /** Extra `-serve` flags (`-no-login-path`, `-stall-timeout=…`). */
  readonly args?: readonly string[];
  /** How long to wait for another client's start in progress. Default 20 s. */
  readonly waitMs?: number;
}

/**
 * Starts a detached daemon on `socketPath` unless one answers there already (or another client is starting one, in
 * which case this waits for it). Resolves once the socket accepts.
 */
export async function ensureDaemon(socketPath: string, options: StartDaemonOptions = {}): Promise<void> {
  const dir = path.dirname(socketPath);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lockPath = path.join(dir, START_LOCK_FILE);
  const deadline = Date.now() + (options.waitMs ?? START_LOCK_STALE_MS);
  for (;;) {
    if (await socketAccepts(socketPath)) return;
    let lock;
    try {
      lock = await open(lockPath, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await staleLock(lockPath)) await unlink(lockPath).catch(() => {});
      else if (Date.now() > deadline)
        throw new ClaustrumError('START_FAILED', `another client has been starting a daemon on ${socketPath} for too long (${lockPath})`);
      else await sleep(50);
      continue;
    }
    try {
      await lock.writeFile(`${process.pid}\n`);
      await lock.close();
      if (await socketAccepts(socketPath)) return;
      await launch(socketPath, options);
      return;
    } finally {
      await unlink(lockPath).catch(() => {});
    }
  }
}

async function staleLock(lockPath: string): Promise<boolean> {
  try {
    const [st, text] = await Promise.all([stat(lockPath), readFile(lockPath, 'utf8')]);
    if (Date.now() - st.mtimeMs > START_LOCK_STALE_MS) return true;
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - st.mtimeMs > 1000; // being written, or garbage
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false; // gone already: the next open will tell
  }
}

/** Runs `claustrum -serve -socket <p>` (the launcher: it returns once the detached daemon accepts). */
function launch(socketPath: string, options: StartDaemonOptions): Promise<void> {
  const exe = options.executable ?? claustrumExecutable();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [exe, '-serve', '-socket', socketPath, ...(options.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (err) => reject(new ClaustrumError('START_FAILED', `start daemon: ${err.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new ClaustrumError('START_FAILED', `start daemon on ${socketPath}: exit ${code}: ${output.trim()}`));
    });
  });
}
