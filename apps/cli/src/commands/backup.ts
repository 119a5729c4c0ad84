/**
 * `parley backup --profile DIR --out FILE` and `parley restore --profile DIR --from FILE`:
 * one encrypted file with keys, contacts and history (packages/client-node/src/backup.ts).
 * The backup passphrase comes from PARLEY_BACKUP_PASSPHRASE; without it, backup makes a
 * recovery key and shows it once, and restore asks for either without echo.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { backupProfile, restoreProfile } from '@parley/client-node';
import { out } from '../output.js';
import { askNewPassphrase, askPassphrase, askSecret } from '../tui/passphrase.js';

/** Scripts give the backup passphrase here. */
export const BACKUP_PASSPHRASE_ENV = 'PARLEY_BACKUP_PASSPHRASE';

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('write an encrypted backup of the profile (keys, contacts, history)')
    .requiredOption('--profile <DIR>', 'profile directory')
    .requiredOption('--out <FILE>', 'backup file to create')
    .action(async (o: { profile: string; out: string }) => {
      const passphrase = await askPassphrase();
      const backupPassphrase = process.env[BACKUP_PASSPHRASE_ENV];
      const r = await backupProfile({
        profile: resolve(o.profile),
        passphrase,
        out: resolve(o.out),
        ...(backupPassphrase !== undefined ? { backupPassphrase } : {}),
      });
      out(`backup written to ${resolve(o.out)} (${r.contacts} contacts, ${r.messages} messages)`);
      if (r.recoveryKey !== undefined) {
        out(`recovery key (shown only now; it is the only way to open this backup):`);
        out(`  ${r.recoveryKey}`);
      }
    });

  program
    .command('restore')
    .description('restore an encrypted backup into a new profile folder')
    .requiredOption('--profile <DIR>', 'new profile directory (must not exist or be empty)')
    .requiredOption('--from <FILE>', 'backup file')
    .action(async (o: { profile: string; from: string }) => {
      const backupSecret = await askSecret(
        BACKUP_PASSPHRASE_ENV,
        'Backup passphrase or recovery key: ',
      );
      const passphrase = await askNewPassphrase();
      const r = await restoreProfile({
        profile: resolve(o.profile),
        from: resolve(o.from),
        backupSecret,
        passphrase,
      });
      out(`restored into ${resolve(o.profile)} (${r.contacts} contacts, ${r.messages} messages)`);
      out(
        'sessions will be re-secured: the restored keys are as old as the backup, so the first messages with each contact start a repair, and unreceipted messages are sent again',
      );
    });
}
