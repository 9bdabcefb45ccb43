/**
 * Runs the real `claustrum` executable in its other modes (a self-daemonizing `-serve`, `-stop`, `-bridge`,
 * `-version`) and keeps track of every process a test starts, so that nothing outlives a test, even a failing one.
 *
 * Use `const sb = sandboxes()` at the top of a describe: it registers an afterEach that tears down every sandbox the
 * tests created (daemons SIGCONTed then stopped, tracked pids killed, children recorded under children/ killed after
 * their start time is checked, directories removed).
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { afterEach } from 'vitest';
import { BIN, sleep } from './daemon.js';
import { stopKeeper } from './procfs.js';
import { RpcClient } from './rpc.js';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Bytes written to the command's stdin, which is then closed; without it stdin is /dev/null. */
  readonly input?: string | Buffer;
  /** Extra stdio entries from fd 3 on (for example 'pipe' to hand a token on fd 3). */
  readonly extraFds?: readonly ('pipe' | 'ignore')[];
  /** Written to fd 3 (a pipe) and closed. */
  readonly fd3?: string;
  readonly timeoutMs?: number;
}

/** Runs `claustrum <args>` to completion. A command still running at the timeout is SIGKILLed and reported. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const stdio: StdioOptions = [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(opts.extraFds ?? [])];
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env }, stdio });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // A command that exits without reading what it was given (a refused start) must not fail the test with EPIPE.
  if (opts.input !== undefined) child.stdin!.on('error', () => {}).end(opts.input);
  if (opts.fd3 !== undefined) (child.stdio[3] as Writable).on('error', () => {}).end(opts.fd3);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`claustrum ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 20_000}ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export const BANNER = /^Claustrum remote server listening on (.+) \(pid (\d+), instance ([0-9a-f]{32})\)$/;

// ---------------------------------------------------------------- /proc

export interface Stat {
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** Field 22 of /proc/<pid>/stat. */
  readonly startTime: string;
}

export function procStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]), startTime: f[19]! };
  } catch {
    return undefined;
  }
}

/** True while `pid` is still the very process that had `startTime`. */
export function sameProcess(pid: number, startTime: string): boolean {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && st.startTime === startTime;
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

// ---------------------------------------------------------------- sandboxes

export interface ServeResult extends RunResult {
  /** From the banner; undefined when the start failed. */
  readonly pid?: number;
  readonly instanceId?: string;
}

interface Tracked {
  readonly pid: number;
  readonly startTime: string;
  readonly daemon: boolean;
}

/** A fresh 0700 directory with a socket path in it, and the processes started for it. */
export class Sandbox {
  readonly root: string;
  /** The socket's directory (the run dir). Not created: the launcher must create it. */
  readonly dir: string;
  readonly socket: string;
  readonly #tracked: Tracked[] = [];
  readonly #clients: RpcClient[] = [];

  constructor(sub = 'run') {
    this.root = mkdtempSync(path.join(tmpdir(), 'cl-life-'));
    this.dir = path.join(this.root, sub);
    this.socket = path.join(this.dir, 'rpc.sock');
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  read(name: string): string {
    return readFileSync(this.file(name), 'utf8');
  }

  exists(name: string): boolean {
    return existsSync(this.file(name));
  }

  log(): string {
    return this.exists('remote-server.log') ? this.read('remote-server.log') : '';
  }

  /** The daemon.lock record, or undefined. */
  lock(): any {
    return this.exists('daemon.lock') ? JSON.parse(this.read('daemon.lock')) : undefined;
  }

  /** The daemon's token, from daemon.token. */
  token(): string {
    return this.read('daemon.token');
  }

  /** Remembers a pid so the teardown kills it (after checking it is still the same process). */
  track(pid: number, daemon = false): void {
    const st = procStat(pid);
    if (st) this.#tracked.push({ pid, startTime: st.startTime, daemon });
  }

  /** `claustrum -serve -socket <socket> <args>`, self-daemonizing; the daemon it reports is tracked. */
  async serve(args: readonly string[] = [], opts: RunOptions = {}): Promise<ServeResult> {
    const r = await runCli(['-serve', '-socket', this.socket, ...args], opts);
    const m = BANNER.exec(r.stdout.trimEnd());
    if (!m) return r;
    const pid = Number(m[2]);
    this.track(pid, true);
    return { ...r, pid, instanceId: m[3] };
  }

  /** serve() that must succeed. */
  async start(args: readonly string[] = [], opts: RunOptions = {}): Promise<{ pid: number; instanceId: string; stdout: string }> {
    const r = await this.serve(args, opts);
    if (r.code !== 0 || r.pid === undefined) throw new Error(`serve failed (${r.code}): ${r.stdout}${r.stderr}`);
    return { pid: r.pid, instanceId: r.instanceId!, stdout: r.stdout };
  }

  stop(): Promise<RunResult> {
    return runCli(['-stop', '-socket', this.socket]);
  }

  async client(token = this.token()): Promise<RpcClient> {
    const c = await RpcClient.connect(this.socket, token);
    this.#clients.push(c);
    return c;
  }

  /** Kills everything this sandbox started and removes its files. */
  async teardown(): Promise<void> {
    for (const c of this.#clients) c.destroy();
    // A daemon whose launcher failed or timed out was never tracked: the lock names it.
    try {
      const rec = this.lock();
      if (rec && sameProcess(rec.pid, rec.startTime) && procText(rec.pid, 'cmdline').includes(BIN)) {
        this.#tracked.push({ pid: rec.pid, startTime: rec.startTime, daemon: true });
      }
    } catch {
      // no lock, or a record the test forged
    }
    const daemons = this.#tracked.filter((t) => t.daemon && sameProcess(t.pid, t.startTime));
    for (const d of daemons) {
      kill(d.pid, 'SIGCONT');
      kill(d.pid, 'SIGTERM');
    }
    const deadline = Date.now() + 4000;
    while (daemons.some((d) => sameProcess(d.pid, d.startTime)) && Date.now() < deadline) await sleep(25);
    for (const d of daemons) if (sameProcess(d.pid, d.startTime)) kill(d.pid, 'SIGKILL');
    // The keeper a SIGKILLed or -keep-children daemon left (it takes its children along).
    await stopKeeper(this.dir);
    // Children a daemon recorded (a dead keeper leaves them), then whatever the test tracked itself.
    const leftovers: Tracked[] = [...this.#tracked.filter((t) => !t.daemon)];
    try {
      for (const name of readdirSync(path.join(this.dir, 'children'))) {
        try {
          const rec = JSON.parse(readFileSync(path.join(this.dir, 'children', name), 'utf8'));
          leftovers.push({ pid: rec.pid, startTime: rec.startTime, daemon: false });
        } catch {
          // unreadable: nothing to kill
        }
      }
    } catch {
      // no children dir
    }
    for (const t of leftovers) {
      if (!sameProcess(t.pid, t.startTime)) continue;
      kill(t.pid, 'SIGCONT');
      if (procStat(t.pid)?.pgid === t.pid) kill(-t.pid, 'SIGKILL');
      kill(t.pid, 'SIGKILL');
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Registers an afterEach that tears down every sandbox made through the returned factory. */
export function sandboxes(): (sub?: string) => Sandbox {
  const made: Sandbox[] = [];
  afterEach(async () => {
    const all = made.splice(0);
    await Promise.all(all.map((s) => s.teardown()));
  });
  return (sub?: string) => {
    const s = new Sandbox(sub);
    made.push(s);
    return s;
  };
}

/** Reads /proc/<pid>/cmdline and /proc/<pid>/environ as text (NULs kept). */
export function procText(pid: number, what: 'cmdline' | 'environ'): string {
  return readFileSync(`/proc/${pid}/${what}`, 'latin1');
}
