/**
 * `parley server backup|restore`: an online-consistent copy of a relay's data folder,
 * and a restore that can never hand out a one-time prekey twice (docs/operations.md).
 */
import type { Command } from 'commander';
import { backupRelay, restoreRelay } from '@parley/server';

function out(lines: readonly string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Adds `backup` and `restore` under the `server` command. */
export function registerServerBackup(server: Command): void {
  // `server` has its own --data: options after `backup`/`restore` belong to them
  // (commander needs positional options on every ancestor for that).
  for (let c: Command | null = server; c; c = c.parent) c.enablePositionalOptions();
  server
    .command('backup')
    .description(
      "write ONE tar file with a relay's database (SQLite online backup), audit log and key, pki/ without the CA key, and the attachment blobs, while it runs",
    )
    .requiredOption('--data <DIR>', 'data directory of the relay')
    .requiredOption('--out <FILE>', 'new file for the backup (never overwritten)')
    .option('--config <FILE>', "the relay's configuration file (if it moves the database or log)")
    .action(async (flags: { data: string; out: string; config?: string }) => {
      const r = await backupRelay({
        dataDir: flags.data,
        outFile: flags.out,
        ...(flags.config !== undefined ? { configFile: flags.config } : {}),
      });
      out([
        `backup written to ${r.outFile} (tar: relay.db, ${r.auditRecords} audit records, audit.key, pki/ without the CA key, ${r.blobs.blobs} attachment blobs of ${r.blobs.bytes} bytes)`,
        `restore with: parley server restore --data DIR --from ${r.outFile}`,
      ]);
    });

  server
    .command('restore')
    .description(
      'restore relay.db and the attachment blobs from a backup into a stopped relay; every one-time prekey is marked spent',
    )
    .requiredOption('--data <DIR>', 'data directory of the (stopped) relay')
    .requiredOption('--from <FILE>', 'a file written by `parley server backup`')
    .option('--config <FILE>', "the relay's configuration file (if it moves the database or log)")
    .action((flags: { data: string; from: string; config?: string }) => {
      const r = restoreRelay({
        dataDir: flags.data,
        fromFile: flags.from,
        ...(flags.config !== undefined ? { configFile: flags.config } : {}),
      });
      out([
        `restored relay.db from ${flags.from}`,
        ...(r.previousDatabase ? [`previous database kept as ${r.previousDatabase}`] : []),
        ...(r.restoredPki ? ['pki/ restored (the folder had none)'] : []),
        ...(r.restoredBlobs ? ['attachment blobs restored'] : []),
        ...(r.previousBlobs ? [`previous blob folder kept as ${r.previousBlobs}`] : []),
        `${r.spentPrekeys} one-time prekeys marked spent; devices upload new ones at their next login (prekeys.low)`,
      ]);
    });
}
