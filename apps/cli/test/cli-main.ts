/**
 * The `parley` command run in this process through `main()`, with stdout and stderr
 * captured and the passphrase given as `PARLEY_PASSPHRASE`, for commands that finish.
 */
import { vi } from 'vitest';
import { main } from '../src/main.js';

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function parleyMain(passphrase: string, ...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  const before = process.env['PARLEY_PASSPHRASE'];
  process.env['PARLEY_PASSPHRASE'] = passphrase;
  try {
    const code = await main(['node', 'parley', ...args]);
    return { code, stdout, stderr };
  } finally {
    if (before === undefined) delete process.env['PARLEY_PASSPHRASE'];
    else process.env['PARLEY_PASSPHRASE'] = before;
    o.mockRestore();
    e.mockRestore();
  }
}
