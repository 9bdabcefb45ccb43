/**
 * Signal names as process.kill takes them (PROTOCOL.md): case-sensitive, an optional `SIG` prefix, and
 * only KILL, INT and HUP recognised; anything else, the empty string included, means TERM. There is no QUIT.
 */
export type KillSignal = 'SIGKILL' | 'SIGINT' | 'SIGHUP' | 'SIGTERM';

export function parseSignal(name: string | undefined): KillSignal {
  const bare = name?.startsWith('SIG') ? name.slice(3) : name;
  switch (bare) {
    case 'KILL':
      return 'SIGKILL';
    case 'INT':
      return 'SIGINT';
    case 'HUP':
      return 'SIGHUP';
    default:
      return 'SIGTERM';
  }
}
