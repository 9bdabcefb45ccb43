/**
 * The serving daemon's life-cycle (PROTOCOL.md): token, lock, orphan reap, listen, `daemon.token`,
 * readiness, metrics, the orphan self-probe, signals, and the graceful teardown.
 *
 * Start-up order, as the reference's: claim `daemon.lock` (evicting a verified predecessor), reap the recorded
 * children of dead daemons, replace a stale socket, bind, complete the lock record, persist the token.
 */
import { randomBytes } from 'node:crypto';
import type { AuditServeOptions } from '../audit/cli.js';
import { auditInfo } from '../audit/info.js';
import { AuditRecorder, exitObserver } from '../audit/recorder.js';
import { stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type http from 'node:http';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { readLoginShellPath } from '../process/loginpath.js';
import { Supervisor } from '../process/supervisor.js';
import { DEFAULT_REPLAY_BUDGET_BYTES } from '../replay/budget.js';
import type { InfoResult } from '../protocol/messages.js';
import { runDirectory, TOKEN_FILE } from '../protocol/paths.js';
import {
  type FlowLimits,
  infoMethods,
  loadWebSocketTransport,
  prepareSocketDirectory,
  RpcServer,
  type RpcOptions,
  UnixTransport,
  type WebSocketListener,
  type WebSocketOptions,
} from '../server/index.js';
import { formatDuration } from '../util/duration.js';
import { formatAddress } from '../util/hostport.js';
import { BUILD } from '../version.js';
import { takeActivatedSocket, type ActivatedSocket } from './activation.js';
import { startDrain, type Drain } from './drain.js';
import { DaemonHealth, healthRoutes, type PublicInfo } from './health.js';
import { watchIdle, type IdleWatch } from './idle.js';
import type { ReadyMessage } from './launcher.js';
import { LockError, RunDirLock } from './lock.js';
import { closeInheritedDescriptors } from './descriptors.js';
import { reapOrphans } from './orphans.js';
import { KeeperLink } from '../keeper/link.js';
import { installSignalHandlers } from './signals.js';
import { consumeTokenFile, type FileIdentity, generateToken, identify, persistToken, readTokenFd, removeIfOwned, TokenError } from './token.js';

export type TokenSource =
  | { readonly kind: 'value'; readonly token: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'fd'; readonly fd: number }
  | { readonly kind: 'generate' };

/** The orphan self-probe: how often the socket path is checked, and how long without a client before exiting. */
export const ORPHAN_PROBE_INTERVAL_MS = 60_000;
export const ORPHAN_GRACE_MS = 10 * 60_000;

export interface ServeConfig {
  /** Absolute socket path. */
  readonly socketPath: string;
  readonly tokenSource: TokenSource;
  readonly flow: Partial<FlowLimits>;
  /** files.* and git.* limits: `-max-extract-bytes`, `-git-timeout`. */
  readonly workspace?: RpcOptions['workspace'];
  readonly keepChildren: boolean;
  /** `-replay-budget`; the default when absent. */
  readonly replayBudgetBytes?: number;
  readonly loginPath: boolean;
  readonly metricsAddr: string | undefined;
  /** Serve WebSocket too (`-ws-addr`, `-ws-allow-origin`). */
  readonly websocket?: WebSocketOptions;
  readonly log: Logger;
  /** Foreground: the banner and how to reach the daemon go here (stdout). */
  readonly print?: (line: string) => void;
  /** Detached: the readiness report goes here (the launcher's pipe). */
  readonly report?: (msg: ReadyMessage) => void;
  /** Inherited descriptors the daemon uses and must not close (its launcher's readiness pipe). */
  readonly keepDescriptors?: readonly number[];
  /** Test-only shortenings (see PROTOCOL.md); production uses the constants. */
  readonly timings?: { idleTimeoutMs?: number; orphanProbeMs?: number; orphanGraceMs?: number; authDeadlineMs?: number; replayCapBytes?: number };
  /** Write `daemon.token` (default true). False for a token from `-token-fd` without `-write-token`. */
  readonly writeToken?: boolean;
  /** `-drain-timeout`: SIGTERM drains for up to this long first (0: off). */
  readonly drainTimeoutMs?: number;
  /** `-idle-exit`: shut down after this long with no live process and no connection (0: off). */
  readonly idleExitMs?: number;
  /** Where the log goes, for `server.info`: a path, `stderr`, or null for none. */
  readonly logTarget?: string | null;
  /** `-audit`: the audit trail's file and limits (src/audit/); undefined while it is off. */
  readonly audit?: AuditServeOptions;
}

/** Serves until a graceful shutdown; resolves with the exit code. A start-up failure is reported and rejects. */
export async function runDaemon(cfg: ServeConfig): Promise<number> {
  const { log, socketPath } = cfg;
  // Never read, never inherited by children (the reference unsets it too).
  delete process.env.CLAUDE_RPC_TOKEN;
  const runDir = runDirectory(socketPath);
  const instanceId = randomBytes(16).toString('hex');

  let lock: RunDirLock | undefined;
  let audit: AuditRecorder | undefined;
  let server: RpcServer | undefined;
  let unix: UnixTransport | undefined;
  let websocket: WebSocketListener | undefined;
  let socketId: FileIdentity | undefined;
  let teardown: Promise<void> | undefined;
  // Set once the daemon is up; a shutdown asked for before that waits for the start (see `signalled`).
  let shutdown = (): Promise<void> => Promise.resolve();
  let finish!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (finish = resolve));

  // Signals are handled from the first moment: a signal during start-up waits for the start, then shuts down.
  let started = false;
  let signalled: string | undefined;
  const drainTimeoutMs = cfg.drainTimeoutMs ?? 0;
  let drain: Drain | undefined;
  const health = new DaemonHealth();
  // (src/daemon/signals.ts: which signals shut down, which are ignored, and why SIGUSR1 must be caught.)
  installSignalHandlers(
    log,
    cfg.keepChildren,
    (sig) => {
      // A second signal during the teardown does not abort it: the handler stays, the teardown is idempotent.
      signalled = sig;
      if (started) void shutdown();
    },
    (sig) => {
      if (sig !== 'SIGTERM' || drainTimeoutMs <= 0 || !started || drain !== undefined || teardown !== undefined) return false;
      log.info('daemon', `received terminated; draining for up to ${formatDuration(drainTimeoutMs)} (-drain-timeout), then shutting down`);
      health.draining();
      drain = startDrain(drainTimeoutMs, () => server?.supervisor.liveCount ?? 0, log);
      void drain.done.then(() => shutdown());
      return true;
    },
  );

  let metricsServer: http.Server | undefined;
  let activated: ActivatedSocket | undefined;
  let keeperLink: KeeperLink | undefined;
  /** Superseded by a daemon that takes the processes over. */
  let handover = false;
  /** The keeper went away under this daemon. */
  let keeperLost = false;
  // Ends the login-shell probe if the daemon stops first.
  const probeAbort = new AbortController();
  try {
    // First: the variables must be gone before any child (the login-shell probe) could inherit them.
    activated = await takeActivatedSocket(socketPath);
    // A generated token waits for the keeper: a daemon taking over from another serves with the same token.
    const given = cfg.tokenSource.kind === 'generate' ? undefined : await resolveToken(cfg.tokenSource, log);
    if (cfg.writeToken === false && cfg.tokenSource.kind === 'generate') {
      throw new TokenError('a generated token that is not written to daemon.token is known to nobody: drop -write-token=false or give -token-fd');
    }
    // After the token descriptor is consumed, before any child exists (src/daemon/descriptors.ts).
    await closeInheritedDescriptors(new Set(cfg.keepDescriptors ?? []), log);
    await prepareSocketDirectory(socketPath);
    // The keeper first: saying hello makes this daemon its front, so a daemon running here is told it is superseded
    // (it exits without touching the processes) before the lock below evicts it.
    const opened = await KeeperLink.open({
      runDir,
      instance: instanceId,
      build: BUILD.version,
      token: given,
      budgetBytes: cfg.replayBudgetBytes ?? DEFAULT_REPLAY_BUDGET_BYTES,
      log,
    });
    keeperLink = opened.link;
    const hello = opened.hello;
    const token = given ?? hello.token ?? generateToken();
    if (given === undefined) keeperLink.notify({ t: 'token', token });
    if (hello.superseded) log.info('daemon', `taking over from daemon ${hello.superseded}`);
    lock = await RunDirLock.acquire(socketPath, log);
    // The audit trail, before anything can be asked of the daemon: a log that cannot be written stops the start.
    if (cfg.audit) audit = await AuditRecorder.open({ ...cfg.audit, version: BUILD.version, log, token });
    // In the background from now on, so the first spawn waits only for what is left of the probe's 4 s cap.
    const loginPath = cfg.loginPath ? readLoginShellPath(process.env, undefined, probeAbort.signal) : undefined;
    // The data path, built in order: supervisor → metrics → RPC server(supervisor) → transports.
    let idle: IdleWatch | undefined;
    const supervisor = new Supervisor(log, {
      instance: instanceId,
      replayBudgetBytes: cfg.replayBudgetBytes,
      // Test-only: a small per-process cap makes a terminal's start evictable without 16 MiB of output.
      replayCapBytes: cfg.timings?.replayCapBytes,
      observer: {
        // The live count drops once the exit frame's waiters ran: look at it a turn later.
        exited: () => {
          idle?.touch();
          if (drain) setImmediate(() => drain?.check());
        },
      },
      // Started with the daemon; the first spawn waits for what is left of it.
      childPath: loginPath ? () => loginPath : undefined,
    });
    // Loaded only when asked for: prom-client and node:http add memory, and Node's spawn cost grows with it.
    const metricsModule = cfg.metricsAddr !== undefined ? await import('../metrics/metrics.js') : undefined;
    const metrics: Metrics | undefined = metricsModule
      ? new metricsModule.Metrics({ supervisor, openConnections: () => server?.connectionCount ?? 0, audit: () => audit?.stats() })
      : undefined;
    if (metrics) supervisor.addObserver(metrics);
    if (audit) {
      supervisor.addObserver(exitObserver(audit));
      // Until the adoption below settles: the previous daemon may have recorded the adopted processes' exits.
      audit.holdExits();
    }
    const replayBytes = () => supervisor.budget.used;
    const publicInfo = (): PublicInfo => ({
      version: BUILD.version,
      ...(BUILD.commit ? { commit: BUILD.commit } : {}),
      instance: instanceId,
      startedAt: new Date(server?.startedAt ?? Date.now()).toISOString(),
      state: health.phase,
      processes: { live: supervisor.liveCount, retained: supervisor.retainedCount },
      connections: server?.connectionCount ?? 0,
      replayBytes: replayBytes(),
      ...(audit ? { audit: auditInfo(audit.stats()) } : {}),
    });
    // Up before the reap, so /readyz says "starting" while it runs; after the lock, whose predecessor held the port.
    if (metricsModule && cfg.metricsAddr !== undefined) {
      metricsServer = await metricsModule.serveMetrics(cfg.metricsAddr, metrics, log, healthRoutes(health, publicInfo));
    }
    // Children whose keeper died (their records name it): the keeper that runs now is alive, so its are spared.
    const reaped = await reapOrphans(runDir, log);
    if (reaped > 0) log.info('daemon', `reaped ${reaped} orphaned child process(es) of dead keepers`);
    // Set before the adoption takes the link's notices: a supersession or a keeper lost during the rest of the
    // start-up (the reap, the adoption, the listeners: seconds under load) ends this daemon once it is up, as a
    // signal does, instead of leaving it serving on a link that no longer works.
    supervisor.onSuperseded = (by) => {
      log.info('daemon', `daemon ${by} takes over the processes; handing over and exiting`);
      handover = true;
      if (started) void shutdown();
    };
    supervisor.onKeeperLost = (why) => {
      if (teardown) return;
      log.error(
        'daemon',
        `lost the keeper (${why}): its children lost their output's reader; exiting so that the next start reaps them and keeps their output (see ${path.join(runDir, 'keeper', 'keeper.log')})`,
      );
      keeperLost = true;
      if (started) void shutdown();
    };
    const adopted = await supervisor.attach(keeperLink, hello.processes);
    // The adopted processes' exits the previous daemon recorded are not recorded again (src/audit/adopted.ts).
    await audit?.settleAdopted();
    if (adopted > 0) {
      const live = supervisor.liveCount;
      log.info('daemon', `adopted ${adopted} process(es) from the keeper (pid ${keeperLink.keeperPid}): ${live} running, ${adopted - live} exited`);
    }
    if (hello.superseded) metrics?.handedOver();

    let tokenId: FileIdentity | undefined;
    const info = (): InfoResult => ({
      version: BUILD.version,
      ...(BUILD.commit ? { commit: BUILD.commit } : {}),
      pid: process.pid,
      instanceId,
      startedAt: server?.startedAt ?? Date.now(),
      state: health.phase,
      socket: socketPath,
      tokenFile: tokenId?.path ?? null,
      log: cfg.logTarget ?? null,
      metrics: metricsServer ? `http://${formatAddress(metricsServer.address() as net.AddressInfo)}` : null,
      websocket: websocket ? `ws://${formatAddress(websocket.address)}/rpc` : null,
      processes: { live: supervisor.liveCount, retained: supervisor.retainedCount },
      connections: server?.connectionCount ?? 0,
      replayBytes: replayBytes(),
      keepChildren: cfg.keepChildren,
      drainTimeoutMs,
      idleExitMs: cfg.idleExitMs ?? 0,
      socketActivated: activated !== undefined,
    });
    server = new RpcServer({
      supervisor,
      token,
      version: BUILD.version,
      log,
      instanceId,
      flow: cfg.flow,
      workspace: cfg.workspace,
      idleTimeoutMs: cfg.timings?.idleTimeoutMs,
      hooks: {
        connected: () => metrics?.connected(),
        refused: (reason) => metrics?.refused(reason),
        stalled: () => metrics?.stalled(),
        reattached: () => metrics?.reattached(),
        stdinAccepted: (bytes) => metrics?.stdinAccepted(bytes),
        admitSpawn: () => health.acceptsSpawns,
      },
      onShutdownRequest: () => void shutdown(),
      methods: infoMethods(info),
      audit,
    });
    const rpc = server;
    const authDeadlineMs = cfg.timings?.authDeadlineMs;
    unix = new UnixTransport(rpc, log, { socketPath, authDeadlineMs, listenFd: activated?.fd });
    await unix.listen();
    if (cfg.websocket) websocket = await (await loadWebSocketTransport()).serveWebSocket({ ...cfg.websocket, authDeadlineMs }, log, rpc);
    socketId = await identify(socketPath);
    const ownSocket = socketId;
    await lock.complete(instanceId, server.startedAt);
    try {
      if (cfg.writeToken !== false) tokenId = await persistToken(runDir, token);
    } catch (err) {
      // Best-effort, as in the reference, when the caller knows the token; but a token generated here that cannot
      // be written down is known to nobody, and a daemon nobody can authenticate to must not come up.
      if (cfg.tokenSource.kind === 'generate') {
        throw new TokenError(
          `cannot write ${path.join(runDir, TOKEN_FILE)} (${(err as Error).message}), and no client could learn the generated token; fix the directory or give -token-file or -token-fd`,
        );
      }
      log.error('daemon', `failed to persist token: ${(err as Error).message}`);
    }
    const probe = startOrphanProbe(socketPath, ownSocket, server, log, cfg.timings, () => void shutdown());
    const srv = server;
    const unixListener = unix;
    if ((cfg.idleExitMs ?? 0) > 0) {
      const sources = { liveProcesses: () => srv.supervisor.liveCount, connections: () => srv.connectionCount, clientlessMs: () => srv.clientlessMs };
      idle = watchIdle(cfg.idleExitMs!, sources, log, () => void shutdown());
    }

    const heldLock = lock;
    const link = keeperLink;
    // Another daemon said hello to the keeper: it takes the processes; this one stops serving, touching none of them.
    shutdown = (): Promise<void> => {
      teardown ??= (async () => {
        log.info('Server', 'shutdown requested');
        health.stopping();
        probeAbort.abort();
        drain?.cut();
        idle?.stop();
        clearInterval(probe);
        const connections = await srv.close(Promise.all([unixListener.close(), websocket?.close()]));
        supervisor.close();
        let killed = 0;
        const live = supervisor.liveCount;
        if (handover || keeperLost) {
          // The successor has them, or nobody can: either way nothing here is this daemon's to touch.
        } else if (cfg.keepChildren) {
          log.info(
            'Server',
            `-keep-children: leaving ${live} running child process(es) with the keeper (pid ${link.keeperPid}); the next daemon adopts them`,
          );
          await link.request({ t: 'bye', keep: true }).catch(() => undefined);
        } else {
          killed = await supervisor.killAll('shutdown').catch(() => 0);
          await link.request({ t: 'bye', keep: false }).catch(() => undefined);
        }
        // Last: the records of the connections closed above and of the children just killed, then a stop record.
        await audit?.close();
        link.close();
        // An activated socket is systemd's: it stays, and the next connection starts a daemon again.
        if (!activated) await removeIfOwned(ownSocket);
        await removeIfOwned(tokenId);
        await heldLock.release();
        metricsServer?.close();
        log.info(
          'Server',
          `cleanup: closed ${connections} connection(s), ${handover ? `handed ${live} running process(es) over` : `killed ${killed} child process group(s)`}`,
        );
        finish(keeperLost ? 1 : 0);
      })();
      return teardown;
    };

    log.info('daemon', `serving ${socketPath} as pid ${process.pid}, instance ${instanceId}${activated ? ' (socket from systemd)' : ''}`);
    const wsUrl = info().websocket ?? undefined;
    health.ready();
    cfg.report?.({ ok: true, pid: process.pid, instanceId, ...(wsUrl ? { websocket: wsUrl } : {}) });
    if (cfg.print) {
      printBanner(cfg.print, {
        socketPath,
        pid: process.pid,
        instanceId,
        tokenWritten: tokenId !== undefined,
        generated: cfg.tokenSource.kind === 'generate',
        tokenFromFd: cfg.tokenSource.kind === 'fd',
        websocket: wsUrl,
      });
    }
    started = true;
    if (signalled || handover || keeperLost) void shutdown();
  } catch (err) {
    const message = err instanceof TokenError || err instanceof LockError ? err.message : (err as Error).message;
    log.error('daemon', `start-up failed: ${message}`);
    // Clean up before reporting: once the launcher has said "failed" and exited, the directory must be free.
    probeAbort.abort();
    await server?.close(Promise.all([unix?.close(), websocket?.close()])).catch(() => {});
    server?.supervisor.close();
    metricsServer?.close();
    await audit?.close('start-up failed');
    keeperLink?.close();
    if (!activated) await removeIfOwned(socketId);
    await lock?.release();
    cfg.report?.({ ok: false, error: message });
    throw err;
  }
  return exited;
}

async function resolveToken(source: TokenSource, log: Logger): Promise<string> {
  switch (source.kind) {
    case 'value':
      return source.token;
    case 'generate':
      return generateToken();
    case 'fd':
      return readTokenFd(source.fd);
    case 'file': {
      const read = await consumeTokenFile(source.path);
      if (read.unlinkError) log.warn('daemon', read.unlinkError);
      return read.token;
    }
  }
}

interface BannerFacts {
  readonly socketPath: string;
  readonly pid: number;
  readonly instanceId: string;
  readonly tokenWritten: boolean;
  readonly generated: boolean;
  readonly tokenFromFd: boolean;
  readonly websocket: string | undefined;
}

function printBanner(print: (line: string) => void, f: BannerFacts): void {
  const { socketPath, pid, instanceId, tokenWritten, generated } = f;
  print(`Claustrum remote server listening on ${socketPath} (pid ${pid}, instance ${instanceId})`);
  if (f.websocket) print(`WebSocket: ${f.websocket}`);
  if (!tokenWritten) {
    if (f.tokenFromFd) {
      print('token: the one given on -token-fd; not written to disk (-write-token would write daemon.token)');
      print('  clients pass it themselves: claustrum -status/-ps/-kill/-run -token-fd <n>, or connect({ token })');
    }
    return;
  }
  const tokenPath = path.join(runDirectory(socketPath), TOKEN_FILE);
  print(`token: ${tokenPath} (mode 0600${generated ? ', generated for this run' : ''})`);
  print('ping it:');
  print(
    `  printf '{"jsonrpc":"2.0","id":1,"method":"server.ping","auth":"%s"}\\n' "$(cat ${shellQuote(tokenPath)})" | socat -t2 - UNIX-CONNECT:${shellQuote(socketPath)}`,
  );
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * When the socket path no longer leads to this daemon (unlinked, or replaced by another daemon's socket) and no
 * client has been connected for the grace, nobody can reach this daemon any more: it shuts down gracefully.
 */
function startOrphanProbe(
  socketPath: string,
  ours: FileIdentity | undefined,
  server: RpcServer,
  log: Logger,
  timings: ServeConfig['timings'],
  shutdown: () => void,
): NodeJS.Timeout {
  const grace = timings?.orphanGraceMs ?? ORPHAN_GRACE_MS;
  const timer = setInterval(async () => {
    const st = await stat(socketPath).catch(() => undefined);
    const lost = !st || !ours || st.ino !== ours.ino || st.dev !== ours.dev;
    if (!lost || server.connectionCount > 0 || server.clientlessMs < grace) return;
    // Ask the path itself, in case the daemon behind it is still this one (a bind mount, a stat race).
    if (st && (await reachesSelf(socketPath, server))) return;
    log.warn(
      'Server',
      `socket ${socketPath} no longer leads to this daemon and no client has connected for ${Math.round(grace / 1000)}s; shutting down`,
    );
    clearInterval(timer);
    shutdown();
  }, timings?.orphanProbeMs ?? ORPHAN_PROBE_INTERVAL_MS);
  timer.unref();
  return timer;
}

/** True when a connection to the path is accepted by this very server (its connection count rises). */
function reachesSelf(socketPath: string, server: RpcServer): Promise<boolean> {
  return new Promise((resolve) => {
    const before = server.connectionCount;
    const s = net.connect(socketPath);
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => setTimeout(() => done(server.connectionCount > before), 50));
    s.once('error', () => done(false));
  });
}
