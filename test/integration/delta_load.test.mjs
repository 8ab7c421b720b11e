// Delta loads to S3 as Parquet (src/delta_load.c, src/delta_query.c) end to
// end: controller rows, CALL dms_stream.run_delta_load / run_delta_loads,
// s3rver behind the SigV4-verifying fault proxy, files read back with DuckDB
// and hyparquet from s3rver's store.
//
// Covered: the seed's orders example and the layout (BucketFolder/prefix/
// schema/target/LOADxxxxxxxx.parquet, numbering continuing across runs),
// history rows and NOTIFY payloads, files rolled by rows, multipart uploads
// of large files, date partitions, zstd, SQL injection through every
// controller field, an upload failing beyond the retries (watermark
// unmoved, uploaded files removed, multipart aborted, failure recorded) and
// a retry giving the same files, two runs of one target never overlapping
// (with no snapshot, xid or relation lock held during the upload), a controller
// row changed during a run (the run fails at finish, its files removed), late rows
// of a concurrent long transaction (with and without an xid during the
// extract), a run killed mid-upload and taken over, and run_delta_loads.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { env, psql, psqlTry, proxy, createBucket, listS3Keys, uniqueName, waitFor, sleep } from '../lib/bed.mjs';
import { readParquetRows, parquetInfo, notifications, Session } from '../lib/delta.mjs';

const s3p = proxy('s3');
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const reEscape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';

let bucket;
let ep;
const schema = `dwh_${Date.now().toString(36)}`;
const sessions = [];

const sql = (q) => psql(PRE + q);
const sqlTry = (q) => psqlTry(PRE + q);
const one = async (q) => (await sql(q))[0]?.[0];
const objectFile = (key) => path.join(env.S3RVER_DIR, bucket, `${key}._S3rver_object`);

/** Insert a controller row; returns the folder its files go to (relative to the bucket). */
async function controller(target, { table, column = 'row_id', op = 'gte', start = '0', end = null, prefix = 'new_orders', settings = {} }) {
  await sql(`INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, end_value,
       output_s3_prefix, target_endpoint, replication_task_settings)
    VALUES (${lit(target)}, ${lit(schema)}, ${lit(table)}, ${lit(column)}, ${lit(op)}, ${lit(start)}, ${lit(end)},
       ${lit(prefix)}, ${lit(ep)}, ${lit(JSON.stringify(settings))})`);
  return `lake/raw/${prefix}/${schema}/${target}/`;
}

async function state(target) {
  const [r] = await sql(`SELECT coalesce(watermark, '<null>'), next_file_number, last_status, coalesce(last_error, ''),
      coalesce(last_rows, -1), coalesce(last_files, -1), coalesce(late_row_snapshot::text, '')
    FROM dms_stream.delta_load_controller WHERE target_table_name = ${lit(target)}`);
  return { watermark: r[0], next: Number(r[1]), status: r[2], error: r[3], rows: Number(r[4]), files: Number(r[5]), late: r[6] };
}

async function history(target) {
  const rows = await sql(`SELECT run_id, status, rows_processed, files_written, coalesce(message, ''), coalesce(details::text, '{}')
    FROM dms_stream.run_history WHERE run_kind = 'delta' AND target_table_name = ${lit(target)} ORDER BY run_id`);
  return rows.map((r) => ({ id: Number(r[0]), status: r[1], rows: Number(r[2]), files: Number(r[3]), message: r[4], details: JSON.parse(r[5]) }));
}

/** CALL run_delta_load in a session that LISTENs: {ok, error, notes}. */
async function runLoad(target, { setup = '' } = {}) {
  const r = await psqlTry(`${PRE}${setup}\nLISTEN dms_stream_delta_load;\nCALL dms_stream.run_delta_load(${lit(target)});\nSELECT 1;`);
  const text = r.rows.map((x) => x.join('|')).join('\n');
  return { ok: r.ok, error: r.error, notes: notifications(text) };
}

/** Keys under folder in s3rver's store. */
const keysUnder = (folder) => listS3Keys(bucket, folder);

before(async () => {
  bucket = await createBucket(uniqueName('delta'));
  ep = uniqueName('lake');
  await sql(`CREATE EXTENSION IF NOT EXISTS dms_stream;
    SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, BucketFolder: 'lake/raw/', DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.orders_rds (row_id bigint PRIMARY KEY, customer text, amount numeric(10,2),
      placed_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00');`);
  // Targets are one namespace: clear this file's from an earlier run by hand.
  const mine = `('orders_s3', 'events_rolled', 'events_sized', 'blobs_big', 'evil.target-1', 'fail_t', 'mp_t', 'slow_t', 'late_t',
     'crash_t', 'all_1', 'all_2', 'all_3', 'chg_t')`;
  await sql(`DELETE FROM dms_stream.delta_load_controller WHERE target_table_name IN ${mine};
    DELETE FROM dms_stream.run_history WHERE run_kind = 'delta' AND target_table_name IN ${mine};`);
  await s3p.reset();
});

afterEach(async () => {
  await s3p.setFaults({});
});

after(async () => {
  for (const s of sessions) s.close();
  await s3p.reset();
  await sql(`DELETE FROM dms_stream.delta_load_controller WHERE target_endpoint = ${lit(ep)};
    SELECT dms_stream.drop_endpoint(${lit(ep)});
    DROP SCHEMA ${schema} CASCADE;`);
});

test('the seed\'s orders example: layout, read back, numbering across runs, history and NOTIFY', async () => {
  await sql(`INSERT INTO ${schema}.orders_rds (row_id, customer, amount)
    SELECT g, 'customer ' || (g % 7), (g % 1000) / 10.0 FROM generate_series(377101, 377200) g`);
  // The seed's row: lte with start_value = end_value = 377145.
  const folder = await controller('orders_s3', { table: 'orders_rds', op: 'lte', start: '377145', end: '377145' });

  const r1 = await runLoad('orders_s3');
  assert.ok(r1.ok, r1.error);
  let st = await state('orders_s3');
  assert.deepEqual([st.watermark, st.next, st.status, st.rows, st.files], ['377145', 2, 'succeeded', 45, 1]);
  assert.deepEqual(keysUnder(folder), [`${folder}LOAD00000001.parquet`]);
  const rows = await readParquetRows(objectFile(`${folder}LOAD00000001.parquet`), { orderBy: 'row_id' });
  assert.equal(rows.length, 45);
  assert.equal(rows[0].row_id, 377101);
  assert.equal(rows[44].row_id, 377145);
  assert.equal(rows[0].customer, `customer ${377101 % 7}`);
  const info = parquetInfo(objectFile(`${folder}LOAD00000001.parquet`));
  assert.deepEqual(info.columns, ['row_id', 'customer', 'amount', 'placed_at']);
  assert.equal(info.rows, 45);
  assert.match(info.createdBy, /dms_stream/);

  // NOTIFY payload of the run
  assert.equal(r1.notes.length, 1);
  assert.equal(r1.notes[0].status, 'succeeded');
  assert.equal(r1.notes[0].rows, 45);
  assert.equal(r1.notes[0].files, 1);
  assert.equal(r1.notes[0].watermark, '377145');
  assert.equal(r1.notes[0].watermark_before, null);
  assert.equal(r1.notes[0].first_key, `${folder}LOAD00000001.parquet`);

  // Nothing new below the operator's bound: a run with no rows, no file.
  const r2 = await runLoad('orders_s3');
  assert.ok(r2.ok, r2.error);
  st = await state('orders_s3');
  assert.deepEqual([st.watermark, st.next, st.rows, st.files], ['377145', 2, 0, 0]);

  // The DBA moves the window on: the next file continues the numbering.
  await sql(`UPDATE dms_stream.delta_load_controller SET filter_operator = 'gte', start_value = '377146', end_value = NULL
    WHERE target_table_name = 'orders_s3'`);
  await sql(`INSERT INTO ${schema}.orders_rds (row_id, customer, amount) VALUES (377201, 'late comer', 1)`);
  const r3 = await runLoad('orders_s3');
  assert.ok(r3.ok, r3.error);
  st = await state('orders_s3');
  assert.deepEqual([st.watermark, st.next, st.rows, st.files], ['377201', 3, 56, 1]);
  assert.deepEqual(keysUnder(folder), [`${folder}LOAD00000001.parquet`, `${folder}LOAD00000002.parquet`]);
  const all = await readParquetRows(keysUnder(folder).map(objectFile), { orderBy: 'row_id' });
  assert.deepEqual(all.map((x) => x.row_id), Array.from({ length: 101 }, (_, i) => 377101 + i));

  const h = await history('orders_s3');
  assert.deepEqual(h.map((x) => [x.status, x.rows, x.files]), [['succeeded', 45, 1], ['succeeded', 0, 0], ['succeeded', 56, 1]]);
  assert.equal(h[2].details.files[0].key, `${folder}LOAD00000002.parquet`);
  assert.equal(h[2].details.watermark_before, '377145');
  assert.equal(h[2].details.watermark_after, '377201');
});

test('files roll over by rows; large files go up as multipart uploads; date partitions; zstd', async () => {
  await sql(`CREATE TABLE ${schema}.events (id int PRIMARY KEY, payload text);
    INSERT INTO ${schema}.events SELECT g, md5(g::text) FROM generate_series(1, 1000) g;`);
  const folder = await controller('events_rolled', {
    table: 'events', column: 'id', start: '1',
    settings: { DeltaLoadSettings: { MaxFileRows: 300, CompressionType: 'zstd' } },
  });
  const r = await runLoad('events_rolled');
  assert.ok(r.ok, r.error);
  const keys = keysUnder(folder);
  assert.deepEqual(keys, [1, 2, 3, 4].map((n) => `${folder}LOAD0000000${n}.parquet`));
  assert.deepEqual(keys.map((k) => parquetInfo(objectFile(k)).rows), [300, 300, 300, 100]);
  assert.deepEqual(parquetInfo(objectFile(keys[0])).codecs, ['ZSTD']);
  const rows = await readParquetRows(keys.map(objectFile), { orderBy: 'id' });
  assert.deepEqual(rows.map((x) => x.id), Array.from({ length: 1000 }, (_, i) => i + 1));
  assert.equal(rows[41].payload, (await one(`SELECT md5('42')`)));

  // ... and by size: MaxFileSize 16 KB (estimated encoded size, checked every 128 rows)
  const sfolder = await controller('events_sized', {
    table: 'events', column: 'id', start: '1',
    settings: { DeltaLoadSettings: { MaxFileSize: 16, CompressionType: 'none', EncodingType: 'plain' } },
  });
  const rs = await runLoad('events_sized');
  assert.ok(rs.ok, rs.error);
  const skeys = keysUnder(sfolder);
  assert.ok(skeys.length >= 2, `rolled by size: ${skeys.length} files`);
  const sinfo = skeys.map((k) => parquetInfo(objectFile(k)));
  assert.equal(sinfo.reduce((n, i) => n + i.rows, 0), 1000);
  assert.ok(sinfo.slice(0, -1).every((i) => i.rows % 128 === 0), 'files end on a 128-row check');
  const sback = await readParquetRows(skeys.map(objectFile), { orderBy: 'id' });
  assert.deepEqual(sback.map((x) => x.id), Array.from({ length: 1000 }, (_, i) => i + 1));

  // A 12 MB file (random text, uncompressed) in 5 MiB parts, under a date folder.
  await sql(`CREATE TABLE ${schema}.blobs (id int PRIMARY KEY, body text);
    INSERT INTO ${schema}.blobs SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 12) i)
      FROM generate_series(1, 32000) g;`);
  const mark = await s3p.seq();
  const bfolder = await controller('blobs_big', {
    table: 'blobs', column: 'id', start: '1',
    settings: { DeltaLoadSettings: { CompressionType: 'none', EncodingType: 'plain', UploadPartSizeMB: 5, DatePartitionEnabled: true } },
  });
  const rb = await runLoad('blobs_big');
  assert.ok(rb.ok, rb.error);
  const d = new Date();
  const day = `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
  const bkeys = keysUnder(bfolder);
  assert.deepEqual(bkeys, [`${bfolder}${day}/LOAD00000001.parquet`]);
  const reqs = await s3p.requests({ since: mark, path: reEscape(`${bfolder}${day}/LOAD00000001.parquet`) });
  assert.ok(reqs.some((q) => q.method === 'POST' && /[?&]uploads/.test(q.path)), 'CreateMultipartUpload sent');
  assert.ok(reqs.filter((q) => q.method === 'PUT' && /partNumber=/.test(q.path)).length >= 3, 'three parts or more');
  assert.equal(parquetInfo(objectFile(bkeys[0])).rows, 32000);
  const [cnt] = await readParquetRows(objectFile(bkeys[0]), { columns: 'count(*) AS n, sum(length(body)) AS len' });
  assert.deepEqual([cnt.n, cnt.len], [32000, 32000 * 12 * 32]);
});

test('SQL injection through every controller field is inert', async () => {
  const evilSchema = `${schema}"; DROP TABLE ${schema}.victims; --`;
  const evilTable = `ord'ers"; DELETE FROM ${schema}.victims; --`;
  const evilCol = `row"id); DROP TABLE ${schema}.victims; --`;
  const q = (s) => `"${s.replace(/"/g, '""')}"`;
  await sql(`CREATE TABLE ${schema}.victims (x int); INSERT INTO ${schema}.victims VALUES (1);
    CREATE SCHEMA ${q(evilSchema)};
    CREATE TABLE ${q(evilSchema)}.${q(evilTable)} (${q(evilCol)} text PRIMARY KEY, "v'); DROP TABLE x; --" int);
    INSERT INTO ${q(evilSchema)}.${q(evilTable)} VALUES ('a', 1), ($$b'); DROP TABLE ${schema}.victims; --$$, 2), ('c', 3);`);
  const target = 'evil.target-1';
  await sql(`INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, end_value,
       output_s3_prefix, target_endpoint)
    VALUES (${lit(target)}, ${lit(evilSchema)}, ${lit(evilTable)}, ${lit(evilCol)}, 'between',
       ${lit(`a'); DROP TABLE ${schema}.victims; --`)}, 'c', ${lit("we'ird \"pre fix\"; --")}, ${lit(ep)})`);
  const { rows } = await psqlTry(`SELECT query FROM dms_stream.delta_load_query(${lit(target)})`);
  assert.ok(rows[0][0].includes(`FROM ${q(evilSchema)}.${q(evilTable)} AS t`), 'names are quoted');
  assert.ok(rows[0][0].includes(q("v'); DROP TABLE x; --")), 'names are quoted');
  const r = await runLoad(target);
  assert.ok(r.ok, r.error);
  assert.equal(await one(`SELECT count(*) FROM ${schema}.victims`), '1');
  const folder = `lake/raw/we'ird "pre fix"; --/${evilSchema}/${target}/`;
  const keys = keysUnder(folder);
  assert.deepEqual(keys, [`${folder}LOAD00000001.parquet`]);
  const back = await readParquetRows(objectFile(keys[0]));
  // between 'a''); DROP ...' and 'c': b'); ... and c (text order), not a
  assert.deepEqual(back.map((x) => x[evilCol]), [`b'); DROP TABLE ${schema}.victims; --`, 'c']);
  assert.equal((await state(target)).watermark, 'c');
  // A target name that is not a plain folder name is rejected up front.
  const bad = await sqlTry(`INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
    VALUES ('x/../../y', ${lit(schema)}, 'orders_rds', 'row_id', 'gte', '1', 'p', ${lit(ep)})`);
  assert.match(bad.error, /invalid target_table_name/);
});

test('an upload failing beyond the retries leaves the watermark unmoved and removes the files; a retry gives the same files', async () => {
  await sql(`CREATE TABLE ${schema}.fail_src (id bigint PRIMARY KEY, body text);
    INSERT INTO ${schema}.fail_src SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 1000) g;`);
  const folder = await controller('fail_t', { table: 'fail_src', column: 'id', start: '1', settings: { DeltaLoadSettings: { MaxFileRows: 200 } } });
  const mark = await s3p.seq();
  await s3p.setFaults({ http_fail_rate: 1, fail_status: 500, match: { method: '^PUT$', path: reEscape(`${folder}LOAD00000004.parquet`) } });
  const r = await runLoad('fail_t', { setup: 'SET dms_stream.http_max_retries = 1;' });
  assert.ok(!r.ok);
  assert.match(r.error, /delta load "fail_t" failed in step upload/);
  assert.match(r.error, /watermark did not move/);
  let st = await state('fail_t');
  assert.deepEqual([st.watermark, st.next, st.status], ['<null>', 1, 'failed']);
  assert.match(st.error, /^upload: /);
  assert.deepEqual(keysUnder(folder), [], 'files 1-3 were removed');
  const reqs = await s3p.requests({ since: mark, path: reEscape(folder) });
  // files 1-3, and file 4: a failed PutObject may have been stored (a 500 does not say it was not)
  assert.equal(reqs.filter((q) => q.method === 'DELETE').length, 4);
  assert.equal(r.notes.length, 1);
  assert.equal(r.notes[0].status, 'failed');
  assert.equal(r.notes[0].phase, 'upload');
  assert.match(r.notes[0].error, /500|InternalError/);
  let h = await history('fail_t');
  assert.equal(h.length, 1);
  assert.equal(h[0].status, 'failed');
  const failedFiles = h[0].details.files;
  assert.equal(failedFiles.length, 5);

  // Retry without the fault: the same five files, same rows and bytes.
  await s3p.setFaults({});
  const r2 = await runLoad('fail_t');
  assert.ok(r2.ok, r2.error);
  st = await state('fail_t');
  assert.deepEqual([st.watermark, st.next, st.status, st.rows, st.files], ['1000', 6, 'succeeded', 1000, 5]);
  h = await history('fail_t');
  assert.deepEqual(h[1].details.files, failedFiles);
  assert.deepEqual(keysUnder(folder), failedFiles.map((f) => f.key));
  const back = await readParquetRows(keysUnder(folder).map(objectFile), { orderBy: 'id' });
  assert.deepEqual(back.map((x) => x.id), Array.from({ length: 1000 }, (_, i) => i + 1));
});

test('a multipart upload failing in a part is aborted; nothing is left and the watermark stays', async () => {
  await sql(`CREATE TABLE ${schema}.mp_src (id int PRIMARY KEY, body text);
    INSERT INTO ${schema}.mp_src SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 8) i)
      FROM generate_series(1, 30000) g;`);
  const folder = await controller('mp_t', {
    table: 'mp_src', column: 'id', start: '1',
    settings: { DeltaLoadSettings: { CompressionType: 'none', EncodingType: 'plain', UploadPartSizeMB: 5 } },
  });
  const mark = await s3p.seq();
  await s3p.setFaults({ http_fail_rate: 1, fail_status: 500, match: { method: '^PUT$', path: `${reEscape(folder)}.*partNumber=2` } });
  const r = await runLoad('mp_t', { setup: 'SET dms_stream.http_max_retries = 0;' });
  assert.ok(!r.ok);
  const reqs = await s3p.requests({ since: mark, path: reEscape(folder) });
  assert.ok(reqs.some((q) => q.method === 'DELETE' && /uploadId=/.test(q.path)), 'AbortMultipartUpload sent');
  assert.deepEqual(keysUnder(folder), []);
  const st = await state('mp_t');
  assert.deepEqual([st.watermark, st.next, st.status], ['<null>', 1, 'failed']);
  await s3p.setFaults({});
  const r2 = await runLoad('mp_t');
  assert.ok(r2.ok, r2.error);
  assert.equal(parquetInfo(objectFile(`${folder}LOAD00000001.parquet`)).rows, 30000);
});

test('two runs of one target never overlap; nothing but the run lock is held while uploading', async () => {
  await sql(`CREATE TABLE ${schema}.slow_src (id int PRIMARY KEY, v text);
    INSERT INTO ${schema}.slow_src SELECT g, 'v' || g FROM generate_series(1, 500) g;`);
  const folder = await controller('slow_t', { table: 'slow_src', column: 'id', start: '1', settings: { DeltaLoadSettings: { MaxFileRows: 250 } } });
  await s3p.setFaults({ delay_ms: 2500, match: { method: '^PUT$', path: reEscape(folder) } });
  const a = new Session();
  sessions.push(a);
  const pidA = await a.pid();
  const running = a.query(`CALL dms_stream.run_delta_load('slow_t')`);
  await waitFor(async () => (await state('slow_t')).status === 'running', { what: 'run A running' });
  await waitFor(async () => (await one(`SELECT count(*) FROM dms_stream.run_history WHERE target_table_name = 'slow_t' AND status = 'running'`)) === '1');
  await sleep(800); // in the delayed PUT by now

  // During the upload: no xid, no snapshot, no relation lock in A.
  const [act] = await sql(`SELECT coalesce(backend_xid::text, 'none'), coalesce(backend_xmin::text, 'none'), state
    FROM pg_stat_activity WHERE pid = ${pidA}`);
  assert.deepEqual(act.slice(0, 2), ['none', 'none']);
  const locks = await sql(`SELECT locktype, mode FROM pg_locks WHERE pid = ${pidA} AND locktype NOT IN ('virtualxid') ORDER BY 1`);
  assert.deepEqual(locks, [['advisory', 'ExclusiveLock']]);

  // A second run: a clear error naming the backend.
  const b = await sqlTry(`CALL dms_stream.run_delta_load('slow_t')`);
  assert.ok(!b.ok);
  assert.match(b.error, /delta load "slow_t" is already running/);
  assert.match(b.error, new RegExp(`Backend ${pidA} is running it`));
  // run_delta_loads skips it with a notice.
  await sql(`UPDATE dms_stream.delta_load_controller SET active_flag = (target_table_name = 'slow_t')`);
  const all = await psqlTry(`SET client_min_messages = notice; CALL dms_stream.run_delta_loads();`);
  assert.ok(all.ok, all.error);
  const ra = await running;
  assert.equal(ra.err, '');
  await sql(`UPDATE dms_stream.delta_load_controller SET active_flag = true`);
  const st = await state('slow_t');
  assert.deepEqual([st.watermark, st.next, st.status, st.rows, st.files], ['500', 3, 'succeeded', 500, 2]);
  const h = await history('slow_t');
  assert.equal(h.length, 1, 'the second run did not start');
});

test('a controller row changed during the run fails the run at finish: files removed, watermark as the DBA left it', async () => {
  await sql(`CREATE TABLE ${schema}.chg_src (id int PRIMARY KEY);
    INSERT INTO ${schema}.chg_src SELECT generate_series(1, 400);`);
  const folder = await controller('chg_t', { table: 'chg_src', column: 'id', start: '1', settings: { DeltaLoadSettings: { MaxFileRows: 200 } } });
  await s3p.setFaults({ delay_ms: 1500, match: { method: '^PUT$', path: reEscape(folder) } });
  const running = runLoad('chg_t');
  await waitFor(async () => (await state('chg_t')).status === 'running', { what: 'run running' });
  await sleep(300);
  await sql(`UPDATE dms_stream.delta_load_controller SET start_value = '100' WHERE target_table_name = 'chg_t'`);
  const r = await running;
  assert.ok(!r.ok);
  assert.match(r.error, /failed in step finish: the controller row of delta load "chg_t" changed during the run/);
  const st = await state('chg_t');
  assert.deepEqual([st.watermark, st.next, st.status], ['<null>', 1, 'failed']);
  assert.deepEqual(keysUnder(folder), []);
  assert.equal(r.notes[0].status, 'failed');
  await s3p.setFaults({});
  assert.ok((await runLoad('chg_t')).ok);
  assert.deepEqual([(await state('chg_t')).rows, (await state('chg_t')).watermark], [301, '400']);
});

test('late rows: a row committed after the extract with a filter value below the watermark is caught by the next run', async () => {
  await sql(`CREATE TABLE ${schema}.late_src (id int PRIMARY KEY, v text);
    INSERT INTO ${schema}.late_src SELECT g, 'early' FROM generate_series(1, 10) g;`);
  const folder = await controller('late_t', { table: 'late_src', column: 'id', start: '1' });
  assert.ok((await runLoad('late_t')).ok);
  assert.equal((await state('late_t')).watermark, '10');

  // Long transaction A inserts id 11 (and has an xid) but does not commit yet;
  // transaction C only reads so far (no xid) and will insert id 13 later.
  const A = new Session();
  const C = new Session();
  sessions.push(A, C);
  await A.query(`BEGIN; INSERT INTO ${schema}.late_src VALUES (11, 'late with xid')`);
  await C.query(`BEGIN; SELECT count(*) FROM ${schema}.late_src`);
  await sql(`INSERT INTO ${schema}.late_src VALUES (12, 'on time'), (14, 'on time')`);
  assert.ok((await runLoad('late_t')).ok);
  let st = await state('late_t');
  assert.equal(st.watermark, '14');
  assert.notEqual(st.late, '', 'the extract snapshot is kept because transactions were open');
  await A.query('COMMIT');
  await C.query(`INSERT INTO ${schema}.late_src VALUES (13, 'late without xid'); COMMIT`);
  await sql(`INSERT INTO ${schema}.late_src VALUES (15, 'new')`);

  const r = await runLoad('late_t');
  assert.ok(r.ok, r.error);
  st = await state('late_t');
  assert.deepEqual([st.watermark, st.rows], ['15', 3]);
  // A and C have ended: nothing in progress is listed. (The snapshot may still
  // be kept, without in-progress ids, when another backend - the launcher,
  // pg_cron - happened to have a transaction open during the extract.)
  assert.match(st.late, /^$|^(\d+):\1:$/, 'no transaction of the test is still listed as in progress');
  const keys = keysUnder(folder);
  assert.equal(keys.length, 3);
  const third = await readParquetRows(objectFile(keys[2]), { orderBy: 'id' });
  assert.deepEqual(third.map((x) => x.id), [11, 13, 15]);
  // every row exactly once over the three runs
  const all = await readParquetRows(keys.map(objectFile), { orderBy: 'id' });
  assert.deepEqual(all.map((x) => x.id), Array.from({ length: 15 }, (_, i) => i + 1));
  // and a fourth run finds nothing
  assert.ok((await runLoad('late_t')).ok);
  assert.equal((await state('late_t')).rows, 0);
});

test('a run killed during its upload is taken over by the next run, which removes its files', async () => {
  await sql(`CREATE TABLE ${schema}.crash_src (id int PRIMARY KEY, v text);
    INSERT INTO ${schema}.crash_src SELECT g, 'v' || g FROM generate_series(1, 600) g;`);
  const folder = await controller('crash_t', { table: 'crash_src', column: 'id', start: '1', settings: { DeltaLoadSettings: { MaxFileRows: 200 } } });
  await s3p.setFaults({ hang: true, match: { method: '^PUT$', path: reEscape(`${folder}LOAD00000003`) } });
  const K = new Session();
  sessions.push(K);
  const pid = await K.pid();
  K.query(`CALL dms_stream.run_delta_load('crash_t')`).catch(() => {});
  await waitFor(() => keysUnder(folder).length === 2, { what: 'two files uploaded' });
  await sql(`SELECT pg_terminate_backend(${pid})`);
  await s3p.reset();
  await sleep(500);
  await waitFor(async () => (await one(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`)) === '0');
  assert.equal((await state('crash_t')).status, 'running');
  // Fewer rows now (300, two files): the crashed run's files must not be left behind.
  await sql(`DELETE FROM ${schema}.crash_src WHERE id > 300`);
  const r = await runLoad('crash_t');
  assert.ok(r.ok, r.error);
  const h = await history('crash_t');
  assert.deepEqual(h.map((x) => x.status), ['failed', 'succeeded']);
  assert.match(h[0].message, /abandoned/);
  assert.ok(h[1].details.stale_objects_deleted >= 2, 'the crashed run files were removed');
  assert.deepEqual(keysUnder(folder), [`${folder}LOAD00000001.parquet`, `${folder}LOAD00000002.parquet`]);
  const back = await readParquetRows(keysUnder(folder).map(objectFile), { orderBy: 'id' });
  assert.deepEqual(back.map((x) => x.id), Array.from({ length: 300 }, (_, i) => i + 1));
});

test('run_delta_loads runs every active target; one failing does not stop the others', async () => {
  await sql(`CREATE TABLE ${schema}.all_a (id int PRIMARY KEY); INSERT INTO ${schema}.all_a SELECT generate_series(1, 5);
    CREATE TABLE ${schema}.all_b (id int PRIMARY KEY); INSERT INTO ${schema}.all_b SELECT generate_series(1, 7);
    UPDATE dms_stream.delta_load_controller SET active_flag = false;`);
  await controller('all_1', { table: 'all_a', column: 'id', start: '1' });
  const f2 = await controller('all_2', { table: 'all_b', column: 'id', start: '1' });
  await controller('all_3', { table: 'all_b', column: 'id', start: '3' });
  await sql(`UPDATE dms_stream.delta_load_controller SET active_flag = false WHERE target_table_name = 'all_3'`);
  await s3p.setFaults({ http_fail_rate: 1, fail_status: 500, match: { method: '^PUT$', path: reEscape(f2) } });
  const r = await psqlTry(`SET dms_stream.http_max_retries = 0; CALL dms_stream.run_delta_loads();`);
  assert.ok(!r.ok);
  assert.match(r.error, /1 of 2 delta loads failed: all_2/);
  assert.equal((await state('all_1')).status, 'succeeded');
  assert.equal((await state('all_1')).rows, 5);
  assert.equal((await state('all_2')).status, 'failed');
  assert.equal((await history('all_3')).length, 0, 'inactive targets do not run');
  await s3p.setFaults({});
  const r2 = await psqlTry(`CALL dms_stream.run_delta_loads();`);
  assert.ok(r2.ok, r2.error);
  assert.deepEqual([(await state('all_2')).status, (await state('all_2')).rows], ['succeeded', 7]);
  assert.equal((await state('all_1')).rows, 0);
  await sql(`UPDATE dms_stream.delta_load_controller SET active_flag = true`);
});
