import type { Command } from 'commander';
import { registerAudit } from './audit.js';
import { registerBackup } from './backup.js';
import { registerClient } from './client.js';
import { registerGroup } from './group.js';
import { registerPki } from './pki.js';
import { registerPassphrase } from './passphrase.js';
import { registerProfile } from './profile.js';
import { registerProfileSet } from './profile-set.js';
import { registerSearch } from './search.js';
import { registerServer } from './server.js';
import { registerTimer } from './timer.js';

type Register = (program: Command) => void;

/** Command groups, in the order `parley --help` lists them. */
const groups: readonly Register[] = [
  registerServer,
  registerPki,
  registerAudit,
  registerClient,
  registerGroup,
  registerTimer,
  registerProfile,
  registerSearch,
  registerPassphrase,
  registerBackup,
  // After every other group: it joins an existing `profile` group.
  registerProfileSet,
];

export function registerCommands(program: Command): void {
  for (const register of groups) register(program);
}
