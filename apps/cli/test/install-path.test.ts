/**
 * How the `parley` command gets onto PATH (README "Install"): `npx parley` inside the
 * checkout runs the checkout's own bin, and `npm install -g .` (what `npm link` does too)
 * puts that same bin on PATH for use outside the repository. The root package is named so
 * that no public npm package answers for it. Runs the built bin (`npm test` builds first).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  bin: Record<string, string>;
};
const cliVersion = (
  JSON.parse(readFileSync(join(root, 'apps/cli/package.json'), 'utf8')) as { version: string }
).version;

/** npm's own variables (set when run under `npm test`) would redirect the commands below. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

const scratch = mkdtempSync(join(tmpdir(), 'parley-install-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  return execFileSync('npm', args, {
    cwd,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
}

describe('parley on PATH', () => {
  it('the root package is not the public `parley` package, and its bin is `parley`', () => {
    expect(rootPkg.name).toBe('parley-messenger');
    expect(rootPkg.bin).toEqual({ parley: 'apps/cli/bin/parley.js' });
  });

  it('`npx parley` inside the checkout runs the checkout bin (no registry package)', () => {
    // --no: npx must not install anything; it finds the bin in the root package.json.
    const out = npm(['exec', '--no', '--', 'parley', '--version'], root, cleanEnv({}));
    expect(out.trim()).toBe(cliVersion);
  });

  it('`npm install -g .` puts a working `parley` on PATH outside the repository', () => {
    const prefix = join(scratch, 'global');
    const env = cleanEnv({ npm_config_prefix: prefix });
    npm(['install', '-g', '.', '--no-audit', '--no-fund'], root, env);
    const bin = join(prefix, 'bin', 'parley');
    expect(realpathSync(bin)).toBe(realpathSync(join(root, rootPkg.bin['parley'] ?? 'missing')));

    const outside = mkdtempSync(join(scratch, 'elsewhere-'));
    const onPath = { ...env, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` };
    const direct = execFileSync('parley', ['--version'], { cwd: outside, env: onPath });
    expect(direct.toString().trim()).toBe(cliVersion);
    // And `npx parley` outside the checkout now resolves the installed bin, not the registry.
    expect(npm(['exec', '--no', '--', 'parley', '--version'], outside, onPath).trim()).toBe(
      cliVersion,
    );
  });
});
