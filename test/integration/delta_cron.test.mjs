// pg_cron schedules the run-all procedure (CALL dms_stream.run_delta_loads())
// and the runs happen, record history and never overlap.
//
// pg_cron 1.4 (Debian postgresql-15-cron) schedules by the minute (second
// intervals came with 1.5), so this test waits for two minute boundaries.
// Two jobs run the same CALL every minute: they start together, and the
// target's session lock lets one of them load while the other skips it with
// a notice.  Each run is slowed down (the proxy delays its PUTs) so that the
// two really are concurrent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { env, psql, proxy, createBucket, listS3Keys, uniqueName, waitFor, sleep } from '../lib/bed.mjs';
import { readParquetRows } from '../lib/delta.mjs';

const s3p = proxy('s3');
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const sql = (q) => psql(PRE + q);
const schema = `cron_${Date.now().toString(36)}`;
const target = `cron_t_${Date.now().toString(36)}`;
let bucket;
let ep;
let jobs = [];

before(async () => {
  bucket = await createBucket(uniqueName('cron'));
  ep = uniqueName('cronlake');
  await sql(`CREATE EXTENSION IF NOT EXISTS dms_stream; CREATE EXTENSION IF NOT EXISTS pg_cron;
    SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.src (id int PRIMARY KEY, v text);
    INSERT INTO ${schema}.src SELECT g, 'v' || g FROM generate_series(1, 100) g;
    -- only this target is active while the jobs run
    UPDATE dms_stream.delta_load_controller SET active_flag = false;
    INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value,
       output_s3_prefix, target_endpoint, replication_task_settings)
    VALUES (${lit(target)}, ${lit(schema)}, 'src', 'id', 'gte', '1', 'cron', ${lit(ep)},
       '{"DeltaLoadSettings": {"MaxFileRows": 50}}');`);
  await s3p.setFaults({ delay_ms: 2000, match: { method: '^PUT$', path: target } });
  const rows = await sql(`SELECT cron.schedule(${lit(`${target}_a`)}, '* * * * *', 'CALL dms_stream.run_delta_loads()'),
                                 cron.schedule(${lit(`${target}_b`)}, '* * * * *', 'CALL dms_stream.run_delta_loads()')`);
  jobs = rows[0].map(Number);
});

after(async () => {
  for (const j of jobs) await psql(`SELECT cron.unschedule(${j})`).catch(() => {});
  await s3p.setFaults({});
  await sql(`DELETE FROM dms_stream.delta_load_controller WHERE target_table_name = ${lit(target)};
    UPDATE dms_stream.delta_load_controller SET active_flag = true;
    SELECT dms_stream.drop_endpoint(${lit(ep)});
    DROP SCHEMA ${schema} CASCADE;`);
});

test('pg_cron runs run_delta_loads every minute: runs happen, are recorded and never overlap', { timeout: 240000 }, async () => {
  const runs = async () => (await sql(`SELECT run_id, status, rows_processed, started_at, finished_at
      FROM dms_stream.run_history WHERE target_table_name = ${lit(target)} ORDER BY run_id`))
    .map((r) => ({ id: Number(r[0]), status: r[1], rows: Number(r[2]), start: r[3], end: r[4] }));

  // first minute: the 100 rows
  await waitFor(async () => (await runs()).some((r) => r.status === 'succeeded'), { timeoutMs: 100000, intervalMs: 1000, what: 'a first scheduled run' });
  await sql(`INSERT INTO ${schema}.src SELECT g, 'v' || g FROM generate_series(101, 130) g`);
  // second minute: the 30 new rows
  await waitFor(async () => (await runs()).filter((r) => r.status === 'succeeded').length >= 2,
    { timeoutMs: 100000, intervalMs: 1000, what: 'a second scheduled run' });
  for (const j of jobs) await psql(`SELECT cron.unschedule(${j})`);
  await waitFor(async () => (await runs()).every((r) => r.status !== 'running'), { timeoutMs: 60000, what: 'runs to finish' });

  const h = await runs();
  assert.ok(h.length >= 2);
  assert.ok(h.every((r) => r.status === 'succeeded'), JSON.stringify(h));
  assert.deepEqual(h.slice(0, 2).map((r) => r.rows), [100, 30]);
  // never overlapping: each run ends before the next starts
  const iv = await sql(`SELECT count(*) FROM dms_stream.run_history a JOIN dms_stream.run_history b
      ON a.target_table_name = b.target_table_name AND a.run_id < b.run_id AND b.started_at < a.finished_at
    WHERE a.target_table_name = ${lit(target)}`);
  assert.equal(iv[0][0], '0');

  // both jobs ran each minute and succeeded (the second skipped the busy target)
  const details = await sql(`SELECT jobid, status, count(*) FROM cron.job_run_details
      WHERE jobid IN (${jobs.join(', ')}) GROUP BY 1, 2 ORDER BY 1, 2`);
  for (const j of jobs) {
    const ok = details.find((d) => Number(d[0]) === j && d[1] === 'succeeded');
    assert.ok(ok && Number(ok[2]) >= 2, `job ${j}: ${JSON.stringify(details)}`);
  }
  assert.ok(!details.some((d) => d[1] === 'failed'), JSON.stringify(details));

  // every row exactly once in the files
  const keys = listS3Keys(bucket, `cron/${schema}/${target}/`);
  assert.deepEqual(keys.map((k) => k.slice(-20)), ['LOAD00000001.parquet', 'LOAD00000002.parquet', 'LOAD00000003.parquet']);
  const back = await readParquetRows(keys.map((k) => path.join(env.S3RVER_DIR, bucket, `${k}._S3rver_object`)), { orderBy: 'id' });
  assert.deepEqual(back.map((r) => r.id), Array.from({ length: 130 }, (_, i) => i + 1));
  await sleep(0);
});
