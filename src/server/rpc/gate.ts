/**
 * The gate: the order in which a request is admitted, parse → auth → version → caller → method → params
 * (PROTOCOL.md). Parsing is the codec's; params are bound by each method (src/server/rpc/params.ts); this
 * file checks the token, the version, the request's own `caller` (an extension, for the audit) and the method name,
 * in that order, with the reference's codes and texts.
 *
 * The token check hashes both sides to fixed-length SHA-256 digests before `timingSafeEqual`, because that function
 * throws when lengths differ and an early length check would leak the token's length through timing
 * (SECURITY.md). The comparison never throws, whatever the client sends.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type Caller, parseCaller } from '../../audit/caller.js';
import { wireText } from '../../log/escape.js';
import type { Logger } from '../../log/logger.js';
import { CATALOGUE, failure } from '../../protocol/errors.js';
import { METHOD_NAMES } from '../../protocol/methods.js';
import type { DispatchOptions, MethodDef } from './dispatch.js';
import { errorReply, type Reply } from './reply.js';
import type { DecodedRequest } from './request.js';

export class TokenCheck {
  readonly #digest: Buffer;

  constructor(token: string) {
    if (token === '') throw new Error('the auth token must not be empty');
    this.#digest = digest(token);
  }

  /** True when `candidate` equals the token. An empty candidate is refused without hashing: it reveals nothing. */
  matches(candidate: string): boolean {
    if (candidate === '') return false;
    return timingSafeEqual(digest(candidate), this.#digest);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** What the gate learned of one request, for its audit record: whether it carried the token, and its own caller. */
export interface Verdict {
  authenticated: boolean;
  /** The request's own `caller`, validated; undefined when it has none (the connection's applies). */
  caller: Caller | undefined;
}

/** The one method the Unix socket serves without a token (reference parity). */
export const SHUTDOWN_METHOD = 'server.shutdown';

export class Gate {
  readonly #methods = new Map<string, MethodDef>();
  readonly #namespaces = new Set<string>();
  readonly #token: TokenCheck;
  readonly #log: Logger;

  /** `methods` in any order; they are served and listed in the protocol's order (src/protocol/methods.ts). */
  constructor(methods: readonly MethodDef[], token: TokenCheck, log: Logger) {
    const order = new Map<string, number>(METHOD_NAMES.map((m, i) => [m, i]));
    for (const m of [...methods].sort((a, b) => order.get(a.name)! - order.get(b.name)!)) {
      if (this.#methods.has(m.name)) throw new Error(`duplicate method ${m.name}`);
      this.#methods.set(m.name, m);
      this.#namespaces.add(m.name.slice(0, m.name.indexOf('.')));
    }
    this.#token = token;
    this.#log = log;
  }

  get methodNames(): string[] {
    return [...this.#methods.keys()];
  }

  /** The method a request may run, or the error reply that refuses it; `verdict`, when given, is filled in. */
  admit(req: DecodedRequest, options: DispatchOptions, verdict?: Verdict): { readonly def: MethodDef } | Reply {
    const { id, method } = req;
    const exempt = method === SHUTDOWN_METHOD && !options.shutdownNeedsAuth;
    if (this.#token.matches(req.auth)) {
      options.authenticated?.();
      if (verdict) verdict.authenticated = true;
    } else if (!exempt) {
      // A stranger's request: escaped, cut and rate-limited (src/log/escape.ts).
      this.#log.refusal(
        'unauthorized',
        'Server',
        `Unauthorized request: method=${wireText(method)}, id=${id.json === 'null' ? '' : wireText(id.json)}`,
      );
      return { id, error: CATALOGUE.unauthorized };
    }
    if (req.jsonrpc !== '2.0') return { id, error: CATALOGUE.invalidVersion };
    // null counts as absent, as for the other envelope members. A caller is refused, never cut: a shortened
    // identity would be a different identity.
    if (req.caller !== undefined && req.caller !== null) {
      const parsed = parseCaller(req.caller);
      if (!parsed.ok) return errorReply(id, failure('invalidCaller', { reason: parsed.reason }));
      if (verdict) verdict.caller = parsed.caller;
    }
    const dot = method.indexOf('.');
    if (dot === -1) return errorReply(id, failure('invalidMethodFormat', { method }));
    const namespace = method.slice(0, dot);
    if (!this.#namespaces.has(namespace)) return errorReply(id, failure('unknownNamespace', { namespace }));
    const def = this.#methods.get(method);
    if (def === undefined) return errorReply(id, failure('unknownMethod', { method }));
    return { def };
  }
}
