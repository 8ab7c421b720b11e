// CPU cost of the minimal acknowledging servers, the C one (ack_server.c,
// compiled here with cc) and the Node one (ack_server.mjs), side by side:
// for each server in --server (a comma-separated list of 'c', 'node' or
// paths: .mjs/.js run with node, .c compiled, anything else executed) it
// checks the contract, then posts --requests PutRecords bodies like
// dms_stream's (--records entries of --size bytes of data, base64, with a
// 20-character partition key: about 250 KB each) with --concurrency
// requests in flight over keep-alive connections, and reads the server's CPU
// (the nanosecond run time of all its threads from
// /proc/<pid>/task/*/schedstat; utime + stime of /proc/<pid>/stat in clock
// ticks too) per request, per record and per MB. With --rounds N the
// servers take turns N times; the table shows every run and each server's
// best.
//
// The contract checked before the timed requests, on every server:
//  - a body sent in pieces that cut the "PartitionKey": member names in two
//    is counted right, and every answer has FailedRecordCount 0 and one
//    entry per record; /__stats counts every request, record and byte, and
//    /__reset zeroes the counters; DescribeStreamSummary is answered;
//  - on a raw socket, in pieces that cut a head, its empty line, a
//    chunk-size line and member names: pipelined requests (Content-Length
//    and chunked PutRecords, ListShards, an unknown target, a
//    DescribeStreamSummary with "Connection: close") are answered in order
//    and the connection is closed after the last; "Expect: 100-continue"
//    gets its interim answer before the body is sent; an HTTP/1.0 request is
//    answered and closed; a malformed head gets 400 and a close; by_target
//    counts each target.
//
//   node test/bench/ack_server_cpu.mjs [--server c,node] [--rounds 1]
//        [--requests 2000] [--records 500] [--size 340] [--concurrency 4]
//        [--parse]
// --parse is passed to the Node server only (the C one has no such mode).
//
// The driver (this process) and the servers share the machine: on a busy
// machine the wall time means little, the servers' CPU seconds more.

import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { startAckServer } from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SERVERS = opt('server', 'c,node').split(',').filter(Boolean);
const ROUNDS = Number(opt('rounds', 1));
const REQUESTS = Number(opt('requests', 2000));
const RECORDS = Number(opt('records', 500));
const SIZE = Number(opt('size', 340));
const CONC = Number(opt('concurrency', 4));
const PARSE = args.includes('--parse');

const isNode = (server) => server === 'node' || /\.(mjs|js)$/.test(server);

/**
 * CPU of a process: user and system seconds (clock ticks of /proc/<pid>/stat),
 * and the run time in seconds of all its threads (nanoseconds, the first field
 * of /proc/<pid>/task/<tid>/schedstat: Node has helper threads, GC among them).
 */
function cpuOf(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  let run = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      run += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
    } catch (err) {
      if (err.code !== 'ENOENT') run = NaN; /* no schedstat: the tick counts only; ENOENT: the thread ended */
    }
  }
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100, run };
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

/** Positions of the "PartitionKey": member names in buf. */
function marksOf(buf) {
  const marks = [];
  for (let at = buf.indexOf('"PartitionKey":'); at >= 0; at = buf.indexOf('"PartitionKey":', at + 1)) marks.push(at);
  return marks;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POST buf to the server in the given pieces (waiting between them); resolves the answer text. */
function post(agent, url, pieces, target = 'Kinesis_20131202.PutRecords', gapMs = 0) {
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
        if (gapMs) await sleep(gapMs);
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

/**
 * rawExchange: connect to url, write the pieces (gapMs apart; a function
 * piece is awaited with the bytes received so far instead), read until the
 * server closes or timeoutMs; resolves {data, closed}.
 */
function rawExchange(url, pieces, gapMs = 15, timeoutMs = 3000) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: hostname, port: Number(port), noDelay: true });
    const got = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(got), closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => got.push(d));
    sock.on('end', () => finish(true));
    sock.on('error', (err) => (done ? null : reject(err)));
    sock.on('connect', async () => {
      try {
        for (const p of pieces) {
          if (typeof p === 'function') await p(() => Buffer.concat(got));
          else {
            sock.write(p);
            await sleep(gapMs);
          }
        }
      } catch (err) {
        done = true;
        sock.destroy();
        reject(err);
      }
    });
  });
}

/** parseAnswers: the HTTP answers in buf, in order: [{status, headers, text}] (1xx answers have no body). */
function parseAnswers(buf) {
  const out = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) throw new Error(`incomplete answer head: ${buf.toString('latin1', off, off + 80)}`);
    const lines = buf.toString('latin1', off, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${lines[0]}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    const status = Number(m[1]);
    const len = status < 200 ? 0 : Number(headers['content-length']);
    if (end + 4 + len > buf.length) throw new Error(`incomplete answer body (status ${status})`);
    out.push({ status, headers, text: buf.toString('utf8', end + 4, end + 4 + len) });
    off = end + 4 + len;
  }
  return out;
}

/** cutAt: buf cut at the given ascending positions. */
function cutAt(buf, cuts) {
  const pieces = [];
  let from = 0;
  for (const c of cuts) {
    pieces.push(buf.subarray(from, c));
    from = c;
  }
  pieces.push(buf.subarray(from));
  return pieces;
}

/** checkRaw: the contract on raw sockets (pipelining, chunked, 100-continue, close, HTTP/1.0, 400). */
async function checkRaw(ack) {
  await ack.reset();
  const b3 = body(101, 3);
  const b5 = body(102, 5);
  const putHead = (extra) => `POST / HTTP/1.1\r\nHost: ack\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\n${extra}\r\n`;
  // the chunked body in three chunks, the first cut inside the second member name, with an extension
  const c1 = marksOf(b5)[1] + 6;
  const c2 = marksOf(b5)[3] + 2;
  const chunked = Buffer.concat([
    Buffer.from(`${c1.toString(16)};ext=1\r\n`), b5.subarray(0, c1), Buffer.from('\r\n'),
    Buffer.from(`${(c2 - c1).toString(16)}\r\n`), b5.subarray(c1, c2), Buffer.from('\r\n'),
    Buffer.from(`${(b5.length - c2).toString(16).toUpperCase()}\r\n`), b5.subarray(c2), Buffer.from('\r\n0\r\nX-Trailer: 1\r\n\r\n'),
  ]);
  const stream = Buffer.concat([
    Buffer.from(putHead(`Content-Length: ${b3.length}\r\n`)), b3,
    Buffer.from(putHead('Transfer-Encoding: chunked\r\n')), chunked,
    Buffer.from('POST / HTTP/1.1\r\nX-Amz-Target: Kinesis_20131202.ListShards\r\nContent-Length: 2\r\n\r\n{}'),
    Buffer.from('POST / HTTP/1.1\r\nX-Amz-Target: Kinesis_20131202.NoSuchOperation\r\nContent-Length: 0\r\n\r\n'),
    Buffer.from('POST / HTTP/1.1\r\nX-Amz-Target: Kinesis_20131202.DescribeStreamSummary\r\nConnection: close\r\ncontent-length: 2\r\n\r\n{}'),
  ]);
  // cuts: inside the first head, inside its empty line, inside a member name of b3, inside a chunk-size line,
  // between the chunked head and its first chunk-size line, inside the ListShards head
  const s = stream.toString('latin1');
  const b3At = s.indexOf('\r\n\r\n') + 4;
  const chunkedHead = s.indexOf('Transfer-Encoding');
  const cuts = [10, b3At - 2, b3At + marksOf(b3)[1] + 7, s.indexOf('\r\n\r\n', chunkedHead) + 4,
    s.indexOf(';ext=1') - 1, s.indexOf('\r\n', s.indexOf(';ext=1')) + 1, s.indexOf('ListShards') + 3].sort((a, b) => a - b);
  let r = await rawExchange(ack.url, cutAt(stream, cuts));
  let a = parseAnswers(r.data);
  if (a.length !== 5) throw new Error(`pipelined: ${a.length} answers instead of 5: ${r.data.toString().slice(0, 300)}`);
  checkAnswer(a[0], 3);
  checkAnswer(a[1], 5);
  if (a[2].status !== 200 || JSON.parse(a[2].text).Shards?.[0]?.ShardId !== 'shardId-000000000000') throw new Error(`ListShards: ${a[2].text}`);
  if (a[3].status !== 400 || JSON.parse(a[3].text).__type !== 'UnknownOperationException') throw new Error(`unknown target: ${a[3].status} ${a[3].text}`);
  if (a[4].status !== 200 || !JSON.parse(a[4].text).StreamDescriptionSummary) throw new Error(`DescribeStreamSummary: ${a[4].text}`);
  if (!r.closed) throw new Error('pipelined: the connection stayed open after "Connection: close"');

  // Expect: 100-continue: the body is sent only once the interim answer came
  const b7 = body(103, 7);
  const waitContinue = async (received) => {
    for (let i = 0; i < 200 && !received().toString('latin1').startsWith('HTTP/1.1 100 Continue\r\n\r\n'); i++) await sleep(10);
    if (!received().toString('latin1').startsWith('HTTP/1.1 100 Continue\r\n\r\n')) throw new Error('no "100 Continue"');
  };
  r = await rawExchange(ack.url, [putHead(`Expect: 100-continue\r\nContent-Length: ${b7.length}\r\nConnection: close\r\n`), waitContinue, b7]);
  a = parseAnswers(r.data);
  if (a.length !== 2 || a[0].status !== 100 || !r.closed) throw new Error(`100-continue: ${r.data.toString().slice(0, 200)}`);
  checkAnswer(a[1], 7);

  // HTTP/1.0: answered, then closed
  r = await rawExchange(ack.url, [`POST / HTTP/1.0\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\nContent-Length: ${b3.length}\r\n\r\n`, b3]);
  a = parseAnswers(r.data);
  if (a.length !== 1 || !r.closed) throw new Error(`HTTP/1.0: ${a.length} answers, closed ${r.closed}`);
  checkAnswer(a[0], 3);

  // a malformed head: 400 and closed
  r = await rawExchange(ack.url, ['GARBAGE\r\nX: 1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n']);
  a = parseAnswers(r.data);
  if (a.length !== 1 || a[0].status !== 400 || !r.closed) throw new Error(`malformed head: ${r.data.toString().slice(0, 200)}, closed ${r.closed}`);
  r = await rawExchange(ack.url, ['POST / HTTP/1.1\r\nno colon here\r\n\r\n']);
  a = parseAnswers(r.data);
  if (a.length !== 1 || a[0].status !== 400 || !r.closed) throw new Error(`bad header line: ${r.data.toString().slice(0, 200)}, closed ${r.closed}`);

  const st = await ack.stats();
  const want = { PutRecords: 4, ListShards: 1, NoSuchOperation: 1, DescribeStreamSummary: 1 };
  if (st.requests !== 4 || st.records !== 3 + 5 + 7 + 3 || st.bytes !== 2 * b3.length + b5.length + b7.length
    || JSON.stringify(Object.entries(st.by_target).sort()) !== JSON.stringify(Object.entries(want).sort())
    || st.max_in_flight < 1) throw new Error(`stats after the raw requests: ${JSON.stringify(st)}`);
}

/** checkContract: the contract through node:http, then on raw sockets. */
async function checkContract(ack) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  try {
    const small = body(999, 37);
    // cut inside ten member names, one cut 1 byte in, one 14 bytes in, others in between
    const cuts = marksOf(small).slice(0, 10).map((m, i) => m + 1 + (i * 13) % 14);
    checkAnswer(await post(agent, ack.url, cutAt(small, cuts), undefined, 15), 37);
    checkAnswer(await post(agent, ack.url, [small]), 37);
    let s = await ack.stats();
    if (s.requests !== 2 || s.records !== 74 || s.bytes !== 2 * small.length) throw new Error(`stats after 2 requests: ${JSON.stringify(s)}`);
    const d = await post(agent, ack.url, ['{}'], 'Kinesis_20131202.DescribeStreamSummary');
    if (d.status !== 200 || !JSON.parse(d.text).StreamDescriptionSummary) throw new Error(`DescribeStreamSummary: ${d.text}`);
    await ack.reset();
    s = await ack.stats();
    if (s.requests !== 0 || s.records !== 0) throw new Error(`stats after reset: ${JSON.stringify(s)}`);
    await checkRaw(ack);
    await ack.reset();
  } finally {
    agent.destroy();
  }
}

const bodies = Array.from({ length: 8 }, (_, v) => body(v));
const bytes = bodies[0].length;
const mb = (REQUESTS * bytes) / 1048576;

/** measure: the contract, then the timed requests against one server; its figures. */
async function measure(server) {
  const ack = await startAckServer({ server, args: PARSE && isNode(server) ? ['--parse'] : [] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
  try {
    await checkContract(ack);
    const cpu0 = cpuOf(ack.pid);
    const me0 = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < REQUESTS) {
        const i = next++;
        const a = await post(agent, ack.url, [bodies[i % bodies.length]]);
        if (i % 100 === 0) checkAnswer(a, RECORDS);
        else if (a.status !== 200) throw new Error(`status ${a.status}`);
      }
    };
    await Promise.all(Array.from({ length: CONC }, worker));
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = cpuOf(ack.pid);
    const me = process.cpuUsage(me0);
    const s = await ack.stats();
    if (s.requests !== REQUESTS || s.records !== REQUESTS * RECORDS) throw new Error(`stats: ${JSON.stringify(s)}`);
    const user = cpu1.user - cpu0.user;
    const sys = cpu1.sys - cpu0.sys;
    const run = cpu1.run - cpu0.run;
    const cpu = Number.isNaN(run) ? user + sys : run;
    const label = `${ack.label}${PARSE && isNode(server) ? ' --parse' : ''}`;
    console.log(`${label}: contract ok; ${REQUESTS} PutRecords of ${RECORDS} records, ${(bytes / 1024).toFixed(0)} KB each `
      + `(${mb.toFixed(0)} MB), ${CONC} in flight (server saw ${s.max_in_flight}), ${wall.toFixed(2)} s; `
      + `server CPU ${cpu.toFixed(3)} s (ticks: user ${user.toFixed(2)}, system ${sys.toFixed(2)}): `
      + `${((cpu / REQUESTS) * 1e6).toFixed(0)} us per request; driver CPU ${((me.user + me.system) / 1e6).toFixed(2)} s`);
    return { server, label, cpu, user, sys, wall, maxInFlight: s.max_in_flight };
  } finally {
    agent.destroy();
    ack.stop();
  }
}

const runs = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const server of SERVERS) runs.push({ round, ...(await measure(server)) });
}

const row = (label, r) => `| ${label} | ${((r.cpu / REQUESTS) * 1e6).toFixed(0)} µs | ${((r.cpu / (REQUESTS * RECORDS)) * 1e9).toFixed(0)} ns `
  + `| ${((r.cpu / mb) * 1e3).toFixed(2)} ms | ${r.user.toFixed(2)} / ${r.sys.toFixed(2)} | ${r.wall.toFixed(2)} s |`;
console.log(`\n${REQUESTS} PutRecords of ${RECORDS} records (${(bytes / 1024).toFixed(0)} KB) per run, ${CONC} in flight; `
  + 'CPU = run time of all threads, /proc/<pid>/task/*/schedstat (user / system: clock ticks of /proc/<pid>/stat)\n');
console.log('| run | server | CPU per request | per record | per MB | user / system s | wall |');
console.log('|---|---|---:|---:|---:|---|---:|');
for (const r of runs) console.log(row(`${r.round} | ${r.label}`, r).replace(/^\| /, '| '));
const best = new Map();
for (const r of runs) if (!best.has(r.label) || r.cpu < best.get(r.label).cpu) best.set(r.label, r);
if (best.size > 1) {
  const list = [...best.values()];
  const ref = list.find((r) => isNode(r.server)) ?? list[list.length - 1];
  console.log('');
  for (const r of list) {
    console.log(`best ${r.label}: ${((r.cpu / REQUESTS) * 1e6).toFixed(0)} us per request`
      + `${r === ref ? '' : `, ${(ref.cpu / r.cpu).toFixed(1)}x less CPU than ${ref.label}`}`);
  }
}
