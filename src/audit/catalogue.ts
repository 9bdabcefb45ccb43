/**
 * The wire errors the audit adds, in the shape of src/server/errors.ts's CATALOGUE, for the lead to merge there
 * (with `ErrorCode.AuditUnavailable = -32004`). Kept apart until then so the docs test does not demand them in
 * PROTOCOL.md before the daemon can send them.
 */
import { ErrorCode } from '../protocol/errors.js';

/** -32004: the next free code after the reference's -32001..-32003. */
export const AUDIT_UNAVAILABLE_CODE = -32004;

export const AUDIT_CATALOGUE = {
  /**
   * `-audit-full block` and the audit queue is full (a slow or failing disk): the request is refused, untouched,
   * until the queue drains. `<reason>` is the writer's, e.g. `4096 records are waiting for the disk: writing
   * /run/claustrum/audit.jsonl fails (no space left on device)`.
   */
  auditUnavailable: { code: AUDIT_UNAVAILABLE_CODE, message: 'Audit log unavailable, request refused: <reason>' },
  /** A `caller` (session.identify's, or a request's own) that is not a valid caller; `<reason>` says what to change. */
  invalidCaller: { code: ErrorCode.InvalidParams, message: 'Invalid caller: <reason>' },
  /** session.identify on a connection that already declared its caller. */
  callerAlreadyDeclared: {
    code: ErrorCode.InvalidParams,
    message: 'Caller already declared on this connection; open a new connection to act for another caller, or pass caller on each request',
  },
} as const;
