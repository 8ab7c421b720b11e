// CPU cost of the minimal acknowledging server (ack_server.mjs): posts
// --requests PutRecords bodies like dms_stream's (--records entries of
// --size bytes of data, base64, with a 20-character partition key: about
// 250 KB each) with --concurrency requests in flight over keep-alive
// connections, then reads the server's CPU seconds (utime + stime from
// /proc/<pid>/stat) and prints them per request, per record and per MB.
// Before the timed requests it checks the contract: a body sent in pieces
// that cut the "PartitionKey": member names in two is counted right, every
// answer has FailedRecordCount 0 and one entry per record, /__stats counts
// every request, record and byte, and /__reset zeroes the counters.
//
//   node test/bench/ack_server_cpu.mjs [--server test/bench/ack_server.mjs]
//        [--requests 2000] [--records 500] [--size 340] [--concurrency 4]
//        [--parse]
//
// The driver (this process) and the server share the machine: on a busy
// machine the wall time means little, the server's CPU seconds more.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startAckServer } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SERVER = path.resolve(opt('server', path.join(HERE, 'ack_server.mjs')));
const REQUESTS = Number(opt('requests', 2000));
const RECORDS = Number(opt('records', 500));
const SIZE = Number(opt('size', 340));
const CONC = Number(opt('concurrency', 4));
const PARSE = args.includes('--parse');

/** User and system CPU seconds of a process (utime, stime of /proc/<pid>/stat). */
function cpuOf(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
}

/** A PutRecords body as dms_stream writes it: entries {"Data":..,"PartitionKey":..}. */
function body(variant, n = RECORDS) {
  const parts = [];
  for (let i = 0; i < n; i++) {
    const msg = `{"data":{"id":${variant * n + i}},"metadata":{"operation":"load"}}`.padEnd(SIZE, ' ');
    const key = `2020-01-01T00:${String(variant % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}Z`;
    parts.push(`{"Data":"${Buffer.from(msg).toString('base64')}","PartitionKey":"${key}"}`);
  }
  return Buffer.from(`{"StreamName":"ack","Records":[${parts.join(',')}]}`);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });

/** POST buf to the server in the given pieces (waiting between them); resolves the answer text. */
function post(url, pieces, target = 'Kinesis_20131202.PutRecords', gapMs = 0) {
  const len = pieces.reduce((a, p) => a + p.length, 0);
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target, 'content-length': len },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    (async () => {
      for (const p of pieces) {
        req.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      req.end();
    })();
  });
}

function checkAnswer(a, n) {
  if (a.status !== 200) throw new Error(`status ${a.status}: ${a.text}`);
  const j = JSON.parse(a.text);
  if (j.FailedRecordCount !== 0 || j.Records.length !== n || !j.Records.every((r) => r.SequenceNumber && r.ShardId)) {
    throw new Error(`bad answer for ${n} records: ${a.text.slice(0, 200)}`);
  }
}

const extra = PARSE ? ['--parse'] : [];
const ack = await startAckServer({ script: SERVER, args: extra });
try {
  // ---- the contract
  const small = body(999, 37);
  const marks = [];
  for (let at = small.indexOf('"PartitionKey":'); at >= 0; at = small.indexOf('"PartitionKey":', at + 1)) marks.push(at);
  // cut inside ten member names, one cut 1 byte in, one 14 bytes in, others in between
  const cuts = marks.slice(0, 10).map((m, i) => m + 1 + (i * 13) % 14);
  const pieces = [];
  let from = 0;
  for (const c of cuts) {
    pieces.push(small.subarray(from, c));
    from = c;
  }
  pieces.push(small.subarray(from));
  checkAnswer(await post(ack.url, pieces, undefined, 15), 37);
  checkAnswer(await post(ack.url, [small]), 37);
  let s = await ack.stats();
  if (s.requests !== 2 || s.records !== 74 || s.bytes !== 2 * small.length) throw new Error(`stats after 2 requests: ${JSON.stringify(s)}`);
  const d = await post(ack.url, ['{}'], 'Kinesis_20131202.DescribeStreamSummary');
  if (d.status !== 200 || !JSON.parse(d.text).StreamDescriptionSummary) throw new Error(`DescribeStreamSummary: ${d.text}`);
  await ack.reset();
  s = await ack.stats();
  if (s.requests !== 0 || s.records !== 0) throw new Error(`stats after reset: ${JSON.stringify(s)}`);
  console.log(`contract: ok (a body cut inside member names counted ${74 / 2} records, answers complete, stats and reset)`);

  // ---- the load
  const bodies = Array.from({ length: 8 }, (_, v) => body(v));
  const bytes = bodies[0].length;
  const cpu0 = cpuOf(ack.pid);
  const me0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      const i = next++;
      const a = await post(ack.url, [bodies[i % bodies.length]]);
      if (i % 100 === 0) checkAnswer(a, RECORDS);
      else if (a.status !== 200) throw new Error(`status ${a.status}`);
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = cpuOf(ack.pid);
  const user = cpu1.user - cpu0.user;
  const sys = cpu1.sys - cpu0.sys;
  const cpu = user + sys;
  const me = process.cpuUsage(me0);
  s = await ack.stats();
  if (s.requests !== REQUESTS || s.records !== REQUESTS * RECORDS) throw new Error(`stats: ${JSON.stringify(s)}`);
  const mb = (REQUESTS * bytes) / 1048576;
  console.log(`server ${path.relative(process.cwd(), SERVER)}${PARSE ? ' --parse' : ''}: ${REQUESTS} PutRecords of ${RECORDS} records, `
    + `${(bytes / 1024).toFixed(0)} KB each (${mb.toFixed(0)} MB), ${CONC} in flight (server saw ${s.max_in_flight}), ${wall.toFixed(2)} s`);
  console.log(`server CPU ${cpu.toFixed(2)} s (user ${user.toFixed(2)}, system ${sys.toFixed(2)}): ${((cpu / REQUESTS) * 1e6).toFixed(0)} us per request, `
    + `${((cpu / (REQUESTS * RECORDS)) * 1e9).toFixed(0)} ns per record, ${((cpu / mb) * 1e3).toFixed(2)} ms per MB; `
    + `driver CPU ${((me.user + me.system) / 1e6).toFixed(2)} s`);
} finally {
  agent.destroy();
  ack.stop();
}
