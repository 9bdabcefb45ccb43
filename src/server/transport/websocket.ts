/**
 * The WebSocket listener (`-ws-addr`): path `/rpc`, one JSON-RPC message per text message (JSON) or binary message
 * (MessagePack). A TCP port has no file permissions, so the handshake itself is guarded (SECURITY.md):
 * an `Origin` that is present and not allow-listed, or a `Host` that is neither loopback nor the bound address, gets
 * 403; a handshake must complete within 10 s; messages are capped at the request line cap; compression is off.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { wireText } from '../../log/escape.js';
import type { Logger } from '../../log/logger.js';
import { MAX_LINE_BYTES } from '../../protocol/ndjson.js';
import { formatAddress, isAllowedHost, splitHostPort } from '../../util/hostport.js';
import { decodeMessage, msgpackCodec } from '../rpc/codec/msgpack.js';
import { decodeLine, ndjsonCodec } from '../rpc/codec/ndjson.js';
import type { WireCodec } from '../rpc/codec/codec.js';
import type { Outbound } from '../rpc/connection.js';
import type { RpcServer } from '../rpc/server.js';

export const WS_PATH = '/rpc';
/** A connection that has not completed its upgrade request within this long is dropped. */
export const WS_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Most TCP connections the listener holds at once, upgraded or not: a further one is closed at accept, so strangers
 * on the port can never exhaust the daemon's descriptors (the Unix socket keeps its own 1,024).
 */
export const WS_MAX_CONNECTIONS = 256;
/**
 * TCP connections that have not finished their upgrade request, at once: a further one is closed at accept. Without
 * it a stranger who opens connections and sends nothing holds one descriptor each until the handshake timeout, up to
 * the listener's whole cap, and on a daemon whose RLIMIT_NOFILE is not far above that cap the Unix socket can then
 * accept nothing (test/hardening/preauth.test.ts: 300 such connections against a limit of 256). With it, strangers
 * on the port hold at most this plus WS_MAX_UNAUTHENTICATED descriptors.
 */
export const WS_MAX_HANDSHAKES = 32;
/** Upgraded connections that have not authenticated yet, at once, and how long each may stay so. */
export const WS_MAX_UNAUTHENTICATED = 32;
export const WS_AUTH_DEADLINE_MS = 10_000;
/**
 * The ws library's bounds on what one message may cost before it is whole: how many socket reads it may be assembled
 * from, and how many fragments it may have. Each held read costs a Buffer beyond its bytes (about 150 bytes), so a
 * message trickled a byte per read would otherwise hold far more than its size (the library's defaults allow 262,144
 * reads and 16,384 fragments). With these, a 1 MiB message must arrive in reads of 256 bytes on average.
 */
export const WS_MAX_BUFFERED_CHUNKS = 4096;
export const WS_MAX_FRAGMENTS = 1024;

export interface WebSocketOptions {
  readonly addr: string;
  /** Origins allowed to connect (exact match, e.g. `https://app.example`); requests without Origin are allowed. */
  readonly allowOrigins: readonly string[];
  readonly maxPayload?: number;
  /**
   * `-console`: answers plain HTTP requests it recognises (the console page) and returns true; false leaves the
   * request to the 404/426 below. `bound` is the listener's address, for the same Host check as the upgrade's.
   * Absent: nothing but the upgrade is served.
   */
  readonly httpHandler?: (req: http.IncomingMessage, res: http.ServerResponse, bound: AddressInfo) => boolean;
  /** `-console`: an Origin this accepts is allowed as if listed (the page this listener served: same origin). */
  readonly acceptOrigin?: (origin: string, req: http.IncomingMessage) => boolean;
  /** WS_AUTH_DEADLINE_MS unless given (tests). */
  readonly authDeadlineMs?: number;
  /** A connection turned away at accept (over WS_MAX_CONNECTIONS or WS_MAX_HANDSHAKES): counted and logged. */
  readonly onRefused?: (reason: 'connections' | 'handshakes', message: string) => void;
}

export class SocketListenError extends Error {}

export interface WebSocketListener {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function listenWebSocket(
  opts: WebSocketOptions,
  log: Logger,
  onConnection: (ws: WebSocket, req: http.IncomingMessage) => void,
): Promise<WebSocketListener> {
  const { host, port } = splitHostPort(opts.addr);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayload ?? MAX_LINE_BYTES,
    perMessageDeflate: false,
    clientTracking: true,
    // (Both options are ws's own, newer than its type declarations.)
    ...({ maxBufferedChunks: WS_MAX_BUFFERED_CHUNKS, maxFragments: WS_MAX_FRAGMENTS } as object),
  });
  const server = http.createServer(
    { headersTimeout: WS_HANDSHAKE_TIMEOUT_MS, requestTimeout: WS_HANDSHAKE_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    (req, res) => {
      if (opts.httpHandler?.(req, res, server.address() as AddressInfo)) return;
      // Plain HTTP is not served: only the upgrade on /rpc.
      res.writeHead(req.url === WS_PATH ? 426 : 404, { 'content-type': 'text/plain', connection: 'close' });
      res.end(req.url === WS_PATH ? 'WebSocket upgrade required\n' : '404 page not found\n');
    },
  );
  const handshaking = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (handshaking.size >= WS_MAX_HANDSHAKES) {
      const from = socket.remoteAddress; // (gone once destroyed)
      socket.destroy();
      opts.onRefused?.(
        'handshakes',
        `websocket: refused ${from}: ${handshaking.size} connections have not finished their upgrade yet (the most allowed)`,
      );
      return;
    }
    handshaking.add(socket);
    socket.once('close', () => handshaking.delete(socket));
  });
  // Node 18.6+: a connection over maxConnections is closed at accept and reported here.
  server.on('drop', (data?: { remoteAddress?: string }) =>
    opts.onRefused?.('connections', `websocket: refused ${data?.remoteAddress}: ${WS_MAX_CONNECTIONS} connections already (the most allowed)`),
  );
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    // From here the connection is counted by the RPC layer's admission (WS_MAX_UNAUTHENTICATED) instead.
    handshaking.delete(socket);
    socket.on('error', () => {});
    const refuse = (status: number, why: string) => {
      log.refusal('websocket-upgrade', 'Server', `websocket: refused ${req.socket.remoteAddress}: ${wireText(why)}`);
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    };
    if ((req.url ?? '').split('?')[0] !== WS_PATH) return refuse(404, `path ${req.url}`);
    const origin = req.headers.origin;
    if (origin !== undefined && !opts.allowOrigins.includes(origin) && !opts.acceptOrigin?.(origin, req))
      return refuse(403, `origin ${origin} is not allowed`);
    if (!isAllowedHost(req.headers.host, server.address() as AddressInfo))
      return refuse(403, `host ${req.headers.host ?? '(none)'} is not loopback or the bound address`);
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  server.maxConnections = WS_MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new SocketListenError(`websocket: listen ${opts.addr}: ${err.message}`)));
    server.listen({ host: host || undefined, port }, () => resolve());
  });
  server.on('error', (err) => log.error('Server', `websocket: ${err.message}`));
  const address = server.address() as AddressInfo;
  log.info('Server', `websocket: serving ws://${formatAddress(address)}${WS_PATH}`);
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Starts the WebSocket listener and serves its connections through `rpc`. */
export async function serveWebSocket(opts: WebSocketOptions, log: Logger, rpc: RpcServer): Promise<WebSocketListener> {
  const listener = await listenWebSocket({ onRefused: (reason, message) => rpc.refused(reason, message), ...opts }, log, (ws, req) =>
    acceptWebSocket(rpc, log, ws, req, opts.authDeadlineMs ?? WS_AUTH_DEADLINE_MS),
  );
  rpc.addFeature('transport.websocket');
  return listener;
}

function acceptWebSocket(rpc: RpcServer, log: Logger, ws: WebSocket, req: http.IncomingMessage, authDeadlineMs: number): void {
  const label = rpc.nextLabel('ws', `${req.socket.remoteAddress}:${req.socket.remotePort}`);
  // Replies and frames go back in the kind of message the client last sent.
  let binary = false;
  const codec: WireCodec = {
    reply: (r) => (binary ? msgpackCodec.reply(r) : withoutNewline(ndjsonCodec.reply(r) as string)),
    frame: (origin, frame) => (binary ? msgpackCodec.frame(origin, frame) : withoutNewline(ndjsonCodec.frame(origin, frame) as string)),
    screen: (origin, frame) => (binary ? msgpackCodec.screen(origin, frame) : withoutNewline(ndjsonCodec.screen(origin, frame) as string)),
    gap: (origin, from, to) => (binary ? msgpackCodec.gap(origin, from, to) : withoutNewline(ndjsonCodec.gap(origin, from, to) as string)),
  };
  const out: Outbound = {
    write: (data, flushed) => {
      if (ws.readyState === ws.OPEN) ws.send(data, { binary: typeof data !== 'string' }, () => flushed());
    },
    get backlog() {
      return ws.bufferedAmount;
    },
    end: () => ws.close(1001, 'server shutting down'),
    destroy: () => ws.terminate(),
    pauseInput: () => ws.pause(),
    resumeInput: () => ws.resume(),
  };
  // A TCP port has no file permissions: every request is authenticated, server.shutdown included.
  const opened = rpc.open(
    label,
    out,
    codec,
    { shutdownNeedsAuth: true },
    { transport: 'ws', maxUnauthenticated: WS_MAX_UNAUTHENTICATED, authDeadlineMs },
    { kind: 'ws', request: req },
  );
  if (opened === undefined) {
    ws.terminate();
    return;
  }
  const { conn, handle, closed } = opened;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    conn.touch();
    binary = isBinary;
    handle(isBinary ? decodeMessage(data) : decodeLine(data), isBinary ? 'msgpack' : 'json');
  });
  ws.on('error', (err) => log.debug('Server', `connection ${label}: ${err.message}`));
  ws.on('close', closed);
}

function withoutNewline(line: string): string {
  return line.endsWith('\n') ? line.slice(0, -1) : line;
}
