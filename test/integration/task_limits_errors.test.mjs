// Task workers beyond dms_stream.max_task_workers, and the ErrorBehavior
// policies IGNORE_RECORD and SUSPEND_TABLE of S3 source tasks
// (src/launcher.c, src/s3_source_job.c).
//
// Covered: more tasks started than dms_stream.max_task_workers: never more
// workers than the limit, the extra tasks wait in task_status as 'starting'
// without a worker and start as slots free, every task loads all its rows;
// DataErrorPolicy IGNORE_RECORD: bad rows of a full-load file are skipped
// without an apply_exceptions row and the load goes on; DataErrorPolicy
// SUSPEND_TABLE in the full load: the table stops at its bad row (rows
// before it sent, none after) in TableState 'Table error', the other table
// loads completely and the task ends normally; SUSPEND_TABLE in CDC: the
// table's later rows are skipped, the suspension is committed with the
// checkpoint ('Table error' in the table statistics) and still holds after
// stop_task and resume-processing, while the other table goes on.
//
// Run: test/check.sh --only task_limits (bed started by check.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  env, psql, psqlTry, aws, proxy, createBucket, createStream, uniqueName, waitFor, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import { lit, sql, createS3Task, taskStatus } from '../lib/tasks.mjs';

const kp = proxy('kinesis');

const COLUMNS = [
  { ColumnName: 'ingest_time', ColumnType: 'DATETIME', ColumnNullable: 'false', ColumnIsPk: 'true' },
  { ColumnName: 'doi', ColumnType: 'STRING', ColumnLength: '30' },
  { ColumnName: 'id', ColumnType: 'INT8' },
  { ColumnName: 'value', ColumnType: 'NUMERIC', ColumnPrecision: '5', ColumnScale: '2' },
  { ColumnName: 'data_sig', ColumnType: 'STRING', ColumnLength: '10' },
];
const table = (name) => ({
  TableName: name, TablePath: `schema01/${name}/`, TableOwner: 'schema01', TableColumnsTotal: '5', TableColumns: COLUMNS,
});
const ETD = { TableCount: '2', Tables: [table('table01'), table('table02')] };
const MAPPINGS = {
  rules: [{
    'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'all',
    'object-locator': { 'schema-name': 'schema01', 'table-name': '%' }, 'rule-action': 'include',
  }],
};

const tasks = [];
const endpoints = [];
let tmp;

/** Row i as CSV fields (no newline). */
function row(i) {
  const t = new Date(Date.UTC(2020, 7, 3, 22, 0, 0) + i * 1000).toISOString();
  return `${t.slice(0, 10)} ${t.slice(11, 19)},10.1000/${i},${i},${(i % 900) + 0.25},s${i % 1000}`;
}
const rows = (from, to) => Array.from({ length: to - from }, (_, k) => `${row(from + k)}\n`).join('');
const BAD = '2020-08-03 23:59:59,10.1000/bad,notanumber,1.00,s\n';

async function put(bucket, key, text) {
  const file = path.join(tmp, `${bucket}-${key.replace(/\//g, '_')}`);
  fs.writeFileSync(file, text);
  await aws(['s3', 'cp', '--only-show-errors', file, `s3://${bucket}/${key}`], { endpoint: env.S3_PROXY_URL });
}

async function makeTask({ migrationType = 'full-load', settings = {}, stream } = {}) {
  const made = await createS3Task({
    prefix: 'tle', migrationType, etd: ETD, mappings: MAPPINGS, settings, s3: { CdcPath: 'changes' }, stream,
  });
  tasks.push(made.task);
  endpoints.push(made.src, made.tgt);
  return made;
}

const status = taskStatus;

async function waitStatus(task, wanted, timeoutMs = 180000) {
  return waitFor(async () => {
    const s = await status(task);
    return wanted.includes(s.status) ? s : null;
  }, { timeoutMs, intervalMs: 200, what: `task ${task} ${wanted.join('|')}` });
}

/** Table statistics: {table: {rows, errors, state, inserts}}. */
async function stats(task) {
  const r = await sql(`SELECT "TableName", "FullLoadRows", "FullLoadErrorRows", "TableState", "Inserts"
    FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)} ORDER BY 1`);
  return Object.fromEntries(r.map(([t, n, e, s, i]) => [t, { rows: Number(n), errors: Number(e), state: s, inserts: Number(i) }]));
}

/** The stream's records as {table, id}, sorted. */
async function sent(stream) {
  const recs = await streamRecords(stream);
  assertStreamInvariants(recs, { what: stream });
  return recs.map((r) => {
    const m = JSON.parse(r.Data.toString('utf8'));
    return { table: m.metadata['table-name'], id: m.data.id };
  }).sort((a, b) => a.table.localeCompare(b.table) || a.id - b.id);
}

const ids = (recs, t) => recs.filter((r) => r.table === t).map((r) => r.id);
const range = (from, to) => Array.from({ length: to - from }, (_, k) => from + k);

/** Workers of the given tasks running now. */
async function workersOf(names) {
  const r = await sql(`SELECT application_name FROM pg_stat_activity
    WHERE backend_type = 'dms_stream task' AND application_name IN (${names.map(lit).join(', ')})`);
  return r.map((x) => x[0]);
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'task-limits-errors-'));
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  await kp.setFaults({}).catch(() => {});
  for (const t of tasks) await psqlTry(`UPDATE dms_stream.task SET desired_state = 'stopped' WHERE task_name = ${lit(t)};`);
  for (const t of tasks) {
    await waitFor(async () => (await workersOf([t])).length === 0, { timeoutMs: 30000, what: `worker of ${t} gone` }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped' WHERE task_name = ${lit(t)} AND status <> 'stopped';
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const e of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(e)});`);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('more tasks than dms_stream.max_task_workers: the extra ones wait as starting, then run; none is lost', async (t) => {
  const limit = Number((await sql('SHOW dms_stream.max_task_workers;'))[0][0]);
  const n = limit + 2;
  const base = uniqueName('tmw');
  // Slow PutRecords of these streams down so that every task lasts a few seconds.
  await kp.setFaults({ delay_ms: 250, match: { stream: `^${base}-`, target: 'PutRecords' } });
  const settings = { TargetMetadata: { ParallelLoadThreads: 1, ParallelLoadBufferSize: 10 } };
  const made = [];
  try {
    for (let i = 0; i < n; i++) {
      const m = await makeTask({ settings, stream: `${base}-${i}` });
      await put(m.bucket, 'schema01/table01/LOAD001.csv', rows(i * 1000, i * 1000 + 100));
      made.push(m);
    }
    const names = made.map((m) => m.task);
    await sql(names.map((x) => `SELECT dms_stream.start_task(${lit(x)});`).join('\n'));

    let most = 0;
    let sawWaiting = false;
    await waitFor(async () => {
      const running = await workersOf(names);
      most = Math.max(most, running.length);
      assert.ok(running.length <= limit, `${running.length} workers for a limit of ${limit}`);
      const st = await sql(`SELECT task, status, coalesce(worker_pid::text, '') FROM dms_stream.task_status
        WHERE task IN (${names.map(lit).join(', ')})`);
      const waiting = st.filter(([name, s, pid]) => s === 'starting' && pid === '' && !running.includes(name));
      if (running.length === limit && waiting.length > 0) sawWaiting = true;
      return st.every(([, s]) => s === 'stopped' || s === 'failed');
    }, { timeoutMs: 300000, intervalMs: 150, what: 'every task finished' });
    t.diagnostic(`limit ${limit}, ${n} tasks, at most ${most} workers at once`);
    assert.equal(most, limit, 'the limit was reached');
    assert.ok(sawWaiting, 'tasks beyond the limit waited as starting, without a worker');

    for (const m of made) {
      const s = await status(m.task);
      assert.equal(s.status, 'stopped', s.lastError);
      assert.equal(s.stopReason, 'Stop Reason FULL_LOAD_ONLY_FINISHED');
      assert.equal((await stats(m.task)).table01.rows, 100);
      assert.equal(assertStreamInvariants(await streamRecords(m.stream), { what: m.stream }).records, 100);
    }
  } finally {
    await kp.setFaults({});
  }
});

test('DataErrorPolicy IGNORE_RECORD: bad rows are skipped without an exception row; the load goes on', async () => {
  const { bucket, stream, task } = await makeTask({ settings: { ErrorBehavior: { DataErrorPolicy: 'IGNORE_RECORD' } } });
  await put(bucket, 'schema01/table01/LOAD001.csv', rows(0, 5) + BAD + rows(5, 8) + BAD + rows(8, 10));
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const s = await waitStatus(task, ['stopped', 'failed']);
  assert.equal(s.status, 'stopped', s.lastError);
  assert.deepEqual(ids(await sent(stream), 'table01'), range(0, 10));
  assert.equal(await sql(`SELECT count(*) FROM dms_stream.apply_exceptions WHERE task_name = ${lit(task)}`).then((r) => r[0][0]), '0');
  const st = (await stats(task)).table01;
  assert.equal(st.rows, 10);
  assert.equal(st.state, 'Table completed');
  assert.equal(st.errors, 2, 'ignored rows still count as error rows');
});

test('DataErrorPolicy SUSPEND_TABLE in the full load: that table stops in Table error, the other loads', async () => {
  const { bucket, stream, task } = await makeTask({ settings: { ErrorBehavior: { DataErrorPolicy: 'SUSPEND_TABLE' } } });
  await put(bucket, 'schema01/table01/LOAD001.csv', rows(0, 5) + BAD + rows(5, 10));
  await put(bucket, 'schema01/table01/LOAD002.csv', rows(10, 20));
  await put(bucket, 'schema01/table02/LOAD001.csv', rows(100, 120));
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const s = await waitStatus(task, ['stopped', 'failed']);
  assert.equal(s.status, 'stopped', `the task goes on: ${s.lastError}`);
  assert.equal(s.stopReason, 'Stop Reason FULL_LOAD_ONLY_FINISHED');

  const recs = await sent(stream);
  assert.deepEqual(ids(recs, 'table01'), range(0, 5), 'table01: the rows before the bad one, none after');
  assert.deepEqual(ids(recs, 'table02'), range(100, 120), 'table02: every row');
  const st = await stats(task);
  assert.equal(st.table01.state, 'Table error');
  assert.equal(st.table01.rows, 5);
  assert.equal(st.table02.state, 'Table completed');
  assert.equal(st.table02.rows, 20);
});

test('DataErrorPolicy SUSPEND_TABLE in CDC: later rows of the table are skipped, also after a restart', async () => {
  const { bucket, stream, task } = await makeTask({ migrationType: 'cdc', settings: { ErrorBehavior: { DataErrorPolicy: 'SUSPEND_TABLE' } } });
  const cdc = (specs) => specs.map(([tbl, i]) => (i === null ? `I,${tbl},schema01,${BAD}` : `I,${tbl},schema01,${row(i)}\n`)).join('');
  await put(bucket, 'changes/CDC00001.csv', cdc([['table01', 1], ['table02', 2], ['table01', null], ['table01', 3], ['table02', 4]]));
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);

  await waitFor(async () => (await stats(task)).table01?.state === 'Table error', { timeoutMs: 120000, what: 'table01 suspended and committed' });
  await waitFor(async () => (await sent(stream)).length >= 3, { timeoutMs: 60000, what: 'CDC00001 sent' });
  let recs = await sent(stream);
  assert.deepEqual(ids(recs, 'table01'), [1], 'table01: the row before the bad one');
  assert.deepEqual(ids(recs, 'table02'), [2, 4]);
  const ex = await sql(`SELECT table_name, line_number FROM dms_stream.apply_exceptions WHERE task_name = ${lit(task)}`);
  assert.deepEqual(ex, [['table01', '3']], 'the bad row is logged');

  // Stop, add a file with rows of both tables, resume: table01 stays suspended.
  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitStatus(task, ['stopped']);
  await put(bucket, 'changes/CDC00002.csv', cdc([['table01', 5], ['table02', 6], ['table01', 7]]));
  await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  await waitFor(async () => {
    const r = await sql(`SELECT file_key, table_done FROM dms_stream.task_checkpoint
      WHERE task_name = ${lit(task)} AND schema_name = '(cdc)'`);
    return r.length === 1 && r[0][0] === 'changes/CDC00002.csv' && r[0][1] === 't';
  }, { timeoutMs: 120000, intervalMs: 300, what: 'CDC00002 read and committed' });
  recs = await sent(stream);
  assert.deepEqual(ids(recs, 'table01'), [1], 'no table01 row after the suspension, even after the restart');
  assert.deepEqual(ids(recs, 'table02'), [2, 4, 6]);
  const st = await stats(task);
  assert.equal(st.table01.state, 'Table error');
  assert.equal(st.table02.inserts, 3);
  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitStatus(task, ['stopped']);
});
