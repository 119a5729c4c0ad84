/**
 * The default profile gate: this browser's IndexedDB profile (platform/profile.ts) on
 * the relay that served the page, open mode, one tab at a time per profile.
 */
import { ClientError } from '@parley/client';
import { createWebProfile, listWebProfiles, openWebClient } from '../platform/profile.js';
import type { WebClient } from '../platform/profile.js';
import { ProfileInUseError } from './session.js';
import type { ChatSession, ProfileGate } from './session.js';

function session(web: WebClient): ChatSession {
  // Connects in the background: the chat shows the banner until the relay answers.
  web.connection.start();
  return {
    client: web.client,
    name: web.account.name,
    mode: web.account.info.mode,
    onLink: (fn) => web.connection.onState(fn),
    close: () => web.close(),
  };
}

/**
 * Right after `createWebProfile` its own lock may still be on its way out (a Web Lock is
 * released once the holder's promise settles, a few tasks later), so a fresh profile's
 * first open asks a few times before it calls the profile busy.
 */
const FRESH_PROFILE_OPEN_ATTEMPTS = 20;
const FRESH_PROFILE_RETRY_MS = 25;

async function open(profile: string, passphrase: string, fresh = false): Promise<ChatSession> {
  for (let attempt = 1; ; attempt++) {
    const r = await openWebClient({ profile, passphrase });
    if (r.status === 'open') return session(r.web);
    if (!fresh || attempt >= FRESH_PROFILE_OPEN_ATTEMPTS) throw new ProfileInUseError(profile);
    await new Promise((resolve) => setTimeout(resolve, FRESH_PROFILE_RETRY_MS));
  }
}

export function browserGate(): ProfileGate {
  const first = async (): Promise<string | undefined> => (await listWebProfiles())[0];
  return {
    exists: async () => (await first()) !== undefined,
    storedName: first,
    create: async ({ name, passphrase }) => {
      const r = await createWebProfile({ name, passphrase });
      if (r.status === 'in-another-tab') throw new ProfileInUseError(name);
      return open(name, passphrase, true);
    },
    unlock: async (passphrase) => {
      const profile = await first();
      if (profile === undefined) throw new ClientError('PROFILE_NOT_FOUND', 'no profile here');
      return open(profile, passphrase);
    },
  };
}
