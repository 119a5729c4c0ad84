/**
 * `parley timer`: sets the disappearing-message timer of one conversation for both
 * sides. Sent like a message, so it exits 0 only once the relay has queued it (the
 * peer applies it when it reads its mailbox); the change is stored in the history.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { openNodeClient } from '@parley/client-node';
import { askPassphrase } from '../tui/passphrase.js';
import { parseTimerArg, timerWords } from '../tui/timer-words.js';
import { out } from '../output.js';

/** How long `timer` waits for the relay's `queued` receipt (as `send` does). */
const TIMER_QUEUED_TIMEOUT_MS = 30_000;

export function registerTimer(program: Command): void {
  program
    .command('timer')
    .description('set disappearing messages for a conversation: off, 5m, 1h, 1d or 1w')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<NAME>', 'the other party')
    .argument('<TIMER>', 'off|5m|1h|1d|1w')
    .action(async (name: string, raw: string, o: { profile: string }) => {
      const ms = parseTimerArg(raw);
      const passphrase = await askPassphrase();
      const c = await openNodeClient({ profile: resolve(o.profile), passphrase, reconnect: false });
      try {
        await c.connect();
        const m = await c.client.setTimer(name, ms);
        await c.client.waitForStatus(name, m.id, 'queued', TIMER_QUEUED_TIMEOUT_MS);
        out(`disappearing messages with ${name}: ${timerWords(ms)}`);
      } finally {
        await c.close();
      }
    });
}
