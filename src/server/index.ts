/**
 * The daemon's server: its RPC layer (src/server/rpc: gate, dispatch, connections, methods) and its transports
 * (src/server/transport: the Unix socket and WebSocket listeners and their byte I/O). The daemon's entry builds them in
 * order: supervisor → metrics → RPC server(supervisor) → transports (src/daemon/serve.ts).
 */
export { type ConnectionHooks, DEFAULT_FLOW_LIMITS, type FlowLimits } from './rpc/connection.js';
export type { ProcessMethodHooks } from './rpc/methods/process.js';
export { EXTENSION_FEATURES, IDLE_TIMEOUT_MS, REFERENCE_FEATURES, RpcServer, type RpcOptions, SHUTDOWN_FLUSH_MS } from './rpc/server.js';
export {
  accepts,
  clearStaleSocket,
  listenUnix,
  MAX_CONNECTIONS,
  MAX_SOCKET_PATH_BYTES,
  prepareSocketDirectory,
  SocketSetupError,
  UnixTransport,
} from './transport/unix.js';
export type { WebSocketListener, WebSocketOptions } from './transport/websocket.js';

/** The WebSocket transport, loaded only when asked for: `ws` and node:http add 8 MB to a daemon whose spawn cost grows with its memory. */
export const loadWebSocketTransport = () => import('./transport/websocket.js');
