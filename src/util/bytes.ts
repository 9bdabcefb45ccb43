/**
 * Byte sizes as flags take them: a plain number of bytes, or a number with a unit, `k`/`KiB` (1,024), `M`/`MiB`,
 * `G`/`GiB`, and `KB`, `MB`, `GB` (powers of 1,000). `512MiB`, `1G`, `1073741824` and `1.5GiB` all read.
 */
const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
};

export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a size (bytes, or a number with K, M, G, KiB, MiB, GiB, KB, MB, GB)`);
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n)) throw new Error('size out of range');
  return n;
}

/** `1073741824` → `1 GiB`, `1536` → `1.5 KiB`: for help texts and logs. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (n >= size) return `${Number((n / size).toFixed(2))} ${unit}`;
  }
  return `${n} B`;
}
