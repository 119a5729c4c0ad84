/**
 * The systemd unit (deploy/parley-relay.service): systemd's own checker accepts it
 * without a single complaint, systemd's offline security analysis rates its exposure at
 * 2.0 or better, it carries the confinement the container has, and it starts the same
 * command as the image. Needs `systemd-analyze` (Debian package systemd; .ci/run installs
 * it); a missing tool fails the test. No systemd runs here, so the unit is not started.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deployDir, hasCommand, readDockerfile, readUnit, type Stage } from './deploy-files.js';

const UNIT = 'parley-relay.service';
const unit = readUnit();
const get = (key: string) => unit.get(key) ?? [];
const one = (key: string) => {
  const v = get(key);
  expect(v, key).toHaveLength(1);
  return v[0] ?? '';
};

const work = mkdtempSync(join(tmpdir(), 'parley-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The unit as installed on this machine: its node is wherever this test's node is. */
function installedCopy(text = readFileSync(join(deployDir, UNIT), 'utf8')): string {
  const dir = mkdtempSync(join(work, 'u-'));
  const file = join(dir, UNIT);
  writeFileSync(
    file,
    text.replaceAll('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `),
  );
  return file;
}

function analyze(...args: string[]) {
  return spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 60_000 });
}

/** Lines systemd-analyze printed about our unit (warnings exit 0, so they are counted). */
const complaints = (r: ReturnType<typeof analyze>, file: string) =>
  `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.includes(file) || l.includes(UNIT));

describe('deploy/parley-relay.service', () => {
  it('systemd-analyze is installed (.ci/run installs the systemd package)', () => {
    expect(hasCommand('systemd-analyze')).toBe(true);
  });

  it('passes systemd-analyze verify with no warning at all', () => {
    const file = installedCopy();
    const r = analyze('verify', file);
    expect(r.error).toBeUndefined();
    expect(complaints(r, file)).toEqual([]);
    expect(r.status, r.stderr).toBe(0);
  });

  it('a broken copy is caught (so the check above can fail)', () => {
    const text = readFileSync(join(deployDir, UNIT), 'utf8')
      .replace('ProtectSystem=strict', 'ProtectSystem=bogus')
      .replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes');
    const file = installedCopy(text);
    expect(complaints(analyze('verify', file), file).length).toBe(2);
  });

  it('systemd-analyze security --offline rates its exposure at 2.0 or lower', () => {
    const file = installedCopy();
    // The threshold is on systemd's 0-100 scale (the printed level times ten).
    const r = analyze('security', '--offline=yes', '--threshold=20', file);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Overall exposure level for .*: [0-2]\.\d/);
  });

  it('carries the same confinement as the container', () => {
    expect(one('Service.DynamicUser')).toBe('yes');
    expect(one('Service.User')).toBe('parley');
    expect(one('Service.NoNewPrivileges')).toBe('yes');
    expect(one('Service.CapabilityBoundingSet')).toBe('');
    expect(one('Service.AmbientCapabilities')).toBe('');
    expect(one('Service.ProtectSystem')).toBe('strict');
    expect(one('Service.ProtectHome')).toBe('yes');
    expect(one('Service.PrivateTmp')).toBe('yes');
    expect(one('Service.PrivateDevices')).toBe('yes');
    expect(one('Service.StateDirectory')).toBe('parley');
    expect(one('Service.ReadWritePaths')).toBe('/var/lib/parley');
    expect(one('Service.RestrictAddressFamilies').split(/\s+/).sort()).toEqual([
      'AF_INET',
      'AF_INET6',
      'AF_UNIX',
    ]);
    expect(one('Service.RestrictSUIDSGID')).toBe('yes');
    expect(one('Service.RestrictNamespaces')).toBe('yes');
    expect(get('Service.SystemCallFilter')[0]).toBe('@system-service');
    expect(one('Service.UMask')).toBe('0077');
  });

  it('starts the same command as the container image, on the same data folder', () => {
    const runtime = readDockerfile().at(-1) as Stage;
    const [node, ...unitArgs] = one('Service.ExecStart').split(/\s+/);
    expect(node).toBe('/usr/bin/node');
    const [, ...imageEntry] = runtime.entrypoint; // the image's `node` is on its PATH
    const imageArgs = [...imageEntry, ...runtime.cmd];
    const withoutConfig = (a: string[]) => {
      const i = a.indexOf('--config');
      return i < 0 ? a : [...a.slice(0, i), ...a.slice(i + 2)];
    };
    expect(withoutConfig(unitArgs)).toEqual(withoutConfig(imageArgs));
    // Inside the volume, so that the CA folder its first start makes beside it is too.
    expect(unitArgs[unitArgs.indexOf('--data') + 1]).toBe(`${runtime.volumes[0]}/relay`);
    // The configuration is where ConfigurationDirectory= puts it.
    expect(unitArgs[unitArgs.indexOf('--config') + 1]).toBe(
      `/etc/${one('Service.ConfigurationDirectory')}/relay.json`,
    );
  });
});
