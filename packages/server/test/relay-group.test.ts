/**
 * Group uploads (`group.send`) through a real relay with real TLS and raw wire clients:
 * one copy per listed device, live to those online and from the mailbox to the others
 * after login, one `queued` for the sender and no relay `delivered`; forged senders
 * dropped; retries stored once; a 200-member upload, several in a row, within the
 * default rate limits.
 */
import Database from 'better-sqlite3';
import type { ClientFrame, ServerFrame } from '@parley/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ed25519KeyPair } from '@parley/crypto';
import {
  TestClient,
  clientId,
  crypto,
  startHarness,
  until,
  type Credentials,
  type Harness,
} from './helpers.js';

type Deliver = Extract<ServerFrame, { type: 'deliver' }>;

const addr = (name: string) => ({ name, deviceId: 1 });

function groupSend(
  from: string,
  to: readonly string[],
  n: number,
  payload: Uint8Array,
): Extract<ClientFrame, { type: 'group.send' }> {
  return {
    type: 'group.send',
    clientMessageId: clientId(n),
    from: addr(from),
    to: to.map(addr),
    payload,
  };
}

const payloadOf = (n: number, bytes = 64): Uint8Array => new Uint8Array(bytes).fill(n);

const delivers = (c: TestClient): Deliver[] =>
  c.frames.filter((f): f is Deliver => f.type === 'deliver');

const receipts = (c: TestClient, n: number) =>
  c.frames.filter(
    (f) => (f.type === 'receipt' || f.type === 'receipt.stored') && f.clientMessageId[15] === n,
  );

/** Acks every delivery as it arrives, as a client does after committing it. */
function autoAck(c: TestClient): () => void {
  const acked = new Set<number>();
  const timer = setInterval(() => {
    for (const f of delivers(c)) {
      if (acked.has(f.serverMessageId) || c.closed) continue;
      acked.add(f.serverMessageId);
      c.send({ type: 'ack', serverMessageId: f.serverMessageId });
    }
  }, 5);
  return () => clearInterval(timer);
}

/** Group copies per recipient name, read from the relay's own SQLite file. */
function groupRows(h: Harness): Map<string, number> {
  const db = new Database(h.relay.paths.database, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare<[], { r_name: string; n: number }>(
        "SELECT r_name, count(*) AS n FROM mailbox WHERE kind = 'group' GROUP BY r_name",
      )
      .all();
    return new Map(rows.map((r) => [r.r_name, r.n]));
  } finally {
    db.close();
  }
}

/** Open mode: registers or logs in, then waits for the backlog (`mailbox.empty`). */
async function member(
  h: Harness,
  purpose: 'register' | 'login',
  name: string,
  identity: Ed25519KeyPair,
): Promise<TestClient> {
  const c = await TestClient.connect(h);
  const answer = await c.openAuth(purpose, name, identity);
  if (answer.type !== 'welcome') throw new Error(`${name}: ${answer.type}`);
  await c.next('mailbox.empty');
  return c;
}

async function online(h: Harness, creds: Credentials): Promise<TestClient> {
  const c = await TestClient.connect(h, creds);
  await c.hello();
  await c.next('mailbox.empty');
  return c;
}

describe('group uploads through the relay', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('stores one copy per device, live to those online and in the backlog of the others, with one queued and no relay delivered', async () => {
    const sender = await online(h, await h.credentials('gsender'));
    const names = ['g1', 'g2', 'g3', 'g4', 'g5'];
    const creds = await Promise.all(names.map((n) => h.credentials(n)));
    const members = await Promise.all(creds.map((c) => online(h, c)));
    const stops = members.slice(0, 3).map(autoAck);
    // g4 and g5 are registered but offline when the upload arrives.
    for (const m of members.slice(3)) {
      m.close();
      await m.waitClosed();
    }
    const payload = payloadOf(0x41, 300);
    sender.send(groupSend('gsender', [...names, 'ghost-not-registered'], 1, payload));
    const queued = await sender.next('receipt');
    expect(queued.status).toBe('queued');
    for (const m of members.slice(0, 3)) await until(() => delivers(m).length === 1, 'live copy');
    const live = members.slice(0, 3).map((m) => delivers(m)[0] as Deliver);
    for (const d of live) {
      expect(d.kind).toBe('group');
      expect(d.from).toEqual(addr('gsender'));
      expect(d.payload).toEqual(payload);
    }
    // Its id is the first listed copy's (g1); every copy has an id of its own.
    expect(queued.serverMessageId).toBe(live[0]?.serverMessageId);
    // The live recipients' acks delete their copies; the offline ones keep theirs.
    await until(() => {
      const rows = groupRows(h);
      return !rows.has('g1') && !rows.has('g2') && !rows.has('g3');
    }, 'acked copies deleted');
    expect(groupRows(h).get('g4')).toBe(1);
    expect(groupRows(h).get('g5')).toBe(1);
    // After login, the offline ones get it from their mailbox, then mailbox.empty.
    const late = await Promise.all(creds.slice(3).map((c) => online(h, c)));
    for (const m of late) {
      const d = delivers(m);
      expect(d).toHaveLength(1);
      expect(d[0]).toMatchObject({ kind: 'group', from: addr('gsender') });
      expect(d[0]?.payload).toEqual(payload);
      m.send({ type: 'ack', serverMessageId: (d[0] as Deliver).serverMessageId });
    }
    const ids = [...live, ...late.map((m) => delivers(m)[0] as Deliver)].map(
      (d) => d.serverMessageId,
    );
    expect(new Set(ids).size).toBe(5);
    await until(() => groupRows(h).size === 0, 'every copy acked');
    // A marker upload after the acks: by the time its receipt is here, a relay
    // `delivered` for upload 1 would have arrived (acks are handled in order).
    sender.send(groupSend('gsender', ['g1'], 2, payloadOf(2)));
    await until(() => receipts(sender, 2).length === 1, 'marker receipt');
    await until(() => delivers(members[0] as TestClient).length === 2, 'marker copy');
    // Nothing more for upload 1 than the `queued` taken above.
    expect(receipts(sender, 1)).toHaveLength(0);
    expect(sender.frames.some((f) => f.type === 'error')).toBe(false);
    // The unknown name was skipped silently and audited as a count, never by name.
    const audit = h.audit();
    expect(
      audit.some((r) => r.type === 'group.skipped' && r.identity === 'gsender' && r.value === 1),
    ).toBe(true);
    expect(JSON.stringify(audit)).not.toContain('ghost-not-registered');
    for (const s of stops) s();
    for (const m of [sender, ...members, ...late]) m.close();
  });

  it('stores a retried upload once: same receipt, no second copy', async () => {
    const senderCreds = await h.credentials('rsender');
    const sender = await online(h, senderCreds);
    const on = await online(h, await h.credentials('r1'));
    const offCreds = await h.credentials('r2');
    const off = await online(h, offCreds);
    off.close();
    await off.waitClosed();
    const stop = autoAck(on);
    const upload = groupSend('rsender', ['r1', 'r2'], 1, payloadOf(7));
    sender.send(upload);
    const first = await sender.next('receipt');
    // The same upload again, as a client does when it did not hear "queued" in time,
    // once on this connection and once on a new one.
    sender.send(upload);
    const second = await sender.next('receipt');
    expect(second).toMatchObject({ status: 'queued', serverMessageId: first.serverMessageId });
    sender.close();
    const again = await online(h, senderCreds);
    again.send(upload);
    const third = await again.next('receipt');
    expect(third.serverMessageId).toBe(first.serverMessageId);
    // A marker behind the retries: r1 gets copies in order, so a second copy of upload
    // 1 would arrive before it.
    again.send(groupSend('rsender', ['r1', 'r2'], 2, payloadOf(8)));
    await again.next('receipt');
    await until(() => delivers(on).length === 2, 'marker copy');
    expect(delivers(on).map((d) => d.payload[0])).toEqual([7, 8]);
    const back = await online(h, offCreds);
    expect(delivers(back).map((d) => d.payload[0])).toEqual([7, 8]);
    stop();
    for (const c of [again, on, back]) c.close();
  });

  it('drops an upload whose from is not the sender, silently, and audits it', async () => {
    const mallory = await online(h, await h.credentials('gmallory'));
    const victim = await online(h, await h.credentials('gvictim'));
    const member = await online(h, await h.credentials('gmember'));
    mallory.send(groupSend('gvictim', ['gmember'], 9, payloadOf(9)));
    // A valid upload behind it: once that is answered, the forged one was handled.
    mallory.send(groupSend('gmallory', ['gmember'], 10, payloadOf(10)));
    await until(() => receipts(mallory, 10).length === 1, 'valid upload receipt');
    await until(() => delivers(member).length === 1, 'valid copy');
    expect(receipts(mallory, 9)).toHaveLength(0);
    expect(mallory.has('error')).toBe(false);
    expect(delivers(member).map((d) => d.payload[0])).toEqual([10]);
    expect(
      h
        .audit()
        .some(
          (r) =>
            r.type === 'sender.spoofed' && r.identity === 'gmallory' && r.code === 'group.send',
        ),
    ).toBe(true);
    for (const c of [mallory, victim, member]) c.close();
  });

  it('refuses an upload no listed device can take with the same failed as send', async () => {
    const sender = await online(h, await h.credentials('nsender'));
    sender.send(groupSend('nsender', ['nobody-1', 'nobody-2'], 1, payloadOf(1)));
    const err = await sender.next('error');
    expect(err.code).toBe('failed');
    expect(err.clientMessageId?.[15]).toBe(1);
    expect(sender.has('receipt')).toBe(false);
    sender.close();
  });
});

describe('a 200-member group', () => {
  let h: Harness;
  beforeAll(async () => {
    // Open mode: 200 devices register with a signature, no certificates to issue.
    h = await startHarness({ auth: 'open' });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('delivers a 200-member upload, several in a row, within the default rate limits', async () => {
    const MEMBERS = 200;
    const UPLOADS = 5;
    const names = Array.from({ length: MEMBERS }, (_, i) => `big-${i}`);
    const keys = names.map(() => crypto.ed25519.generateKeyPair());
    // Every member connects once (registering its device); one in 40 stays online.
    const isOnline = (i: number): boolean => i % 40 === 0;
    const onlineClients: TestClient[] = [];
    for (let i = 0; i < MEMBERS; i += 20) {
      const batch = await Promise.all(
        names
          .slice(i, i + 20)
          .map((n, j) => member(h, 'register', n, keys[i + j] as Ed25519KeyPair)),
      );
      for (const [j, c] of batch.entries()) {
        if (isOnline(i + j)) onlineClients.push(c);
        else c.close();
      }
    }
    const stops = onlineClients.map(autoAck);
    const sender = await member(h, 'register', 'big-sender', crypto.ed25519.generateKeyPair());
    // Several blocks per upload: 200 addresses plus a 6 KB payload.
    for (let n = 1; n <= UPLOADS; n++)
      sender.send(groupSend('big-sender', names, n, payloadOf(n, 6000)));
    await until(
      () => [1, 2, 3, 4, 5].every((n) => receipts(sender, n).length === 1) || sender.closed,
      'queued for every upload',
      60_000,
    );
    expect(sender.closed).toBe(false);
    expect(sender.has('error')).toBe(false);
    for (let n = 1; n <= UPLOADS; n++)
      expect(receipts(sender, n)[0]).toMatchObject({ status: 'queued' });
    // Online members got every upload live, in order.
    for (const c of onlineClients) {
      await until(() => delivers(c).length === UPLOADS, 'live copies', 30_000);
      expect(delivers(c).map((d) => [d.kind, d.payload[0]])).toEqual(
        [1, 2, 3, 4, 5].map((n) => ['group', n]),
      );
    }
    // Every other mailbox holds one copy of each upload.
    await until(
      () => {
        const rows = groupRows(h);
        return names.every((n, i) => (rows.get(n) ?? 0) === (isOnline(i) ? 0 : UPLOADS));
      },
      'a copy of every upload in every offline mailbox',
      30_000,
    );
    // Two offline members log in and get their backlog in order.
    for (const i of [1, MEMBERS - 1]) {
      const c = await member(h, 'login', names[i] as string, keys[i] as Ed25519KeyPair);
      expect(delivers(c).map((d) => d.payload[0])).toEqual([1, 2, 3, 4, 5]);
      c.close();
    }
    // The metrics count uploads, not copies, as uploads; every copy as stored.
    const metrics = await (await fetch(`http://127.0.0.1:${h.relay.adminPort}/metrics`)).text();
    expect(metrics).toContain(`parley_group_uploads_total{outcome="queued"} ${UPLOADS}`);
    expect(metrics).toContain(`parley_group_copies_total{outcome="stored"} ${UPLOADS * MEMBERS}`);
    // Still connected and usable after the burst.
    sender.send({ type: 'ping', timestamp: Date.now() });
    await sender.next('pong');
    expect(h.audit().some((r) => r.type === 'rate.flood' && r.identity === 'big-sender')).toBe(
      false,
    );
    for (const s of stops) s();
    for (const c of [sender, ...onlineClients]) c.close();
  }, 180_000);
});

describe('group copy budget', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: { rateLimit: { maxGroupCopiesPerConnection: 6 } } });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('refuses an upload beyond the copy budget with rate_limited and keeps the connection', async () => {
    const sender = await online(h, await h.credentials('bsender'));
    const members = ['b1', 'b2', 'b3'];
    const clients = await Promise.all(members.map(async (m) => online(h, await h.credentials(m))));
    sender.send(groupSend('bsender', members, 1, payloadOf(1)));
    sender.send(groupSend('bsender', members, 2, payloadOf(2)));
    sender.send(groupSend('bsender', members, 3, payloadOf(3)));
    const err = await sender.next('error');
    expect(err.code).toBe('rate_limited');
    expect(err.clientMessageId?.[15]).toBe(3);
    await until(
      () => receipts(sender, 1).length === 1 && receipts(sender, 2).length === 1,
      'receipts within the budget',
    );
    // Still open: a single send goes through.
    sender.send({
      type: 'send',
      clientMessageId: clientId(4),
      from: addr('bsender'),
      to: addr('b1'),
      payload: payloadOf(4),
    });
    await until(() => receipts(sender, 4).length === 1, 'send after refusal');
    await until(() => delivers(clients[0] as TestClient).length === 3, 'copies and message');
    expect(delivers(clients[0] as TestClient).map((d) => d.payload[0])).toEqual([1, 2, 4]);
    expect(h.audit().some((r) => r.type === 'rate.limited' && r.identity === 'bsender')).toBe(true);
    for (const c of [sender, ...clients]) c.close();
  });
});
