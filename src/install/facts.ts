/**
 * The `__INSTALL_RESULT__` facts line (PROTOCOL.md): one JSON object whose keys come in the reference's
 * order, optional keys omitted when they do not apply.
 */

export const RESULT_PREFIX = '__INSTALL_RESULT__';
export const PROGRESS_PREFIX = '__INSTALL_PROGRESS__';

/** The `fetch` object: present whenever a `-cli-url` download was attempted, even a 0-byte 404. */
export interface FetchStats {
  readonly bytes: number;
  readonly ms: number;
  readonly longestPauseMs: number;
}

export interface InstallFacts {
  serverVersion: string;
  os: string;
  arch: string;
  libc: string;
  cliPath: string;
  cliWasPresent: boolean;
  cliError?: string;
  cliUnresponsive?: true;
  fetch?: FetchStats;
}

/** Go's GOOS for a Node platform. */
export function goOs(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'windows' : platform;
}

/** Go's GOARCH for a Node arch: `x64` is `amd64`, `ia32` is `386`, `mipsel` is `mipsle`; the rest are alike (arm64, …). */
export function goArch(arch: string = process.arch): string {
  switch (arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'mipsel':
      return 'mipsle';
    default:
      return arch;
  }
}

/** The facts line, without its newline. Keys in the reference's order, whatever order they were set in. */
export function formatFacts(f: InstallFacts): string {
  const ordered: Record<string, unknown> = {
    serverVersion: f.serverVersion,
    os: f.os,
    arch: f.arch,
    libc: f.libc,
    cliPath: f.cliPath,
    cliWasPresent: f.cliWasPresent,
  };
  if (f.cliError !== undefined && f.cliError !== '') ordered.cliError = f.cliError;
  if (f.cliUnresponsive) ordered.cliUnresponsive = true;
  if (f.fetch !== undefined) {
    ordered.fetch = { bytes: f.fetch.bytes, ms: f.fetch.ms, longestPauseMs: f.fetch.longestPauseMs };
  }
  return `${RESULT_PREFIX}${JSON.stringify(ordered)}`;
}

/** One `__INSTALL_PROGRESS__` line, without its newline; `total` only when the server sent a Content-Length. */
export function formatProgress(bytes: number, total: number): string {
  return `${PROGRESS_PREFIX}${JSON.stringify(total > 0 ? { phase: 'download', bytes, total } : { phase: 'download', bytes })}`;
}
