/**
 * `server.info` (extension): what an operator asks of a running daemon (`claustrum -status`). Authenticated like
 * every method but the Unix socket's `server.shutdown`, because it names paths (socket, token file, log).
 *
 * The daemon builds the answer (src/daemon/serve.ts owns the facts); this module only puts it on the wire.
 * Registered through `ServerOptions.methods`, after the built-in methods, so it is last in `server.capabilities`.
 */
import type { InfoResult } from '../../../protocol/messages.js';
import { defineServerMethod, type MethodDef } from '../dispatch.js';

export type { DaemonPhase, InfoResult } from '../../../protocol/messages.js';

export function infoMethods(read: () => InfoResult): MethodDef[] {
  return [defineServerMethod('server.info', (): InfoResult => read())];
}
