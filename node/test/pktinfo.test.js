'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { collect, bound } = require('./helpers');

test('udp4 wildcard bind reports the local address and interface', async () => {
  const rx = await bound({ type: 'udp4', pktinfo: true }, '0.0.0.0');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  try {
    assert.ok(rx.features().includes('pktinfo'));
    const port = rx.address().port;
    const got = collect(rx, 2);
    tx.sendBatch([
      { data: Buffer.from('a'), address: '127.0.0.1', port },
      { data: Buffer.from('b'), address: '127.0.0.2', port },
    ]);
    const [a, b] = await got;
    assert.strictEqual(a.localAddress, '127.0.0.1');
    assert.strictEqual(b.localAddress, '127.0.0.2');
    assert.ok(a.ifindex > 0, 'ifindex of lo');
    assert.strictEqual(a.ifindex, b.ifindex);
    assert.strictEqual(a.port, tx.address().port);
    assert.strictEqual(a.address, '127.0.0.1');
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});

test('udp6 dual-stack wildcard reports mapped IPv4 and native IPv6 local addresses', async () => {
  const rx = await bound({ type: 'udp6', pktinfo: true }, '::');
  const tx6 = await bound({ type: 'udp6' }, '::1');
  const tx4 = await bound({ type: 'udp4' }, '127.0.0.1');
  try {
    const port = rx.address().port;
    const got = collect(rx, 2);
    tx6.sendBatch([{ data: Buffer.from('6'), address: '::1', port }]);
    await new Promise((r) => setTimeout(r, 20));
    tx4.sendBatch([{ data: Buffer.from('4'), address: '127.0.0.1', port }]);
    const [six, four] = await got;
    assert.strictEqual(six.localAddress, '::1');
    assert.strictEqual(six.address, '::1');
    assert.strictEqual(four.localAddress, '::ffff:127.0.0.1');
    assert.strictEqual(four.address, '::ffff:127.0.0.1');
  } finally {
    await Promise.all([rx.close(), tx6.close(), tx4.close()]);
  }
});

test('a wildcard sender chooses its source address per message', async () => {
  const rx = await bound({ type: 'udp4', pktinfo: true }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '0.0.0.0');
  try {
    assert.ok(tx.features().includes('srcAddr'));
    const port = rx.address().port;
    const got = collect(rx, 2);
    tx.sendBatch([
      { data: Buffer.from('x'), address: '127.0.0.1', port, localAddress: '127.0.0.3' },
      { data: Buffer.from('y'), address: '127.0.0.1', port, localAddress: '127.0.0.4' },
    ]);
    const [x, y] = await got;
    assert.strictEqual(x.address, '127.0.0.3');
    assert.strictEqual(y.address, '127.0.0.4');
    assert.strictEqual(x.port, tx.address().port);
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});
