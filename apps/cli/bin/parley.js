#!/usr/bin/env node
// Thin launcher: the CLI is compiled by `npm install` (the root `prepare` script runs tsc -b).

// ink (the chat UI) reads CI/CONTINUOUS_INTEGRATION when it is loaded and, if set, draws
// nothing until the program exits. On a terminal a person is watching, whatever those
// variables say, so drop them before the CLI (and ink) load; piped output is unaffected.
if (process.stdout.isTTY) {
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
}

const { main } = await import('../dist/main.js');
process.exitCode = await main(process.argv);
