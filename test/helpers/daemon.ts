/**
 * Runs the real `claustrum` executable (the built dist/) on a private socket in a fresh 0700 directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopKeeper } from './procfs.js';
import { RpcClient } from './rpc.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'dist/cmd/claustrum.js');
export const FIXTURES = path.join(ROOT, 'test/fixtures');

/** A fixture program by name, as [command, ...args] for process.spawn. */
export function fixture(name: string, ...args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [path.join(FIXTURES, `${name}.mjs`), ...args] };
}

export function tempDir(prefix = 'claustrum-test-'): string {
  // Short paths: a Unix socket path must fit in 107 bytes.
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export interface DaemonOptions {
  /** Extra flags after -serve -foreground -socket … -token-file …. */
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly token?: string;
  /** A command the daemon runs under, such as `['setpriv', '--bounding-set=-dac_override']`; node follows it. */
  readonly wrapper?: readonly string[];
  /** Serve in this existing directory (a successor on a dead daemon's directory) instead of a fresh one. */
  readonly dir?: string;
}

export class Daemon {
  readonly dir: string;
  readonly socket: string;
  readonly token: string;
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #clients: RpcClient[] = [];

  private constructor(dir: string, socket: string, token: string, proc: ChildProcess) {
    this.dir = dir;
    this.socket = socket;
    this.token = token;
    this.proc = proc;
    proc.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  static async start(options: DaemonOptions = {}): Promise<Daemon> {
    const dir = options.dir ?? tempDir();
    const socket = path.join(dir, 'rpc.sock');
    const token = options.token ?? `test-token-${Math.random().toString(36).slice(2)}`;
    const tokenFile = path.join(dir, 'token-in');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const argv = [process.execPath, BIN, '-serve', '-foreground', '-socket', socket, '-token-file', tokenFile, ...(options.args ?? [])];
    const [file, ...rest] = [...(options.wrapper ?? []), ...argv];
    const proc = spawn(file!, rest, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new Daemon(dir, socket, token, proc);
    await d.#ready();
    return d;
  }

  async #ready(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!this.stdout.includes('listening on')) {
      if (this.proc.exitCode !== null) throw new Error(`daemon exited ${this.proc.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`daemon did not come up: ${this.stderr}`);
      await sleep(10);
    }
  }

  /** A connected client that authenticates with this daemon's token (see RpcClient.connect for the options). */
  async client(options: { keepFrames?: boolean } = {}): Promise<RpcClient> {
    const c = await RpcClient.connect(this.socket, this.token, options);
    this.#clients.push(c);
    return c;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  log(): string {
    return this.stderr;
  }

  tokenFile(): string | undefined {
    const p = path.join(this.dir, 'daemon.token');
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
  }

  async stop(): Promise<void> {
    for (const c of this.#clients) c.destroy();
    if (this.alive) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    await stopKeeper(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function until<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
