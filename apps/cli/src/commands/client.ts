/**
 * The client commands of `parley` (issue 5's command-line contract):
 *   init, send, read [--follow] [--json] [--history], contacts, verify [--mark-verified], chat.
 * Every command opens the encrypted profile with the passphrase (PARLEY_PASSPHRASE or
 * asked without echo); a wrong passphrase fails before anything is touched. Failures
 * throw and `main()` prints `parley: ...` with exit status 1.
 */
import { existsSync, rmSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import QRCode from 'qrcode';
import { ClientError, checkUserName, describeTrust, type StoredMessage } from '@parley/client';
import {
  PROFILE_DB_FILE,
  PROFILE_HEADER_FILE,
  initProfile,
  installCertificate,
  openNodeClient,
  profileExists,
  readPemFile,
} from '@parley/client-node';
import type { NodeClient } from '@parley/client-node';
import { askNewPassphrase, askPassphrase } from '../tui/passphrase.js';
import { formatSafetyNumber } from '../tui/format.js';
import { onStdoutClosed, out, stdoutIsTerminal, warn } from '../output.js';
import {
  HISTORY_DEFAULT_LIMIT,
  historyLine,
  messageLine,
  parseLimit,
  sendStatusLine,
} from './message-lines.js';
import { saveAttachments, sendFile, type SaveFailure } from './attachments.js';
import { settle } from './group.js';

/** How long `send` waits for the relay's `queued` receipt. */
const SEND_QUEUED_TIMEOUT_MS = 30_000;
/** How long `read` waits for the mailbox backlog before printing what it has. */
const READ_DRAIN_TIMEOUT_MS = 20_000;

async function open(profile: string, reconnect = false): Promise<NodeClient> {
  const passphrase = await askPassphrase();
  const c = await openNodeClient({ profile: resolve(profile), passphrase, reconnect });
  const expiry = c.revocation?.expiryWarning();
  if (expiry !== undefined) warn(expiry);
  return c;
}

/** Refused credentials and a verified revocation both fail a command (never "offline"). */
const refusedOrRevoked = (err: unknown): boolean =>
  err instanceof ClientError && (err.code === 'AUTH_REJECTED' || err.code === 'CERT_REVOKED');

function waitDrained(c: NodeClient, timeoutMs: number): Promise<void> {
  if (c.client.mailboxDrained) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => {
      off();
      res();
    }, timeoutMs);
    const off = c.client.on((e) => {
      if (e.type === 'mailbox-drained') {
        clearTimeout(t);
        off();
        res();
      }
    });
  });
}

/** `read --save-dir`: where files go, and the files of this run that could not be saved. */
interface SaveTarget {
  readonly dir: string;
  readonly failures: Map<string, SaveFailure>;
}

/**
 * Prints unshown incoming messages in order and marks them shown, in one pass per peer.
 * A file message whose file could not be saved is printed as failed and stays unshown
 * (the next `read --save-dir` fetches it again); the messages around it are marked.
 */
async function printNew(
  c: NodeClient,
  json: boolean,
  peer?: string,
  printed = new Set<string>(),
  save?: SaveTarget,
): Promise<void> {
  const fresh = (await c.client.messages(peer, { unshownOnly: true })).filter(
    (m) => !printed.has(`${m.peer}:${m.id}`),
  );
  const failures = new Map<string, SaveFailure>();
  const saved = save ? await saveAttachments(c, fresh, save.dir, failures) : new Map();
  const groups = await groupNames(c);
  for (const [k, f] of failures) save?.failures.set(k, f);
  for (const m of fresh) {
    const key = `${m.peer}:${m.id}`;
    printed.add(key);
    out(messageLine(m, json, saved.get(key), failures.get(key), groups.get(m.peer)));
  }
  const byPeer = new Map<string, StoredMessage[]>();
  for (const m of fresh) byPeer.set(m.peer, [...(byPeer.get(m.peer) ?? []), m]);
  for (const [p, list] of byPeer) {
    const firstFailed = list.findIndex((m) => failures.has(`${m.peer}:${m.id}`));
    if (firstFailed < 0) {
      await c.client.markShown(p, Math.max(...list.map((m) => m.seq ?? 0)));
      continue;
    }
    // Up to the first failed file by the watermark, the later ones one by one.
    const before = list.slice(0, firstFailed);
    if (before.length > 0) await c.client.markShown(p, Math.max(...before.map((m) => m.seq ?? 0)));
    const after = list.slice(firstFailed).filter((m) => !failures.has(`${m.peer}:${m.id}`));
    await c.client.markMessagesShown(
      p,
      after.map((m) => m.id),
    );
  }
}

/** Group conversation id → the group's name, for the lines that show group messages. */
async function groupNames(c: NodeClient): Promise<Map<string, string>> {
  return new Map((await c.client.groupList()).map((g) => [g.conversation, g.name]));
}

async function sendToGroup(profile: string, group: string, text: string): Promise<void> {
  const c = await open(profile);
  try {
    await c.connect();
    const m = await c.client.sendToGroup(group, text);
    await c.client.waitForStatus(m.peer, m.id, 'queued', SEND_QUEUED_TIMEOUT_MS);
    out(m.id);
    // The sender keys this message needs go out too before we exit.
    await settle(c);
    process.stderr.write(`${sendStatusLine('queued')}\n`);
  } finally {
    await c.close();
  }
}

export function registerClient(program: Command): void {
  program
    .command('init')
    .description(
      'create an encrypted client profile (mtls: --cert --key --ca; open: --name [--ca])',
    )
    .requiredOption('--profile <DIR>', 'profile directory')
    .requiredOption('--server <URL>', 'relay URL, wss://HOST:PORT')
    .option('--cert <FILE>', 'device certificate from `parley pki issue` (mtls)')
    .option('--key <FILE>', 'device private key (mtls)')
    .option('--ca <FILE>', 'organisation CA certificate')
    .option('--name <NAME>', 'user name to register (open mode)')
    .action(
      async (o: {
        profile: string;
        server: string;
        cert?: string;
        key?: string;
        ca?: string;
        name?: string;
      }) => {
        const profile = resolve(o.profile);
        let created;
        let passphrase = '';
        if (o.cert !== undefined && o.key === undefined && profileExists(profile)) {
          // Finishing `parley keygen`: the key is already in the profile.
          passphrase = await askPassphrase();
          const r = await installCertificate({
            profile,
            passphrase,
            certPem: readPemFile(o.cert, '--cert'),
            ...(o.ca !== undefined ? { caPem: readPemFile(o.ca, '--ca') } : {}),
          });
          created = { name: r.name, mode: 'mtls' as const };
        } else if (o.cert !== undefined || o.key !== undefined) {
          if (o.cert === undefined || o.key === undefined || o.ca === undefined) {
            throw new ClientError(
              'INVALID_ARGUMENT',
              'mtls init needs --cert, --key and --ca together',
            );
          }
          const certPem = readPemFile(o.cert, '--cert');
          const keyPem = readPemFile(o.key, '--key');
          const caPem = readPemFile(o.ca, '--ca');
          passphrase = await askNewPassphrase();
          created = await initProfile({
            profile,
            passphrase,
            server: o.server,
            mode: 'mtls',
            certPem,
            keyPem,
            caPem,
          });
        } else {
          if (o.name === undefined)
            throw new ClientError(
              'INVALID_ARGUMENT',
              'give --name (open) or --cert/--key/--ca (mtls)',
            );
          const caPem = o.ca !== undefined ? readPemFile(o.ca, '--ca') : undefined;
          passphrase = await askNewPassphrase();
          created = await initProfile({
            profile,
            passphrase,
            server: o.server,
            mode: 'open',
            name: o.name,
            ...(caPem !== undefined ? { caPem } : {}),
          });
        }
        // Register (open) and publish prekeys now, so others can write before our first
        // chat. Success is reported only once the relay answered: a profile that never
        // reached it is not "ready".
        const c = await openNodeClient({ profile, passphrase, reconnect: false });
        try {
          await c.connect();
          await c.client.requestPresence(); // a round trip: the relay has processed the upload
          out(`profile created for ${created.name} (${created.mode}) in ${profile}`);
          out(`registered with ${c.account.info.server}`);
        } catch (err) {
          await c.close();
          if (err instanceof ClientError && err.code === 'AUTH_REJECTED') {
            if (created.mode === 'open') {
              // The fresh key was never used: remove the files init made (never anything
              // else the directory may hold) so the name can be retried.
              for (const f of [
                PROFILE_HEADER_FILE,
                PROFILE_DB_FILE,
                `${PROFILE_DB_FILE}-wal`,
                `${PROFILE_DB_FILE}-shm`,
              ]) {
                rmSync(join(profile, f), { force: true });
              }
              try {
                rmdirSync(profile);
              } catch {
                // not empty: it held other files before init, leave it
              }
              throw new ClientError(
                'AUTH_REJECTED',
                `the relay refused to register ${created.name} (the name may be taken); no profile was kept`,
              );
            }
            throw new ClientError(
              'AUTH_REJECTED',
              `the relay refused the certificate of ${created.name} (revoked or expired?)`,
            );
          }
          throw new ClientError(
            err instanceof ClientError ? err.code : 'TRANSPORT',
            `not registered: ${(err as Error).message}. The profile for ${created.name} is saved in ${profile} ` +
              `but is not usable until it reaches the relay at ${c.account.info.server}: check that the relay runs ` +
              `and that the address and CA are right, then fix them with ` +
              `\`parley profile set --profile ${profile} --server wss://HOST:PORT [--ca FILE]\``,
            { cause: err },
          );
        }
        await c.close();
      },
    );

  program
    .command('send')
    .description(
      'send a message (to NAME, or with --group GROUP to a group); exits 0 once the relay has queued it, printing its id',
    )
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('[NAME]', 'recipient (omitted with --group)')
    .argument('[TEXT]', 'message text')
    .option('--file <PATH>', 'send this file as an encrypted attachment instead of text')
    .option('--group <GROUP>', 'send TEXT to this group (one upload for every member)')
    .action(
      async (
        first: string | undefined,
        second: string | undefined,
        o: { profile: string; file?: string; group?: string },
      ) => {
        if (o.group !== undefined) {
          if (first === undefined || second !== undefined || o.file !== undefined)
            throw new ClientError('INVALID_ARGUMENT', 'with --group give exactly one TEXT');
          return sendToGroup(o.profile, o.group, first);
        }
        if (first === undefined)
          throw new ClientError('INVALID_ARGUMENT', 'give the recipient NAME');
        const name = first;
        const text = second;
        if ((text === undefined) === (o.file === undefined))
          throw new ClientError('INVALID_ARGUMENT', 'give either TEXT or --file PATH');
        // An upload outlives a relay restart: keep reconnecting and resume it.
        const c = await open(o.profile, o.file !== undefined);
        try {
          await c.connect();
          const m =
            o.file !== undefined
              ? await sendFile(c, name, o.file)
              : await c.client.send(name, text as string);
          const contact = await c.store.getContact(name);
          if (contact?.trust === 'key-changed') {
            warn(
              `${name}: ${describeTrust('key-changed', c.account.info.mode)} (parley verify --profile DIR ${name})`,
            );
          }
          await c.client.waitForStatus(name, m.id, 'queued', SEND_QUEUED_TIMEOUT_MS);
          out(m.id);
          const now = await c.store.getMessage(name, 'out', m.id);
          process.stderr.write(`${sendStatusLine(now?.status ?? 'queued')}\n`);
        } finally {
          await c.close();
        }
      },
    );

  program
    .command('read')
    .description(
      'print new messages (--follow: keep waiting; --history: stored conversation; --json: one object per line)',
    )
    .requiredOption('--profile <DIR>', 'profile directory')
    .option('--follow', 'keep running and print messages as they arrive')
    .option('--json', 'one JSON object per line')
    .option(
      '--history',
      'print the stored history (both directions, with status), not only new messages',
    )
    .option('--peer <NAME>', 'only this conversation')
    .option('--save-dir <DIR>', 'fetch attachments of new messages and save them here')
    .option(
      '--limit <N>',
      `with --history: the newest N messages (default ${HISTORY_DEFAULT_LIMIT})`,
    )
    .action(
      async (o: {
        profile: string;
        follow?: boolean;
        json?: boolean;
        history?: boolean;
        peer?: string;
        limit?: string;
        saveDir?: string;
      }) => {
        const json = o.json === true;
        const save =
          o.saveDir !== undefined
            ? { dir: resolve(o.saveDir), failures: new Map<string, SaveFailure>() }
            : undefined;
        if (save && !existsSync(save.dir))
          throw new ClientError('INVALID_ARGUMENT', `--save-dir: no folder ${o.saveDir}`);
        const peer = o.peer !== undefined ? checkUserName(o.peer, '--peer') : undefined;
        if (o.history) {
          if (o.follow)
            throw new ClientError('INVALID_ARGUMENT', '--history and --follow cannot be combined');
          const limit = parseLimit(o.limit);
          // The local store only: history is what this device holds, no relay needed.
          const c = await open(o.profile);
          try {
            const page = await c.client.messages(peer, { limit });
            const groups = await groupNames(c);
            for (const m of page) {
              const failure =
                m.direction === 'out' && m.status === 'failed'
                  ? (await c.client.sendFailure(m.peer, m.id))?.reason
                  : undefined;
              out(historyLine(m, c.account.name, json, failure, groups.get(m.peer)));
            }
          } finally {
            await c.close();
          }
          return;
        }
        if (o.limit !== undefined)
          throw new ClientError('INVALID_ARGUMENT', '--limit applies to --history');
        const c = await open(o.profile, o.follow === true);
        // --follow: every print is a store query in one chain, started by each new message
        // from the moment we connect, so a message arriving while the backlog is printed
        // is neither lost nor printed twice nor out of order.
        const printed = new Set<string>();
        let printing = Promise.resolve();
        const printLater = (): void => {
          printing = printing
            .then(() => printNew(c, json, peer, printed, save))
            .catch((err: unknown) => warn(`cannot show messages: ${(err as Error).message}`));
        };
        let stop: (() => void) | undefined;
        const stopped = new Promise<void>((res, rej) => {
          stop = res;
          // Our certificate was revoked: say so and stop, instead of "reconnecting" forever.
          if (o.follow) c.revocation?.onOwnRevoked(rej);
        });
        // Handled where it is awaited; this only keeps an early revocation from counting
        // as an unhandled rejection.
        stopped.catch(() => undefined);
        const onSignal = (): void => stop?.();
        if (o.follow) {
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          onStdoutClosed(onSignal);
          c.client.on((e) => {
            if (
              e.type === 'message' &&
              e.message.direction === 'in' &&
              (peer === undefined || e.message.peer === peer)
            )
              printLater();
            if (e.type === 'key-changed')
              warn(`${e.contact.name}: ${describeTrust('key-changed', c.account.info.mode)}`);
          });
        }
        try {
          let refused: unknown;
          try {
            await c.connect();
            await waitDrained(c, READ_DRAIN_TIMEOUT_MS);
          } catch (err) {
            if (o.follow) throw err;
            // Stored messages are still shown; refused credentials still fail the command.
            if (refusedOrRevoked(err)) refused = err;
            else warn(`offline (${(err as Error).message}); showing stored messages`);
          }
          printLater();
          await printing;
          // The group receipts and sender-key acks this read caused reach the relay before
          // we exit (a profile without groups has nothing of the kind to wait for).
          if (
            refused === undefined &&
            !o.follow &&
            c.client.isReady &&
            (await c.client.groupList()).length > 0
          )
            await settle(c);
          if (refused !== undefined) throw refused;
          if (save && save.failures.size > 0) {
            const all = [...save.failures.values()];
            const transient = all.every((f) => f.retryable);
            throw new ClientError(
              transient ? 'TRANSPORT' : 'INTEGRITY',
              `${all.length} attachment(s) not saved; their messages stay unread (run read --save-dir again${transient ? ' when the relay is reachable' : ''})`,
            );
          }
          if (!o.follow) return;
          // Until interrupted, or until our reader goes away (`read --follow | head -3`).
          await stopped;
          await printing;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          await c.close();
        }
      },
    );

  program
    .command('contacts')
    .description('list contacts with their trust state')
    .requiredOption('--profile <DIR>', 'profile directory')
    .action(async (o: { profile: string }) => {
      const c = await open(o.profile);
      try {
        const contacts = await c.client.contacts();
        if (contacts.length === 0) out('no contacts yet');
        for (const k of contacts) {
          const revoked = c.revocation?.peerRevoked(k.name);
          out(
            revoked
              ? `${k.name.padEnd(24)} ${'revoked'.padEnd(12)} certificate revoked by your organisation CA (serial ${revoked.serial})`
              : `${k.name.padEnd(24)} ${k.trust.padEnd(12)} ${describeTrust(k.trust, c.account.info.mode)}`,
          );
        }
      } finally {
        await c.close();
      }
    });

  program
    .command('verify')
    .description('show the safety number (digits and QR code) to compare with NAME')
    .requiredOption('--profile <DIR>', 'profile directory')
    .argument('<NAME>', 'contact')
    .option('--mark-verified', 'record that you compared the numbers and they match')
    .action(async (name: string, o: { profile: string; markVerified?: boolean }) => {
      const c = await open(o.profile);
      try {
        if (!(await c.store.getContact(name))) {
          await c.connect();
          await c.client.fetchContact(name);
        }
        const { contact, number } = await c.client.safetyNumber(name);
        out(`Safety number with ${name} (${describeTrust(contact.trust, c.account.info.mode)}):`);
        out('');
        out(formatSafetyNumber(number.digits));
        out('');
        // Terminal colours only on a terminal; a pipe or file gets plain block characters.
        out(
          stdoutIsTerminal()
            ? await QRCode.toString(number.qrPayload, { type: 'terminal', small: true })
            : await QRCode.toString(number.qrPayload, { type: 'utf8', margin: 2 }),
        );
        if (o.markVerified) {
          await c.client.markVerified(name);
          out(`${name} marked as verified.`);
        } else {
          out(
            'Compare these digits with your contact (in person or by a trusted call); if they match, run again with --mark-verified.',
          );
        }
      } finally {
        await c.close();
      }
    });

  program
    .command('chat')
    .description('the interactive terminal chat')
    .requiredOption('--profile <DIR>', 'profile directory')
    .action(async (o: { profile: string }) => {
      if (!process.stdin.isTTY || !process.stdout.isTTY) {
        throw new ClientError(
          'INVALID_ARGUMENT',
          'chat needs a terminal (stdin and stdout); scripts use send and read',
        );
      }
      const c = await open(o.profile, true);
      const { runChat } = await import('../tui/chat.js');
      try {
        await runChat(c);
      } finally {
        await c.close();
      }
    });
}
