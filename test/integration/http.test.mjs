// The HTTP layer (src/http.c) through dms_stream.http_request and
// http_request_many: concurrency, connection reuse, retries with backoff,
// AWS error parsing, timeouts, and interrupts (query cancel, statement
// timeout, SIGTERM) while a request hangs.
//
// Most cases run against a small HTTP server started by this file on
// 127.0.0.1 (hanging, slow, flaky and AWS-error endpoints); the last ones go
// through the test bed's SigV4-verifying fault proxies and are skipped when
// the bed is not running.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  env, psqlTry, run, proxy, createBucket, createStream, uniqueName, sleep, waitFor,
} from '../lib/bed.mjs';

// ------------------------------------------------------------------ local server

const hits = new Map(); // key -> number of requests seen
const hanging = new Set(); // sockets of requests left hanging
const closedHangs = []; // times at which a hanging request's socket closed
let server;
let base;

function xmlError(code, message, requestId) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<Resource>/b/k</Resource><RequestId>${requestId}</RequestId></Error>`;
}

function handler(req, res) {
  const u = new URL(req.url, 'http://x');
  const q = Object.fromEntries(u.searchParams);
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const key = q.key ?? u.pathname;
    const n = (hits.get(key) ?? 0) + 1;
    hits.set(key, n);
    const fail = n <= Number(q.fail ?? 0);
    switch (u.pathname.startsWith('/echo') ? '/echo' : u.pathname) {
      case '/ok':
        res.writeHead(200, { 'x-amz-request-id': 'REQ-OK-1', 'content-type': 'text/plain' });
        return res.end('hello');
      case '/echo':
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('base64') }));
      case '/delay':
        return setTimeout(() => { res.writeHead(200); res.end(`slept ${q.ms}`); }, Number(q.ms));
      case '/hang':
        hanging.add(req.socket);
        req.socket.on('close', () => { hanging.delete(req.socket); closedHangs.push(Date.now()); });
        return undefined;
      case '/s3-error': // S3-style XML error, `fail` times, then 200
        if (fail) {
          res.writeHead(Number(q.status), { 'content-type': 'application/xml', 'x-amz-request-id': `REQ-${n}` });
          return res.end(xmlError(q.code, `${q.code} for the test, attempt ${n}`, `XMLREQ-${n}`));
        }
        res.writeHead(200, { 'x-amz-request-id': `REQ-${n}` });
        return res.end(`ok after ${n}`);
      case '/json-error': // Kinesis-style JSON error, `fail` times, then 200
        if (fail) {
          res.writeHead(Number(q.status ?? 400), { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': `JSONREQ-${n}` });
          return res.end(JSON.stringify({ __type: `com.amazonaws.kinesis.v20131202#${q.code}`, message: `${q.code} attempt ${n}` }));
        }
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': `JSONREQ-${n}` });
        return res.end('{}');
      case '/status': // bare status, no body
        res.writeHead(Number(q.status), q.retryAfter && fail ? { 'retry-after': q.retryAfter } : {});
        return res.end();
      case '/flaky-status': // status `fail` times, then 200
        res.writeHead(fail ? Number(q.status) : 200, fail && q.retryAfter ? { 'retry-after': q.retryAfter } : {});
        return res.end(fail ? '' : `ok after ${n}`);
      case '/reset': // drop the connection `fail` times
        if (fail) return req.socket.destroy();
        res.writeHead(200);
        return res.end(`ok after ${n}`);
      case '/big':
        res.writeHead(200);
        return res.end(Buffer.alloc(Number(q.bytes), 'x'));
      default:
        res.writeHead(404);
        return res.end();
    }
  });
}

before(async () => {
  server = http.createServer({ keepAliveTimeout: 30000 }, handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
  const r = await psqlTry(`SET client_min_messages = warning;
    DO $$ BEGIN
      IF to_regproc('dms_stream.http_request') IS NULL THEN CREATE EXTENSION dms_stream; END IF;
    END $$;`);
  assert.ok(r.ok, r.error);
});

after(async () => {
  for (const s of hanging) s.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

// ------------------------------------------------------------------ helpers

const uniq = () => randomBytes(6).toString('hex');
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const PRELUDE = '\\set QUIET on\n\\set VERBOSITY verbose\nSET client_min_messages = warning;\n';

// One http_request call; resolves the result row as an object.
async function request(method, url, { headers = null, body = null, service = null, region = null, akid = null,
  secret = null, timeoutMs = null, maxRetries = null, sqlBefore = '' } = {}) {
  const sql = `${PRELUDE}${sqlBefore}
    SELECT row_to_json(r) FROM dms_stream.http_request(${lit(method)}, ${lit(url)},
      ${headers ? lit(JSON.stringify(headers)) + '::jsonb' : 'NULL'},
      ${body === null ? 'NULL' : `decode(${lit(Buffer.from(body).toString('base64'))}, 'base64')`},
      ${lit(service)}, ${lit(region)}, ${lit(akid)}, ${lit(secret)}, NULL,
      ${timeoutMs ?? 'NULL'}, ${maxRetries ?? 'NULL'}) r;`;
  const r = await psqlTry(sql);
  assert.ok(r.ok, r.error);
  const row = JSON.parse(r.rows.at(-1)[0]);
  row.body = Buffer.from(row.response_body.replace(/^\\x/, ''), 'hex').toString();
  return row;
}

// SQL that must fail; resolves psql's stderr.
async function sqlError(sql) {
  const r = await psqlTry(PRELUDE + sql);
  assert.ok(!r.ok, `expected an error, got ${JSON.stringify(r.rows)}`);
  return r.error;
}

// ------------------------------------------------------------------ basics

test('GET: status, body, response headers and request id', async () => {
  const r = await request('GET', `${base}/ok`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello');
  assert.equal(r.response_headers['x-amz-request-id'], 'REQ-OK-1');
  assert.equal(r.request_id, 'REQ-OK-1');
  assert.equal(r.attempts, 1);
  assert.equal(r.error_code, null);
});

test('methods and bodies go out as given: no form Content-Type, no Expect, path kept as is', async () => {
  const body = Buffer.from('a,b\n1,2\n'.repeat(200000)); // 1.6 MB: curl would add Expect
  const put = JSON.parse((await request('PUT', `${base}/echo/dir/./x/../a%20b?x=1%2F2`, { body, headers: { 'x-amz-meta-a': 'v' } })).body);
  assert.equal(put.method, 'PUT');
  assert.equal(put.url, '/echo/dir/./x/../a%20b?x=1%2F2');
  assert.equal(Buffer.from(put.body, 'base64').length, body.length);
  assert.equal(put.headers['content-length'], String(body.length));
  assert.equal(put.headers['content-type'], undefined);
  assert.equal(put.headers.expect, undefined);
  assert.equal(put.headers['x-amz-meta-a'], 'v');
  assert.match(put.headers['user-agent'], /^dms_stream\/\S+ libcurl\//);

  const post = JSON.parse((await request('POST', `${base}/echo`, { body: '{"a":1}', headers: { 'Content-Type': 'application/x-amz-json-1.1' } })).body);
  assert.equal(post.method, 'POST');
  assert.equal(post.headers['content-type'], 'application/x-amz-json-1.1');
  assert.equal(Buffer.from(post.body, 'base64').toString(), '{"a":1}');

  const del = JSON.parse((await request('DELETE', `${base}/echo?uploadId=abc`)).body);
  assert.equal(del.method, 'DELETE');
  const head = await request('HEAD', `${base}/ok`);
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('signed requests carry the SigV4 headers', async () => {
  const r = await request('PUT', `${base}/echo/b/k`, { body: 'x', service: 's3', region: 'eu-west-1', akid: 'AKID', secret: 'SECRET' });
  const h = JSON.parse(r.body).headers;
  assert.match(h.authorization, /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/);
  assert.equal(h['x-amz-content-sha256'], '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881');
  assert.match(h['x-amz-date'], /^\d{8}T\d{6}Z$/);
});

test('a 5 MB answer arrives whole', async () => {
  const r = await request('GET', `${base}/big?bytes=5000000`);
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 5000000);
});

// ------------------------------------------------------------------ concurrency and reuse

test('http_request_many runs requests concurrently', async () => {
  const reqs = Array.from({ length: 12 }, (_, i) => ({ method: 'GET', url: `${base}/delay?ms=700&i=${i}` }));
  const r = await psqlTry(`${PRELUDE}
    SELECT clock_timestamp() AS t0 \\gset
    SELECT count(*) FILTER (WHERE status = 200), max(elapsed_ms)::int,
           (extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000)::int
      FROM dms_stream.http_request_many(${lit(JSON.stringify(reqs))});`);
  assert.ok(r.ok, r.error);
  const [ok, maxElapsed, wall] = r.rows.at(-1).map(Number);
  assert.equal(ok, 12);
  assert.ok(maxElapsed >= 690, `max elapsed ${maxElapsed}`);
  assert.ok(wall < 3000, `12 x 700 ms took ${wall} ms: not concurrent`);
});

test('connections are reused across calls in the same session', async () => {
  const r = await psqlTry(`${PRELUDE}
    SELECT reused_connection FROM dms_stream.http_request('GET', '${base}/ok');
    SELECT reused_connection FROM dms_stream.http_request('GET', '${base}/ok');
    SELECT reused_connection FROM dms_stream.http_request('GET', '${base}/echo');`);
  assert.ok(r.ok, r.error);
  assert.deepEqual(r.rows.map((x) => x[0]), ['f', 't', 't']);
});

test('300 requests in one session do not grow backend memory', async () => {
  const q = (count) => `SELECT count(*) FILTER (WHERE r.status = 200)
      FROM generate_series(1, ${count}) g,
           LATERAL dms_stream.http_request('PUT', '${base}/echo/' || g, '{"Content-Type": "text/plain"}',
                                           convert_to(repeat('x', g * 10), 'UTF8'), 's3', 'us-east-1', 'A', 'S') r;`;
  // a warm-up round first: catalog caches and local buffers grow once
  const r = await psqlTry(`${PRELUDE}
    CREATE TEMP TABLE m (b bigint);
    INSERT INTO m VALUES (0);
    ${q(30)}
    UPDATE m SET b = (SELECT sum(total_bytes) FROM pg_backend_memory_contexts);
    ${q(300)}
    SELECT (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) - b FROM m;`);
  assert.ok(r.ok, r.error);
  const [warm, ok, growth] = r.rows.slice(-3).map((x) => Number(x[0]));
  assert.equal(warm, 30);
  assert.equal(ok, 300);
  assert.ok(growth < 64 * 1024, `backend memory grew by ${growth} bytes`);
});

// ------------------------------------------------------------------ retries and errors

test('S3 503 SlowDown is retried with backoff, then succeeds', async () => {
  const k = uniq();
  const r = await request('GET', `${base}/s3-error?key=${k}&fail=2&status=503&code=SlowDown`, { maxRetries: 5 });
  assert.equal(r.status, 200);
  assert.equal(r.attempts, 3);
  assert.equal(r.body, 'ok after 3');
  assert.equal(hits.get(k), 3);
});

test('Kinesis ProvisionedThroughputExceededException (400) is retried; ValidationException is not', async () => {
  const k = uniq();
  const r = await request('POST', `${base}/json-error?key=${k}&fail=2&code=ProvisionedThroughputExceededException`, { body: '{}', maxRetries: 5 });
  assert.equal(r.status, 200);
  assert.equal(r.attempts, 3);

  const v = uniq();
  const bad = await request('POST', `${base}/json-error?key=${v}&fail=9&code=ValidationException`, { body: '{}', maxRetries: 5 });
  assert.equal(bad.status, 400);
  assert.equal(bad.attempts, 1);
  assert.equal(hits.get(v), 1);
  assert.equal(bad.error_code, 'ValidationException');
  assert.equal(bad.error_message, 'ValidationException attempt 1');
  assert.equal(bad.request_id, 'JSONREQ-1');
});

test('S3 XML errors: code, message and request id parsed; 4xx not retried', async () => {
  const k = uniq();
  const r = await request('GET', `${base}/s3-error?key=${k}&fail=9&status=404&code=NoSuchKey`, { maxRetries: 5 });
  assert.equal(r.status, 404);
  assert.equal(r.attempts, 1);
  assert.equal(r.error_code, 'NoSuchKey');
  assert.equal(r.error_message, 'NoSuchKey for the test, attempt 1');
  assert.equal(r.request_id, 'REQ-1'); // the header wins over the body
});

test('5xx is retried up to max_retries; 501 and bare 403 are not', async () => {
  const k = uniq();
  const r = await request('GET', `${base}/flaky-status?key=${k}&fail=99&status=500`, { maxRetries: 3 });
  assert.equal(r.status, 500);
  assert.equal(r.attempts, 4);
  assert.equal(hits.get(k), 4);
  const k0 = uniq();
  const r0 = await request('GET', `${base}/flaky-status?key=${k0}&fail=99&status=500`, { maxRetries: 0 });
  assert.equal(r0.attempts, 1);
  for (const status of [501, 403]) {
    const k2 = uniq();
    const r2 = await request('GET', `${base}/flaky-status?key=${k2}&fail=99&status=${status}`, { maxRetries: 3 });
    assert.equal(r2.status, status);
    assert.equal(r2.attempts, 1, `HTTP ${status} was retried`);
  }
});

test('429 with Retry-After is retried after the given delay', async () => {
  const k = uniq();
  const r = await request('GET', `${base}/flaky-status?key=${k}&fail=1&status=429&retryAfter=1`, { maxRetries: 2 });
  assert.equal(r.status, 200);
  assert.equal(r.attempts, 2);
  assert.ok(r.elapsed_ms >= 950, `retried after ${r.elapsed_ms} ms`);
});

test('connection resets and refused connections are retried', async () => {
  const k = uniq();
  const r = await request('GET', `${base}/reset?key=${k}&fail=2`, { maxRetries: 4 });
  assert.equal(r.status, 200);
  assert.equal(r.attempts, 3);

  const closed = net.createServer();
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  const refused = await request('GET', `http://127.0.0.1:${port}/`, { maxRetries: 2 });
  assert.equal(refused.status, 0);
  assert.equal(refused.attempts, 3);
  assert.match(refused.transport_error, /connect/i);
});

test('a request that does not answer times out, is retried, then reports the timeout', async () => {
  const r = await request('GET', `${base}/hang`, { timeoutMs: 1000, maxRetries: 1 });
  assert.equal(r.status, 0);
  assert.equal(r.attempts, 2);
  assert.match(r.transport_error, /timed out/i);
  assert.ok(r.elapsed_ms >= 2000 && r.elapsed_ms < 6000, `elapsed ${r.elapsed_ms}`);
});

test('raise_error: SQLSTATE, AWS code, message, request id and hint', async () => {
  const k = uniq();
  let err = await sqlError(`SELECT * FROM dms_stream.http_request('GET', '${base}/s3-error?key=${k}&fail=9&status=403&code=AccessDenied',
      raise_error => true);`);
  assert.match(err, /ERROR:  42501: HTTP request failed: AccessDenied/);
  assert.match(err, /DETAIL:  GET http:\/\/127\.0\.0\.1:\d+\/s3-error\?\S+ answered HTTP status 403, AWS error AccessDenied: AccessDenied for the test, attempt 1; request id REQ-1; 1 attempt in \d+ ms\./);
  assert.match(err, /HINT:  Grant the IAM principal/);

  err = await sqlError(`SELECT * FROM dms_stream.http_request('POST', '${base}/json-error?key=${uniq()}&fail=9&code=ProvisionedThroughputExceededException',
      body => '{}', max_retries => 2, raise_error => true);`);
  assert.match(err, /ERROR:  53000: HTTP request failed: ProvisionedThroughputExceededException/);
  assert.match(err, /3 attempts in \d+ ms/);
  assert.match(err, /HINT:  The service kept throttling after every retry/);

  err = await sqlError(`SELECT * FROM dms_stream.http_request('GET', '${base}/hang', timeout_ms => 1000, max_retries => 0, raise_error => true);`);
  assert.match(err, /ERROR:  08006: HTTP request failed: Timeout was reached/);
  assert.match(err, /DETAIL:  GET http:\/\/\S+\/hang: Operation timed out after \d+ milliseconds/);
  assert.match(err, /HINT:  The endpoint did not answer in time/);

  err = await sqlError(`SELECT * FROM dms_stream.http_request('GET', 'ftp://127.0.0.1/', max_retries => 3, raise_error => true);`);
  assert.match(err, /ERROR:  08006: HTTP request failed: Unsupported protocol/);
  assert.match(err, /1 attempt in/);
});

test('bad requests are refused before anything is sent', async () => {
  let err = await sqlError(`SELECT * FROM dms_stream.http_request('GET', '${base}/ok', '{"Bad Name": "v"}');`);
  assert.match(err, /ERROR:  22023: invalid HTTP header name "Bad Name"/);
  err = await sqlError(`SELECT * FROM dms_stream.http_request('GET', '${base}/ok', access_key_id => 'A', secret_access_key => 'S');`);
  assert.match(err, /ERROR:  22023: request 1 is signed but has no service or region/);
  err = await sqlError(`SELECT * FROM dms_stream.http_request_many('{"a": 1}');`);
  assert.match(err, /ERROR:  22023: requests must be a JSON array of objects/);
  err = await sqlError(`SELECT * FROM dms_stream.http_request_many('[{"method": "GET"}]');`);
  assert.match(err, /ERROR:  22023: request 1 needs "method" and "url"/);
});

test('PUBLIC cannot run the HTTP diagnostics', async () => {
  const err = await sqlError(`BEGIN; CREATE ROLE dms_http_probe; SET ROLE dms_http_probe;
    SELECT * FROM dms_stream.http_request('GET', '${base}/ok');`);
  assert.match(err, /ERROR:  42501: permission denied for function http_request/);
});

// ------------------------------------------------------------------ TLS and settings

// A self-signed certificate for 127.0.0.1 in a directory postgres can read.
function makeCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dms-http-tls-'));
  fs.chmodSync(dir, 0o755);
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  fs.chmodSync(cert, 0o644);
  return { dir, key, cert };
}

async function withTlsServer(fn) {
  const tls = makeCert();
  const srv = https.createServer({ key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert) }, handler);
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    return await fn(`https://127.0.0.1:${srv.address().port}`, tls.cert, srv.address().port);
  } finally {
    srv.closeAllConnections();
    await new Promise((resolve) => srv.close(resolve));
    fs.rmSync(tls.dir, { recursive: true, force: true });
  }
}

test('TLS certificates are verified by default and failures are not retried', async () => {
  await withTlsServer(async (url) => {
    const r = await request('GET', `${url}/ok`, { maxRetries: 3 });
    assert.equal(r.status, 0);
    assert.equal(r.attempts, 1);
    assert.match(r.transport_error, /certificate/i);
  });
});

test('settings: http_ca_bundle, http_max_retries, http_request_timeout', async () => {
  await withTlsServer(async (url, cert, port) => {
    const r = await psqlTry(`${PRELUDE}
      SET dms_stream.http_ca_bundle = '${cert}';
      SELECT status FROM dms_stream.http_request('GET', '${url}/ok');
      SELECT status FROM dms_stream.http_request('GET', 'https://localhost:${port}/ok', max_retries => 0);
      SET dms_stream.http_max_retries = 1;
      SELECT attempts FROM dms_stream.http_request('GET', '${base}/flaky-status?key=${uniq()}&fail=9&status=503');
      SET dms_stream.http_max_retries = 0;
      SET dms_stream.http_request_timeout = '1s';
      SELECT transport_error IS NOT NULL AND elapsed_ms < 5000 FROM dms_stream.http_request('GET', '${base}/hang');`);
    assert.ok(r.ok, r.error);
    assert.deepEqual(r.rows.map((x) => x[0]), ['200', '0', '2', 't']);
  });
  const r = await psqlTry(`SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'dms_stream.http\\_%' ORDER BY 1;`);
  assert.deepEqual(r.rows, [
    ['dms_stream.http_ca_bundle', '', '', 'superuser'],
    ['dms_stream.http_connect_timeout', '5000', 'ms', 'superuser'],
    ['dms_stream.http_max_retries', '5', '', 'superuser'],
    ['dms_stream.http_request_timeout', '60000', 'ms', 'superuser'],
    ['dms_stream.http_total_timeout', '300000', 'ms', 'superuser'],
  ]);
});

// ------------------------------------------------------------------ interrupts

// Start a hanging request in its own session; resolves {done, pid}.
async function startHanging(app, url = `${base}/hang`, sqlBefore = '') {
  const before = closedHangs.length;
  const done = psqlTry(`${PRELUDE}SET application_name = '${app}';${sqlBefore}
    SELECT status FROM dms_stream.http_request('GET', '${url}', timeout_ms => 600000, max_retries => 0);`);
  const pid = await waitFor(async () => {
    const r = await psqlTry(`SELECT pid FROM pg_stat_activity WHERE application_name = '${app}'
      AND state = 'active' AND query LIKE '%http_request%';`);
    return r.ok && r.rows.length ? r.rows[0][0] : null;
  }, { timeoutMs: 10000, intervalMs: 50, what: 'the hanging request to start' });
  await sleep(300); // let it really wait in the request
  return { done, pid, closedBefore: before };
}

test('pg_cancel_backend interrupts a hanging request at once and frees its connection', async (t) => {
  const { done, pid, closedBefore } = await startHanging(`hang-${uniq()}`);
  const t0 = Date.now();
  const c = await psqlTry(`SELECT pg_cancel_backend(${pid});`);
  assert.deepEqual(c.rows, [['t']]);
  const r = await done;
  const took = Date.now() - t0;
  assert.ok(!r.ok);
  assert.match(r.error, /canceling statement due to user request/);
  assert.ok(took < 5000, `cancel took ${took} ms`);
  t.diagnostic(`cancel returned after ${took} ms`);
  await waitFor(() => closedHangs.length > closedBefore, { timeoutMs: 3000, what: 'the hanging socket to close' });
});

test('statement_timeout interrupts a hanging request; the session keeps working', async (t) => {
  const t0 = Date.now();
  // psql without ON_ERROR_STOP: the script goes on after the timeout error
  const r = await run('psql', ['-X', '-At', '-d', env.PGDATABASE || 'postgres'], { input: `${PRELUDE}
    SET statement_timeout = 1000;
    SELECT status FROM dms_stream.http_request('GET', '${base}/hang', timeout_ms => 600000, max_retries => 0);
    RESET statement_timeout;
    SELECT status FROM dms_stream.http_request('GET', '${base}/ok');` });
  const took = Date.now() - t0;
  assert.match(r.stderr, /canceling statement due to statement timeout/);
  assert.equal(r.stdout.trim(), '200');
  assert.ok(took < 6000, `took ${took} ms`);
  t.diagnostic(`1 s statement_timeout + follow-up request: ${took} ms`);
});

test('pg_terminate_backend ends a session waiting in a request', async (t) => {
  const { done, pid } = await startHanging(`term-${uniq()}`);
  const t0 = Date.now();
  await psqlTry(`SELECT pg_terminate_backend(${pid});`);
  const r = await done;
  assert.ok(!r.ok);
  assert.match(r.error, /terminating connection due to administrator command/);
  assert.ok(Date.now() - t0 < 5000);
  t.diagnostic(`terminate returned after ${Date.now() - t0} ms`);
});

test('cancel interrupts the backoff wait between retries', async () => {
  const app = `backoff-${uniq()}`;
  const done = psqlTry(`${PRELUDE}SET application_name = '${app}';
    SELECT status FROM dms_stream.http_request('GET', '${base}/flaky-status?key=${uniq()}&fail=99&status=503&retryAfter=20', max_retries => 5);`);
  const pid = await waitFor(async () => {
    const r = await psqlTry(`SELECT pid FROM pg_stat_activity WHERE application_name = '${app}' AND state = 'active';`);
    return r.ok && r.rows.length ? r.rows[0][0] : null;
  }, { timeoutMs: 10000, intervalMs: 50 });
  await sleep(500);
  const t0 = Date.now();
  await psqlTry(`SELECT pg_cancel_backend(${pid});`);
  const r = await done;
  assert.match(r.error, /canceling statement due to user request/);
  assert.ok(Date.now() - t0 < 5000);
});

// ------------------------------------------------------------------ against the test bed

async function reachable(url) {
  if (!url) return false;
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) });
    s.setTimeout(1000);
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
    s.on('timeout', () => { s.destroy(); resolve(false); });
  });
}
const bedUp = (await reachable(env.S3_PROXY_URL)) && (await reachable(env.KINESIS_PROXY_URL));
const bedSkip = bedUp ? false : 'test bed proxies are not running (test/bed/start.sh)';
const AKID = env.AWS_ACCESS_KEY_ID || 'S3RVER';
const SECRET = env.AWS_SECRET_ACCESS_KEY || 'S3RVER';

test('bed: signed S3 PUT/GET through the verifying proxy; wrong secret gives SignatureDoesNotMatch', { skip: bedSkip }, async () => {
  const bucket = await createBucket(uniqueName('http'));
  const url = `${env.S3_PROXY_URL}/${bucket}/dir/a%20b%2Bc.csv`;
  const s3 = { service: 's3', region: 'us-east-1', akid: AKID, secret: SECRET };
  const put = await request('PUT', url, { ...s3, body: 'id\n1\n', headers: { 'Content-Type': 'text/csv' } });
  assert.equal(put.status, 200, put.body);
  const get = await request('GET', url, s3);
  assert.equal(get.status, 200);
  assert.equal(get.body, 'id\n1\n');
  const bad = await request('GET', url, { ...s3, secret: 'wrong' });
  assert.equal(bad.status, 403);
  assert.equal(bad.attempts, 1);
  assert.equal(bad.error_code, 'SignatureDoesNotMatch');
});

test('bed: throttling injected by the proxy is retried (S3 SlowDown, Kinesis PTE)', { skip: bedSkip }, async () => {
  const bucket = await createBucket(uniqueName('http'));
  const s3p = proxy('s3');
  try {
    await s3p.setFaults({ throttle_rate: 1, count: 2, match: { path: `^/${bucket}` } });
    const r = await request('PUT', `${env.S3_PROXY_URL}/${bucket}/t.csv`,
      { service: 's3', region: 'us-east-1', akid: AKID, secret: SECRET, body: 'x', maxRetries: 5 });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.attempts, 3);
  } finally {
    await s3p.setFaults({}); // not reset(): faults are global, leave others' counters alone
  }

  const stream = await createStream(uniqueName('http'), 1);
  const kp = proxy('kinesis');
  try {
    // DescribeStream: an operation the bed helpers do not use, so that the
    // (proxy-global) fault cannot hit another test's calls
    await kp.setFaults({ throttle_rate: 1, count: 2, match: { target: 'DescribeStream$' } });
    const r = await request('POST', `${env.KINESIS_PROXY_URL}/`, {
      service: 'kinesis', region: 'us-east-1', akid: AKID, secret: SECRET, maxRetries: 5,
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'Kinesis_20131202.DescribeStream' },
      body: JSON.stringify({ StreamName: stream }),
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.attempts, 3);
    assert.equal(JSON.parse(r.body).StreamDescription.Shards.length, 1);
  } finally {
    await kp.setFaults({});
  }
});

test('bed: a request hanging in the proxy is cancelled within seconds', { skip: bedSkip }, async () => {
  const bucket = await createBucket(uniqueName('hang'));
  const s3p = proxy('s3');
  try {
    await s3p.setFaults({ hang: true, match: { path: `^/${bucket}` } });
    const app = `bedhang-${uniq()}`;
    const done = psqlTry(`${PRELUDE}SET application_name = '${app}';
      SELECT status FROM dms_stream.http_request('GET', '${env.S3_PROXY_URL}/${bucket}/k', NULL, NULL, 's3', 'us-east-1',
        '${AKID}', '${SECRET}', timeout_ms => 600000, max_retries => 0);`);
    const pid = await waitFor(async () => {
      const r = await psqlTry(`SELECT pid FROM pg_stat_activity WHERE application_name = '${app}' AND state = 'active';`);
      return r.ok && r.rows.length ? r.rows[0][0] : null;
    }, { timeoutMs: 10000, intervalMs: 50 });
    await sleep(500);
    const t0 = Date.now();
    await psqlTry(`SELECT pg_cancel_backend(${pid});`);
    const r = await done;
    assert.match(r.error, /canceling statement due to user request/);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    await s3p.setFaults({}); // not reset(): faults are global, leave others' counters alone
  }
});
