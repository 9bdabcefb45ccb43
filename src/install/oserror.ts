/** Go-style texts for OS errors, so cliError strings read as the reference's do (`mkdir /x: not a directory`). */
import { failureText } from '../protocol/failures.js';
import { errnoText, errorCode } from '../util/errno.js';

/** The text of an OS error: Go's wording for its errno, else its message. */
export function osErrorText(err: unknown): string {
  const code = errorCode(err);
  if (code !== undefined && /^E[A-Z0-9]+$/.test(code)) return errnoText(code);
  return err instanceof Error ? err.message : String(err);
}

/** Go's *os.PathError: `<op> <path>: <reason>`. */
export function pathErrorText(op: string, path: string, err: unknown): string {
  return failureText('os', 'pathError', { op, path, reason: osErrorText(err) });
}
