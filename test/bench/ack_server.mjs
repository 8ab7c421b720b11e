// Minimal acknowledging server: a Kinesis-compatible PutRecords sink for
// benchmarks, fast enough not to be the bottleneck.
//
// It answers every PutRecords with success for every entry (FailedRecordCount
// 0, one SequenceNumber/ShardId per entry, in order), counts requests,
// records and body bytes, and the most requests it had in flight at once. It
// does NOT check signatures, store data, or validate records: it measures a
// client, not a service. DescribeStreamSummary and ListShards get a one-shard
// answer so that clients can look at the "stream".
//
// Records are counted by the "PartitionKey": member names in the body (a key
// cannot contain a raw quote, so the text only occurs as a member name); with
// --parse the body is parsed as JSON instead (slower, checks the JSON).
//
//   node test/bench/ack_server.mjs [--port 0] [--host 127.0.0.1] [--parse]
// prints "listening http://HOST:PORT" on stdout once ready.
//   GET  /__stats  {requests, records, bytes, max_in_flight, by_target}
//   POST /__reset  zero the counters

import http from 'node:http';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const port = Number(opt('port', '0'));
const host = opt('host', '127.0.0.1');
const parse = args.includes('--parse');

const MARK = Buffer.from('"PartitionKey":');
let stats;
const reset = () => {
  stats = { requests: 0, records: 0, bytes: 0, max_in_flight: 0, by_target: {} };
};
reset();
let inFlight = 0;
let seq = 10n ** 55n;

/** The success answer for n entries, with fresh sequence numbers. */
function answer(n) {
  const base = (seq += 1000n);
  let s = '{"FailedRecordCount":0,"Records":[';
  for (let i = 0; i < n; i++) {
    s += `${i ? ',' : ''}{"SequenceNumber":"${base + BigInt(i)}","ShardId":"shardId-000000000000"}`;
  }
  return s + ']}';
}

function countRecords(body) {
  if (parse) return JSON.parse(body).Records.length;
  let n = 0;
  for (let at = body.indexOf(MARK); at >= 0; at = body.indexOf(MARK, at + MARK.length)) n++;
  return n;
}

const server = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  if (req.url.startsWith('/__stats')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(stats));
  }
  if (req.url.startsWith('/__reset')) {
    reset();
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{}');
  }
  inFlight++;
  stats.max_in_flight = Math.max(stats.max_in_flight, inFlight);
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const op = String(req.headers['x-amz-target'] || '').split('.').pop();
    stats.by_target[op] = (stats.by_target[op] ?? 0) + 1;
    let out;
    let status = 200;
    try {
      if (op === 'PutRecords') {
        const n = countRecords(body);
        stats.requests++;
        stats.records += n;
        stats.bytes += body.length;
        out = answer(n);
      } else if (op === 'DescribeStreamSummary') {
        out = JSON.stringify({ StreamDescriptionSummary: { StreamName: 'ack', StreamStatus: 'ACTIVE', OpenShardCount: 1 } });
      } else if (op === 'ListShards') {
        out = JSON.stringify({ Shards: [{ ShardId: 'shardId-000000000000' }] });
      } else {
        status = 400;
        out = JSON.stringify({ __type: 'UnknownOperationException', message: `not supported by the ack server: ${op}` });
      }
    } catch (err) {
      status = 400;
      out = JSON.stringify({ __type: 'SerializationException', message: String(err) });
    }
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': 'ack' });
    res.end(out);
    inFlight--;
  });
});
server.listen(port, host, () => {
  process.stdout.write(`listening http://${host}:${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
