/**
 * `parley group`: end-to-end encrypted groups and the server-wide shared room.
 *   group create --profile DIR GROUP [MEMBER ...]   the creator is admin
 *   group add    --profile DIR GROUP MEMBER ...     (admin)
 *   group remove --profile DIR GROUP MEMBER ...     (admin)
 *   group leave  --profile DIR GROUP
 *   group list   --profile DIR [--json]
 *   group join   --profile DIR ROOM
 * Each change is signed and sent to the members over pairwise sessions; a command exits
 * once the relay took those messages (or says they are still queued on this device).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { GroupInfo } from '@parley/client';
import { openNodeClient } from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import { askPassphrase } from '../tui/passphrase.js';
import { out, warn } from '../output.js';

/**
 * How long a group command waits for the relay to take the change and the sender keys
 * it sends (one pairwise message per member, each maybe after a key lookup).
 */
export const GROUP_SETTLE_TIMEOUT_MS = 30_000;

async function withClient<T>(profile: string, job: (c: NodeClient) => Promise<T>): Promise<T> {
  const passphrase = await askPassphrase();
  const c = await openNodeClient({ profile: resolve(profile), passphrase, reconnect: false });
  try {
    await c.connect();
    const result = await job(c);
    await settle(c);
    return result;
  } finally {
    await c.close();
  }
}

/** Waits until the relay took what the command queued; says so if it did not. */
export async function settle(c: NodeClient): Promise<void> {
  if (!(await c.client.settle(GROUP_SETTLE_TIMEOUT_MS)))
    warn('some group messages are still queued on this device; they go out when it next connects');
}

export function groupLine(g: GroupInfo): string {
  const who = g.members.map((m) => (m.role === 'admin' ? `${m.name} (admin)` : m.name));
  const state = g.status === 'active' ? '' : ` [${g.status}]`;
  return `${g.name}${g.room ? ' (room)' : ''}${state}: ${who.join(', ')}`;
}

function groupJson(g: GroupInfo): string {
  return JSON.stringify({
    group: g.name,
    id: g.id,
    room: g.room,
    status: g.status,
    epoch: g.epoch,
    members: g.members,
  });
}

export function registerGroup(program: Command): void {
  const group = program
    .command('group')
    .description(
      'end-to-end encrypted groups and the shared room (create, add, remove, leave, list, join)',
    );
  group
    .command('create')
    .description('create GROUP with you as admin and the MEMBERs')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<GROUP>', 'group name ([a-z0-9._-], as user names)')
    .argument('[MEMBER...]', 'users to add')
    .action(async (name: string, members: string[], o: { profile: string }) => {
      const g = await withClient(o.profile, (c) => c.client.createGroup(name, members));
      out(groupLine(g));
    });
  group
    .command('add')
    .description('add MEMBERs to GROUP (admin only)')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<GROUP>', 'group name')
    .argument('<MEMBER...>', 'users to add')
    .action(async (name: string, members: string[], o: { profile: string }) => {
      const g = await withClient(o.profile, (c) => c.client.addToGroup(name, members));
      out(groupLine(g));
    });
  group
    .command('remove')
    .description('remove MEMBERs from GROUP (admin only); they read nothing sent after')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<GROUP>', 'group name')
    .argument('<MEMBER...>', 'members to remove')
    .action(async (name: string, members: string[], o: { profile: string }) => {
      const g = await withClient(o.profile, (c) => c.client.removeFromGroup(name, members));
      out(groupLine(g));
    });
  group
    .command('leave')
    .description('leave GROUP')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<GROUP>', 'group name')
    .action(async (name: string, o: { profile: string }) => {
      await withClient(o.profile, (c) => c.client.leaveGroup(name));
      out(`left ${name}`);
    });
  group
    .command('list')
    .description('groups with their members (--json: one object per line)')
    .requiredOption('--profile <DIR>', 'profile directory')
    .option('--json', 'one JSON object per line')
    .action(async (o: { profile: string; json?: boolean }) => {
      // The local store only: no relay needed.
      const passphrase = await askPassphrase();
      const c = await openNodeClient({
        profile: resolve(o.profile),
        passphrase,
        reconnect: false,
      });
      try {
        for (const g of await c.client.groupList()) out(o.json ? groupJson(g) : groupLine(g));
      } finally {
        await c.close();
      }
    });
  group
    .command('join')
    .description('join the server-wide shared room ROOM (created if nobody online holds it)')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<ROOM>', 'room name')
    .action(async (room: string, o: { profile: string }) => {
      const g = await withClient(o.profile, (c) => c.client.joinRoom(room));
      out(groupLine(g));
    });
}
