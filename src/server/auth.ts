/**
 * The token check. Both sides are hashed to fixed-length SHA-256 digests before `timingSafeEqual`, because that
 * function throws when lengths differ and an early length check would leak the token's length through timing
 * (reliability.md T4). The comparison never throws, whatever the client sends.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

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
