/**
 * `session.*` (extension): `session.identify {caller}` declares, once per connection, who the client acts for. The
 * daemon cannot verify it: the audit records it as asserted (docs/audit-design.md, "Callers"). It needs auth like
 * every other method, so an unauthenticated connection can declare nothing.
 */
import { failure } from '../../../protocol/errors.js';
import type { IdentifyResult } from '../../../protocol/messages.js';
import type { MethodDef } from '../dispatch.js';

export function sessionMethods(): MethodDef[] {
  return [
    {
      name: 'session.identify',
      invoke(params, _literals, ctx): IdentifyResult {
        const out = ctx.identify(params);
        if (out.ok) return { ok: true };
        switch (out.error) {
          case 'invalidParams':
            throw failure('invalidParams');
          case 'invalidCaller':
            throw failure('invalidCaller', { reason: out.reason });
          case 'callerAlreadyDeclared':
            throw failure('callerAlreadyDeclared');
        }
      },
    },
  ];
}
