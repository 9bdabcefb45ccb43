// The real daemon (dist/cmd/claustrum.js) on a private socket, driven through its life-cycle: started, started again
// over the running one (a graceful restart; from another build directory, an upgrade), SIGKILLed, stopped with
// SIGTERM (under -keep-children the processes stay with the keeper) and started again on the same directory. Each
// daemon's stderr goes to one log file, named in the report. The keeper (issue 16) outlives every daemon; stop()
// ends it too, so a run leaves no process behind.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive } from './proc.mjs';

/** A superseded daemon must leave on its own (it exits without touching the processes) within this. */
export const SUPERSEDED_EXIT_MS = 15_000;
/** stop(): the daemon gets this long after SIGTERM, the keeper as long after its own SIGTERM, before SIGKILL. */
const STOP_GRACE_MS = 5000;

export class ChaosDaemon {
  starts = 0;
  proc = undefined;
  stdout = '';
  /** The executable the current daemon was started from. */
  bin;
  /** Every daemon started, in order: {pid, bin, how, exit} (for the report and for leak checks). */
  history = [];

  constructor({ bin, dir, token, args = [], env = {} }) {
    this.bin = bin;
    this.dir = dir;
    this.socket = path.join(dir, 'rpc.sock');
    this.keeperDir = path.join(dir, 'keeper');
    this.token = token;
    this.args = args;
    this.env = env;
    this.logPath = path.join(dir, 'daemon-stderr.log');
    this.log = createWriteStream(this.logPath, { flags: 'a' });
  }

  get pid() {
    return this.proc?.pid;
  }

  get alive() {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The keeper's pid from keeper.lock, or undefined (none, or unreadable). */
  get keeperPid() {
    try {
      return JSON.parse(readFileSync(path.join(this.keeperDir, 'keeper.lock'), 'utf8')).pid;
    } catch {
      return undefined;
    }
  }

  /**
   * Starts a daemon from `bin` (default: the current one's). With a daemon running, this is a takeover: the new one
   * says hello to the keeper, the old one is told it is superseded and must exit by itself (code 0) without touching
   * a process; resolves once the new one listens and the old one is gone, with {previous: {pid, exit}}.
   */
  async start({ bin = this.bin, how = 'start', timeoutMs = 30_000 } = {}) {
    const previous = this.alive ? { proc: this.proc, exited: this.exited } : undefined;
    const tokenFile = path.join(this.dir, `token-in-${this.starts}`);
    writeFileSync(tokenFile, `${this.token}\n`, { mode: 0o600 });
    this.starts++;
    this.stdout = '';
    const argv = [bin, '-serve', '-foreground', '-socket', this.socket, '-token-file', tokenFile, ...this.args];
    this.log.write(
      `--- chaos: ${how} #${this.starts} from ${bin}${previous ? ` over pid ${previous.proc.pid}` : ''} at ${new Date().toISOString()}\n`,
    );
    const proc = spawn(process.execPath, argv, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    // began/listening/ended: performance.now() of the start, of its "listening", of a failed start's end.
    const entry = { pid: proc.pid, bin, how, exit: undefined, began: performance.now(), listening: undefined, ended: undefined };
    this.history.push(entry);
    this.proc = proc;
    this.bin = bin;
    proc.stdout.on('data', (d) => (this.stdout += d.toString()));
    proc.stderr.on('data', (d) => {
      this.log.write(d);
      const m = /ERROR .*$/m.exec(d.toString());
      if (m) this.#errTail = m[0].slice(0, 400);
    });
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        entry.exit = { code, signal };
        resolve({ code, signal });
      }),
    );
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes('listening on')) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        entry.ended = performance.now();
        // The predecessor (if any) is still the one running, or gone: either way this.proc must say which.
        if (previous && this.proc === proc) {
          this.proc = previous.proc;
          this.exited = previous.exited;
        }
        throw new Error(`daemon ${how} from ${bin} exited during start-up (${proc.exitCode ?? proc.signalCode}): ${this.#lastError()}`);
      }
      if (Date.now() > deadline) throw new Error(`daemon did not come up within ${timeoutMs} ms; see ${this.logPath}`);
      await sleep(10);
    }
    entry.listening = performance.now();
    if (!previous) return {};
    const gone = await Promise.race([previous.exited, sleep(SUPERSEDED_EXIT_MS).then(() => undefined)]);
    if (!gone) {
      previous.proc.kill('SIGKILL');
      return { previous: { pid: previous.proc.pid, exit: undefined, stayed: true } };
    }
    return { previous: { pid: previous.proc.pid, exit: gone } };
  }

  /** The last ERROR line the daemons wrote (what a failed start said). */
  #lastError() {
    this.#errTail ??= '';
    return this.#errTail || `see ${this.logPath}`;
  }

  #errTail = '';

  async kill(signal = 'SIGKILL') {
    if (!this.alive) return undefined;
    this.proc.kill(signal);
    return await this.exited;
  }

  /**
   * Stops the daemon (SIGTERM; with -keep-children among the args its processes stay with the keeper) and then the
   * keeper: it exits by itself once no daemon and no process is left; otherwise SIGTERM (it kills what it keeps).
   */
  async stop() {
    if (this.alive) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(t);
    }
    const keeper = this.keeperPid;
    if (keeper === undefined || !processAlive(keeper)) return;
    try {
      process.kill(keeper, 'SIGTERM');
    } catch {
      return;
    }
    const deadline = Date.now() + STOP_GRACE_MS;
    while (processAlive(keeper) && Date.now() < deadline) await sleep(50);
    if (processAlive(keeper)) {
      try {
        process.kill(keeper, 'SIGKILL');
      } catch {}
    }
  }
}
