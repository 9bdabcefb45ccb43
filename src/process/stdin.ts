/**
 * The stdin offset rules (claustrum-wire.md §4.5), pure so they are unit-tested on their own.
 *
 * A write names the byte offset its data starts at; `applied` is how many bytes the daemon has accepted. A client
 * that lost its connection resends from any offset it likes and the daemon keeps exactly-once semantics:
 * - offset beyond applied: a gap, refused (-32003);
 * - the data lies wholly below applied: a duplicate, answered with success and nothing sent;
 * - the data straddles applied: only the new tail is written;
 * - no offset, or offset == applied: everything is appended.
 */
export type StdinVerdict = { readonly kind: 'gap' } | { readonly kind: 'duplicate' } | { readonly kind: 'write'; readonly skip: number };

export function stdinVerdict(applied: number, offset: number | undefined, length: number): StdinVerdict {
  if (offset === undefined) return { kind: 'write', skip: 0 };
  if (offset > applied) return { kind: 'gap' };
  if (offset + length <= applied) return { kind: 'duplicate' };
  return { kind: 'write', skip: applied - offset };
}

/** The most unwritten stdin bytes a process may have queued before writes are refused (-32002). */
export const STDIN_QUEUE_CAP_BYTES = 16 * 1024 * 1024;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes standard base64 as strictly as Go's StdEncoding: padding required, no URL alphabet, `\r` and `\n`
 * skipped. Node's own decoder accepts nearly anything, so the text is validated first. Returns undefined when Go
 * would have refused it.
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const s = text.includes('\n') || text.includes('\r') ? text.replace(/[\r\n]/g, '') : text;
  if (s.length % 4 !== 0 || !BASE64.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}
