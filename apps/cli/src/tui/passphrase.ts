/**
 * Asking for the profile passphrase: from `PARLEY_PASSPHRASE` (scripts, tests), else
 * from the terminal with echo off. Reading a non-terminal stdin line is allowed so that
 * `printf 'pw\n' | parley read` works; nothing is ever echoed or logged.
 */
import { ClientError } from '@parley/client';

/** Environment variable scripts use instead of typing. */
export const PASSPHRASE_ENV = 'PARLEY_PASSPHRASE';
/** A passphrase longer than this is almost certainly a pasted file by mistake. */
const MAX_PASSPHRASE_CHARS = 1024;

function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let value = '';
    const isTty = stdin.isTTY === true;
    // Echo goes off before the prompt shows: whoever types on seeing it (a person, or a
    // test driving the terminal) must never have the first keys echoed.
    if (isTty) stdin.setRawMode(true);
    process.stderr.write(prompt);
    const finish = (err?: Error): void => {
      stdin.removeListener('data', onData);
      if (isTty) stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new ClientError('INVALID_ARGUMENT', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
        if (value.length > MAX_PASSPHRASE_CHARS) {
          return finish(new ClientError('INVALID_ARGUMENT', 'passphrase: too long'));
        }
      }
    };
    stdin.resume();
    stdin.on('data', onData);
    stdin.once('end', () => finish());
  });
}

/** A secret from `env` if set, else asked once without echo. */
export async function askSecret(env: string, prompt: string): Promise<string> {
  const v = process.env[env];
  if (v !== undefined) return v;
  return readHidden(prompt);
}

/** A new secret from `env` if set, else typed twice without echo when interactive. */
export async function askNewSecret(env: string, what: string): Promise<string> {
  const v = process.env[env];
  if (v !== undefined) {
    if (v.length === 0) throw new ClientError('INVALID_ARGUMENT', `${env} is empty`);
    return v;
  }
  const first = await readHidden(`New ${what}: `);
  if (first.length === 0) throw new ClientError('INVALID_ARGUMENT', `${what}: must not be empty`);
  if (process.stdin.isTTY) {
    const again = await readHidden(`Repeat ${what}: `);
    if (again !== first) throw new ClientError('INVALID_ARGUMENT', `${what}s differ`);
  }
  return first;
}

/** The passphrase of an existing profile. */
export async function askPassphrase(): Promise<string> {
  const env = process.env[PASSPHRASE_ENV];
  if (env !== undefined) return env;
  return readHidden('Passphrase: ');
}

/** A new passphrase, typed twice when interactive. */
export async function askNewPassphrase(): Promise<string> {
  const env = process.env[PASSPHRASE_ENV];
  if (env !== undefined) {
    if (env.length === 0) throw new ClientError('INVALID_ARGUMENT', `${PASSPHRASE_ENV} is empty`);
    return env;
  }
  const first = await readHidden('New passphrase: ');
  if (first.length === 0)
    throw new ClientError('INVALID_ARGUMENT', 'passphrase: must not be empty');
  if (process.stdin.isTTY) {
    const again = await readHidden('Repeat passphrase: ');
    if (again !== first) throw new ClientError('INVALID_ARGUMENT', 'passphrases differ');
  }
  return first;
}
