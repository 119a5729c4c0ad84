import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  readConfigFile,
  resolveConfig,
  validateConfigFile,
} from '../src/config.js';
import { ServerError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(fn: () => unknown): ServerError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServerError) return err;
    throw err;
  }
  throw new Error('expected a ServerError');
}

describe('config', () => {
  it('resolves defaults when the file is empty', () => {
    const c = resolveConfig({});
    expect(c.auth).toBe('mtls');
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(8443);
    expect(c.limits).toEqual(DEFAULT_LIMITS);
  });

  it('names the invalid field', () => {
    const e = errorOf(() =>
      validateConfigFile({ limits: { idleTimeoutMs: 'soon' } }, 'relay.json'),
    );
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('relay.json');
    expect(e.message).toContain('limits.idleTimeoutMs');
    expect(errorOf(() => validateConfigFile({ prot: 1 })).message).toMatch(/prot/);
    expect(errorOf(() => validateConfigFile({ auth: 'password' })).message).toContain('"auth"');
    expect(errorOf(() => validateConfigFile({ port: 70000 })).message).toContain('"port"');
  });

  it('reads a file and lets flags override it', () => {
    const file = join(dir, 'relay.json');
    writeFileSync(
      file,
      JSON.stringify({ port: 9000, auth: 'open', limits: { maxConnections: 50 } }),
    );
    const c = resolveConfig(readConfigFile(file), {
      port: 0,
      config: { rateLimit: { windowMs: 1000 } },
    });
    expect(c.port).toBe(0);
    expect(c.auth).toBe('open');
    expect(c.limits.maxConnections).toBe(50);
    expect(c.limits.blockBytes).toBe(DEFAULT_LIMITS.blockBytes);
    expect(c.rateLimit.windowMs).toBe(1000);
  });

  it('reports unreadable and non-JSON files and cross-field contradictions', () => {
    expect(errorOf(() => readConfigFile(join(dir, 'missing.json'))).message).toContain('ENOENT');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(errorOf(() => readConfigFile(bad)).message).toContain('not valid JSON');
    expect(
      errorOf(() => resolveConfig({ limits: { maxConnections: 2, maxConnectionsPerIdentity: 3 } }))
        .message,
    ).toContain('limits.maxConnectionsPerIdentity');
  });

  it('takes tls.watchCrl as a boolean (watching by default) and names it when wrong', () => {
    expect(resolveConfig({}).tls.watchCrl).toBeUndefined();
    expect(resolveConfig({ tls: { watchCrl: false } }).tls.watchCrl).toBe(false);
    expect(errorOf(() => validateConfigFile({ tls: { watchCrl: 'no' } })).message).toContain(
      'tls.watchCrl',
    );
  });

  it('validates limits.maxUnauthenticatedPerAddress and names it', () => {
    expect(resolveConfig({}).limits.maxUnauthenticatedPerAddress).toBe(512);
    expect(
      resolveConfig({ limits: { maxUnauthenticatedPerAddress: 8 } }).limits
        .maxUnauthenticatedPerAddress,
    ).toBe(8);
    for (const bad of [0, 1.5, '8']) {
      expect(
        errorOf(() => validateConfigFile({ limits: { maxUnauthenticatedPerAddress: bad } }))
          .message,
      ).toContain('limits.maxUnauthenticatedPerAddress');
    }
  });
});
