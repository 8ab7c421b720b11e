// The Kinesis client and PutRecords batcher (src/kinesis.c) through the SQL
// utilities of sql/install/41_kinesis.sql: describe, read back, put.
//
// Records sent by the extension are read back independently: with the aws
// CLI and the test bed's own signed client, straight from kinesalite (no
// proxy), and with dms_stream.kinesis_read_records. Request limits are
// checked by a small recording pass-through placed in front of kinesalite.
// Faults are injected by the SigV4-verifying proxy, always scoped with
// `match` to this file's own stream and cleared in a finally: the proxy is
// shared with other test files.
//
// Run: test/check.sh --only kinesis (bed started by check.sh), or by hand
// with the bed running: node --test test/integration/kinesis.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  env, psql, psqlTry, aws, proxy, createStream, uniqueName, waitFor, sleep, kinesis, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';

const kp = proxy('kinesis');
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const arr = (xs, type = 'text') => `ARRAY[${xs.map(lit).join(',')}]::${type}[]`;
const exactly = (name) => `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
const MiB = 1024 * 1024;

// ------------------------------------------------------------------ helpers

/** Create a Kinesis endpoint for stream (name or {arn}); returns the endpoint name. */
async function endpoint(stream, { url = env.KINESIS_PROXY_URL, secret = env.AWS_SECRET_ACCESS_KEY, arn } = {}) {
  const name = uniqueName('kin');
  const settings = arn ? { StreamArn: arn } : { StreamName: stream };
  await psql(`SELECT dms_stream.create_endpoint(${lit(name)}, 'kinesis', 'target', ${lit(JSON.stringify(settings))}, ${lit(url)});
    SELECT dms_stream.set_endpoint_credentials(${lit(name)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(secret)});`);
  return name;
}

/** Run SQL returning one jsonb value; resolves the parsed JSON. */
async function sqlJson(sql) {
  const rows = await psql(sql);
  return JSON.parse(rows[rows.length - 1][0]);
}

/** Every record of a stream, read with the aws CLI straight from kinesalite. */
async function cliRecords(stream) {
  const opts = { endpoint: env.KINESALITE_URL };
  const { Shards } = await aws(['kinesis', 'list-shards', '--stream-name', stream], opts);
  const out = [];
  for (const { ShardId } of Shards) {
    const { ShardIterator } = await aws(['kinesis', 'get-shard-iterator', '--stream-name', stream,
      '--shard-id', ShardId, '--shard-iterator-type', 'TRIM_HORIZON'], opts);
    const r = await aws(['kinesis', 'get-records', '--shard-iterator', ShardIterator, '--limit', '10000'], opts);
    for (const rec of r.Records) out.push({ shard: ShardId, key: rec.PartitionKey, data: Buffer.from(rec.Data, 'base64') });
  }
  return out;
}

/**
 * A recording pass-through to kinesalite: forwards every request as is and
 * notes, for PutRecords, the number of records, their data + key bytes and
 * the body size.
 */
async function startRecorder() {
  const log = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] || '');
      const entry = { op: target.split('.').pop(), bodyBytes: body.length };
      if (entry.op === 'PutRecords') {
        const j = JSON.parse(body);
        entry.stream = j.StreamName;
        entry.records = j.Records.length;
        entry.dataKeyBytes = j.Records.reduce((a, r) => a + Buffer.from(r.Data, 'base64').length
          + Buffer.byteLength(r.PartitionKey), 0);
      }
      const headers = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (!['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
      }
      try {
        const up = await fetch(`${env.KINESALITE_URL}/`, { method: 'POST', headers, body });
        const answer = Buffer.from(await up.arrayBuffer());
        entry.status = up.status;
        log.push(entry);
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') || 'application/x-amz-json-1.1' });
        res.end(answer);
      } catch (err) {
        entry.status = 0;
        entry.error = String(err);
        log.push(entry);
        res.destroy();
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, log, close: () => { server.closeAllConnections(); server.close(); } };
}

/**
 * Per partition key, the order in which records first appear in the stream.
 * records: [{key, n}] in stream order (per shard). Returns {overtaken,
 * firstSeen}: overtaken counts records whose first copy came after the first
 * copy of a later record (higher n) of the same key.
 */
function orderCheck(records) {
  const maxSeen = new Map();
  const seen = new Set();
  let overtaken = 0;
  for (const r of records) {
    const id = `${r.key}\u0000${r.n}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const m = maxSeen.get(r.key);
    if (m !== undefined && r.n < m) overtaken++;
    if (m === undefined || r.n > m) maxSeen.set(r.key, r.n);
  }
  return { overtaken, distinct: seen.size };
}

let recorder;

before(async () => {
  const r = await psqlTry(`SET client_min_messages = warning;
    DO $$ BEGIN
      IF to_regproc('dms_stream.create_endpoint') IS NULL THEN CREATE EXTENSION dms_stream; END IF;
    END $$;`);
  assert.ok(r.ok, r.error);
  recorder = await startRecorder();
});

after(async () => {
  recorder?.close();
  await kp.setFaults({}).catch(() => {});
});

// ------------------------------------------------------------------ describe

test('kinesis_describe_stream: summary and every shard', async () => {
  const stream = await createStream(uniqueName('kd'), 3);
  const ep = await endpoint(stream);
  const d = await sqlJson(`SELECT dms_stream.kinesis_describe_stream(${lit(ep)});`);
  assert.equal(d.EndpointName, ep);
  assert.equal(d.StreamDescriptionSummary.StreamName, stream);
  assert.equal(d.StreamDescriptionSummary.StreamStatus, 'ACTIVE');
  assert.equal(d.StreamDescriptionSummary.OpenShardCount, 3);
  assert.deepEqual(d.Shards.map((s) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002']);
});

test('ListShards pages are followed with NextToken alone', async () => {
  const seen = [];
  const pages = { '': ['a', 'b'], t1: ['c'], t2: ['d'] };
  const next = { '': 't1', t1: 't2', t2: null };
  const fake = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const op = String(req.headers['x-amz-target']).split('.').pop();
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      seen.push({ op, body });
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      if (op === 'DescribeStreamSummary') {
        return res.end(JSON.stringify({ StreamDescriptionSummary: { StreamName: 'paged', StreamStatus: 'ACTIVE', OpenShardCount: 4 } }));
      }
      const tok = body.NextToken ?? '';
      const answer = { Shards: pages[tok].map((s) => ({ ShardId: `shardId-${s}` })) };
      if (next[tok]) answer.NextToken = next[tok];
      return res.end(JSON.stringify(answer));
    });
  });
  await new Promise((r) => fake.listen(0, '127.0.0.1', r));
  try {
    const ep = await endpoint('paged', { url: `http://127.0.0.1:${fake.address().port}` });
    const d = await sqlJson(`SELECT dms_stream.kinesis_describe_stream(${lit(ep)});`);
    assert.deepEqual(d.Shards.map((s) => s.ShardId), ['shardId-a', 'shardId-b', 'shardId-c', 'shardId-d']);
    const list = seen.filter((s) => s.op === 'ListShards').map((s) => s.body);
    assert.equal(list.length, 3);
    assert.equal(list[0].StreamName, 'paged');
    assert.equal(list[0].NextToken, undefined);
    assert.deepEqual(list[1], { NextToken: 't1' });
    assert.deepEqual(list[2], { NextToken: 't2' });
  } finally {
    fake.closeAllConnections();
    fake.close();
  }
});

// ------------------------------------------------------------------ round trip

test('round trip: unicode, binary and explicit hash keys, read back by the aws CLI and kinesis_read_records', async (t) => {
  const stream = await createStream(uniqueName('krt'), 2);
  // named by ARN: the extension sends StreamARN (and StreamName, which kinesalite needs)
  const ep = await endpoint(null, { arn: `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}` });

  const text = [
    ['ascii', 'plain text'],
    ['ключ-🔑', 'día ✓ — 漢字 😀'],
    ['quote " backslash \\ tab\t', 'line1\nline2\ttab "quoted" \\ \u0001 control'],
    ['json-1', '{"a": 1, "nested": {"u": "é", "list": [1, 2.5, null, true]}}'],
    ['json-2', '[1,2,3]'],
    ['empty', ''],
  ];
  const put1 = await sqlJson(`SELECT dms_stream.kinesis_put_records(${lit(ep)},
    ${arr(text.map((x) => x[0]))}, ${arr(text.map((x) => x[1]))});`);
  assert.equal(put1.records, text.length);

  const all256 = Buffer.from([...Array(256).keys()]);
  const binary = [
    ['bin-all-bytes', all256, null],
    ['bin-nul', Buffer.from([0]), null],
    ['bin-latin1', Buffer.from('caf\xe9', 'latin1'), null],
    ['ehk-zero', Buffer.from('to shard 0'), '0'],
    ['ehk-max', Buffer.from('to shard 1'), '340282366920938463463374607431768211455'],
    ['ehk-mid', Buffer.from('to shard 1 too'), '170141183460469231731687303715884105728'],
  ];
  const put2 = await sqlJson(`SELECT dms_stream.kinesis_put_binary_records(${lit(ep)},
    ${arr(binary.map((x) => x[0]))},
    ARRAY[${binary.map((x) => `'\\x${x[1].toString('hex')}'::bytea`).join(',')}],
    explicit_hash_keys => ${arr(binary.map((x) => x[2]))});`);
  assert.equal(put2.records, binary.length);

  const expected = new Map([
    ...text.map(([k, v]) => [k, Buffer.from(v, 'utf8')]),
    ...binary.map(([k, v]) => [k, v]),
  ]);

  // 1. aws CLI, straight from kinesalite
  const cli = await cliRecords(stream);
  assert.equal(cli.length, expected.size);
  for (const r of cli) {
    assert.ok(expected.has(r.key), `unexpected key ${r.key}`);
    assert.deepEqual(r.data, expected.get(r.key), `data of ${r.key}`);
  }
  const shardOf = Object.fromEntries(cli.map((r) => [r.key, r.shard]));
  // the batcher's acknowledgements (ShardId per record) match where the records are
  const acked = {};
  for (const s of [put1, put2]) {
    assert.equal(s.double_acks, 0);
    for (const [shard, n] of Object.entries(s.acks_by_shard)) acked[shard] = (acked[shard] ?? 0) + n;
  }
  const stored = {};
  for (const r of cli) stored[r.shard] = (stored[r.shard] ?? 0) + 1;
  assert.deepEqual(acked, stored);
  assert.equal(shardOf['ehk-zero'], 'shardId-000000000000');
  assert.equal(shardOf['ehk-max'], 'shardId-000000000001');
  assert.equal(shardOf['ehk-mid'], 'shardId-000000000001');

  // 2. kinesis_read_records
  // text columns hex-encoded: psql output is line based
  const rows = await psql(`SELECT shard_id, partition_key, encode(data, 'hex'), data_text IS NULL,
      encode(convert_to(coalesce(data_text, ''), 'UTF8'), 'hex'),
      data_json IS NULL, coalesce(data_json::text, ''), sequence_number, approximate_arrival IS NOT NULL
    FROM dms_stream.kinesis_read_records(${lit(ep)}) ORDER BY shard_id, sequence_number::numeric;`);
  assert.equal(rows.length, expected.size);
  for (const [shard, key, hex, textNull, txt, jsonNull, json, seq, hasArrival] of rows) {
    assert.deepEqual(Buffer.from(hex, 'hex'), expected.get(key), `data of ${key}`);
    assert.equal(shard, shardOf[key]);
    assert.match(seq, /^\d{20,}$/);
    assert.equal(hasArrival, 't');
    const isUtf8 = !['bin-all-bytes', 'bin-latin1', 'bin-nul'].includes(key);
    assert.equal(textNull, isUtf8 ? 'f' : 't', `data_text of ${key}`);
    if (isUtf8) assert.equal(Buffer.from(txt, 'hex').toString('utf8'), expected.get(key).toString('utf8'));
    const isJson = key.startsWith('json-');
    assert.equal(jsonNull, isJson ? 'f' : 't', `data_json of ${key}`);
    if (isJson) assert.deepEqual(JSON.parse(json), JSON.parse(expected.get(key).toString()));
  }

  // one shard, from a sequence number
  const first = rows.find((r) => r[0] === 'shardId-000000000001');
  const after = await psql(`SELECT count(*) FROM dms_stream.kinesis_read_records(${lit(ep)}, 'shardId-000000000001',
    'AFTER_SEQUENCE_NUMBER', 1000, ${lit(first[7])});`);
  assert.equal(Number(after[0][0]), rows.filter((r) => r[0] === 'shardId-000000000001').length - 1);
  const limited = await psql(`SELECT count(*) FROM dms_stream.kinesis_read_records(${lit(ep)}, max_records => 1);`);
  assert.equal(Number(limited[0][0]), 2, 'one record per shard');
  t.diagnostic(`${rows.length} records read back identically by the aws CLI and kinesis_read_records`);
});

// ------------------------------------------------------------------ limits

test('batching limits: 1,500 records of 10 KB and 1 MiB records form requests within every limit', async (t) => {
  const stream = await createStream(uniqueName('klim'), 2);
  const ep = await endpoint(stream, { url: recorder.url });
  const from = recorder.log.length;

  const s1 = await sqlJson(`SELECT dms_stream.kinesis_put_records(${lit(ep)},
      array_agg('key-' || (i % 37)), array_agg(lpad(i::text, 10, '0') || repeat('x', 10230)), 4)
    FROM generate_series(1, 1500) i;`);
  // exactly 1 MiB with the key: the largest record Kinesis takes
  const s2 = await sqlJson(`SELECT dms_stream.kinesis_put_records(${lit(ep)},
      array_agg('big-' || i), array_agg(repeat(chr(65 + i % 26), ${MiB} - length('big-' || i))), 4)
    FROM generate_series(1, 12) i;`);

  const puts = recorder.log.slice(from).filter((e) => e.op === 'PutRecords' && e.stream === stream);
  t.diagnostic(`requests (records / data+key bytes / body bytes): ${puts.map((p) => `${p.records}/${p.dataKeyBytes}/${p.bodyBytes}`).join(', ')}`);
  assert.ok(puts.every((p) => p.status === 200), 'kinesalite accepted every request');
  assert.equal(puts.reduce((a, p) => a + p.records, 0), 1512);
  assert.equal(puts.length, s1.requests + s2.requests);
  assert.ok(s1.requests >= 3, `1,500 records took ${s1.requests} requests`);
  assert.ok(s2.requests >= 3, `12 MiB took ${s2.requests} requests`);
  for (const p of puts) {
    assert.ok(p.records <= 500, `${p.records} records in one request`);
    assert.ok(p.dataKeyBytes <= 5 * MiB, `${p.dataKeyBytes} bytes of data and keys in one request`);
    assert.ok(p.bodyBytes < 7 * MiB, `${p.bodyBytes}-byte body (kinesalite refuses more than 7 MiB)`);
  }
  assert.equal(s1.largest_request_records, Math.max(...puts.slice(0, s1.requests).map((p) => p.records)));
  const back = await psql(`SELECT count(*), count(DISTINCT md5(data)), max(length(data)) FROM dms_stream.kinesis_read_records(${lit(ep)}, max_records => 5000);`);
  assert.deepEqual(back[0].map(Number), [1512, 1512, MiB - 'big-1'.length]);

  // memory is bounded by the settings, not by the input
  const s3 = await sqlJson(`SELECT dms_stream.kinesis_put_records(${lit(ep)},
      array_agg('m' || (i % 100)), array_agg(repeat('y', 100)), 2, options => '{"max_buffered_records": 300, "max_request_records": 100}')
    FROM generate_series(1, 3000) i;`);
  assert.equal(s3.records, 3000);
  assert.ok(s3.max_buffered_records <= 300, `kept ${s3.max_buffered_records} records`);
  assert.ok(s3.largest_request_records <= 100);
});

test('a record over 1 MiB, a key over 256 characters, an empty key or a bad hash key is refused, nothing sent', async () => {
  const stream = await createStream(uniqueName('kbad'), 1);
  const ep = await endpoint(stream, { url: recorder.url });
  const from = recorder.log.length;
  const k256 = 'k'.repeat(256);
  const k257 = 'k'.repeat(257);

  const big = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY['ok', 'k'],
    ARRAY['fine', repeat('x', ${MiB})]);`);
  assert.ok(!big.ok);
  assert.match(big.error, /Kinesis record 2 of 2 refused: the record has 1048577 bytes \(data 1048576 \+ partition key 1\); a Kinesis record holds at most 1048576 bytes/);
  assert.match(big.error, new RegExp(`Nothing was sent to endpoint "${ep}"`));

  const long = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY[${lit(k257)}], ARRAY['x']);`);
  assert.match(long.error, /Kinesis record 1 of 1 refused: the partition key has 257 characters; Kinesis allows at most 256/);
  // characters, not bytes: 256 two-byte characters are fine, 129 emoji are 258 UTF-16 units
  const emoji = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY[repeat('😀', 129)], ARRAY['x']);`);
  assert.match(emoji.error, /partition key has 258 characters/);

  const empty = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY[''], ARRAY['x']);`);
  assert.match(empty.error, /the partition key is empty/);
  const nullKey = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY[NULL::text], ARRAY['x']);`);
  assert.match(nullKey.error, /the partition key is empty/);
  const hash = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY['a'], ARRAY['x'],
    explicit_hash_keys => ARRAY['340282366920938463463374607431768211456']);`);
  assert.match(hash.error, /explicit hash key "340282366920938463463374607431768211456" is not a decimal integer from 0 to 2\^128-1/);
  assert.equal(recorder.log.slice(from).filter((e) => e.stream === stream).length, 0, 'nothing was sent');

  // skip_invalid: the valid records go, the refused ones are listed
  const s = await sqlJson(`SELECT dms_stream.kinesis_put_records(${lit(ep)},
    ARRAY['good-1', ${lit(k257)}, ${lit(k256)}, 'big', ''], ARRAY['one', 'x', 'two', repeat('x', ${MiB}), 'y'],
    skip_invalid => true);`);
  assert.equal(s.records, 2);
  assert.equal(s.records_rejected, 3);
  assert.deepEqual(s.rejected.map((r) => r.index), [2, 4, 5]);
  assert.match(s.rejected[0].reason, /257 characters/);
  assert.match(s.rejected[1].reason, /1048579 bytes/);
  const back = await streamRecords(stream);
  assert.deepEqual(back.map((r) => [r.PartitionKey, r.Data.toString()]).sort(), [['good-1', 'one'], [k256, 'two']]);
});

// ------------------------------------------------------------------ faults

/** SQL generating records i in [from, to): key pk-(i % keys), data {"k","n","i"}. */
const faultRecords = (from, to, keys) => `
  SELECT array_agg('pk-' || (i % ${keys}) ORDER BY i) AS k,
         array_agg(json_build_object('k', 'pk-' || (i % ${keys}), 'n', i / ${keys}, 'i', i)::text ORDER BY i) AS d
    FROM generate_series(${from}, ${to - 1}) i`;

/** Read a fault test's stream back from kinesalite: delivered, duplicates, order. */
async function readBack(stream, total) {
  const recs = await streamRecords(stream);
  const parsed = recs.map((r) => ({ ...JSON.parse(r.Data.toString()), key: r.PartitionKey }));
  for (const p of parsed) assert.equal(p.k, p.key);
  const ids = new Set(parsed.map((p) => p.i));
  const missing = [];
  for (let i = 0; i < total && missing.length < 10; i++) if (!ids.has(i)) missing.push(i);
  const { overtaken } = orderCheck(parsed);
  return { stored: parsed.length, distinct: ids.size, duplicates: parsed.length - ids.size, missing, overtaken, recs };
}

test('under 5xx, throttling, resets (also after forwarding), delays and 30 % partial failures, 100,000 records all arrive in key order', async (t) => {
  const stream = await createStream(uniqueName('kflt'), 4);
  const ep = await endpoint(stream);
  const keys = 2000;
  const match = { target: 'PutRecords$', stream: exactly(stream) };
  const opts = lit(JSON.stringify({})); // the default: strict_key_order
  const stats = [];
  try {
    // half with failures before anything is stored, half with resets after kinesalite stored the request
    await kp.setFaults({ match, put_records_fail_rate: 0.3, http_fail_rate: 0.05, fail_status: 500,
      throttle_rate: 0.05, reset_rate: 0.05, delay_ms: 5 });
    stats.push(await sqlJson(`WITH r AS (${faultRecords(0, 50000, keys)})
      SELECT dms_stream.kinesis_put_records(${lit(ep)}, r.k, r.d, 8, options => ${opts}) FROM r;`));
    await kp.setFaults({ match, put_records_fail_rate: 0.3, http_fail_rate: 0.05, fail_status: 503,
      throttle_rate: 0.05, reset_rate: 0.1, reset_after_forward: true });
    stats.push(await sqlJson(`WITH r AS (${faultRecords(50000, 100000, keys)})
      SELECT dms_stream.kinesis_put_records(${lit(ep)}, r.k, r.d, 8, options => ${opts}) FROM r;`));
  } finally {
    await kp.setFaults({});
  }
  const faults = (await kp.requests({ stream: exactly(stream), op: '^PutRecords$' }))
    .flatMap((r) => r.faults).reduce((m, f) => ({ ...m, [f]: (m[f] ?? 0) + 1 }), {});
  const sum = (k) => stats.reduce((a, s) => a + s[k], 0);
  const r = await readBack(stream, 100000);
  t.diagnostic(`proxy faults on this stream's PutRecords: ${JSON.stringify(faults)}`);
  t.diagnostic(`batcher: requests ${sum('requests')}, HTTP retries ${sum('request_retries')}, entries failed ${sum('entries_failed')} `
    + `(throttled ${sum('entries_throttled')}), retried ${sum('entries_retried')}, requeued requests ${sum('requests_requeued')}, `
    + `max in flight ${Math.max(...stats.map((s) => s.max_in_flight))}`);
  t.diagnostic(`stored ${r.stored} records: ${r.distinct} distinct, ${r.duplicates} duplicates, ${r.overtaken} out of key order`);

  assert.deepEqual(r.missing, [], 'no record lost');
  assertStreamInvariants(r.recs, { what: 'strict order under faults', idOf: (rec) => JSON.parse(rec.Data).i,
    expected: Array.from({ length: 100000 }, (_, i) => i) });
  assert.equal(r.distinct, 100000);
  assert.equal(sum('records'), 100000);
  for (const s of stats) {
    assert.equal(s.double_acks, 0, 'each record acknowledged once');
    assert.equal(s.acked_through, 50000, 'the acknowledged prefix reaches the last record');
    assert.equal(Object.values(s.acks_by_shard).reduce((a, b) => a + b, 0), 50000);
  }
  assert.equal(r.overtaken, 0, 'every partition key in order (first copies)');
  assert.equal(sum('entries_reordered'), 0);
  assert.ok(sum('entries_failed') > 0 && sum('entries_throttled') > 0, 'partial failures were retried');
  assert.ok(sum('request_retries') > 0, 'request-level faults were retried');
  assert.ok(faults.reset_after_forward > 0 && faults.put_records > 0 && faults.throttle > 0 && faults.http_fail > 0 && faults.reset > 0,
    `every kind of fault happened: ${JSON.stringify(faults)}`);
  // a request stored by kinesalite whose answer was lost is sent again: duplicates, never losses
  assert.ok(r.duplicates > 0, 'reset_after_forward created duplicates');
});

test('strict_key_order off, under faults without lost answers: no duplicate, and every reordering is the one counted', async (t) => {
  const stream = await createStream(uniqueName('kreo'), 2);
  const ep = await endpoint(stream);
  let s;
  try {
    await kp.setFaults({ match: { target: 'PutRecords$', stream: exactly(stream) }, put_records_fail_rate: 0.3,
      http_fail_rate: 0.05, throttle_rate: 0.05, reset_rate: 0.05, delay_ms: 5 });
    s = await sqlJson(`WITH r AS (${faultRecords(0, 20000, 200)})
      SELECT dms_stream.kinesis_put_records(${lit(ep)}, r.k, r.d, 4,
        options => ${lit(JSON.stringify({ strict_key_order: false }))}) FROM r;`);
  } finally {
    await kp.setFaults({});
  }
  const r = await readBack(stream, 20000);
  t.diagnostic(`stored ${r.stored}, duplicates ${r.duplicates}, overtaken inside a request ${r.overtaken}, `
    + `counted by the batcher ${s.entries_reordered}; entries failed ${s.entries_failed}, HTTP retries ${s.request_retries}`);
  assert.deepEqual(r.missing, []);
  assert.equal(s.double_acks, 0);
  assert.equal(s.acked_through, 20000);
  assert.equal(r.duplicates, 0, 'an accepted record is never sent again');
  assert.ok(s.entries_reordered > 0, 'several records of a key per request, 30 % rejected: some get overtaken');
  assert.equal(r.overtaken, s.entries_reordered, 'only the reorderings Kinesis causes inside a request, each counted');
});

// ------------------------------------------------------------------ errors

test('a wrong secret or a missing stream gives a clear error naming the endpoint and stream', async () => {
  const stream = await createStream(uniqueName('kerr'), 1);
  const bad = await endpoint(stream, { secret: 'not-the-secret' });
  const put = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(bad)}, ARRAY['a'], ARRAY['x']);`);
  assert.ok(!put.ok);
  assert.match(put.error, new RegExp(`Kinesis PutRecords on stream "${stream}" of endpoint "${bad}" failed: \\w*Signature`));
  assert.match(put.error, /HINT:.*secret access key/);
  const desc = await psqlTry(`SELECT dms_stream.kinesis_describe_stream(${lit(bad)});`);
  assert.match(desc.error, new RegExp(`Kinesis DescribeStreamSummary on stream "${stream}" of endpoint "${bad}" failed`));

  const missing = await endpoint('no-such-stream-' + uniqueName('x'));
  const m = await psqlTry(`SELECT dms_stream.kinesis_put_records(${lit(missing)}, ARRAY['a'], ARRAY['x']);`);
  assert.match(m.error, new RegExp(`Kinesis PutRecords on stream "no-such-stream-.*" of endpoint "${missing}" failed: ResourceNotFoundException`));
  assert.match(m.error, /HINT:.*stream name/);
  assert.equal((await streamRecords(stream)).length, 0);
});

test('pg_cancel_backend during a hung PutRecords returns with the cancel error', async (t) => {
  const stream = await createStream(uniqueName('khang'), 1);
  const ep = await endpoint(stream);
  const app = uniqueName('khang');
  try {
    await kp.setFaults({ match: { target: 'PutRecords$', stream: exactly(stream) }, hang: true });
    const done = psqlTry(`SET application_name = ${lit(app)};
      SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY['a', 'b'], ARRAY['x', 'y']);`);
    // waiting in the HTTP layer (wait event Extension) on the hung request
    const pid = await waitFor(async () => {
      const r = await psqlTry(`SELECT pid FROM pg_stat_activity WHERE application_name = ${lit(app)}
        AND state = 'active' AND wait_event = 'Extension';`);
      return r.ok && r.rows.length ? r.rows[0][0] : null;
    }, { timeoutMs: 30000, intervalMs: 100, what: 'PutRecords to hang' });
    await sleep(500);
    const t0 = Date.now();
    await psql(`SELECT pg_cancel_backend(${pid});`);
    const r = await done;
    t.diagnostic(`cancel returned after ${Date.now() - t0} ms`);
    assert.ok(!r.ok);
    assert.match(r.error, /canceling statement due to user request/);
    // the proxy saw the request hang (its journal entry is written when the client leaves)
    await waitFor(async () => (await kp.requests({ stream: exactly(stream), op: '^PutRecords$' }))
      .some((h) => h.faults.includes('hang')), { timeoutMs: 10000, what: 'the hang in the proxy journal' });
  } finally {
    await kp.setFaults({});
  }
});

test('only dms_stream_admin may call the Kinesis utilities', async () => {
  const stream = await createStream(uniqueName('kpriv'), 1);
  const ep = await endpoint(stream);
  const user = `kin_user_${Date.now().toString(36)}`;
  const admin = `kin_admin_${Date.now().toString(36)}`;
  await psql(`CREATE ROLE ${user}; CREATE ROLE ${admin} IN ROLE dms_stream_admin;`);
  try {
    const calls = [
      `dms_stream.kinesis_describe_stream(${lit(ep)})`,
      `(SELECT count(*) FROM dms_stream.kinesis_read_records(${lit(ep)}))`,
      `dms_stream.kinesis_put_records(${lit(ep)}, ARRAY['a'], ARRAY['x'])`,
      `dms_stream.kinesis_put_binary_records(${lit(ep)}, ARRAY['a'], ARRAY['\\x00'::bytea])`,
    ];
    for (const call of calls) {
      const r = await psqlTry(`SET ROLE ${user}; SELECT ${call};`);
      assert.ok(!r.ok, call);
      assert.match(r.error, /permission denied for function kinesis_/, call);
    }
    const ok = await psqlTry(`SET ROLE ${admin}; SELECT ${calls[2]} ->> 'records';`);
    assert.ok(ok.ok, ok.error);
    assert.equal(ok.rows[ok.rows.length - 1][0], '1');
  } finally {
    await psql(`DROP ROLE ${user}; DROP ROLE ${admin};`);
  }
});
