/**
 * `parley audit verify`: checks the relay's encrypted, hash-chained audit log and,
 * given checkpoints kept elsewhere (the relay's structured log, or values noted by
 * hand), that its newest records were not cut off. Failures throw, and `main()` prints
 * them as `parley: ...` with exit status 1.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createNodeCrypto } from '@parley/crypto/node';
import {
  describeAuditFailure,
  loadAuditKey,
  parseAuditCheckpoint,
  readAuditCheckpoints,
  readConfigFile,
  resolveConfig,
  verifyAuditLog,
  type AuditCheckpoint,
} from '@parley/server';

interface VerifyFlags {
  readonly data: string;
  readonly config?: string;
  readonly log: string[];
  readonly checkpoint: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function readText(what: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${what} ${file}: cannot read (${(err as { code?: string }).code ?? 'error'})`);
  }
}

/** Registers the `audit` command group. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description("the relay's tamper-evident audit log");

  audit
    .command('verify')
    .description(
      'verify DIR/audit.log (chain, encryption) and that it still reaches the given checkpoints',
    )
    .requiredOption('--data <DIR>', 'relay data directory (audit.log, audit.key)')
    .option('--config <FILE>', 'relay configuration file (for a relocated auditFile)')
    .option(
      '--log <FILE>',
      "relay log (JSON lines) to take 'audit checkpoint' records from (repeatable)",
      collect,
      [],
    )
    .option('--checkpoint <SEQ:HASH>', 'a checkpoint noted elsewhere (repeatable)', collect, [])
    .action((flags: VerifyFlags) => {
      const dataDir = resolve(flags.data);
      const config = resolveConfig(flags.config ? readConfigFile(flags.config) : {});
      const file =
        config.auditFile === undefined
          ? join(dataDir, 'audit.log')
          : isAbsolute(config.auditFile)
            ? config.auditFile
            : join(dataDir, config.auditFile);
      const checkpoints: AuditCheckpoint[] = [
        ...flags.log.flatMap((f) => readAuditCheckpoints(readText('log', f))),
        ...flags.checkpoint.map(parseAuditCheckpoint),
      ];
      const v = verifyAuditLog(
        readText('audit log', file),
        loadAuditKey(join(dataDir, 'audit.key')),
        createNodeCrypto(),
        { checkpoints },
      );
      if (!v.ok) throw new Error(`${file}: ${describeAuditFailure(v)}`);
      const newest = checkpoints.reduce((m, c) => Math.max(m, c.seq), 0);
      const lines = [
        `audit log OK: ${file}, ${v.records.length} records`,
        v.head ? `head (keep as a checkpoint): ${v.head.seq}:${v.head.hash}` : 'the log is empty',
        checkpoints.length > 0
          ? `reaches all ${checkpoints.length} checkpoints (newest: record ${newest}); records after it are not covered`
          : 'no checkpoints given: removal of the newest records would go unnoticed',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
