/**
 * A revoked device that keeps reconnecting leaves one audit record per window, naming
 * its certificate's serial, not one per attempt (issue 9 §2).
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { revoke } from '@parley/pki';
import { afterAll, describe, expect, it } from 'vitest';
import { REJECTION_AUDIT_WINDOW_MS, RejectionAuditLimiter } from '../src/rejection-audit.js';
import type { AuditEvent } from '../src/audit.js';
import { TestClient, startHarness, until, type Harness } from './helpers.js';

describe('refused certificates in the audit log', () => {
  let h: Harness | undefined;
  afterAll(async () => h?.close());

  it('repeated handshakes with a revoked certificate give one record naming its serial', async () => {
    h = await startHarness();
    const bob = await h.credentials('bob');
    const serial = new X509Certificate(bob.cert).serialNumber.toLowerCase();
    await revoke(join(h.dir, 'data'), 'bob');
    await h.relay.reloadCrl();
    for (let i = 0; i < 5; i++) {
      const c = new TestClient(h.relay.url, { ca: bob.ca, cert: bob.cert, key: bob.key });
      await until(() => c.closed, 'refused');
      expect(c.opened).toBe(false);
    }
    const refusals = (): ReturnType<Harness['audit']> =>
      (h as Harness).audit().filter((r) => r.type === 'tls.rejected');
    await until(() => refusals().length > 0, 'audit');
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toMatchObject({ code: 'CERT_REVOKED', serial, identity: 'bob' });
  });
});

describe('RejectionAuditLimiter', () => {
  it('records the first refusal, counts repeats, reports the count after the window', () => {
    let t = 0;
    const out: AuditEvent[] = [];
    const l = new RejectionAuditLimiter(
      (e) => out.push(e),
      () => t,
    );
    const ev = { type: 'tls.rejected' as const, code: 'CERT_REVOKED', serial: 'ab' };
    for (let i = 0; i < 4; i++) l.record(ev, '10.0.0.1');
    l.record({ ...ev, serial: 'cd' }, '10.0.0.1');
    expect(out.map((e) => e.serial)).toEqual(['ab', 'cd']);
    t += REJECTION_AUDIT_WINDOW_MS;
    l.record(ev, '10.0.0.1');
    expect(out[2]).toMatchObject({ serial: 'ab', value: 3 });
  });
});
