/**
 * Prometheus metrics (`-metrics-addr`), fed by the supervisor's and server's observer hooks rather than by calls
 * scattered through the code.
 *
 * The reference's six counters keep their names and HELP texts exactly (PROTOCOL.md). Beyond them, what an
 * operator of a supervisor needs and no peer exports: live and retained processes, open connections, replay and
 * stdin bytes held, evictions, stalled receivers, drain timeouts, spawn failures by reason, and spawn latency.
 * Labels never carry process ids, commands or paths: the only label is a failure reason from a fixed set.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerAuditMetrics } from '../audit/metrics.js';
import type { AuditStats } from '../audit/writer.js';
import type { Logger } from '../log/logger.js';
import type { ManagedProcess, ProcessObserver } from '../process/child.js';
import type { Supervisor, SupervisorObserver } from '../process/supervisor.js';
import type { ConnectionHooks, ProcessMethodHooks } from '../server/index.js';
import { formatAddress, isAllowedHost, splitHostPort } from '../util/hostport.js';

export interface MetricSources {
  readonly supervisor: Supervisor;
  openConnections(): number;
  /** The audit's counters (`-audit`); undefined while it is off, when its metrics read 0. */
  audit?(): AuditStats | undefined;
}

export class Metrics implements ProcessObserver, SupervisorObserver, ConnectionHooks, ProcessMethodHooks {
  readonly registry = new Registry();
  readonly #connections: Counter;
  readonly #spawns: Counter;
  readonly #exits: Counter;
  readonly #reattaches: Counter;
  readonly #streamBytes: Counter;
  readonly #stdinBytes: Counter;
  readonly #evictedFrames: Counter;
  readonly #evictedBytes: Counter;
  readonly #stalled: Counter;
  readonly #drainTimeouts: Counter;
  readonly #spawnFailures: Counter<'reason'>;
  readonly #spawnSeconds: Histogram;
  readonly #refused: Counter<'reason'>;
  readonly #budgetReclaimed: Counter;
  readonly #handovers: Counter;
  readonly #adopted: Counter;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    registerAuditMetrics(this.registry, () => sources.audit?.());
    // The reference's six, names and help texts verbatim.
    this.#connections = counter('claustrum_connections_total', 'Client connections accepted.');
    this.#spawns = counter('claustrum_process_spawns_total', 'Processes started via process.spawn.');
    this.#exits = counter('claustrum_process_exits_total', 'Managed processes that have exited.');
    this.#reattaches = counter('claustrum_reattaches_total', 'process.reattach calls that found their process.');
    this.#streamBytes = counter('claustrum_stream_bytes_total', 'Process stdout/stderr bytes streamed to clients.');
    this.#stdinBytes = counter('claustrum_stdin_bytes_total', 'Bytes accepted for child stdin.');
    // Ours.
    this.#evictedFrames = counter('claustrum_replay_evicted_frames_total', 'Frames dropped from replay buffers to stay under the cap.');
    this.#evictedBytes = counter('claustrum_replay_evicted_bytes_total', 'Serialized bytes dropped from replay buffers to stay under the cap.');
    this.#stalled = counter('claustrum_receivers_stalled_total', 'Receivers disconnected for making no progress for the stall timeout.');
    this.#drainTimeouts = counter(
      'claustrum_exit_drain_timeouts_total',
      'Exits whose pipes were force-closed after the drain grace (a descendant held them).',
    );
    this.#budgetReclaimed = counter(
      'claustrum_replay_budget_evicted_bytes_total',
      'Serialized bytes evicted from replay buffers to keep their total under -replay-budget.',
    );
    this.#handovers = counter(
      'claustrum_handovers_total',
      'Times this daemon took the processes over from a running daemon (a restart or an upgrade).',
    );
    this.#adopted = counter(
      'claustrum_processes_adopted_total',
      'Processes adopted from the keeper at start: left by a daemon that restarted, was upgraded or died.',
    );
    this.#refused = new Counter({
      name: 'claustrum_connections_refused_total',
      help: 'Connections closed before they authenticated, by reason: unauthenticated, authDeadline, connections, handshakes.',
      labelNames: ['reason'],
      registers,
    });
    this.#spawnFailures = new Counter({
      name: 'claustrum_spawn_failures_total',
      help: 'process.spawn calls that failed, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.#spawnSeconds = new Histogram({
      name: 'claustrum_spawn_duration_seconds',
      help: 'Time from a process.spawn request to the child running.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    const gauge = (name: string, help: string, read: (s: Supervisor) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(sources.supervisor));
        },
      });
    gauge('claustrum_processes_live', 'Children not yet exited.', (s) => s.liveCount);
    gauge('claustrum_processes_retained', 'Processes reachable by id: running, and exited ones within retention.', (s) => s.retainedCount);
    gauge('claustrum_replay_buffer_bytes', 'Serialized bytes held in replay buffers.', (s) => s.budget.used);
    gauge('claustrum_replay_budget_bytes', 'The most every replay buffer together may hold (-replay-budget).', (s) => s.budget.limit);
    gauge('claustrum_stdin_queue_bytes', "Stdin bytes accepted but not yet written to children (as of each process's last stdin answer).", (s) =>
      s.list().reduce((n, p) => n + p.stdin.queuedBytes, 0),
    );
    new Gauge({
      name: 'claustrum_connections_open',
      help: 'Client connections open now.',
      registers,
      collect() {
        this.set(sources.openConnections());
      },
    });
    collectDefaultMetrics({ register: this.registry });
    for (const name of DROPPED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
  }

  // ---- hooks ----
  connected(): void {
    this.#connections.inc();
  }

  handedOver(): void {
    this.#handovers.inc();
  }

  adopted(count: number): void {
    this.#adopted.inc(count);
  }

  reclaimed(bytes: number): void {
    this.#budgetReclaimed.inc(bytes);
  }

  refused(reason: string): void {
    this.#refused.inc({ reason });
  }
  spawned(_proc: ManagedProcess, latencyMs: number): void {
    this.#spawns.inc();
    this.#spawnSeconds.observe(latencyMs / 1000);
  }
  spawnFailed(kind: string): void {
    this.#spawnFailures.inc({ reason: kind });
  }
  exited(): void {
    this.#exits.inc();
  }
  reattached(): void {
    this.#reattaches.inc();
  }
  output(bytes: number): void {
    this.#streamBytes.inc(bytes);
  }
  stdinAccepted(bytes: number): void {
    this.#stdinBytes.inc(bytes);
  }
  evicted(frames: number, bytes: number): void {
    this.#evictedFrames.inc(frames);
    this.#evictedBytes.inc(bytes);
  }
  stalled(): void {
    this.#stalled.inc();
  }
  drainTimedOut(): void {
    this.#drainTimeouts.inc();
  }
}

/** Most simultaneous connections to the metrics listener; further ones are closed at accept. */
export const METRICS_MAX_CONNECTIONS = 64;
/** The metrics listener could not be set up: the daemon refuses to start (a bad `-metrics-addr` is a bad flag). */
export class MetricsListenError extends Error {}

/**
 * prom-client's default collectors export three gauges named `*_total`, which `promtool check metrics` rejects
 * (the suffix is reserved for counters). Their per-type twins (`nodejs_active_handles{type}`, …) carry the same
 * numbers, so these three are dropped.
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** Another path served by the metrics listener (the health endpoints): true when it answered. */
export type MetricsRoute = (path: string, req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/**
 * Serves `/metrics` and whatever `routes` answers (src/daemon/health.ts: `/healthz`, `/readyz`, `/info`); 404 for the
 * rest. A bad address or a failed bind rejects with MetricsListenError. The endpoint has no auth: bind it to
 * loopback. Requests whose Host is neither a loopback name nor the bound address are refused (DNS rebinding).
 */
export async function serveMetrics(addr: string, metrics: Metrics | undefined, log: Logger, routes?: MetricsRoute): Promise<http.Server> {
  let host: string;
  let port: number;
  try {
    ({ host, port } = splitHostPort(addr));
  } catch (err) {
    throw new MetricsListenError(`metrics: listen ${addr}: ${(err as Error).message}`);
  }
  const server = http.createServer(async (req, res) => {
    const bound = server.address() as AddressInfo | null;
    if (!isAllowedHost(req.headers.host, bound ?? undefined)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden host\n');
      return;
    }
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (routes?.(path, req, res)) return;
    if (path !== '/metrics' || metrics === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    try {
      const body = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500).end(`${(err as Error).message}\n`);
    }
  });
  // The reference's ReadHeaderTimeout is 5 s; a slow client must not hold a socket open.
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  // Nobody authenticates here: a bounded number of sockets, each short-lived, whoever connects.
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: host || undefined, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    throw new MetricsListenError(`metrics: listen ${addr}: ${(err as Error).message}`);
  }
  server.on('error', (err) => log.error('Server', `metrics: ${err.message}`));
  log.info('Server', `metrics: serving http://${formatAddress(server.address() as AddressInfo)}/metrics`);
  return server;
}
