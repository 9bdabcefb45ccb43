/** A reply as the RPC layer hands it to a codec: the echoed id and exactly one of result or error. */
import { CATALOGUE, type CatalogueError } from '../../protocol/errors.js';
import { type EchoId, NULL_ID } from './request.js';

export type Reply =
  | { readonly id: EchoId; readonly result: unknown; readonly error?: undefined }
  | { readonly id: EchoId; readonly error: { readonly code: number; readonly message: string } };

export function errorReply(id: EchoId, err: CatalogueError): Reply {
  return { id, error: { code: err.code, message: err.message } };
}

/** The reply to a line that is not a request: the id cannot be known. */
export function parseErrorReply(): Reply {
  return { id: NULL_ID, error: CATALOGUE.parseError };
}
