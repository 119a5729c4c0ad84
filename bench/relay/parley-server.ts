/**
 * Parley's relay under test, started through its public API (`startRelay`) in its own
 * process so its memory can be measured alone. argv: DATA_DIR CONFIG_FILE.
 */
import { writeFileSync } from 'node:fs';
import { startRelay, tuneRelayProcess, type RunningRelay } from '@parley/server';
import { memReply, send, type ServerCommand, type ServerReply } from './common.js';

const dataDir = process.argv[2] ?? '';
const configFile = process.argv[3] ?? '';
let relay: RunningRelay | undefined;

process.on('message', (m: ServerCommand) => {
  if (m.cmd === 'mem') {
    send<ServerReply>(memReply(m.gc));
  } else {
    const r = relay;
    const dump = process.env['PARLEY_BENCH_METRICS_FILE'];
    // Optional: keep the relay's own /metrics for diagnosis (where does the time go?).
    const saved =
      r && dump
        ? fetch(`http://127.0.0.1:${r.adminPort}/metrics`)
            .then((res) => res.text())
            .then((text) => writeFileSync(dump, text))
            .catch(() => undefined)
        : Promise.resolve();
    void saved.then(() => (r ? r.close() : undefined)).finally(() => process.exit(0));
  }
});

try {
  // As `parley server` does: the relay is measured the way it is shipped.
  tuneRelayProcess();
  relay = await startRelay({
    dataDir,
    port: 0,
    adminPort: 0,
    auth: 'mtls',
    configFile,
    logLevel: 'silent',
  });
  send<ServerReply>({ type: 'ready', port: relay.port, url: relay.url });
} catch (e) {
  send<ServerReply>({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
  setTimeout(() => process.exit(1), 50);
}
