/**
 * Token sources and `daemon.token`, the file clients find the token in (PROTOCOL.md).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, fstat } from 'node:fs';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { lstat, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { errnoText, errorCode } from '../util/errno.js';
import { normalizeToken, TOKEN_FILE } from '../protocol/paths.js';

export class TokenError extends Error {}

/** Reads `-token-file` once and unlinks it (consumes it). An unreadable or empty file is fatal. */
export async function consumeTokenFile(file: string): Promise<{ token: string; unlinkError?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TokenError(`read --token-file: open ${file}: ${errnoText(errorCode(err))}`);
  }
  const token = normalizeToken(text);
  let unlinkError: string | undefined;
  try {
    await unlink(file);
  } catch (err) {
    unlinkError = `failed to remove --token-file ${file}: ${errnoText(errorCode(err))}`;
  }
  if (token === '') throw new TokenError(`read --token-file: ${file} is empty; put the token in it (one line)`);
  return { token, unlinkError };
}

/** A fresh random token for a daemon started without a token source. */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/** The identity of a file this daemon wrote, so teardown removes it only if it is still ours. */
export interface FileIdentity {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

export async function identify(file: string): Promise<FileIdentity | undefined> {
  try {
    const st = await lstat(file);
    return { path: file, dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/** Unlinks the file only if it is still the one identified (a successor may have replaced it). */
export async function removeIfOwned(id: FileIdentity | undefined): Promise<boolean> {
  if (!id) return false;
  const now = await identify(id.path);
  if (!now || now.dev !== id.dev || now.ino !== id.ino) return false;
  await unlink(id.path).catch(() => {});
  return true;
}

/** Writes `daemon.token` (0600) atomically: a temp file in the same directory, then a rename. */
export async function persistToken(runDir: string, token: string): Promise<FileIdentity> {
  const target = path.join(runDir, TOKEN_FILE);
  const temp = path.join(runDir, `${TOKEN_FILE}-${randomBytes(6).toString('hex')}`);
  const fh = await open(temp, 'wx', 0o600);
  try {
    await fh.writeFile(token);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(temp, target);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  const id = await identify(target);
  if (!id) throw new Error(`${target} vanished after rename`);
  return id;
}

/** Longest token accepted from a descriptor; a token is a line, not a stream. */
const MAX_TOKEN_BYTES = 64 * 1024;

/**
 * Reads a token line from an open descriptor (`-token-fd`, or the launcher's pipe): up to the first newline or
 * EOF, one trailing newline stripped. Pipes and sockets are read through net.Socket, which copes with a
 * non-blocking descriptor; files and terminals through a file stream.
 */
export async function readTokenFd(fd: number, what = '--token-fd'): Promise<string> {
  let st;
  try {
    st = await new Promise<import('node:fs').Stats>((resolve, reject) => fstat(fd, (err, s) => (err ? reject(err) : resolve(s))));
  } catch (err) {
    throw new TokenError(`read ${what}: fd ${fd}: ${errnoText(errorCode(err))}`);
  }
  const stream: Readable =
    st.isFIFO() || st.isSocket() ? new net.Socket({ fd, readable: true, writable: false }) : createReadStream('', { fd, autoClose: true });
  const text = await new Promise<string>((resolve, reject) => {
    let acc = '';
    stream.on('data', (d: Buffer | string) => {
      acc += d.toString();
      const nl = acc.indexOf('\n');
      if (nl !== -1 || acc.length > MAX_TOKEN_BYTES) {
        stream.destroy();
        resolve(nl !== -1 ? acc.slice(0, nl + 1) : acc);
      }
    });
    stream.once('end', () => resolve(acc));
    stream.once('error', (err) => reject(new TokenError(`read ${what}: ${err.message}`)));
  });
  const token = normalizeToken(text);
  if (token === '') throw new TokenError(`read ${what}: the token is empty; write the token (one line) to fd ${fd}`);
  return token;
}
