'use strict';

// Backpressure needs a socket buffer that really fills. On plain loopback
// the kernel frees a UDP skb's send-buffer charge as soon as lo takes it, so
// sends never block; like the C suite, we run the scenario in a private
// network namespace whose lo has a slow tbf qdisc that holds packets.

const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const fixture = path.join(__dirname, 'fixtures', 'slow-net.js');
const setup = 'ip link set lo up && tc qdisc add dev lo root tbf rate 20mbit burst 1600 latency 60s';

function runSlowNet(scenario) {
  // The marker line tells a namespace that could not be made (a skip) from
  // a fixture that failed or died in it (a failure).
  const r = spawnSync('unshare', ['-rn', 'sh', '-c',
    `${setup} && echo namespace-ready && exec "$0" --expose-gc "$1" "$2"`, process.execPath, fixture, scenario],
  { encoding: 'utf8', timeout: 30000 });
  if (r.error || !r.stdout.startsWith('namespace-ready\n')) {
    return { skip: `cannot make a namespace with a tbf qdisc on lo: ${r.error ? r.error.message : r.stderr.trim()}` };
  }
  assert.strictEqual(r.signal, null, `fixture died: ${r.signal} ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop();
  assert.ok(last.startsWith('{'), `the fixture printed no result (exit ${r.status}): ${r.stderr}`);
  const out = JSON.parse(last);
  assert.strictEqual(out.failed, undefined, out.failed);
  assert.strictEqual(r.status, 0, r.stderr);
  return out;
}

test('a full send buffer: sendBatch returns a prefix, the rest follows after drain, nothing lost', (t) => {
  const r = runSlowNet('backpressure');
  if (r.skip) return t.skip(r.skip);
  assert.ok(r.first > 0 && r.first < 300, `first batch sent ${r.first} of 300 at once`);
  assert.strictEqual(r.second, 0, 'second batch queues behind the first');
  assert.strictEqual(r.pendingAfter, 2);
  assert.ok(r.eagain >= 1);
  assert.strictEqual(r.drains, 1);
  assert.deepStrictEqual(r.events, [['drain', 0, 350]]);
  assert.strictEqual(r.received, 350);
  assert.ok(r.inOrder, 'datagrams arrive in order');
  assert.strictEqual(r.datagramsSent, 350);
});

test('close with sends queued: sendBatchAsync rejects with ECANCELED, no crash, no drain', (t) => {
  const r = runSlowNet('close-pending');
  if (r.skip) return t.skip(r.skip);
  assert.ok(r.rejection, 'the promise rejected');
  assert.strictEqual(r.rejection.code, 'ECANCELED');
  assert.ok(r.rejection.isError);
  assert.ok(r.rejection.sent >= 0 && r.rejection.sent < 300);
  assert.strictEqual(r.plain, 0);
  assert.strictEqual(r.pendingBefore, 2);
  assert.strictEqual(r.pendingAfter, 0);
  assert.strictEqual(r.errors, 0, 'ECANCELED of a plain sendBatch is not an error event');
  assert.strictEqual(r.drains, 0);
});

test('the queued rest is sent as it was: Buffers rewritten, detached or shrunk after sendBatch do not matter', (t) => {
  const r = runSlowNet('queued-payloads');
  if (r.skip) return t.skip(r.skip);
  assert.ok(r.first > 0 && r.first < 300, `first batch sent ${r.first} of 300 at once`);
  assert.strictEqual(r.drains, 1);
  assert.strictEqual(r.received, 300);
  assert.strictEqual(r.intact, 300, 'every datagram carries its original bytes, in order');
});
