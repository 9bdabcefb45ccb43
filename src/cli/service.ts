/**
 * `claustrum -service install|uninstall|status [-socket p] [-socket-activation] [serve flags] [-json]`: run the
 * daemon as a systemd user service (Linux) or a launchd agent (macOS).
 *
 * The unit runs `<node> <claustrum.js> -serve -foreground -socket <p> [serve flags]`, both paths absolute as they
 * are now (an upgrade that moves them needs a re-install; `status` says so), with the PATH of the installing shell
 * baked in, because the daemon resolves command names with its own PATH (pm2's `startup` does the same). Restart
 * on failure only: an idle exit or a `server.shutdown` is a clean exit 0 and stays stopped.
 *
 * KillMode=process: on stop, systemd sends SIGTERM to the daemon alone and lets its shutdown do the tree kill
 * (every child's process group and the descendants that left it), or keep them with -keep-children; a daemon that
 * hands its children to its successor across a restart (issue 16) needs exactly this, where `control-group` or
 * `mixed` would SIGKILL every child in the cgroup. TimeoutStopSec covers -drain-timeout plus the teardown.
 *
 * With -socket-activation a `.socket` unit owns the socket (ListenStream=, mode 0600 in a 0700 directory) and starts
 * the daemon at the first connection, passing the listening socket as fd 3 (LISTEN_FDS=1); -idle-exit then lets
 * an unused daemon go away until the next connection.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { defaultSocketPath } from '../protocol/paths.js';
import { makeDirectories } from '../daemon/socketpath.js';
import { homeDirectory } from '../util/paths.js';
import { CliError } from './connect.js';
import { printable, shellQuote } from './format.js';
import { probeDaemon } from './probe.js';

export const SERVICE_USAGE = 'claustrum -service install|uninstall|status [-socket path] [-socket-activation] [serve flags] [-json]';
export const SERVICE_ACTIONS = ['install', 'uninstall', 'status'] as const;
export type ServiceAction = (typeof SERVICE_ACTIONS)[number];

/** How long a `systemctl --user` call may take. */
const SYSTEMCTL_TIMEOUT_MS = 10_000;
/** Stop timeout on top of -drain-timeout: the teardown's flush (0.5 s) and kill wait (1 s), with room to spare. */
const STOP_MARGIN_S = 30;

export interface ServiceSpec {
  /** Unit name without suffix: `claustrum` for the default socket, `claustrum-<hash>` for another. */
  readonly name: string;
  readonly node: string;
  readonly script: string;
  readonly socket: string;
  /** Serve flags after `-serve -foreground -socket <p>`. */
  readonly args: readonly string[];
  /** PATH baked into the unit. */
  readonly path: string;
  readonly socketActivation: boolean;
  readonly drainTimeoutMs: number;
}

export interface ServiceOptions {
  readonly action: ServiceAction;
  readonly socket: string;
  readonly args: readonly string[];
  readonly socketActivation: boolean;
  readonly drainTimeoutMs: number;
  readonly json: boolean;
  readonly stdout: Writable;
  readonly env?: NodeJS.ProcessEnv;
  readonly platform?: NodeJS.Platform;
}

export function serviceName(socket: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path.resolve(socket) === path.resolve(defaultSocketPath(env))) return 'claustrum';
  return `claustrum-${createHash('sha256').update(path.resolve(socket)).digest('hex').slice(0, 8)}`;
}

/** The built executable this process runs (dist/cmd/claustrum.js), resolved through symlinks by the loader. */
export function scriptPath(): string {
  return fileURLToPath(new URL('../../cmd/claustrum.js', import.meta.url));
}

export function serviceSpec(o: Pick<ServiceOptions, 'socket' | 'args' | 'socketActivation' | 'drainTimeoutMs' | 'env'>): ServiceSpec {
  const env = o.env ?? process.env;
  return {
    name: serviceName(o.socket, env),
    node: process.execPath,
    script: scriptPath(),
    socket: path.resolve(o.socket),
    args: o.args,
    path: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    socketActivation: o.socketActivation,
    drainTimeoutMs: o.drainTimeoutMs,
  };
}

// ---------------------------------------------------------------- systemd

export function systemdUnitDir(env: NodeJS.ProcessEnv = process.env): string {
  const config = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(homeDirectory(), '.config');
  return path.join(config, 'systemd', 'user');
}

/** A unit file is line-based: a newline (or any control character) in a value would end or forge a setting. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** One word of an ExecStart= line (systemd.service(5), "Command lines"): quoted when needed, `%` and `$` doubled. */
export function execWord(word: string): string {
  if (hasControl(word)) throw new CliError(`cannot put ${JSON.stringify(word)} on a unit's command line: it holds a control character`);
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (escaped !== '' && /^[\w@%+=:,./$-]+$/.test(escaped) && escaped !== ';') return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A value for a unit setting that takes the rest of the line (Description=, ListenStream=): only `%` is special. */
function unitValue(v: string): string {
  if (hasControl(v)) throw new CliError(`cannot put ${JSON.stringify(v)} in a unit file: it holds a control character`);
  return v.replace(/%/g, '%%');
}

export function renderServiceUnit(s: ServiceSpec): string {
  const argv = [s.node, s.script, '-serve', '-foreground', '-socket', s.socket, ...s.args];
  const pathSetting = `PATH=${s.path}`;
  return [
    '# Written by `claustrum -service install`; `claustrum -service uninstall` removes it.',
    '[Unit]',
    `Description=claustrum process supervisor on ${unitValue(s.socket)}`,
    ...(s.socketActivation ? [`Requires=${s.name}.socket`, `After=${s.name}.socket`] : []),
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${argv.map(execWord).join(' ')}`,
    `Environment=${execWord(pathSetting).replace(/\$\$/g, '$')}`,
    'Restart=on-failure',
    'RestartSec=2s',
    '# The daemon signals its children itself (their process groups, and descendants that left them) at shutdown, or',
    '# keeps them with -keep-children: systemd must send SIGTERM to the daemon alone and never kill the cgroup.',
    'KillMode=process',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${Math.ceil(s.drainTimeoutMs / 1000) + STOP_MARGIN_S}s`,
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

export function renderSocketUnit(s: ServiceSpec): string {
  return [
    '# Written by `claustrum -service install -socket-activation`; `claustrum -service uninstall` removes it.',
    '[Unit]',
    `Description=claustrum socket ${unitValue(s.socket)}`,
    '',
    '[Socket]',
    `ListenStream=${unitValue(s.socket)}`,
    'SocketMode=0600',
    'DirectoryMode=0700',
    `Service=${s.name}.service`,
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- launchd

export function launchdAgentDir(): string {
  return path.join(homeDirectory(), 'Library', 'LaunchAgents');
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** A launchd agent: started at login, restarted when it exits unsuccessfully, its stderr in ~/Library/Logs. */
export function renderLaunchdPlist(s: ServiceSpec): string {
  const argv = [s.node, s.script, '-serve', '-foreground', '-socket', s.socket, ...s.args];
  const log = path.join(homeDirectory(), 'Library', 'Logs', `${s.name}.log`);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by `claustrum -service install`; `claustrum -service uninstall` removes it. -->',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${xml(s.name)}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...argv.map((a) => `    <string>${xml(a)}</string>`),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    '    <key>PATH</key>',
    `    <string>${xml(s.path)}</string>`,
    '  </dict>',
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '  <!-- The daemon kills its children itself at shutdown; launchd must not take its process groups along. -->',
    '  <key>AbandonProcessGroup</key>',
    '  <true/>',
    '  <key>StandardErrorPath</key>',
    `  <string>${xml(log)}</string>`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- the command

interface Systemctl {
  readonly available: boolean;
  /** Why not, when it is not. */
  readonly reason?: string;
}

interface CommandResult {
  readonly code: number | null;
  readonly output: string;
}

function run(cmd: string, args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    let output = '';
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ code: null, output: (err as Error).message });
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), SYSTEMCTL_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: err.message });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.trim() });
    });
  });
}

async function systemctlUser(): Promise<Systemctl> {
  const r = await run('systemctl', ['--user', 'show-environment']);
  if (r.code === 0) return { available: true };
  return { available: false, reason: r.output.split('\n')[0] || `exit ${r.code}` };
}

async function exists(p: string): Promise<boolean> {
  return (await lstat(p).catch(() => undefined)) !== undefined;
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, text, { mode: 0o644, flag: 'wx' });
  try {
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
}

export interface ServiceReport {
  readonly action: ServiceAction;
  readonly platform: 'systemd' | 'launchd';
  readonly name: string;
  readonly files: readonly { readonly path: string; readonly state: 'written' | 'unchanged' | 'removed' | 'absent' | 'installed' | 'outdated' }[];
  readonly systemctl: { readonly available: boolean; readonly reason?: string; readonly steps: readonly string[] };
  readonly daemon: 'running' | 'not running';
  readonly linger?: boolean;
  readonly notes: readonly string[];
  /** The unit text, printed when systemctl --user is not there to take it. */
  readonly units?: Readonly<Record<string, string>>;
}

export async function runService(o: ServiceOptions): Promise<number> {
  const platform = o.platform ?? process.platform;
  if (platform !== 'linux' && platform !== 'darwin') throw new CliError(`-service supports Linux (systemd) and macOS (launchd), not ${platform}`);
  if (platform === 'darwin' && o.socketActivation) throw new CliError('-socket-activation needs systemd (Linux)', 2);
  const spec = serviceSpec(o);
  const report = platform === 'linux' ? await systemdAction(o, spec) : await launchdAction(o, spec);
  o.stdout.write(o.json ? `${JSON.stringify(report)}\n` : renderReport(report));
  if (o.action === 'status') return report.files.some((f) => f.state === 'installed' || f.state === 'outdated') ? 0 : 3;
  return 0;
}

async function systemdAction(o: ServiceOptions, spec: ServiceSpec): Promise<ServiceReport> {
  const dir = systemdUnitDir(o.env);
  const serviceFile = path.join(dir, `${spec.name}.service`);
  const socketFile = path.join(dir, `${spec.name}.socket`);
  const wanted: Record<string, string> = { [serviceFile]: renderServiceUnit(spec) };
  if (spec.socketActivation) wanted[socketFile] = renderSocketUnit(spec);
  const systemctl = await systemctlUser();
  const steps: string[] = [];
  const notes: string[] = [];
  const files: ServiceReport['files'][number][] = [];
  const running = (await probeDaemon(spec.socket)).kind === 'running';
  const linger = await lingerState();
  const sc = async (...args: string[]) => {
    const r = await run('systemctl', ['--user', ...args]);
    steps.push(`systemctl --user ${args.join(' ')}: ${r.code === 0 ? 'ok' : `failed (${r.output.split('\n')[0] || `exit ${r.code}`})`}`);
    return r.code === 0;
  };
  const base = { platform: 'systemd' as const, name: spec.name, ...(linger !== undefined ? { linger } : {}) };

  if (o.action === 'install') {
    await makeDirectories(dir, 0o755, 'unit directory');
    for (const [file, text] of Object.entries(wanted)) {
      const before = await readFile(file, 'utf8').catch(() => undefined);
      if (before === text) files.push({ path: file, state: 'unchanged' });
      else {
        await writeAtomic(file, text);
        files.push({ path: file, state: 'written' });
      }
    }
    if (!spec.socketActivation && (await exists(socketFile))) {
      await unlink(socketFile).catch(() => {});
      files.push({ path: socketFile, state: 'removed' });
    }
    const unit = spec.socketActivation ? `${spec.name}.socket` : `${spec.name}.service`;
    if (systemctl.available) {
      await sc('daemon-reload');
      await sc('enable', unit);
      if (running) {
        notes.push(
          `a daemon already runs on ${spec.socket}: it stays; \`systemctl --user restart ${spec.name}.service\` replaces it with the service (and kills its processes)`,
        );
      } else await sc('start', unit);
    } else {
      notes.push(
        `systemctl --user is not available here (${systemctl.reason}): the unit is written but not enabled. In a session with a user manager: systemctl --user daemon-reload && systemctl --user enable --now ${unit}`,
      );
    }
    notes.push(`PATH for the daemon's command lookup is baked in as it is now; re-run -service install after changing it`);
    if (linger === false) notes.push(`to start it at boot and keep it after you log out: loginctl enable-linger ${userInfo().username}`);
    return {
      action: 'install',
      ...base,
      files,
      systemctl: { ...systemctl, steps },
      daemon: running ? 'running' : 'not running',
      notes,
      ...(systemctl.available ? {} : { units: Object.fromEntries(Object.entries(wanted).map(([f, t]) => [path.basename(f), t])) }),
    };
  }

  if (o.action === 'uninstall') {
    const installed: string[] = [];
    for (const f of [serviceFile, socketFile]) if (await exists(f)) installed.push(f);
    if (systemctl.available && installed.length > 0) {
      await sc('disable', ...installed.map((f) => path.basename(f)));
      if (installed.includes(socketFile)) await sc('stop', `${spec.name}.socket`);
    }
    for (const f of [serviceFile, socketFile]) {
      if (installed.includes(f)) {
        await unlink(f);
        files.push({ path: f, state: 'removed' });
      } else files.push({ path: f, state: 'absent' });
    }
    if (systemctl.available && installed.length > 0) await sc('daemon-reload');
    if (running)
      notes.push(`the daemon on ${spec.socket} keeps running; claustrum -stop -socket ${shellQuote(spec.socket)} stops it (and kills its processes)`);
    if (!systemctl.available && installed.length > 0)
      notes.push(`systemctl --user is not available here (${systemctl.reason}): nothing was disabled`);
    return { action: 'uninstall', ...base, files, systemctl: { ...systemctl, steps }, daemon: running ? 'running' : 'not running', notes };
  }

  // status
  for (const [file, text] of [
    [serviceFile, renderServiceUnit(spec)],
    [socketFile, renderSocketUnit({ ...spec, socketActivation: true })],
  ] as const) {
    const now = await readFile(file, 'utf8').catch(() => undefined);
    if (now === undefined) files.push({ path: file, state: 'absent' });
    else if (file === serviceFile && now !== text && now !== renderServiceUnit({ ...spec, socketActivation: true }))
      files.push({ path: file, state: 'outdated' });
    else files.push({ path: file, state: 'installed' });
  }
  const service = await readFile(serviceFile, 'utf8').catch(() => undefined);
  if (service !== undefined) {
    const exec = /^ExecStart=("[^"]*"|\S+) ("[^"]*"|\S+)/m.exec(service);
    for (const p of exec ? [exec[1]!, exec[2]!] : []) {
      const file = p.replace(/^"|"$/g, '').replace(/%%/g, '%');
      if (!(await exists(file))) notes.push(`${file}, named on the unit's ExecStart=, does not exist: re-run -service install`);
    }
    if (files[0]?.state === 'outdated')
      notes.push('the unit differs from what -service install writes now (other flags, paths or PATH): re-run -service install to update it');
    if (systemctl.available) {
      const enabled = await run('systemctl', ['--user', 'is-enabled', `${spec.name}.service`]);
      const active = await run('systemctl', ['--user', 'is-active', `${spec.name}.service`]);
      steps.push(`${spec.name}.service: ${enabled.output || 'unknown'}, ${active.output || 'unknown'}`);
    }
  }
  if (!systemctl.available) notes.push(`systemctl --user is not available here (${systemctl.reason})`);
  if (linger === false && service !== undefined)
    notes.push(`lingering is off: the service stops when you log out (loginctl enable-linger ${userInfo().username})`);
  return { action: 'status', ...base, files, systemctl: { ...systemctl, steps }, daemon: running ? 'running' : 'not running', notes };
}

/** Whether systemd keeps this user's manager without a session; undefined when that cannot be told. */
async function lingerState(): Promise<boolean | undefined> {
  const user = userInfo().username;
  if (await exists(path.join('/var/lib/systemd/linger', user))) return true;
  if (await exists('/var/lib/systemd')) return false;
  return undefined;
}

async function launchdAction(o: ServiceOptions, spec: ServiceSpec): Promise<ServiceReport> {
  const file = path.join(launchdAgentDir(), `${spec.name}.plist`);
  const text = renderLaunchdPlist(spec);
  const running = (await probeDaemon(spec.socket)).kind === 'running';
  const steps: string[] = [];
  const notes: string[] = [];
  const launchctl = async (...args: string[]) => {
    const r = await run('launchctl', args);
    steps.push(`launchctl ${args.join(' ')}: ${r.code === 0 ? 'ok' : `failed (${r.output.split('\n')[0] || `exit ${r.code}`})`}`);
  };
  const uid = process.getuid?.() ?? 0;
  const base = { platform: 'launchd' as const, name: spec.name, systemctl: { available: false, steps } };
  if (o.action === 'install') {
    await makeDirectories(path.dirname(file), 0o755, 'LaunchAgents directory');
    const before = await readFile(file, 'utf8').catch(() => undefined);
    if (before !== text) await writeAtomic(file, text);
    await launchctl('bootstrap', `gui/${uid}`, file);
    return {
      action: 'install',
      ...base,
      files: [{ path: file, state: before === text ? 'unchanged' : 'written' }],
      daemon: running ? 'running' : 'not running',
      notes,
    };
  }
  if (o.action === 'uninstall') {
    const had = await exists(file);
    if (had) {
      await launchctl('bootout', `gui/${uid}/${spec.name}`);
      await unlink(file);
    }
    return {
      action: 'uninstall',
      ...base,
      files: [{ path: file, state: had ? 'removed' : 'absent' }],
      daemon: running ? 'running' : 'not running',
      notes,
    };
  }
  const now = await readFile(file, 'utf8').catch(() => undefined);
  const state = now === undefined ? 'absent' : now === text ? 'installed' : 'outdated';
  return { action: 'status', ...base, files: [{ path: file, state }], daemon: running ? 'running' : 'not running', notes };
}

function renderReport(r: ServiceReport): string {
  const lines: string[] = [`${r.platform === 'systemd' ? 'systemd user service' : 'launchd agent'} ${r.name}:`];
  for (const f of r.files) lines.push(`  ${f.state.padEnd(9)} ${printable(f.path)}`);
  for (const s of r.systemctl.steps) lines.push(`  ${printable(s)}`);
  lines.push(`  daemon    ${r.daemon}`);
  for (const n of r.notes) lines.push(`note: ${printable(n)}`);
  if (r.units) {
    for (const [name, text] of Object.entries(r.units)) lines.push('', `--- ${name} ---`, text.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}
