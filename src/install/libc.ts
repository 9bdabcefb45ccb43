/**
 * The `libc` fact (PROTOCOL.md): `glibc` or `musl` on Linux, `""` elsewhere.
 *
 * The reference's newest order: run `ldd --version` first and let its output decide (`musl` anywhere in it, any
 * case, means musl; any other output means glibc; the exit code is not consulted, because musl's ldd prints its
 * banner on stderr and exits 1). Only when ldd printed nothing (missing, or stopped at the bound, whose output is
 * dropped) does a musl loader `/lib/ld-musl-*.so.*` decide. ldd runs in its own process group and the whole group is
 * killed at the bound, so a wedged ldd costs at most LIBC_PROBE_BOUND_MS.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { LDD_DRAIN_GRACE_MS, LIBC_PROBE_BOUND_MS } from './bounds.js';
import { killGroup } from './probe.js';

export type Libc = 'glibc' | 'musl';

/** What ldd's output says, or undefined when it said nothing and the loader must decide. */
export function classifyLddOutput(output: string): Libc | undefined {
  if (output.toLowerCase().includes('musl')) return 'musl';
  return output.length > 0 ? 'glibc' : undefined;
}

const MUSL_LOADER = /^ld-musl-.*\.so\./;

/** Whether a musl dynamic loader of any architecture is in `dir` (the glob `/lib/ld-musl-*.so.*`). */
export async function hasMuslLoader(dir = '/lib'): Promise<boolean> {
  try {
    return (await readdir(dir)).some((name) => MUSL_LOADER.test(name));
  } catch {
    return false;
  }
}

export interface LibcOptions {
  readonly platform?: NodeJS.Platform;
  /** The ldd to run; `ldd` from PATH by default. */
  readonly ldd?: string;
  readonly boundMs?: number;
  readonly graceMs?: number;
  readonly loaderDir?: string;
}

export async function detectLibc(options: LibcOptions = {}): Promise<Libc | ''> {
  if ((options.platform ?? process.platform) !== 'linux') return '';
  const output = await runLdd(options.ldd ?? 'ldd', options.boundMs ?? LIBC_PROBE_BOUND_MS, options.graceMs ?? LDD_DRAIN_GRACE_MS);
  return classifyLddOutput(output) ?? ((await hasMuslLoader(options.loaderDir)) ? 'musl' : 'glibc');
}

/**
 * `ldd --version`, stdout and stderr together. Resolves `''` when ldd cannot start or the bound stopped it. Once ldd
 * has exited, its output is read until the pipes close or `graceMs` passes (a child of ldd may hold them), and what
 * was read is used.
 */
function runLdd(command: string, boundMs: number, graceMs: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    let killed = false;
    let grace: NodeJS.Timeout | undefined;
    const child = spawn(command, ['--version'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const done = (out: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(bound);
      clearTimeout(grace);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve(out);
    };
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => chunks.push(d));
    child.on('error', () => done(''));
    const bound = setTimeout(() => {
      killed = true;
      killGroup(child);
      child.stdout.destroy();
      child.stderr.destroy();
    }, boundMs);
    child.on('exit', () => {
      clearTimeout(bound);
      if (killed) return done('');
      grace = setTimeout(() => done(Buffer.concat(chunks).toString('latin1')), graceMs);
    });
    child.on('close', () => done(killed ? '' : Buffer.concat(chunks).toString('latin1')));
  });
}
