/**
 * The wire error catalogue: every JSON-RPC error the daemon can send, as data, shared with the client.
 *
 * Each entry is a numeric code and a message template; `<name>` marks a value filled in per request. The texts are
 * the reference daemon's, byte for byte, because clients match on them (PROTOCOL.md). A test renders every
 * template back to its `<name>` form and fails if PROTOCOL.md does not contain it, so a new error cannot ship
 * undocumented.
 */

/** JSON-RPC error codes, typed as their literal values. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  Unauthorized: -32001,
  StdinBackpressure: -32002,
  StdinOffsetGap: -32003,
  ServerDraining: -32004,
  AuditUnavailable: -32005,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

interface Entry {
  readonly code: ErrorCode;
  readonly message: string;
}

export const CATALOGUE = {
  parseError: { code: ErrorCode.ParseError, message: 'Parse error' },
  unauthorized: { code: ErrorCode.Unauthorized, message: 'Unauthorized: invalid or missing auth token' },
  invalidVersion: { code: ErrorCode.InvalidRequest, message: 'Invalid JSON-RPC version' },
  invalidMethodFormat: { code: ErrorCode.MethodNotFound, message: 'Invalid method format: <method>' },
  unknownNamespace: { code: ErrorCode.MethodNotFound, message: 'Unknown namespace: <namespace>' },
  unknownMethod: { code: ErrorCode.MethodNotFound, message: 'Unknown method: <method>' },

  invalidParams: { code: ErrorCode.InvalidParams, message: 'Invalid params' },
  processIdRequired: { code: ErrorCode.InvalidParams, message: 'Process ID is required' },
  commandRequired: { code: ErrorCode.InvalidParams, message: 'Command is required' },
  invalidBase64: { code: ErrorCode.InvalidParams, message: 'Invalid base64 data' },
  processNotFound: { code: ErrorCode.InvalidParams, message: 'Process not found' },
  processNotRunning: { code: ErrorCode.InvalidParams, message: 'Process not running' },
  stdinQueueFull: { code: ErrorCode.StdinBackpressure, message: 'stdin backpressure: queue full' },
  /** Extension: fresh bytes after an `eof` write. */
  stdinClosed: { code: ErrorCode.InvalidParams, message: 'stdin is closed' },
  stdinOffsetGap: { code: ErrorCode.StdinOffsetGap, message: 'stdin offset gap: offset ahead of applied bytes' },

  // process.spawn failures carry Go's os/exec texts (-32603), with the OS reason in lower case.
  chdirStat: { code: ErrorCode.InternalError, message: 'chdir <cwd>: stat <cwd>: <reason>' },
  chdirNotDirectory: { code: ErrorCode.InternalError, message: 'chdir <cwd>: not a directory' },
  chdir: { code: ErrorCode.InternalError, message: 'chdir <cwd>: <reason>' },
  executableNotFound: { code: ErrorCode.InternalError, message: 'exec: "<name>": executable file not found in $PATH' },
  forkExec: { code: ErrorCode.InternalError, message: 'fork/exec <path>: <reason>' },
  /** Extension (terminals): no pseudo-terminal could be had (the native package, or the system's pty limit). */
  ptyUnavailable: { code: ErrorCode.InternalError, message: 'terminals are not available: <reason>' },
  /** Extension (terminals): a size outside 1..1000 columns or rows. */
  terminalSize: { code: ErrorCode.InvalidParams, message: 'Invalid terminal size: <detail>' },
  /** Extension: process.resize on a piped process. */
  notATerminal: { code: ErrorCode.InvalidParams, message: 'process is not a terminal' },
  /** Extension: an `eof` write to a terminal, which has no end of input. */
  stdinNoEof: { code: ErrorCode.InvalidParams, message: 'a terminal has no end of input: send Ctrl-D (0x04) as data instead of eof' },

  // files.*: the OS failures carry Go's os.PathError texts (-32603); the method's own refusals are -32602.
  statFailed: { code: ErrorCode.InternalError, message: 'stat <path>: <reason>' },
  openFailed: { code: ErrorCode.InternalError, message: 'open <path>: <reason>' },
  readFailed: { code: ErrorCode.InternalError, message: 'read <path>: <reason>' },
  readdirFailed: { code: ErrorCode.InternalError, message: 'readdirent <path>: <reason>' },
  filesReadIsDirectory: { code: ErrorCode.InvalidParams, message: 'files.read: path is a directory' },
  filesReadTooLarge: { code: ErrorCode.InvalidParams, message: 'files.read: file exceeds maxBytes' },
  filesReadNotRegular: { code: ErrorCode.InvalidParams, message: 'files.read: not a regular file' },
  extractParamsRequired: { code: ErrorCode.InvalidParams, message: 'archivePath and destDir are required' },

  // git.*: a git that failed or was killed reads as Go's exec error (-32603).
  baseRepoRequired: { code: ErrorCode.InvalidParams, message: 'baseRepo is required' },
  branchNameRequired: { code: ErrorCode.InvalidParams, message: 'branchName is required' },
  gitExitStatus: { code: ErrorCode.InternalError, message: 'exit status <status>' },
  gitSignal: { code: ErrorCode.InternalError, message: 'signal: <signal>' },

  /** Extension: the daemon is draining (`-drain-timeout`, after SIGTERM) and starts no new process. */
  serverDraining: { code: ErrorCode.ServerDraining, message: 'Server is draining: no new processes are started' },

  // The audit trail (-audit; docs/audit-design.md).
  /**
   * Extension: `-audit-full block` and the audit queue is full (a slow or failing disk): the request is refused,
   * untouched, until the queue drains. `<reason>` is the recorder's, e.g. `4096 records are waiting for the disk:
   * writing /run/claustrum/audit.jsonl fails (no space left on device)`.
   */
  auditUnavailable: { code: ErrorCode.AuditUnavailable, message: 'Audit log unavailable, request refused: <reason>' },
  /** Extension: a `caller` (session.identify's, or a request's own) that is not a valid caller; `<reason>` says what to change. */
  invalidCaller: { code: ErrorCode.InvalidParams, message: 'Invalid caller: <reason>' },
  /** Extension: session.identify on a connection that already declared its caller. */
  callerAlreadyDeclared: {
    code: ErrorCode.InvalidParams,
    message: 'Caller already declared on this connection; open a new connection to act for another caller, or pass caller on each request',
  },

  /** A handler failed in a way no entry above names; the text is the underlying OS error's. */
  internal: { code: ErrorCode.InternalError, message: '<detail>' },
  /** The reply could not be encoded in the connection's format (a MessagePack id no encoder can write back). */
  replyNotEncodable: { code: ErrorCode.InternalError, message: 'reply could not be encoded: <detail>' },
  /** A handler threw something unexpected: a bug, contained to its request. */
  recoveredPanic: { code: ErrorCode.InternalError, message: 'recovered panic: <detail>' },
} as const satisfies Record<string, Entry>;

export type ErrorKey = keyof typeof CATALOGUE;

/** The `<name>` placeholders of a template, as a union of their names. */
type Placeholders<S extends string> = S extends `${string}<${infer Name}>${infer Rest}` ? Name | Placeholders<Rest> : never;
export type ErrorArgs<K extends ErrorKey> = Record<Placeholders<(typeof CATALOGUE)[K]['message']>, string>;

/**
 * A failure with a catalogue entry: thrown by the domain code (spawn checks, files, git) and by the method handlers,
 * and turned into the error reply in one place (src/server/rpc/dispatch.ts). `args` fill the template's placeholders.
 */
export class CatalogueError<K extends ErrorKey = ErrorKey> extends Error {
  readonly code: ErrorCode;
  readonly key: K;
  readonly args: Readonly<Record<string, string>>;

  constructor(key: K, args: ErrorArgs<K>) {
    super(renderMessage(key, args));
    this.name = 'CatalogueError';
    this.key = key;
    this.code = CATALOGUE[key].code;
    this.args = args as Readonly<Record<string, string>>;
  }
}

export function renderMessage<K extends ErrorKey>(key: K, args: ErrorArgs<K>): string {
  const values = args as Record<string, string>;
  return CATALOGUE[key].message.replace(/<([A-Za-z]+)>/g, (_all, name: string) => values[name] ?? `<${name}>`);
}

type NoArgKey = { [K in ErrorKey]: [Placeholders<(typeof CATALOGUE)[K]['message']>] extends [never] ? K : never }[ErrorKey];

/** Builds the error for a catalogue entry: `failure('unknownMethod', { method: 'process.bogus' })`. */
export function failure<K extends NoArgKey>(key: K): CatalogueError<K>;
export function failure<K extends ErrorKey>(key: K, args: ErrorArgs<K>): CatalogueError<K>;
export function failure(key: ErrorKey, args?: Record<string, string>): CatalogueError {
  return new CatalogueError(key, (args ?? {}) as never);
}
