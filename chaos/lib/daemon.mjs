// The real daemon (dist/cmd/claustrum.js) on a private socket, started, SIGKILLed and restarted on the same
// directory, with its log kept in a file for the report.
import { spawn } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export class ChaosDaemon {
  starts = 0;
  proc = undefined;
  stdout = '';

  constructor({ bin, dir, token, args = [], env = {} }) {
    this.bin = bin;
    this.dir = dir;
    this.socket = path.join(dir, 'rpc.sock');
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

  async start(timeoutMs = 30_000) {
    const tokenFile = path.join(this.dir, `token-in-${this.starts}`);
    writeFileSync(tokenFile, `${this.token}\n`, { mode: 0o600 });
    this.starts++;
    this.stdout = '';
    const argv = [this.bin, '-serve', '-foreground', '-socket', this.socket, '-token-file', tokenFile, ...this.args];
    const proc = spawn(process.execPath, argv, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout.on('data', (d) => (this.stdout += d.toString()));
    proc.stderr.on('data', (d) => this.log.write(d));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes('listening on')) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`daemon exited during start-up (${proc.exitCode ?? proc.signalCode})`);
      if (Date.now() > deadline) throw new Error('daemon did not come up');
      await sleep(10);
    }
  }

  async kill(signal = 'SIGKILL') {
    if (!this.alive) return;
    this.proc.kill(signal);
    await this.exited;
  }

  async stop() {
    if (!this.alive) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}
