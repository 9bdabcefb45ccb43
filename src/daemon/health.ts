/**
 * Health for orchestrators, on the metrics listener (`-metrics-addr`): `/healthz`, `/readyz` and `/info`.
 *
 * - `/healthz`: 200 while the process serves, starting and draining included (an orchestrator that restarts an
 *   unhealthy daemon must not restart one that is only busy shutting down); 503 once the teardown runs.
 * - `/readyz`: 200 once the socket listens and the start-up reap of dead daemons' children is done; 503 before that
 *   and from the moment a drain or shutdown begins, so a load balancer stops sending work first.
 * - `/info`: JSON with version, commit, instance, start, state, process counts, connections, replay bytes and, with
 *   `-audit`, the audit's head (log, seq, hash) and losses (src/audit/info.ts). Like
 *   the metrics, nothing that names a process, a command or a path: the listener has no auth.
 */
import type http from 'node:http';
import type { AuditInfo } from '../audit/info.js';
import type { DaemonPhase } from '../protocol/messages.js';

export type { DaemonPhase };

/** The daemon's phase, shared by the health routes, `server.info` and the spawn gate. */
export class DaemonHealth {
  #phase: DaemonPhase = 'starting';

  get phase(): DaemonPhase {
    return this.#phase;
  }

  /** Listening, and the start-up reap done. */
  ready(): void {
    if (this.#phase === 'starting') this.#phase = 'ready';
  }

  draining(): void {
    if (this.#phase === 'starting' || this.#phase === 'ready') this.#phase = 'draining';
  }

  stopping(): void {
    this.#phase = 'stopping';
  }

  /** A draining or stopping daemon refuses new processes. */
  get acceptsSpawns(): boolean {
    return this.#phase === 'starting' || this.#phase === 'ready';
  }
}

/** The public `/info` document. */
export interface PublicInfo {
  readonly version: string;
  readonly commit?: string;
  readonly instance: string;
  readonly startedAt: string;
  readonly state: DaemonPhase;
  readonly processes: { readonly live: number; readonly retained: number };
  readonly connections: number;
  readonly replayBytes: number;
  /** With `-audit`: where its chain stands (the head hash to ship elsewhere), and its losses. */
  readonly audit?: AuditInfo;
}

/** A route of the metrics listener: true when it answered the request. */
export type Route = (path: string, req: http.IncomingMessage, res: http.ServerResponse) => boolean;

export function healthRoutes(health: DaemonHealth, info: () => PublicInfo): Route {
  const text = (res: http.ServerResponse, status: number, body: string, head: boolean) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(head ? undefined : `${body}\n`);
  };
  return (path, req, res) => {
    if (path !== '/healthz' && path !== '/readyz' && path !== '/info') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    const head = req.method === 'HEAD';
    const phase = health.phase;
    switch (path) {
      case '/healthz':
        if (phase === 'stopping') text(res, 503, 'stopping', head);
        else text(res, 200, 'ok', head);
        return true;
      case '/readyz':
        if (phase === 'ready') text(res, 200, 'ready', head);
        else text(res, 503, phase, head);
        return true;
      default: {
        const body = JSON.stringify(info());
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(head ? undefined : `${body}\n`);
        return true;
      }
    }
  };
}
