/**
 * The examples in deploy/: parsed (YAML; systemd unit syntax and `systemd-analyze verify` where it exists), checked
 * for what makes them work (shared socket volume, probes on the health endpoints, a grace period longer than the
 * drain, KillMode=process), and their claustrum flags started for real against a private socket, no cluster needed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseDuration } from '../../src/util/duration.js';
import { BIN, ROOT, until } from '../helpers/daemon.js';
import { freePort, get } from '../helpers/http.js';
import { parseUnit, splitExec, systemdVerify } from '../helpers/units.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `-name=value` or `-name value` → value, from an argv. */
function flag(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `-${name}`) return args[i + 1];
    if (a.startsWith(`-${name}=`)) return a.slice(name.length + 2);
  }
  return undefined;
}

/**
 * Starts the real executable in the foreground with `args`, its socket and metrics port swapped for private ones;
 * checks the probe paths answer 200 once ready, then SIGTERMs it. Returns its stderr (the log).
 */
async function startForReal(args: readonly string[], probes: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cl-deploy-'));
  dirs.push(dir);
  const port = await freePort();
  const swapped = args.map((a) =>
    a
      .replace(/^(-socket[= ]?)\/run\/claustrum\/rpc\.sock$/, `$1${path.join(dir, 'run', 'rpc.sock')}`)
      .replace(/^\/run\/claustrum\/rpc\.sock$/, path.join(dir, 'run', 'rpc.sock'))
      .replace(/^(-metrics-addr=)?(\$\(POD_IP\)|127\.0\.0\.1):9464$/, `$1127.0.0.1:${port}`),
  );
  expect(swapped.join(' ')).not.toContain('/run/claustrum');
  const child = spawn(process.execPath, [BIN, ...swapped], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    for (const p of probes) {
      const r = await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${stderr}`);
          const x = await get(port, p).catch(() => undefined);
          return x?.status === 200 ? x : undefined;
        },
        15_000,
        `${p} to answer 200`,
      );
      expect(r.status).toBe(200);
    }
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  return stderr;
}

describe('deploy/kubernetes/sidecar.yaml', () => {
  const text = readFileSync(path.join(ROOT, 'deploy/kubernetes/sidecar.yaml'), 'utf8');

  it('parses, and wires the socket volume, the probes, the metrics port and the grace period together', () => {
    const docs = parseAllDocuments(text);
    expect(docs.length).toBe(1);
    expect(docs[0]!.errors).toEqual([]);
    const pod = docs[0]!.toJS() as any;
    expect(pod).toMatchObject({ apiVersion: 'v1', kind: 'Pod' });
    const sidecar = pod.spec.initContainers.find((c: any) => c.name === 'claustrum');
    expect(sidecar.restartPolicy).toBe('Always');
    const args: string[] = sidecar.args;
    expect(args.slice(0, 2)).toEqual(['-serve', '-foreground']);
    const socket = flag(args, 'socket')!;
    const mount = sidecar.volumeMounts.find((m: any) => path.dirname(socket) === m.mountPath);
    expect(mount, 'the socket directory is a mounted volume').toBeDefined();
    const app = pod.spec.containers[0];
    expect(app.volumeMounts.find((m: any) => m.name === mount.name)?.mountPath).toBe(mount.mountPath);
    expect(pod.spec.volumes.find((v: any) => v.name === mount.name).emptyDir).toBeDefined();

    const metrics = flag(args, 'metrics-addr')!;
    expect(metrics).toBe('$(POD_IP):9464');
    expect(sidecar.env.find((e: any) => e.name === 'POD_IP').valueFrom.fieldRef.fieldPath).toBe('status.podIP');
    const port = sidecar.ports.find((p: any) => p.name === 'metrics');
    expect(port.containerPort).toBe(9464);
    expect(pod.metadata.annotations['prometheus.io/port']).toBe('9464');
    expect(sidecar.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(sidecar.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(sidecar.startupProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    const drainS = parseDuration(flag(args, 'drain-timeout')!) / 1000;
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(drainS);
    // Both containers as one user: the app reads daemon.token (0600).
    expect(pod.spec.securityContext.runAsUser).toBeDefined();
  });

  it("the sidecar's flags start a daemon whose probes answer, logging JSON", async () => {
    const pod = parseAllDocuments(text)[0]!.toJS() as any;
    const sidecar = pod.spec.initContainers.find((c: any) => c.name === 'claustrum');
    const log = await startForReal(sidecar.args, [sidecar.startupProbe.httpGet.path, sidecar.livenessProbe.httpGet.path], {
      CLAUSTRUM_LOG_LEVEL: 'info',
    });
    const lines = log.trimEnd().split('\n');
    for (const l of lines) expect(Object.keys(JSON.parse(l))).toEqual(['time', 'level', 'component', 'msg']);
  });
});

describe('deploy/systemd/claustrum.service', () => {
  const file = path.join(ROOT, 'deploy/systemd/claustrum.service');
  const text = readFileSync(file, 'utf8');

  it('parses, lets the daemon kill its own children, restarts on failure, and stops after the drain', async () => {
    const unit = parseUnit(text);
    const argv = splitExec(unit.Service!.ExecStart![0]!);
    expect(argv.slice(0, 2)).toEqual(['/usr/bin/node', '/usr/lib/node_modules/claustrum/dist/cmd/claustrum.js']);
    expect(argv.slice(2, 4)).toEqual(['-serve', '-foreground']);
    expect(unit.Service).toMatchObject({
      Type: ['exec'],
      Restart: ['on-failure'],
      KillMode: ['process'],
      RuntimeDirectory: ['claustrum'],
      RuntimeDirectoryMode: ['0700'],
      RuntimeDirectoryPreserve: ['restart'],
    });
    expect(path.dirname(flag(argv, 'socket')!)).toBe('/run/claustrum');
    const stop = parseDuration(unit.Service!.TimeoutStopSec![0]!);
    expect(stop).toBeGreaterThan(parseDuration(flag(argv, 'drain-timeout')!));
    // systemd-analyze needs the executable to exist: this machine's node stands in for /usr/bin/node.
    const dir = mkdtempSync(path.join(tmpdir(), 'cl-unit-'));
    dirs.push(dir);
    const local = path.join(dir, 'claustrum.service');
    writeFileSync(local, text.replace('/usr/bin/node', process.execPath));
    const v = await systemdVerify([local]);
    if (v) {
      expect(v.output, v.output).not.toMatch(/Failed to parse|ignoring|Unknown (key|section)|Invalid/i);
      expect(v.code, v.output).toBe(0);
    }
  });

  it('its flags start a daemon whose health endpoints answer', async () => {
    const argv = splitExec(parseUnit(text).Service!.ExecStart![0]!);
    await startForReal(argv.slice(2), ['/readyz', '/healthz']);
  });
});
