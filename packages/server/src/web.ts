/**
 * Serves the built web client (apps/web/dist) on the relay's HTTPS listener, beside
 * the WebSocket at `/ws`.
 *
 * The files are read once, at start: only what the directory held then can ever be
 * served, so no request path reaches the file system and directory traversal has
 * nothing to walk. Every answer carries a strict Content-Security-Policy (no inline
 * script, nothing from another origin), `nosniff`, no referrer, and no framing.
 * Owns static serving and its headers; knows nothing of sessions.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ServerError } from './errors.js';

/**
 * The page may run only its own scripts and connect only to its own origin.
 * `'wasm-unsafe-eval'` lets it compile WebAssembly (Argon2id in hash-wasm, liboqs'
 * ML-KEM) without allowing `eval` of JavaScript; `img-src data:` is for QR codes
 * drawn as data URLs.
 */
export const WEB_CSP =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; " +
  "style-src 'self'; img-src 'self' data:; font-src 'self'; manifest-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Headers on every web answer, 404s included. */
export const WEB_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': WEB_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const MIME: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.wasm', '.txt']);

/** The whole app is a few hundred KB; a directory far larger is a mistake, not an app. */
export const MAX_WEB_DIR_BYTES = 64 * 1024 * 1024;

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip?: Buffer;
  /** Vite names files under assets/ by content hash: they never change under a name. */
  readonly immutable: boolean;
}

export type WebHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * What the page learns about the relay that serves it, at `RELAY_INFO_PATH`: how devices
 * sign in, and for mtls the organisation CA (public) that device certificates must come
 * from. The page's code comes from this relay too, so this adds no trust.
 */
export interface RelayInfo {
  readonly auth: 'mtls' | 'open';
  readonly caPem?: string;
}

/** Where the page reads {@link RelayInfo}. */
export const RELAY_INFO_PATH = '/relay.json';

function collect(root: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let total = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) {
        walk(path);
        continue;
      }
      // Symbolic links are followed only if they stay inside the directory.
      const real = realpathSync(path);
      if (relative(root, real).startsWith('..') || !statSync(real).isFile()) continue;
      const type = MIME[extname(entry.name).toLowerCase()];
      if (type === undefined) continue; // unknown kinds are not served rather than guessed
      const body = readFileSync(real);
      total += body.length;
      if (total > MAX_WEB_DIR_BYTES) {
        throw new ServerError('CONFIG_INVALID', `web.dir: more than ${MAX_WEB_DIR_BYTES} bytes`);
      }
      const url = `/${relative(root, path).split(sep).join('/')}`;
      const gz = COMPRESSIBLE.has(extname(entry.name).toLowerCase())
        ? gzipSync(body, { level: 9 })
        : undefined;
      assets.set(url, {
        type,
        body,
        ...(gz && gz.length < body.length ? { gzip: gz } : {}),
        immutable: url.startsWith('/assets/'),
      });
    }
  };
  walk(root);
  return assets;
}

/**
 * Loads `dir` (must hold index.html) and returns the request handler. Throws
 * `CONFIG_INVALID` naming `web.dir` when the directory is missing or not an app.
 */
export function createWebHandler(
  dir: string,
  info: () => RelayInfo = () => ({ auth: 'open' }),
): WebHandler {
  let root: string;
  try {
    root = realpathSync(dir);
  } catch {
    throw new ServerError(
      'CONFIG_INVALID',
      `web.dir: ${dir} does not exist (build the web client: npm run build -w apps/web)`,
    );
  }
  const assets = collect(root);
  const index = assets.get('/index.html');
  if (!index) {
    throw new ServerError('CONFIG_INVALID', `web.dir: ${dir} has no index.html`);
  }
  return (req, res) => {
    const send = (status: number, headers: Record<string, string>, body?: Buffer): void => {
      res.writeHead(status, { ...WEB_SECURITY_HEADERS, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(
        405,
        { allow: 'GET, HEAD', 'content-type': 'text/plain' },
        Buffer.from('method not allowed\n'),
      );
    }
    const path = (req.url ?? '/').split(/[?#]/)[0] ?? '/';
    const asset =
      path === '/'
        ? index
        : path === RELAY_INFO_PATH
          ? {
              type: 'application/json',
              body: Buffer.from(JSON.stringify(info())),
              immutable: false,
            }
          : assets.get(path);
    if (!asset) {
      return send(404, { 'content-type': 'text/plain; charset=utf-8' }, Buffer.from('not found\n'));
    }
    const gzip =
      asset.gzip !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip && asset.gzip ? asset.gzip : asset.body;
    send(
      200,
      {
        'content-type': asset.type,
        'content-length': String(body.length),
        'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        vary: 'accept-encoding',
        ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      },
      body,
    );
  };
}
