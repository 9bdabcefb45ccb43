/**
 * Serving the page (-console): what the listener answers over plain HTTP, against the real daemon, and the handler's
 * own rules over a throwaway directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_FILES, checkConsoleBuilt, consoleHandler, NONCE_PLACEHOLDER } from '../../src/console/assets.js';
import { BIN, Daemon, ROOT, until } from '../helpers/daemon.js';
import { type ConsoleDaemon, startConsoleDaemon } from './browser.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(port: number, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A request line sent as is (no URL normalisation by a client library). */
function raw(port: number, requestLine: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${requestLine}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    s.on('end', () => resolve(text.split('\r\n')[0]!));
    s.on('error', reject);
  });
}

describe('-console on the WebSocket listener', () => {
  let cd: ConsoleDaemon;
  beforeAll(async () => {
    cd = await startConsoleDaemon();
  });
  afterAll(() => cd?.d.stop());

  it('serves the page with its content types and strict headers', async () => {
    const page = await get(cd.port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['cache-control']).toBe('no-store');
    const csp = String(page.headers['content-security-policy']);
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(csp).toBe(
      `default-src 'none'; script-src 'self'; style-src 'self' 'nonce-${nonce}'; img-src 'self'; font-src 'self'; connect-src 'self' ws://127.0.0.1:${cd.port}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    // The page's script tag carries this response's nonce; the next response has another.
    expect(page.body.toString()).toContain(`nonce="${nonce}"`);
    expect(page.body.toString()).not.toContain(NONCE_PLACEHOLDER);
    const again = await get(cd.port, '/index.html');
    expect(again.headers['content-security-policy']).not.toContain(nonce);

    for (const [p, type] of [
      ['/console.js', 'text/javascript; charset=utf-8'],
      ['/console.css', 'text/css; charset=utf-8'],
      ['/xterm.css', 'text/css; charset=utf-8'],
      ['/favicon.svg', 'image/svg+xml'],
    ] as const) {
      const r = await get(cd.port, p);
      expect([p, r.status, r.headers['content-type'], r.headers['cache-control']]).toEqual([p, 200, type, 'no-cache']);
      expect(r.headers['content-length']).toBe(String(r.body.length));
      // Revalidation: the same bytes answer 304 to their ETag.
      const cached = await get(cd.port, p, { 'if-none-match': r.headers.etag! });
      expect(cached.status).toBe(304);
      expect(cached.body.length).toBe(0);
    }
    const head = await get(cd.port, '/console.js', {}, 'HEAD');
    expect([head.status, head.body.length, Number(head.headers['content-length']) > 10_000]).toEqual([200, 0, true]);
  });

  it('answers nothing else: 404 outside its files, no traversal, 405 for other methods, /rpc still 426', async () => {
    for (const p of ['/nope', '/dist/console/console.js', '/console.js/', '/index.htm', '/meta.json', '/console-meta.json'])
      expect([p, (await get(cd.port, p)).status]).toEqual([p, 404]);
    for (const line of [
      'GET /../package.json HTTP/1.1',
      'GET /%2e%2e/%2e%2e/package.json HTTP/1.1',
      'GET /..%2fpackage.json HTTP/1.1',
      'GET //etc/passwd HTTP/1.1',
    ])
      expect([line, await raw(cd.port, line)]).toEqual([line, 'HTTP/1.1 404 Not Found']);
    const post = await get(cd.port, '/', {}, 'POST');
    expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD']);
    expect((await get(cd.port, '/rpc')).status).toBe(426);
    // A query string names the same file.
    expect((await get(cd.port, '/console.css?v=2')).status).toBe(200);
  });

  it('refuses a foreign Host (DNS rebinding) and a cross-origin request with 403', async () => {
    expect((await get(cd.port, '/', { host: 'evil.example' })).status).toBe(403);
    expect((await get(cd.port, '/', { host: `localhost:${cd.port}` })).status).toBe(200);
    expect((await get(cd.port, '/console.js', { origin: 'http://evil.example' })).status).toBe(403);
    expect((await get(cd.port, '/console.js', { origin: `http://127.0.0.1:${cd.port}` })).status).toBe(200);
  });
});

describe('-console flags', () => {
  it('serves nothing without -console (404 as before)', async () => {
    const d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0'] });
    try {
      const m = await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'the listener');
      expect((await get(Number(m[1]), '/')).status).toBe(404);
      expect((await get(Number(m[1]), '/console.js')).status).toBe(404);
    } finally {
      await d.stop();
    }
  });

  it('refuses -console without -ws-addr, saying why', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'claustrum-console-'));
    try {
      const r = spawnSync(process.execPath, [BIN, '-serve', '-foreground', '-socket', path.join(dir, 'rpc.sock'), '-console'], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('-console needs -ws-addr');
      expect(spawnSync(process.execPath, [BIN, '-help'], { encoding: 'utf8' }).stdout).toMatch(/-console\s/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('consoleHandler over a directory', () => {
  let dir: string;
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'claustrum-assets-'));
    writeFileSync(path.join(dir, 'index.html'), `<script nonce="${NONCE_PLACEHOLDER}"></script>`);
    writeFileSync(path.join(dir, 'console.js'), 'one');
    const handle = consoleHandler(dir);
    server = http.createServer((req, res) => {
      if (!handle(req, res, server.address() as net.AddressInfo)) {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a file once it exists, answers 500 with what to do while it does not', async () => {
    const missing = await get(port, '/console.css');
    expect(missing.status).toBe(500);
    expect(missing.body.toString()).toContain('rebuild with npm run build');
    writeFileSync(path.join(dir, 'console.css'), 'body{}');
    expect((await get(port, '/console.css')).body.toString()).toBe('body{}');
  });

  it('checks that every file of the bundle is there before serving', async () => {
    await expect(checkConsoleBuilt(dir)).rejects.toThrow(/-console: .*: ENOENT.*\(build the page with npm run build\)/);
    expect(CONSOLE_FILES).toEqual(['index.html', 'console.js', 'console.css', 'xterm.css', 'favicon.svg']);
    await expect(checkConsoleBuilt(path.join(ROOT, 'dist/console'))).resolves.toBeUndefined();
  });
});
