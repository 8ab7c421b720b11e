// The figures of dms_stream.task_status that mean what DMS means
// (issue 12 point 6): cdc_latency_source / cdc_latency_target (DMS
// CDCLatencySource / CDCLatencyTarget: now - commit time of the last change
// read, resp. acknowledged by Kinesis; about zero when the task is caught
// up), records_per_second over the last progress interval (not the run
// average, kept as records_per_second_run), and the throttling counts of the
// Kinesis batcher.
//
// Covered: an idle caught-up postgres CDC task and an S3 CDC task show both
// latencies near zero; with the Kinesis proxy delaying PutRecords by 6 s,
// the target latency of a postgres task grows (above 3 s) while its source
// latency stays small, changes committed during the wait included; records_per_second drops to 0 a few intervals after
// the load stops while the run average does not; throttled PutRecords
// entries are counted.
//
// Run: test/check.sh --only task_latency

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  env, psqlTry, aws, proxy, createStream, kinesis, uniqueName, waitFor, sleep,
} from '../lib/bed.mjs';
import { lit, sql, one, seedRow, createS3Task } from '../lib/tasks.mjs';

const kp = proxy('kinesis');
const tasks = [];
const streams = [];
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'task-latency-'));
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  await kp.setFaults({}).catch(() => {});
  for (const t of tasks) await psqlTry(`SELECT dms_stream.stop_task(${lit(t)})`);
  for (const t of tasks) {
    await waitFor(async () => (await one(`SELECT count(*) FROM pg_stat_activity
      WHERE backend_type = 'dms_stream task' AND application_name = ${lit(t)}`)) === '0',
    { timeoutMs: 20000, what: 'worker gone' }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped', desired_state = 'stopped' WHERE task_name = ${lit(t)};
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  await psqlTry('ALTER SYSTEM RESET dms_stream.poll_interval; SELECT pg_reload_conf();');
  for (const st of streams) await kinesis('DeleteStream', { StreamName: st }).catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** The figures of task_status, latencies in seconds (null when NULL). */
async function figures(task) {
  const rows = await sql(`SELECT status, coalesce(phase, ''), coalesce(last_error, ''),
      extract(epoch FROM cdc_latency_source), extract(epoch FROM cdc_latency_target),
      records_per_second, records_per_second_run, throttled_requests, throttled_records, records_sent_this_run
    FROM dms_stream.task_status WHERE task = ${lit(task)}`);
  const [status, phase, lastError, src, tgt, rps, rpsRun, thrReq, thrRec, sent] = rows[0];
  const num = (v) => (v === '' || v === undefined || v === null ? null : Number(v));
  return {
    status, phase, lastError, source: num(src), target: num(tgt), rps: num(rps), rpsRun: num(rpsRun),
    throttledRequests: num(thrReq), throttledRecords: num(thrRec), sent: num(sent),
  };
}

async function pgTask() {
  const schema = uniqueName('lat').replace(/-/g, '_');
  await sql(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.items (id bigint PRIMARY KEY, name text);
    CREATE SEQUENCE ${schema}.ids;
    CREATE PROCEDURE ${schema}.work(n int, pause float8 DEFAULT 0) LANGUAGE plpgsql AS $p$
    BEGIN
      FOR i IN 1..n LOOP
        INSERT INTO ${schema}.items SELECT nextval('${schema}.ids'), 'item' FROM generate_series(1, 5);
        COMMIT;
        IF pause > 0 THEN PERFORM pg_sleep(pause); END IF;
      END LOOP;
    END $p$;`);
  const stream = uniqueName('lat');
  const task = uniqueName('lattask');
  await createStream(stream, 1);
  streams.push(stream);
  const mappings = {
    rules: [{
      'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one',
      'object-locator': { 'schema-name': schema, 'table-name': '%' }, 'rule-action': 'include',
    }],
  };
  await sql(`SELECT dms_stream.create_endpoint(${lit(`${task}-src`)}, 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint(${lit(`${task}-tgt`)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream }))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(`${task}-tgt`)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(`${task}-src`)}, ${lit(`${task}-tgt`)}, 'cdc', ${lit(JSON.stringify(mappings))}, '{}');`);
  tasks.push(task);
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitFor(async () => {
    const f = await figures(task);
    if (f.status === 'failed') throw new Error(`task failed: ${f.lastError}`);
    return f.phase.startsWith('cdc:') ? f : null;
  }, { timeoutMs: 60000, what: `task ${task} streaming` });
  return { schema, stream, task };
}

/** Wait until n records of the run are acknowledged. */
const waitSent = (task, n) => waitFor(async () => {
  const f = await figures(task);
  if (f.status === 'failed') throw new Error(`task failed: ${f.lastError}`);
  return f.sent >= n ? f : null;
}, { timeoutMs: 60000, intervalMs: 200, what: `${n} records acknowledged` });

test('postgres CDC: latencies near zero when caught up; records_per_second is the current rate', async () => {
  const { schema, task } = await pgTask();

  // Load for about 4 s: 5 rows every 50 ms.
  await sql(`CALL ${schema}.work(80, 0.05);`);
  const busy = await waitSent(task, 400);
  assert.ok(busy.rpsRun > 0, `run average while loading: ${JSON.stringify(busy)}`);

  // Idle and caught up: both latencies about zero (a progress write every
  // second), the current rate 0 while the run average stays above 0.
  await sleep(4000);
  const idle = await waitFor(async () => {
    const f = await figures(task);
    return f.rps === 0 ? f : null;
  }, { timeoutMs: 15000, intervalMs: 300, what: 'records_per_second 0 once idle' });
  assert.ok(idle.rpsRun > 0, `the run average does not drop to 0: ${JSON.stringify(idle)}`);
  assert.ok(idle.source !== null && idle.source < 3, `cdc_latency_source near zero when idle: ${JSON.stringify(idle)}`);
  assert.ok(idle.target !== null && idle.target < 3, `cdc_latency_target near zero when idle: ${JSON.stringify(idle)}`);
  assert.equal(idle.status, 'running');
  // It stays so (not only right after the last acknowledgement).
  await sleep(3000);
  const later = await figures(task);
  assert.ok(later.source < 3 && later.target < 3, `still near zero 3 s later: ${JSON.stringify(later)}`);

  // A current rate while loading again (records_per_second > 0).
  const before = later.sent;
  const load = sql(`CALL ${schema}.work(100, 0.05);`);
  const moving = await waitFor(async () => {
    const f = await figures(task);
    return f.rps > 0 && f.sent > before ? f : null;
  }, { timeoutMs: 20000, intervalMs: 200, what: 'records_per_second > 0 while loading' });
  assert.ok(moving.rps > 0);
  await load;
});

test('postgres CDC: PutRecords delayed by the proxy: target latency grows, source latency stays small', async () => {
  const { schema, stream, task } = await pgTask();
  await sql(`CALL ${schema}.work(2);`);
  await waitSent(task, 10);
  await sleep(1500);

  // A 6 s delay on every PutRecords; changes committed while the worker
  // waits for Kinesis are read all the same (source side caught up).
  const DELAY = 6000;
  await kp.setFaults({ delay_ms: DELAY, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    await sql(`CALL ${schema}.work(1);`);
    await waitFor(async () => {
      const f = await figures(task);
      if (f.status === 'failed') throw new Error(`task failed: ${f.lastError}`);
      return f.target !== null && f.target > 1.5 ? f : null;
    }, { timeoutMs: 30000, intervalMs: 200, what: 'target latency growing' });
    await sql(`CALL ${schema}.work(1);`);
    await sleep(1500);
    const seen = await figures(task);
    assert.ok(seen.target !== null && seen.target > 3, `target latency above 3 s while PutRecords takes 6 s: ${JSON.stringify(seen)}`);
    assert.ok(seen.source !== null && seen.source < 2.5,
      `source latency stays small while Kinesis is slow: ${JSON.stringify(seen)}`);
    assert.ok(seen.target > seen.source + 1, `target latency above source latency: ${JSON.stringify(seen)}`);
    assert.equal(seen.sent, 10, 'nothing acknowledged during the delay');
  } finally {
    await kp.setFaults({});
  }
  // Acknowledged: both back near zero.
  await waitSent(task, 20);
  const back = await waitFor(async () => {
    const f = await figures(task);
    return f.source < 3 && f.target < 3 ? f : null;
  }, { timeoutMs: 20000, intervalMs: 300, what: 'latencies back near zero' });
  assert.equal(back.status, 'running');
});

test('postgres CDC: throttled PutRecords entries are counted', async () => {
  const { schema, stream, task } = await pgTask();
  await sql(`CALL ${schema}.work(1);`);
  const start = await waitSent(task, 5);
  assert.equal(start.throttledRecords, 0, `no throttling yet: ${JSON.stringify(start)}`);

  await kp.setFaults({
    put_records_fail_rate: 1, put_records_error_codes: ['ProvisionedThroughputExceededException'], count: 3,
    match: { stream: `^${stream}$`, target: 'PutRecords' },
  });
  try {
    await sql(`CALL ${schema}.work(4);`);
    await waitSent(task, 25);
  } finally {
    await kp.setFaults({});
  }
  const f = await waitFor(async () => {
    const g = await figures(task);
    return g.throttledRecords > 0 ? g : null;
  }, { timeoutMs: 10000, intervalMs: 300, what: 'throttled_records > 0' });
  assert.ok(f.throttledRecords >= 1 && f.throttledRecords <= 25, JSON.stringify(f));
  assert.ok(f.throttledRequests !== null && f.throttledRequests >= 0, JSON.stringify(f));
});

test('S3 CDC: latencies near zero when caught up; source latency is measured from the file', async () => {
  await sql(`ALTER SYSTEM SET dms_stream.poll_interval = '300ms'; SELECT pg_reload_conf();`);
  const cols = [
    { ColumnName: 'ingest_time', ColumnType: 'DATETIME', ColumnNullable: 'false', ColumnIsPk: 'true' },
    { ColumnName: 'doi', ColumnType: 'STRING', ColumnLength: '30' },
    { ColumnName: 'id', ColumnType: 'INT8' },
    { ColumnName: 'value', ColumnType: 'NUMERIC', ColumnPrecision: '5', ColumnScale: '2' },
    { ColumnName: 'data_sig', ColumnType: 'STRING', ColumnLength: '10' },
  ];
  const etd = {
    TableCount: '1',
    Tables: [{ TableName: 'table01', TablePath: 'schema01/table01/', TableOwner: 'schema01', TableColumnsTotal: '5', TableColumns: cols }],
  };
  const mappings = {
    rules: [{
      'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'all',
      'object-locator': { 'schema-name': 'schema01', 'table-name': '%' }, 'rule-action': 'include',
    }],
  };
  const { bucket, task, stream } = await createS3Task({ prefix: 'tlat', migrationType: 'cdc', etd, mappings, s3: { CdcPath: 'changes' } });
  tasks.push(task);
  streams.push(stream);
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitFor(async () => {
    const f = await figures(task);
    if (f.status === 'failed') throw new Error(`task failed: ${f.lastError}`);
    return f.phase.startsWith('cdc') ? f : null;
  }, { timeoutMs: 60000, what: 'phase cdc' });

  let text = '';
  for (let i = 1; i <= 20; i++) text += `I,table01,schema01,${seedRow(i).csv}\n`;
  const file = path.join(tmp, 'CDC00001.csv');
  fs.writeFileSync(file, text);
  await aws(['s3', 'cp', file, `s3://${bucket}/changes/CDC00001.csv`], { endpoint: env.S3_PROXY_URL });
  await waitSent(task, 20);

  // The file's LastModified is the commit time of its rows.
  const progress = await sql(`SELECT extract(epoch FROM source_commit_time), extract(epoch FROM target_commit_time)
    FROM dms_stream.task_progress WHERE task_name = ${lit(task)}`);
  const head = await aws(['s3api', 'head-object', '--bucket', bucket, '--key', 'changes/CDC00001.csv'],
    { endpoint: env.S3_PROXY_URL });
  const lm = Date.parse(head.LastModified) / 1000;
  assert.ok(Math.abs(Number(progress[0][0]) - lm) <= 1, `source_commit_time ${progress[0][0]} is the LastModified ${lm}`);
  assert.ok(Math.abs(Number(progress[0][1]) - lm) <= 1, `target_commit_time ${progress[0][1]} is the LastModified ${lm}`);

  await sleep(4000);
  const idle = await figures(task);
  assert.equal(idle.status, 'running');
  assert.ok(idle.source !== null && idle.source < 3, `cdc_latency_source near zero when idle: ${JSON.stringify(idle)}`);
  assert.ok(idle.target !== null && idle.target < 3, `cdc_latency_target near zero when idle: ${JSON.stringify(idle)}`);
  assert.equal(idle.rps, 0, `records_per_second 0 once idle: ${JSON.stringify(idle)}`);
  assert.ok(idle.rpsRun > 0, `the run average is not: ${JSON.stringify(idle)}`);
});
