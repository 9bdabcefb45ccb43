/**
 * The `-serve` mode: launcher, foreground daemon, or the detached daemon a launcher started. cmd/ only turns flags
 * into these options.
 */
import { createWriteStream, fstat } from 'node:fs';
import { stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { AuditServeOptions } from '../audit/cli.js';
import { DAEMON_CHILD_ENV, launchDaemon, READY_FD_ENV, TOKEN_PIPE_ENV } from '../daemon/launcher.js';
import { LOG_FILE, openLogFile } from '../daemon/logfile.js';
import { runDirectory } from '../protocol/paths.js';
import { describeReplacement, pendingReplacement } from '../daemon/replace.js';
import { runDaemon, type TokenSource } from '../daemon/serve.js';
import { ensureSocketDirectory } from '../daemon/socketpath.js';
import { consumeTokenFile, readTokenFd } from '../daemon/token.js';
import { type LogFormat, Logger, parseLogLevel } from '../log/logger.js';
import type { WebSocketOptions } from '../server/index.js';
import { bindsAllInterfaces } from '../util/hostport.js';

export interface ServeModeOptions {
  /** Absolute socket path. */
  readonly socketPath: string;
  readonly foreground: boolean;
  readonly tokenFile: string;
  /** -1: none. */
  readonly tokenFd: number;
  /** The serve flags a launcher hands on to the daemon it starts (all but the token sources and the mode). */
  readonly forward: readonly string[];
  readonly stallTimeoutMs: number;
  readonly maxExtractBytes: number;
  readonly gitTimeoutMs: number;
  readonly keepChildren: boolean;
  readonly replayBudgetBytes: number;
  readonly loginPath: boolean;
  readonly metricsAddr: string | undefined;
  readonly websocket: WebSocketOptions | undefined;
  /** `-write-token` as given; undefined: write daemon.token unless the token came from -token-fd. */
  readonly writeToken: boolean | undefined;
  readonly drainTimeoutMs: number;
  readonly idleExitMs: number;
  readonly logFormat: LogFormat;
  /** `-log-file`: a path, `-` for stderr, or undefined for the default (stderr in the foreground, else remote-server.log). */
  readonly logFile: string | undefined;
  /** `-console`: serve the browser console on the WebSocket listener (requires `websocket`). */
  readonly console?: boolean;
  /** `-audit` and its flags; undefined while the audit is off. */
  readonly audit?: AuditServeOptions;
}

/** Test-only shortenings of fixed daemon timings (documented in PROTOCOL.md as such, not in -help). */
function testTimings(): {
  idleTimeoutMs?: number;
  orphanProbeMs?: number;
  orphanGraceMs?: number;
  authDeadlineMs?: number;
  replayCapBytes?: number;
} {
  const n = (name: string) => {
    const v = Number(process.env[name]);
    return Number.isFinite(v) && v > 0 ? v : undefined;
  };
  return {
    idleTimeoutMs: n('CLAUSTRUM_TEST_IDLE_TIMEOUT_MS'),
    orphanProbeMs: n('CLAUSTRUM_TEST_ORPHAN_PROBE_MS'),
    orphanGraceMs: n('CLAUSTRUM_TEST_ORPHAN_GRACE_MS'),
    authDeadlineMs: n('CLAUSTRUM_TEST_AUTH_DEADLINE_MS'),
    replayCapBytes: n('CLAUSTRUM_TEST_REPLAY_CAP_BYTES'),
  };
}

export async function runServeMode(o: ServeModeOptions): Promise<number> {
  if (o.console && !o.websocket) {
    process.stderr.write('claustrum: -console needs -ws-addr: the page is served on the WebSocket listener (e.g. -ws-addr 127.0.0.1:7777)\n');
    return 2;
  }
  const detached = process.env[DAEMON_CHILD_ENV] === '1';
  if (!detached) {
    try {
      await ensureSocketDirectory(o.socketPath);
    } catch (err) {
      process.stderr.write(`claustrum: ${(err as Error).message}\n`);
      return 1;
    }
    await announce(o);
    if (!o.foreground) return launch(o);
  }

  // A daemon outlives whoever started it: a closed terminal or pipe behind stdout or stderr raises EPIPE, which
  // must cost nothing. (Without these listeners the error is an uncaught exception whose log line raises another.)
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const log = new Logger(parseLogLevel(process.env.CLAUSTRUM_LOG_LEVEL), undefined, o.logFormat);
  let logTarget: string | null = 'stderr';
  if (detached) {
    logTarget = await detachedLogTarget(o);
  } else if (o.logFile !== undefined && o.logFile !== '-') {
    const opened = await openLogFile(path.resolve(o.logFile));
    if ('declined' in opened) {
      process.stderr.write(`claustrum: -log-file: ${opened.declined}\n`);
      return 1;
    }
    const stream = createWriteStream('', { fd: opened.handle.fd, autoClose: false });
    stream.on('error', () => {});
    log.setSink((line) => void stream.write(line));
    logTarget = opened.path;
  }

  let tokenSource: TokenSource = { kind: 'generate' };
  let report: ((msg: object) => void) | undefined;
  const keepDescriptors: number[] = [];
  if (detached) {
    const readyFd = Number(process.env[READY_FD_ENV]);
    const tokenPipe = process.env[TOKEN_PIPE_ENV];
    for (const k of [DAEMON_CHILD_ENV, READY_FD_ENV, TOKEN_PIPE_ENV]) delete process.env[k];
    if (tokenPipe !== undefined) tokenSource = { kind: 'fd', fd: Number(tokenPipe) };
    if (Number.isInteger(readyFd) && readyFd > 2) {
      keepDescriptors.push(readyFd);
      // A launcher killed during start-up has closed its end: the report fails with EPIPE, which must cost nothing
      // (without this listener it was an uncaught exception that took the new daemon down).
      report = (msg) =>
        new net.Socket({ fd: readyFd, readable: false, writable: true })
          .on('error', (err) => log.warn('daemon', `readiness report not delivered (the launcher is gone): ${err.message}`))
          .end(`${JSON.stringify(msg)}\n`);
    }
  } else if (o.tokenFile) {
    tokenSource = { kind: 'file', path: o.tokenFile };
  } else if (o.tokenFd >= 0) {
    tokenSource = { kind: 'fd', fd: o.tokenFd };
  }

  let fatal = false;
  process.on('uncaughtException', (err) => {
    // State may be inconsistent: log once, run the graceful teardown (it kills the children), exit non-zero. A
    // failure during that teardown must not start another one.
    if (fatal) return;
    fatal = true;
    log.error('daemon', `uncaught exception: ${err.stack ?? err.message}`);
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => process.exit(1), 5000).unref();
  });
  process.on('unhandledRejection', (reason) =>
    log.error('daemon', `unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`),
  );

  try {
    const code = await runDaemon({
      socketPath: o.socketPath,
      tokenSource,
      flow: { stallTimeoutMs: o.stallTimeoutMs },
      workspace: { maxExtractBytes: Math.max(0, o.maxExtractBytes), gitTimeoutMs: Math.max(0, o.gitTimeoutMs) },
      keepChildren: o.keepChildren,
      replayBudgetBytes: o.replayBudgetBytes,
      loginPath: o.loginPath,
      metricsAddr: o.metricsAddr,
      websocket: o.console && o.websocket ? await withConsole(o.websocket) : o.websocket,
      log,
      print: detached ? undefined : (line) => process.stdout.write(`${line}\n`),
      report,
      keepDescriptors,
      timings: testTimings(),
      writeToken: o.writeToken ?? o.tokenFd < 0,
      drainTimeoutMs: o.drainTimeoutMs,
      idleExitMs: o.idleExitMs,
      logTarget,
      audit: o.audit,
    });
    return fatal ? 1 : code;
  } catch (err) {
    process.stderr.write(`claustrum: ${(err as Error).message}\n`);
    return 1;
  }
}

/** The listener's options with the console page served and its own origin accepted; fails when the bundle is missing. */
async function withConsole(ws: WebSocketOptions): Promise<WebSocketOptions> {
  const { checkConsoleBuilt, consoleHandler, isSameOrigin } = await import('../console/assets.js');
  await checkConsoleBuilt();
  return { ...ws, httpHandler: consoleHandler(), acceptOrigin: isSameOrigin };
}

/** The launcher reads the token itself, so a bad source is reported at once and the token travels by pipe only. */
async function launch(o: ServeModeOptions): Promise<number> {
  let token: string | undefined;
  try {
    if (o.tokenFile) token = (await consumeTokenFile(o.tokenFile)).token;
    else if (o.tokenFd >= 0) token = await readTokenFd(o.tokenFd);
  } catch (err) {
    process.stderr.write(`claustrum: ${(err as Error).message}\n`);
    return 1;
  }
  return launchDaemon({
    socketPath: o.socketPath,
    token,
    // Decided here, where the token source is known: the daemon only sees the launcher's pipe.
    forward: [...o.forward, `-write-token=${o.writeToken ?? o.tokenFd < 0}`],
    print: (line) => process.stdout.write(`${line}\n`),
    printError: (line) => process.stderr.write(`${line}\n`),
    ...(o.logFile !== undefined ? { logFile: path.resolve(o.logFile) } : {}),
  });
}

/** Before anything starts: what is being replaced, and an unauthenticated metrics listener open to the network. */
async function announce(o: ServeModeOptions): Promise<void> {
  const replaced = await pendingReplacement(o.socketPath);
  if (replaced) process.stderr.write(`claustrum: ${describeReplacement(o.socketPath, replaced)}\n`);
  if (o.metricsAddr !== undefined && bindsAllInterfaces(o.metricsAddr)) {
    process.stderr.write(
      `claustrum: warning: -metrics-addr ${o.metricsAddr} listens on every interface, and /metrics, /healthz, /readyz and /info have no authentication; bind a loopback or private address unless the network is yours\n`,
    );
  }
}

/** The detached daemon's log is its stderr, opened by the launcher: name it only if it really is that file. */
async function detachedLogTarget(o: ServeModeOptions): Promise<string | null> {
  const file = o.logFile !== undefined ? path.resolve(o.logFile) : path.join(runDirectory(o.socketPath), LOG_FILE);
  const [mine, named] = await Promise.all([
    new Promise<import('node:fs').Stats | undefined>((resolve) => fstat(2, (err, st) => resolve(err ? undefined : st))),
    stat(file).catch(() => undefined),
  ]);
  return mine && named && mine.ino === named.ino && mine.dev === named.dev ? file : null;
}
