/**
 * The `-cli-url` download (PROTOCOL.md): an HTTP(S) GET streamed to a blob file beside the install, hashed
 * (SHA-256) on the way past, with `__INSTALL_PROGRESS__` lines, the reference's always-on bounds (30 s dial, 10 s TLS
 * handshake, 60 s for the response headers, a 60 s read-idle abort), the opt-in whole-exchange deadline
 * (`-cli-download-timeout`, D12) and the opt-in size cap (`-max-cli-bytes`, D10). The body is never held in memory:
 * each chunk is written (and awaited) before the next is read, so a slow disk slows the socket instead of growing a
 * buffer.
 *
 * Failures come back as the full cliError text, worded as the reference words them: `download failed with status
 * <code>` and `download stalled: …` and `download interrupted after …` bare, everything else under `download failed: `.
 * The `fetch` stats come back on every path, a failure included.
 */
import { createHash } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { failureText, jsonQuote } from '../protocol/failures.js';
import { BUILD } from '../version.js';
import { BLOB_PREFIX, randomName } from './cli-dir.js';
import { DIAL_TIMEOUT_MS, MAX_REDIRECTS, PROGRESS_INTERVAL_MS, TLS_HANDSHAKE_TIMEOUT_MS } from './bounds.js';
import type { FetchStats } from './facts.js';
import { formatProgress } from './facts.js';
import { osErrorText, pathErrorText } from './oserror.js';

export interface DownloadOptions {
  readonly url: string;
  /** Where the blob goes; if it cannot be created there, `$TMPDIR/claustrum-fetch-<random>`. */
  readonly dir: string;
  /** > 0: fail once the body exceeds this many bytes. */
  readonly capBytes: number;
  /** > 0: the whole exchange must finish within this many ms. */
  readonly deadlineMs: number;
  readonly stallMs: number;
  readonly headerTimeoutMs: number;
  /** Receives each progress line (without its newline). */
  readonly progress: (line: string) => void;
}

export type DownloadOutcome =
  | { readonly ok: true; readonly path: string; readonly sha256: string; readonly bytes: number; readonly total: number }
  | { readonly ok: false; readonly error: string };

export interface Download {
  readonly outcome: DownloadOutcome;
  readonly stats: FetchStats;
}

/** A failure whose text is already the whole cliError. */
class Failure extends Error {}

/** The body ended before its Content-Length (or its final chunk): reported as an interrupted download. */
class PrematureEnd extends Error {}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export async function download(options: DownloadOptions): Promise<Download> {
  const start = performance.now();
  const watch = new BodyWatch(start);
  let deadline: NodeJS.Timeout | undefined;
  let deadlineHit = false;
  const deadlineHandlers = new Set<() => void>();
  if (options.deadlineMs > 0) {
    deadline = setTimeout(() => {
      deadlineHit = true;
      for (const h of deadlineHandlers) h();
    }, options.deadlineMs);
  }
  try {
    const res = await get(
      options,
      (h) => deadlineHandlers.add(h),
      () => deadlineHit,
    );
    const outcome = await receive(
      res,
      options,
      watch,
      (h) => deadlineHandlers.add(h),
      () => deadlineHit,
    );
    return { outcome, stats: watch.stats() };
  } catch (err) {
    const error =
      err instanceof Failure ? err.message : failureText('cliError', 'downloadFailed', { err: err instanceof Error ? err.message : String(err) });
    return { outcome: { ok: false, error }, stats: watch.stats() };
  } finally {
    clearTimeout(deadline);
  }
}

/** Follows redirects to a 200 response, or throws a Failure. */
async function get(options: DownloadOptions, onDeadline: (h: () => void) => void, deadlineHit: () => boolean): Promise<IncomingMessage> {
  let shown = options.url;
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new Failure(failureText('cliError', 'downloadParse', { url: jsonQuote(options.url) }));
  }
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      const err = failureText('download', 'unsupportedScheme', { scheme: jsonQuote(url.protocol.slice(0, -1)) });
      throw new Failure(failureText('cliError', 'downloadGet', { url: jsonQuote(shown), err }));
    }
    const res = await requestOnce(url, shown, options, onDeadline, deadlineHit);
    const location = res.headers.location;
    if (REDIRECTS.has(res.statusCode ?? 0) && location !== undefined) {
      res.destroy();
      if (hop + 1 >= MAX_REDIRECTS) {
        const err = failureText('download', 'tooManyRedirects', { n: MAX_REDIRECTS });
        throw new Failure(failureText('cliError', 'downloadGet', { url: jsonQuote(location), err }));
      }
      url = new URL(location, url);
      shown = url.href;
      continue;
    }
    if (res.statusCode !== 200) {
      res.destroy();
      // The reference's words: no URL (it may be signed), no reason phrase.
      throw new Failure(failureText('cliError', 'downloadStatus', { code: String(res.statusCode) }));
    }
    return res;
  }
}

/** One GET, up to its response headers, under the dial, TLS, header and deadline bounds. */
function requestOnce(
  url: URL,
  shown: string,
  options: DownloadOptions,
  onDeadline: (h: () => void) => void,
  deadlineHit: () => boolean,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const timers: NodeJS.Timeout[] = [];
    let settled = false;
    /** Fails the GET with `err`, Go's net/http words for what went wrong. */
    const fail = (err: string) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      req.destroy();
      reject(new Failure(failureText('cliError', 'downloadGet', { url: jsonQuote(shown), err })));
    };
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(url, {
      method: 'GET',
      agent: false,
      headers: { 'user-agent': `claustrum/${BUILD.version}` },
    });
    const hostPort = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
    onDeadline(() => fail(failureText('download', 'headerDeadline')));
    if (deadlineHit()) fail(failureText('download', 'headerDeadline'));
    req.on('socket', (socket: Socket) => {
      const dial = setTimeout(() => fail(failureText('download', 'dialTimeout', { hostPort })), DIAL_TIMEOUT_MS);
      timers.push(dial);
      socket.once('connect', () => {
        clearTimeout(dial);
        if (url.protocol !== 'https:') return;
        const tls = setTimeout(() => fail(failureText('download', 'tlsTimeout')), TLS_HANDSHAKE_TIMEOUT_MS);
        timers.push(tls);
        (socket as TLSSocket).once('secureConnect', () => clearTimeout(tls));
      });
    });
    // Go's ResponseHeaderTimeout runs from the end of writing the request.
    req.on('finish', () => {
      timers.push(setTimeout(() => fail(failureText('download', 'headerTimeout')), options.headerTimeoutMs));
    });
    req.on('error', (err) => fail(transportText(err, url, hostPort)));
    req.on('response', (res) => {
      if (settled) {
        res.destroy();
        return;
      }
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve(res);
    });
    req.end();
  });
}

/** Go's net/http wording for a failure before the response, as far as Node's error tells it. */
function transportText(err: Error, url: URL, hostPort: string): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
      return failureText('download', 'connect', {
        hostPort: e.address !== undefined ? joinHostPort(e.address, e.port ?? 0) : hostPort,
        reason: osErrorText(err),
      });
    case 'ENOTFOUND':
      return failureText('download', 'noSuchHost', { host: url.hostname });
    case 'EAI_AGAIN':
      return failureText('download', 'serverMisbehaving', { host: url.hostname });
    case 'ECONNRESET':
      return failureText('download', 'connectionReset', { hostPort });
    default:
      if (typeof e.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS/.test(e.code)) {
        return failureText('download', 'certificate', { detail: err.message });
      }
      return osErrorText(err);
  }
}

function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Streams a 200 body to the blob file. */
async function receive(
  res: IncomingMessage,
  options: DownloadOptions,
  watch: BodyWatch,
  onDeadline: (h: () => void) => void,
  deadlineHit: () => boolean,
): Promise<DownloadOutcome> {
  const lengthHeader = res.headers['content-length'];
  const total = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : 0;
  const socket = res.socket;
  const local = socket ? joinHostPort(socket.localAddress ?? '', socket.localPort ?? 0) : '';
  const remote = socket ? joinHostPort(socket.remoteAddress ?? '', socket.remotePort ?? 0) : '';
  let socketError: NodeJS.ErrnoException | undefined;
  socket?.on('error', (err) => (socketError = err));

  let blob: { path: string; handle: FileHandle };
  try {
    blob = await createBlob(options.dir);
  } catch (err) {
    res.destroy();
    throw new Failure(failureText('cliError', 'downloadFailed', { err: (err as Error).message }));
  }

  // The leading line says 0, before any read; then a tick each second, only when the count changed.
  let printed = 0;
  options.progress(formatProgress(0, total));
  const ticker = setInterval(() => {
    if (watch.bytes === printed) return;
    printed = watch.bytes;
    options.progress(formatProgress(printed, total));
  }, PROGRESS_INTERVAL_MS);

  let stalled = false;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      stalled = true;
      watch.pauseUntilNow();
      res.destroy();
    }, options.stallMs);
  };
  onDeadline(() => res.destroy());
  watch.bodyStarted();
  armIdle();

  const hash = createHash('sha256');
  let failure: string | undefined;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      armIdle();
      watch.read(chunk.length);
      if (options.capBytes > 0 && watch.bytes > options.capBytes) {
        failure = failureText('cliError', 'downloadTooLarge', { n: options.capBytes });
        break;
      }
      hash.update(chunk);
      try {
        for (let off = 0; off < chunk.length; ) off += (await blob.handle.write(chunk, off, chunk.length - off)).bytesWritten;
      } catch (err) {
        failure = failureText('cliError', 'downloadFailed', { err: pathErrorText('write', blob.path, err) });
        break;
      }
    }
    if (failure === undefined && !res.complete) throw new PrematureEnd();
  } catch {
    if (deadlineHit()) failure = failureText('cliError', 'downloadBodyDeadline');
    else if (stalled) {
      failure = failureText('cliError', 'downloadStalled', { seconds: Math.floor(options.stallMs / 1000), got: watch.bytes, total });
    } else {
      watch.pauseUntilNow();
      const err =
        socketError?.code !== undefined
          ? failureText('download', 'bodyRead', { local, remote, reason: osErrorText(socketError) })
          : failureText('download', 'unexpectedEof');
      failure = failureText('cliError', 'downloadInterrupted', { got: watch.bytes, total, err });
    }
  } finally {
    clearTimeout(idle);
    clearInterval(ticker);
    res.destroy();
  }
  try {
    await blob.handle.close();
  } catch (err) {
    failure ??= failureText('cliError', 'downloadFailed', { err: pathErrorText('close', blob.path, err) });
  }
  if (failure !== undefined) {
    await unlink(blob.path).catch(() => undefined);
    throw new Failure(failure);
  }
  return { ok: true, path: blob.path, sha256: hash.digest('hex'), bytes: watch.bytes, total };
}

/** `<dir>/.blob-<random>`, else `$TMPDIR/claustrum-fetch-<random>`; created 0600, exclusively. */
async function createBlob(dir: string): Promise<{ path: string; handle: FileHandle }> {
  try {
    const p = path.join(dir, BLOB_PREFIX + randomName());
    return { path: p, handle: await open(p, 'wx', 0o600) };
  } catch {
    const p = path.join(tmpdir(), `claustrum-fetch-${randomName()}`);
    try {
      return { path: p, handle: await open(p, 'wx', 0o600) };
    } catch (err) {
      throw new Error(pathErrorText('createtemp', path.join(tmpdir(), 'claustrum-fetch-*'), err));
    }
  }
}

/** The `fetch` stats: bytes read, the whole exchange's duration, and the longest gap between reads. */
class BodyWatch {
  bytes = 0;
  #longest = 0;
  #last: number | undefined;
  #hadRead = false;
  readonly #start: number;

  constructor(start: number) {
    this.#start = start;
  }

  bodyStarted(): void {
    this.#last = performance.now();
  }

  read(n: number): void {
    const now = performance.now();
    // The wait for the first byte is not a pause between reads.
    if (this.#hadRead && this.#last !== undefined) this.#longest = Math.max(this.#longest, now - this.#last);
    this.#hadRead = true;
    this.#last = now;
    this.bytes += n;
  }

  /** A stall or a broken connection: the wait since the last byte counts as a pause. */
  pauseUntilNow(): void {
    if (this.#last !== undefined) this.#longest = Math.max(this.#longest, performance.now() - this.#last);
  }

  stats(): FetchStats {
    return { bytes: this.bytes, ms: Math.floor(performance.now() - this.#start), longestPauseMs: Math.floor(this.#longest) };
  }
}
