/**
 * The small connection interface the relay core is written against (as Hono's core is
 * written against a request/response interface): the TLS/WebSocket transport is one
 * adapter; tests and simulators can supply another.
 */

/** What the transport knows about the peer before any application byte. */
export interface PeerInfo {
  /** Remote `ip:port`, for audit records. */
  readonly remote: string;
  /**
   * Mutual-TLS identity: the certificate CN and its Ed25519 key, already verified
   * against the CA and CRL by the transport. Absent in open mode.
   */
  readonly certificate?: {
    readonly name: string;
    readonly identityKey: Uint8Array;
    readonly der: Uint8Array;
    readonly serial: string;
    /** End of the certificate's validity (ms since the epoch): the connection ends then too. */
    readonly notAfter?: number;
  };
}

/** One client connection as the core sees it. */
export interface Connection {
  readonly peer: PeerInfo;
  /** Sends one block as one binary message. */
  send(block: Uint8Array): void;
  /** Bytes accepted by `send` but not yet written to the socket. */
  readonly bufferedAmount: number;
  /** Closes with a WebSocket close code; the reason is generic (M13). */
  close(code: number): void;
}
