/**
 * The browser console's files (`-console`): served on the WebSocket listener at `/`, from the bundle that
 * `scripts/build-console.mjs` writes to `dist/console/`. Only the fixed set of files below exists; a request for
 * anything else is not ours (the listener answers 404, or 426 on `/rpc`), so no path from a request ever reaches
 * the file system and there is nothing to traverse.
 *
 * Every answer carries strict headers: the page may load scripts and styles only from itself and open a WebSocket only
 * to the host that served it. The one exception is `style-src 'nonce-…'`: xterm.js's DOM renderer writes its cell
 * sizes and colours into `<style>` elements it creates at run time, which `'self'` alone blocks; the page stamps a
 * per-response nonce (carried by its own `<script>` tag) on those elements, so no other inline style is allowed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAllowedHost } from '../util/hostport.js';

/** `dist/console/`, beside this module's `dist/src/console/`. */
export const DEFAULT_CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../console');

/** Replaced in index.html by each response's nonce (see the header comment). */
export const NONCE_PLACEHOLDER = '__CSP_NONCE__';

interface Asset {
  readonly file: string;
  readonly type: string;
}

const HTML: Asset = { file: 'index.html', type: 'text/html; charset=utf-8' };

/** URL path → file in the bundle directory. Everything the page loads, nothing else. */
export const CONSOLE_ASSETS: Readonly<Record<string, Asset>> = {
  '/': HTML,
  '/index.html': HTML,
  '/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
  '/xterm.css': { file: 'xterm.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** The files `-console` needs; a start-up check refuses to serve a half-built bundle. */
export const CONSOLE_FILES: readonly string[] = [...new Set(Object.values(CONSOLE_ASSETS).map((a) => a.file))];

/** Fails with what to do when the bundle is missing (a checkout built without `npm run build`). */
export async function checkConsoleBuilt(distDir: string = DEFAULT_CONSOLE_DIR): Promise<void> {
  for (const file of CONSOLE_FILES) {
    try {
      await readFile(path.join(distDir, file));
    } catch (err) {
      throw new Error(`-console: ${path.join(distDir, file)}: ${(err as Error).message} (build the page with npm run build)`);
    }
  }
}

/** True when `origin` is the page this listener served itself: `http://` + the request's (already checked) Host. */
export function isSameOrigin(origin: string, req: IncomingMessage): boolean {
  const host = req.headers.host;
  return host !== undefined && origin.toLowerCase() === `http://${host.toLowerCase()}`;
}

/** The Content-Security-Policy of every console response. `host` is the request's checked Host header. */
export function contentSecurityPolicy(host: string, nonce: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self'",
    "font-src 'self'",
    `connect-src 'self' ws://${host}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

interface Loaded {
  readonly body: Buffer;
  readonly etag: string;
}

/**
 * Returns the listener's plain-HTTP hook (`bound`: the listener's address, as the upgrade's Host check uses it): true when the request was answered here (a console file, 304, 403 for a
 * foreign Host or Origin, 405 for a method other than GET and HEAD, 500 when a file cannot be read), false when the
 * path is not one of the console's.
 */
export function consoleHandler(distDir: string = DEFAULT_CONSOLE_DIR): (req: IncomingMessage, res: ServerResponse, bound: AddressInfo) => boolean {
  // Read once, then kept: the set is fixed (six paths, five files), so this is bounded by the bundle's size.
  const cache = new Map<string, Promise<Loaded>>();
  const load = (file: string): Promise<Loaded> => {
    let p = cache.get(file);
    if (!p) {
      p = readFile(path.join(distDir, file)).then((body) => ({
        body,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      }));
      // A failed read is retried by the next request (the bundle may be rebuilt under a running daemon).
      p.catch(() => cache.delete(file));
      cache.set(file, p);
    }
    return p;
  };

  return (req, res, bound) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://console.invalid').pathname;
    } catch {
      return false;
    }
    const asset = Object.hasOwn(CONSOLE_ASSETS, pathname) ? CONSOLE_ASSETS[pathname] : undefined;
    if (!asset) return false;
    const host = req.headers.host;
    const plain = (status: number, text: string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', ...extra });
      res.end(`${text}\n`);
    };
    if (host === undefined || !isAllowedHost(host, bound)) {
      plain(403, 'forbidden: the Host is neither loopback nor the bound address');
      return true;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !isSameOrigin(origin, req)) {
      plain(403, 'forbidden: cross-origin request');
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(405, 'method not allowed', { allow: 'GET, HEAD' });
      return true;
    }
    const nonce = randomBytes(18).toString('base64');
    const headers: Record<string, string> = {
      'content-type': asset.type,
      'content-security-policy': contentSecurityPolicy(host, nonce),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
    };
    load(asset.file).then(
      ({ body, etag }) => {
        if (asset === HTML) {
          // The page carries this response's nonce, so it is never cached or revalidated.
          const html = Buffer.from(body.toString('utf8').replaceAll(NONCE_PLACEHOLDER, nonce));
          res.writeHead(200, { ...headers, 'cache-control': 'no-store', 'content-length': String(html.length) });
          res.end(req.method === 'HEAD' ? undefined : html);
          return;
        }
        // Unhashed names: always revalidate, answered by a 304 while the bundle is unchanged.
        const cached = { ...headers, 'cache-control': 'no-cache', etag };
        if (req.headers['if-none-match'] === etag) {
          res.writeHead(304, cached);
          res.end();
          return;
        }
        res.writeHead(200, { ...cached, 'content-length': String(body.length) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: Error) => plain(500, `console file unavailable: ${err.message} (rebuild with npm run build)`),
    );
    return true;
  };
}
