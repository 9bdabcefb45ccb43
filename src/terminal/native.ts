/**
 * The two things a terminal needs native code for, loaded on first use from the optional package `@lydell/node-pty`:
 * `open(cols, rows)` (openpty(3): a master/slave pair with the window size set, slave unlocked) and
 * `resize(fd, cols, rows)` (ioctl TIOCSWINSZ on the master; the kernel sends SIGWINCH to the foreground group).
 *
 * Why this package: it ships node-pty 1.1.0 prebuilt, one optional package per platform (`-linux-x64` is 212 KB with
 * its binary), no install script, so `npm ci` needs no compiler and npm 11's install-script approval does not apply.
 * `node-pty` 1.1.0 itself compiles on Linux (node-gyp: g++, make, python3); `node-pty` 1.2.0-beta.x carries the
 * prebuilds of every platform (27 MB) behind an install script that falls back to node-gyp. Both were installed here
 * with the compiler hidden from PATH: `@lydell/node-pty` in 3 s, no script.
 *
 * Why only these two functions and not node-pty's `spawn()` (docs/terminal-design.md has the measurements):
 * its fork leaves every other terminal's master descriptor open in the new child, its reader loses the tail of a
 * fast exit (27 of 40 `cat` runs), its write path busy-loops the event loop while the program does not read (libuv
 * writes to a PTY master in "blocking writes" mode), and it starts one waitpid thread per terminal. The child is
 * started by child_process instead (pty.ts), which the supervisor already knows how to wait for and signal.
 *
 * The binding is node-pty's internal interface, so the version is pinned exactly (package.json) and checked here.
 */
import { createRequire } from 'node:module';

export const PTY_PACKAGE = '@lydell/node-pty';
/** The exact version whose native interface this module was written against. */
export const PTY_PACKAGE_VERSION = '1.1.0';

export interface PtyPair {
  /** Non-blocking, and NOT close-on-exec: see descriptors.ts. */
  readonly master: number;
  /** Non-blocking, and NOT close-on-exec. */
  readonly slave: number;
  /** The slave's path, `/dev/pts/N`. */
  readonly pty: string;
}

export interface PtyNative {
  open(cols: number, rows: number): PtyPair;
  resize(fd: number, cols: number, rows: number): void;
}

/** Why terminals are not available here, in words for an operator: what is missing and what to do. */
export interface PtyUnavailable {
  readonly code: 'ptyUnavailable';
  readonly message: string;
}

export type PtyLoad = { readonly ok: true; readonly native: PtyNative } | { readonly ok: false; readonly error: PtyUnavailable };

let loaded: PtyLoad | undefined;

/**
 * The binding, loaded once; a daemon that never starts a terminal never loads it. Never throws: a failure is kept
 * and returned to every caller, so piped processes are unaffected and each terminal spawn gets the same clear error.
 */
export function loadPty(): PtyLoad {
  loaded ??= tryLoad(createRequire(import.meta.url));
  return loaded;
}

/** The load with an injected resolver, for tests of the error texts. */
export function tryLoad(require: NodeRequire, platform: string = process.platform, arch: string = process.arch): PtyLoad {
  const fail = (message: string): PtyLoad => ({ ok: false, error: { code: 'ptyUnavailable', message } });
  const reinstall = `Reinstall claustrum's dependencies with optional packages included (\`npm ci\`, without --omit=optional or --no-optional).`;
  if (platform !== 'linux') return fail(`terminals are implemented for Linux only; this daemon runs on ${platform}.`);
  if (!glibcVersion()) {
    return fail(
      `terminals need glibc 2.28 or newer: ${PTY_PACKAGE}'s prebuilt binary is linked against glibc and this system's C library is not glibc (musl?). Piped processes work as before.`,
    );
  }
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${PTY_PACKAGE}/package.json`);
  } catch {
    return fail(`terminals need the optional package ${PTY_PACKAGE}@${PTY_PACKAGE_VERSION}, which is not installed. ${reinstall}`);
  }
  const fromPkg = createRequire(pkgJson);
  const version = (fromPkg(pkgJson) as { version?: unknown }).version;
  if (version !== PTY_PACKAGE_VERSION) {
    return fail(
      `terminals need ${PTY_PACKAGE}@${PTY_PACKAGE_VERSION} exactly (its native interface is used directly), but ${String(version)} is installed. ${reinstall}`,
    );
  }
  const binaryPackage = `${PTY_PACKAGE}-${platform}-${arch}`;
  let binding: unknown;
  try {
    binding = fromPkg(`${binaryPackage}/pty.node`);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND') {
      return fail(
        `terminals need ${binaryPackage}, the prebuilt binary of ${PTY_PACKAGE} for ${platform}-${arch}, which is not installed (or not published for this platform). ${reinstall}`,
      );
    }
    return fail(`terminals need ${binaryPackage}/pty.node, which failed to load: ${e.message}. ${reinstall}`);
  }
  const b = binding as Partial<Record<'open' | 'resize', unknown>>;
  if (typeof b.open !== 'function' || typeof b.resize !== 'function') {
    return fail(`${binaryPackage}/pty.node does not export open() and resize(); it is not the ${PTY_PACKAGE_VERSION} binary. ${reinstall}`);
  }
  return { ok: true, native: binding as PtyNative };
}

function glibcVersion(): string | undefined {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime;
}
