'use strict';

// uvq's extended UDP socket for Node.js, shaped like node:dgram. The native
// part (src/addon.c) runs on Node's own libuv loop; see README.md.

const { EventEmitter } = require('node:events');
const path = require('node:path');

// UVQ_NODE_BINDING points at another build (e.g. a sanitizer build).
const binding = require(process.env.UVQ_NODE_BINDING ||
  path.join(__dirname, '..', 'build', 'uvq.node'));
const F = binding.flags;

// createSocket() option -> bind flag. Boolean options only.
const FLAG_OPTIONS = {
  ecn: F.RECVECN,
  pktinfo: F.RECVPKTINFO,
  gro: F.GRO,
  groRaw: F.GRO_RAW,
  txtime: F.TXTIME,
  recvErr: F.RECVERR,
  reuseAddr: F.REUSEADDR,
  reusePort: F.REUSEPORT,
  ipv6Only: F.IPV6ONLY,
};
const OTHER_OPTIONS = new Set(['type', 'pmtud', 'sendBufferSize',
  'recvBufferSize', 'recvSlotSize', 'recvBatch']);

const PMTUD_MODES = { off: 0, do: 1, probe: 2 };

// Messages per sendBatch() call (the addon's limit too).
const MAX_BATCH = 1024;

// Bit -> name for features(). Order is the report's order.
const FEATURE_NAMES = [
  ['ipv6Only', F.IPV6ONLY], ['reuseAddr', F.REUSEADDR],
  ['reusePort', F.REUSEPORT], ['recvErr', F.RECVERR],
  ['recvmmsg', F.RECVMMSG], ['ecn', F.RECVECN], ['pmtud', F.PMTUD],
  ['pktinfo', F.RECVPKTINFO], ['gro', F.GRO], ['groRaw', F.GRO_RAW],
  ['txtime', F.TXTIME], ['gso', F.FEATURE_GSO],
  ['sendmmsg', F.FEATURE_SENDMMSG], ['ecnSend', F.FEATURE_ECN_SEND],
  ['srcAddr', F.FEATURE_SRCADDR], ['drops', F.FEATURE_DROPS],
];

function typeError(code, message) {
  const e = new TypeError(message);
  e.code = code;
  return e;
}

function rangeError(code, message) {
  const e = new RangeError(message);
  e.code = code;
  return e;
}

// Copies the options once: type, and every other own enumerable property.
// Validation and later use (bind() applies some) then see the same values,
// whatever a getter or Proxy would answer on a second read.
function readOptions(options) {
  const copy = { type: options.type };
  for (const key of Object.keys(options)) {
    if (key !== 'type') copy[key] = options[key];
  }
  return copy;
}

function parseOptions(options) {
  if (typeof options === 'string') options = { type: options };
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('ERR_INVALID_ARG_TYPE',
      'options must be an object or "udp4" / "udp6"');
  }
  options = readOptions(options);
  const { type } = options;
  if (type !== 'udp4' && type !== 'udp6') {
    throw typeError('ERR_SOCKET_BAD_TYPE', 'type must be "udp4" or "udp6"');
  }
  let flags = 0;
  for (const key of Object.keys(options)) {
    const value = options[key];
    if (Object.prototype.hasOwnProperty.call(FLAG_OPTIONS, key)) {
      if (value === undefined) continue;
      if (typeof value !== 'boolean') {
        throw typeError('ERR_INVALID_ARG_TYPE', `options.${key} must be a boolean`);
      }
      if (value) flags |= FLAG_OPTIONS[key];
    } else if (!OTHER_OPTIONS.has(key)) {
      throw typeError('ERR_INVALID_ARG_VALUE', `unknown option '${key}'`);
    }
  }
  if (options.gro && options.groRaw) {
    throw typeError('ERR_INVALID_ARG_VALUE', 'options.gro and options.groRaw exclude each other');
  }
  if (options.ipv6Only && type !== 'udp6') {
    throw typeError('ERR_INVALID_ARG_VALUE', 'options.ipv6Only needs type "udp6"');
  }
  let pmtud;
  if (options.pmtud !== undefined && options.pmtud !== false) {
    pmtud = options.pmtud === true ? 'probe' : options.pmtud;
    if (typeof pmtud !== 'string' || !Object.prototype.hasOwnProperty.call(PMTUD_MODES, pmtud)) {
      throw typeError('ERR_INVALID_ARG_VALUE',
        'options.pmtud must be a boolean or "off", "do", "probe"');
    }
  }
  for (const key of ['sendBufferSize', 'recvBufferSize']) {
    const v = options[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v)) throw typeError('ERR_INVALID_ARG_TYPE', `options.${key} must be an integer`);
    if (v < 1 || v > 0x7fffffff) throw rangeError('ERR_OUT_OF_RANGE', `options.${key} is out of range`);
  }
  for (const [key, max] of [['recvSlotSize', 65536], ['recvBatch', 64]]) {
    const v = options[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v)) throw typeError('ERR_INVALID_ARG_TYPE', `options.${key} must be an integer`);
    if (v < 1 || v > max) throw rangeError('ERR_OUT_OF_RANGE', `options.${key} must be 1..${max}`);
  }
  return { type, flags, pmtud, options };
}

// Copies the message list once, reading its length and each element a
// single time, so that the addon and _send() count the same messages even
// if the list is a Proxy or a getter grows or shrinks it during the send.
function readMessages(messages) {
  if (!Array.isArray(messages)) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'messages must be an array');
  }
  const n = messages.length;
  // Only a Proxy can report a length that is not an array length.
  if (!Number.isInteger(n) || n < 0) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'messages.length must be an integer >= 0');
  }
  if (n > MAX_BATCH) throw rangeError('ERR_OUT_OF_RANGE', `at most ${MAX_BATCH} messages per batch`);
  const list = new Array(n);
  for (let i = 0; i < n; i++) list[i] = messages[i];
  return list;
}

function validatePort(port) {
  if (!Number.isInteger(port)) throw typeError('ERR_INVALID_ARG_TYPE', 'port must be an integer');
  if (port < 0 || port > 65535) throw rangeError('ERR_SOCKET_BAD_PORT', 'port must be >= 0 and <= 65535');
}

class Socket extends EventEmitter {
  constructor(opts) {
    super();
    const parsed = parseOptions(opts);
    this.type = parsed.type;
    this._flags = parsed.flags;
    this._pmtud = parsed.pmtud;
    this._options = parsed.options;
    this._handle = binding.create(this.type === 'udp6' ? 6 : 4, this);
    this._state = 'new'; // new -> binding -> bound -> closing -> closed
    this._nextToken = 1;
    this._pending = new Map(); // token -> { resolve, reject, sent } or null
    this._closePromise = null;
    this._closeResolve = null;
    const o = parsed.options;
    if (o.sendBufferSize !== undefined) binding.set(this._handle, 'sndbuf', o.sendBufferSize);
    if (o.recvBufferSize !== undefined) binding.set(this._handle, 'rcvbuf', o.recvBufferSize);
  }

  _checkOpen() {
    if (this._state === 'closing' || this._state === 'closed') {
      const e = new Error('the socket is closed');
      e.code = 'ERR_SOCKET_DGRAM_NOT_RUNNING';
      throw e;
    }
  }

  bind(port = 0, address) {
    try {
      this._checkOpen();
      validatePort(port);
      if (address === undefined) address = this.type === 'udp6' ? '::' : '0.0.0.0';
      if (typeof address !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'address must be a string');
      if (this._state !== 'new') {
        const e = new Error('the socket is already bound');
        e.code = 'ERR_SOCKET_ALREADY_BOUND';
        throw e;
      }
      const o = this._options;
      if (o.recvSlotSize !== undefined || o.recvBatch !== undefined) {
        binding.set(this._handle, 'slots', o.recvSlotSize || 0, o.recvBatch || 0);
      }
      binding.bind(this._handle, address, port, this._flags);
      if (this._pmtud !== undefined) binding.set(this._handle, 'pmtud', PMTUD_MODES[this._pmtud]);
      this._state = 'bound';
    } catch (err) {
      return Promise.reject(err);
    }
    const addr = this.address();
    process.nextTick(() => this.emit('listening'));
    return Promise.resolve(addr);
  }

  address() {
    this._checkOpen();
    return binding.address(this._handle);
  }

  features() {
    this._checkOpen();
    const bits = binding.features(this._handle);
    return FEATURE_NAMES.filter(([, bit]) => bits & bit).map(([name]) => name);
  }

  stats() {
    this._checkOpen();
    return binding.stats(this._handle);
  }

  setEcn(codepoint) {
    this._checkOpen();
    binding.set(this._handle, 'ecn', codepoint);
  }

  setPmtud(mode) {
    this._checkOpen();
    if (typeof mode !== 'string' || !Object.prototype.hasOwnProperty.call(PMTUD_MODES, mode)) {
      throw typeError('ERR_INVALID_ARG_VALUE', 'mode must be "off", "do" or "probe"');
    }
    binding.set(this._handle, 'pmtud', PMTUD_MODES[mode]);
  }

  setSendBufferSize(size) { this._checkOpen(); binding.set(this._handle, 'sndbuf', size); }
  getSendBufferSize() { this._checkOpen(); return binding.set(this._handle, 'sndbuf', 0); }
  setRecvBufferSize(size) { this._checkOpen(); binding.set(this._handle, 'rcvbuf', size); }
  getRecvBufferSize() { this._checkOpen(); return binding.set(this._handle, 'rcvbuf', 0); }

  // Sends what the kernel takes now and returns that count; the rest is
  // queued in order and 'drain' follows once nothing is queued any more.
  sendBatch(messages) {
    this._checkOpen();
    return this._send(readMessages(messages), null);
  }

  // Like sendBatch(), but resolves with the number of messages once all have
  // gone, or rejects (err.sent says how many did).
  sendBatchAsync(messages) {
    try {
      this._checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const list = readMessages(messages);
      const n = this._send(list, { resolve, reject });
      if (n === list.length) resolve(n);
    });
  }

  get pendingSends() { return this._pending.size; }

  // list: a copy made by readMessages().
  _send(list, waiter) {
    if (this._state === 'new') {
      // Sending first binds to the wildcard address, like node:dgram.
      binding.bind(this._handle, this.type === 'udp6' ? '::' : '0.0.0.0', 0, this._flags);
      this._state = 'bound';
    }
    const token = this._nextToken++;
    const n = binding.send(this._handle, list, token);
    if (n < list.length) this._pending.set(token, waiter);
    return n;
  }

  close() {
    if (this._closePromise) return this._closePromise;
    this._closePromise = new Promise((resolve) => { this._closeResolve = resolve; });
    this._state = 'closing';
    binding.close(this._handle);
    return this._closePromise;
  }

  ref() { binding.ref(this._handle, true); return this; }
  unref() { binding.ref(this._handle, false); return this; }

  // ---- called from the addon ----

  _onmessages(list) {
    for (let i = 0; i < list.length; i++) this.emit('message', list[i]);
  }

  _onerror(err) {
    this.emit('error', err);
  }

  _onerrqueue(info) {
    this.emit('errqueue', info);
  }

  _onsent(token, err, sent) {
    const waiter = this._pending.get(token);
    this._pending.delete(token);
    if (err) {
      err.sent = sent;
      if (waiter) waiter.reject(err);
      else if (err.code !== 'ECANCELED') this.emit('error', err);
    } else if (waiter) {
      waiter.resolve(sent);
    }
    if (this._pending.size === 0 && this._state === 'bound') this.emit('drain');
  }

  _onclose() {
    this._state = 'closed';
    this.emit('close');
    this._closeResolve();
  }
}

function createSocket(options, onMessage) {
  const s = new Socket(options);
  if (typeof onMessage === 'function') s.on('message', onMessage);
  return s;
}

module.exports = { createSocket, Socket, version: binding.version };
