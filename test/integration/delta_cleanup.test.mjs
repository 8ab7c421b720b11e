// A failed delta run leaves nothing visible (issue 11 point 4), end to end
// against s3rver behind the fault proxy:
// - a PutObject, and separately a CompleteMultipartUpload, that the server
//   handled but whose answer the client never got (the proxy resets the
//   connection after forwarding): the run fails, the object it may have
//   written is deleted, the watermark stays, the next run writes one copy;
// - a run cancelled during a multipart upload: no object, and the upload is
//   aborted (AbortMultipartUpload sent; s3rver answers it 405, it does not
//   implement it) after the rollback;
// - transaction abort callbacks do no network I/O: with the abort request
//   hung, a second cancel interrupts it at once (in an abort callback,
//   interrupts are held and the backend would sit out the request's 15 s
//   timeout), and the abort is sent again by the run's next S3 request;
// - the next run after a failed one sweeps its leftovers: objects and (where
//   the server lists them: s3rver does not, the proxy answers
//   ListMultipartUploads for it) incomplete uploads of its files.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { env, psql, psqlTry, proxy, createBucket, listS3Keys, uniqueName, waitFor } from '../lib/bed.mjs';
import { parquetInfo, Session } from '../lib/delta.mjs';

const s3p = proxy('s3');
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const reEscape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const sql = (q) => psql(PRE + q);
const one = async (q) => (await sql(q))[0]?.[0];

let bucket;
let ep;
const schema = `clean_${Date.now().toString(36)}`;
const sessions = [];
const mine = ['cl_put', 'cl_complete', 'cl_cancel', 'cl_hung', 'cl_sweep'];
const MP = { DeltaLoadSettings: { CompressionType: 'none', EncodingType: 'plain', UploadPartSizeMB: 5 } };

async function controller(target, table, settings = {}) {
  await sql(`INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value,
       output_s3_prefix, target_endpoint, replication_task_settings)
    VALUES (${lit(target)}, ${lit(schema)}, ${lit(table)}, 'id', 'gte', '1', 'cl', ${lit(ep)}, ${lit(JSON.stringify(settings))})`);
  return `lake/cl/${schema}/${target}/`;
}

async function state(target) {
  const [r] = await sql(`SELECT coalesce(watermark, '<null>'), next_file_number, last_status
    FROM dms_stream.delta_load_controller WHERE target_table_name = ${lit(target)}`);
  return { watermark: r[0], next: Number(r[1]), status: r[2] };
}

const runLoad = (target, setup = '') => psqlTry(`${PRE}${setup}\nCALL dms_stream.run_delta_load(${lit(target)});`);
const objectFile = (key) => path.join(env.S3RVER_DIR, bucket, `${key}._S3rver_object`);
const hangs = async () => (await s3p.stats()).faults.hang || 0;

/** A table of about mb MiB of incompressible text (8 x 32 hex chars a row). */
async function bigTable(name, rows) {
  await sql(`CREATE TABLE ${schema}.${name} (id int PRIMARY KEY, body text);
    INSERT INTO ${schema}.${name} SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 8) i)
      FROM generate_series(1, ${rows}) g;`);
}

before(async () => {
  bucket = await createBucket(uniqueName('clean'));
  ep = uniqueName('clean');
  await sql(`CREATE EXTENSION IF NOT EXISTS dms_stream;
    SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, BucketFolder: 'lake', DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    CREATE SCHEMA ${schema};
    DELETE FROM dms_stream.delta_load_controller WHERE target_table_name IN (${mine.map(lit).join(', ')});
    DELETE FROM dms_stream.run_history WHERE run_kind = 'delta' AND target_table_name IN (${mine.map(lit).join(', ')});`);
  await s3p.reset();
});

afterEach(async () => {
  await s3p.reset();
});

after(async () => {
  for (const s of sessions) s.close();
  await s3p.reset();
  await sql(`DELETE FROM dms_stream.delta_load_controller WHERE target_endpoint = ${lit(ep)};
    SELECT dms_stream.drop_endpoint(${lit(ep)});
    DROP SCHEMA ${schema} CASCADE;`);
});

test('a PutObject stored by the server but answered with a reset: the run fails and deletes it', async () => {
  await sql(`CREATE TABLE ${schema}.put_src (id int PRIMARY KEY, v text);
    INSERT INTO ${schema}.put_src SELECT g, 'v' || g FROM generate_series(1, 100) g;`);
  const folder = await controller('cl_put', 'put_src');
  const mark = await s3p.seq();
  await s3p.setFaults({ reset_rate: 1, reset_after_forward: true, match: { method: '^PUT$', path: reEscape(folder) } });
  const r = await runLoad('cl_put', 'SET dms_stream.http_max_retries = 1;');
  assert.equal(r.ok, false);
  assert.match(r.error, /delta load "cl_put" failed in step upload/);
  const puts = await s3p.requests({ since: mark, path: reEscape(folder), op: '^PUT$' });
  assert.ok(puts.length >= 1 && puts.every((q) => q.forwarded && q.faults.includes('reset_after_forward')),
    `s3rver stored the object, the client saw a reset: ${JSON.stringify(puts)}`);
  const dels = await s3p.requests({ since: mark, path: reEscape(`${folder}LOAD00000001.parquet`), op: '^DELETE$' });
  assert.ok(dels.some((q) => q.status === 204), 'DeleteObject of the possibly written key');
  assert.deepEqual(listS3Keys(bucket, folder), [], 'nothing visible after the failed run');
  assert.deepEqual(await state('cl_put'), { watermark: '<null>', next: 1, status: 'failed' });

  await s3p.setFaults({});
  const r2 = await runLoad('cl_put');
  assert.ok(r2.ok, r2.error);
  assert.deepEqual(listS3Keys(bucket, folder), [`${folder}LOAD00000001.parquet`]);
  assert.equal(parquetInfo(objectFile(`${folder}LOAD00000001.parquet`)).rows, 100);
  assert.deepEqual(await state('cl_put'), { watermark: '100', next: 2, status: 'succeeded' });
});

test('a CompleteMultipartUpload done by the server but answered with a reset: the run fails and deletes the object', async () => {
  await bigTable('complete_src', 30000);
  const folder = await controller('cl_complete', 'complete_src', MP);
  const mark = await s3p.seq();
  await s3p.setFaults({ reset_rate: 1, reset_after_forward: true,
    match: { method: '^POST$', path: `${reEscape(folder)}LOAD00000001\\.parquet\\?uploadId=` } });
  const r = await runLoad('cl_complete', 'SET dms_stream.http_max_retries = 1;');
  assert.equal(r.ok, false);
  assert.match(r.error, /delta load "cl_complete" failed in step upload/);
  const completes = await s3p.requests({ since: mark, path: 'uploadId=', op: '^POST$' });
  assert.ok(completes.length >= 1 && completes[0].forwarded && completes[0].faults.includes('reset_after_forward'),
    `s3rver completed the upload, the client saw a reset: ${JSON.stringify(completes)}`);
  assert.deepEqual(listS3Keys(bucket, folder), [], 'the completed object was deleted');
  assert.deepEqual(await state('cl_complete'), { watermark: '<null>', next: 1, status: 'failed' });

  await s3p.setFaults({});
  const r2 = await runLoad('cl_complete');
  assert.ok(r2.ok, r2.error);
  assert.deepEqual(listS3Keys(bucket, folder), [`${folder}LOAD00000001.parquet`]);
  assert.equal(parquetInfo(objectFile(`${folder}LOAD00000001.parquet`)).rows, 30000);
});

test('a run cancelled during a multipart upload leaves no object; AbortMultipartUpload is sent after the rollback', async () => {
  await bigTable('cancel_src', 30000);
  const folder = await controller('cl_cancel', 'cancel_src', MP);
  const K = new Session();
  sessions.push(K);
  const pid = await K.pid();
  const mark = await s3p.seq();
  await s3p.setFaults({ hang: true, match: { method: '^PUT$', path: `${reEscape(folder)}.*partNumber=2&` } });
  const call = K.query(`CALL dms_stream.run_delta_load('cl_cancel')`, { timeoutMs: 120000 });
  await waitFor(async () => (await hangs()) >= 1, { what: 'part 2 hung', timeoutMs: 60000 });
  await sql(`SELECT pg_cancel_backend(${pid})`);
  const res = await call;
  assert.match(res.err, /canceling statement due to user request/);
  const aborts = (await s3p.requests({ since: mark, path: `${reEscape(folder)}.*\\?uploadId=`, op: '^DELETE$' }));
  // sent and forwarded after the rollback (s3rver does not implement
  // AbortMultipartUpload and answers 405; S3 answers 204)
  assert.ok(aborts.some((q) => q.forwarded && q.faults.length === 0), `AbortMultipartUpload sent: ${JSON.stringify(aborts)}`);
  assert.deepEqual(listS3Keys(bucket, folder), []);
  assert.deepEqual(await state('cl_cancel'), { watermark: '<null>', next: 1, status: 'failed' });

  await s3p.setFaults({});
  const r2 = await K.query(`CALL dms_stream.run_delta_load('cl_cancel')`, { timeoutMs: 120000 });
  assert.equal(r2.err, '', r2.err);
  assert.deepEqual(listS3Keys(bucket, folder), [`${folder}LOAD00000001.parquet`]);
});

test('abort callbacks do no network I/O: a hung AbortMultipartUpload is interrupted by a cancel and sent again later', async () => {
  await bigTable('hung_src', 30000);
  const folder = await controller('cl_hung', 'hung_src', MP);
  const K = new Session();
  sessions.push(K);
  const pid = await K.pid();
  const mark = await s3p.seq();
  // hang part 2, then the first AbortMultipartUpload; later requests pass
  await s3p.setFaults({ hang: true, count: 2,
    match: { path: `${reEscape(folder)}LOAD00000001\\.parquet\\?(partNumber=2&|uploadId=)` } });
  const call = K.query(`SET dms_stream.http_max_retries = 0; CALL dms_stream.run_delta_load('cl_hung')`, { timeoutMs: 120000 });
  await waitFor(async () => (await hangs()) >= 1, { what: 'part 2 hung', timeoutMs: 60000 });
  await sql(`SELECT pg_cancel_backend(${pid})`);
  await waitFor(async () => (await hangs()) >= 2, { what: 'the abort request hung', timeoutMs: 30000 });
  // In an abort callback interrupts are held: this cancel would wait for the
  // request's 15 s timeout.  Outside it, it interrupts the request at once.
  const t0 = Date.now();
  await sql(`SELECT pg_cancel_backend(${pid})`);
  const res = await call;
  const waited = Date.now() - t0;
  assert.match(res.err, /canceling statement due to user request/);
  assert.ok(waited < 10000, `the second cancel took effect after ${waited} ms (the hung request's timeout is 15 s)`);
  const aborts = await s3p.requests({ since: mark, path: `${reEscape(folder)}.*\\?uploadId=`, op: '^DELETE$' });
  assert.ok(aborts.length >= 2, JSON.stringify(aborts));
  assert.deepEqual(aborts[0].faults, ['hang']);
  assert.ok(aborts.slice(1).some((q) => q.forwarded && q.faults.length === 0), 'the queued abort was sent again (forwarded to s3rver)');
  assert.deepEqual(listS3Keys(bucket, folder), []);
  assert.deepEqual(await state('cl_hung'), { watermark: '<null>', next: 1, status: 'failed' });
});

test('a session terminated during a multipart upload still aborts it, at exit', async () => {
  const K = new Session();
  sessions.push(K);
  const pid = await K.pid();
  const mark = await s3p.seq();
  await s3p.setFaults({ hang: true, count: 1, match: { method: '^PUT$', path: 'exit/big\\.bin\\?partNumber=2&' } });
  K.query(`SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, 'exit/big.bin', 12000000, 5242880)`).catch(() => {});
  await waitFor(async () => (await hangs()) >= 1, { what: 'part 2 hung', timeoutMs: 60000 });
  await sql(`SELECT pg_terminate_backend(${pid})`);
  await waitFor(async () => (await one(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`)) === '0', { what: 'backend gone' });
  const aborts = await s3p.requests({ since: mark, path: 'exit/big\\.bin\\?uploadId=', op: '^DELETE$' });
  assert.ok(aborts.some((q) => q.forwarded), `AbortMultipartUpload sent at exit: ${JSON.stringify(aborts)}`);
  assert.deepEqual(listS3Keys(bucket, 'lake/exit/'), []);
});

test('the run after a dead one aborts its leftover multipart upload (ListMultipartUploads sweep)', async () => {
  await bigTable('sweep_src', 30000);
  const folder = await controller('cl_sweep', 'sweep_src', MP);
  const K = new Session();
  sessions.push(K);
  const pid = await K.pid();
  const mark = await s3p.seq();
  await s3p.setFaults({ hang: true, match: { method: '^PUT$', path: `${reEscape(folder)}.*partNumber=2&` } });
  K.query(`CALL dms_stream.run_delta_load('cl_sweep')`).catch(() => {});
  await waitFor(async () => (await hangs()) >= 1, { what: 'part 2 hung', timeoutMs: 60000 });
  // the session dies and cannot abort its upload (the abort at exit fails)
  await s3p.setFaults({ http_fail_rate: 1, fail_status: 500, match: { method: '^DELETE$', path: `${reEscape(folder)}.*uploadId=` } });
  await sql(`SELECT pg_terminate_backend(${pid})`);
  await waitFor(async () => (await one(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`)) === '0', { what: 'backend gone' });
  const parts = await s3p.requests({ since: mark, path: `${reEscape(folder)}.*partNumber=` });
  const uploadId = decodeURIComponent(/uploadId=([^&]+)/.exec(parts[0].path)[1]);
  assert.equal((await state('cl_sweep')).status, 'running');

  // ListMultipartUploads as S3 would answer it: the dead run's upload, and
  // an upload of another key in the folder (not a file of the table: kept)
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${bucket}</Bucket>
<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${folder}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>
<Upload><Key>${folder}LOAD00000001.parquet</Key><UploadId>${uploadId}</UploadId></Upload>
<Upload><Key>${folder}notes.txt</Key><UploadId>other-upload</UploadId></Upload>
</ListMultipartUploadsResult>`;
  const mark2 = await s3p.seq();
  await s3p.setFaults({ answer: { status: 200, body: xml }, match: { method: '^GET$', path: `^/${reEscape(bucket)}\\?.*uploads` } });
  const r = await runLoad('cl_sweep');
  assert.ok(r.ok, r.error);
  const lists = await s3p.requests({ since: mark2, path: `^/${reEscape(bucket)}\\?.*uploads` });
  assert.ok(lists.length >= 1 && lists[0].faults.includes('answer'), JSON.stringify(lists));
  assert.match(decodeURIComponent(lists[0].path), new RegExp(`prefix=${reEscape(folder)}`));
  const aborts = await s3p.requests({ since: mark2, path: 'uploadId=', op: '^DELETE$' });
  assert.deepEqual(aborts.map((q) => decodeURIComponent(q.path).replace(/^[^?]*\//, '')),
    [`LOAD00000001.parquet?uploadId=${uploadId}`], 'only the dead run\'s upload of a table file is aborted');
  const [[details]] = await sql(`SELECT details FROM dms_stream.run_history WHERE run_kind = 'delta'
    AND target_table_name = 'cl_sweep' AND status = 'succeeded'`);
  assert.equal(JSON.parse(details).stale_uploads_aborted, 0, 's3rver refuses the abort (405): a WARNING, not counted');
  assert.deepEqual(listS3Keys(bucket, folder), [`${folder}LOAD00000001.parquet`]);
});
