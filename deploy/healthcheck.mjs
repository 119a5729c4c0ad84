// Container/service health probe: exit 0 when the relay's admin listener (127.0.0.1 only)
// answers GET /healthz with 200, 1 otherwise. The port is read from the relay's own
// configuration file beside this script, so the probe and the relay cannot disagree.
import { readFileSync } from 'node:fs';

const configFile = process.argv[2] ?? new URL('./relay.json', import.meta.url);
let port;
try {
  port = JSON.parse(readFileSync(configFile, 'utf8')).adminPort;
} catch (err) {
  console.error(`healthcheck: cannot read ${configFile}: ${err.message}`);
  process.exit(1);
}
if (!Number.isInteger(port) || port <= 0) {
  console.error(`healthcheck: ${configFile} has no adminPort`);
  process.exit(1);
}
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
    signal: AbortSignal.timeout(4000),
  });
  if (res.status !== 200) {
    console.error(`healthcheck: /healthz answered ${res.status}`);
    process.exit(1);
  }
} catch (err) {
  console.error(
    `healthcheck: /healthz on 127.0.0.1:${port} unreachable: ${err.cause?.code ?? err.message}`,
  );
  process.exit(1);
}
