// settings_timeouts.test.mjs — the SQL-callable network functions take no
// longer than the dms_stream.http_* settings say, report the attempts they
// really made, and a query cancel or statement_timeout ends a retry wait at
// once.
//
// The endpoints are a closed port (connection refused at once) and a TCP
// server started here that accepts connections and never answers; a small
// HTTP server started here plays an S3 endpoint whose CompleteMultipartUpload
// answers 200 with an <Error> body (a retryable InternalError). Only the bed's
// PostgreSQL is used.
//
// Run with the bed up: source test/bed/env.sh &&
//   node --test --test-concurrency=1 test/integration/settings_timeouts.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { env, psql, run, sleep, uniqueName, waitFor } from '../lib/bed.mjs';

const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);

let closedUrl; // nobody listens there
let silent; // accepts and never answers
let silentUrl;
const silentSockets = new Set();
let s3fake; // S3 whose CompleteMultipartUpload fails inside a 200
let s3fakeUrl;
let completes = 0;

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

before(async () => {
  const probe = net.createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  closedUrl = `http://127.0.0.1:${port}/`;

  silent = net.createServer((sock) => {
    silentSockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => silentSockets.delete(sock));
    sock.resume(); // read and drop whatever comes, answer nothing
  });
  silentUrl = `http://127.0.0.1:${await listen(silent)}/`;

  s3fake = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && u.searchParams.has('uploads')) {
        res.writeHead(200, { 'content-type': 'application/xml' });
        return res.end('<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult>'
          + '<Bucket>b</Bucket><Key>k</Key><UploadId>UP1</UploadId></InitiateMultipartUploadResult>');
      }
      if (req.method === 'PUT' && u.searchParams.has('partNumber')) {
        res.writeHead(200, { etag: `"etag-${u.searchParams.get('partNumber')}"` });
        return res.end();
      }
      if (req.method === 'POST' && u.searchParams.has('uploadId')) {
        completes++;
        res.writeHead(200, { 'content-type': 'application/xml' });
        return res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
          + '<Message>We encountered an internal error. Please try again.</Message><RequestId>R1</RequestId></Error>');
      }
      if (req.method === 'DELETE') {
        res.writeHead(204);
        return res.end();
      }
      res.writeHead(404);
      return res.end();
    });
  });
  s3fakeUrl = `http://127.0.0.1:${await listen(s3fake)}/`;

  await psql(`DO $$ BEGIN
      IF to_regproc('dms_stream.create_endpoint') IS NULL THEN CREATE EXTENSION dms_stream; END IF;
    END $$;`);
});

after(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise((r) => silent.close(r));
  await new Promise((r) => s3fake.close(r));
});

/** A Kinesis or S3 target endpoint at url with the bed's keys; returns its name. */
async function endpoint(engine, url) {
  const name = uniqueName(engine === 'kinesis' ? 'tok' : 'tos');
  const settings = engine === 'kinesis' ? { StreamName: 'timeouts' } : { BucketName: 'timeouts' };
  await psql(`SELECT dms_stream.create_endpoint(${lit(name)}, ${lit(engine)}, 'target', ${lit(JSON.stringify(settings))}, ${lit(url)}, 'us-east-1', 'path');
    SELECT dms_stream.set_endpoint_credentials(${lit(name)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});`);
  return name;
}

/**
 * Run one statement after SET-ting the given settings (statement_timeout
 * 60 s unless given, so that the old multiplied retries fail the test
 * instead of hanging it); resolves {ok, error, ms}.
 */
async function timed(settings, statement, { app } = {}) {
  const sets = { statement_timeout: '60s', ...settings };
  const sql = `\\set QUIET on\n${Object.entries(sets).map(([k, v]) => `SET ${k} = ${lit(v)};`).join('\n')}\n${statement}\n`;
  const t0 = Date.now();
  const r = await run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'],
    { input: sql, env: app ? { PGAPPNAME: app } : {} });
  return { ok: r.status === 0, error: r.stderr.trim(), ms: Date.now() - t0 };
}

/** The attempt count of the DETAIL line. */
function attempts(error) {
  const m = /DETAIL:.*; (\d+) attempts? in \d+ ms/.exec(error);
  assert.ok(m, `a DETAIL with the attempts: ${error}`);
  return Number(m[1]);
}

const putOne = (ep, options = null) =>
  `SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY['k'], ARRAY['x']${options ? `, options => ${lit(JSON.stringify(options))}` : ''});`;

// ------------------------------------------------------------------ closed port, silent server

test('kinesis_put_records against a closed port: 1 + http_max_retries attempts, as DETAIL says, in seconds', async () => {
  const ep = await endpoint('kinesis', closedUrl);
  const r = await timed({ 'dms_stream.http_max_retries': '2' }, putOne(ep));
  assert.ok(!r.ok);
  assert.match(r.error, /Kinesis PutRecords on stream "timeouts" of endpoint .* failed: Couldn't connect to server/);
  assert.doesNotMatch(r.error, /statement timeout/);
  assert.equal(attempts(r.error), 3, 'one attempt and two retries');
  // three refused connections and two backoffs of at most 100 and 200 ms
  assert.ok(r.ms < 15000, `took ${r.ms} ms`);
});

test('kinesis_put_records against a server that never answers: each attempt ends at http_request_timeout', async () => {
  const ep = await endpoint('kinesis', silentUrl);
  const r = await timed({ 'dms_stream.http_max_retries': '1', 'dms_stream.http_request_timeout': '1s' }, putOne(ep));
  assert.ok(!r.ok);
  assert.match(r.error, /failed: Timeout was reached/);
  assert.doesNotMatch(r.error, /statement timeout/);
  assert.equal(attempts(r.error), 2);
  assert.ok(r.ms < 15000, `2 attempts of 1 s took ${r.ms} ms`);
});

test('dms_stream.http_total_timeout bounds all the attempts of a request and says so', async () => {
  const ep = await endpoint('kinesis', silentUrl);
  const r = await timed({
    'dms_stream.http_max_retries': '10', 'dms_stream.http_request_timeout': '2s', 'dms_stream.http_total_timeout': '3s',
  }, putOne(ep));
  assert.ok(!r.ok);
  assert.match(r.error, /no time left for a retry within dms_stream\.http_total_timeout \(3000 ms\)/);
  assert.match(r.error, /HINT:.*http_total_timeout|HINT:.*http_request_timeout/);
  const n = attempts(r.error);
  assert.ok(n >= 1 && n <= 3, `${n} attempts of at most 2 s fit in 3 s`);
  assert.ok(r.ms < 12000, `a 3 s budget took ${r.ms} ms`);
});

test('S3 functions against a closed port and a silent server are bounded the same way', async () => {
  const closed = await endpoint('s3', closedUrl);
  let r = await timed({ 'dms_stream.http_max_retries': '2' },
    `SELECT dms_stream.s3_put_object(${lit(closed)}, 'a/b.txt', 'hello'::bytea);`);
  assert.ok(!r.ok);
  assert.match(r.error, /Couldn't connect to server/);
  assert.equal(attempts(r.error), 3);
  assert.ok(r.ms < 15000, `took ${r.ms} ms`);

  const quiet = await endpoint('s3', silentUrl);
  r = await timed({ 'dms_stream.http_max_retries': '5', 'dms_stream.http_request_timeout': '1500ms', 'dms_stream.http_total_timeout': '2s' },
    `SELECT dms_stream.s3_get_object(${lit(quiet)}, 'a/b.txt');`);
  assert.ok(!r.ok);
  assert.match(r.error, /Timeout was reached/);
  assert.match(r.error, /http_total_timeout \(2000 ms\)/);
  assert.ok(attempts(r.error) <= 2);
  assert.ok(r.ms < 12000, `a 2 s budget took ${r.ms} ms`);
});

test('CompleteMultipartUpload failing inside 200 answers stops retrying at http_total_timeout', async () => {
  const ep = await endpoint('s3', s3fakeUrl);
  completes = 0;
  // 100 retries would sleep 0.2 + 0.4 + ... + 20 s = 1010 s between them
  const r = await timed({ 'dms_stream.http_max_retries': '100', 'dms_stream.http_total_timeout': '3s' },
    `SELECT dms_stream.s3_put_generated_object(${lit(ep)}, 'big/obj', 6 * 1024 * 1024, 5 * 1024 * 1024, 1);`);
  assert.ok(!r.ok);
  assert.match(r.error, /CompleteMultipartUpload/);
  assert.match(r.error, /InternalError/);
  assert.doesNotMatch(r.error, /statement timeout/);
  assert.ok(completes >= 2 && completes <= 10, `${completes} CompleteMultipartUpload requests in 3 s`);
  assert.ok(r.ms < 15000, `took ${r.ms} ms`);
});

test('records of failed requests sent again (requeue_failed_requests, as tasks do): DETAIL counts every attempt', async () => {
  const ep = await endpoint('kinesis', closedUrl);
  // 3 requests (the first and 2 record retries) of 2 attempts each
  const r = await timed({ 'dms_stream.http_max_retries': '1' },
    putOne(ep, { requeue_failed_requests: true, max_record_retries: 2 }));
  assert.ok(!r.ok);
  assert.match(r.error, /Couldn't connect to server/);
  assert.equal(attempts(r.error), 6);
  assert.ok(r.ms < 15000, `took ${r.ms} ms`);
});

// ------------------------------------------------------------------ interrupts

/** Start a statement under application_name app; resolves once it runs (its pid). */
async function startBackground(app, settings, statement) {
  const done = timed(settings, statement, { app });
  const pid = await waitFor(async () => {
    const rows = await psql(`SELECT pid FROM pg_stat_activity WHERE application_name = ${lit(app)} AND state = 'active'`);
    return rows.length ? rows[0][0] : null;
  }, { timeoutMs: 20000, what: `${app} to run` });
  return { done, pid };
}

test('pg_cancel_backend ends a retry wait at once', async () => {
  const ep = await endpoint('kinesis', closedUrl);
  const app = uniqueName('cancel');
  // 100 retries: the backoffs grow to 20 s
  const { done, pid } = await startBackground(app, { 'dms_stream.http_max_retries': '100' }, putOne(ep));
  await sleep(4000);
  const t0 = Date.now();
  await psql(`SELECT pg_cancel_backend(${pid})`);
  const r = await done;
  assert.ok(!r.ok);
  assert.match(r.error, /canceling statement due to user request/);
  assert.ok(Date.now() - t0 < 5000, `the cancel took ${Date.now() - t0} ms`);
});

test('statement_timeout ends a retry wait at once', async () => {
  const ep = await endpoint('kinesis', closedUrl);
  const r = await timed({ 'dms_stream.http_max_retries': '100', statement_timeout: '3s' }, putOne(ep));
  assert.ok(!r.ok);
  assert.match(r.error, /canceling statement due to statement timeout/);
  assert.ok(r.ms < 9000, `a 3 s statement_timeout took ${r.ms} ms`);
});
