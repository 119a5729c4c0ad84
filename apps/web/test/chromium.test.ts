/**
 * Browser tests must fail, not skip, where Chromium is missing: the launcher refuses
 * with the command that installs it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('chromium launcher', () => {
  it('rejects with an install hint when the binary is missing', () => {
    const launcher = fileURLToPath(new URL('./chromium.ts', import.meta.url));
    const script = `import(${JSON.stringify(launcher)}).then((m) => m.launchChromium()).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(3); })`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, PARLEY_CHROMIUM: '/nonexistent/chromium' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toContain('chromium not found at /nonexistent/chromium');
    expect(r.stderr).toContain('apt-get install chromium');
  });
});
