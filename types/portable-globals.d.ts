/**
 * The few host globals that portable packages (crypto, wire, protocol, client) may
 * use. They exist in every JS runtime we target (Node >= 20, browsers), so declaring
 * them here lets those packages compile without Node or DOM types: an accidental
 * `Buffer`, `process` or `document` is then a type error, not a browser crash.
 */
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array): string;
}
declare const crypto: {
  getRandomValues<T extends ArrayBufferView | null>(array: T): T;
};
declare function setTimeout(handler: () => void, timeoutMs?: number): unknown;
declare function clearTimeout(id: unknown): void;
