/**
 * Dispatch: the gate order parse → auth → version → method → params (claustrum-wire.md §3), then the handler.
 *
 * Methods are descriptors that bind their own params, so this file knows no method by name except server.shutdown,
 * whose auth exemption is part of the gate. Handlers know nothing of sockets: they see a CallContext whose peer is
 * an abstract frame receiver.
 */
import { wireText } from '../log/escape.js';
import type { Logger } from '../log/logger.js';
import type { FrameSink } from '../process/managed.js';
import type { TokenCheck } from './auth.js';
import { CATALOGUE, WireError, wireError } from './errors.js';
import { bindParams, type Bound, type Shape } from './params.js';
import { NULL_ID, type DecodedRequest, type EchoId, type NumberLiterals } from './request.js';
import type { Reply } from './wire.js';

/** The connection a request arrived on, as handlers may use it. */
export interface Peer extends FrameSink {
  /** A short label for log lines. */
  readonly label: string;
  /** Runs `fn` once every earlier `inOrder` call on this connection has settled; at once when none is pending. */
  inOrder<T>(fn: () => T | Promise<T>): T | Promise<T>;
}

export interface CallContext {
  readonly peer: Peer;
  /** Queues work to run right after this request's reply has been written (or dropped, if the peer is gone). */
  afterReply(fn: () => void): void;
}

export interface MethodDef {
  readonly name: string;
  invoke(params: unknown, literals: NumberLiterals | undefined, ctx: CallContext): unknown;
}

/** A method whose params must be present and bind to `shape` (every namespace but server.*). */
export function defineMethod<S extends Shape>(name: string, shape: S, handler: (params: Bound<S>, ctx: CallContext) => unknown): MethodDef {
  return {
    name,
    invoke(params, literals, ctx) {
      if (params === undefined) throw wireError('invalidParams');
      const bound = bindParams(params, shape, literals);
      if (bound === undefined) throw wireError('invalidParams');
      return handler(bound, ctx);
    },
  };
}

/** A server.* method: params are ignored entirely, even mistyped ones (reference behaviour). */
export function defineServerMethod(name: string, handler: (ctx: CallContext) => unknown): MethodDef {
  return { name, invoke: (_params, _literals, ctx) => handler(ctx) };
}

export const SHUTDOWN_METHOD = 'server.shutdown';

export interface DispatchOptions {
  /** The Unix socket exempts server.shutdown from auth (reference parity); a TCP transport must not. */
  readonly shutdownNeedsAuth: boolean;
}

export class Dispatcher {
  readonly #methods = new Map<string, MethodDef>();
  readonly #namespaces = new Set<string>();
  readonly #token: TokenCheck;
  readonly #log: Logger;

  constructor(methods: readonly MethodDef[], token: TokenCheck, log: Logger) {
    for (const m of methods) {
      if (this.#methods.has(m.name)) throw new Error(`duplicate method ${m.name}`);
      this.#methods.set(m.name, m);
      this.#namespaces.add(m.name.slice(0, m.name.indexOf('.')));
    }
    this.#token = token;
    this.#log = log;
  }

  /** Method names in registration order, which is server.capabilities order. */
  get methodNames(): string[] {
    return [...this.#methods.keys()];
  }

  /** A reply for a line that is not a request. */
  static parseError(): Reply {
    return { id: NULL_ID, error: CATALOGUE.parseError };
  }

  /** Runs one request. Gate failures and synchronous handlers answer synchronously; others return a promise. */
  dispatch(req: DecodedRequest, ctx: CallContext, options: DispatchOptions): Reply | Promise<Reply> {
    const { id, method } = req;
    const exempt = method === SHUTDOWN_METHOD && !options.shutdownNeedsAuth;
    if (!exempt && !this.#token.matches(req.auth)) {
      // A stranger's request: escaped, cut and rate-limited (src/log/escape.ts).
      this.#log.refusal(
        'unauthorized',
        'Server',
        `Unauthorized request: method=${wireText(method)}, id=${id.json === 'null' ? '' : wireText(id.json)}`,
      );
      return { id, error: CATALOGUE.unauthorized };
    }
    if (req.jsonrpc !== '2.0') return { id, error: CATALOGUE.invalidVersion };
    const dot = method.indexOf('.');
    if (dot === -1) return errorReply(id, wireError('invalidMethodFormat', { method }));
    const namespace = method.slice(0, dot);
    if (!this.#namespaces.has(namespace)) return errorReply(id, wireError('unknownNamespace', { namespace }));
    const def = this.#methods.get(method);
    if (def === undefined) return errorReply(id, wireError('unknownMethod', { method }));
    try {
      const out = def.invoke(req.params, req.literals, ctx);
      if (out instanceof Promise)
        return out.then(
          (result) => ({ id, result }),
          (err) => this.#failure(id, method, err),
        );
      return { id, result: out };
    } catch (err) {
      return this.#failure(id, method, err);
    }
  }

  #failure(id: EchoId, method: string, err: unknown): Reply {
    if (err instanceof WireError) return errorReply(id, err);
    // A handler bug must cost one request, never the daemon (reference: recover() per request).
    const detail = err instanceof Error ? err.message : String(err);
    this.#log.error('Server', `recovered panic: method=${method} id=${id.json}: ${err instanceof Error ? err.stack : detail}`);
    return errorReply(id, wireError('recoveredPanic', { detail }));
  }
}

function errorReply(id: EchoId, err: WireError): Reply {
  return { id, error: { code: err.code, message: err.message } };
}
