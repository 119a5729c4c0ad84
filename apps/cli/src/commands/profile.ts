/**
 * Device-side certificate commands:
 *   parley keygen --profile DIR --name NAME --server URL --csr OUT   (key made in the profile)
 *   parley profile renew-cert --profile DIR --cert F                 (same key, new certificate)
 * Finishing a keygen profile is `parley init --profile DIR --cert F --ca F` (client.ts).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createKeyProfile, installCertificate, readPemFile } from '@parley/client-node';
import { askNewPassphrase, askPassphrase } from '../tui/passphrase.js';

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function registerProfile(program: Command): void {
  program
    .command('keygen')
    .description(
      'recommended mtls enrolment: make the device key inside a new encrypted profile and write a CSR for `parley pki sign`',
    )
    .requiredOption('--profile <DIR>', 'profile directory (created)')
    .requiredOption('--name <NAME>', 'your identity name (the CSR CN)')
    .requiredOption('--server <URL>', 'relay URL, wss://HOST:PORT/ws')
    .requiredOption('--csr <OUT>', 'where to write the certificate request (PEM)')
    .action(async (o: { profile: string; name: string; server: string; csr: string }) => {
      const passphrase = await askNewPassphrase();
      const { csrPem } = await createKeyProfile({
        profile: resolve(o.profile),
        passphrase,
        name: o.name,
        server: o.server,
      });
      writeFileSync(o.csr, csrPem, { mode: 0o644, flag: 'wx' });
      out(`device key created in ${resolve(o.profile)} (it never leaves the profile)`);
      out(`certificate request: ${resolve(o.csr)}  (admin: parley pki sign ${o.csr} --out CERT)`);
      out(`then: parley init --profile ${o.profile} --server ${o.server} --cert CERT --ca CA.crt`);
    });

  const profile = program.command('profile').description('manage an existing profile');
  profile
    .command('renew-cert')
    .description(
      'install a renewed certificate for this device key (from `parley pki renew`); identity, history and safety numbers stay',
    )
    .requiredOption('--profile <DIR>', 'profile directory')
    .requiredOption('--cert <FILE>', 'the new certificate (PEM)')
    .action(async (o: { profile: string; cert: string }) => {
      const certPem = readPemFile(o.cert, '--cert');
      const passphrase = await askPassphrase();
      const r = await installCertificate({ profile: resolve(o.profile), passphrase, certPem });
      out(
        `installed certificate serial ${r.serial} for ${r.name}, valid until ${r.notAfter.toISOString()}`,
      );
    });
}
