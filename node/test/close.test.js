'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { createSocket, collect, bound } = require('./helpers');

test('close inside a message callback in the middle of a batch', async () => {
  const rx = await bound({ type: 'udp4' }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  const port = rx.address().port;
  let seen = 0;
  const closed = new Promise((resolve) => {
    rx.on('message', () => {
      seen++;
      if (seen === 1) rx.close().then(resolve);
    });
  });
  const msgs = Array.from({ length: 20 }, (_, i) => ({ data: Buffer.from([i]), address: '127.0.0.1', port }));
  assert.strictEqual(tx.sendBatch(msgs), 20);
  await closed;
  // The rest of the batch was already converted when close was called; the
  // addon delivers a batch in one go, so those events still fire.
  assert.ok(seen >= 1 && seen <= 20);
  await tx.close();
});

test('close right after a synchronous send, and before bind', async () => {
  const rx = await bound({ type: 'udp4' }, '127.0.0.1');
  const tx = createSocket('udp4');
  assert.strictEqual(tx.sendBatch([{ data: Buffer.from('hi'), address: '127.0.0.1', port: rx.address().port }]), 1, 'implicit bind');
  const events = [];
  tx.on('close', () => events.push('close'));
  await tx.close();
  assert.deepStrictEqual(events, ['close']);
  const never = createSocket('udp6');
  await never.close();
  await rx.close();
});

test('buffers handed to messages stay valid after the socket is gone', async () => {
  const rx = await bound({ type: 'udp4' }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  const got = collect(rx, 1);
  tx.sendBatch([{ data: Buffer.from('keep me'), address: '127.0.0.1', port: rx.address().port }]);
  const [m] = await got;
  await Promise.all([rx.close(), tx.close()]);
  if (global.gc) global.gc();
  assert.strictEqual(m.data.toString(), 'keep me');
});

test('recvErr: an ICMP port unreachable comes back as an errqueue event', async (t) => {
  const tx = await bound({ type: 'udp4', recvErr: true }, '127.0.0.1');
  const dead = await bound({ type: 'udp4' }, '127.0.0.1');
  const port = dead.address().port;
  await dead.close();
  try {
    if (!tx.features().includes('recvErr')) return t.skip('no IP_RECVERR');
    const ev = new Promise((resolve) => tx.once('errqueue', resolve));
    tx.sendBatch([{ data: Buffer.from('anyone?'), address: '127.0.0.1', port }]);
    const e = await ev;
    assert.strictEqual(e.code, 'ECONNREFUSED');
    assert.strictEqual(e.port, port);
    assert.strictEqual(tx.stats().errqueueEntries, 1);
  } finally {
    await tx.close();
  }
});

test('a worker that exits with its socket open and a datagram pending does not crash', async () => {
  const { Worker } = require('node:worker_threads');
  const code = `
    const { createSocket } = require(${JSON.stringify(require.resolve('..'))});
    (async () => {
      const rx = createSocket('udp4');
      await rx.bind(0, '127.0.0.1');
      const tx = createSocket('udp4');
      rx.once('message', () => {
        tx.sendBatch([{ data: Buffer.alloc(500), address: '127.0.0.1', port: rx.address().port }]);
        process.exit(7);
      });
      tx.sendBatch([{ data: Buffer.from('x'), address: '127.0.0.1', port: rx.address().port }]);
    })();`;
  for (let i = 0; i < 3; i++) {
    const w = new Worker(code, { eval: true });
    const exitCode = await new Promise((resolve, reject) => { w.on('exit', resolve); w.on('error', reject); });
    assert.strictEqual(exitCode, 7);
  }
});
