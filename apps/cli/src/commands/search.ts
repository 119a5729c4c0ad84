/**
 * `parley search --profile DIR QUERY [--peer NAME] [--json]` (M38): the profile's own
 * history, newest first, from the index inside the encrypted store. Needs no relay.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { openNodeClient } from '@parley/client-node';
import { out } from '../output.js';
import { askPassphrase } from '../tui/passphrase.js';
import { historyLine } from './message-lines.js';

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('search your own history (words; word* for a prefix), newest first')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<QUERY>', 'words that must all occur; end a word with * to match a prefix')
    .option('--peer <NAME>', 'only the conversation with NAME')
    .option('--json', 'one JSON object per line')
    .action(async (query: string, o: { profile: string; peer?: string; json?: boolean }) => {
      const c = await openNodeClient({
        profile: resolve(o.profile),
        passphrase: await askPassphrase(),
        reconnect: false,
      });
      try {
        const hits = await c.store.searchMessages(query, {
          ...(o.peer !== undefined ? { peer: o.peer } : {}),
        });
        const me = c.account.info.name;
        for (const m of hits) out(historyLine(m, me, o.json === true));
        if (hits.length === 0 && o.json !== true) out('no messages found');
      } finally {
        await c.close();
      }
    });
}
