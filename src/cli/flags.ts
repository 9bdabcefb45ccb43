/**
 * Flag parsing with Go's `flag` package semantics, because existing callers drive the reference binary that way:
 * `-flag` and `--flag` are the same; values come as `-flag=v` or `-flag v`; a bool flag takes no separate value
 * (`-flag=false` to turn one off); parsing stops at `--` or at the first argument that is not a flag.
 */
import { parseBytes } from '../util/bytes.js';
import { parseDuration } from '../util/duration.js';

export type FlagKind = 'bool' | 'string' | 'int' | 'duration' | 'bytes' | 'list';

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  /** The value when the flag is not given; stated in -help. */
  readonly default?: string | number | boolean;
  /** Placeholder in -help, such as `path` in `-socket path`. */
  readonly arg?: string;
  readonly usage: string;
}

export type FlagValue = string | number | boolean | string[];

export class FlagError extends Error {}
/** -h / -help was asked for. */
export class HelpRequested extends Error {}

export interface ParsedFlags {
  /** Flags given on the command line, by name. */
  readonly given: ReadonlyMap<string, FlagValue>;
  readonly positionals: readonly string[];
}

export function parseFlags(specs: readonly FlagSpec[], argv: readonly string[]): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const given = new Map<string, FlagValue>();
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') break;
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body === '' || body.startsWith('-') || body.startsWith('=')) throw new FlagError(`bad flag syntax: ${arg}`);
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (spec === undefined) {
      if (name === 'h' || name === 'help') throw new HelpRequested();
      throw new FlagError(`flag provided but not defined: -${name}`);
    }
    let text: string;
    if (eq !== -1) text = body.slice(eq + 1);
    else if (spec.kind === 'bool') text = 'true';
    else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      text = argv[++i]!;
    }
    given.set(name, convert(spec, text, given.get(name)));
  }
  return { given, positionals: argv.slice(i) };
}

function convert(spec: FlagSpec, text: string, previous: FlagValue | undefined): FlagValue {
  const invalid = (why: string) => new FlagError(`invalid value ${JSON.stringify(text)} for flag -${spec.name}: ${why}`);
  switch (spec.kind) {
    case 'string':
      return text;
    case 'list':
      return [...((previous as string[] | undefined) ?? []), text];
    case 'bool': {
      const b = parseBool(text);
      if (b === undefined) throw invalid('parse error');
      return b;
    }
    case 'int': {
      if (!/^[+-]?\d+$/.test(text)) throw invalid('parse error');
      const n = Number(text);
      if (!Number.isSafeInteger(n)) throw invalid('value out of range');
      return n;
    }
    case 'duration':
      try {
        return parseDuration(text);
      } catch (err) {
        throw invalid((err as Error).message);
      }
    case 'bytes':
      try {
        return parseBytes(text);
      } catch (err) {
        throw invalid((err as Error).message);
      }
  }
}

/** strconv.ParseBool. */
function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** The value of a flag: as given, else its default. */
export function flagValue<T extends FlagValue>(specs: readonly FlagSpec[], parsed: ParsedFlags, name: string): T {
  if (parsed.given.has(name)) return parsed.given.get(name) as T;
  const spec = specs.find((s) => s.name === name);
  if (spec === undefined) throw new Error(`unknown flag ${name}`);
  if (spec.kind === 'list') return [] as unknown as T;
  if (spec.kind === 'duration' && typeof spec.default === 'string') return parseDuration(spec.default) as T;
  if (spec.kind === 'bytes' && typeof spec.default === 'string') return parseBytes(spec.default) as T;
  return (spec.default ?? (spec.kind === 'bool' ? false : spec.kind === 'string' ? '' : 0)) as T;
}

/** Go-style PrintDefaults: every flag, its argument, its usage and its default. */
export function formatUsage(specs: readonly FlagSpec[]): string {
  const lines: string[] = [];
  for (const s of [...specs].sort((a, b) => a.name.localeCompare(b.name))) {
    const arg = s.kind === 'bool' ? '' : ` ${s.arg ?? (s.kind === 'list' ? 'value' : s.kind)}`;
    let usage = s.usage;
    const shown = s.default;
    if (shown !== undefined && shown !== '' && shown !== false && shown !== 0) {
      usage += ` (default ${typeof shown === 'string' && s.kind === 'string' ? JSON.stringify(shown) : String(shown)})`;
    }
    lines.push(`  -${s.name}${arg}`, `    \t${usage.replace(/\n/g, '\n    \t')}`);
  }
  return lines.join('\n');
}
