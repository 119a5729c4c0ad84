/**
 * Every command's stdout and stderr. A reader that goes away early (`parley verify |
 * head -1`) closes the pipe; Node reports that as an EPIPE 'error' event on the stream,
 * which, unhandled, kills the command with a stack trace, possibly in the middle of a
 * store commit. Here a closed stdout only stops further output: the command finishes
 * its work, closes the profile and exits as it would have, like a Unix filter.
 */

let stdoutClosed = false;
let guarded = false;
const closeListeners = new Set<() => void>();

/** Installs the EPIPE handling once per process (main() calls it). */
export function installPipeGuard(): void {
  if (guarded) return;
  guarded = true;
  const onError =
    (stream: NodeJS.WriteStream) =>
    (err: NodeJS.ErrnoException): void => {
      // Anything else is a real fault: keep Node's default (crash loudly).
      if (err.code !== 'EPIPE') throw err;
      if (stream !== process.stdout || stdoutClosed) return;
      stdoutClosed = true;
      for (const l of closeListeners) l();
    };
  process.stdout.on('error', onError(process.stdout));
  process.stderr.on('error', onError(process.stderr));
}

/** Whether the reader of stdout has gone away. */
export function isStdoutClosed(): boolean {
  return stdoutClosed;
}

/** Calls `listener` once stdout's reader has gone away; returns an unsubscribe. */
export function onStdoutClosed(listener: () => void): () => void {
  if (stdoutClosed) {
    listener();
    return () => undefined;
  }
  closeListeners.add(listener);
  return () => closeListeners.delete(listener);
}

/** Whether stdout is a terminal (colour, QR in terminal colours) or a pipe/file (plain text). */
export function stdoutIsTerminal(): boolean {
  return process.stdout.isTTY === true;
}

/** One line of the command's result on stdout; dropped once the reader has gone. */
export function out(line: string): void {
  if (!stdoutClosed) process.stdout.write(`${line}\n`);
}

/** One diagnostic line on stderr, prefixed like every error. */
export function warn(line: string): void {
  process.stderr.write(`parley: ${line}\n`);
}
