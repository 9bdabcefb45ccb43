/**
 * Raw-line helpers on top of RpcClient, for tests that must control every byte of a request and see every byte of
 * the reply.
 */
import type { RpcClient } from './rpc.js';
import { until } from './daemon.js';

/** Sends `text` as is and resolves with the next raw line the connection receives. */
export async function exchange(c: RpcClient, text: string | Buffer, timeoutMs = 10_000): Promise<string> {
  const before = c.lines.length;
  c.sendRaw(text);
  await until(() => c.lines.length > before || c.isClosed, timeoutMs, 'a reply line');
  if (c.lines.length <= before) throw new Error('connection closed without a reply');
  return c.lines[before]!;
}

/** A request line (no newline) with `auth` set to `token`, its members in the order given. */
export function line(token: string, fields: Record<string, unknown>): string {
  return JSON.stringify({ jsonrpc: '2.0', ...fields, auth: token });
}

/** The reply to the request whose id is `id`, raw, once it has arrived. */
export async function rawReply(c: RpcClient, id: unknown): Promise<string> {
  const want = JSON.stringify(id);
  await c.waitFor((m) => m.type !== 'stream' && JSON.stringify(m.id) === want);
  return c.lines.find((l) => {
    const m = JSON.parse(l);
    return m.type !== 'stream' && JSON.stringify(m.id) === want;
  })!;
}

export const PARSE_ERROR = '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}';

/** The exact error line the daemon sends for `id` (given as its JSON text). */
export function errorLine(idJson: string, code: number, message: string): string {
  return `{"jsonrpc":"2.0","id":${idJson},"error":{"code":${code},"message":${JSON.stringify(message)}}}`;
}
