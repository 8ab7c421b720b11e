// PutRecords throughput of dms_stream's batcher from one backend, side by side
// with a reference client, the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis
// with @smithy/node-http-handler's NodeHttpHandler), on the same records, the
// same sink, in the same run and with the same concurrency.
//
// Sinks:
//   ack         the minimal acknowledging server (test/bench/ack_server.c,
//               compiled and started here; --ack-server node or
//               DMS_ACK_SERVER=node for test/bench/ack_server.mjs): answers
//               success for every entry, checks nothing, so the clients are
//               what is measured
//   kinesalite  the test bed's kinesalite, directly (no proxy)
//
// Records i = 0..N-1: partition key 'k' || (i % keys), data = i zero-padded to
// 10 digits followed by 'x' up to --size bytes. dms_stream gets them as text[]
// arrays built by generate_series and sends them with
// dms_stream.kinesis_put_records (max_in_flight = --concurrency); the SDK gets
// the same bytes, pre-built in memory, and sends batches of 500 with at most
// --concurrency PutRecords in flight (keep-alive agent with as many sockets),
// re-sending failed entries. Time is from the first record handed to the
// client to the last acknowledgement (dms_stream: the batcher's elapsed_ms,
// also shown: the whole SQL function, call_ms).
//
// Needs the test bed (PostgreSQL with dms_stream, kinesalite): source
// test/bed/env.sh or let test/lib/bed.mjs read it.
//
//   node test/bench/putrecords.mjs [--records 100000] [--size 1024] [--keys 1000]
//        [--concurrency 4] [--kinesalite-records 20000] [--repeat 3] [--kinesalite-repeat 2]
//        [--ack-server c|node]

import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { env, psql, kinesis, streamRecords, waitStreamActive, uniqueName } from '../lib/bed.mjs';
import { lit, startAckServer, dropEndpoints } from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const N = opt('records', 100000);
const SIZE = opt('size', 1024);
const KEYS = opt('keys', 1000);
const CONC = opt('concurrency', 4);
const KN = opt('kinesalite-records', 20000);
const REPEAT = opt('repeat', 3);
const KREPEAT = opt('kinesalite-repeat', 2);
if (SIZE < 10) throw new Error('--size must be at least 10');

const key = (i) => `k${i % KEYS}`;
const data = (i) => String(i).padStart(10, '0') + 'x'.repeat(SIZE - 10);
const payloadBytes = (n) => {
  let b = 0;
  for (let i = 0; i < n; i++) b += SIZE + Buffer.byteLength(key(i));
  return b;
};

// ------------------------------------------------------------------ sinks

async function createKinesaliteStream() {
  const name = uniqueName('bench');
  await kinesis('CreateStream', { StreamName: name, ShardCount: 4 });
  await waitStreamActive(name);
  return name;
}

const endpoints = [];
async function createEndpoint(url, stream) {
  const name = uniqueName('bench');
  endpoints.push(name);
  await psql(`SELECT dms_stream.create_endpoint(${lit(name)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream }))}, ${lit(url)});
    SELECT dms_stream.set_endpoint_credentials(${lit(name)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});`);
  return name;
}

// ------------------------------------------------------------------ clients

async function ours(endpoint, n) {
  const t0 = performance.now();
  const rows = await psql(`SELECT dms_stream.kinesis_put_records(${lit(endpoint)}, r.k, r.d, ${CONC})
    FROM (SELECT array_agg('k' || (i % ${KEYS}) ORDER BY i) AS k,
                 array_agg(lpad(i::text, 10, '0') || repeat('x', ${SIZE - 10}) ORDER BY i) AS d
            FROM generate_series(0, ${n - 1}) i) r;`);
  const wall = performance.now() - t0;
  const s = JSON.parse(rows[0][0]);
  if (s.records !== n) throw new Error(`dms_stream acknowledged ${s.records} of ${n} records`);
  return { ms: s.elapsed_ms, callMs: s.call_ms, wallMs: wall, requests: s.requests, inFlight: s.max_in_flight, retried: s.entries_retried };
}

function sdkClient(url) {
  return new KinesisClient({
    region: 'us-east-1',
    endpoint: url,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true, maxSockets: CONC }) }),
  });
}

function sdkRecords(n) {
  const recs = new Array(n);
  for (let i = 0; i < n; i++) recs[i] = { PartitionKey: key(i), Data: Buffer.from(data(i)) };
  return recs;
}

async function sdk(client, stream, recs) {
  const batches = [];
  for (let i = 0; i < recs.length; i += 500) batches.push(recs.slice(i, i + 500));
  let next = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let requests = 0;
  let retried = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < batches.length) {
      let batch = batches[next++];
      while (batch.length) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: batch }));
        inFlight--;
        requests++;
        batch = out.FailedRecordCount ? batch.filter((_, i) => out.Records[i].ErrorCode) : [];
        retried += batch.length;
      }
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
  return { ms: performance.now() - t0, requests, inFlight: maxInFlight, retried };
}

// ------------------------------------------------------------------ run

const rows = [];
function report(sink, client, n, r, sinkInFlight) {
  const mb = payloadBytes(n) / 1048576;
  const row = {
    sink, client, records: n, seconds: r.ms / 1000, rps: n / (r.ms / 1000), mbps: mb / (r.ms / 1000),
    requests: r.requests, inFlight: r.inFlight, sinkInFlight, callMs: r.callMs, wallMs: r.wallMs,
  };
  rows.push(row);
  console.log(`${sink.padEnd(10)} ${client.padEnd(10)} ${String(n).padStart(8)} rec  ${row.seconds.toFixed(2).padStart(6)} s  `
    + `${Math.round(row.rps).toString().padStart(7)} rec/s  ${row.mbps.toFixed(1).padStart(6)} MB/s  `
    + `requests ${r.requests}, in flight ${r.inFlight}${sinkInFlight !== undefined ? ` (sink saw ${sinkInFlight})` : ''}`
    + `${r.callMs !== undefined ? `, SQL function ${(r.callMs / 1000).toFixed(2)} s, statement ${(r.wallMs / 1000).toFixed(2)} s` : ''}`);
  return row;
}
const best = (xs) => xs.reduce((a, b) => (b.rps > a.rps ? b : a));

console.log(`PutRecords from one client: ${N} records of ${SIZE} bytes, ${KEYS} partition keys, `
  + `${CONC} requests in flight; kinesalite: ${KN} records; best of ${REPEAT} (ack server) and ${KREPEAT} (kinesalite) runs`);
const ack = await startAckServer();
console.log(`ack server: ${ack.label}`);
try {
  // ---- minimal acknowledging server
  const ackEp = await createEndpoint(ack.url, 'ack');
  const ackSdk = sdkClient(ack.url);
  const recs = sdkRecords(N);
  await ours(ackEp, Math.min(N, 2000)); // warm-up: connections, caches
  await sdk(ackSdk, 'ack', recs.slice(0, Math.min(N, 2000)));
  const mine = [];
  const theirs = [];
  for (let i = 0; i < REPEAT; i++) {
    await ack.reset();
    const r1 = await ours(ackEp, N);
    const s1 = await ack.stats();
    if (s1.records !== N) throw new Error(`ack server counted ${s1.records} records from dms_stream`);
    mine.push(report('ack', 'dms_stream', N, r1, s1.max_in_flight));
    await ack.reset();
    const r2 = await sdk(ackSdk, 'ack', recs);
    const s2 = await ack.stats();
    if (s2.records !== N) throw new Error(`ack server counted ${s2.records} records from the SDK`);
    theirs.push(report('ack', 'aws-sdk-js', N, r2, s2.max_in_flight));
  }
  ackSdk.destroy();

  // ---- kinesalite, directly
  const sMine = await createKinesaliteStream();
  const sTheirs = await createKinesaliteStream();
  const kEp = await createEndpoint(env.KINESALITE_URL, sMine);
  const kSdk = sdkClient(env.KINESALITE_URL);
  const kRecs = sdkRecords(KN);
  const kMine = [];
  const kTheirs = [];
  for (let i = 0; i < KREPEAT; i++) {
    kMine.push(report('kinesalite', 'dms_stream', KN, await ours(kEp, KN)));
    kTheirs.push(report('kinesalite', 'aws-sdk-js', KN, await sdk(kSdk, sTheirs, kRecs)));
  }
  kSdk.destroy();
  const stored = [(await streamRecords(sMine)).length, (await streamRecords(sTheirs)).length];
  if (stored[0] !== KN * KREPEAT || stored[1] !== KN * KREPEAT) {
    throw new Error(`kinesalite stored ${stored.join(' and ')} records, expected ${KN * KREPEAT}`);
  }
  const k1 = best(kMine);
  const k2 = best(kTheirs);

  const a = best(mine);
  const b = best(theirs);
  console.log('');
  console.log(`ack server: dms_stream ${Math.round(a.rps)} rec/s (${a.mbps.toFixed(1)} MB/s), `
    + `aws-sdk-js ${Math.round(b.rps)} rec/s (${b.mbps.toFixed(1)} MB/s): ratio ours/SDK ${(a.rps / b.rps).toFixed(2)}`);
  console.log(`kinesalite: dms_stream ${Math.round(k1.rps)} rec/s, aws-sdk-js ${Math.round(k2.rps)} rec/s: `
    + `ratio ours/SDK ${(k1.rps / k2.rps).toFixed(2)} (all ${KN * KREPEAT} records of each client stored)`);
} finally {
  ack.stop();
  await dropEndpoints(endpoints);
}
