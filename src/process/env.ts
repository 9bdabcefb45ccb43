/**
 * The child environment (PROTOCOL.md): the daemon's own, with PATH optionally replaced by the login
 * shell's, merged with the request's `env`. Secrets and the daemon's internal markers are removed last, so a request
 * cannot put them back either.
 */

/** Never passed to a child: the reference's token variable and our re-exec markers. */
export const STRIPPED_ENV: readonly string[] = [
  'CLAUDE_RPC_TOKEN',
  'CLAUSTRUM_DAEMON_CHILD',
  'CLAUSTRUM_TOKEN_PIPE',
  'CLAUSTRUM_READY_FD',
  // -restart's mark for the -serve it runs (src/cli/restart.ts): a child's own -serve must not inherit its leniency.
  'CLAUSTRUM_HANDOVER',
];

export function buildChildEnv(
  base: NodeJS.ProcessEnv,
  overrides: Readonly<Record<string, string>> | undefined,
  loginPath?: string,
): Record<string, string> {
  const env: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  if (loginPath !== undefined) env.PATH = loginPath;
  if (overrides) for (const k of Object.keys(overrides)) env[k] = overrides[k]!;
  for (const k of STRIPPED_ENV) delete env[k];
  return env;
}
