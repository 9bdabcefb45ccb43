/**
 * Every fixed limit of `-install` and `-probe-cli`, with where it comes from. The reference section is
 * PROTOCOL.md and §10; the measured values are the reference daemon's own (its install.go comments cite
 * the VM rows). A few may be shortened by test-only environment variables, read in one place (testBound) and
 * documented as test-only in PROTOCOL.md and README.md, never in -help.
 */

/** `<cli> --version` of a CLI that was already present, and the whole `-probe-cli` run: 30 s (§8, §10). */
export const PRESENT_CLI_BOUND_MS = 30_000;
/** `<cli> --version` right after this run installed it: 120 s (§10, the "120s for a first run" of the cliError). */
export const FIRST_RUN_BOUND_MS = 120_000;
/** `ldd --version` for the libc fact: 5 s (§10 "detected without blocking more than 5 s"; D14 retired). */
export const LIBC_PROBE_BOUND_MS = 5_000;
/** After ldd exits, how long its output pipe may stay open (held by a child of ldd) before we stop reading: 2 s. */
export const LDD_DRAIN_GRACE_MS = 2_000;
/** A `-cli-url` body that delivers no byte for this long is aborted: 60 s (§10 "a 60 s read-idle abort"). */
export const DOWNLOAD_STALL_MS = 60_000;
/** Waiting for the response headers of `-cli-url`: 60 s (§10 "60 s for response headers"). */
export const RESPONSE_HEADER_TIMEOUT_MS = 60_000;
/** TCP connect of `-cli-url`: 30 s (§10 "a 30 s dial"). */
export const DIAL_TIMEOUT_MS = 30_000;
/** TLS handshake of `-cli-url`: 10 s (§10 "a 10 s TLS handshake"). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Redirects followed by `-cli-url`, as Go's http.Client does: 10. */
export const MAX_REDIRECTS = 10;
/** `__INSTALL_PROGRESS__` tick: one line a second, only when the byte count changed (§10). */
export const PROGRESS_INTERVAL_MS = 1_000;
/** The `.fetch-*` / `*.zst` sweep spares entries up to this age: 10 minutes (install-sweep-age changeset). */
export const SWEEP_MIN_AGE_MS = 10 * 60_000;
/** `*.zst.part` entries are swept only when older than 7 days (the reference's cells Z1). */
export const ZST_PART_MIN_AGE_MS = 7 * 24 * 3_600_000;
/** `-cli-keep` default: the 3 newest versions stay (§8 flag table). */
export const DEFAULT_CLI_KEEP = 3;

/**
 * The test-only override of a bound, or the bound itself. Only a positive integer counts, so a stray empty or
 * garbage value never changes production behaviour.
 */
export function testBound(envName: string, bound: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[envName];
  if (raw === undefined || !/^\d+$/.test(raw)) return bound;
  const n = Number(raw);
  return n > 0 ? n : bound;
}

/** The test-only environment variables, by the bound each replaces. */
export const TEST_ENV = {
  presentCli: 'CLAUSTRUM_TEST_PROBE_TIMEOUT_MS',
  firstRun: 'CLAUSTRUM_TEST_FIRST_RUN_TIMEOUT_MS',
  stall: 'CLAUSTRUM_TEST_STALL_TIMEOUT_MS',
  responseHeader: 'CLAUSTRUM_TEST_HEADER_TIMEOUT_MS',
} as const;
