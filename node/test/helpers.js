'use strict';

const { createSocket } = require('..');

// Resolves with the first n 'message' events of sock, or rejects after ms
// with how many had come.
function collect(sock, n, ms = 3000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => {
      sock.off('message', onMessage);
      reject(new Error(`timed out with ${got.length} of ${n} datagrams`));
    }, ms);
    function onMessage(m) {
      got.push(m);
      if (got.length === n) {
        clearTimeout(timer);
        sock.off('message', onMessage);
        resolve(got);
      }
    }
    sock.on('message', onMessage);
  });
}

// Resolves after ms with everything sock received meanwhile.
function settle(sock, ms = 100) {
  return new Promise((resolve) => {
    const got = [];
    const onMessage = (m) => got.push(m);
    sock.on('message', onMessage);
    setTimeout(() => { sock.off('message', onMessage); resolve(got); }, ms);
  });
}

async function bound(options, address) {
  const s = createSocket(options);
  await s.bind(0, address);
  return s;
}

module.exports = { collect, settle, bound, createSocket };
