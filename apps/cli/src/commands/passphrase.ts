/**
 * `parley passphrase --profile DIR [--duress]` (M40): change the profile passphrase, or
 * set the duress passphrase whose use erases the profile and opens an empty one. The
 * current passphrase comes from PARLEY_PASSPHRASE (or the terminal); the new one from
 * PARLEY_NEW_PASSPHRASE (or typed twice without echo).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { changePassphrase, setDuressPassphrase } from '@parley/client-node';
import { out } from '../output.js';
import { askNewSecret, askPassphrase } from '../tui/passphrase.js';

/** Scripts give the new passphrase here (the current one stays in PARLEY_PASSPHRASE). */
export const NEW_PASSPHRASE_ENV = 'PARLEY_NEW_PASSPHRASE';

export function registerPassphrase(program: Command): void {
  program
    .command('passphrase')
    .description('change the profile passphrase, or set the duress passphrase (--duress)')
    .requiredOption('--profile <DIR>', 'profile directory')
    .option('--duress', 'set the passphrase that erases this profile and opens an empty one')
    .action(async (o: { profile: string; duress?: boolean }) => {
      const profile = resolve(o.profile);
      const passphrase = await askPassphrase();
      if (o.duress) {
        const newPassphrase = await askNewSecret(NEW_PASSPHRASE_ENV, 'duress passphrase');
        await setDuressPassphrase({ profile, passphrase, newPassphrase });
        out(
          'duress passphrase set: unlocking with it erases this profile (keys and history) and opens an empty one',
        );
      } else {
        const newPassphrase = await askNewSecret(NEW_PASSPHRASE_ENV, 'passphrase');
        await changePassphrase({ profile, passphrase, newPassphrase });
        out('passphrase changed');
      }
    });
}
