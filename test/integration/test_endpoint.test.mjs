// test_endpoint.test.mjs — dms_stream.test_endpoint(), DMS's "test connection".
//
// Each endpoint kind against the bed's emulators through the verifying
// proxies: what works is reported ok, and each failure (missing bucket,
// missing stream, wrong secret, no files for a table) is reported with why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, psql, psqlTry, aws, createBucket, createStream, uniqueName } from '../lib/bed.mjs';

const bucket = uniqueName('te-bucket').toLowerCase();
const stream = uniqueName('te-stream');
const eps = [];

const definition = JSON.stringify({
  TableCount: '1',
  Tables: [{ TableName: 'table01', TablePath: 'schema01/table01/', TableOwner: 'schema01', TableColumnsTotal: '1',
    TableColumns: [{ ColumnName: 'id', ColumnType: 'INT8', ColumnIsPk: 'true' }] }],
});

async function endpoint(name, engine, type, settings, url, secret = env.AWS_SECRET_ACCESS_KEY) {
  eps.push(name);
  await psql(`SELECT dms_stream.create_endpoint(:'n', :'e', :'t', :'s'::jsonb, NULLIF(:'u', ''), 'us-east-1', 'path');
              SELECT dms_stream.set_endpoint_credentials(:'n', :'k', :'x') WHERE :'e' <> 'postgres';`,
  { vars: { n: name, e: engine, t: type, s: JSON.stringify(settings), u: url || '', k: env.AWS_ACCESS_KEY_ID, x: secret } });
}

async function steps(name) {
  const rows = await psql(`SELECT step, ok, detail FROM dms_stream.test_endpoint(:'n')`, { vars: { n: name } });
  return rows.map(([step, ok, detail]) => ({ step, ok: ok === 't', detail }));
}

before(async () => {
  await psql('CREATE EXTENSION IF NOT EXISTS dms_stream');
  await createBucket(bucket);
  await createStream(stream, 2);
  const file = `/tmp/${bucket}-LOAD001.csv`;
  await import('node:fs').then((fs) => fs.writeFileSync(file, '1\n2\n'));
  await aws(['s3', 'cp', '--only-show-errors', file, `s3://${bucket}/in/schema01/table01/LOAD001.csv`],
    { endpoint: env.S3_PROXY_URL });
});

after(async () => {
  for (const e of eps) await psqlTry(`SELECT dms_stream.drop_endpoint(:'n')`, { vars: { n: e } });
});

test('S3 source: credentials, bucket, full-load files per table, CDC folder', async () => {
  const name = uniqueName('te-src');
  await endpoint(name, 's3', 'source', { BucketName: bucket, BucketFolder: 'in', CdcPath: 'changes',
    ExternalTableDefinition: definition }, env.S3_PROXY_URL);
  const s = await steps(name);
  assert.deepEqual(s.map((x) => x.ok), [true, true, true, true], JSON.stringify(s));
  assert.match(s[0].detail, /source endpoint, access key id S3RVER/);
  assert.match(s[2].step, /full-load files of schema01\.table01/);
  assert.match(s[2].detail, /1 file/);
  assert.match(s[3].detail, /0 file/);
});

test('S3 source without files for its table says so', async () => {
  const name = uniqueName('te-src-empty');
  await endpoint(name, 's3', 'source', { BucketName: bucket, BucketFolder: 'elsewhere', ExternalTableDefinition: definition },
    env.S3_PROXY_URL);
  const s = await steps(name);
  assert.equal(s[2].ok, false);
  assert.match(s[2].detail, /no files yet/);
});

test('S3 target: writes and deletes a test object', async () => {
  const name = uniqueName('te-tgt');
  await endpoint(name, 's3', 'target', { BucketName: bucket, DataFormat: 'parquet' }, env.S3_PROXY_URL);
  const s = await steps(name);
  assert.deepEqual(s.map((x) => x.ok), [true, true, true], JSON.stringify(s));
  const left = await aws(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'dms_stream_test_endpoint'],
    { endpoint: env.S3_PROXY_URL });
  assert.equal((left?.Contents || []).length, 0, 'the test object was deleted');
});

test('missing bucket and wrong secret are reported with the reason', async () => {
  const missing = uniqueName('te-missing');
  await endpoint(missing, 's3', 'source', { BucketName: `${bucket}-nope`, ExternalTableDefinition: definition }, env.S3_PROXY_URL);
  let s = await steps(missing);
  assert.equal(s.at(-1).ok, false);
  assert.match(s.at(-1).detail, /NoSuchBucket/);

  const wrong = uniqueName('te-wrong');
  await endpoint(wrong, 'kinesis', 'target', { StreamName: stream }, env.KINESIS_PROXY_URL, 'not-the-secret');
  s = await steps(wrong);
  assert.equal(s[0].ok, true, 'credentials are found');
  assert.equal(s[1].ok, false);
  assert.match(s[1].detail, /InvalidSignatureException|signature/i);
});

test('Kinesis target: stream status and shards; a missing stream fails', async () => {
  const name = uniqueName('te-kin');
  await endpoint(name, 'kinesis', 'target', { StreamName: stream }, env.KINESIS_PROXY_URL);
  let s = await steps(name);
  assert.deepEqual(s.map((x) => x.ok), [true, true], JSON.stringify(s));
  assert.match(s[1].detail, /status ACTIVE, 2 open shard/);

  const gone = uniqueName('te-kin-gone');
  await endpoint(gone, 'kinesis', 'target', { StreamName: `${stream}-gone` }, env.KINESIS_PROXY_URL);
  s = await steps(gone);
  assert.equal(s[1].ok, false);
  assert.match(s[1].detail, /ResourceNotFoundException/);
});

test('this database as a source: logical decoding settings', async () => {
  const name = uniqueName('te-pg');
  await endpoint(name, 'postgres', 'source', {});
  const s = await steps(name);
  assert.deepEqual(s.map((x) => x.step), ['wal_level', 'replication slots', 'WAL senders']);
  assert.ok(s.every((x) => x.ok), JSON.stringify(s));
});

test('only the admin role may test endpoints', async () => {
  const r = await psqlTry(`CREATE ROLE te_reader_${process.pid};
    SET ROLE te_reader_${process.pid};
    SELECT * FROM dms_stream.test_endpoint('x');`);
  await psqlTry(`DROP ROLE te_reader_${process.pid}`);
  assert.equal(r.ok, false);
  assert.match(r.error, /permission denied for function test_endpoint/);
});
