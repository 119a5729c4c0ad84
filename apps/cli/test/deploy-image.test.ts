/**
 * The container image (deploy/Dockerfile, deploy/compose.yaml) without a Docker engine:
 * the runtime stage's files are assembled from the built checkout exactly as its COPY
 * lines say (node_modules: only the production packages), and its ENTRYPOINT + CMD run
 * under its USER with no capabilities and no-new-privileges, in a mount namespace where
 * the root file system and the app folder are read-only, /tmp is the compose file's
 * tmpfs and only the data volume is writable (and in a network namespace, so the image's
 * fixed ports collide with nothing). The HEALTHCHECK command must pass against it. Needs
 * root, util-linux, mount and iproute2 (.ci/run installs them); a missing tool fails.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from './cli-process.js';
import { hasCommand, readCompose, readDockerfile, root, type Stage } from './deploy-files.js';

const stages = readDockerfile();
const build = stages.find((s) => s.name === 'build');
const runtime = stages.at(-1) as Stage;
const compose = readCompose();
const service = compose.services['relay'] ?? {};

const [uid, gid] = (runtime.user ?? '').split(':').map(Number) as [number, number];
const volume = runtime.volumes[0] ?? '';
const tmpfsEntry = ((service['tmpfs'] as string[] | undefined) ?? [])[0] ?? '';
const [tmpfsPath = '', tmpfsOptions = ''] = tmpfsEntry.split(':');

const work = mkdtempSync(join(tmpdir(), 'parley-image-'));
const running = new Set<ChildProcess>();
/** The relay's pid: it changes user, which clears unshare's kill-on-exit, so kill it here. */
let relayPid: number | undefined;
afterAll(() => {
  if (relayPid !== undefined) {
    try {
      process.kill(relayPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const c of running) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('deploy/Dockerfile + compose.yaml declare the confinement', () => {
  it('multi-stage build: npm ci + tsc in a build stage, a slim runtime stage of copies', () => {
    expect(build, 'a stage named build').toBeDefined();
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build?.runs.join(' ')).toMatch(/npm ci\b/);
    expect(build?.runs.join(' ')).toMatch(/tsc -b\b/);
    expect(build?.runs.join(' ')).toMatch(/npm prune --omit=dev\b/);
    expect(runtime.image).not.toBe(build?.image);
    expect(runtime.image).toMatch(/slim/);
    expect(runtime.runs.join(' ')).not.toMatch(/npm (ci|install)/);
    expect(runtime.copies.length).toBeGreaterThan(0);
    for (const c of runtime.copies) expect(c.from, c.src).toBe('build');
  });

  it('non-root user, data volume, healthcheck and start command in exec form', () => {
    expect(runtime.user).toMatch(/^\d+:\d+$/);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    expect(volume).toMatch(/^\//);
    expect(runtime.healthcheck?.cmd.join(' ')).toMatch(/healthcheck\.mjs/);
    const start = [...runtime.entrypoint, ...runtime.cmd];
    expect(start).toContain('server');
    expect(start[start.indexOf('--data') + 1]).toBe(`${volume}/relay`); // the CA folder its first start makes, relay-ca, is in the volume too
    expect(runtime.runs.join(' ')).toContain(`chown ${uid}:${gid} ${volume}`);
  });

  it('compose: read-only root, cap_drop ALL, no-new-privileges, tmpfs, volume, healthcheck', () => {
    expect(service['read_only']).toBe(true);
    expect(service['cap_drop']).toEqual(['ALL']);
    expect(service['cap_add']).toBeUndefined();
    expect(service['privileged']).toBeUndefined();
    expect(service['security_opt']).toContain('no-new-privileges:true');
    expect(service['user']).toBe(runtime.user);
    expect(tmpfsPath).toBe('/tmp');
    expect(tmpfsOptions).toMatch(/noexec/);
    const volumes = (service['volumes'] as string[] | undefined) ?? [];
    expect(volumes.some((v) => v.endsWith(`:${volume}`))).toBe(true);
    const hc = service['healthcheck'] as { test: string[] } | undefined;
    expect(hc?.test).toEqual(['CMD', ...(runtime.healthcheck?.cmd ?? [])]);
    expect(service['build']).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
  });
});

/**
 * What `npm prune --omit=dev` leaves in node_modules, as npm itself lists it: workspace
 * links are recreated in STAGE_DIR, every other top-level package gets an empty folder
 * there to bind-mount the checkout's copy on (too big to copy on each run). Returns the
 * folders to bind, relative to the app folder.
 */
function productionModules(stageDir: string, target: string): string[] {
  const listed = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const top = new Set(
    listed
      .split('\n')
      .map((p) => relative(join(root, 'node_modules'), p))
      .filter((p) => /^(@[^/]+\/)?[^/@.][^/]*$/.test(p)),
  );
  expect(top.size, 'npm ls --omit=dev lists the production packages').toBeGreaterThan(10);
  const bind: string[] = [];
  for (const name of top) {
    const from = join(root, 'node_modules', name);
    mkdirSync(dirname(join(stageDir, name)), { recursive: true });
    if (lstatSync(from).isSymbolicLink()) symlinkSync(readlinkSync(from), join(stageDir, name));
    else {
      mkdirSync(join(stageDir, name));
      bind.push(join(target, name));
    }
  }
  return bind;
}

/** Copies the runtime stage's files out of the built checkout, as its COPY lines say. */
function assembleRuntime(stage: string): string[] {
  const boundFromCheckout: string[] = [];
  for (const c of runtime.copies) {
    const rel = relative(build?.workdir ?? '/', c.src);
    expect(rel.startsWith('..'), `${c.src} is inside the build stage's WORKDIR`).toBe(false);
    const destAbs = c.dest.startsWith('/') ? c.dest : join(runtime.workdir, c.dest);
    let target = relative(runtime.workdir, destAbs);
    if (c.dest.endsWith('/')) target = join(target, basename(rel));
    expect(target.startsWith('..'), `${c.dest} is inside WORKDIR`).toBe(false);
    const from = join(root, rel);
    expect(existsSync(from), `${rel} exists (build the checkout first: npx tsc -b)`).toBe(true);
    if (rel === 'node_modules') {
      boundFromCheckout.push(...productionModules(join(stage, target), target));
      continue;
    }
    mkdirSync(dirname(join(stage, target)), { recursive: true });
    cpSync(from, join(stage, target), { recursive: true });
  }
  return boundFromCheckout;
}

/** Mounts of the image, then exec of "$@" as the image's user with nothing to gain. */
const CONTAINER = String.raw`
set -eu
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs "$APP_PARENT"
mkdir -p "$APP"
mount --bind "$STAGE" "$APP"
for rel in $BOUND; do
  mount --bind "$CHECKOUT/$rel" "$APP/$rel"
  mount -o remount,bind,ro "$APP/$rel"
done
mount -o remount,bind,ro "$APP"
mount -o remount,ro "$APP_PARENT"
mount -t tmpfs -o mode=0755 tmpfs "$VOL_PARENT"
mkdir -p "$VOL"
mount --bind "$DATA" "$VOL"
mount -o remount,ro "$VOL_PARENT"
mount -t tmpfs -o "$TMPFS_OPTIONS" tmpfs "$TMPFS_PATH"
mount -o remount,bind,ro /
cd "$APP"
echo "ready $$"
exec "$@"
`;

const pathEnv = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
/** What the container's process sees: the image's ENV, a PATH, HOME=/ (no passwd entry). */
const imageEnv = [
  'env',
  '-i',
  `PATH=${pathEnv}`,
  'HOME=/',
  ...Object.entries(runtime.env).map(([k, v]) => `${k}=${v}`),
];
const asImageUser = [
  'setpriv',
  `--reuid=${uid}`,
  `--regid=${gid}`,
  '--clear-groups',
  '--inh-caps=-all',
  '--bounding-set=-all',
  '--no-new-privs',
  '--',
];

/** Runs ARGS inside the namespaces of process PID (the running image). */
const inContainer = (pid: number, args: string[]) =>
  // --wd without a value: the target's working directory (the image's WORKDIR).
  spawnSync('nsenter', [`--target=${pid}`, '--mount', '--net', '--wd', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });

const statusField = (pid: number, field: string) =>
  (new RegExp(`^${field}:[ \\t]*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8')) ??
    [])[1]?.trim();

/** Mount options of the mount at POINT as process PID sees it. */
function mountOptions(pid: number, point: string): string[] {
  const line = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === point)
    .at(-1);
  return (line?.split(' ')[5] ?? '').split(',');
}

describe('the image start command, run as the image would run it', () => {
  it('runs as its user on a read-only root, writes only the volume, and is healthy', async () => {
    const missing = ['unshare', 'nsenter', 'setpriv', 'mount', 'ip'].filter((c) => !hasCommand(c));
    expect(missing, 'tools (.ci/run installs util-linux, mount and iproute2)').toEqual([]);
    expect(process.getuid?.(), 'mount namespaces need root (CI runs as root)').toBe(0);

    const stage = join(work, 'app');
    const data = join(work, 'data');
    mkdirSync(stage);
    mkdirSync(data);
    chownSync(data, uid, gid);
    chmodSync(data, 0o700);
    const bound = assembleRuntime(stage);

    const child = spawn(
      'unshare',
      [
        '--mount',
        '--net',
        '--propagation',
        'private',
        '--fork',
        '--kill-child=SIGKILL',
        'sh',
        '-c',
        CONTAINER,
        'container',
        ...asImageUser,
        ...imageEnv,
        ...runtime.entrypoint,
        ...runtime.cmd,
      ],
      {
        env: {
          PATH: process.env.PATH ?? pathEnv,
          APP: runtime.workdir,
          APP_PARENT: dirname(runtime.workdir),
          STAGE: stage,
          CHECKOUT: root,
          BOUND: bound.join(' '),
          VOL: volume,
          VOL_PARENT: dirname(volume),
          DATA: data,
          TMPFS_PATH: tmpfsPath,
          TMPFS_OPTIONS: tmpfsOptions,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    running.add(child);
    let out = '';
    let err = '';
    let code: number | null | undefined;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (c) => {
      code = c;
      running.delete(child);
    });

    await until(() => /ready \d+/.test(out) || code !== undefined, 'the container set-up');
    expect(code, `set-up failed: ${err}`).toBeUndefined();
    const pid = Number(/ready (\d+)/.exec(out)?.[1]);
    relayPid = pid;

    // The image's HEALTHCHECK, in the container, as its user.
    const healthcheck = () =>
      inContainer(pid, [...asImageUser, ...imageEnv, ...(runtime.healthcheck?.cmd ?? [])]);
    let last: ReturnType<typeof healthcheck> | undefined;
    await until(
      () => code !== undefined || (last = healthcheck()).status === 0,
      'the healthcheck to pass',
      45_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; healthcheck: ${last?.stderr ?? ''}; relay: ${err}`);
    });
    expect(code, `relay exited: ${err}`).toBeUndefined();
    await until(() => /listening on wss:/.test(out), 'the start summary on stdout');
    expect(out).toMatch(/listening on wss:\/\/0\.0\.0\.0:8443\/ws/);

    // The process: the image's user and group, no capabilities at all, no privilege gain.
    expect(statusField(pid, 'Uid')?.split(/\s+/)).toEqual(Array(4).fill(String(uid)));
    expect(statusField(pid, 'Gid')?.split(/\s+/)).toEqual(Array(4).fill(String(gid)));
    expect(statusField(pid, 'Groups')).toBe('');
    for (const f of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'])
      expect(statusField(pid, f), f).toBe('0000000000000000');
    expect(statusField(pid, 'NoNewPrivs')).toBe('1');

    // Its file system: root and app read-only, the volume read-write.
    expect(mountOptions(pid, '/')).toContain('ro');
    expect(mountOptions(pid, runtime.workdir)).toContain('ro');
    expect(mountOptions(pid, volume)).toContain('rw');
    // Even root cannot write outside the volume and /tmp there; the user can write the volume.
    for (const path of ['/usr/parley-probe', `${runtime.workdir}/parley-probe`]) {
      const probe = inContainer(pid, ['sh', '-c', `: > ${path}`]);
      expect(probe.status, path).not.toBe(0);
      expect(probe.stderr).toMatch(/Read-only file system/);
    }
    // It runs on the production dependencies alone (what `npm prune --omit=dev` keeps).
    const devDeps = ['typescript', 'vitest', 'eslint'].map(
      (d) => `${runtime.workdir}/node_modules/${d}`,
    );
    const pruned = inContainer(pid, [
      'sh',
      '-c',
      devDeps.map((d) => `test ! -e ${d}`).join(' && '),
    ]);
    expect(pruned.status, 'no development dependency in the image').toBe(0);
    const own = inContainer(pid, [...asImageUser, 'sh', '-c', `: > ${volume}/probe`]);
    expect(own.status, own.stderr).toBe(0);

    // What the relay wrote is in the volume, owned by the image's user, keys private.
    // The CA key is in the CA folder beside the relay folder, not in the relay's pki/.
    expect(existsSync(join(data, 'relay', 'pki', 'ca.key'))).toBe(false);
    const caKey = statSync(join(data, 'relay-ca', 'ca.key'));
    expect([caKey.uid, caKey.gid]).toEqual([uid, gid]);
    expect(caKey.mode & 0o077).toBe(0);
    expect(existsSync(join(data, 'relay', 'relay.db'))).toBe(true);

    // docker stop sends SIGTERM: a clean stop, exit 0.
    process.kill(pid, 'SIGTERM');
    await until(() => code !== undefined, 'the relay to stop');
    relayPid = undefined;
    expect(code, err).toBe(0);
    expect(out).toMatch(/parley relay stopped/);
  }, 120_000);

  it('the healthcheck fails when nothing answers on the admin port', () => {
    const config = join(work, 'closed.json');
    // Port 1 is privileged and never a relay's admin listener here.
    writeFileSync(config, JSON.stringify({ adminPort: 1 }));
    const script = join(root, 'deploy', 'healthcheck.mjs');
    const r = spawnSync(process.execPath, [script, config], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unreachable/);
  });
});
