/**
 * `@parley/server`: the zero-knowledge relay. It authenticates devices (mutual TLS or
 * signed challenge), binds every frame to the authenticated identity, enforces limits,
 * and routes and stores opaque ciphertext it cannot read.
 *
 * @example
 * ```ts
 * import { startRelay } from '@parley/server';
 * const relay = await startRelay({ dataDir: '/tmp/parley', port: 0 });
 * console.log(relay.url); // wss://127.0.0.1:PORT/ws
 * await relay.close();
 * ```
 */
export { startRelay, type StartRelayOptions, type RunningRelay } from './start.js';
