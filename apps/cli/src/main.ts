/**
 * The `parley` command. Each command group registers itself from its own module so
 * that server, PKI and client commands evolve independently.
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/index.js';
import { installPipeGuard } from './output.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('parley')
    .description('Parley: self-hostable end-to-end encrypted messaging')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

/** Runs the CLI and returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  installPipeGuard();
  try {
    await buildProgram().parseAsync(argv as string[]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(`parley: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
