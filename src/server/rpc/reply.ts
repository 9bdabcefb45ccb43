/** A reply as the RPC layer hands it to a codec: the echoed id and exactly one of result or error. */
import { CATALOGUE, type CatalogueError } from '../../protocol/errors.js';
import { type EchoId, NULL_ID } from './request.js';

export type Reply =
  | { readonly id: EchoId; readonly result: unknown; readonly error?: undefined }
  | {
      readonly id: EchoId;
      readonly error: { readonly code: number; readonly message: string };
      /**
       * Nothing was done and this daemon is leaving (another took its processes over): the reply is not written, the
       * connection is closed instead, and the client retries on the successor. The audit records the error.
       */
      readonly withdrawn?: true;
    };

export function errorReply(id: EchoId, err: CatalogueError): Reply {
  return { id, error: { code: err.code, message: err.message } };
}

/** The reply to a line that is not a request: the id cannot be known. */
export function parseErrorReply(): Reply {
  return { id: NULL_ID, error: CATALOGUE.parseError };
}
