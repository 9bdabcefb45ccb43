// A cutting relay between a client and the daemon's Unix socket. Each connection gets a byte budget per direction
// (often tiny, so requests, replies, handshakes and reattach replays are all cut somewhere) and a time budget,
// drawn from the run's seeded generator; when one runs out the connection is cut, abruptly or after a half-close.
import { rmSync } from 'node:fs';
import net from 'node:net';

export class CuttingProxy {
  /** Connections cut so far. */
  cuts = 0;
  #pairs = new Set();
  #random;
  #armed = false;

  constructor(listenPath, targetPath, random) {
    this.path = listenPath;
    this.target = targetPath;
    this.#random = random;
    this.server = net.createServer((client) => this.#accept(client));
  }

  listen() {
    rmSync(this.path, { force: true });
    return new Promise((resolve) => this.server.listen(this.path, resolve));
  }

  /** Random cuts on (true) or plain relaying (false). */
  arm(on) {
    this.#armed = on;
    if (on) for (const p of this.#pairs) p.draw();
  }

  /** Stops cutting and lets every connection through from now on (a session that ran out of time drains). */
  disarm() {
    this.#armed = false;
  }

  #accept(client) {
    const daemon = net.connect(this.target);
    let up = 0;
    let down = 0;
    let budgetUp = Infinity;
    let budgetDown = Infinity;
    let timer;
    let gone = false;
    const pair = {
      cut: (graceful) => {
        if (gone) return;
        gone = true;
        clearTimeout(timer);
        this.cuts++;
        if (graceful) {
          daemon.end();
          client.end();
          setTimeout(() => {
            daemon.destroy();
            client.destroy();
          }, 200).unref();
        } else {
          daemon.destroy();
          client.destroy();
        }
      },
      draw: () => {
        const r = this.#random;
        // Small budgets half the time: a cut inside the first request or reply line.
        budgetUp = up + (r() < 0.5 ? Math.floor(r() * 400) : Math.floor(r() * 256 * 1024));
        budgetDown = down + (r() < 0.5 ? Math.floor(r() * 600) : Math.floor(r() * 2 * 1024 * 1024));
        clearTimeout(timer);
        timer = setTimeout(() => pair.cut(r() < 0.3), 50 + Math.floor(r() * 1500));
        timer.unref();
      },
    };
    this.#pairs.add(pair);
    // Two connections in three are cut: a client that is cut every time can never catch up with a fast child, and
    // the round is about exactly-once delivery across cuts, not liveness under a link that never holds.
    if (this.#armed && this.#random() < 2 / 3) pair.draw();
    const relay = (from, to, dir) => {
      from.on('data', (chunk) => {
        if (gone) return;
        const used = dir === 'up' ? up : down;
        const budget = dir === 'up' ? budgetUp : budgetDown;
        if (used + chunk.length > budget) {
          const keep = Math.max(0, budget - used);
          if (keep > 0) to.write(chunk.subarray(0, keep));
          pair.cut(this.#random() < 0.3);
          return;
        }
        if (dir === 'up') up += chunk.length;
        else down += chunk.length;
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
    };
    relay(client, daemon, 'up');
    relay(daemon, client, 'down');
    for (const s of [client, daemon]) {
      s.on('error', () => {});
      s.on('close', () => {
        gone = true;
        clearTimeout(timer);
        client.destroy();
        daemon.destroy();
        this.#pairs.delete(pair);
      });
    }
  }

  close() {
    for (const p of this.#pairs) p.cut(false);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
