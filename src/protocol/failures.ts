/**
 * The result-level failure catalogue: every text a request or a one-shot mode reports as data rather than as a
 * JSON-RPC error, as data. These are the `error` of `{success:false, error[, errorCode]}` from files.extract_tar
 * (src/files/extract.ts), git.worktree_create and git.worktree_remove (src/git/worktree.ts), and the `cliError` of
 * the `-install` facts line (src/install/), together with the smaller texts they embed.
 *
 * Each entry is a template. `<name>` is a value filled in per failure; `"<name>"` takes a value that is already
 * quoted (Go's `%q` or JSON's, as the call site decides, because the two differ on control characters and the
 * reference uses each in different places); `\<` is a literal `<` (one worktree text spells `<repository>` for the
 * reader). The texts are the reference daemon's, byte for byte, because clients match on them. test/docs renders
 * every template back to its `<name>` form and fails if PROTOCOL.md does not contain it in the method's section.
 *
 * A `<text>`, `<err>` or `<gitText>` slot holds a text that comes from elsewhere: an OS error's message, a stream
 * error in Go's words (the smaller groups below), git's stderr.
 */

/** A value already in double quotes, for a placeholder written `"<name>"`. */
export type Quoted = `"${string}"`;

/** The slots of a template, each typed by how it is written: `"<name>"` takes a Quoted value. */
type Slots<S extends string> = S extends `${infer Head}<${infer Name}>${infer Rest}`
  ? (Head extends `${string}\\`
      ? unknown
      : { readonly [N in Name]: Head extends `${string}"` ? (Rest extends `"${string}` ? Quoted : Plain) : Plain }) &
      Slots<Rest>
  : unknown;
type Plain = string | number;
type Flat<T> = { readonly [K in keyof T]: T[K] };

/** The arguments a template needs: exactly its placeholders. */
export type FailureArgs<S extends string> = Flat<Slots<S>>;
/** No argument for a template without placeholders, else its FailureArgs. */
export type ArgsFor<S extends string> = [keyof FailureArgs<S>] extends [never] ? [] : [args: FailureArgs<S>];

export const FAILURES = {
  /** files.extract_tar, in the order the steps can fail. */
  extractTar: {
    destDirNotAbsolute: 'destDir must be an absolute, non-root path: "<destDir>"',
    destDirHoldsHome: 'destDir must not be or contain the home directory: "<destDir>"',
    openArchive: 'open archive: open <archivePath>: <reason>',
    archiveNotRegular: 'open archive: <archivePath>: not a regular file',
    gzipRead: 'gzip: read: <reason>',
    gzipEof: 'gzip: EOF',
    gzipUnexpectedEof: 'gzip: unexpected EOF',
    gzipInvalidHeader: 'gzip: gzip: invalid header',
    cleanDestDir: 'clean destDir: unlinkat <p>: <reason>',
    mkdirDestDir: 'mkdir destDir: <text>',
    destDirChanged: 'open destDir: "<baseName>" changed while it was opened',
    tarRead: 'tar read: <text>',
    unsafePath: 'unsafe path in archive: <entry>',
    mkdirEntry: 'mkdir <entry>: <text>',
    mkdirParent: 'mkdir parent <entry>: <text>',
    createEntry: 'create <entry>: open <target>: <reason>',
    writeEntryFile: 'write <entry>: write <target>: <reason>',
    writeEntry: 'write <entry>: <text>',
    sizeLimit: 'extraction size limit exceeded',
    unsupportedType: 'unsupported tar entry type <typeflag>: <entry>',
    markerUnlink: 'write .synced: unlinkat <path>: <reason>',
    markerOpen: 'write .synced: open <path>: <reason>',
    marker: 'write .synced: <text>',
  },
  /** The `<text>` of `tar read:` and `write <entry>:` when gunzip or the file underneath failed, in Go's words. */
  extractTarStream: {
    unexpectedEof: 'unexpected EOF',
    invalidChecksum: 'gzip: invalid checksum',
    invalidHeader: 'gzip: invalid header',
    corruptInput: 'flate: corrupt input',
    read: 'read: <reason>',
  },
  /** git.worktree_create, in the order they are checked, each with its `errorCode`. */
  worktreeCreate: {
    notARepo: { errorCode: 'not_a_repo', text: 'not a git repository' },
    emptyPath: { errorCode: 'mkdir_failed', text: 'failed to create parent directory: "" does not name a directory' },
    relativePath: {
      errorCode: 'unsafe_path',
      text: 'refusing to create worktree: <p> is a relative path; choose the session folder by its absolute path, without ".."',
    },
    dotDot: {
      errorCode: 'unsafe_path',
      text: 'refusing to create worktree: <p> contains a ".." component; choose the session folder by its absolute path, without ".."',
    },
    outsideRepo: {
      errorCode: 'unsafe_path',
      text: 'refusing to create worktree: <p> is not inside the repository <repo>; session worktrees are only created and removed under \\<repository>/.claude/worktrees',
    },
    holdsHome: { errorCode: 'unsafe_path', text: 'worktreePath must not be or contain the home directory: "<p>"' },
    symlinked: {
      errorCode: 'unsafe_path',
      text: 'refusing to create worktree: <dir> is a symbolic link; a symlinked .claude or .claude/worktrees inside the repository is not supported for SSH sessions, because a repository can plant such a link and a planted one cannot reliably be told apart from your own. Replace it with a real directory (or delete it and it will be recreated)',
    },
    exists: {
      errorCode: 'unsafe_path',
      text: 'refusing to create worktree: <p> already exists, and a new worktree is only ever created in a fresh directory',
    },
    mkdirParent: { errorCode: 'mkdir_failed', text: 'failed to create parent directory: <text>' },
    addFailed: { errorCode: 'worktree_add_failed', text: 'git worktree add failed: <gitText>' },
    addTimedOut: {
      errorCode: 'timeout',
      text: 'git worktree add timed out after <duration>; no cleanup was attempted, and git may have partially created the worktree',
    },
    gitTimedOut: { errorCode: 'timeout', text: 'git <command> timed out after <duration>' },
  },
  /** git.worktree_remove, in the order they are checked; no `errorCode`. */
  worktreeRemove: {
    emptyPath: 'failed to remove worktree: "" does not name a directory',
    relativePath: 'refusing to remove worktree: <p> is a relative path; choose the session folder by its absolute path, without ".."',
    dotDot: 'refusing to remove worktree: <p> contains a ".." component; choose the session folder by its absolute path, without ".."',
    outsideRepo:
      'refusing to remove worktree: <p> is not inside the repository <repo>; session worktrees are only created and removed under \\<repository>/.claude/worktrees',
    holdsHome: 'worktreePath must not be or contain the home directory: "<p>"',
    symlinked:
      'refusing to remove worktree: <dir> is a symbolic link; a symlinked .claude or .claude/worktrees inside the repository is not supported for SSH sessions, because a repository can plant such a link and a planted one cannot reliably be told apart from your own. Replace it with a real directory (or delete it and it will be recreated)',
    inspectFailed: 'failed to remove worktree: <text>',
    leafSymlink: 'refusing to remove worktree: <p> is a symbolic link, not a worktree directory',
    noDotGit:
      'refusing to remove worktree: <p> is not a worktree of <repo> (<p> has no .git file), so it is left in place; remove it by hand if it is a leftover',
    listFailed: 'failed to remove worktree: could not check whether <p> is locked (its registrations could not be examined); retry',
    notListed:
      'refusing to remove worktree: <p> is not a worktree of <repo> (git does not list it), so it is left in place; remove it by hand if it is a leftover',
    locked: 'refusing to remove worktree: <p> is locked (git worktree lock); unlock it to remove it',
    removeFailed: 'failed to remove worktree: <gitText>',
    removeTimedOut: 'git worktree remove timed out after <duration>; no cleanup was attempted, and git may have partially removed the worktree',
    gitTimedOut: 'git <command> timed out after <duration>',
  },
  /** The `cliError` of the `-install` facts line, in the order of the run's steps. */
  cliError: {
    versionNotComponent: 'cli version "<v>" must be a single path component',
    versionCollides: 'cli version "<v>" collides with the install download blob',
    noSource: 'cli <v> missing and no --cli-url or --cli-zst provided',
    openingInput: 'opening input: <err>',
    checksumMismatch: 'checksum mismatch: expected=<expected>, actual=<actual>',
    downloadStatus: 'download failed with status <code>',
    downloadStalled: 'download stalled: no data for <seconds>s after <got>/<total> bytes',
    downloadInterrupted: 'download interrupted after <got>/<total> bytes: <err>',
    downloadParse: 'download failed: parse "<url>": invalid URL',
    downloadGet: 'download failed: Get "<url>": <err>',
    downloadTooLarge: 'download failed: response exceeds <n> bytes',
    downloadBodyDeadline: 'download failed: context deadline exceeded (Client.Timeout or context cancellation while reading body)',
    downloadFailed: 'download failed: <err>',
    mkdirCliDir: 'mkdir cli dir: <err>',
    stagingCli: 'staging cli: <err>',
    decompressing: 'decompressing: <err>',
    chmodStaging: 'chmod <path>: <reason>',
    cliPathHoldsHome: 'cli path must not be or contain the home directory: "<path>"',
    clearingStaleDir: 'clearing stale dir at <path>: <err>',
    rename: 'rename <from> <to>: <reason>',
    stagingVanished: 'staging file vanished before install: <err>',
    notRunnable: 'installed cli at <path> is not runnable',
    unresponsive:
      'cli unresponsive: the installed Claude Code binary started but did not answer --version within 30s (120s for a first run) and was stopped; the host is not letting it run (endpoint security software or a stalled network home are the usual causes)',
    /** Any other failure: the OS error's text alone. */
    other: '<err>',
  },
  /** The `<err>` of `download failed: Get "<url>": <err>` and `download interrupted …: <err>`: Go's net/http words. */
  download: {
    headerDeadline: 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
    unsupportedScheme: 'unsupported protocol scheme "<scheme>"',
    tooManyRedirects: 'stopped after <n> redirects',
    dialTimeout: 'dial tcp <hostPort>: i/o timeout',
    tlsTimeout: 'net/http: TLS handshake timeout',
    headerTimeout: 'net/http: timeout awaiting response headers',
    connect: 'dial tcp <hostPort>: connect: <reason>',
    noSuchHost: 'dial tcp: lookup <host>: no such host',
    serverMisbehaving: 'dial tcp: lookup <host>: server misbehaving',
    connectionReset: 'read tcp <hostPort>: read: connection reset by peer',
    certificate: 'tls: failed to verify certificate: <detail>',
    bodyRead: 'read tcp <local>-><remote>: read: <reason>',
    unexpectedEof: 'unexpected EOF',
  },
  /** The `<err>` of `decompressing: <err>`; past the magic number, libzstd's own texts pass through as `<err>`. */
  decompress: {
    tooLarge: 'decompressed CLI exceeds <n> bytes',
    magicMismatch: 'invalid input: magic number mismatch',
    reservedBlock: 'invalid input: reserved block type encountered',
    invalidInput: 'invalid input: <detail>',
    unknownDictionary: 'unknown dictionary',
    windowTooLarge: 'window size exceeded: the frame needs <size> bytes, and a frame without a content checksum is decoded only up to <max>',
    checksum: 'CRC check failed',
    unexpectedEof: 'unexpected EOF',
  },
  /** An OS failure as Go's *os.PathError prints it, the `<err>` of many cliErrors. */
  os: {
    pathError: '<op> <path>: <reason>',
  },
  /** `-install` refusals on stderr, exit 2, no facts line. */
  installUsage: {
    badKeep: 'claustrum: -cli-keep <n> is not a valid keep count',
    noHome: 'claustrum: cannot resolve home directory: $HOME is not defined',
  },
} as const;

export type FailureGroup = keyof typeof FAILURES;
type Entry = string | { readonly errorCode: string; readonly text: string };
type TextOf<E> = E extends string ? E : E extends { readonly text: infer T extends string } ? T : never;
type TemplateOf<G extends FailureGroup, K extends keyof (typeof FAILURES)[G]> = TextOf<(typeof FAILURES)[G][K]>;
/** Every template, as its literal type; `string` here would mean a text built by concatenation, whose slots go unchecked. */
export type FailureTemplateText = { [G in FailureGroup]: TemplateOf<G, keyof (typeof FAILURES)[G]> }[FailureGroup];

/** `\<`, a quoted placeholder, or a plain one; the names are those the Slots type reads. */
const PLACEHOLDER = /\\<|"<([A-Za-z]+)>"|<([A-Za-z]+)>/g;

/** JSON's quoting, for the slots the reference fills with `%q` of an encoding/json-like text (the `-install` ones). */
export function jsonQuote(s: string): Quoted {
  return JSON.stringify(s) as Quoted;
}

/** A template with its placeholders filled in. */
export function renderFailure<S extends string>(template: S, ...args: ArgsFor<S>): string {
  return fill(template, args[0]);
}

function fill(template: string, args: object | undefined): string {
  const values = (args ?? {}) as Readonly<Record<string, Plain>>;
  return template.replace(PLACEHOLDER, (all, quoted: string | undefined, plain: string | undefined) => {
    if (all === '\\<') return '<';
    const value = values[(quoted ?? plain)!];
    return value === undefined ? all : String(value);
  });
}

/** The text of one catalogue entry: `failureText('extractTar', 'unsafePath', { entry: name })`. */
export function failureText<G extends FailureGroup, K extends keyof (typeof FAILURES)[G] & string>(
  group: G,
  key: K,
  ...args: ArgsFor<TemplateOf<G, K>>
): string {
  const entry = FAILURES[group][key] as Entry;
  return fill(typeof entry === 'string' ? entry : entry.text, args[0]);
}

type CreateKey = keyof (typeof FAILURES)['worktreeCreate'];
export type WorktreeErrorCode = (typeof FAILURES)['worktreeCreate'][CreateKey]['errorCode'];

/** A git.worktree_create failure's `error` and its `errorCode`, in the order the result carries them. */
export function worktreeCreateFailure<K extends CreateKey>(
  key: K,
  ...args: ArgsFor<TemplateOf<'worktreeCreate', K>>
): { readonly error: string; readonly errorCode: (typeof FAILURES)['worktreeCreate'][K]['errorCode'] } {
  const entry = FAILURES.worktreeCreate[key];
  return { error: fill(entry.text, args[0]), errorCode: entry.errorCode };
}

/** A template as PROTOCOL.md spells it: every placeholder as `<name>` (quoted ones in their quotes), `\<` as `<`. */
export function failureDocText(template: string): string {
  return template.replace(PLACEHOLDER, (all, quoted: string | undefined, plain: string | undefined) =>
    all === '\\<' ? '<' : quoted !== undefined ? `"<${quoted}>"` : `<${plain}>`,
  );
}

export interface FailureTemplate {
  readonly group: FailureGroup;
  readonly key: string;
  readonly template: string;
  readonly errorCode?: string;
}

/** Every entry of the catalogue, for the docs test. */
export const FAILURE_TEMPLATES: readonly FailureTemplate[] = Object.entries(FAILURES).flatMap(([group, entries]) =>
  Object.entries(entries as Readonly<Record<string, Entry>>).map(([key, entry]) =>
    typeof entry === 'string'
      ? { group: group as FailureGroup, key, template: entry }
      : { group: group as FailureGroup, key, template: entry.text, errorCode: entry.errorCode },
  ),
);
