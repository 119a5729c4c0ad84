/**
 * The one place where frame types handled by modules of their own are registered
 * (blob uploads, for instance). A connection looks a frame up here after
 * authentication and before its own handlers: an entry for a type takes it over.
 *
 * A handler gets the frame and a `FrameContext` (this connection's identity, a `send`
 * to this connection only, and the `ConnectionHost`); frames of one connection are
 * handled one at a time, in arrival order, so a handler may await. Errors it throws are
 * logged and answered with the generic `server_error`.
 */
import type { ClientFrame } from '@parley/wire';
import type { FrameContext } from './host.js';

export type FrameHandler<T extends ClientFrame['type']> = (
  frame: Extract<ClientFrame, { type: T }>,
  ctx: FrameContext,
) => void | Promise<void>;

export type FrameHandlerTable = { readonly [T in ClientFrame['type']]?: FrameHandler<T> };

/** Add an entry per frame type, importing its module's handler. */
export const FRAME_HANDLERS: FrameHandlerTable = {};
