/** server.*: liveness, what this daemon implements, and shutdown. */
import type { Logger } from '../../../log/logger.js';
import type { CapabilitiesResult, PingResult, ShutdownResult } from '../../../protocol/messages.js';
import { defineServerMethod, type MethodDef } from '../dispatch.js';

export interface ServerInfo {
  readonly version: string;
  /** 32 lowercase hex digits, fresh per boot. */
  readonly instanceId: string;
  /** Unix milliseconds of the boot. */
  readonly startedAt: number;
  methodNames(): readonly string[];
  features(): readonly string[];
  requestShutdown(reason: string): void;
}

export function serverMethods(info: ServerInfo, log: Logger): MethodDef[] {
  return [
    defineServerMethod('server.ping', (): PingResult => ({ pong: true })),
    defineServerMethod(
      'server.capabilities',
      (): CapabilitiesResult => ({
        version: info.version,
        methods: info.methodNames(),
        instanceId: info.instanceId,
        startedAt: info.startedAt,
        features: info.features(),
      }),
    ),
    defineServerMethod('server.shutdown', (ctx): ShutdownResult => {
      log.info('ServerHandler', 'server.shutdown received over RPC');
      // The reply goes out first, then the teardown flushes and closes every connection: unlike the reference,
      // whose reply usually loses the race with the teardown, a client here always sees {"ok":true}.
      ctx.afterReply(() => info.requestShutdown('server.shutdown'));
      return { ok: true };
    }),
  ];
}
