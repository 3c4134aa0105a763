'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { collect, settle, bound } = require('./helpers');

function payload(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

test('a GSO send arrives as N datagrams at a plain receiver', async () => {
  const rx = await bound({ type: 'udp4' }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  try {
    const port = rx.address().port;
    const data = payload(10 * 1200 + 300);
    const got = collect(rx, 11);
    // Two buffers, split across a segment boundary on purpose.
    assert.strictEqual(tx.sendBatch([{ data: [data.subarray(0, 1900), data.subarray(1900)], address: '127.0.0.1', port, gsoSize: 1200 }]), 1);
    const msgs = await got;
    assert.deepStrictEqual(msgs.map((m) => m.data.length), [...Array(10).fill(1200), 300]);
    assert.ok(msgs.every((m) => m.segmentSize === 0));
    assert.deepStrictEqual(Buffer.concat(msgs.map((m) => m.data)), data);
    assert.strictEqual((await settle(rx, 50)).length, 0, 'nothing more');
    const st = tx.stats();
    assert.strictEqual(st.datagramsSent, 11);
    if (tx.features().includes('gso')) {
      assert.deepStrictEqual([st.gsoSends, st.gsoSegments, st.gsoFallbacks], [1, 11, 0]);
    } else {
      assert.strictEqual(st.gsoFallbacks, 1);
    }
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});

test('groRaw: a GSO send arrives as one super-packet with segmentSize', async (t) => {
  const rx = await bound({ type: 'udp4', groRaw: true }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  try {
    if (!rx.features().includes('groRaw') || !tx.features().includes('gso')) {
      t.skip('kernel lacks UDP GRO or GSO');
      return;
    }
    const port = rx.address().port;
    const data = payload(8 * 1200 + 17);
    const got = collect(rx, 1);
    tx.sendBatch([{ data, address: '127.0.0.1', port, gsoSize: 1200 }]);
    const [m] = await got;
    assert.strictEqual(m.segmentSize, 1200);
    assert.deepStrictEqual(m.data, data);
    assert.strictEqual((await settle(rx, 50)).length, 0);
    const st = rx.stats();
    assert.deepStrictEqual([st.groPackets, st.groSegments, st.datagramsReceived], [1, 9, 9]);
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});

test('gro: uvq splits the super-packet, one message per segment', async (t) => {
  const rx = await bound({ type: 'udp6', gro: true }, '::1');
  const tx = await bound({ type: 'udp6' }, '::1');
  try {
    if (!rx.features().includes('gro') || !tx.features().includes('gso')) {
      t.skip('kernel lacks UDP GRO or GSO');
      return;
    }
    const port = rx.address().port;
    const data = payload(4 * 1000);
    const got = collect(rx, 4);
    tx.sendBatch([{ data, address: '::1', port, gsoSize: 1000 }]);
    const msgs = await got;
    assert.deepStrictEqual(msgs.map((m) => [m.data.length, m.segmentSize]), Array(4).fill([1000, 1000]));
    assert.deepStrictEqual(Buffer.concat(msgs.map((m) => m.data)), data);
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});

test('many messages in one batch keep their order and payloads', async () => {
  const rx = await bound({ type: 'udp4', recvBufferSize: 4 << 20 }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  try {
    const port = rx.address().port;
    const msgs = [];
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(100 + i);
      b.writeUInt32BE(i);
      msgs.push({ data: b, address: '127.0.0.1', port });
    }
    const got = collect(rx, 200);
    assert.strictEqual(tx.sendBatch(msgs), 200);
    const recv = await got;
    assert.deepStrictEqual(recv.map((m) => m.data.readUInt32BE(0)), msgs.map((_, i) => i));
    assert.deepStrictEqual(recv.map((m) => m.data.length), msgs.map((m) => m.data.length));
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});
