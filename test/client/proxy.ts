/**
 * A fault-injecting relay between a client and the daemon: a Unix socket server that forwards to the daemon's
 * socket (or a TCP one forwarding to its WebSocket listener), with flow control both ways, and cuts connections on command or at random points.
 *
 * Random cuts are drawn from a seeded generator, per connection: a byte budget for each direction (often tiny, so
 * handshakes and reattach replays get cut too) and a time budget. When one runs out the connection is cut, either
 * abruptly (both sides destroyed, the partial chunk lost) or gracefully (the partial chunk delivered, then a
 * half-close toward the daemon and a close toward the client). Every cut is logged for the failure message.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../helpers/daemon.js';

/** mulberry32: a small seeded PRNG, enough to make a cut schedule reproducible from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type ProxyMode =
  /** Relay everything; cut only on cut(). */
  | 'relay'
  /** Relay, and cut every connection at a random point. */
  | 'random'
  /** Accept and close at once (as if the daemon were unreachable). */
  | 'refuse'
  /** Relay daemon → client, swallow client → daemon (requests hang in flight). */
  | 'swallowUp'
  /** Relay client → daemon, swallow daemon → client (requests apply, replies are lost). */
  | 'swallowDown';

interface Pair {
  readonly n: number;
  readonly client: net.Socket;
  readonly daemon: net.Socket;
  cut: (why: string) => void;
  /** Draws this connection's random cut point (from now on). */
  arm: () => void;
}

export class CuttingProxy {
  /** The proxy's Unix socket (for a Unix target). */
  readonly path: string;
  /** The proxy's TCP port on 127.0.0.1 (for a TCP target: a WebSocket listener). */
  port = 0;
  readonly #dir: string;
  readonly #target: string | { host: string; port: number };
  readonly #server: net.Server;
  readonly #random: () => number;
  readonly #pairs = new Set<Pair>();
  #mode: ProxyMode = 'relay';
  /** Connections cut so far (by cut() or at random). */
  cuts = 0;
  connections = 0;
  /** Client → daemon bytes that reached the daemon after their connection was cut (lag). */
  lateBytes = 0;
  readonly log: string[] = [];

  private constructor(target: string | { host: string; port: number }, random: () => number) {
    this.#dir = tempDir('claustrum-proxy-');
    this.path = path.join(this.#dir, 'proxy.sock');
    this.#target = target;
    this.#random = random;
    this.#server = net.createServer((c) => this.#accept(c));
  }

  static async start(target: string | { host: string; port: number }, random: () => number = Math.random): Promise<CuttingProxy> {
    const p = new CuttingProxy(target, random);
    if (typeof target === 'string') await new Promise<void>((resolve) => p.#server.listen(p.path, resolve));
    else {
      await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
      p.port = (p.#server.address() as net.AddressInfo).port;
    }
    return p;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Switching to 'random' arms the connections already open too. */
  set mode(mode: ProxyMode) {
    this.#mode = mode;
    if (mode === 'random') for (const p of this.#pairs) p.arm();
  }

  /** The directory the proxy socket is in (put a daemon.token here to test reading it). */
  get dir(): string {
    return this.#dir;
  }

  /** Cuts every open connection now. */
  cutAll(why = 'cutAll'): void {
    for (const p of [...this.#pairs]) p.cut(why);
  }

  async close(): Promise<void> {
    this.#mode = 'refuse';
    for (const p of [...this.#pairs]) {
      p.client.destroy();
      p.daemon.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #accept(client: net.Socket): void {
    const n = ++this.connections;
    client.on('error', () => {});
    if (this.#mode === 'refuse') {
      this.log.push(`#${n} refused`);
      client.destroy();
      return;
    }
    const daemon = typeof this.#target === 'string' ? net.connect(this.#target) : net.connect(this.#target.port, this.#target.host);
    daemon.on('error', () => {});
    const r = this.#random;
    let down = Infinity;
    let up = Infinity;
    let abrupt = true;
    /** Latency added to client → daemon bytes, so a cut connection's last requests can land after the next one's. */
    let lag = 0;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const pair: Pair = {
      n,
      client,
      daemon,
      arm: () => {
        if (done || timer !== undefined) return;
        // Budgets: a quarter of connections get a tiny one (cut inside a handshake or a reattach reply), the rest
        // up to 512 KiB down and 128 KiB up.
        const budget = (max: number) => (r() < 0.25 ? Math.floor(r() * 2048) : Math.floor(r() * max));
        down = budget(512 * 1024);
        up = budget(128 * 1024);
        abrupt = r() < 0.5;
        lag = r() < 0.5 ? 0 : Math.floor(r() * 60);
        const ms = 10 + Math.floor(r() * 250);
        this.log.push(`#${n} armed: down ${down} B, up ${up} B, ${ms} ms, ${abrupt ? 'abrupt' : 'graceful'}, up lag ${lag} ms`);
        timer = setTimeout(() => pair.cut(`after ${ms} ms`), ms);
      },
      cut: (why) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        this.#pairs.delete(pair);
        this.cuts++;
        this.log.push(`#${n} cut (${why}, ${abrupt ? 'abrupt' : 'graceful'})`);
        if (abrupt) {
          client.destroy();
          daemon.destroy();
        } else {
          client.end();
          // What was relayed toward the daemon still arrives (late, with a lag), then a half-close.
          setTimeout(() => daemon.end(), lag);
          setTimeout(() => {
            client.destroy();
            daemon.destroy();
          }, lag + 100).unref();
        }
      },
    };
    this.#pairs.add(pair);
    if (this.#mode === 'random') pair.arm();
    const relay = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
      from.on('data', (chunk: Buffer) => {
        if (done) return;
        if ((dir === 'up' && this.#mode === 'swallowUp') || (dir === 'down' && this.#mode === 'swallowDown')) return;
        const left = dir === 'up' ? up : down;
        const forward = (bytes: Buffer) => {
          if (dir === 'up' && lag > 0) {
            setTimeout(() => {
              if (to.destroyed) return;
              if (done) this.lateBytes += bytes.length;
              to.write(bytes);
            }, lag);
          } else if (!to.write(bytes)) {
            from.pause();
            to.once('drain', () => from.resume());
          }
        };
        if (chunk.length >= left) {
          const part = chunk.subarray(0, left);
          if (!abrupt && part.length > 0) forward(part);
          pair.cut(`${dir} budget spent`);
          return;
        }
        if (dir === 'up') up -= chunk.length;
        else down -= chunk.length;
        forward(chunk);
      });
      from.on('close', () => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        this.#pairs.delete(pair);
        to.destroy();
      });
    };
    relay(client, daemon, 'up');
    relay(daemon, client, 'down');
  }
}
