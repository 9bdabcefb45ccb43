/**
 * `claustrum -service install|uninstall|status`: the real executable writes a systemd user unit into a temporary
 * XDG_CONFIG_HOME; the unit is parsed here and checked by `systemd-analyze verify` where that exists. The user manager
 * is kept out of reach (XDG_RUNTIME_DIR and the session bus point nowhere), so the command must say that
 * `systemctl --user` is not available and print the unit. The launchd plist is rendered and parsed.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderLaunchdPlist, serviceName, type ServiceSpec } from '../../src/cli/service.js';
import { runCli } from '../helpers/cli.js';
import { BIN } from '../helpers/daemon.js';
import { parsePlist, parseUnit, splitExec, systemdVerify } from '../helpers/units.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function home(): { root: string; env: NodeJS.ProcessEnv; units: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'cl-svc-'));
  roots.push(root);
  mkdirSync(path.join(root, 'rt'), { mode: 0o700 });
  const env = {
    HOME: path.join(root, 'home'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
    // No user manager can be reached: the command must not touch the machine's, and must say so.
    XDG_RUNTIME_DIR: path.join(root, 'rt'),
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(root, 'no-bus')}`,
  };
  return { root, env, units: path.join(root, 'config', 'systemd', 'user') };
}

async function verifyClean(files: string[]): Promise<void> {
  const v = await systemdVerify(files);
  if (v === undefined) return; // no systemd-analyze here: the parser above is the check
  expect(v.output, v.output).not.toMatch(/Failed to parse|ignoring|Unknown (key|section)|not executable|Invalid/i);
  expect(v.code, v.output).toBe(0);
}

describe('claustrum -service (systemd)', () => {
  it('install on the default socket writes claustrum.service with absolute paths, -foreground, restart on failure and KillMode=process', async () => {
    const { env, units } = home();
    const socket = path.join(env.XDG_RUNTIME_DIR!, 'claustrum', 'rpc.sock');
    const r = await runCli(['-service', 'install'], { env });
    expect(r.code, r.stderr).toBe(0);
    const file = path.join(units, 'claustrum.service');
    expect(r.stdout).toContain(`systemd user service claustrum:\n  written   ${file}\n`);
    expect(r.stdout).toMatch(/note: systemctl --user is not available here \(Failed to connect to bus[^)]*\): the unit is written but not enabled/);
    expect(r.stdout).toContain('systemctl --user enable --now claustrum.service');
    const text = readFileSync(file, 'utf8');
    // The unit is printed too, for a machine where it has to be put in place by hand.
    expect(r.stdout).toContain(`--- claustrum.service ---\n${text.trimEnd()}\n`);

    const unit = parseUnit(text);
    const argv = splitExec(unit.Service!.ExecStart![0]!);
    expect(argv).toEqual([process.execPath, BIN, '-serve', '-foreground', '-socket', socket]);
    expect(path.isAbsolute(argv[0]!) && path.isAbsolute(argv[1]!)).toBe(true);
    expect(unit.Service).toMatchObject({
      Type: ['exec'],
      Restart: ['on-failure'],
      KillMode: ['process'],
      KillSignal: ['SIGTERM'],
      TimeoutStopSec: ['30s'],
    });
    expect(splitExec(unit.Service!.Environment![0]!, false)).toEqual([`PATH=${process.env.PATH}`]);
    expect(unit.Install).toEqual({ WantedBy: ['default.target'] });
    await verifyClean([file]);

    const again = await runCli(['-service', 'install'], { env });
    expect(again.stdout).toContain(`  unchanged ${file}\n`);
  });

  it('bakes the serve flags in, and with -socket-activation writes a .socket unit that owns the socket', async () => {
    const { root, env, units } = home();
    const socket = path.join(root, 'sock dir', '100% $HOME', 'rpc.sock');
    const args = [
      '-service',
      'install',
      '-socket',
      socket,
      '-socket-activation',
      '-drain-timeout',
      '20s',
      '-idle-exit',
      '15m',
      '-keep-children',
      '-metrics-addr',
      '127.0.0.1:9464',
    ];
    const r = await runCli(args, { env });
    expect(r.code, r.stderr).toBe(0);
    const name = serviceName(socket, env);
    expect(name).toMatch(/^claustrum-[0-9a-f]{8}$/);
    const service = path.join(units, `${name}.service`);
    const sock = path.join(units, `${name}.socket`);
    const unit = parseUnit(readFileSync(service, 'utf8'));
    expect(splitExec(unit.Service!.ExecStart![0]!)).toEqual([
      process.execPath,
      BIN,
      '-serve',
      '-foreground',
      '-socket',
      socket,
      '-drain-timeout=20s',
      '-idle-exit=15m0s',
      '-keep-children=true',
      '-metrics-addr=127.0.0.1:9464',
    ]);
    expect(unit.Service!.TimeoutStopSec).toEqual(['50s']);
    expect(unit.Unit).toMatchObject({ Requires: [`${name}.socket`], After: [`${name}.socket`] });
    const socketUnit = parseUnit(readFileSync(sock, 'utf8'));
    expect(socketUnit.Socket).toEqual({
      ListenStream: [socket.replace(/%/g, '%%')],
      SocketMode: ['0600'],
      DirectoryMode: ['0700'],
      Service: [`${name}.service`],
    });
    expect(socketUnit.Install).toEqual({ WantedBy: ['sockets.target'] });
    await verifyClean([service, sock]);
  });

  it('status (exit 0 installed, 3 not), notices an outdated unit, and uninstall removes what install wrote', async () => {
    const { env, units } = home();
    const file = path.join(units, 'claustrum.service');
    const none = await runCli(['-service', 'status'], { env });
    expect(none.code).toBe(3);
    expect(none.stdout).toContain(`  absent    ${file}\n`);

    expect((await runCli(['-service', 'install', '-socket-activation'], { env })).code).toBe(0);
    const st = await runCli(['-service', 'status', '-json'], { env });
    expect(st.code).toBe(0);
    const report = JSON.parse(st.stdout);
    expect(report.files).toEqual([
      { path: file, state: 'installed' },
      { path: path.join(units, 'claustrum.socket'), state: 'installed' },
    ]);
    expect(report.daemon).toBe('not running');

    writeFileSync(file, readFileSync(file, 'utf8').replace(process.execPath, '/nonexistent/node'));
    const outdated = await runCli(['-service', 'status'], { env });
    expect(outdated.code).toBe(0);
    expect(outdated.stdout).toContain(`  outdated  ${file}\n`);
    expect(outdated.stdout).toContain("note: /nonexistent/node, named on the unit's ExecStart=, does not exist: re-run -service install");

    const u = await runCli(['-service', 'uninstall'], { env });
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toContain(`  removed   ${file}\n`);
    expect(u.stdout).toContain(`  removed   ${path.join(units, 'claustrum.socket')}\n`);
    expect(existsSync(file)).toBe(false);
    expect((await runCli(['-service', 'status'], { env })).code).toBe(3);
  });

  it('refuses an unknown action, flags that make no unit, and -socket-activation outside install (exit 2)', async () => {
    const { env } = home();
    for (const [args, message] of [
      [['-service', 'start'], 'claustrum: -service start: want install, uninstall or status'],
      [['-service', 'install', '-foreground'], 'claustrum: -foreground does not apply to -service (it goes with -serve)'],
      [['-service', 'install', '-token-file', '/x'], 'claustrum: -token-file does not apply to -service (it goes with -serve)'],
      [['-service', 'status', '-socket-activation'], 'claustrum: -socket-activation goes with -service install'],
      [['-service', 'install', '-write-token=false'], 'claustrum: -write-token=false: a service generates its token, which nobody could then learn'],
    ] as const) {
      const r = await runCli(args, { env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(message);
    }
  });
});

describe('the launchd agent (macOS)', () => {
  it('is a property list with the program arguments, PATH, restart on failure and the process group left alone', () => {
    const spec: ServiceSpec = {
      name: 'claustrum',
      node: '/opt/node & co/bin/node',
      script: '/Users/me/<lib>/claustrum/dist/cmd/claustrum.js',
      socket: "/Users/me/.claustrum/it's.sock",
      args: ['-idle-exit=10m0s'],
      path: '/usr/bin:/bin',
      socketActivation: false,
      drainTimeoutMs: 0,
    };
    const plist = parsePlist(renderLaunchdPlist(spec)) as Record<string, any>;
    expect(plist.Label).toBe('claustrum');
    expect(plist.ProgramArguments).toEqual([spec.node, spec.script, '-serve', '-foreground', '-socket', spec.socket, '-idle-exit=10m0s']);
    expect(plist.EnvironmentVariables).toEqual({ PATH: '/usr/bin:/bin' });
    expect(plist.RunAtLoad).toBe(true);
    expect(plist.KeepAlive).toEqual({ SuccessfulExit: false });
    expect(plist.AbandonProcessGroup).toBe(true);
    expect(plist.StandardErrorPath).toMatch(/\/Library\/Logs\/claustrum\.log$/);
  });
});
