/**
 * The two small interfaces between a connection and the relay core, so that neither
 * imports the other:
 * - `ConnectionHost`: everything one connection may ask of the core (its dependencies,
 *   the mailbox router, the key directory, the token registry, the identity quota);
 * - `RouterPeer`: everything the core's mailbox router may ask of one connection
 *   (send it a frame, hand it mail live, tell it mail is waiting).
 *
 * Also the interfaces the core is given instead of concrete classes: the audit sink, the
 * metrics it updates and the session-token registry.
 */
import type { CryptoProvider } from '@parley/crypto';
import type { ClientFrame, ServerFrame } from '@parley/wire';
import type { AuditEvent } from './audit.js';
import type { BlobStore } from './blobs/types.js';
import type { IdentityQuota } from './bus/types.js';
import type { RelayConfig } from './config.js';
import type { Logger, RelayMetrics } from './observability.js';
import type { IssuedToken, RedeemResult, TokenAddress } from './session-tokens.js';
import type { Address, MailItem, Receipt, RelayStore } from './storage/types.js';

/** Where audit records go (the relay's `AuditLog`; tests may collect them). */
export interface AuditSink {
  write(event: AuditEvent): void;
}

/** The meters the core updates (the relay's `RelayMetrics` provides them). */
export type CoreMetrics = Pick<
  RelayMetrics,
  | 'connections'
  | 'authenticated'
  | 'unauthenticated'
  | 'blocksIn'
  | 'blocksOut'
  | 'messages'
  | 'rejections'
  | 'auditRecords'
  | 'enqueueSeconds'
  | 'groupUploads'
  | 'groupCopies'
  | 'groupRecipients'
>;

/** Open-mode session tokens (`SessionTokenRegistry`; per node, see docs/operations.md). */
export interface TokenRegistry {
  issue(
    address: TokenAddress,
    expiresAt: number,
    replacing?: IssuedToken,
  ): { readonly token: Uint8Array; readonly handle: IssuedToken };
  redeem(address: TokenAddress, token: Uint8Array): RedeemResult;
}

/** What the core and its parts are built from; clock and randomness are parameters. */
export interface HostDeps {
  readonly config: RelayConfig;
  readonly store: RelayStore;
  readonly metrics: CoreMetrics;
  readonly logger: Logger;
  readonly crypto: CryptoProvider;
  readonly now: () => number;
}

/** One connection as the mailbox router sees it. */
export interface RouterPeer {
  /** The authenticated device; undefined before authentication. */
  readonly identity: Address | undefined;
  readonly remote: string;
  readonly isOpen: boolean;
  /** DER of the mtls client certificate, if any. */
  readonly peerCertificate: Uint8Array | undefined;
  sendFrame(frame: ServerFrame): void;
  /** Whether a new item would be delivered live now (caught up, room to send). */
  canTakeLive(): boolean;
  /** Delivers one new item now if `canTakeLive`; returns whether it did. */
  pushLive(item: MailItem): boolean;
  /** Mail for this device was stored: read it from the mailbox, in order. */
  notifyMail(): void;
  /** Sends a kept receipt as `receipt.stored` (settled when this device acks it). */
  sendStoredReceipt(receipt: Receipt): void;
  close(code: number): void;
}

/** A relayed frame: mail for one device, or a group upload (mail for several). */
export type RelayedFrame = Extract<
  ClientFrame,
  { type: 'send' | 'session.terminate' | 'group.send' }
>;

/** Mail for a device, as the connections use it (implemented by `MailboxRouter`). */
export interface MailRouting {
  /**
   * `peer` authenticated as `address`. False (or a promise of false) when the identity is
   * at its connection cap (cluster-wide); the connection is then refused.
   */
  register(peer: RouterPeer, address: Address): boolean | Promise<boolean>;
  /** The connection ended (registered or not). */
  forget(peer: RouterPeer): void;
  /**
   * Accepts a relayed frame from `sender` (already checked: identity binding, limits);
   * resolves once it is submitted for commit. Receipts and errors go to `from`.
   */
  submit(from: RouterPeer, sender: Address, frame: RelayedFrame): Promise<void>;
  /** `device` acked `serverMessageId`: settle it and tell the sender. */
  ack(device: Address, serverMessageId: number): Promise<void>;
  /** `device`'s one-time prekeys ran low: tell its connections, here and on other nodes. */
  prekeysLow(device: Address, remainingOneTime: number, remainingOneTimePq: number): void;
  /** Names online (on any node), sorted. */
  onlineNames(): string[];
}

/**
 * One frame handler of an authenticated connection (see `frame-handlers.ts`). `send`
 * writes to this connection only.
 */
export interface FrameContext {
  readonly identity: Address;
  readonly remote: string;
  readonly host: ConnectionHost;
  send(frame: ServerFrame): void;
}

/** Everything one connection may use. */
export interface ConnectionHost {
  readonly deps: HostDeps;
  readonly router: MailRouting;
  readonly keys: KeyDirectoryApi;
  readonly tokens: TokenRegistry;
  readonly quota: IdentityQuota;
  /** Attachment blobs (`blob-frames.ts`). */
  readonly blobs: BlobStore;
  /** The CRL (DER) served in `crl` frames; undefined in open mode. */
  readonly crl: Uint8Array | undefined;
  /** Writes an audit record and counts it. Never throws. */
  audit(event: AuditEvent): void;
  /** The connection is gone. */
  closed(peer: RouterPeer): void;
}

/** The key directory as a connection uses it (implemented by `KeyDirectory`). */
export interface KeyDirectoryApi {
  upload(
    device: Address,
    remote: string,
    frame: Extract<ClientFrame, { type: 'prekeys.upload' }>,
  ): Promise<ServerFrame>;
  lookup(
    frame: Extract<ClientFrame, { type: 'keys.lookup' }>,
    reply: (frame: ServerFrame) => void,
  ): Promise<void>;
  identity(frame: Extract<ClientFrame, { type: 'identity.lookup' }>): Promise<ServerFrame>;
  /** `prekeys.low` for a device that just logged in, if its stock is low. */
  lowOnLogin(device: Address): Promise<ServerFrame | undefined>;
}
