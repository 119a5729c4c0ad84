/**
 * The search part of the storage contract (M38), run against every backend beside
 * store-contract.ts: words and prefixes, all terms required, case and diacritics
 * ignored, one conversation or all, newest first, and deleted messages gone from the
 * answers.
 */
import { describe, expect, it } from 'vitest';
import type { ClientStore, StoredMessage } from '@parley/client';
import type { StoreHarness } from './store-contract.js';

const msg = (id: string, peer: string, text: string): StoredMessage => ({
  id,
  peer,
  direction: id.startsWith('o') ? 'out' : 'in',
  text,
  sentAt: 1000,
  storedAt: 2000,
  status: id.startsWith('o') ? 'queued' : 'received',
  shown: false,
});

async function seeded(h: StoreHarness): Promise<ClientStore> {
  const s = await h.open();
  await s.commit([
    { op: 'message.put', message: msg('i1', 'bob', 'Meet me at the Harbour tomorrow') },
    { op: 'message.put', message: msg('o1', 'bob', 'harbour is fine, bring the café map') },
    { op: 'message.put', message: msg('i2', 'carol', 'the harbourmaster called') },
    { op: 'message.put', message: msg('o2', 'carol', 'nothing to see here') },
    { op: 'message.put', message: msg('i3', 'bob', 'HARBOUR again?') },
  ]);
  return s;
}

const ids = (ms: StoredMessage[]): string[] => ms.map((m) => m.id);

export function storeSearchContract(name: string, h: StoreHarness): void {
  describe(`ClientStore search contract: ${name}`, () => {
    it('finds whole words in every conversation, newest first, ignoring case', async () => {
      const s = await seeded(h);
      expect(ids(await s.searchMessages('harbour'))).toEqual(['i3', 'o1', 'i1']);
      expect(ids(await s.searchMessages('Harbour', { peer: 'carol' }))).toEqual([]);
      expect(ids(await s.searchMessages('harbour', { limit: 2 }))).toEqual(['i3', 'o1']);
      await s.close();
    });

    it('prefix terms, all terms required, diacritics folded, per conversation', async () => {
      const s = await seeded(h);
      expect(ids(await s.searchMessages('harb*'))).toEqual(['i3', 'i2', 'o1', 'i1']);
      expect(ids(await s.searchMessages('harb*', { peer: 'carol' }))).toEqual(['i2']);
      expect(ids(await s.searchMessages('harbour tomorrow'))).toEqual(['i1']);
      expect(ids(await s.searchMessages('cafe'))).toEqual(['o1']);
      expect(ids(await s.searchMessages('CAFÉ map'))).toEqual(['o1']);
      expect(ids(await s.searchMessages('harbourmaste'))).toEqual([]);
      expect(ids(await s.searchMessages('"nothing" OR'))).toEqual([]); // no query syntax
      expect(ids(await s.searchMessages('nothing'))).toEqual(['o2']);
      await s.close();
    });

    it('an edited text is found by its new words only', async () => {
      const s = await seeded(h);
      await s.commit([{ op: 'message.put', message: msg('o2', 'carol', 'lighthouse at dawn') }]);
      expect(ids(await s.searchMessages('nothing'))).toEqual([]);
      expect(ids(await s.searchMessages('lighthouse'))).toEqual(['o2']);
      await s.close();
    });

    it('a deleted message or conversation is no longer found; a status change keeps it', async () => {
      const s = await seeded(h);
      await s.commit([{ op: 'message.status', peer: 'bob', id: 'o1', status: 'delivered' }]);
      expect(ids(await s.searchMessages('bring'))).toEqual(['o1']);
      await s.commit([{ op: 'message.delete', peer: 'bob', direction: 'out', id: 'o1' }]);
      expect(ids(await s.searchMessages('harbour'))).toEqual(['i3', 'i1']);
      expect(await s.getMessage('bob', 'out', 'o1')).toBeUndefined();
      await s.commit([{ op: 'conversation.delete', peer: 'bob' }]);
      expect(ids(await s.searchMessages('harb*'))).toEqual(['i2']);
      expect(await s.listMessages('bob')).toEqual([]);
      expect((await s.listConversations()).map((c) => c.peer)).toEqual(['carol']);
      await s.close();
    });

    it('refuses a query without a word or a bad limit, as INVALID_ARGUMENT', async () => {
      const s = await seeded(h);
      await expect(s.searchMessages('  -- ')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(s.searchMessages('x', { limit: 0 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await s.close();
    });

    if (h.reopen) {
      const reopen = h.reopen.bind(h);
      it('the index persists across reopen', async () => {
        const s = await seeded(h);
        const r = await reopen(s);
        expect(ids(await r.searchMessages('harbour'))).toEqual(['i3', 'o1', 'i1']);
        await r.close();
      });
    }
  });
}
