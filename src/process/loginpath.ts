/**
 * The user's login-shell PATH for children (PROTOCOL.md): a daemon started by ssh or systemd has a bare
 * PATH, while the tools an agent runs live where the user's shell profile puts them.
 *
 * Read once, lazily, at the first spawn, which waits for it, with a 4 s cap; on any failure the inherited PATH is
 * used. It changes only the children's PATH: the daemon resolves commands with its own.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';

export const LOGIN_PATH_TIMEOUT_MS = 4000;
const MARK = '__CLAUSTRUM_LOGIN_PATH__';

async function executable(file: string | undefined): Promise<boolean> {
  if (!file?.startsWith('/')) return false;
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The shell to ask: $SHELL if executable, else the first of zsh, bash, sh. */
async function chooseShell(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const candidate of [env.SHELL, '/bin/zsh', '/bin/bash', '/bin/sh']) if (await executable(candidate)) return candidate;
  return undefined;
}

export async function readLoginShellPath(env: NodeJS.ProcessEnv = process.env, timeoutMs = LOGIN_PATH_TIMEOUT_MS): Promise<string | undefined> {
  const shell = await chooseShell(env);
  if (!shell) return undefined;
  // A small environment, as the reference gives it: enough for profiles to run, nothing of the daemon's own.
  const small: Record<string, string> = { DISABLE_AUTO_UPDATE: 'true', TERM: '', ZSH_DISABLE_COMPFIX: 'true', SHELL: shell };
  for (const k of ['HOME', 'PATH', 'USER', 'LOGNAME']) if (env[k] !== undefined) small[k] = env[k]!;
  return new Promise((resolve) => {
    let out = '';
    let settled = false;
    const finish = (value: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    const child = spawn(shell, ['-l', '-i', '-c', `printf '\\n${MARK}%s\\n' "$PATH"`], {
      env: small,
      detached: true, // its own session: an interactive shell must not touch our terminal, and we kill its group
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      finish(undefined);
    }, timeoutMs);
    child.on('error', () => finish(undefined));
    child.stdout!.on('data', (d: Buffer) => {
      if (out.length < 1 << 20) out += d.toString('utf8');
    });
    child.on('close', () => {
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      const value = line?.slice(MARK.length).trim();
      finish(value ? value : undefined);
    });
  });
}
