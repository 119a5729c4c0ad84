/**
 * `parley profile set`: fix how a saved profile reaches its relay (a mistyped or moved
 * address, a renewed relay CA) without recreating it, which would lose its keys and
 * history. After saving, the relay is tried once so the user learns at once whether
 * the fix worked; an unregistered open-mode device registers then.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ClientError } from '@parley/client';
import { openNodeClient, readPemFile, updateProfileSettings } from '@parley/client-node';
import { askPassphrase } from '../tui/passphrase.js';
import { out } from '../output.js';

/**
 * Adds `set` to the `profile` command group, creating the group unless another module
 * (certificate renewal) already made it, so the two can register in either order.
 */
export function registerProfileSet(program: Command): void {
  const profile =
    program.commands.find((c) => c.name() === 'profile') ??
    program.command('profile').description('manage an existing profile');
  profile
    .command('set')
    .description('change the relay URL and/or the CA certificate of a profile, then try the relay')
    .requiredOption('--profile <DIR>', 'profile directory')
    .option('--server <URL>', 'relay URL, wss://HOST:PORT')
    .option('--ca <FILE>', 'CA certificate that signed the relay (mtls: the organisation CA)')
    .action(async (o: { profile: string; server?: string; ca?: string }) => {
      if (o.server === undefined && o.ca === undefined) {
        throw new ClientError('INVALID_ARGUMENT', 'give --server and/or --ca');
      }
      const dir = resolve(o.profile);
      const caPem = o.ca !== undefined ? readPemFile(o.ca, '--ca') : undefined;
      const passphrase = await askPassphrase();
      const saved = await updateProfileSettings({
        profile: dir,
        passphrase,
        ...(o.server !== undefined ? { server: o.server } : {}),
        ...(caPem !== undefined ? { caPem } : {}),
      });
      out(`saved: ${saved.name} (${saved.mode}) uses ${saved.server}`);
      const c = await openNodeClient({ profile: dir, passphrase, reconnect: false });
      try {
        await c.connect();
        await c.client.requestPresence();
        out(`registered with ${saved.server}`);
      } catch (err) {
        throw new ClientError(
          err instanceof ClientError ? err.code : 'TRANSPORT',
          `the settings are saved, but the relay did not answer: ${(err as Error).message}`,
          { cause: err },
        );
      } finally {
        await c.close();
      }
    });
}
