/**
 * liboqs's ML-KEM-768 compiled to WebAssembly (`@oqs/liboqs-js`), about ten times
 * faster than the pure-JavaScript implementation. The binary is embedded in the
 * package's JavaScript (no file to fetch), and the same code runs in browsers, where it
 * draws from `crypto.getRandomValues`, and in Node, where it draws from
 * `crypto.randomFillSync`.
 *
 * Instantiating WebAssembly is asynchronous, so this module awaits it at the top level:
 * whoever imports `@parley/crypto` gets a provider whose ML-KEM is ready, and the
 * provider interface stays synchronous. Where WebAssembly cannot run (a page whose
 * Content-Security-Policy forbids it, a runtime without it), loading fails, this module
 * exports `undefined`, and the providers use @noble's ML-KEM instead: same results,
 * slower.
 *
 * liboqs-js exposes neither derandomised key generation nor encapsulation with a given
 * message, so anything seeded (`keyPairFromSeed`, providers built with a `random`
 * option) stays on @noble.
 * @internal
 */
import { createMLKEM768, type MLKEM768 } from '@oqs/liboqs-js/kem';

async function load(): Promise<MLKEM768 | undefined> {
  try {
    return await createMLKEM768();
  } catch {
    return undefined;
  }
}

/** The loaded WebAssembly ML-KEM-768, or undefined where WebAssembly is unavailable. */
export const liboqsMlKem768: MLKEM768 | undefined = await load();
