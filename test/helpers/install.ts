/**
 * Helpers for the -install / -probe-cli tests: stand-in CLIs (small shell scripts), zstd blobs made by the real
 * `zstd` tool, a loopback HTTP server, and a runner for the built executable.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { InstallFacts } from '../../src/install/facts.js';
import { runCli, type RunResult } from './cli.js';

/** Runs `claustrum <args>` (the built dist/) to completion, asynchronously so a server in this process keeps serving. */
export function claustrum(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runCli(args, { env });
}

export type Facts = InstallFacts;

/** The facts of a run, checking that stdout holds exactly one facts line and that it is the last line. */
export function factsOf(r: RunResult): Facts {
  const lines = r.stdout.split('\n');
  if (lines.at(-1) !== '') throw new Error(`stdout does not end in a newline: ${JSON.stringify(r.stdout)}`);
  const results = lines.filter((l) => l.startsWith('__INSTALL_RESULT__'));
  if (results.length !== 1) throw new Error(`want one facts line, got ${results.length}: ${r.stdout}`);
  if (lines.at(-2) !== results[0]) throw new Error(`the facts line is not last: ${r.stdout}`);
  return JSON.parse(results[0]!.slice('__INSTALL_RESULT__'.length)) as Facts;
}

/** The `__INSTALL_PROGRESS__` objects of a run, in order. */
export function progressOf(r: RunResult): { phase: string; bytes: number; total?: number }[] {
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('__INSTALL_PROGRESS__'))
    .map((l) => JSON.parse(l.slice('__INSTALL_PROGRESS__'.length)) as { phase: string; bytes: number; total?: number });
}

/** A stand-in CLI: a /bin/sh script with `body`, mode 0755. */
export function writeCli(file: string, body: string): string {
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  chmodSync(file, 0o755);
  return file;
}

/** `file` compressed by the zstd tool to `out` (extra flags allowed); returns the blob's bytes and SHA-256. */
export function zstd(file: string, out: string, ...flags: string[]): { path: string; bytes: Buffer; sha256: string } {
  execFileSync('zstd', ['-q', '-f', ...flags, file, '-o', out]);
  const bytes = readFileSync(out);
  return { path: out, bytes, sha256: sha256(bytes) };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Sets a path's atime and mtime to `ageMs` ago. */
export function age(p: string, ageMs: number): void {
  const t = new Date(Date.now() - ageMs);
  utimesSync(p, t, t);
}

export function names(dir: string): string[] {
  return readdirSync(dir).sort();
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A loopback HTTP server; `requests` counts what it was asked. */
export class TestServer {
  requests = 0;
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  #handler: Handler;

  private constructor(handler: Handler) {
    this.#handler = handler;
    this.#server = http.createServer((req, res) => {
      this.requests++;
      this.#handler(req, res);
    });
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(handler: Handler): Promise<TestServer> {
    const s = new TestServer(handler);
    await new Promise<void>((resolve) => s.#server.listen(0, '127.0.0.1', resolve));
    return s;
  }

  set handler(h: Handler) {
    this.#handler = h;
  }

  url(p = '/cli.zst'): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${p}`;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Serves `body` with a Content-Length, in one write. */
export function serveBytes(body: Buffer): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  };
}
