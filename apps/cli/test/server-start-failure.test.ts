/**
 * `parley server` that cannot start exits non-zero with the reason, instead of staying
 * alive with nothing listening (a second relay on a port in use, as the old README
 * walkthrough started): both when the relay port and when the admin port is taken.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, run } from './cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-start-fail-'));
const held: Server[] = [];
afterAll(() => {
  killAll();
  for (const s of held) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A port on 127.0.0.1 held by this test for the rest of the run. */
async function takenPort(): Promise<number> {
  const server = createServer();
  held.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

describe('parley server that cannot start', () => {
  it('exits 1 naming the taken relay port', async () => {
    const port = await takenPort();
    const p = await run('server', '--data', join(dir, 'a'), '--port', String(port));
    expect(p.code).toBe(1);
    expect(p.err).toMatch(/^parley: .*EADDRINUSE.*/m);
    expect(p.out).not.toMatch(/listening/);
  });

  it('exits 1 naming the taken admin port, after closing the relay port it opened', async () => {
    const admin = await takenPort();
    const p = await run(
      'server',
      '--data',
      join(dir, 'b'),
      '--port',
      '0',
      '--admin-port',
      String(admin),
    );
    expect(p.code).toBe(1);
    expect(p.err).toMatch(new RegExp(`^parley: .*EADDRINUSE.*${admin}`, 'm'));
  });
});
