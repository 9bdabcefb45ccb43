/**
 * `claustrum/client`: a typed client for the claustrum daemon that reconnects without losing a byte.
 *
 * ```ts
 * import { connect } from 'claustrum/client';
 * const client = await connect({ startDaemon: true });
 * const proc = client.spawn({ command: 'sh', args: ['-c', 'read l; echo got $l'] });
 * proc.on('gap', (g) => console.error(`lost frames ${g.fromSeq}..${g.toSeq}`));
 * void proc.end('hello\n');
 * for await (const chunk of proc.stdout) process.stdout.write(chunk);
 * const { status } = await proc.exited;
 * await client.close();
 * ```
 */
export { Client, connect, QUEUED_HIGH_BYTES, QUEUED_LOW_BYTES } from './client.js';
export type { AttachOptions, CallOptions, ClientEvents, ConnectOptions, ObserveOptions, ReconnectOptions, SpawnOptions } from './client.js';
export { ObserverHandle } from './observer.js';
export type { ObserverEvents } from './observer.js';
export {
  checkTerminalSize,
  ProcessHandle,
  shellStatus,
  STDIN_CHUNK_BYTES,
  STDIN_INITIAL_WINDOW_BYTES,
  STDIN_WINDOW_BYTES,
  TERMINAL_MAX_COLS,
  TERMINAL_MAX_ROWS,
} from './process.js';
export type { ExitInfo, GapInfo, OutputItem, ProcessHandleEvents, ScreenInfo } from './process.js';
// The module only: @xterm/headless loads with the first TerminalScreen.
export { renderScreen, TERMINAL_SCREEN_SCROLLBACK, TerminalScreen } from './terminal.js';
export type { ScreenText, TerminalScreenOptions } from './terminal.js';
export { StdinWindow } from './stdin.js';
export type { StdinLink, StdinRequest } from './stdin.js';
export { AuthError, ClaustrumError, ClosedError, ConnectError, InterruptedError, ProcessLostError, RpcError } from './errors.js';
export { classify, MAX_INCOMING_MESSAGE_BYTES, ndjson } from './codec.js';
export type { Codec, StreamDecoder } from './codec.js';
export { msgpack } from './msgpack.js';
export { unixTransport } from './transport.js';
export { websocketTransport } from './websocket.js';
export type { WebSocketTransportOptions } from './websocket.js';
export type { Channel, ChannelEvents, Transport, UnixTransportOptions } from './transport.js';
export { backoffDelay } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { claustrumExecutable, defaultSocketPath, ensureDaemon, readDaemonToken, readTokenFile, socketAccepts } from './daemon.js';
export type { StartDaemonOptions } from './daemon.js';
export type * from './wire.js';
// Presentation only: `[keyword] k:v …` lines for people (-audit-tail -pretty); never input to any state.
export { formatEnvelope, MAX_HUD_FIELDS, MAX_HUD_LINE_CHARS, parseEnvelope, renderRecordHud } from './hud.js';
export type { Envelope } from './hud.js';
