'use strict';

// node:dgram vs the uvq addon on loopback: 1200-byte datagrams, sender and
// receiver in separate processes, every run in fresh processes, modes
// interleaved, median of 5. Reports goodput at the receiver and CPU time of
// both processes (process.cpuUsage) per GB received.
//
//   node bench/dgram-vs-uvq.js [--runs 5] [--seconds 2]
//
// Writes bench/results.json and bench/results.md. Loopback never pushes
// back on UDP senders, so every mode sends flat out and the receiver's
// socket buffer overflows; goodput is what the receiver really got, and the
// sender's wasted work is in the CPU figure.

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SIZE = 1200;
const MODES = {
  dgram: 'node:dgram, one send() per datagram, 256 in flight',
  'uvq-batch': 'uvq sendBatch of 64 plain 1200-byte messages; receiver without GRO',
  'uvq-gso-gro': 'uvq sendBatch of 16 GSO messages x 40 segments; receiver with groRaw',
};

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

// ---- child: receiver ----

async function receiver(mode) {
  let bytes = 0;
  let datagrams = 0;
  let sock;
  if (mode === 'dgram') {
    const dgram = require('node:dgram');
    sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    sock.on('message', (m) => { bytes += m.length; datagrams++; });
    await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  } else {
    const { createSocket } = require('..');
    sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, groRaw: mode === 'uvq-gso-gro' });
    sock.on('message', (m) => {
      bytes += m.data.length;
      datagrams += m.segmentSize ? Math.ceil(m.data.length / m.segmentSize) : 1;
    });
    await sock.bind(0, '127.0.0.1');
  }
  let start;
  process.on('message', async (msg) => {
    if (msg === 'start') {
      bytes = 0; datagrams = 0;
      start = { t: process.hrtime.bigint(), cpu: process.cpuUsage() };
    } else if (msg === 'stop') {
      const seconds = Number(process.hrtime.bigint() - start.t) / 1e9;
      const cpu = process.cpuUsage(start.cpu);
      const extra = mode === 'dgram' ? {} : { kernelDrops: sock.stats().kernelDrops };
      process.send({ bytes, datagrams, seconds, cpuUs: cpu.user + cpu.system, ...extra });
      if (mode === 'dgram') sock.close(); else await sock.close();
      process.disconnect();
    }
  });
  process.send({ port: sock.address().port });
}

// ---- child: sender ----

async function sender(mode, port, seconds) {
  const deadline = Date.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  let sent = 0;
  const payload = Buffer.alloc(SIZE, 0x5a);
  if (mode === 'dgram') {
    const dgram = require('node:dgram');
    const sock = dgram.createSocket('udp4');
    await new Promise((r) => sock.bind(0, '127.0.0.1', r));
    await new Promise((resolve) => {
      let inflight = 0;
      const pump = () => {
        while (inflight < 256 && Date.now() < deadline) {
          inflight++;
          sock.send(payload, port, '127.0.0.1', () => { inflight--; sent += SIZE; pump(); });
        }
        if (inflight === 0) resolve();
      };
      pump();
    });
    sock.close();
  } else {
    const { createSocket } = require('..');
    const sock = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    await sock.bind(0, '127.0.0.1');
    let batch;
    if (mode === 'uvq-gso-gro') {
      const big = Buffer.alloc(SIZE * 40, 0x5a);
      batch = Array.from({ length: 16 }, () => ({ data: big, address: '127.0.0.1', port, gsoSize: SIZE }));
    } else {
      batch = Array.from({ length: 64 }, () => ({ data: payload, address: '127.0.0.1', port }));
    }
    const perMsg = batch[0].data.length;
    await new Promise((resolve) => {
      const pump = () => {
        // Send for a few ms, then yield to the loop so 'drain' and timers run.
        const until = Date.now() + 5;
        while (Date.now() < until) {
          const n = sock.sendBatch(batch);
          sent += n * perMsg;
          if (n < batch.length) {
            sent += (batch.length - n) * perMsg; // queued, goes before 'drain'
            sock.once('drain', () => (Date.now() < deadline ? pump() : resolve()));
            return;
          }
        }
        if (Date.now() < deadline) setImmediate(pump); else resolve();
      };
      pump();
    });
    await sock.close();
  }
  const cpu = process.cpuUsage(cpu0);
  process.send({ sentBytes: sent, cpuUs: cpu.user + cpu.system });
  process.disconnect();
}

// ---- parent ----

function once(child, pred) {
  return new Promise((resolve, reject) => {
    const onMsg = (m) => { if (pred(m)) { child.off('message', onMsg); resolve(m); } };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

async function runOnce(mode, seconds) {
  const rx = fork(__filename, ['--child', 'rx', mode]);
  const { port } = await once(rx, (m) => m.port);
  rx.send('start');
  const tx = fork(__filename, ['--child', 'tx', mode, String(port), String(seconds)]);
  const txr = await once(tx, (m) => m.sentBytes !== undefined);
  await new Promise((r) => setTimeout(r, 100)); // let the queue drain
  rx.send('stop');
  const rxr = await once(rx, (m) => m.bytes !== undefined);
  const gb = rxr.bytes / 1e9;
  return {
    mode,
    goodputMbps: (rxr.bytes * 8) / rxr.seconds / 1e6,
    datagramsPerSec: rxr.datagrams / rxr.seconds,
    cpuSecPerGB: gb > 0 ? (txr.cpuUs + rxr.cpuUs) / 1e6 / gb : null,
    rxCpuSecPerGB: gb > 0 ? rxr.cpuUs / 1e6 / gb : null,
    txCpuSecPerGB: gb > 0 ? txr.cpuUs / 1e6 / gb : null,
    deliveredRatio: txr.sentBytes > 0 ? rxr.bytes / txr.sentBytes : null,
    kernelDrops: rxr.kernelDrops,
  };
}

function median(xs) {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const runs = arg('--runs', 5);
  const seconds = arg('--seconds', 2);
  const machine = {
    cpu: os.cpus()[0] ? os.cpus()[0].model : 'unknown',
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    uvq: require('..').version,
    loadavgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    note: 'shared machine: other jobs use the same 2 cores, so numbers are noisy; loopback only',
  };
  const all = [];
  for (let r = 0; r < runs; r++) {
    for (const mode of Object.keys(MODES)) {
      const res = await runOnce(mode, seconds);
      all.push({ run: r, ...res });
      process.stderr.write(`run ${r} ${mode}: ${res.goodputMbps.toFixed(0)} Mbit/s, ` +
        `${res.cpuSecPerGB === null ? '-' : res.cpuSecPerGB.toFixed(2)} CPU s/GB\n`);
    }
  }
  const summary = {};
  for (const mode of Object.keys(MODES)) {
    const rs = all.filter((x) => x.mode === mode);
    summary[mode] = {};
    for (const k of ['goodputMbps', 'datagramsPerSec', 'cpuSecPerGB', 'rxCpuSecPerGB', 'txCpuSecPerGB', 'deliveredRatio']) {
      summary[mode][k] = median(rs.map((x) => x[k]));
    }
  }
  const out = { date: new Date().toISOString(), datagramSize: SIZE, secondsPerRun: seconds, runs, machine, modes: MODES, summary, all };
  fs.writeFileSync(path.join(__dirname, 'results.json'), JSON.stringify(out, null, 2) + '\n');

  const f = (x, d = 0) => (x === null || x === undefined ? '-' : x.toFixed(d));
  let md = '# node:dgram vs uvq on loopback\n\n';
  md += `${SIZE}-byte datagrams, ${seconds} s per run, median of ${runs} interleaved runs, sender and receiver in separate fresh processes.\n\n`;
  md += '| mode | goodput Mbit/s | datagrams/s | CPU s per GB (tx+rx) | rx CPU s/GB | tx CPU s/GB | delivered |\n|---|---|---|---|---|---|---|\n';
  for (const mode of Object.keys(MODES)) {
    const s = summary[mode];
    md += `| ${mode} | ${f(s.goodputMbps)} | ${f(s.datagramsPerSec)} | ${f(s.cpuSecPerGB, 2)} | ${f(s.rxCpuSecPerGB, 2)} | ${f(s.txCpuSecPerGB, 2)} | ${f(s.deliveredRatio * 100, 0)}% |\n`;
  }
  md += '\nModes:\n\n';
  for (const [k, v] of Object.entries(MODES)) md += `- \`${k}\`: ${v}\n`;
  md += `\nMachine: ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, Node ${machine.node}, uvq ${machine.uvq}; load average at start ${machine.loadavgAtStart.join(' ')}.\n`;
  md += `${machine.note}. "delivered" is bytes received over bytes handed to the kernel: loopback does not push back on UDP senders, so the receiver's queue overflows and the rest is dropped.\n`;
  fs.writeFileSync(path.join(__dirname, 'results.md'), md);
  process.stdout.write(md);
}

if (process.argv[2] === '--child') {
  const [, , , role, mode, port, seconds] = process.argv;
  if (role === 'rx') receiver(mode);
  else sender(mode, Number(port), Number(seconds));
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
