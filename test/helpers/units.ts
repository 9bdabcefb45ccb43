/**
 * Parsers for the service files claustrum writes and ships, strict enough that a malformed file fails the test:
 * systemd unit files (systemd.syntax(7): sections, `Key=value`, comments; ExecStart= words with systemd's quoting and
 * `%%`/`$$`), launchd property lists (the XML subset they use), and `systemd-analyze verify` where it exists.
 */
import { execFile } from 'node:child_process';

export type Unit = Record<string, Record<string, string[]>>;

export function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([A-Za-z0-9_-]+)\]$/.exec(line);
    if (header) {
      section = unit[header[1]!] ??= {};
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!kv) throw new Error(`line ${i + 1} is neither a section, a setting nor a comment: ${JSON.stringify(line)}`);
    if (!section) throw new Error(`line ${i + 1}: a setting before any section`);
    if (kv[2]!.endsWith('\\')) throw new Error(`line ${i + 1}: continuation lines are not expected here`);
    (section[kv[1]!] ??= []).push(kv[2]!.trim());
  }
  return unit;
}

/** An ExecStart= (or Environment=) value split into words, quotes and escapes undone, `%%` and `$$` collapsed. */
export function splitExec(value: string, dollars = true): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (value[i] === ' ' || value[i] === '\t') i++;
    if (i >= value.length) break;
    let word = '';
    if (value[i] === '"' || value[i] === "'") {
      const q = value[i]!;
      i++;
      while (i < value.length && value[i] !== q) {
        if (value[i] === '\\') {
          const n = value[i + 1];
          if (n === undefined) throw new Error(`dangling backslash in ${value}`);
          word += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          i += 2;
        } else word += value[i++];
      }
      if (value[i] !== q) throw new Error(`unterminated quote in ${value}`);
      i++;
      if (i < value.length && value[i] !== ' ') throw new Error(`text right after a closing quote in ${value}`);
    } else {
      while (i < value.length && value[i] !== ' ' && value[i] !== '\t') {
        if (value[i] === '\\' || value[i] === '"') throw new Error(`unquoted ${value[i]} in ${value}`);
        word += value[i++];
      }
    }
    words.push(unescapeSpecifiers(word, dollars));
  }
  return words;
}

function unescapeSpecifiers(w: string, dollars: boolean): string {
  let out = '';
  for (let i = 0; i < w.length; i++) {
    if (w[i] === '%') {
      if (w[i + 1] !== '%') throw new Error(`unescaped specifier in ${w}`);
      out += '%';
      i++;
    } else if (dollars && w[i] === '$') {
      if (w[i + 1] !== '$') throw new Error(`unescaped variable in ${w}`);
      out += '$';
      i++;
    } else out += w[i];
  }
  return out;
}

/** `systemd-analyze verify` on unit files: undefined when the tool is not installed, else its exit code and output. */
export function systemdVerify(files: readonly string[]): Promise<{ code: number; output: string } | undefined> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', ['verify', ...files], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

export type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

/** The XML property list subset launchd agents use: dict, array, string, integer, true, false. */
export function parsePlist(xml: string): PlistValue {
  const body = xml
    .replace(/^<\?xml[^>]*\?>\s*/, '')
    .replace(/<!DOCTYPE[^>]*>\s*/, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .trim();
  const m = /^<plist version="1\.0">([\s\S]*)<\/plist>$/.exec(body);
  if (!m) throw new Error('not a plist document');
  const tokens = [...m[1]!.matchAll(/<(\/?)([a-z]+)(\/?)>|([^<]+)/g)].filter((t) => t[4] === undefined || t[4].trim() !== '');
  let at = 0;
  const text = (): string => {
    const t = tokens[at];
    if (t?.[4] === undefined) return '';
    at++;
    return t[4]
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  };
  const close = (name: string) => {
    const t = tokens[at++];
    if (t?.[1] !== '/' || t[2] !== name) throw new Error(`expected </${name}>`);
  };
  const value = (): PlistValue => {
    const t = tokens[at++];
    if (!t || t[1] === '/' || t[2] === undefined) throw new Error('expected an element');
    const name = t[2];
    if (t[3] === '/') {
      if (name === 'true') return true;
      if (name === 'false') return false;
      throw new Error(`unexpected <${name}/>`);
    }
    switch (name) {
      case 'string': {
        const s = text();
        close('string');
        return s;
      }
      case 'integer': {
        const s = text();
        close('integer');
        if (!/^-?\d+$/.test(s)) throw new Error(`bad integer ${s}`);
        return Number(s);
      }
      case 'array': {
        const out: PlistValue[] = [];
        while (!(tokens[at]?.[1] === '/' && tokens[at]?.[2] === 'array')) out.push(value());
        close('array');
        return out;
      }
      case 'dict': {
        const out: Record<string, PlistValue> = {};
        while (!(tokens[at]?.[1] === '/' && tokens[at]?.[2] === 'dict')) {
          const k = tokens[at++];
          if (k?.[2] !== 'key' || k[1] === '/') throw new Error('expected <key>');
          const key = text();
          close('key');
          out[key] = value();
        }
        close('dict');
        return out;
      }
      default:
        throw new Error(`unexpected <${name}>`);
    }
  };
  const v = value();
  if (at !== tokens.length) throw new Error('trailing content after the root value');
  return v;
}
