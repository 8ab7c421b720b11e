// Tests of the test bed's SigV4-verifying fault proxies (test/proxy/sigv4_proxy.py):
// good signatures pass, bad ones are refused before reaching the emulator, and
// every fault kind can be observed by a client. Run through test/check.sh
// (or `test/check.sh --only proxy`), with the bed started.
//
// Other traffic may reach the proxies meanwhile (the extension's background
// workers, another test file): assertions therefore look only at this file's
// own requests in the proxy's journal (a `since` mark plus a path or stream
// filter), and every fault is scoped with `match` to this file's bucket or
// streams.

import { test, describe, before, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  env, aws, awsTry, curl, proxy, createBucket, createStream, readS3Object,
  kinesis, streamRecords, signedFetch, signRequest, uniqueName,
} from '../lib/bed.mjs';

const s3p = proxy('s3');
const kp = proxy('kinesis');
const WRONG = { AWS_SECRET_ACCESS_KEY: 'not-the-secret' };
const ONE_TRY = { AWS_MAX_ATTEMPTS: '1', AWS_RETRY_MODE: 'standard' };
const ODD_KEY = 'odd dir/we ird+key=1&x%25y ü €.txt';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-test-'));
const sha = (b) => createHash('sha256').update(b).digest('hex');
const b64 = (s) => Buffer.from(s).toString('base64');

// curl signing with its own SigV4 implementation (a fourth one)
const curlS3 = (args) => curl(['--aws-sigv4', 'aws:amz:us-east-1:s3', '--user',
  `${env.AWS_ACCESS_KEY_ID}:${env.AWS_SECRET_ACCESS_KEY}`, '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', ...args]);
const curlKinesis = (target, body, args = []) => curl(['--aws-sigv4', 'aws:amz:us-east-1:kinesis', '--user',
  `${env.AWS_ACCESS_KEY_ID}:${env.AWS_SECRET_ACCESS_KEY}`, '-H', 'Content-Type: application/x-amz-json-1.1',
  '-H', `X-Amz-Target: Kinesis_20131202.${target}`, '-d', JSON.stringify(body), ...args, `${env.KINESIS_PROXY_URL}/`]);

let bucket;
let stream;
const inBucket = () => `^/${bucket}(/|\\?|$)`;        // path regex of this file's bucket
const exactly = (name) => `^${name}$`;

/** This file's requests to proxy p since mark, filtered (see bed.mjs requests()). */
async function since(p, mark, filter) {
  return p.requests({ since: mark, ...filter });
}

before(async () => {
  bucket = await createBucket(uniqueName('proxy'));
  stream = await createStream(uniqueName('proxy'), 2);
});

afterEach(async () => {
  await s3p.setFaults({});
  await kp.setFaults({});
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('S3 through the verifying proxy', () => {
  test('aws CLI with the right secret: put, list and get an object with an odd key', async () => {
    const mark = await s3p.seq();
    const file = path.join(tmp, 'odd.txt');
    const data = 'odd key payload ✓\n';
    fs.writeFileSync(file, data);
    const put = await aws(['s3api', 'put-object', '--bucket', bucket, '--key', ODD_KEY, '--body', file]);
    assert.match(put.ETag, /^"[0-9a-f]{32}"$/);
    assert.equal(readS3Object(bucket, ODD_KEY)?.toString(), data, 'object stored by s3rver under the exact key');

    const list = await aws(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'odd dir/']);
    assert.deepEqual(list.Contents.map((c) => c.Key), [ODD_KEY]);

    const out = path.join(tmp, 'odd.out');
    await aws(['s3api', 'get-object', '--bucket', bucket, '--key', ODD_KEY, out]);
    assert.equal(fs.readFileSync(out, 'utf8'), data);

    const mine = await since(s3p, mark, { path: inBucket() });
    assert.equal(mine.length, 3);
    assert.deepEqual(mine.map((r) => [r.method, r.forwarded, r.rejected, r.status]),
      [['PUT', true, null, 200], ['GET', true, null, 200], ['GET', true, null, 200]]);
  });

  test('multipart upload (aws s3 cp, 3 parts) round-trips', async () => {
    const mark = await s3p.seq();
    const file = path.join(tmp, 'big.bin');
    const big = Buffer.alloc(20 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    fs.writeFileSync(file, big);
    await aws(['s3', 'cp', '--only-show-errors', file, `s3://${bucket}/mp/big.bin`]);
    assert.equal(sha(readS3Object(bucket, 'mp/big.bin')), sha(big));
    const mine = await since(s3p, mark, { path: `^/${bucket}/mp/big\\.bin` });
    assert.deepEqual(mine.map((r) => r.method).sort(), ['POST', 'POST', 'PUT', 'PUT', 'PUT'], 'create, 3 parts, complete');
    assert.ok(mine.every((r) => r.forwarded && r.status === 200));
  });

  test('the second key pair (AKIDEXAMPLE) is accepted and presented to s3rver', async () => {
    const file = path.join(tmp, 'alt.txt');
    fs.writeFileSync(file, 'alt');
    await aws(['s3api', 'put-object', '--bucket', bucket, '--key', 'alt.txt', '--body', file], {
      env: { AWS_ACCESS_KEY_ID: env.DMS_BED_ALT_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.DMS_BED_ALT_SECRET_ACCESS_KEY },
    });
    assert.equal(readS3Object(bucket, 'alt.txt')?.toString(), 'alt');
  });

  test('temporary credentials need their exact session token', async () => {
    const session = { AWS_ACCESS_KEY_ID: env.DMS_BED_SESSION_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: env.DMS_BED_SESSION_SECRET_ACCESS_KEY };
    await aws(['s3api', 'list-objects-v2', '--bucket', bucket],
      { env: { ...session, AWS_SESSION_TOKEN: env.DMS_BED_SESSION_TOKEN } });
    const none = await awsTry(['s3api', 'list-objects-v2', '--bucket', bucket], { env: session });
    assert.equal(none.code, 'InvalidAccessKeyId', none.stderr);
    const wrong = await awsTry(['s3api', 'list-objects-v2', '--bucket', bucket],
      { env: { ...session, AWS_SESSION_TOKEN: 'stale-token' } });
    assert.equal(wrong.code, 'InvalidToken', wrong.stderr);
    const k = await kinesis('ListStreams', {}, { endpoint: env.KINESIS_PROXY_URL,
      accessKeyId: session.AWS_ACCESS_KEY_ID, secretAccessKey: session.AWS_SECRET_ACCESS_KEY,
      sessionToken: env.DMS_BED_SESSION_TOKEN });
    assert.ok(Array.isArray(k.StreamNames));
    await assert.rejects(kinesis('ListStreams', {}, { endpoint: env.KINESIS_PROXY_URL,
      accessKeyId: session.AWS_ACCESS_KEY_ID, secretAccessKey: session.AWS_SECRET_ACCESS_KEY }),
    (err) => err.type === 'UnrecognizedClientException');
  });

  test('a wrong secret is rejected with SignatureDoesNotMatch and nothing reaches s3rver', async () => {
    const mark = await s3p.seq();
    const file = path.join(tmp, 'wrong.txt');
    fs.writeFileSync(file, 'must not arrive');
    const r = await awsTry(['s3api', 'put-object', '--bucket', bucket, '--key', 'wrong.txt', '--body', file], { env: WRONG });
    assert.equal(r.ok, false);
    assert.equal(r.code, 'SignatureDoesNotMatch', r.stderr);
    assert.equal(readS3Object(bucket, 'wrong.txt'), null);
    const mine = await since(s3p, mark, { path: `^/${bucket}/wrong\\.txt` });
    assert.ok(mine.length >= 1);
    assert.ok(mine.every((x) => !x.forwarded && x.rejected === 'SignatureDoesNotMatch' && x.status === 403));
    const st = await s3p.stats();
    assert.ok(st.last_rejections.some((x) => x.path === `/${bucket}/wrong.txt` && x.code === 'SignatureDoesNotMatch'));
  });

  test('an unknown access key is rejected with InvalidAccessKeyId', async () => {
    const mark = await s3p.seq();
    const r = await awsTry(['s3api', 'list-objects-v2', '--bucket', bucket],
      { env: { AWS_ACCESS_KEY_ID: 'AKIDNOTKNOWN', AWS_SECRET_ACCESS_KEY: 'x' } });
    assert.equal(r.code, 'InvalidAccessKeyId', r.stderr);
    const mine = await since(s3p, mark, { path: inBucket() });
    assert.ok(mine.length >= 1 && mine.every((x) => !x.forwarded && x.rejected === 'InvalidAccessKeyId'));
  });

  test('an unsigned curl request is rejected with 403 AccessDenied', async () => {
    const mark = await s3p.seq();
    const r = await curl(['-X', 'PUT', '--data-binary', 'unsigned', '-w', '\n%{http_code}',
      `${env.S3_PROXY_URL}/${bucket}/unsigned.txt`]);
    assert.match(r.stdout, /<Code>AccessDenied<\/Code>/);
    assert.match(r.stdout, /\n403$/);
    assert.equal(readS3Object(bucket, 'unsigned.txt'), null);
    const mine = await since(s3p, mark, { path: `^/${bucket}/unsigned\\.txt` });
    assert.deepEqual(mine.map((x) => [x.forwarded, x.rejected]), [[false, 'AccessDenied']]);
  });

  test('a correctly signed curl --aws-sigv4 request (chunked, Expect: 100-continue) passes', async () => {
    const file = path.join(tmp, 'chunked.bin');
    fs.writeFileSync(file, Buffer.alloc(300000, 'c'));
    const r = await curlS3(['-X', 'PUT', '-H', 'Transfer-Encoding: chunked', '-H', 'Expect: 100-continue',
      '--data-binary', `@${file}`, '-w', '%{http_code}', `${env.S3_PROXY_URL}/${bucket}/chunked.bin`]);
    assert.equal(r.stdout, '200', r.stderr);
    assert.equal(readS3Object(bucket, 'chunked.bin')?.length, 300000);
  });

  test('a tampered body (valid signature over another payload) is rejected', async () => {
    const url = `${env.S3_PROXY_URL}/${bucket}/tampered.txt`;
    const res = await signedFetch({ service: 's3', method: 'PUT', url, body: 'signed body', sendBody: 'other body' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /<Code>XAmzContentSHA256Mismatch<\/Code>/);
    assert.equal(readS3Object(bucket, 'tampered.txt'), null);
    // the same request untampered passes: the node signer is right
    const ok = await signedFetch({ service: 's3', method: 'PUT', url, body: 'signed body' });
    assert.equal(ok.status, 200, await ok.text());
    assert.equal(readS3Object(bucket, 'tampered.txt')?.toString(), 'signed body');
  });

  test('a tampered signed header is rejected with SignatureDoesNotMatch', async () => {
    const url = `${env.S3_PROXY_URL}/${bucket}/hdr.txt`;
    const good = await signedFetch({ service: 's3', method: 'PUT', url, body: 'x', headers: { 'content-type': 'text/plain' } });
    assert.equal(good.status, 200);
    // signed for text/plain, sent as text/html
    const res = await fetch(url, { method: 'PUT', body: 'x', headers: replayHeaders(url, 'text/plain', 'text/html') });
    assert.equal(res.status, 403);
    const body = await res.text();
    assert.match(body, /<Code>SignatureDoesNotMatch<\/Code>/);
    assert.match(body, /<CanonicalRequest>PUT/, 'the error carries the canonical request, like AWS');
  });

  test('clock skew over 15 minutes is rejected with RequestTimeTooSkewed', async () => {
    const res = await signedFetch({ service: 's3', url: `${env.S3_PROXY_URL}/${bucket}`,
      date: new Date(Date.now() - 20 * 60 * 1000) });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /<Code>RequestTimeTooSkewed<\/Code>/);
  });

  test('a wrong region or service in the credential scope is rejected', async () => {
    let res = await signedFetch({ service: 's3', url: `${env.S3_PROXY_URL}/${bucket}`, region: 'eu-west-1' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /<Code>AuthorizationHeaderMalformed<\/Code>.*eu-west-1/);
    res = await signedFetch({ service: 's3', url: `${env.S3_PROXY_URL}/${bucket}`, scopeService: 'kinesis' });
    assert.equal(res.status, 400);
    await res.text();
  });

  test('x-amz-* headers must be signed', async () => {
    const url = `${env.S3_PROXY_URL}/${bucket}/meta.txt`;
    const headers = replayHeaders(url, 'text/plain', 'text/plain');
    headers['x-amz-meta-sneaky'] = 'added after signing';
    const res = await fetch(url, { method: 'PUT', body: 'x', headers });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /headers present in the request which were not signed/);
  });
});

// Headers of a PUT of body 'x' signed for content type `signedType`, but
// carrying `sentType` instead.
function replayHeaders(url, signedType, sentType) {
  const { init } = signRequest({ service: 's3', method: 'PUT', url, body: 'x', headers: { 'content-type': signedType } });
  return { ...init.headers, 'content-type': sentType };
}

describe('Kinesis through the verifying proxy', () => {
  test('aws CLI with the right secret: put-records and get-records', async () => {
    const mark = await kp.seq();
    const s = await createStream(uniqueName('cli'), 1);
    const put = await aws(['kinesis', 'put-records', '--stream-name', s, '--records',
      ...['r1', 'r2', 'r3'].map((d, i) => `Data=${b64(d)},PartitionKey=pk${i}`)]);
    assert.equal(put.FailedRecordCount, 0);
    assert.equal(put.Records.length, 3);
    const { ShardIterator } = await aws(['kinesis', 'get-shard-iterator', '--stream-name', s,
      '--shard-id', 'shardId-000000000000', '--shard-iterator-type', 'TRIM_HORIZON']);
    const got = await aws(['kinesis', 'get-records', '--shard-iterator', ShardIterator]);
    assert.deepEqual(got.Records.map((r) => Buffer.from(r.Data, 'base64').toString()), ['r1', 'r2', 'r3']);
    const mine = await since(kp, mark, { stream: exactly(s) });
    assert.deepEqual(mine.map((r) => [r.op, r.forwarded, r.status]),
      [['CreateStream', true, 200], ['PutRecords', true, 200], ['GetShardIterator', true, 200]]);
  });

  test('a wrong secret is rejected with InvalidSignatureException and nothing reaches kinesalite', async () => {
    const s = await createStream(uniqueName('wrong'), 1);
    const mark = await kp.seq();
    const r = await awsTry(['kinesis', 'put-records', '--stream-name', s, '--records',
      `Data=${b64('nope')},PartitionKey=pk`], { env: WRONG });
    assert.equal(r.code, 'InvalidSignatureException', r.stderr);
    assert.deepEqual(await streamRecords(s), []);
    const mine = await since(kp, mark, { stream: exactly(s) });
    assert.deepEqual(mine.map((x) => [x.op, x.forwarded, x.rejected, x.status]),
      [['PutRecords', false, 'InvalidSignatureException', 400]]);
  });

  test('the second key pair is accepted', async () => {
    // (not ListStreams: other test files may have created more streams than one page holds)
    const r = await aws(['kinesis', 'describe-stream-summary', '--stream-name', stream], {
      env: { AWS_ACCESS_KEY_ID: env.DMS_BED_ALT_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.DMS_BED_ALT_SECRET_ACCESS_KEY },
    });
    assert.equal(r.StreamDescriptionSummary.StreamName, stream);
  });

  test('an unknown access key is rejected with UnrecognizedClientException', async () => {
    const r = await awsTry(['kinesis', 'list-streams'], { env: { AWS_ACCESS_KEY_ID: 'AKIDNOTKNOWN' } });
    assert.equal(r.code, 'UnrecognizedClientException', r.stderr);
  });

  test('an unsigned curl request is rejected with MissingAuthenticationTokenException', async () => {
    const mark = await kp.seq();
    const r = await curl(['-H', 'Content-Type: application/x-amz-json-1.1', '-H', 'X-Amz-Target: Kinesis_20131202.DescribeStream',
      '-d', JSON.stringify({ StreamName: stream }), '-i', `${env.KINESIS_PROXY_URL}/`]);
    assert.match(r.stdout, /^HTTP\/1.1 400/);
    assert.match(r.stdout, /x-amzn-RequestId: [0-9a-f-]{36}/i);
    assert.match(r.stdout, /"__type": "MissingAuthenticationTokenException"/);
    const mine = await since(kp, mark, { stream: exactly(stream) });
    assert.deepEqual(mine.map((x) => [x.forwarded, x.rejected]), [[false, 'MissingAuthenticationTokenException']]);
  });

  test('a tampered body (valid signature over another payload) is rejected', async () => {
    const mark = await kp.seq();
    const body = JSON.stringify({ StreamName: stream, PartitionKey: 'pk', Data: b64('signed') });
    const evil = JSON.stringify({ StreamName: stream, PartitionKey: 'pk', Data: b64('evil!!') });
    const res = await signedFetch({ service: 'kinesis', method: 'POST', url: `${env.KINESIS_PROXY_URL}/`, body, sendBody: evil,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.PutRecord' } });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).__type, 'InvalidSignatureException');
    assert.ok(!(await streamRecords(stream)).some((r) => r.Data.toString() === 'evil!!'));
    const mine = await since(kp, mark, { stream: exactly(stream), op: '^PutRecord$' });
    assert.deepEqual(mine.map((x) => [x.forwarded, x.rejected]), [[false, 'InvalidSignatureException']]);
  });

  test('clock skew is rejected with InvalidSignatureException (Signature expired)', async () => {
    await assert.rejects(
      kinesis('ListStreams', {}, { endpoint: env.KINESIS_PROXY_URL, date: new Date(Date.now() - 3600e3) }),
      (err) => err.type === 'InvalidSignatureException' && /Signature expired/.test(err.message));
  });

  test('the node signer and curl --aws-sigv4 are accepted', async () => {
    const r = await kinesis('DescribeStreamSummary', { StreamName: stream }, { endpoint: env.KINESIS_PROXY_URL });
    assert.equal(r.StreamDescriptionSummary.StreamName, stream);
    const c = await curlKinesis('DescribeStreamSummary', { StreamName: stream });
    assert.equal(JSON.parse(c.stdout).StreamDescriptionSummary?.StreamName, stream, c.stdout + c.stderr);
  });
});

describe('fault injection', () => {
  const describeStream = (env2) => awsTry(['kinesis', 'describe-stream-summary', '--stream-name', stream], { env: env2 });

  test('http_fail_rate: 503 SlowDown on S3, 500 InternalFailure / 503 ServiceUnavailable on Kinesis', async () => {
    await s3p.setFaults({ http_fail_rate: 1, fail_status: 503, match: { path: inBucket() } });
    const r = await curlS3(['-i', `${env.S3_PROXY_URL}/${bucket}`]);
    assert.match(r.stdout, /^HTTP\/1.1 503/);
    assert.match(r.stdout, /<Code>SlowDown<\/Code>/);

    const mark = await kp.seq();
    await kp.setFaults({ http_fail_rate: 1, match: { stream: exactly(stream) } });
    const k = await describeStream(ONE_TRY);
    assert.equal(k.code, 'InternalFailure', k.stderr);
    await kp.setFaults({ http_fail_rate: 1, fail_status: 503, match: { stream: exactly(stream) } });
    const k2 = await describeStream(ONE_TRY);
    assert.equal(k2.code, 'ServiceUnavailable', k2.stderr);
    const mine = await since(kp, mark, { stream: exactly(stream) });
    assert.deepEqual(mine.map((x) => [x.faults, x.status, x.forwarded]), [[['http_fail'], 500, false], [['http_fail'], 503, false]]);
  });

  test('throttle_rate: ProvisionedThroughputExceededException on Kinesis, SlowDown on S3', async () => {
    await kp.setFaults({ throttle_rate: 1, match: { stream: exactly(stream) } });
    const r = await awsTry(['kinesis', 'put-record', '--stream-name', stream, '--partition-key', 'pk',
      '--data', b64('throttled')], { env: ONE_TRY });
    assert.equal(r.code, 'ProvisionedThroughputExceededException', r.stderr);
    assert.ok(!(await streamRecords(stream)).some((x) => x.Data.toString() === 'throttled'));

    await s3p.setFaults({ throttle_rate: 1, match: { path: inBucket() } });
    const s = await awsTry(['s3api', 'list-objects-v2', '--bucket', bucket], { env: ONE_TRY });
    assert.equal(s.code, 'SlowDown', s.stderr);
  });

  test('reset_rate: curl sees the connection reset, nothing is forwarded', async () => {
    const mark = await s3p.seq();
    await s3p.setFaults({ reset_rate: 1, match: { path: inBucket() } });
    const r = await curlS3([`${env.S3_PROXY_URL}/${bucket}`]);
    assert.ok([52, 56].includes(r.status), `curl exit ${r.status}: ${r.stderr}`);   // empty reply / reset
    const mine = await since(s3p, mark, { path: inBucket() });
    assert.deepEqual(mine.map((x) => [x.faults, x.forwarded, x.status]), [[['reset'], false, null]]);
  });

  test('reset_after_forward: the client sees a reset but the record was stored', async () => {
    const s = await createStream(uniqueName('raf'), 1);
    await kp.setFaults({ reset_rate: 1, reset_after_forward: true, match: { target: 'PutRecord$', stream: exactly(s) } });
    const r = await curlKinesis('PutRecord', { StreamName: s, PartitionKey: 'pk', Data: b64('landed') });
    assert.ok([52, 56].includes(r.status), `curl exit ${r.status}: ${r.stdout} ${r.stderr}`);
    assert.deepEqual((await streamRecords(s)).map((x) => x.Data.toString()), ['landed']);
    const mine = await kp.requests({ stream: exactly(s), op: '^PutRecord$' });
    assert.deepEqual(mine.map((x) => [x.faults, x.forwarded]), [[['reset_after_forward'], true]]);
  });

  test('answer: matched requests get the given answer, not forwarded; others pass; count limits it', async () => {
    const mark = await s3p.seq();
    const body = '<?xml version="1.0"?><ListMultipartUploadsResult><Bucket>b</Bucket></ListMultipartUploadsResult>';
    await s3p.setFaults({ answer: { status: 200, body }, count: 1, match: { path: `^/${bucket}\\?uploads` } });
    const r = await curlS3(['-i', `${env.S3_PROXY_URL}/${bucket}?uploads=`]);
    assert.match(r.stdout, /^HTTP\/1.1 200/);
    assert.match(r.stdout, /Content-Type: application\/xml/i);
    assert.ok(r.stdout.endsWith(body), r.stdout);
    const again = await curlS3(['-i', `${env.S3_PROXY_URL}/${bucket}?uploads=`]);   // count used up: s3rver answers
    assert.doesNotMatch(again.stdout, /^HTTP\/1.1 200/);
    const mine = await since(s3p, mark, { path: inBucket() });
    assert.deepEqual(mine.map((x) => [x.faults, x.forwarded, x.status === 200]), [[['answer'], false, true], [[], true, false]]);
    await assert.rejects(s3p.setFaults({ answer: { status: 'x' } }), /answer takes/);
  });

  test('hang: no answer until the client gives up', async () => {
    const mark = await s3p.seq();
    await s3p.setFaults({ hang: true, match: { path: inBucket() } });
    const r = await curlS3(['--max-time', '1', `${env.S3_PROXY_URL}/${bucket}`]);
    assert.equal(r.status, 28, r.stderr);   // curl: operation timed out
    const mine = await since(s3p, mark, { path: inBucket() });
    assert.deepEqual(mine.map((x) => [x.faults, x.status]), [[['hang'], null]]);
  });

  test('hang is released by a reset of the faults', async () => {
    const hangsBefore = (await s3p.stats()).faults.hang ?? 0;
    await s3p.setFaults({ hang: true, match: { path: inBucket() } });
    const pending = curlS3(['--max-time', '60', '-w', '%{http_code}', `${env.S3_PROXY_URL}/${bucket}`]);
    await waitForFault(s3p, 'hang', hangsBefore);
    await s3p.reset();
    const r = await pending;
    assert.ok([52, 56].includes(r.status), `curl exit ${r.status}`);
  });

  test('delay_ms is applied and the request then forwarded', async () => {
    const mark = await kp.seq();
    await kp.setFaults({ delay_ms: 50, match: { stream: exactly(stream) } });
    const r = await describeStream();
    assert.equal(r.ok, true, r.stderr);
    const mine = await since(kp, mark, { stream: exactly(stream) });
    assert.deepEqual(mine.map((x) => [x.faults, x.forwarded, x.status]), [[['delay'], true, 200]]);
  });

  test('put_records_fail_rate: partial failure, only the non-failed records are stored', async () => {
    const s = await createStream(uniqueName('partial'), 2);
    await kp.setFaults({ put_records_fail_rate: 0.5, seed: 42, match: { stream: exactly(s) } });
    const data = Array.from({ length: 20 }, (_, i) => `rec-${i}`);
    const put = await aws(['kinesis', 'put-records', '--stream-name', s, '--records',
      ...data.map((d, i) => `Data=${b64(d)},PartitionKey=pk${i}`)]);
    assert.ok(put.FailedRecordCount > 0 && put.FailedRecordCount < 20, `FailedRecordCount ${put.FailedRecordCount}`);
    assert.equal(put.Records.length, 20);
    const failed = put.Records.map((r, i) => (r.ErrorCode ? i : -1)).filter((i) => i >= 0);
    assert.equal(failed.length, put.FailedRecordCount);
    for (const r of put.Records) {
      if (r.ErrorCode) {
        assert.ok(['ProvisionedThroughputExceededException', 'InternalFailure'].includes(r.ErrorCode));
        assert.ok(r.ErrorMessage);
        assert.equal(r.SequenceNumber, undefined);
      } else {
        assert.match(r.SequenceNumber, /^\d+$/);
        assert.match(r.ShardId, /^shardId-/);
      }
    }
    const stored = (await streamRecords(s)).map((x) => x.Data.toString()).sort();
    const expected = data.filter((_, i) => !failed.includes(i)).sort();
    assert.deepEqual(stored, expected);
    const mine = await kp.requests({ stream: exactly(s), op: '^PutRecords$' });
    assert.equal(mine.length, 1);
    assert.equal(mine[0].put_records_failed, put.FailedRecordCount);
  });

  test('count: exactly N faults are injected, then none', async () => {
    await kp.setFaults({ http_fail_rate: 1, count: 3, match: { stream: exactly(stream) } });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await describeStream(ONE_TRY)).code);
    assert.deepEqual(codes, ['InternalFailure', 'InternalFailure', 'InternalFailure', null, null]);
    assert.equal((await kp.faults()).count_left, 0);
  });

  test('count with put_records_fail_rate fails exactly the first N entries', async () => {
    const s = await createStream(uniqueName('count'), 1);
    await kp.setFaults({ put_records_fail_rate: 1, count: 2, put_records_error_codes: ['InternalFailure'],
      match: { stream: exactly(s) } });
    const put = await aws(['kinesis', 'put-records', '--stream-name', s, '--records',
      ...['a', 'b', 'c', 'd'].map((d) => `Data=${b64(d)},PartitionKey=${d}`)]);
    assert.equal(put.FailedRecordCount, 2);
    assert.deepEqual(put.Records.map((r) => r.ErrorCode ?? 'ok'), ['InternalFailure', 'InternalFailure', 'ok', 'ok']);
    assert.deepEqual((await streamRecords(s)).map((x) => x.Data.toString()), ['c', 'd']);
  });

  test('match restricts faults to matching requests', async () => {
    await kp.setFaults({ http_fail_rate: 1, match: { target: 'PutRecords$', stream: exactly(stream) } });
    assert.equal((await describeStream(ONE_TRY)).ok, true);   // not matched: passes
    const r = await awsTry(['kinesis', 'put-records', '--stream-name', stream, '--records',
      `Data=${b64('m')},PartitionKey=pk`], { env: ONE_TRY });
    assert.equal(r.code, 'InternalFailure', r.stderr);
    await s3p.setFaults({ http_fail_rate: 1, match: { method: '^PUT$', path: inBucket() } });
    await aws(['s3api', 'list-objects-v2', '--bucket', bucket]);
    const file = path.join(tmp, 'm.txt');
    fs.writeFileSync(file, 'm');
    const put = await awsTry(['s3api', 'put-object', '--bucket', bucket, '--key', 'm.txt', '--body', file], { env: ONE_TRY });
    assert.equal(put.code, 'InternalError', put.stderr);
  });

  test('admin API: unknown fault keys are refused, reset clears faults and counters', async () => {
    const res = await fetch(`${env.KINESIS_PROXY_URL}/__proxy/faults`, { method: 'POST', body: '{"no_such_fault":1}' });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error, /unknown fault key/);
    await kp.setFaults({ throttle_rate: 0.25, seed: 1, match: { stream: exactly(stream) } });
    assert.deepEqual((await kp.faults()).faults,
      { throttle_rate: 0.25, seed: 1, match: { stream: exactly(stream) } });
    await describeStream();
    const before = await kp.stats();
    assert.ok(before.requests >= 1 && before.seq >= 1);
    await kp.reset();
    const st = await kp.stats();
    assert.deepEqual(st.faults_config, {});
    assert.ok(st.seq < before.seq, 'the journal restarts');
  });
});

// Wait until the proxy has injected more than `before` faults of this kind.
async function waitForFault(p, kind, before) {
  for (let i = 0; i < 300; i++) {
    if (((await p.stats()).faults[kind] ?? 0) > before) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fault ${kind} never injected`);
}

describe('--service sts (in front of the fake STS of test/lib/fake_sts.mjs)', () => {
  const KEY = 'AKIDPROXYSTS0001';
  const SECRET = 'proxyStsSecret/0000000000000000000000000';
  const ROLE = 'arn:aws:iam::123456789012:role/proxy-test';
  const body = `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(ROLE)}&RoleSessionName=p`;
  const call = (sts, opts = {}) => signedFetch({
    service: 'sts', url: `${sts.url}/`, method: 'POST', body,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    accessKeyId: KEY, secretAccessKey: SECRET, ...opts,
  });

  test('a good signature is forwarded; a wrong secret, an unknown key and a kinesis scope are refused with STS XML errors', async () => {
    const { startFakeSts } = await import('../lib/fake_sts.mjs');
    const sts = await startFakeSts({ roles: { [ROLE]: null }, baseKey: KEY, baseSecret: SECRET,
      logFile: path.join(tmp, 'sts-proxy.log') });
    try {
      const ok = await call(sts);
      const okText = await ok.text();
      assert.equal(ok.status, 200, okText);
      assert.match(okText, new RegExp(`<AccessKeyId>${env.DMS_BED_SESSION_ACCESS_KEY_ID}</AccessKeyId>`));
      assert.equal(sts.calls.length, 1);

      const wrong = await call(sts, { secretAccessKey: 'not-the-secret' });
      assert.equal(wrong.status, 400);
      assert.match(await wrong.text(), /<ErrorResponse[^>]*><Error><Type>Sender<\/Type><Code>SignatureDoesNotMatch<\/Code>/);
      const unknown = await call(sts, { accessKeyId: 'AKIDNOTKNOWN0000' });
      assert.match(await unknown.text(), /<Code>InvalidClientTokenId<\/Code>/);
      const scope = await call(sts, { scopeService: 'kinesis' });
      assert.match(await scope.text(), /<Code>(InvalidSignatureException|SignatureDoesNotMatch)<\/Code>.*scoped to correct service: 'sts'/);
      assert.equal(sts.calls.length, 1, 'refused requests never reach the upstream');
      const stats = await sts.stats();
      assert.deepEqual([stats.verified, stats.forwarded, stats.rejected_total], [1, 1, 3], JSON.stringify(stats));
    } finally {
      await sts.stop();
    }
  });
});
