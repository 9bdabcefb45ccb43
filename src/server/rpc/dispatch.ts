/**
 * Dispatch: the gate (src/server/rpc/gate.ts) admits a request, then its method's handler runs and its outcome
 * becomes the reply. Every failure with a catalogue entry becomes its error reply here, in one place; anything else
 * a handler throws is a bug, contained to its request (reference: recover() per request).
 *
 * Methods are descriptors that bind their own params and are typed against the protocol's MethodMap, so this file
 * knows no method by name. Handlers know nothing of sockets: they see a CallContext.
 */
import type { IdentifyOutcome } from '../../audit/caller.js';
import type { Logger } from '../../log/logger.js';
import { CatalogueError, failure } from '../../protocol/errors.js';
import type { MethodName, ResultOf } from '../../protocol/methods.js';
import type { FrameLog, SubscribeOptions, Subscription } from '../../replay/subscription.js';
import type { Gate, Verdict } from './gate.js';
import { type Bound, bindParams, type Shape } from './params.js';
import { errorReply, parseErrorReply, type Reply } from './reply.js';
import type { DecodedRequest, EchoId, NumberLiterals } from './request.js';

export type { Reply };

/** What a handler may ask of the connection its request arrived on. */
export interface CallContext {
  /** A short label for log lines. */
  readonly label: string;
  /** Runs `fn` once every earlier `inOrder` call on this connection has settled; at once when none is pending. */
  inOrder<T>(fn: () => T | Promise<T>): T | Promise<T>;
  /**
   * Opens a subscription owned by this connection (ended when it closes). Frames above `holdAbove` wait until this
   * request's reply has been written: a reply that announces a stream precedes the stream's later frames.
   */
  subscribe(log: FrameLog, options: Omit<SubscribeOptions, 'onClose'>): Subscription;
  /** This connection's observation of `log`, if any. */
  observation(log: FrameLog): Subscription | undefined;
  /** Queues work to run right after this request's reply has been written (or dropped, if the peer is gone). */
  afterReply(fn: () => void): void;
  /** session.identify: declares, once, who this connection acts for (`params` as decoded). */
  identify(params: unknown): IdentifyOutcome;
}

export interface MethodDef {
  readonly name: MethodName;
  invoke(params: unknown, literals: NumberLiterals | undefined, ctx: CallContext): unknown;
}

type Outcome<M extends MethodName> = ResultOf<M> | Promise<ResultOf<M>>;

/** A method whose params must be present and bind to `shape` (every namespace but server.*). */
export function defineMethod<M extends MethodName, S extends Shape>(
  name: M,
  shape: S,
  handler: (params: Bound<S>, ctx: CallContext) => Outcome<M>,
): MethodDef {
  return {
    name,
    invoke(params, literals, ctx) {
      if (params === undefined) throw failure('invalidParams');
      const bound = bindParams(params, shape, literals);
      if (bound === undefined) throw failure('invalidParams');
      return handler(bound, ctx);
    },
  };
}

/** A server.* method: params are ignored entirely, even mistyped ones (reference behaviour). */
export function defineServerMethod<M extends MethodName>(name: M, handler: (ctx: CallContext) => Outcome<M>): MethodDef {
  return { name, invoke: (_params, _literals, ctx) => handler(ctx) };
}

export interface DispatchOptions {
  /** The Unix socket exempts server.shutdown from auth (reference parity); a TCP transport must not. */
  readonly shutdownNeedsAuth: boolean;
  /** Told when a request on this connection carried the right token (it is then authenticated for good). */
  readonly authenticated?: () => void;
}

export class Dispatcher {
  readonly #gate: Gate;
  readonly #log: Logger;

  constructor(gate: Gate, log: Logger) {
    this.#gate = gate;
    this.#log = log;
  }

  /** Method names in server.capabilities order. */
  get methodNames(): string[] {
    return this.#gate.methodNames;
  }

  /** A reply for a line that is not a request. */
  static parseError(): Reply {
    return parseErrorReply();
  }

  /**
   * Runs one request. Gate failures and synchronous handlers answer synchronously; others return a promise.
   * `verdict`, when given, is filled in by the gate (the audit records it).
   */
  dispatch(req: DecodedRequest, ctx: CallContext, options: DispatchOptions, verdict?: Verdict): Reply | Promise<Reply> {
    const admitted = this.#gate.admit(req, options, verdict);
    if (!('def' in admitted)) return admitted;
    const { id, method } = req;
    try {
      const out = admitted.def.invoke(req.params, req.literals, ctx);
      if (out instanceof Promise) {
        return out.then(
          (result) => ({ id, result }),
          (err) => (isWithdrawn(err) ? withdrawnReply(id, err as Error) : this.#failure(id, method, err)),
        );
      }
      return { id, result: out };
    } catch (err) {
      return this.#failure(id, method, err);
    }
  }

  #failure(id: EchoId, method: string, err: unknown): Reply {
    if (err instanceof CatalogueError) return errorReply(id, err);
    // A handler bug must cost one request, never the daemon (reference: recover() per request).
    const detail = err instanceof Error ? err.message : String(err);
    this.#log.error('Server', `recovered panic: method=${method} id=${id.json}: ${err instanceof Error ? err.stack : detail}`);
    return errorReply(id, failure('recoveredPanic', { detail }));
  }
}

/**
 * An error marked `withdrawn` (the keeper refused a request because another daemon took the processes over) means
 * nothing was done and this daemon is about to close every connection. Its reply is not written: the connection closes
 * with the request in flight, and the client retries it on the successor (the client library resends idempotent
 * requests, reattaches an uncertain spawn, and resends stdin from `stdinApplied`), where an error reply would have
 * failed a request that simply has to go to the next daemon. The chaos run saw these as `recovered panic` replies
 * during handovers.
 */
function isWithdrawn(err: unknown): boolean {
  return err instanceof Error && (err as { withdrawn?: unknown }).withdrawn === true;
}

function withdrawnReply(id: EchoId, err: Error): Reply {
  const { error } = errorReply(id, failure('internal', { detail: `withdrawn: ${err.message}` }));
  return { id, error: error!, withdrawn: true };
}
