/**
 * Parley's relay under test, started through its public API (`startRelay`) in its own
 * process so its memory can be measured alone. argv: DATA_DIR CONFIG_FILE.
 */
import { startRelay, type RunningRelay } from '@parley/server';
import { send, type ServerCommand, type ServerReply } from './common.js';

const dataDir = process.argv[2] ?? '';
const configFile = process.argv[3] ?? '';
let relay: RunningRelay | undefined;

process.on('message', (m: ServerCommand) => {
  if (m.cmd === 'mem') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    send<ServerReply>({ type: 'mem', rss: u.rss, heapUsed: u.heapUsed, external: u.external });
  } else {
    const r = relay;
    void (r ? r.close() : Promise.resolve()).finally(() => process.exit(0));
  }
});

try {
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
