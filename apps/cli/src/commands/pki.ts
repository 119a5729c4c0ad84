/**
 * `parley pki init|issue|sign|revoke|list`: operates the private CA in DATA/pki.
 * Output is plain text for people; `list --json` is for scripts. Failures throw, and
 * `main()` prints them as `parley: ...` with exit status 1.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  initPki,
  issueClient,
  listCertificates,
  pkiPaths,
  revoke,
  signCsr,
  type IssueOptions,
  type RevocationReason,
} from '@parley/pki';

/** Largest CSR file the command reads; a real one is well under 1 KiB. */
const MAX_CSR_FILE_BYTES = 64 * 1024;
/** Upper bound for `--days`: ten years, the CA's own lifetime. */
const MAX_VALIDITY_DAYS = 3650;

const REASONS: readonly RevocationReason[] = [
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
];

function out(lines: readonly string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

function parseDays(value: string | undefined): Pick<IssueOptions, 'validityDays'> {
  if (value === undefined) return {};
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_VALIDITY_DAYS) {
    throw new Error(`--days: expected a whole number 1..${MAX_VALIDITY_DAYS}, got "${value}"`);
  }
  return { validityDays: n };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Registers the `pki` command group. */
export function registerPki(program: Command): void {
  const pki = program
    .command('pki')
    .description('private certificate authority: device certificates and revocation');

  pki
    .command('init')
    .description(
      'create DIR/pki/{ca.crt,ca.key,server.crt,server.key,crl.pem} (keeps an existing CA)',
    )
    .requiredOption('--data <DIR>', 'data directory')
    .option(
      '--server-name <NAME>',
      'extra DNS name or IP for the server certificate (repeatable)',
      collect,
      [],
    )
    .action(async (flags: { data: string; serverName: string[] }) => {
      const r = await initPki(flags.data, { serverNames: flags.serverName });
      out([
        r.createdCa ? `created CA: ${r.paths.caCert}` : `existing CA kept: ${r.paths.caCert}`,
        `CA key (keep offline if you can): ${r.paths.caKey}`,
        `${r.createdServer ? 'created' : 'existing'} server certificate: ${r.paths.serverCert}`,
        `server key: ${r.paths.serverKey}`,
        `revocation list: ${r.paths.crl}`,
      ]);
    });

  pki
    .command('issue')
    .description('create a device key and certificate: OUTDIR/NAME.crt, NAME.key and ca.crt')
    .argument('<NAME>', 'identity name: 1..64 of [a-z0-9._-], starting with a letter or digit')
    .requiredOption('--data <DIR>', 'data directory holding the CA')
    .requiredOption('--out <OUTDIR>', 'directory for the credential files')
    .option('--days <N>', 'validity in days (default 365)')
    .option('--force', 'replace an existing OUTDIR/NAME.key (the old identity key is lost)')
    .action(
      async (
        name: string,
        flags: { data: string; out: string; days?: string; force?: boolean },
      ) => {
        const r = await issueClient(flags.data, name, flags.out, {
          ...parseDays(flags.days),
          overwrite: flags.force === true,
        });
        out([
          `issued ${r.name} serial ${r.serial}, valid until ${r.notAfter.toISOString()}`,
          `certificate: ${r.certPath}`,
          `private key (mode 0600; the device's identity key): ${r.keyPath}`,
          `CA certificate: ${r.caPath}`,
        ]);
      },
    );

  pki
    .command('sign')
    .description("certify a device's own Ed25519 key from a CSR (the key never leaves the device)")
    .argument('<CSR>', 'PEM certificate request file; its CN is the identity name')
    .requiredOption('--data <DIR>', 'data directory holding the CA')
    .requiredOption('--out <FILE>', 'where to write the certificate (PEM)')
    .option('--days <N>', 'validity in days (default 365)')
    .action(async (csrFile: string, flags: { data: string; out: string; days?: string }) => {
      const csr = await readFile(csrFile, 'utf8');
      if (csr.length > MAX_CSR_FILE_BYTES) throw new Error(`${csrFile}: too large for a CSR`);
      const r = await signCsr(flags.data, csr, parseDays(flags.days));
      await writeFile(flags.out, r.certPem, { mode: 0o644 });
      out([
        `signed ${r.name} serial ${r.serial}, valid until ${r.notAfter.toISOString()}`,
        `certificate: ${resolve(flags.out)}`,
        `CA certificate: ${pkiPaths(flags.data).caCert}`,
      ]);
    });

  pki
    .command('revoke')
    .description('revoke every live certificate of NAME and re-sign the CRL')
    .argument('<NAME>', 'identity name')
    .requiredOption('--data <DIR>', 'data directory holding the CA')
    .option('--reason <REASON>', `one of ${REASONS.join(', ')} (default cessationOfOperation)`)
    .action(async (name: string, flags: { data: string; reason?: string }) => {
      const reason = REASONS.find((r) => r === flags.reason);
      if (flags.reason !== undefined && reason === undefined) {
        throw new Error(`--reason: expected one of ${REASONS.join(', ')}, got "${flags.reason}"`);
      }
      const serials = await revoke(flags.data, name, reason ? { reason } : {});
      out([
        ...serials.map((s) => `revoked ${name} serial ${s}`),
        `CRL updated: ${pkiPaths(flags.data).crl}`,
      ]);
    });

  pki
    .command('list')
    .description('list issued device certificates')
    .requiredOption('--data <DIR>', 'data directory holding the CA')
    .option('--json', 'one JSON array for scripts')
    .action(async (flags: { data: string; json?: boolean }) => {
      const rows = await listCertificates(flags.data);
      const now = Date.now();
      const status = (r: (typeof rows)[number]): string =>
        r.revoked ? 'revoked' : r.notAfter.getTime() < now ? 'expired' : 'valid';
      if (flags.json === true) {
        out([
          JSON.stringify(
            rows.map((r) => ({
              name: r.name,
              serial: r.serial,
              notBefore: r.notBefore.toISOString(),
              notAfter: r.notAfter.toISOString(),
              status: status(r),
              ...(r.revokedAt ? { revokedAt: r.revokedAt.toISOString() } : {}),
            })),
          ),
        ]);
        return;
      }
      const nameWidth = Math.max(4, ...rows.map((r) => r.name.length));
      const line = (a: string, b: string, c: string, d: string): string =>
        `${a.padEnd(nameWidth)}  ${b.padEnd(32)}  ${c.padEnd(24)}  ${d}`;
      out([
        line('NAME', 'SERIAL', 'NOT AFTER', 'STATUS'),
        ...rows.map((r) => line(r.name, r.serial, r.notAfter.toISOString(), status(r))),
      ]);
    });
}
