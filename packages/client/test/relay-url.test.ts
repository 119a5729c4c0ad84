import { describe, expect, it } from 'vitest';
import { normaliseRelayUrl } from '../src/index.js';

describe('normaliseRelayUrl', () => {
  it('a URL without a path means the relay endpoint /ws; /ws and a trailing slash are kept', () => {
    expect(normaliseRelayUrl('wss://127.0.0.1:8443')).toBe('wss://127.0.0.1:8443/ws');
    expect(normaliseRelayUrl('wss://127.0.0.1:8443/')).toBe('wss://127.0.0.1:8443/ws');
    expect(normaliseRelayUrl('wss://Relay.Example:443/ws/')).toBe('wss://relay.example:443/ws');
    expect(normaliseRelayUrl(' WSS://[::1]:8443/ws ')).toBe('wss://[::1]:8443/ws');
    expect(normaliseRelayUrl('wss://relay.example')).toBe('wss://relay.example/ws');
  });

  it('refuses other paths naming the expected one, and other schemes, queries, users, ports', () => {
    expect(() => normaliseRelayUrl('wss://h:8443/chat')).toThrow(
      "--server: the relay's endpoint is /ws (wss://h:8443/ws, or just wss://h:8443), not /chat",
    );
    for (const bad of [
      'https://h:8443',
      'ws://h:8443',
      'h:8443',
      'wss://h:99999',
      'wss://u:p@h:8443',
      'wss://h:8443/ws?x=1',
      'wss://',
    ]) {
      expect(() => normaliseRelayUrl(bad), bad).toThrow(/^--server: /);
    }
    expect(() => normaliseRelayUrl('ws://h:1', 'relay URL')).toThrow(
      /^relay URL: expected wss:\/\/HOST:PORT/,
    );
    expect(() => normaliseRelayUrl('wss://h:1/x')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
