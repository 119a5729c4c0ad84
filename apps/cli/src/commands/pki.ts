/**
 * `parley pki init|issue|sign|renew|revoke|crl|list`: operates the private CA in its own
 * folder, which the relay never reads: `--ca-dir CADIR`, by default DIR-ca beside the
 * relay's data folder DIR (DIR/pki still, for an older folder holding ca.key there).
 * Output is plain text for people; `list --json` is for scripts. Failures throw, and
 * `main()` prints them as `parley: ...` with exit status 1.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  initPki,
  issueClient,
  listCertificates,
  refreshCrl,
  resolvePkiPaths,
  renew,
  revoke,
  revokeSerial,
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

/** `--data` and `--ca-dir` as every CA command takes them: at least one is needed. */
interface Where {
  readonly data?: string;
  readonly caDir?: string;
}

function where(flags: Where): { dataDir: string | undefined; caDir?: string } {
  if (flags.data === undefined && flags.caDir === undefined) {
    throw new Error('give --data DIR (the relay folder) and/or --ca-dir CADIR (the CA folder)');
  }
  return { dataDir: flags.data, ...(flags.caDir !== undefined ? { caDir: flags.caDir } : {}) };
}

function withWhere(cmd: Command, dataHelp: string): Command {
  return cmd
    .option('--data <DIR>', dataHelp)
    .option(
      '--ca-dir <CADIR>',
      'the CA folder (ca.key, issued/, revoked.json); default DIR-ca beside DIR',
    );
}

function parseReason(value: string | undefined): RevocationReason | undefined {
  const reason = REASONS.find((r) => r === value);
  if (value !== undefined && reason === undefined) {
    throw new Error(`--reason: expected one of ${REASONS.join(', ')}, got "${value}"`);
  }
  return reason;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Registers the `pki` command group. */
export function registerPki(program: Command): void {
  const pki = program
    .command('pki')
    .description('private certificate authority: device certificates and revocation');

  withWhere(
    pki
      .command('init')
      .description(
        'create the CA in CADIR (default DIR-ca; kept if it exists, even without its key) and the relay pieces DIR/pki/{ca.crt,server.crt,server.key,crl.pem}',
      ),
    'relay data directory',
  )
    .option(
      '--server-name <NAME>',
      'extra DNS name or IP for the server certificate (repeatable)',
      collect,
      [],
    )
    .action(async (flags: Where & { serverName: string[] }) => {
      const w = where(flags);
      const r = await initPki(w.dataDir, { serverNames: flags.serverName, ...w });
      const p = r.paths;
      const sameFolder = p.relayDir !== undefined && p.relayDir === p.dir;
      out([
        r.createdCa ? `created CA: ${p.caCert}` : `existing CA kept: ${p.caCert}`,
        r.caKeyOffline
          ? `CA key is offline (${p.caKey} absent): carrying on with what does not need it`
          : `CA key: ${p.caKey}`,
        ...(p.relayDir !== undefined
          ? [
              `${r.createdServer ? 'created' : 'existing'} server certificate: ${p.serverCert}`,
              `server key: ${p.serverKey}`,
              `revocation list: ${p.relayCrl ?? p.crl}`,
            ]
          : [`revocation list: ${p.crl}`]),
        ...r.warnings.map((m) => `warning: ${m}`),
      ]);
      if (sameFolder && !r.caKeyOffline) {
        process.stderr.write(
          `parley: warning: the CA key ${p.caKey} is in the relay's data folder; whoever controls the relay host can mint certificates. ` +
            'Move the CA (ca.key, issued/, revoked.json) into its own folder (default DIR-ca beside DIR), see docs/pki.md\n',
        );
      }
    });

  withWhere(
    pki
      .command('issue')
      .description('create a device key and certificate: OUTDIR/NAME.crt, NAME.key and ca.crt')
      .argument('<NAME>', 'identity name: 1..64 of [a-z0-9._-], starting with a letter or digit'),
    'relay data directory (the CA is in DIR-ca unless --ca-dir)',
  )
    .requiredOption('--out <OUTDIR>', 'directory for the credential files')
    .option('--days <N>', 'validity in days (default 365)')
    .option(
      '--force',
      'replace an existing OUTDIR/NAME.key (the old identity key is lost, so its certificate is revoked as with --replace)',
    )
    .option('--replace', "revoke NAME's valid certificate(s) and certify a new key")
    .action(
      async (
        name: string,
        flags: Where & { out: string; days?: string; force?: boolean; replace?: boolean },
      ) => {
        const w = where(flags);
        const r = await issueClient(w.dataDir, name, flags.out, {
          ...parseDays(flags.days),
          overwrite: flags.force === true,
          // A discarded identity key leaves its certificate useless: revoke it too.
          replace: flags.replace === true || flags.force === true,
          ...w,
        });
        out([
          ...r.replaced.map((s) => `revoked ${name} serial ${s} (superseded)`),
          `issued ${r.name} serial ${r.serial}, valid until ${r.notAfter.toISOString()}`,
          `certificate: ${r.certPath}`,
          `private key (mode 0600; the device's identity key): ${r.keyPath}`,
          `CA certificate: ${r.caPath}`,
        ]);
      },
    );

  withWhere(
    pki
      .command('sign')
      .description(
        "certify a device's own Ed25519 key from a CSR (recommended: the key never leaves the device)",
      )
      .argument('<CSR>', 'PEM certificate request file; its CN is the identity name'),
    'relay data directory (the CA is in DIR-ca unless --ca-dir)',
  )
    .requiredOption('--out <FILE>', 'where to write the certificate (PEM)')
    .option('--days <N>', 'validity in days (default 365)')
    .option('--replace', "revoke the name's valid certificate(s) and certify this key")
    .action(
      async (csrFile: string, flags: Where & { out: string; days?: string; replace?: boolean }) => {
        const w = where(flags);
        const csr = await readFile(csrFile, 'utf8');
        if (csr.length > MAX_CSR_FILE_BYTES) throw new Error(`${csrFile}: too large for a CSR`);
        const r = await signCsr(w.dataDir, csr, {
          ...parseDays(flags.days),
          replace: flags.replace === true,
          ...w,
        });
        await writeFile(flags.out, r.certPem, { mode: 0o644 });
        out([
          ...r.replaced.map((s) => `revoked ${r.name} serial ${s} (superseded)`),
          `signed ${r.name} serial ${r.serial}, valid until ${r.notAfter.toISOString()}`,
          `certificate: ${resolve(flags.out)}`,
          `CA certificate: ${resolvePkiPaths(w.dataDir, w.caDir).caCert}`,
        ]);
      },
    );

  withWhere(
    pki
      .command('renew')
      .description(
        "re-certify NAME's current device key (same identity and safety number); install with `parley profile renew-cert`",
      )
      .argument('<NAME>', 'identity name'),
    'relay data directory (the CA is in DIR-ca unless --ca-dir)',
  )
    .requiredOption('--out <FILE>', 'where to write the new certificate (PEM)')
    .option('--days <N>', 'validity in days (default 365)')
    .action(async (name: string, flags: Where & { out: string; days?: string }) => {
      const w = where(flags);
      const r = await renew(w.dataDir, name, { ...parseDays(flags.days), ...w });
      await writeFile(flags.out, r.certPem, { mode: 0o644 });
      out([
        `renewed ${r.name} serial ${r.serial} (same key), valid until ${r.notAfter.toISOString()}`,
        `certificate: ${resolve(flags.out)}`,
        `install it: parley profile renew-cert --profile DIR --cert ${resolve(flags.out)}`,
      ]);
    });

  withWhere(
    pki
      .command('revoke')
      .description('revoke every live certificate of NAME (or one --serial) and re-sign the CRL')
      .argument('[NAME]', 'identity name'),
    'relay data directory (the new CRL is installed there)',
  )
    .option('--serial <HEX>', 'revoke only the certificate with this serial')
    .option('--reason <REASON>', `one of ${REASONS.join(', ')} (default cessationOfOperation)`)
    .action(
      async (name: string | undefined, flags: Where & { serial?: string; reason?: string }) => {
        const w = where(flags);
        const reason = parseReason(flags.reason);
        const opts = { ...(reason ? { reason } : {}), ...w };
        if ((name === undefined) === (flags.serial === undefined)) {
          throw new Error('give either NAME or --serial HEX');
        }
        const lines =
          flags.serial !== undefined
            ? [
                `revoked ${await revokeSerial(w.dataDir, flags.serial, opts)} serial ${flags.serial.toLowerCase()}`,
              ]
            : (await revoke(w.dataDir, name as string, opts)).map(
                (s) => `revoked ${name} serial ${s}`,
              );
        const p = resolvePkiPaths(w.dataDir, w.caDir);
        out([...lines, `CRL updated: ${p.relayCrl ?? p.crl}`]);
      },
    );

  withWhere(
    pki
      .command('crl')
      .description('re-sign the CRL now and install it in the relay folder (CA key kept offline)'),
    'relay data directory to install the CRL into',
  ).action(async (flags: Where) => {
    const w = where(flags);
    const p = resolvePkiPaths(w.dataDir, w.caDir);
    if (
      !(await stat(p.caKey).then(
        () => true,
        () => false,
      ))
    ) {
      throw new Error(
        `the CA key is offline (${p.caKey} absent): run this where the CA key is kept`,
      );
    }
    await refreshCrl(w.dataDir, { force: true, ...w });
    out([
      `CRL signed: ${p.crl}`,
      ...(p.relayCrl && p.relayCrl !== p.crl ? [`installed: ${p.relayCrl}`] : []),
    ]);
  });

  withWhere(
    pki.command('list').description('list issued device certificates'),
    'relay data directory (the CA is in DIR-ca unless --ca-dir)',
  )
    .option('--json', 'one JSON array for scripts')
    .action(async (flags: Where & { json?: boolean }) => {
      const w = where(flags);
      const rows = await listCertificates(w.dataDir, w);
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
