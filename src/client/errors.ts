/**
 * The client's errors. Each has a stable `code` to branch on; messages are for people.
 */

export class ClaustrumError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The daemon answered with a JSON-RPC error. `rpcCode` is its code (-32602, -32003, …), `message` its text. */
export class RpcError extends ClaustrumError {
  readonly rpcCode: number;
  readonly method: string;
  constructor(method: string, rpcCode: number, message: string) {
    super('RPC_ERROR', message);
    this.method = method;
    this.rpcCode = rpcCode;
  }
}

/** Nothing answered on the socket (or the transport's address). `errno` is the OS code when there is one. */
export class ConnectError extends ClaustrumError {
  readonly errno: string | undefined;
  constructor(message: string, errno?: string) {
    super('CONNECT_FAILED', message);
    this.errno = errno;
  }
}

/**
 * A request that is not safe to repeat (process.kill, process.killAndWait, server.shutdown, a `call()` not marked
 * idempotent) was written to a connection that dropped before its reply came: it may or may not have been applied.
 */
export class InterruptedError extends ClaustrumError {
  readonly method: string;
  constructor(method: string) {
    super('INTERRUPTED', `${method}: the connection dropped before the reply; the request may or may not have been applied`);
    this.method = method;
  }
}

/** The client was closed (by `close()`, or because it gave up reconnecting); `cause` says why when it gave up. */
export class ClosedError extends ClaustrumError {
  constructor(message = 'client closed', options?: { cause?: unknown }) {
    super('CLOSED', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * A held process is gone from the daemon's view: the daemon was replaced (new instance), or the process was pruned
 * after its retention. Its remaining output and exit cannot be recovered.
 */
export class ProcessLostError extends ClaustrumError {
  readonly processId: string;
  constructor(processId: string, why: string) {
    super('PROCESS_LOST', `process ${processId} lost: ${why}`);
    this.processId = processId;
  }
}

/** Authentication failed and re-reading the token did not help. */
export class AuthError extends ClaustrumError {
  constructor(message: string) {
    super('UNAUTHORIZED', message);
  }
}

/** @internal The connection a request was written to dropped before its reply (the client resends or reports). */
export class DroppedError extends Error {}
