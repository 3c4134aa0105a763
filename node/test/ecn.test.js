'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { collect, bound } = require('./helpers');

for (const [type, ip] of [['udp4', '127.0.0.1'], ['udp6', '::1']]) {
  test(`${type}: per-message ECN arrives as sent, and the handle default applies to the rest`, async () => {
    const rx = await bound({ type, ecn: true }, ip);
    const tx = await bound({ type }, ip);
    try {
      assert.ok(rx.features().includes('ecn'), 'RECVECN in effect');
      assert.ok(tx.features().includes('ecnSend'), 'per-message ECN in effect');
      const port = rx.address().port;
      const msgs = [0, 1, 2, 3].map((ecn) => ({ data: Buffer.from([ecn]), address: ip, port, ecn }));
      const got = collect(rx, 4);
      assert.strictEqual(tx.sendBatch(msgs), 4);
      for (const m of await got) assert.strictEqual(m.ecn, m.data[0]);

      tx.setEcn(1);
      const got2 = collect(rx, 2);
      assert.strictEqual(tx.sendBatch([
        { data: Buffer.from('default'), address: ip, port },
        { data: Buffer.from('override'), address: ip, port, ecn: 2 },
      ]), 2);
      const [a, b] = await got2;
      assert.deepStrictEqual([a.data.toString(), a.ecn], ['default', 1]);
      assert.deepStrictEqual([b.data.toString(), b.ecn], ['override', 2]);

      const st = rx.stats();
      assert.deepStrictEqual(st.ecnReceived, [1, 2, 2, 1]);
      assert.strictEqual(st.datagramsReceived, 6);
      assert.strictEqual(tx.stats().datagramsSent, 6);
    } finally {
      await Promise.all([rx.close(), tx.close()]);
    }
  });
}

test('ECN is the same on every datagram of a GSO message', async () => {
  const rx = await bound({ type: 'udp4', ecn: true }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  try {
    const port = rx.address().port;
    const got = collect(rx, 3);
    tx.sendBatch([{ data: Buffer.alloc(2500, 7), address: '127.0.0.1', port, gsoSize: 1000, ecn: 3 }]);
    const msgs = await got;
    assert.deepStrictEqual(msgs.map((m) => [m.data.length, m.ecn]), [[1000, 3], [1000, 3], [500, 3]]);
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});
