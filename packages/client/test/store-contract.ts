/**
 * The storage contract: every `ClientStore` backend (memory, SQLite, later IndexedDB)
 * must pass this same suite. `open` returns a fresh, empty store; `reopen` (optional)
 * closes and reopens it, for backends that persist.
 */
import { describe, expect, it } from 'vitest';
import { ClientError } from '@parley/client';
import type { ClientStore, Contact, OutboxEntry, StoredMessage } from '@parley/client';

export interface StoreHarness {
  open(): Promise<ClientStore>;
  reopen?(store: ClientStore): Promise<ClientStore>;
}

const msg = (over: Partial<StoredMessage> & Pick<StoredMessage, 'id'>): StoredMessage => ({
  peer: 'bob',
  direction: 'in',
  text: `text ${over.id}`,
  sentAt: 1000,
  storedAt: 2000,
  status: 'received',
  shown: false,
  ...over,
});

/** The record fields of a pending pairwise `send`. */
const SEND = { frame: 'send', kind: 'msg', state: 'pending' } as const;

const outboxEntry = (id: string, over: Partial<OutboxEntry> = {}): OutboxEntry => ({
  id,
  peer: 'bob',
  deviceId: 1,
  payload: new Uint8Array([7]),
  createdAt: 1,
  attempts: 0,
  ...SEND,
  ...over,
});

const contact = (name: string, key: number): Contact => ({
  name,
  deviceId: 1,
  identityKey: new Uint8Array(32).fill(key),
  trust: 'unverified',
  addedAt: 5,
  updatedAt: 5,
});

export function storeContract(name: string, h: StoreHarness): void {
  describe(`ClientStore contract: ${name}`, () => {
    it('stores and returns meta, sessions and secrets by value', async () => {
      const s = await h.open();
      const v = new Uint8Array([1, 2, 3]);
      await s.commit([
        { op: 'meta.put', key: 'k', value: v },
        { op: 'session.put', peer: 'bob', deviceId: 1, state: new Uint8Array([9]) },
        { op: 'secret.put', kind: 'otk', id: 7, value: new Uint8Array([7]) },
        { op: 'secret.put', kind: 'otk', id: 3, value: new Uint8Array([3]) },
        { op: 'secret.put', kind: 'spk', id: 1, value: new Uint8Array([1]) },
      ]);
      v[0] = 99; // mutating the caller's array must not reach the store
      expect(await s.getMeta('k')).toEqual(new Uint8Array([1, 2, 3]));
      expect(await s.getSession('bob', 1)).toEqual(new Uint8Array([9]));
      expect(await s.getSession('bob', 2)).toBeUndefined();
      expect(await s.listSecretIds('otk')).toEqual([3, 7]);
      expect(await s.getSecret('otk', 7)).toEqual(new Uint8Array([7]));
      await s.commit([
        { op: 'secret.delete', kind: 'otk', id: 3 },
        { op: 'session.delete', peer: 'bob', deviceId: 1 },
        { op: 'meta.delete', key: 'k' },
      ]);
      expect(await s.listSecretIds('otk')).toEqual([7]);
      expect(await s.getSession('bob', 1)).toBeUndefined();
      expect(await s.getMeta('k')).toBeUndefined();
      await s.close();
    });

    it('keeps contacts with trust state and previous key', async () => {
      const s = await h.open();
      await s.commit([
        { op: 'contact.put', contact: contact('carol', 1) },
        { op: 'contact.put', contact: contact('bob', 2) },
      ]);
      await s.commit([
        {
          op: 'contact.put',
          contact: {
            ...contact('bob', 3),
            trust: 'key-changed',
            previousIdentityKey: new Uint8Array(32).fill(2),
            updatedAt: 9,
          },
        },
      ]);
      const all = await s.listContacts();
      expect(all.map((c) => c.name)).toEqual(['bob', 'carol']);
      const bob = await s.getContact('bob');
      expect(bob?.trust).toBe('key-changed');
      expect(bob?.identityKey).toEqual(new Uint8Array(32).fill(3));
      expect(bob?.previousIdentityKey).toEqual(new Uint8Array(32).fill(2));
      expect((await s.getContact('carol'))?.previousIdentityKey).toBeUndefined();
      expect(await s.getContact('dave')).toBeUndefined();
      await s.close();
    });

    it('orders messages by insertion, keeps seq on update, and counts unread', async () => {
      const s = await h.open();
      await s.commit([
        { op: 'message.put', message: msg({ id: 'a1' }) },
        {
          op: 'message.put',
          message: msg({ id: 'a2', direction: 'out', status: 'sending', shown: true }),
        },
        { op: 'message.put', message: msg({ id: 'c1', peer: 'carol' }) },
        { op: 'message.put', message: msg({ id: 'a3' }) },
      ]);
      const before = await s.listMessages('bob');
      expect(before.map((m) => m.id)).toEqual(['a1', 'a2', 'a3']);
      await s.commit([{ op: 'message.status', peer: 'bob', id: 'a2', status: 'queued' }]);
      await s.commit([{ op: 'message.put', message: msg({ id: 'a1', text: 'edited' }) }]);
      const after = await s.listMessages('bob');
      expect(after.map((m) => [m.id, m.seq])).toEqual(before.map((m) => [m.id, m.seq]));
      expect(after[0]?.text).toBe('edited');
      expect(after[1]?.status).toBe('queued');
      expect((await s.listMessages()).map((m) => m.id)).toEqual(['a1', 'a2', 'c1', 'a3']);
      expect((await s.listMessages('bob', { limit: 2 })).map((m) => m.id)).toEqual(['a2', 'a3']);
      expect((await s.listMessages(undefined, { unshownOnly: true })).map((m) => m.id)).toEqual([
        'a1',
        'c1',
        'a3',
      ]);
      const conv = await s.listConversations();
      expect(conv).toEqual([
        { peer: 'bob', lastText: 'text a3', lastAt: 2000, unread: 2 },
        { peer: 'carol', lastText: 'text c1', lastAt: 2000, unread: 1 },
      ]);
      const a1seq = after[0]?.seq ?? -1;
      await s.commit([{ op: 'message.shown', peer: 'bob', uptoSeq: a1seq }]);
      expect((await s.listMessages('bob', { unshownOnly: true })).map((m) => m.id)).toEqual(['a3']);
      expect((await s.listMessages('bob', { afterSeq: a1seq })).map((m) => m.id)).toEqual([
        'a2',
        'a3',
      ]);
      expect((await s.getMessage('bob', 'out', 'a2'))?.status).toBe('queued');
      expect(await s.getMessage('bob', 'in', 'a2')).toBeUndefined();
      await s.close();
    });

    it('pages history backwards: beforeSeq + limit walk a conversation once, oldest first', async () => {
      const s = await h.open();
      const writes = [];
      for (let i = 0; i < 23; i++) {
        writes.push({ op: 'message.put' as const, message: msg({ id: `b${i}` }) });
        if (i % 4 === 0)
          writes.push({ op: 'message.put' as const, message: msg({ id: `c${i}`, peer: 'carol' }) });
      }
      await s.commit(writes);
      const pages: string[][] = [];
      let before: number | undefined;
      // Bounded: a backend that ignored beforeSeq would return the same page forever.
      for (let guard = 0; guard < 10; guard++) {
        const page = await s.listMessages('bob', {
          limit: 5,
          ...(before !== undefined ? { beforeSeq: before } : {}),
        });
        if (page.length === 0) break;
        pages.push(page.map((m) => m.id));
        before = page[0]?.seq;
      }
      expect(pages[0]).toEqual(['b18', 'b19', 'b20', 'b21', 'b22']);
      expect(pages.length).toBe(5);
      expect(pages.at(-1)).toEqual(['b0', 'b1', 'b2']);
      expect(pages.reverse().flat()).toEqual(Array.from({ length: 23 }, (_, i) => `b${i}`));
      // The same bound without a peer pages across conversations; with afterSeq it is a window.
      const all = await s.listMessages();
      const mid = all[10]?.seq ?? 0;
      expect(
        (await s.listMessages(undefined, { beforeSeq: mid, limit: 3 })).map((m) => m.id),
      ).toEqual(all.slice(7, 10).map((m) => m.id));
      const lo = all[2]?.seq ?? 0;
      expect(
        (await s.listMessages(undefined, { afterSeq: lo, beforeSeq: mid })).map((m) => m.id),
      ).toEqual(all.slice(3, 10).map((m) => m.id));
      expect(await s.listMessages('bob', { beforeSeq: 1 })).toEqual([]);
      expect(await s.listMessages('bob', { limit: 0 })).toEqual([]);
      await s.close();
    });

    it('applies a batch atomically: a failing write leaves nothing of the batch', async () => {
      const s = await h.open();
      await s.commit([{ op: 'session.put', peer: 'bob', deviceId: 1, state: new Uint8Array([1]) }]);
      // A decrypted message and the advanced session state travel in one batch; if any
      // write fails, neither may land.
      const failing = s.commit([
        { op: 'session.put', peer: 'bob', deviceId: 1, state: new Uint8Array([2]) },
        { op: 'message.put', message: msg({ id: 'x' }) },
        { op: 'seen.add', key: 'bob:x' },
        { op: 'message.status', peer: 'bob', id: 'does-not-exist', status: 'delivered' },
      ]);
      await expect(failing).rejects.toBeInstanceOf(ClientError);
      await expect(failing).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await s.getSession('bob', 1)).toEqual(new Uint8Array([1]));
      expect(await s.listMessages('bob')).toEqual([]);
      expect(await s.hasSeen('bob:x')).toBe(false);
      await s.close();
    });

    it('keeps group fields: sender, delivered k of n, and the recipients of a group upload', async () => {
      const s = await h.open();
      const g = 'group:00112233445566778899aabbccddeeff';
      await s.commit([
        { op: 'message.put', message: msg({ id: 'g1', peer: g, from: 'carol' }) },
        {
          op: 'message.put',
          message: msg({
            id: 'g2',
            peer: g,
            direction: 'out',
            status: 'queued',
            groupDelivery: { of: 3, by: ['carol'] },
          }),
        },
        {
          op: 'outbox.put',
          entry: {
            id: 'g2',
            peer: g,
            deviceId: 1,
            payload: new Uint8Array([9]),
            createdAt: 1,
            attempts: 0,
            ...SEND,
            recipients: ['bob', 'carol', 'dave'],
            frame: 'group.send',
            message: 'g2',
          },
        },
      ]);
      const check = async (t: ClientStore): Promise<void> => {
        expect((await t.getMessage(g, 'in', 'g1'))?.from).toBe('carol');
        expect((await t.getMessage(g, 'out', 'g2'))?.groupDelivery).toEqual({
          of: 3,
          by: ['carol'],
        });
        expect((await t.listOutbox())[0]?.recipients).toEqual(['bob', 'carol', 'dave']);
        expect((await t.getOutbox('g2'))?.frame).toBe('group.send');
        expect((await t.listConversations()).map((c) => c.peer)).toEqual([g]);
      };
      await check(s);
      const r = h.reopen ? await h.reopen(s) : s;
      await check(r);
      await r.close();
    });

    it('keeps a seen-set and an ordered outbox', async () => {
      const s = await h.open();
      await s.commit([
        { op: 'seen.add', key: 'k1' },
        { op: 'seen.add', key: 'k1' },
        {
          op: 'outbox.put',
          entry: {
            id: 'o2',
            peer: 'bob',
            deviceId: 1,
            payload: new Uint8Array([2]),
            createdAt: 2,
            attempts: 0,
            ...SEND,
          },
        },
        {
          op: 'outbox.put',
          entry: {
            id: 'o1',
            peer: 'bob',
            deviceId: 1,
            payload: new Uint8Array([1]),
            createdAt: 1,
            attempts: 0,
            ...SEND,
          },
        },
      ]);
      expect(await s.hasSeen('k1')).toBe(true);
      expect(await s.hasSeen('k2')).toBe(false);
      await s.commit([
        {
          op: 'outbox.put',
          entry: {
            id: 'o1',
            peer: 'bob',
            deviceId: 1,
            payload: new Uint8Array([1]),
            createdAt: 1,
            attempts: 3,
            ...SEND,
          },
        },
      ]);
      const out = await s.listOutbox();
      expect(out.map((e) => [e.id, e.attempts])).toEqual([
        ['o1', 3],
        ['o2', 0],
      ]);
      expect(out[1]?.payload).toEqual(new Uint8Array([2]));
      await s.commit([{ op: 'outbox.delete', id: 'o1' }]);
      expect((await s.listOutbox()).map((e) => e.id)).toEqual(['o2']);
      await s.close();
    });

    it('keeps an outbox record from pending through sent until it is deleted', async () => {
      const s = await h.open();
      await s.commit([
        {
          op: 'outbox.put',
          entry: outboxEntry('w1', { kind: 'msg', message: 'm1', createdAt: 1 }),
        },
        {
          op: 'outbox.put',
          entry: outboxEntry('w2', { frame: 'session.terminate', kind: 'end', createdAt: 2 }),
        },
      ]);
      expect(await s.getOutbox('w1')).toEqual(outboxEntry('w1', { message: 'm1' }));
      expect((await s.getOutbox('w2'))?.message).toBeUndefined();
      expect(await s.getOutbox('nope')).toBeUndefined();
      // The relay's `queued`: the record stays, out of the pending list.
      await s.commit([{ op: 'outbox.sent', id: 'w1' }]);
      expect((await s.listOutbox()).map((e) => e.id)).toEqual(['w2']);
      expect(await s.getOutbox('w1')).toEqual(
        outboxEntry('w1', { message: 'm1', state: 'sent', payload: new Uint8Array(0) }),
      );
      // Marking again or marking an absent record changes nothing and fails nothing.
      await s.commit([
        { op: 'outbox.sent', id: 'w1' },
        { op: 'outbox.sent', id: 'absent' },
      ]);
      expect(await s.getOutbox('absent')).toBeUndefined();
      expect((await s.getOutbox('w1'))?.state).toBe('sent');
      const r = h.reopen ? await h.reopen(s) : s;
      expect((await r.getOutbox('w1'))?.state).toBe('sent');
      expect((await r.listOutbox()).map((e) => [e.id, e.frame, e.kind])).toEqual([
        ['w2', 'session.terminate', 'end'],
      ]);
      // The last receipt deletes the record in either state.
      await r.commit([
        { op: 'outbox.delete', id: 'w1' },
        { op: 'outbox.delete', id: 'w2' },
        { op: 'outbox.delete', id: 'absent' },
      ]);
      expect(await r.getOutbox('w1')).toBeUndefined();
      expect(await r.listOutbox()).toEqual([]);
      await r.close();
    });

    it('rolls an outbox state change back with its failed batch', async () => {
      const s = await h.open();
      await s.commit([{ op: 'outbox.put', entry: outboxEntry('w1') }]);
      await expect(
        s.commit([
          { op: 'outbox.sent', id: 'w1' },
          { op: 'message.status', peer: 'bob', id: 'missing', status: 'queued' },
        ]),
      ).rejects.toThrow(ClientError);
      expect((await s.getOutbox('w1'))?.state).toBe('pending');
      expect((await s.listOutbox()).map((e) => e.id)).toEqual(['w1']);
      await s.close();
    });

    it('keeps expiry and timer events, and deletes one message by its key only', async () => {
      const s = await h.open();
      await s.commit([
        { op: 'message.put', message: msg({ id: 'e1', expiresAt: 9000 }) },
        { op: 'message.put', message: msg({ id: 'e1', direction: 'out', status: 'queued' }) },
        { op: 'message.put', message: msg({ id: 't1', text: '', timerMs: 300_000 }) },
        { op: 'message.put', message: msg({ id: 'k1' }) },
      ]);
      expect(await s.getMessage('bob', 'in', 'e1')).toMatchObject({ expiresAt: 9000 });
      expect((await s.getMessage('bob', 'in', 'k1'))?.expiresAt).toBeUndefined();
      expect(await s.getMessage('bob', 'in', 't1')).toMatchObject({ timerMs: 300_000 });
      await s.commit([{ op: 'message.delete', peer: 'bob', direction: 'in', id: 'e1' }]);
      expect(await s.getMessage('bob', 'in', 'e1')).toBeUndefined();
      expect((await s.listMessages('bob')).map((m) => `${m.direction}:${m.id}`)).toEqual([
        'out:e1',
        'in:t1',
        'in:k1',
      ]);
      // Deleting what is not there changes nothing and fails nothing.
      await s.commit([{ op: 'message.delete', peer: 'bob', direction: 'in', id: 'e1' }]);
      expect((await s.listConversations())[0]).toMatchObject({ peer: 'bob', lastText: 'text k1' });
      await s.close();
    });

    it('refuses use after close', async () => {
      const s = await h.open();
      await s.close();
      await expect(s.getMeta('k')).rejects.toMatchObject({ code: 'CLOSED' });
      await expect(s.commit([])).rejects.toMatchObject({ code: 'CLOSED' });
    });

    if (h.reopen) {
      const reopen = h.reopen.bind(h);
      it('persists every record kind across reopen', async () => {
        const s = await h.open();
        await s.commit([
          { op: 'meta.put', key: 'identity', value: new Uint8Array([4, 2]) },
          { op: 'session.put', peer: 'bob', deviceId: 1, state: new Uint8Array([5]) },
          { op: 'contact.put', contact: contact('bob', 8) },
          { op: 'message.put', message: msg({ id: 'p1' }) },
          { op: 'seen.add', key: 'bob:p1' },
          {
            op: 'outbox.put',
            entry: {
              id: 'o',
              peer: 'bob',
              deviceId: 1,
              payload: new Uint8Array([6]),
              createdAt: 1,
              attempts: 0,
              ...SEND,
            },
          },
        ]);
        const r = await reopen(s);
        expect(await r.getMeta('identity')).toEqual(new Uint8Array([4, 2]));
        expect(await r.getSession('bob', 1)).toEqual(new Uint8Array([5]));
        expect((await r.getContact('bob'))?.identityKey).toEqual(new Uint8Array(32).fill(8));
        expect((await r.listMessages('bob')).map((m) => m.text)).toEqual(['text p1']);
        expect(await r.hasSeen('bob:p1')).toBe(true);
        expect((await r.listOutbox()).map((e) => e.payload)).toEqual([new Uint8Array([6])]);
        await r.close();
      });
    }
  });
}
