/**
 * The default profile gate: this browser's IndexedDB profile (platform/profile.ts) on
 * the relay that served the page, one tab at a time per profile. On an mtls relay a new
 * profile first needs its certificate (`CertificateNeeded`).
 */
import { ClientError } from '@parley/client';
import { fetchRelayInfo } from '../platform/enrolment.js';
import {
  createWebProfile,
  importWebCertificate,
  listWebProfiles,
  openWebClient,
} from '../platform/profile.js';
import type { WebClient } from '../platform/profile.js';
import { CertificateNeeded, ProfileInUseError } from './session.js';
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
    search: (query, options) => web.store.searchMessages(query, options),
    // Loaded on first use: the first page load does not carry the backup code.
    exportBackup: async (passphrase) =>
      (await import('../platform/backup.js')).exportWebBackup(web.store, passphrase),
  };
}

/** A fresh profile's own creation lock is released a few tasks after `createWebProfile` returns. */
const FRESH_PROFILE_LOCK_WAIT_MS = 5_000;

async function open(
  profile: string,
  passphrase: string,
  waitForOtherTab?: AbortSignal,
): Promise<ChatSession> {
  const r = await openWebClient({
    profile,
    passphrase,
    ...(waitForOtherTab ? { waitForOtherTab } : {}),
  });
  if (r.status === 'in-another-tab') throw new ProfileInUseError(profile);
  if (r.status === 'needs-certificate') {
    throw new CertificateNeeded(profile, r.csr, async (certPem) => {
      const i = await importWebCertificate({ profile, passphrase, certPem });
      if (i.status === 'in-another-tab') throw new ProfileInUseError(profile);
      return open(profile, passphrase, AbortSignal.timeout(FRESH_PROFILE_LOCK_WAIT_MS));
    });
  }
  return session(r.web);
}

export function browserGate(): ProfileGate {
  const first = async (): Promise<string | undefined> => (await listWebProfiles())[0];
  return {
    exists: async () => (await first()) !== undefined,
    storedName: first,
    create: async ({ name, passphrase }) => {
      const relay = await fetchRelayInfo();
      const r = await createWebProfile({
        name,
        passphrase,
        mode: relay.auth,
        ...(relay.caPem !== undefined ? { caPem: relay.caPem } : {}),
      });
      if (r.status === 'in-another-tab') throw new ProfileInUseError(name);
      return open(name, passphrase, AbortSignal.timeout(FRESH_PROFILE_LOCK_WAIT_MS));
    },
    unlock: async (passphrase, options) => {
      const profile = await first();
      if (profile === undefined) throw new ClientError('PROFILE_NOT_FOUND', 'no profile here');
      return open(profile, passphrase, options?.waitForOtherTab);
    },
    importBackup: async (file, backupSecret, passphrase) =>
      (await import('../platform/backup.js')).importWebBackup({ file, backupSecret, passphrase }),
  };
}
