// SigV4 signer (src/aws_sigv4.c) against botocore.
//
// test/unit/sigv4_vectors.py signs ~80 requests with botocore (Debian's
// /usr/bin/python3 + python3-botocore) at frozen times; every vector is then
// signed by dms_stream.aws_sigv4_sign through psql and each header must be
// identical.  Also checked: a wrong secret changes the signature, the URI
// encoder matches botocore's key encoding, bad input gives proper errors,
// PUBLIC cannot call the functions, and repeated calls do not grow memory.
//
// Needs a running cluster with dms_stream preloaded: the test bed's
// (test/bed/env.sh, read by test/lib/bed.mjs), or any other through
// PGHOST/PGPORT/PGUSER after sourcing env.sh.  The extension is created if
// missing.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, psqlTry } from '../lib/bed.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PYTHON = env.DMS_BED_PYTHON || '/usr/bin/python3';
const PRELUDE = "\\set QUIET on\n\\set VERBOSITY verbose\nSET client_encoding = 'UTF8';\nSET client_min_messages = warning;\n";

// Run SQL that must succeed; returns the output (one column) without the final newline.
async function psql(sql) {
  const r = await psqlTry(PRELUDE + sql);
  assert.ok(r.ok, `psql failed:\n${r.error}`);
  return r.rows.map((row) => row.join('|')).join('\n');
}

// Run SQL that must fail; returns stderr (VERBOSITY verbose: SQLSTATE, DETAIL, HINT).
async function psqlError(sql) {
  const r = await psqlTry(PRELUDE + sql);
  assert.ok(!r.ok, `expected an error, got: ${JSON.stringify(r.rows)}`);
  return r.error;
}

// A dollar-quoted SQL literal that cannot clash with the text.
function dollar(text) {
  const tag = `$v${randomBytes(6).toString('hex')}$`;
  assert.ok(!text.includes(tag));
  return `${tag}${text}${tag}`;
}

// SQL argument list of aws_sigv4_* for the JSON array a (see argsOf).
const SIGN_ARGS = `a->>0, a->>1, a->2, decode(a->>3, 'base64'), a->>4, a->>5, a->>6,
  a->>7, a->>8, (a->>9)::timestamptz, a->>10`;

// Our arguments for a vector; a precomputed hash is passed without the payload.
function argsOf(v, secret = v.secret_access_key) {
  const hashOnly = v.payload_hash && v.payload_hash !== 'UNSIGNED-PAYLOAD';
  return [v.method, v.url, v.headers, hashOnly ? null : v.payload_b64, v.service, v.region,
    v.access_key_id, secret, v.session_token, v.time, v.payload_hash];
}

let vectors;
let results;

before(async () => {
  const gen = spawnSync(PYTHON, [path.join(ROOT, 'test/unit/sigv4_vectors.py')], {
    encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(gen.status, 0, `vector generator failed (needs ${PYTHON} with python3-botocore):\n${gen.stderr}`);
  vectors = JSON.parse(gen.stdout);
  assert.ok(vectors.length >= 60, `only ${vectors.length} vectors`);

  await psql('CREATE EXTENSION IF NOT EXISTS dms_stream;');

  const rows = vectors.map((v) => ({ ok: argsOf(v), bad: argsOf(v, v.secret_access_key + 'x') }));
  const out = await psql(`
    SELECT jsonb_agg(jsonb_build_object(
             'explain', dms_stream.aws_sigv4_explain(${SIGN_ARGS}),
             'sign', dms_stream.aws_sigv4_sign(${SIGN_ARGS}),
             'wrong', (SELECT dms_stream.aws_sigv4_sign(${SIGN_ARGS}) FROM (SELECT r->'bad') s(a)))
           ORDER BY ord)
      FROM jsonb_array_elements(${dollar(JSON.stringify(rows))}::jsonb) WITH ORDINALITY t(r, ord),
           LATERAL (SELECT r->'ok') o(a);`);
  results = JSON.parse(out);
  assert.equal(results.length, vectors.length);
});

test('get-vanilla reproduces the AWS test-suite signature', () => {
  const i = vectors.findIndex((v) => v.name === 'suite get-vanilla');
  assert.ok(i >= 0);
  assert.match(results[i].sign.Authorization,
    /Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31$/);
});

test('every vector: dms_stream adds exactly the headers botocore adds', () => {
  const failures = [];
  vectors.forEach((v, i) => {
    const got = results[i].sign;
    try {
      assert.deepStrictEqual(got, v.expected);
    } catch {
      const ex = results[i].explain;
      failures.push(`--- ${v.name} (${v.signer}) ${v.method} ${v.url}\n` +
        `expected ${JSON.stringify(v.expected)}\ngot      ${JSON.stringify(got)}\n` +
        `botocore canonical request:\n${v.canonical_request}\n` +
        `dms_stream canonical request:\n${ex.canonical_request}\n`);
    }
  });
  assert.equal(failures.length, 0, `${failures.length}/${vectors.length} vectors differ:\n${failures.join('\n')}`);
});

test('every vector: explain gives botocore\'s canonical request and string to sign', () => {
  vectors.forEach((v, i) => {
    assert.equal(results[i].explain.canonical_request, v.canonical_request, v.name);
    assert.equal(results[i].explain.string_to_sign, v.string_to_sign, v.name);
    assert.deepStrictEqual(results[i].explain.headers, results[i].sign, v.name);
  });
});

test('every vector: a wrong secret gives a different signature', () => {
  vectors.forEach((v, i) => {
    const bad = results[i].wrong.Authorization;
    const good = v.expected.Authorization;
    assert.notEqual(bad, good, v.name);
    assert.equal(bad.replace(/Signature=\w+$/, ''), good.replace(/Signature=\w+$/, ''), v.name);
  });
});

test('vector coverage: services, signers, payload modes, tokens, ports', () => {
  const has = (pred, what) => assert.ok(vectors.some(pred), `no vector for ${what}`);
  has((v) => v.signer === 'S3SigV4Auth', 'S3SigV4Auth');
  has((v) => v.signer === 'SigV4Auth' && v.service === 'kinesis', 'Kinesis');
  has((v) => v.service === 'sts', 'STS');
  has((v) => v.payload_hash === 'UNSIGNED-PAYLOAD' && v.service === 's3', 'S3 UNSIGNED-PAYLOAD');
  has((v) => /^[0-9a-f]{64}$/.test(v.payload_hash || ''), 'precomputed payload hash');
  has((v) => v.session_token && v.expected['X-Amz-Security-Token'], 'session token');
  has((v) => /:\d+\//.test(v.url) && v.expected.Authorization, 'explicit port');
  has((v) => v.region !== 'us-east-1', 'another region');
  for (const op of ['PutRecords', 'DescribeStreamSummary', 'ListShards', 'GetShardIterator', 'GetRecords']) {
    has((v) => v.headers['X-Amz-Target'] === `Kinesis_20131202.${op}`, op);
  }
  for (const q of ['list-type=2', 'continuation-token=', 'start-after=', 'max-keys=', '?uploads', 'partNumber=1&uploadId=']) {
    has((v) => v.url.includes(q), q);
  }
  for (const m of ['GET', 'PUT', 'HEAD', 'DELETE', 'POST']) has((v) => v.method === m && v.service === 's3', `S3 ${m}`);
  // S3 always sends x-amz-content-sha256; other services only for UNSIGNED-PAYLOAD.
  vectors.forEach((v) => {
    const sent = 'x-amz-content-sha256' in v.expected;
    assert.equal(sent, v.service === 's3' || v.payload_hash === 'UNSIGNED-PAYLOAD', v.name);
  });
});

test('aws_uri_encode encodes object keys as botocore does', async () => {
  const keyed = vectors.filter((v) => v.object_key !== undefined);
  assert.ok(keyed.length >= 20);
  const out = JSON.parse(await psql(`
    SELECT jsonb_agg(dms_stream.aws_uri_encode(k, false) ORDER BY ord)
      FROM jsonb_array_elements_text(${dollar(JSON.stringify(keyed.map((v) => v.object_key)))}::jsonb)
           WITH ORDINALITY t(k, ord);`));
  keyed.forEach((v, i) => assert.equal(out[i], v.encoded_key, v.object_key));
  assert.equal(await psql(`SELECT dms_stream.aws_uri_encode('a/b c+d=é~', true);`), 'a%2Fb%20c%2Bd%3D%C3%A9~');
  assert.equal(await psql(`SELECT dms_stream.aws_uri_encode('a/b c', false);`), 'a/b%20c');
});

test('defaults: signing_time is now(), NULL payload is the empty body', async () => {
  const got = JSON.parse(await psql(`
    SELECT dms_stream.aws_sigv4_sign('GET', 'http://127.0.0.1:14580/b/k', NULL, NULL,
                                     's3', 'us-east-1', 'S3RVER', 'S3RVER');`));
  assert.equal(got['x-amz-content-sha256'], 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  assert.equal(got['X-Amz-Date'].slice(0, 8), now.slice(0, 8));
  assert.equal(got['X-Amz-Security-Token'], undefined);
  assert.match(got.Authorization, /^AWS4-HMAC-SHA256 Credential=S3RVER\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/);
});

test('bad input is rejected with SQLSTATE, detail and hint', async () => {
  const call = (method, url, headers, extra = '') => `SELECT dms_stream.aws_sigv4_sign(${method}, ${url}, ${headers}, NULL,
      'kinesis', 'us-east-1', 'AKID', 'SECRET'${extra});`;
  const cases = [
    [call(`'GET'`, `'not-a-url'`, 'NULL'), '22023', /invalid URL for AWS signing/, /scheme must be http/],
    [call(`'GET'`, `'ftp://host/x'`, 'NULL'), '22023', /invalid URL/, /scheme/],
    [call(`'GET'`, `'http://host:99999/'`, 'NULL'), '22023', /invalid URL/, /greater than 65535/],
    [call(`'GET'`, `'http://:80/'`, 'NULL'), '22023', /invalid URL/, /no host/],
    [call(`'GET'`, `'http://host/a b'`, 'NULL'), '22023', /invalid URL/, /space/],
    [call(`'GET'`, `'http://host/a%zz'`, 'NULL'), '22023', /invalid percent-encoding in the path/, /two hexadecimal digits/],
    [call(`'GET'`, `'http://host/?a=%4'`, 'NULL'), '22023', /invalid percent-encoding in the query/, /two hexadecimal digits/],
    [call(`'GET'`, `'http://host/'`, `'[1,2]'`), '22023', /headers must be a JSON object/, /is an array/],
    [call(`'GET'`, `'http://host/'`, `'"x"'`), '22023', /headers must be a JSON object/, /is a scalar/],
    [call(`'GET'`, `'http://host/'`, `'{"Content-Length": 42}'`), '22023', /value of header "Content-Length" must be a JSON string/, /is a number/],
    [call(`'GET'`, `'http://host/'`, `'{"X": {"a": 1}}'`), '22023', /value of header "X" must be a JSON string/, /is an object/],
    [call(`'GET'`, `'http://host/'`, `'{"Bad Name": "v"}'`), '22023', /invalid header name "Bad Name"/, /not allowed/],
    [call(`'GET'`, `'http://host/'`, `'{"X": "a\\r\\nb"}'`), '22023', /invalid value for header "X"/, /line breaks/],
    [call(`'G T'`, `'http://host/'`, 'NULL'), '22023', /invalid method/, /not allowed/],
    [call(`NULL`, `'http://host/'`, 'NULL'), '22004', /method must not be NULL/, null],
    [call(`'GET'`, `'http://host/'`, 'NULL', `, NULL, now(), 'abc'`), '22023', /invalid payload hash "abc"/, /64 hexadecimal digits/],
    [call(`'GET'`, `'http://host/'`, 'NULL', `, NULL, 'infinity'`), '22008', /signing time out of range/, /years 1 to 9999/],
  ];
  for (const [sql, state, msg, detail] of cases) {
    const err = await psqlError(sql);
    assert.match(err, new RegExp(`ERROR:  ${state}:`), sql + '\n' + err);
    assert.match(err, msg, err);
    if (detail) assert.match(err, new RegExp(`DETAIL:  .*${detail.source}`), err);
    assert.match(err, /HINT:  /, err);
  }
  // region with a slash would corrupt the credential scope
  assert.match(await psqlError(`SELECT dms_stream.aws_sigv4_sign('GET', 'http://h/', NULL, NULL, 's3', 'us/east', 'A', 'S');`),
    /ERROR:  22023: invalid region for AWS signing/);
});

test('PUBLIC cannot call the signing functions; dms_stream_admin can', async () => {
  const err = await psqlError(`
    BEGIN;
    CREATE ROLE dms_sigv4_probe;
    SET ROLE dms_sigv4_probe;
    SELECT dms_stream.aws_sigv4_sign('GET', 'http://h/', NULL, NULL, 's3', 'us-east-1', 'A', 'S');`);
  assert.match(err, /ERROR:  42501: permission denied for function aws_sigv4_sign/);
  const ok = await psql(`
    BEGIN;
    CREATE ROLE dms_sigv4_probe IN ROLE dms_stream_admin;
    SET ROLE dms_sigv4_probe;
    SELECT dms_stream.aws_sigv4_sign('GET', 'http://h/', NULL, NULL, 's3', 'us-east-1', 'A', 'S') ? 'Authorization';
    ROLLBACK;`);
  assert.equal(ok, 't');
});

test('20000 signatures in one session do not grow backend memory', async () => {
  const out = await psql(`
    CREATE TEMP TABLE m AS SELECT sum(total_bytes) AS b FROM pg_backend_memory_contexts;
    SELECT count(DISTINCT dms_stream.aws_sigv4_sign('PUT', 'http://127.0.0.1:14580/b/k%20' || g, '{"Content-Type":"text/csv"}',
             convert_to(repeat('x', g % 1000), 'UTF8'), 's3', 'eu-west-1', 'S3RVER', 'S3RVER', 'tok', now(), NULL)->>'Authorization')
      FROM generate_series(1, 20000) g;
    SELECT (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) - b FROM m;`);
  const [count, growth] = out.split('\n');
  assert.equal(count, '20000');
  assert.ok(Number(growth) < 1024 * 1024, `backend memory grew by ${growth} bytes`);
});
