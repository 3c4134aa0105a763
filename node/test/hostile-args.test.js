'use strict';

// Arguments that change under the addon's feet: getters that answer
// differently on each read, Proxies that log every read, arrays and buffers
// that grow, shrink or are detached by code that runs while a call is
// converting its arguments. The addon must read every JS value once, check
// it, and never touch memory that JS could have taken away. Each test asserts
// the exact outcome: the error thrown, or the exact datagrams that arrive.

const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { bound, createSocket } = require('./helpers');

// The binding itself, to call its entry points with arguments lib/index.js
// would never pass (anyone can require the .node file).
const binding = require(process.env.UVQ_NODE_BINDING ||
  path.join(__dirname, '..', 'build', 'uvq.node'));

async function pair(t) {
  const rx = await bound({ type: 'udp4' }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  t.after(() => Promise.all([rx.close(), tx.close()]));
  return { rx, tx, port: rx.address().port };
}

// What rx receives, as strings: the first count datagrams (waiting up to
// 5 s for them, which a sanitizer build may need) and any that follow
// within 50 ms. With count 0, whatever comes within 100 ms.
function received(rx, count) {
  return new Promise((resolve) => {
    const got = [];
    const finish = () => {
      rx.off('message', onMessage);
      resolve(got.map((m) => m.data.toString('latin1')));
    };
    let timer = setTimeout(finish, count === 0 ? 100 : 5000);
    function onMessage(m) {
      got.push(m);
      if (got.length === count) {
        clearTimeout(timer);
        timer = setTimeout(finish, 50);
      }
    }
    rx.on('message', onMessage);
  });
}

// A value whose getter answers first, then second on every later read.
function flip(first, second) {
  let reads = 0;
  return {
    get reads() { return reads; },
    get() { reads++; return reads === 1 ? first : second; },
  };
}

// A Proxy over target that logs each property read and answers a read of
// the same key differently the second time (the answer from later).
function loggingProxy(target, later = {}) {
  const log = [];
  const proxy = new Proxy(target, {
    get(obj, key, receiver) {
      if (typeof key === 'string') log.push(key);
      const n = log.filter((k) => k === key).length;
      if (n > 1 && Object.prototype.hasOwnProperty.call(later, key)) return later[key];
      return Reflect.get(obj, key, receiver);
    },
  });
  return { proxy, log };
}

test('a data getter that returns 1 buffer, then 20000: read once, one datagram (was a heap overflow)', async (t) => {
  const { rx, tx, port } = await pair(t);
  const data = flip([Buffer.from('a')], Array.from({ length: 20000 }, () => Buffer.from('b')));
  const msg = { get data() { return data.get(); }, address: '127.0.0.1', port };
  const got = received(rx, 1);
  assert.strictEqual(tx.sendBatch([msg]), 1);
  assert.deepStrictEqual(await got, ['a']);
  assert.strictEqual(data.reads, 1);
});

test('a data getter that returns 20000 buffers, then 1: RangeError, nothing sent', async (t) => {
  const { rx, tx, port } = await pair(t);
  const data = flip(Array.from({ length: 20000 }, () => Buffer.from('b')), [Buffer.from('a')]);
  const ok = { data: Buffer.from('x'), address: '127.0.0.1', port };
  const msg = { get data() { return data.get(); }, address: '127.0.0.1', port };
  const got = received(rx, 0);
  assert.throws(() => tx.sendBatch([ok, msg]),
    { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'at most 1024 buffers per message' });
  assert.deepStrictEqual(await got, []);
  assert.strictEqual(data.reads, 1);
});

test('a Proxy message: every field is read exactly once, in order, and later answers are ignored', async (t) => {
  const { rx, tx, port } = await pair(t);
  const { proxy, log } = loggingProxy(
    { data: [Buffer.from('he'), Buffer.from('llo')], address: '127.0.0.1', port, ecn: 1, gsoSize: 0, txtime: 0 },
    { data: Array.from({ length: 5000 }, () => Buffer.alloc(1)), address: 'bogus', port: 0,
      localAddress: 7, ecn: 9, gsoSize: -1, txtime: -1 });
  const got = received(rx, 1);
  assert.strictEqual(tx.sendBatch([proxy]), 1);
  assert.deepStrictEqual(await got, ['hello']);
  assert.deepStrictEqual(log, ['data', 'address', 'port', 'localAddress', 'ecn', 'gsoSize', 'txtime']);
});

test('getters that answer a valid value first and garbage later: the first answer is sent', async (t) => {
  const { rx, tx, port } = await pair(t);
  const fields = {
    address: flip('127.0.0.1', 'not-an-ip'),
    port: flip(port, 0),
    localAddress: flip(undefined, 'x'),
    ecn: flip(2, 4),
    gsoSize: flip(2, 70000),
    txtime: flip(0, -1n),
  };
  const msg = { data: Buffer.from('abcde') };
  for (const [k, f] of Object.entries(fields)) Object.defineProperty(msg, k, { get: () => f.get() });
  const got = received(rx, 3);
  assert.strictEqual(tx.sendBatch([msg]), 1);
  assert.deepStrictEqual(await got, ['ab', 'cd', 'e']);
  for (const [k, f] of Object.entries(fields)) assert.strictEqual(f.reads, 1, k);
});

test('getters that answer garbage first: the exact error, nothing sent', async (t) => {
  const { rx, tx, port } = await pair(t);
  const ok = { data: Buffer.from('x'), address: '127.0.0.1', port };
  const cases = [
    ['data', flip('text', Buffer.from('y')), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }],
    ['address', flip(7, '127.0.0.1'), { name: 'TypeError', message: 'address must be a string' }],
    ['port', flip(0, port), { name: 'RangeError', message: 'port must be >= 1 and <= 65535' }],
    ['localAddress', flip('x', undefined), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }],
    ['ecn', flip(4, 1), { name: 'RangeError', message: 'ecn must be >= 0 and <= 3' }],
    ['gsoSize', flip(65536, 0), { name: 'RangeError', message: 'gsoSize must be >= 0 and <= 65535' }],
    ['txtime', flip(2n ** 64n, 0), { name: 'RangeError', message: 'txtime must fit in 64 unsigned bits' }],
  ];
  const got = received(rx, 0);
  for (const [key, f, error] of cases) {
    const msg = { ...ok };
    Object.defineProperty(msg, key, { get: () => f.get(), enumerable: true });
    assert.throws(() => tx.sendBatch([ok, msg]), error, key);
    assert.strictEqual(f.reads, 1, key);
  }
  assert.deepStrictEqual(await got, []);
  assert.strictEqual(tx.stats().datagramsSent, 0);
});

test('a getter that throws: that exception propagates, nothing sent', async (t) => {
  const { rx, tx, port } = await pair(t);
  const ok = { data: Buffer.from('x'), address: '127.0.0.1', port };
  const got = received(rx, 0);
  for (const key of ['data', 'address', 'port', 'localAddress', 'ecn', 'gsoSize', 'txtime']) {
    const boom = new Error(`boom ${key}`);
    const msg = { ...ok };
    Object.defineProperty(msg, key, { get() { throw boom; } });
    assert.throws(() => tx.sendBatch([ok, msg]), (e) => e === boom, key);
  }
  const boom = new Error('boom element');
  const data = [Buffer.from('a')];
  Object.defineProperty(data, 1, { get() { throw boom; }, enumerable: true });
  assert.throws(() => tx.sendBatch([ok, { ...ok, data }]), (e) => e === boom);
  const list = [ok];
  Object.defineProperty(list, 1, { get() { throw boom; }, enumerable: true });
  assert.throws(() => tx.sendBatch(list), (e) => e === boom);
  const trap = new Proxy({}, { get() { throw boom; } });
  assert.throws(() => tx.sendBatch([ok, trap]), (e) => e === boom);
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  assert.throws(() => tx.sendBatch([ok, proxy]), TypeError);
  assert.deepStrictEqual(await got, []);
  assert.strictEqual(tx.stats().datagramsSent, 0);
});

test('a Proxy over the message array: its length and each element read once', async (t) => {
  const { rx, tx, port } = await pair(t);
  const m = (s) => ({ data: Buffer.from(s), address: '127.0.0.1', port });
  const { proxy, log } = loggingProxy([m('a'), m('b')], { length: 1000, 0: 5, 1: 5 });
  const got = received(rx, 2);
  assert.strictEqual(tx.sendBatch(proxy), 2);
  assert.deepStrictEqual(await got, ['a', 'b']);
  assert.deepStrictEqual(log.filter((k) => k === 'length' || /^\d+$/.test(k)), ['length', '0', '1']);
  // A length that only a Proxy can report.
  for (const [length, error] of [[1025, RangeError], [-1, TypeError], [1.5, TypeError], ['2', TypeError]]) {
    const p = new Proxy([m('a')], { get: (o, k) => (k === 'length' ? length : o[k]) });
    assert.throws(() => tx.sendBatch(p), error, String(length));
  }
  assert.deepStrictEqual(await received(rx, 0), []);
});

test('the message array grows or shrinks while it is read: the count read first holds', async (t) => {
  const { rx, tx, port } = await pair(t);
  const m = (s) => ({ data: Buffer.from(s), address: '127.0.0.1', port });
  const grow = [m('a'), m('b')];
  Object.defineProperty(grow[0], 'address', {
    get() { for (let i = 0; i < 5000; i++) grow.push(m('z')); return '127.0.0.1'; },
  });
  const shrink = [m('c'), m('d')];
  Object.defineProperty(shrink[0], 'address', { get() { shrink.length = 0; return '127.0.0.1'; } });
  const got = received(rx, 4);
  assert.strictEqual(tx.sendBatch(grow), 2);
  assert.strictEqual(await tx.sendBatchAsync(shrink), 2);
  assert.strictEqual(tx.pendingSends, 0);
  assert.deepStrictEqual(await got, ['a', 'b', 'c', 'd']);
});

test('the binding itself: an array that shrinks or grows while read, and a bad token', async (t) => {
  const { rx, tx, port } = await pair(t);
  const m = (s) => ({ data: Buffer.from(s), address: '127.0.0.1', port });
  const shrink = [m('a'), m('b')];
  Object.defineProperty(shrink[0], 'port', { get() { shrink.length = 0; return port; } });
  const got = received(rx, 1);
  assert.throws(() => binding.send(tx._handle, shrink, 1),
    { name: 'TypeError', message: 'each message must be an object' });
  const grow = [m('c')];
  Object.defineProperty(grow[0], 'port', {
    get() { for (let i = 0; i < 3000; i++) grow.push(m('z')); return port; },
  });
  assert.strictEqual(binding.send(tx._handle, grow, 1), 1);
  assert.throws(() => binding.send(tx._handle, [m('e')], 'token'), TypeError);
  assert.throws(() => binding.send(tx._handle, [m('e')]), TypeError);
  assert.throws(() => binding.send(tx._handle, new Proxy([m('e')], {}), 1), TypeError);
  assert.deepStrictEqual(await got, ['c']);
});

test('a data array that changes while read, and Proxies as data', async (t) => {
  const { rx, tx, port } = await pair(t);
  const data = [Buffer.from('he'), Buffer.from('y')];
  Object.defineProperty(data, 0, {
    get() { for (let i = 0; i < 5000; i++) data.push(Buffer.from('!')); return Buffer.from('he'); },
    enumerable: true,
  });
  const got = received(rx, 1);
  assert.strictEqual(tx.sendBatch([{ data, address: '127.0.0.1', port }]), 1);
  const popped = [Buffer.from('x'), Buffer.from('y')];
  Object.defineProperty(popped, 0, { get() { popped.length = 0; return Buffer.from('x'); }, configurable: true });
  assert.throws(() => tx.sendBatch([{ data: popped, address: '127.0.0.1', port }]),
    { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  // N-API does not see through Proxies: neither is an Array or a Uint8Array.
  const msg = (d) => ({ data: d, address: '127.0.0.1', port });
  assert.throws(() => tx.sendBatch([msg(new Proxy([Buffer.from('p')], {}))]), TypeError);
  assert.throws(() => tx.sendBatch([msg([new Proxy(Buffer.from('p'), {})])]), TypeError);
  assert.throws(() => tx.sendBatch([msg(new Proxy(Buffer.from('p'), {}))]), TypeError);
  assert.deepStrictEqual(await got, ['hey']);
});

test('a buffer detached by a later getter: TypeError, nothing sent (no use after free)', async (t) => {
  const { rx, tx, port } = await pair(t);
  const got = received(rx, 0);
  for (const gather of [false, true]) {
    const victim = new Uint8Array(60000).fill(0x61);
    const msgs = [
      { data: gather ? [Buffer.from('x'), victim] : victim, address: '127.0.0.1', port },
      {
        data: Buffer.from('y'), port,
        get address() {
          // Move the bytes to a clone and drop it: the memory is freed.
          structuredClone(victim.buffer, { transfer: [victim.buffer] });
          if (global.gc) global.gc();
          return '127.0.0.1';
        },
      },
    ];
    assert.throws(() => tx.sendBatch(msgs),
      { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: 'message data is a detached buffer' });
    assert.strictEqual(victim.length, 0);
  }
  assert.deepStrictEqual(await got, []);
});

test('a resizable buffer shrunk by a later getter: its length when sent counts', async (t) => {
  const { rx, tx, port } = await pair(t);
  const ab = new ArrayBuffer(60000, { maxByteLength: 1 << 20 });
  const tracking = new Uint8Array(ab).fill(0x62);
  const fixed = new Uint8Array(ab, 0, 60000);
  const shrink = {
    data: Buffer.from('z'), port,
    get address() { ab.resize(3); if (global.gc) global.gc(); return '127.0.0.1'; },
  };
  const got = received(rx, 2);
  assert.strictEqual(tx.sendBatch([{ data: tracking, address: '127.0.0.1', port }, shrink]), 2);
  assert.deepStrictEqual(await got, ['bbb', 'z']);
  ab.resize(60000);
  // A fixed-length view that now ends past the buffer's end is out of
  // bounds: 0 bytes long, as JS sees it.
  const got2 = received(rx, 2);
  assert.strictEqual(tx.sendBatch([{ data: fixed, address: '127.0.0.1', port }, shrink]), 2);
  assert.strictEqual(fixed.length, 0);
  assert.deepStrictEqual(await got2, ['', 'z']);
});

test('numbers out of range: RangeError, never a crash or undefined behaviour', async (t) => {
  const { rx, tx, port } = await pair(t);
  const ok = { data: Buffer.from('x'), address: '127.0.0.1', port };
  const bad = {
    port: [Infinity, -Infinity, NaN, 1e300, -1e300, 2 ** 64, -0, 65536, 1.5],
    ecn: [Infinity, -Infinity, NaN, 1e300, 2 ** 63, -(2 ** 63), 0.5],
    gsoSize: [Infinity, 1e20, -1, 2 ** 32],
    txtime: [Infinity, -Infinity, 1e300, 2 ** 53, -1, 0.5],
  };
  const got = received(rx, 0);
  for (const [key, values] of Object.entries(bad)) {
    for (const v of values) {
      if (key === 'port' && Object.is(v, -0)) continue;
      assert.throws(() => tx.sendBatch([ok, { ...ok, [key]: v }]), RangeError, `${key} ${v}`);
    }
    assert.throws(() => tx.sendBatch([ok, { ...ok, [key]: new Number(1) }]), TypeError, key);
    assert.throws(() => tx.sendBatch([ok, { ...ok, [key]: '1' }]), TypeError, key);
  }
  assert.throws(() => tx.sendBatch([{ ...ok, port: -0 }]), RangeError);
  assert.throws(() => tx.setEcn(Infinity), RangeError);
  assert.throws(() => tx.setEcn(-1e300), RangeError);
  assert.throws(() => tx.setSendBufferSize(1e300), RangeError);
  assert.throws(() => tx.setSendBufferSize(NaN), RangeError);
  assert.deepStrictEqual(await got, []);
  assert.strictEqual(tx.stats().datagramsSent, 0);
});

test('a getter that closes the socket mid-call: ERR_SOCKET_DGRAM_NOT_RUNNING, nothing sent', async (t) => {
  const rx = await bound({ type: 'udp4' }, '127.0.0.1');
  const tx = await bound({ type: 'udp4' }, '127.0.0.1');
  const port = rx.address().port;
  let closed;
  const msgs = [
    { data: Buffer.from('a'), address: '127.0.0.1', port },
    { data: Buffer.from('b'), port, get address() { closed = tx.close(); return '127.0.0.1'; } },
  ];
  const got = received(rx, 0);
  assert.throws(() => tx.sendBatch(msgs), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  await closed;
  assert.deepStrictEqual(await got, []);
  await rx.close();
});

test('a getter that sends on the same socket: the inner batch goes first, both whole', async (t) => {
  const { rx, tx, port } = await pair(t);
  const msgs = [
    { data: Buffer.from('outer1'), address: '127.0.0.1', port },
    {
      data: Buffer.from('outer2'), port,
      get address() {
        assert.strictEqual(tx.sendBatch([{ data: Buffer.from('inner'), address: '127.0.0.1', port }]), 1);
        return '127.0.0.1';
      },
    },
  ];
  const got = received(rx, 3);
  assert.strictEqual(tx.sendBatch(msgs), 2);
  assert.deepStrictEqual(await got, ['inner', 'outer1', 'outer2']);
});

test('createSocket options are read once: a Proxy logs each key read a single time', async (t) => {
  const { proxy, log } = loggingProxy(
    { type: 'udp4', ecn: true, sendBufferSize: 65536, recvBatch: 4, recvSlotSize: 2048, pmtud: 'do' },
    { type: 'udp5', ecn: 'yes', sendBufferSize: 0, recvBatch: 1000, recvSlotSize: -1, pmtud: {} });
  const s = createSocket(proxy);
  t.after(() => s.close());
  await s.bind(0, '127.0.0.1');
  assert.deepStrictEqual([...log].sort(),
    ['ecn', 'pmtud', 'recvBatch', 'recvSlotSize', 'sendBufferSize', 'type']);
  assert.strictEqual(s.getSendBufferSize(), 2 * 65536);
  assert.deepStrictEqual(s.features().filter((f) => f === 'ecn' || f === 'pmtud'), ['ecn', 'pmtud']);
});

test('option getters that answer differently later: the first answer is used', async (t) => {
  const recvBatch = flip(4, 1000);
  const sendBufferSize = flip(65536, 0);
  const type = flip('udp4', 'udp6');
  const o = {};
  Object.defineProperty(o, 'type', { get: () => type.get(), enumerable: true });
  Object.defineProperty(o, 'recvBatch', { get: () => recvBatch.get(), enumerable: true });
  Object.defineProperty(o, 'sendBufferSize', { get: () => sendBufferSize.get(), enumerable: true });
  const s = createSocket(o);
  t.after(() => s.close());
  assert.deepStrictEqual(await s.bind(0, '127.0.0.1'), { address: '127.0.0.1', family: 'IPv4', port: s.address().port });
  assert.strictEqual(s.getSendBufferSize(), 2 * 65536);
  assert.deepStrictEqual([type.reads, recvBatch.reads, sendBufferSize.reads], [1, 1, 1]);
});

test('mode strings must be strings: objects with a changing toString are refused', () => {
  const sneaky = flip('do', 'constructor');
  const mode = { toString: () => sneaky.get() };
  assert.throws(() => createSocket({ type: 'udp4', pmtud: mode }),
    { name: 'TypeError', message: 'options.pmtud must be a boolean or "off", "do", "probe"' });
  const s = createSocket('udp4');
  assert.throws(() => s.setPmtud(mode), { name: 'TypeError', message: 'mode must be "off", "do" or "probe"' });
  assert.strictEqual(sneaky.reads, 0);
  return s.close();
});

test('the binding\'s other entry points refuse values of the wrong kind', async (t) => {
  const s = createSocket('udp4');
  t.after(() => s.close());
  const h = s._handle;
  assert.throws(() => binding.create(4, 5), TypeError);
  assert.throws(() => binding.create(4), TypeError);
  assert.throws(() => binding.create(Infinity, {}), RangeError);
  assert.throws(() => binding.ref(h, 'yes'), TypeError);
  assert.throws(() => binding.ref(h), TypeError);
  assert.throws(() => binding.ref(new Proxy(h, {}), true), TypeError);
  assert.throws(() => binding.set(h, { toString: () => 'ecn' }, 1), TypeError);
  assert.throws(() => binding.set(h, 'ecn', { valueOf: () => 1 }), TypeError);
  assert.throws(() => binding.set(h, 'slots', 1e300, 1), RangeError);
  assert.throws(() => binding.set(h, 'configure', -Infinity), RangeError);
  assert.throws(() => binding.bind(h, { toString: () => '127.0.0.1' }, 0, 0), TypeError);
  assert.throws(() => binding.bind(h, '127.0.0.1', Infinity, 0), RangeError);
  assert.throws(() => binding.bind(h, '127.0.0.1', 0, NaN), RangeError);
  assert.throws(() => binding.address({}), TypeError);
  assert.throws(() => binding.stats(5), TypeError);
  assert.throws(() => binding.features(), TypeError);
  assert.throws(() => binding.close(null), TypeError);
  // The socket is unharmed.
  await s.bind(0, '127.0.0.1');
  assert.strictEqual(s.address().address, '127.0.0.1');
});
