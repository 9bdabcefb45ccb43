// The owner's ping: one raw NDJSON connection that pings the daemon every `intervalMs` for the whole run and records
// every round trip. A ping unanswered past the bound outside a window the run itself opened (a daemon restart, a
// SIGSTOP) is a violation.
import net from 'node:net';

export class Pinger {
  latencies = [];
  max = 0;
  maxAt = '';
  unanswered = [];
  #sock;
  #pending = new Map();
  #id = 0;
  #timer;
  #buf = '';
  #excused = 0;
  #round = '';

  constructor(socketPath, token, { intervalMs = 100, boundMs = 5000 } = {}) {
    this.socketPath = socketPath;
    this.token = token;
    this.intervalMs = intervalMs;
    this.boundMs = boundMs;
  }

  /** Names the round in progress, for the report of the slowest ping. */
  set round(name) {
    this.#round = name;
  }

  start() {
    this.#connect();
    this.#timer = setInterval(() => this.#tick(), this.intervalMs);
  }

  /** While excused (daemon down or stopped on purpose), late pings are not violations and the socket may drop. */
  excuse(on) {
    this.#excused += on ? 1 : -1;
    if (!on && this.#excused === 0) {
      this.#pending.clear();
      if (!this.#sock || this.#sock.destroyed) this.#connect();
    }
  }

  #connect() {
    const s = net.connect(this.socketPath);
    this.#sock = s;
    this.#buf = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf('\n'); nl !== -1; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        const sent = this.#pending.get(msg.id);
        if (sent === undefined) continue;
        this.#pending.delete(msg.id);
        const ms = performance.now() - sent.at;
        if (this.#excused === 0 && !sent.excused) {
          this.latencies.push(ms);
          if (ms > this.max) {
            this.max = ms;
            this.maxAt = sent.round;
          }
        }
      }
    });
    s.on('close', () => {
      if (this.#sock !== s) return;
      if (this.#excused === 0 && this.#timer) this.unanswered.push(`${this.#round}: owner connection closed by the daemon`);
      this.#pending.clear();
      setTimeout(() => this.#timer && this.#excused === 0 && this.#connect(), 100).unref();
    });
  }

  #tick() {
    const now = performance.now();
    for (const [id, sent] of this.#pending) {
      if (now - sent.at > this.boundMs && this.#excused === 0 && !sent.excused) {
        this.unanswered.push(`${sent.round}: ping ${id} unanswered after ${this.boundMs} ms`);
        this.#pending.delete(id);
      }
    }
    if (!this.#sock || this.#sock.destroyed || this.#sock.connecting) return;
    const id = ++this.#id;
    this.#pending.set(id, { at: now, round: this.#round, excused: this.#excused > 0 });
    this.#sock.write(`${JSON.stringify({ jsonrpc: '2.0', id, method: 'server.ping', auth: this.token })}\n`);
  }

  p99() {
    if (this.latencies.length === 0) return 0;
    const s = [...this.latencies].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sock?.destroy();
  }
}
