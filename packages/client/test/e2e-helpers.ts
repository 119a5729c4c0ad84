/**
 * Shared set-up for end-to-end tests against a real relay (`startRelay`) with real
 * SQLCipher profiles.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPortableCrypto } from '@parley/crypto';
import { MIN_KDF_MEMORY_KIB } from '@parley/client';
import { initProfile } from '@parley/client-node';
import { issueClient, type IssueOptions } from '@parley/pki';
import { startRelay, type RunningRelay } from '@parley/server';

export const crypto = createPortableCrypto();
/** Cheapest Argon2id the profile accepts: these tests exercise delivery, not the KDF. */
export const KDF = { memoryKiB: MIN_KDF_MEMORY_KIB, iterations: 1 };
export const PASS = 'e2e passphrase';

/** Polls `cond` until it holds, for at most `ms`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Issues `name` a certificate from the relay's CA (into `credsDir`) and creates an mtls profile. */
export async function initMtlsProfile(opts: {
  dataDir: string;
  credsDir: string;
  name: string;
  profile: string;
  server: string;
  issue?: IssueOptions;
}): Promise<void> {
  const issued = await issueClient(opts.dataDir, opts.name, opts.credsDir, opts.issue);
  await initProfile({
    profile: opts.profile,
    passphrase: PASS,
    server: opts.server,
    mode: 'mtls',
    certPem: readFileSync(issued.certPath, 'utf8'),
    keyPem: readFileSync(issued.keyPath, 'utf8'),
    caPem: readFileSync(issued.caPath, 'utf8'),
    crypto,
    kdf: KDF,
  });
}

/** A relay (mtls, `root/relay`) with mtls profiles for alice and bob (`root/alice`, `root/bob`). */
export async function startMtlsPair(root: string): Promise<{
  relay: RunningRelay;
  dataDir: string;
  profiles: { alice: string; bob: string };
}> {
  const dataDir = join(root, 'relay');
  const relay = await startRelay({ dataDir, port: 0, auth: 'mtls', logLevel: 'silent' });
  const profiles = { alice: join(root, 'alice'), bob: join(root, 'bob') };
  for (const name of ['alice', 'bob'] as const) {
    await initMtlsProfile({
      dataDir,
      credsDir: join(root, `creds-${name}`),
      name,
      profile: profiles[name],
      server: relay.url,
    });
  }
  return { relay, dataDir, profiles };
}
