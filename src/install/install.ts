/**
 * `claustrum -install` and `claustrum -probe-cli` (PROTOCOL.md).
 *
 * -install makes sure `<cli-dir>/<cli-version>` is a CLI that answers `--version`: present and runnable, or taken
 * from `-cli-zst` / downloaded from `-cli-url`, checksum-verified before it is decompressed (D13), decompressed
 * streaming into `<cli-dir>/.fetch-<random>` (0600), made 0755 and renamed into place, so `cliPath` only ever holds a
 * complete file. It prints exactly one facts line and exits 0 whenever it does; failures are reported in cliError.
 *
 * The order of the steps, and what is swept and pruned when, follow the reference's newest build:
 *
 *   case                               sweep (.fetch-*, *.zst)    prune (-cli-keep)
 *   present, answers                   no                         no
 *   present, stopped at 30 s           yes                        no
 *   install fails before the new run   yes                        no
 *   installed, new CLI answers         yes, before its run        yes
 *   installed, stopped at 120 s        yes, before its run        no
 *   installed, new CLI fails           yes, before its run        no (and the new CLI is removed)
 *
 * `*.zst.part` entries older than 7 days are swept first on every run with a cliPath.
 */
import { createReadStream } from 'node:fs';
import { chmod, lstat, open, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { failureText, jsonQuote } from '../protocol/failures.js';
import { cleanPath, expandTilde } from '../util/paths.js';
import { BUILD } from '../version.js';
import {
  DOWNLOAD_STALL_MS,
  FIRST_RUN_BOUND_MS,
  PRESENT_CLI_BOUND_MS,
  RESPONSE_HEADER_TIMEOUT_MS,
  SWEEP_MIN_AGE_MS,
  TEST_ENV,
  testBound,
  ZST_PART_MIN_AGE_MS,
} from './bounds.js';
import {
  BLOB_PREFIX,
  clearNonFolder,
  holdsHome,
  isBlobName,
  isSweptName,
  isZstPartName,
  mkdirAll,
  MkdirError,
  prune,
  randomName,
  sweep,
} from './cli-dir.js';
import { formatFacts, formatProgress, goArch, goOs, type InstallFacts } from './facts.js';
import { download } from './fetch.js';
import { detectLibc, type LibcOptions } from './libc.js';
import { osErrorText, pathErrorText } from './oserror.js';
import { probeVerdictLine, runVersion } from './probe.js';
import { DecompressError, decompressFile } from './zstd.js';

/** The cliError of a `--version` run that its bound stopped: the reference's text, the same for both bounds. */
export const CLI_UNRESPONSIVE = failureText('cliError', 'unresponsive');

/** Where the CLI goes without `-cli-dir` (a divergence: the reference uses `<home>/.claude/remote/ccd-cli`). */
export const DEFAULT_CLI_SUBDIR = path.join('.claustrum', 'cli');

export interface InstallOptions {
  readonly cliVersion: string;
  /** `''`: the default, `<home>/.claustrum/cli`. A leading `~/` is expanded. */
  readonly cliDir: string;
  readonly cliUrl: string;
  readonly cliChecksum: string;
  readonly cliZst: string;
  readonly cliKeep: number;
  /** > 0: cap on the decompressed CLI and on the download body (D10). */
  readonly maxCliBytes: number;
  /** > 0: deadline on the whole download (D12), in ms. */
  readonly downloadTimeoutMs: number;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv;
  /** For tests of the libc fact; production uses the defaults. */
  readonly libc?: LibcOptions;
}

interface Bounds {
  readonly presentMs: number;
  readonly firstRunMs: number;
  readonly stallMs: number;
  readonly headerMs: number;
}

function bounds(env: NodeJS.ProcessEnv): Bounds {
  return {
    presentMs: testBound(TEST_ENV.presentCli, PRESENT_CLI_BOUND_MS, env),
    firstRunMs: testBound(TEST_ENV.firstRun, FIRST_RUN_BOUND_MS, env),
    stallMs: testBound(TEST_ENV.stall, DOWNLOAD_STALL_MS, env),
    headerMs: testBound(TEST_ENV.responseHeader, RESPONSE_HEADER_TIMEOUT_MS, env),
  };
}

/** A failed install step: its cliError, and whether the failure also means "no cliPath" (an uncreatable cli-dir). */
class InstallError extends Error {
  constructor(
    message: string,
    readonly unresponsive = false,
    readonly noCliPath = false,
  ) {
    super(message);
  }
}

/** `-probe-cli <path>`: always exit 0; stdout says how `<path> --version` went. */
export async function runProbeCli(cliPath: string, stdout: (text: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  stdout(probeVerdictLine(await runVersion(cliPath, bounds(env).presentMs)));
  return 0;
}

export async function runInstall(o: InstallOptions): Promise<number> {
  const env = o.env ?? process.env;
  if (o.cliKeep < 0) {
    o.stderr(`${failureText('installUsage', 'badKeep', { n: o.cliKeep })}\n`);
    return 2;
  }
  let cliDir = o.cliDir === '' ? '' : expandTilde(o.cliDir);
  if (o.cliVersion !== '' && cliDir === '') {
    const home = env.HOME;
    if (!home) {
      o.stderr(`${failureText('installUsage', 'noHome')}\n`);
      return 2;
    }
    cliDir = path.join(home, DEFAULT_CLI_SUBDIR);
  }

  const facts: InstallFacts = {
    serverVersion: BUILD.version,
    os: goOs(),
    arch: goArch(),
    libc: await detectLibc(o.libc),
    cliPath: o.cliVersion === '' ? '' : cleanPath(path.join(cliDir, o.cliVersion)),
    cliWasPresent: false,
  };
  if (o.cliVersion !== '') await ensure({ o, cliDir, cliPath: facts.cliPath, facts, bounds: bounds(env), swept: false });
  o.stdout(`${formatFacts(facts)}\n`);
  return 0;
}

/** What the orphan sweep takes once it is old enough: staging files, stray `*.zst`, and blobs of killed installs. */
function isLitter(name: string): boolean {
  return isSweptName(name) || isBlobName(name);
}

/** The version rules (D6, D18): checked before anything touches the disk. */
export function versionError(version: string): string | undefined {
  if (version === '.' || version === '..' || /[/\\]/.test(version)) {
    return failureText('cliError', 'versionNotComponent', { v: jsonQuote(version) });
  }
  if (version.startsWith(BLOB_PREFIX)) return failureText('cliError', 'versionCollides', { v: jsonQuote(version) });
  return undefined;
}

/** One -install run with a version: what it was asked, where, and what it found so far. */
interface Run {
  readonly o: InstallOptions;
  readonly cliDir: string;
  readonly cliPath: string;
  readonly facts: InstallFacts;
  readonly bounds: Bounds;
  /** The litter sweep ran already (before the new CLI's run): it runs once per run. */
  swept: boolean;
}

async function ensure(run: Run): Promise<void> {
  const { o, cliDir, cliPath, facts, bounds: b } = run;
  const bad = versionError(o.cliVersion);
  if (bad !== undefined) {
    facts.cliError = bad;
    return;
  }
  await sweep(cliDir, Date.now(), ZST_PART_MIN_AGE_MS, isZstPartName);

  if (await isRegularFile(cliPath)) {
    const result = await runVersion(cliPath, b.presentMs);
    if (result === 'ok') {
      facts.cliWasPresent = true;
      return;
    }
    if (result === 'stopped') {
      facts.cliError = CLI_UNRESPONSIVE;
      facts.cliUnresponsive = true;
      await sweep(cliDir, Date.now(), SWEEP_MIN_AGE_MS, isLitter);
      return;
    }
  }

  try {
    await install(run);
    await prune(cliDir, o.cliKeep, cliPath);
  } catch (err) {
    // Whatever went wrong is reported in the facts line: -install never ends without it.
    const e = err instanceof InstallError ? err : new InstallError(failureText('cliError', 'other', { err: osErrorText(err) }));
    facts.cliError = e.message;
    if (e.unresponsive) facts.cliUnresponsive = true;
    if (e.noCliPath) facts.cliPath = '';
  } finally {
    if (!run.swept) await sweep(cliDir, Date.now(), SWEEP_MIN_AGE_MS, isLitter);
  }
}

async function install(run: Run): Promise<void> {
  const { o, cliDir, facts, bounds: b } = run;
  // The cli-dir comes first, before the source is looked at or the network used.
  await clearNonFolder(cliDir);
  try {
    await mkdirAll(cliDir);
  } catch (err) {
    throw new InstallError(failureText('cliError', 'mkdirCliDir', { err: err instanceof MkdirError ? err.message : osErrorText(err) }), false, true);
  }

  let blob: string;
  let blobIsOurs = false;
  const zst = o.cliZst === '' ? '' : expandTilde(o.cliZst);
  if (zst !== '') {
    await checkReadable(zst);
    if (o.cliChecksum !== '') {
      let sum: string;
      try {
        sum = await sha256File(zst);
      } catch (err) {
        throw new InstallError(failureText('cliError', 'openingInput', { err: pathErrorText('read', zst, err) }));
      }
      verifyChecksum(sum, o.cliChecksum);
    }
    blob = zst;
  } else if (o.cliUrl !== '') {
    const d = await download({
      url: o.cliUrl,
      dir: cliDir,
      capBytes: o.maxCliBytes,
      deadlineMs: o.downloadTimeoutMs,
      stallMs: b.stallMs,
      headerTimeoutMs: b.headerMs,
      progress: (line) => o.stdout(`${line}\n`),
    });
    facts.fetch = d.stats;
    if (!d.outcome.ok) throw new InstallError(d.outcome.error);
    blob = d.outcome.path;
    blobIsOurs = true;
    try {
      // Always verified, an empty -cli-checksum included (it can only mismatch).
      verifyChecksum(d.outcome.sha256, o.cliChecksum);
    } catch (err) {
      await unlink(blob).catch(() => undefined);
      throw err;
    }
    // The final progress line, only once the checksum passed.
    o.stdout(`${formatProgress(d.outcome.bytes, d.outcome.total)}\n`);
  } else {
    throw new InstallError(failureText('cliError', 'noSource', { v: o.cliVersion }));
  }

  let consume = false;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        consume = await stageAndInstall(run, blob, blobIsOurs);
        return;
      } catch (err) {
        if (!(err instanceof StageFailure)) throw err;
        consume ||= err.consume;
        // A concurrent install's sweep took our staging file: one more try (the blob is intact).
        if (err instanceof StagingVanished && attempt === 1) continue;
        throw new InstallError(err.message, err.unresponsive);
      }
    }
  } finally {
    if (blobIsOurs) await unlink(blob).catch(() => undefined);
    // A -cli-zst blob is consumed once it was decompressed, whatever happened after.
    if (zst !== '' && consume) await unlink(zst).catch(() => undefined);
  }
}

/** A stage step failed; `consume` says whether decompression had succeeded (so a -cli-zst blob is used up). */
class StageFailure extends Error {
  constructor(
    message: string,
    readonly consume: boolean,
    readonly unresponsive = false,
  ) {
    super(message);
  }
}

class StagingVanished extends StageFailure {}

/**
 * Decompress into `.fetch-<random>` (0600), make it 0755, clear what sits at cliPath, rename it into place, sweep,
 * then run the new CLI with the first-run bound. Resolves true (the blob was decompressed) on success.
 */
async function stageAndInstall(run: Run, blob: string, blobIsOurs: boolean): Promise<boolean> {
  const { o, cliPath, bounds: b } = run;
  const dir = path.dirname(cliPath);
  const staging = path.join(dir, `.fetch-${randomName()}`);
  let handle: FileHandle;
  try {
    handle = await open(staging, 'wx', 0o600);
  } catch (err) {
    throw new StageFailure(failureText('cliError', 'stagingCli', { err: pathErrorText('createtemp', path.join(dir, '.fetch-*'), err) }), false);
  }
  let placed = false;
  try {
    try {
      await decompressFile(blob, handle, o.maxCliBytes);
      // On disk before it can take the final name, so a crash never leaves a short CLI at cliPath.
      await handle.sync();
    } catch (err) {
      throw new StageFailure(
        failureText('cliError', 'decompressing', { err: err instanceof DecompressError ? err.message : osErrorText(err) }),
        false,
      );
    } finally {
      await handle.close().catch(() => undefined);
    }
    try {
      await chmod(staging, 0o755);
    } catch (err) {
      throw new StageFailure(failureText('cliError', 'chmodStaging', { path: staging, reason: osErrorText(err) }), true);
    }
    const occupant = await lstat(cliPath).catch(() => undefined);
    if (occupant?.isDirectory()) {
      if (await holdsHome(cliPath)) {
        throw new StageFailure(failureText('cliError', 'cliPathHoldsHome', { path: jsonQuote(cliPath) }), false);
      }
      try {
        await rm(cliPath, { recursive: true, force: true });
      } catch (err) {
        throw new StageFailure(failureText('cliError', 'clearingStaleDir', { path: cliPath, err: osErrorText(err) }), true);
      }
    }
    try {
      await rename(staging, cliPath);
      placed = true;
    } catch (err) {
      const text = failureText('cliError', 'rename', { from: staging, to: cliPath, reason: osErrorText(err) });
      if (!(await lstat(staging).catch(() => undefined))) throw new StagingVanished(failureText('cliError', 'stagingVanished', { err: text }), true);
      throw new StageFailure(text, true);
    }
  } finally {
    if (!placed) await unlink(staging).catch(() => undefined);
  }

  // The new CLI runs at its final path, with its folder already tidy: no blob of ours, no old litter.
  if (blobIsOurs) await unlink(blob).catch(() => undefined);
  await sweep(dir, Date.now(), SWEEP_MIN_AGE_MS, isLitter);
  run.swept = true;
  const result = await runVersion(cliPath, b.firstRunMs);
  if (result === 'stopped') throw new StageFailure(CLI_UNRESPONSIVE, true, true);
  if (result === 'failed') {
    await unlink(cliPath).catch(() => undefined);
    throw new StageFailure(failureText('cliError', 'notRunnable', { path: cliPath }), true);
  }
  return true;
}

/** `opening input: <err>` for a -cli-zst that cannot be opened or read (a folder fails at the read). */
async function checkReadable(p: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(p, 'r');
  } catch (err) {
    throw new InstallError(failureText('cliError', 'openingInput', { err: pathErrorText('open', p, err) }));
  }
  try {
    await fh.read(Buffer.alloc(1), 0, 1, 0);
  } catch (err) {
    throw new InstallError(failureText('cliError', 'openingInput', { err: pathErrorText('read', p, err) }));
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Case-sensitive, as on the reference: the digest is lower-case hex, so an upper-case checksum mismatches. */
function verifyChecksum(actual: string, expected: string): void {
  if (actual !== expected) throw new InstallError(failureText('cliError', 'checksumMismatch', { expected, actual }));
}

async function sha256File(p: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(p, { highWaterMark: 1 << 16 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function isRegularFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}
