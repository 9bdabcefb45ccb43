// A raw NDJSON connection: writes exactly the bytes it is given and keeps every message it reads.
import net from 'node:net';

export class Raw {
  messages = [];
  closed;
  #buf = Buffer.alloc(0);
  #waiters = [];

  constructor(socketPath) {
    this.sock = net.connect(socketPath);
    this.sock.on('error', () => {});
    this.connected = new Promise((resolve) => {
      this.sock.once('connect', () => resolve(true));
      this.sock.once('close', () => resolve(false));
    });
    this.closed = new Promise((resolve) => this.sock.once('close', resolve));
    this.sock.on('data', (d) => {
      this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
      for (let nl = this.#buf.indexOf(10); nl !== -1; nl = this.#buf.indexOf(10)) {
        const line = this.#buf.subarray(0, nl).toString();
        this.#buf = this.#buf.subarray(nl + 1);
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          msg = { unparsable: line.slice(0, 200) };
        }
        this.messages.push(msg);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.pred(msg)) return true;
          w.resolve(msg);
          return false;
        });
      }
    });
  }

  get isClosed() {
    return this.sock.destroyed;
  }

  send(obj) {
    this.sock.write(typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : `${JSON.stringify(obj)}\n`);
  }

  waitFor(pred, timeoutMs = 15_000) {
    const have = this.messages.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for a message')), timeoutMs);
      t.unref();
      this.#waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
      this.closed.then(() => setTimeout(() => reject(new Error('connection closed')), 50).unref());
    });
  }

  reply(id, timeoutMs) {
    return this.waitFor((m) => m.type !== 'stream' && m.id === id, timeoutMs);
  }

  destroy() {
    this.sock.destroy();
  }
}
