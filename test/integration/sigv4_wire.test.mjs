// SigV4 on the wire: requests signed by dms_stream.aws_sigv4_sign and sent
// with curl (as libcurl will send them: --path-as-is, the port in Host) to
// the test bed's SigV4-verifying proxies in front of s3rver and kinesalite.
// The proxies recompute the signature from what they receive; a request
// they reject gets 403/400 SignatureDoesNotMatch.
//
// Needs the test bed (test/bed/start.sh); skipped when its proxies are down.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  env, psqlTry, curl, createBucket, createStream, streamRecords, uniqueName,
} from '../lib/bed.mjs';

const AKID = env.AWS_ACCESS_KEY_ID || 'S3RVER';
const SECRET = env.AWS_SECRET_ACCESS_KEY || 'S3RVER';

// True if something accepts TCP connections at the URL's host:port.
function reachable(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) });
    s.setTimeout(1000);
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
    s.on('timeout', () => { s.destroy(); resolve(false); });
  });
}

const up = (await reachable(env.S3_PROXY_URL)) && (await reachable(env.KINESIS_PROXY_URL));
const skip = up ? false : 'test bed proxies are not running (test/bed/start.sh)';

function dollar(text) {
  const tag = `$w${randomBytes(6).toString('hex')}$`;
  return `${tag}${text}${tag}`;
}

// The same percent-encoding the S3 client uses (RFC 3986 unreserved kept).
const enc = (s, keepSlash) => [...Buffer.from(s, 'utf8')].map((b) => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/') ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
}).join('');

// Sign with the extension, send with curl; resolves {status, body, sig}.
async function send({ method, url, headers = {}, body = Buffer.alloc(0), service, secret = SECRET, token = null }) {
  const r = await psqlTry(`SELECT dms_stream.aws_sigv4_sign(${dollar(method)}, ${dollar(url)},
      ${dollar(JSON.stringify(headers))}::jsonb, decode(${dollar(body.toString('base64'))}, 'base64'),
      ${dollar(service)}, 'us-east-1', ${dollar(AKID)}, ${dollar(secret)},
      ${token === null ? 'NULL' : dollar(token)});`);
  assert.ok(r.ok, r.error);
  const sig = JSON.parse(r.rows[0][0]);
  const args = ['--path-as-is', '-o', '-', '-w', '\n%{http_code}', '--max-time', '30'];
  if (method === 'HEAD') args.push('-I');
  else args.push('-X', method);
  for (const [k, v] of Object.entries({ ...headers, ...sig })) args.push('-H', `${k}: ${v}`);
  if (body.length > 0 || method === 'PUT' || method === 'POST') args.push('--data-binary', '@-');
  args.push(url);
  const res = await curl(args, { input: body });
  assert.equal(res.status, 0, `curl failed: ${res.stderr}`);
  const i = res.stdout.lastIndexOf('\n');
  return { status: Number(res.stdout.slice(i + 1)), body: res.stdout.slice(0, i), sig };
}

let bucket;

before(async () => {
  if (skip) return;
  const r = await psqlTry('SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS dms_stream;');
  assert.ok(r.ok, r.error);
  bucket = await createBucket(uniqueName('sigv4'));
});

const KEYS = [
  'plain.csv',
  'file name with spaces.txt',
  'a+b=c&d.txt',
  '100%.csv',
  'tilde~name_-.txt',
  'ünïcödé/日本語 ファイル.csv',
  "weird!$'()*,;:@[]{}^`|\"<>#?key.txt",
  'px/we ird+key=1&x.txt',
  'dots/./and/../segments.txt',
];

test('S3 PUT, GET and HEAD of odd keys are accepted by the verifying proxy', { skip }, async () => {
  for (const key of KEYS) {
    const url = `${env.S3_PROXY_URL}/${bucket}/${enc(key, true)}`;
    const body = Buffer.from(`id,name\n1,${key}\n`);
    const put = await send({ method: 'PUT', url, service: 's3', body,
      headers: { 'Content-Type': 'text/csv', 'x-amz-meta-note': '  spaced   out  ' } });
    assert.equal(put.status, 200, `PUT ${key}: ${put.status} ${put.body}`);
    const get = await send({ method: 'GET', url, service: 's3' });
    assert.equal(get.status, 200, `GET ${key}: ${get.status} ${get.body}`);
    assert.equal(get.body, body.toString(), key);
    const head = await send({ method: 'HEAD', url, service: 's3' });
    assert.equal(head.status, 200, `HEAD ${key}`);
  }
});

test('S3 ListObjectsV2 with encoded prefix and unsorted query is accepted', { skip }, async () => {
  const url = `${env.S3_PROXY_URL}/${bucket}?prefix=${enc('px/we ird', false)}&max-keys=100&list-type=2`;
  const res = await send({ method: 'GET', url, service: 's3' });
  assert.equal(res.status, 200, res.body);
  assert.match(res.body, /<Key>px\/we ird\+key=1&amp;x.txt<\/Key>/);
});

test('S3 UNSIGNED-PAYLOAD is accepted (body not hashed)', { skip }, async () => {
  const url = `${env.S3_PROXY_URL}/${bucket}/unsigned.bin`;
  const r = await psqlTry(`SELECT dms_stream.aws_sigv4_sign('PUT', ${dollar(url)}, '{}', NULL, 's3', 'us-east-1',
      ${dollar(AKID)}, ${dollar(SECRET)}, NULL, now(), 'UNSIGNED-PAYLOAD');`);
  assert.ok(r.ok, r.error);
  const sig = JSON.parse(r.rows[0][0]);
  assert.equal(sig['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
  const args = ['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '--data-binary', 'unsigned body'];
  for (const [k, v] of Object.entries(sig)) args.push('-H', `${k}: ${v}`);
  const res = await curl([...args, url]);
  assert.equal(res.stdout, '200', res.stderr);
});

test('S3 with a wrong secret is rejected with SignatureDoesNotMatch', { skip }, async () => {
  const url = `${env.S3_PROXY_URL}/${bucket}/plain.csv`;
  const res = await send({ method: 'GET', url, service: 's3', secret: SECRET + 'x' });
  assert.equal(res.status, 403);
  assert.match(res.body, /SignatureDoesNotMatch/);
});

test('Kinesis PutRecords signed by the extension reaches kinesalite', { skip }, async () => {
  const stream = await createStream(uniqueName('sigv4'), 1);
  const records = [1, 2, 3].map((i) => ({ Data: Buffer.from(`{"i":${i}}`).toString('base64'), PartitionKey: `pk ${i}` }));
  const res = await send({
    method: 'POST', url: `${env.KINESIS_PROXY_URL}/`, service: 'kinesis',
    headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'Kinesis_20131202.PutRecords' },
    body: Buffer.from(JSON.stringify({ StreamName: stream, Records: records })),
  });
  assert.equal(res.status, 200, res.body);
  assert.equal(JSON.parse(res.body).FailedRecordCount, 0);
  const got = await streamRecords(stream);
  assert.deepEqual(got.map((r) => r.Data.toString()).sort(), ['{"i":1}', '{"i":2}', '{"i":3}']);

  const bad = await send({
    method: 'POST', url: `${env.KINESIS_PROXY_URL}/`, service: 'kinesis', secret: SECRET + 'x',
    headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'Kinesis_20131202.ListShards' },
    body: Buffer.from(JSON.stringify({ StreamName: stream })),
  });
  assert.ok(bad.status === 400 || bad.status === 403, `wrong secret got ${bad.status}`);
  assert.match(bad.body, /Signature/);
});
