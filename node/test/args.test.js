'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { createSocket, bound } = require('./helpers');

test('createSocket rejects bad types and unknown or ill-typed options', () => {
  assert.throws(() => createSocket(), TypeError);
  assert.throws(() => createSocket(42), TypeError);
  assert.throws(() => createSocket({ type: 'udp5' }), TypeError);
  assert.throws(() => createSocket({ type: 'udp4', bogus: true }), { name: 'TypeError', message: /unknown option 'bogus'/ });
  assert.throws(() => createSocket({ type: 'udp4', ecn: 'yes' }), TypeError);
  assert.throws(() => createSocket({ type: 'udp4', gro: true, groRaw: true }), TypeError);
  assert.throws(() => createSocket({ type: 'udp4', ipv6Only: true }), TypeError);
  assert.throws(() => createSocket({ type: 'udp4', pmtud: 'sometimes' }), TypeError);
  assert.throws(() => createSocket({ type: 'udp4', sendBufferSize: -1 }), RangeError);
  assert.throws(() => createSocket({ type: 'udp4', recvBatch: 65 }), RangeError);
});

test('bind rejects bad ports and addresses', async () => {
  const s = createSocket('udp4');
  await assert.rejects(s.bind(65536), RangeError);
  await assert.rejects(s.bind(-1), RangeError);
  await assert.rejects(s.bind(1.5), TypeError);
  await assert.rejects(s.bind('80'), TypeError);
  await assert.rejects(s.bind(0, 42), TypeError);
  await assert.rejects(s.bind(0, 'localhost'), TypeError);
  await assert.rejects(s.bind(0, '::1'), TypeError);
  await s.bind(0, '127.0.0.1');
  await assert.rejects(s.bind(0, '127.0.0.1'), { code: 'ERR_SOCKET_ALREADY_BOUND' });
  await s.close();
});

test('sendBatch rejects garbage messages before sending anything', async () => {
  const rx = await bound({ type: 'udp4' }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  const port = rx.address().port;
  const ok = { data: Buffer.from('x'), address: '127.0.0.1', port };
  let received = 0;
  rx.on('message', () => received++);
  try {
    assert.throws(() => tx.sendBatch('nope'), TypeError);
    assert.throws(() => tx.sendBatch([ok, 5]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, data: 'text' }]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, data: [Buffer.alloc(1), {}] }]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, data: new Uint16Array(2) }]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, address: 7 }]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, address: 'not-an-ip' }]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, address: '::1' }]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, port: 0 }]), RangeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, port: 70000 }]), RangeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, port: '1' }]), TypeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, ecn: 4 }]), RangeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, ecn: -1 }]), RangeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, ecn: 1.5 }]), RangeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, gsoSize: 65536 }]), RangeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, txtime: -1n }]), RangeError);
    assert.throws(() => tx.sendBatch([ok, { ...ok, localAddress: 'x' }]), TypeError);
    assert.throws(() => tx.setEcn(4), RangeError);
    assert.throws(() => tx.setEcn('1'), TypeError);
    assert.throws(() => tx.setPmtud('maybe'), TypeError);
    await assert.rejects(tx.sendBatchAsync([ok, { ...ok, port: -5 }]), RangeError);
    // Kernel-level refusals come back as Errors with a code.
    assert.throws(() => tx.sendBatch([{ ...ok, data: Buffer.alloc(70000) }]), { code: 'EMSGSIZE' });
    assert.throws(() => tx.sendBatch([{ ...ok, data: Buffer.alloc(65 * 100), gsoSize: 100 }]), { code: 'EMSGSIZE' });
    assert.strictEqual(tx.sendBatch([]), 0);
    // A refusal after the first message: the ones before it went.
    assert.throws(() => tx.sendBatch([ok, { ...ok, data: Buffer.alloc(70000) }]), { code: 'EMSGSIZE', sent: 1 });
    assert.strictEqual(tx.stats().datagramsSent, 1);
    received = 0;
    await new Promise((r) => setTimeout(r, 50));
    assert.strictEqual(received, 1);
    received = 0;
    await new Promise((r) => setTimeout(r, 50));
    assert.strictEqual(received, 0, 'no message of a rejected batch went out');
    assert.strictEqual(tx.stats().datagramsSent, 1);
    // The socket is still usable.
    assert.strictEqual(tx.sendBatch([ok]), 1);
  } finally {
    await Promise.all([rx.close(), tx.close()]);
  }
});

test('a closed socket refuses further use', async () => {
  const s = await bound({ type: 'udp4' }, '127.0.0.1');
  await s.close();
  await s.close();
  assert.throws(() => s.address(), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  assert.throws(() => s.sendBatch([]), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  await assert.rejects(s.sendBatchAsync([]), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  await assert.rejects(s.bind(0), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
});
