/**
 * The relay under test for `bench:fanout`, in its own process (the load generator must
 * not share its event loop): `startRelay` in open mode with a fresh data folder.
 * argv: DATA_DIR CONFIG_JSON. Sends `{ url, caPem }` over IPC once listening, exits on
 * any message.
 */
import { startRelay, tuneRelayProcess, type RelayConfigFile } from '@parley/server';

const dataDir = process.argv[2] ?? '';
const config = JSON.parse(process.argv[3] ?? '{}') as RelayConfigFile;

tuneRelayProcess();
const relay = await startRelay({ dataDir, port: 0, auth: 'open', config, logLevel: 'silent' });
process.on('message', () => {
  void relay.close().finally(() => process.exit(0));
});
process.send?.({ url: relay.url, caPem: relay.caPem });
