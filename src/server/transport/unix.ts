/**
 * The AF_UNIX transport: a socket that is mode 0600 from the moment it exists, inside a directory of mode 0700, and
 * the byte I/O of its connections (the first byte picks the wire format for both directions).
 *
 * Node's listen() creates the socket file under the process umask and offers no mode option, and a chmod afterwards
 * leaves a window (nodejs/node#724), so the umask is narrowed around the bind itself. The directory is the real
 * confinement: a missing one is created 0700; an existing one owned by someone else or writable by anyone else, or
 * one with an ancestor another user could replace it through, is refused (src/daemon/trust.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, link, lstat, stat, unlink, chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { assertTrustedDirectory, UntrustedPathError } from '../../daemon/trust.js';
import type { Logger } from '../../log/logger.js';
import { isMapHeader, MessageSplitter } from '../../protocol/msgpack.js';
import { LineSplitter, MAX_LINE_BYTES } from '../../protocol/ndjson.js';
import { errnoText, errorCode } from '../../util/errno.js';
import { decodeMessage, msgpackCodec } from '../rpc/codec/msgpack.js';
import { decodeLine, ndjsonCodec } from '../rpc/codec/ndjson.js';
import type { Outbound } from '../rpc/connection.js';
import { NOT_A_REQUEST } from '../rpc/request.js';
import { listenInherited } from './inherited.js';
import type { RpcServer } from '../rpc/server.js';

/** sun_path holds 108 bytes on Linux, one of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export class SocketSetupError extends Error {}

/** Creates the socket's directory if missing (0700) and checks an existing one. */
export async function prepareSocketDirectory(socketPath: string): Promise<string> {
  const dir = path.dirname(path.resolve(socketPath));
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new SocketSetupError(`socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes; the limit is ${MAX_SOCKET_PATH_BYTES}`);
  }
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new SocketSetupError(`mkdir ${dir}: ${errnoText(errorCode(err))}`);
  }
  // Owner, mode and every ancestor (src/daemon/trust.ts): a directory another user can write is never used.
  try {
    await assertTrustedDirectory(dir);
  } catch (err) {
    throw err instanceof UntrustedPathError ? new SocketSetupError(err.message) : err;
  }
  return dir;
}

/**
 * Removes a socket file left by a daemon that is gone (nothing accepts on it). Refuses to touch a path that is not
 * a socket, or a socket someone still serves.
 */
export async function clearStaleSocket(socketPath: string): Promise<void> {
  let st;
  try {
    st = await lstat(socketPath);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw new SocketSetupError(`stat ${socketPath}: ${errnoText(errorCode(err))}`);
  }
  if (!st.isSocket()) throw new SocketSetupError(`${socketPath} exists and is not a socket; refusing to replace it`);
  if (await accepts(socketPath)) throw new SocketSetupError(`another server is already listening on ${socketPath}`);
  await unlink(socketPath).catch(() => {});
}

/** True when something accepts a connection on the socket within `timeoutMs`. */
export function accepts(socketPath: string, timeoutMs = 1000): Promise<boolean> {
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

/**
 * Binds `server` to the socket with mode 0600 from the first instant, and verifies the mode afterwards.
 *
 * Node unlinks the path a server bound when that server closes (libuv's uv__pipe_close), whatever file is there
 * by then: a socket path that was unlinked and re-created by someone else, or replaced by another file, would be
 * deleted by our shutdown. So the server binds a private temporary name beside the socket and the socket is
 * hard-linked into place (link, unlike rename, never replaces an existing file). What close() unlinks is then the
 * temporary name, long gone; the real path is removed by the daemon only if it is still its socket. A path too
 * long for a temporary name beside it is bound directly.
 */
export async function listenUnix(server: net.Server, socketPath: string): Promise<void> {
  const temp = [`.${path.basename(socketPath)}.${randomBytes(4).toString('hex')}`, `.${randomBytes(3).toString('hex')}`]
    .map((name) => path.join(path.dirname(socketPath), name))
    .find((p) => Buffer.byteLength(p) <= MAX_SOCKET_PATH_BYTES);
  const bindPath = temp ?? socketPath;
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(bindPath, () => {
        server.off('error', onError);
        resolve();
      });
    });
  } catch (err) {
    throw new SocketSetupError(`listen ${socketPath}: ${errnoText(errorCode(err))}`);
  } finally {
    process.umask(previous);
  }
  if (temp !== undefined) {
    try {
      await link(temp, socketPath);
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve())); // unlinks the temporary name
      const code = errorCode(err);
      throw new SocketSetupError(`listen ${socketPath}: ${errnoText(code === 'EEXIST' ? 'EADDRINUSE' : code)}`);
    }
    await unlink(temp).catch(() => {});
  }
  const st = await stat(socketPath);
  if ((st.mode & 0o077) !== 0) await chmod(socketPath, 0o600);
}

/** Most simultaneous connections; further ones are closed at accept. */
export const MAX_CONNECTIONS = 1024;
/**
 * Connections that have not authenticated yet, at once, and how long each may stay so. Only the socket's owner can
 * connect here (mode 0600 in a 0700 directory), so the bounds are loose: an interactive `socat` has a minute to send
 * its first request. `server.shutdown` without a token does not count as authenticating.
 */
export const UNIX_MAX_UNAUTHENTICATED = 256;
export const UNIX_AUTH_DEADLINE_MS = 60_000;

export interface UnixTransportOptions {
  readonly socketPath: string;
  readonly maxLineBytes?: number;
  readonly maxConnections?: number;
  /** UNIX_AUTH_DEADLINE_MS unless given (tests). */
  readonly authDeadlineMs?: number;
  /** Serve a listening socket inherited on this descriptor (systemd socket activation) instead of binding. */
  readonly listenFd?: number;
}

/** The Unix socket listener and its connections' byte I/O. */
export class UnixTransport {
  readonly #rpc: RpcServer;
  readonly #log: Logger;
  readonly #options: UnixTransportOptions;
  readonly #maxLine: number;
  readonly #server: net.Server;

  constructor(rpc: RpcServer, log: Logger, options: UnixTransportOptions) {
    this.#rpc = rpc;
    this.#log = log;
    this.#options = options;
    this.#maxLine = options.maxLineBytes ?? MAX_LINE_BYTES;
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    this.#server.maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
    this.#server.on('drop', () =>
      rpc.refused('connections', `refusing a unix connection: ${this.#server.maxConnections} connections already (the most allowed)`),
    );
    this.#server.on('error', (err) => this.#log.error('Server', `listener error: ${err.message}`));
  }

  /** Prepares the directory, replaces a stale socket, and listens. */
  async listen(): Promise<void> {
    const { socketPath, listenFd } = this.#options;
    if (listenFd !== undefined) await listenInherited(this.#server, listenFd);
    else {
      await prepareSocketDirectory(socketPath);
      await clearStaleSocket(socketPath);
      await listenUnix(this.#server, socketPath);
    }
    this.#log.info('Server', `listening on ${socketPath}`);
  }

  /** Stops accepting; resolves once every connection is gone. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    const label = this.#rpc.nextLabel('unix');
    const out: Outbound = {
      write: (data, flushed) => {
        if (!socket.destroyed) socket.write(data, flushed);
      },
      get backlog() {
        return socket.writableLength;
      },
      end: () => socket.end(),
      destroy: () => socket.destroy(),
      pauseInput: () => socket.pause(),
      resumeInput: () => socket.resume(),
    };
    const opened = this.#rpc.open(
      label,
      out,
      ndjsonCodec,
      { shutdownNeedsAuth: false },
      { transport: 'unix', maxUnauthenticated: UNIX_MAX_UNAUTHENTICATED, authDeadlineMs: this.#options.authDeadlineMs ?? UNIX_AUTH_DEADLINE_MS },
      { kind: 'unix', socket },
    );
    if (opened === undefined) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    const { conn, handle, closed } = opened;

    // The first byte picks the wire format for both directions: a MessagePack map header, or NDJSON.
    let feed: ((chunk: Buffer) => boolean) | undefined;
    let atEnd: (() => void) | undefined;
    const chooseFormat = (first: number) => {
      if (isMapHeader(first)) {
        conn.useCodec(msgpackCodec);
        const splitter = new MessageSplitter(this.#maxLine);
        feed = (chunk) => splitter.push(chunk, (m) => handle(decodeMessage(m), 'msgpack'));
        // A value cut off by EOF cannot be decoded: it is answered as a parse error.
        atEnd = () => {
          if (splitter.pendingBytes > 0) handle(NOT_A_REQUEST, 'msgpack');
        };
      } else {
        const splitter = new LineSplitter(this.#maxLine);
        const onLine = (line: Buffer) => handle(decodeLine(line));
        feed = (chunk) => splitter.push(chunk, onLine);
        atEnd = () => splitter.end(onLine);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      conn.touch(); // every read counts, a partial request included (reference)
      if (feed === undefined) chooseFormat(chunk[0]!);
      if (!feed!(chunk)) {
        // Reference behaviour: an over-long request closes the connection with no reply.
        this.#log.refusal('request-too-long', 'Server', `closing connection ${label}: request longer than ${this.#maxLine} bytes`);
        socket.destroy();
      }
    });
    socket.on('end', () => {
      atEnd?.();
      conn.inputEnded();
    });
    socket.on('error', (err) => this.#log.debug('Server', `connection ${label}: ${err.message}`));
    socket.on('close', closed);
  }
}
