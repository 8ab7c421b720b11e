// CDC of tasks with an S3 source (src/s3_source_job.c, job_cdc_run): the
// worker polls BucketFolder/CdcPath every dms_stream.poll_interval and sends
// each row of the new CDC files, in key order, to Kinesis as a DMS insert,
// update or delete of the table the row names.
//
// Covered: a full-load-and-cdc task of the seed's schema01.table01: the full
// load, then CDC files uploaded one after the other while the task runs,
// picked up as they arrive; rows for two tables with I/U/D and
// INSERT/UPDATE/DELETE in mixed case, a row of a table the selection rules
// exclude (skipped) and one of a table the definition lacks (apply_exceptions
// unknown_table); the stream read back with the AWS CLI and compared record
// by record (operation, data, schema and table, event id, partition key
// schema.table as DMS writes for CDC); Inserts, Updates
// and Deletes per table; a late file (uploaded after a file whose key sorts
// after it) is not replicated and is reported (WARNING, apply_exceptions
// late_cdc_file); stop_task during CDC stops the worker and
// resume-processing goes on after the high-water mark; a cdc-only task reads
// the files already present; SIGKILL of its worker, and stop_task followed
// by resume-processing, in the middle of a CDC file lose nothing (duplicates
// only with the same event id and data); a late file uploaded while the task
// is stopped is reported when it resumes.
//
// Run: test/check.sh --only task (bed started by check.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  env, psql, psqlTry, aws, proxy, createBucket, createStream, uniqueName, waitFor, sleep, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import { lit, sql, one, seedRow, createS3Task, taskStatus } from '../lib/tasks.mjs';

const kp = proxy('kinesis');

const COLUMNS = [
  { ColumnName: 'ingest_time', ColumnType: 'DATETIME', ColumnNullable: 'false', ColumnIsPk: 'true' },
  { ColumnName: 'doi', ColumnType: 'STRING', ColumnLength: '30' },
  { ColumnName: 'id', ColumnType: 'INT8' },
  { ColumnName: 'value', ColumnType: 'NUMERIC', ColumnPrecision: '5', ColumnScale: '2' },
  { ColumnName: 'data_sig', ColumnType: 'STRING', ColumnLength: '10' },
];
const table = (owner, name) => ({
  TableName: name, TablePath: `${owner}/${name}/`, TableOwner: owner, TableColumnsTotal: '5', TableColumns: COLUMNS,
});
// schema02.table03 is in the definition but not selected.
const ETD = { TableCount: '3', Tables: [table('schema01', 'table01'), table('schema01', 'table02'), table('schema02', 'table03')] };
const MAPPINGS = {
  rules: [{
    'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'all',
    'object-locator': { 'schema-name': 'schema01', 'table-name': '%' }, 'rule-action': 'include',
  }],
};

const tasks = [];
const endpoints = [];
let tmp;

const OPS = { i: 'insert', insert: 'insert', u: 'update', update: 'update', d: 'delete', delete: 'delete' };

/**
 * A CDC file: rows [{op, table, schema, i}] -> {name, text, rows}; each
 * expected row has line, operation, table, schema and data (null for rows
 * that must not be replicated).
 */
function cdcFile(name, specs) {
  let text = '';
  const rows = [];
  specs.forEach((s, n) => {
    const r = seedRow(s.i);
    text += `${s.op},${s.table},${s.schema},${r.csv}\n`;
    rows.push({ line: n + 1, operation: OPS[s.op.toLowerCase()], table: s.table, schema: s.schema, data: r.data, key: r.key, replicated: s.replicated !== false });
  });
  return { name, text, rows };
}

/** Mixed operations for table01 and table02, ids from base. */
function mixed(name, base, n = 12) {
  const ops = ['I', 'insert', 'u', 'UPDATE', 'Update', 'd', 'DELETE', 'i', 'INSERT', 'U', 'delete', 'D'];
  const specs = [];
  for (let k = 0; k < n; k++) specs.push({ op: ops[k % ops.length], table: k % 2 ? 'table02' : 'table01', schema: 'schema01', i: base + k });
  return cdcFile(name, specs);
}

async function put(bucket, key, text) {
  const file = path.join(tmp, `${bucket}-${key.replace(/\//g, '_')}`);
  fs.writeFileSync(file, text);
  await aws(['s3', 'cp', file, `s3://${bucket}/${key}`], { endpoint: env.S3_PROXY_URL });
}

async function makeTask(migrationType, settings = {}) {
  const made = await createS3Task({ prefix: 'tcdc', migrationType, etd: ETD, mappings: MAPPINGS, settings, s3: { CdcPath: 'changes' } });
  tasks.push(made.task);
  endpoints.push(made.src, made.tgt);
  return made;
}

const status = taskStatus;

async function worker(task) {
  const rows = await sql(`SELECT pid, query FROM pg_stat_activity
    WHERE backend_type = 'dms_stream task' AND application_name = ${lit(task)}`);
  return rows.length ? { pid: Number(rows[0][0]), query: rows[0][1] } : null;
}

/** CDC statistics: {table: [inserts, updates, deletes]}. */
async function cdcStats(task) {
  const rows = await sql(`SELECT "TableName", "Inserts", "Updates", "Deletes" FROM dms_stream.table_statistics_view
    WHERE "TaskName" = ${lit(task)} ORDER BY 1`);
  return Object.fromEntries(rows.map(([t, i, u, d]) => [t, [Number(i), Number(u), Number(d)]]));
}

async function records(stream) {
  const recs = (await streamRecords(stream)).map((r) => ({ key: r.PartitionKey, text: r.Data.toString('utf8') }));
  assertStreamInvariants(recs, { what: stream });
  return recs;
}

/** Every record with the AWS CLI, straight from kinesalite. */
async function cliRecords(stream) {
  const opts = { endpoint: env.KINESALITE_URL };
  const out = [];
  const { Shards } = await aws(['kinesis', 'list-shards', '--stream-name', stream], opts);
  for (const { ShardId } of Shards) {
    let { ShardIterator: it } = await aws(['kinesis', 'get-shard-iterator', '--stream-name', stream,
      '--shard-id', ShardId, '--shard-iterator-type', 'TRIM_HORIZON'], opts);
    while (it) {
      const r = await aws(['kinesis', 'get-records', '--shard-iterator', it, '--limit', '10000'], opts);
      for (const rec of r.Records) out.push({ key: rec.PartitionKey, text: Buffer.from(rec.Data, 'base64').toString('utf8') });
      if (r.Records.length === 0) break;
      it = r.NextShardIterator;
    }
  }
  assertStreamInvariants(out, { what: stream });
  return out;
}

/** Records of the CDC operations only. */
const cdcOnly = (recs) => recs.filter((r) => JSON.parse(r.text).metadata.operation !== 'load');

/**
 * Compare CDC records with the files' replicated rows, record by record:
 * each event id (hash of the file key : line) maps to one row; returns the
 * number of duplicates (same id, same data).
 */
function compareCdc(recs, files) {
  const expected = files.flatMap((f) => f.rows.filter((r) => r.replicated).map((r) => ({ ...r, file: f.name })));
  const byId = new Map();
  const fileOfHash = new Map();
  let duplicates = 0;
  for (const rec of recs) {
    const msg = JSON.parse(rec.text);
    const id = msg.metadata['event-id'];
    assert.match(id, /^[0-9a-f]{16}:\d+$/, 'event id is hash:line');
    if (byId.has(id)) {
      duplicates++;
      assert.deepEqual(msg.data, byId.get(id).msg.data, `duplicate ${id} carries the same data`);
      assert.equal(msg.metadata.operation, byId.get(id).msg.metadata.operation);
      continue;
    }
    const [hash, line] = id.split(':');
    const want = expected.find((e) => e.line === Number(line) && e.data.id === msg.data.id && e.table === msg.metadata['table-name']);
    assert.ok(want, `event ${id} (${rec.text}) is a replicated row of the files`);
    if (fileOfHash.has(hash)) assert.equal(fileOfHash.get(hash), want.file, `ids of one hash come from one file (${id})`);
    else fileOfHash.set(hash, want.file);
    for (const [h, f] of fileOfHash) if (h !== hash) assert.notEqual(f, want.file, 'one hash per file');
    byId.set(id, { msg, want });
    assert.deepEqual(Object.keys(msg), ['data', 'metadata']);
    assert.equal(msg.metadata['record-type'], 'data');
    assert.equal(msg.metadata.operation, want.operation, `operation of ${id}`);
    assert.equal(msg.metadata['schema-name'], want.schema);
    assert.equal(msg.metadata['table-name'], want.table);
    assert.equal(msg.data.ingest_time, want.data.ingest_time);
    assert.equal(msg.data.doi, want.data.doi);
    assert.equal(msg.data.id, want.data.id);
    assert.equal(msg.data.data_sig, want.data.data_sig);
    const value = /"value":\s*(-?\d+\.\d+)/.exec(rec.text);
    assert.equal(value && value[1], want.data.value);
    // CDC records without ParallelApply: partition key schema.table (DMS default).
    assert.equal(msg.metadata['partition-key-type'], 'schema-table');
    assert.equal(rec.key, `${want.schema}.${want.table}`, 'partition key = schema.table');
  }
  assert.equal(byId.size, expected.length, 'every replicated row of the files is in the stream, once per event id');
  return duplicates;
}

/** Expected statistics of files: {table: [inserts, updates, deletes]}. */
function expectedStats(files) {
  const out = {};
  for (const f of files) {
    for (const r of f.rows) {
      if (!r.replicated) continue;
      out[r.table] ??= [0, 0, 0];
      out[r.table][{ insert: 0, update: 1, delete: 2 }[r.operation]]++;
    }
  }
  return out;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'task-cdc-'));
  await sql(`CREATE EXTENSION IF NOT EXISTS dms_stream;
    ALTER SYSTEM SET dms_stream.poll_interval = '300ms'; SELECT pg_reload_conf();`);
});

after(async () => {
  await kp.setFaults({}).catch(() => {});
  for (const t of tasks) await psqlTry(`UPDATE dms_stream.task SET desired_state = 'stopped' WHERE task_name = ${lit(t)};`);
  for (const t of tasks) {
    await waitFor(async () => !(await worker(t)), { timeoutMs: 30000, what: `worker of ${t} gone` }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped' WHERE task_name = ${lit(t)} AND status <> 'stopped';
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const e of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(e)});`);
  await psqlTry('ALTER SYSTEM RESET dms_stream.poll_interval; SELECT pg_reload_conf();');
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('full-load-and-cdc: full load, CDC files as they arrive, late file, stop and resume', async () => {
  const { bucket, stream, task } = await makeTask('full-load-and-cdc');
  let full = '';
  for (let i = 0; i < 50; i++) full += `${seedRow(i).csv}\n`;
  await put(bucket, 'schema01/table01/LOAD001.csv', full);
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);

  // The full load, then the worker polls the CDC folder.
  await waitFor(async () => (await status(task)).phase.startsWith('cdc'), { timeoutMs: 120000, what: 'phase cdc' });
  const fl = await sql(`SELECT "FullLoadRows", "TableState" FROM dms_stream.table_statistics_view
    WHERE "TaskName" = ${lit(task)} AND "TableName" = 'table01'`);
  assert.deepEqual(fl, [['50', 'Table completed']]);
  assert.equal((await status(task)).status, 'running');
  assert.match((await worker(task)).query, /^cdc: (waiting for new files in|listing) s3:\/\//);

  const files = [];
  const upload = async (f) => { await put(bucket, `changes/${f.name}`, f.text); files.push(f); };
  const waitRows = async (n, what) => waitFor(async () => {
    const c = (await records(stream)).length;
    return c >= n ? c : null;
  }, { timeoutMs: 120000, intervalMs: 300, what });
  const replicated = () => files.reduce((a, f) => a + f.rows.filter((r) => r.replicated).length, 0);

  // CDC00001: mixed operations of both tables, an excluded table, an unknown table.
  const f1 = mixed('CDC00001.csv', 1000);
  f1.text += `INSERT,table03,schema02,${seedRow(1100).csv}\n`;
  f1.rows.push({ line: 13, replicated: false });
  f1.text += `insert,nosuch,schema01,${seedRow(1101).csv}\n`;
  f1.rows.push({ line: 14, replicated: false });
  f1.text += `U,table01,schema01,${seedRow(1102).csv}\n`;
  f1.rows.push({ line: 15, operation: 'update', table: 'table01', schema: 'schema01', data: seedRow(1102).data, key: seedRow(1102).key, replicated: true });
  await upload(f1);
  await waitRows(50 + replicated(), 'CDC00001 replicated');
  await upload(mixed('CDC00002.csv', 2000, 7));
  await waitRows(50 + replicated(), 'CDC00002 replicated');
  await upload(mixed('CDC00004.csv', 4000, 5));
  await waitRows(50 + replicated(), 'CDC00004 replicated');

  // A late file: sorts before CDC00004, uploaded after it was processed.
  const late = mixed('CDC00003.csv', 3000, 4);
  for (const r of late.rows) r.replicated = false;
  await upload(late);
  await upload(mixed('CDC00005.csv', 5000, 6));
  await waitRows(50 + replicated(), 'CDC00005 replicated');
  const lateRow = await waitFor(async () => {
    const rows = await sql(`SELECT source_uri, error FROM dms_stream.apply_exceptions
      WHERE task_name = ${lit(task)} AND error_code = 'late_cdc_file'`);
    return rows.length ? rows : null;
  }, { timeoutMs: 60000, what: 'late file reported' });
  assert.equal(lateRow.length, 1);
  assert.equal(lateRow[0][0], `s3://${bucket}/changes/CDC00003.csv`);
  assert.match(lateRow[0][1], /CDC00004\.csv/);
  const log = fs.readFileSync(path.join(env.DMS_BED_PGRUN, 'pg.log'), 'utf8');
  assert.match(log, new RegExp(`WARNING:.*"${task}": late CDC file s3://${bucket}/changes/CDC00003\\.csv is not replicated`));
  const unknown = await sql(`SELECT table_owner, table_name, source_uri, line_number FROM dms_stream.apply_exceptions
    WHERE task_name = ${lit(task)} AND error_code = 'unknown_table'`);
  assert.deepEqual(unknown, [['schema01', 'nosuch', `s3://${bucket}/changes/CDC00001.csv`, '14']]);
  const ck = await sql(`SELECT file_key, table_done FROM dms_stream.task_checkpoint
    WHERE task_name = ${lit(task)} AND schema_name = '(cdc)'`);
  assert.deepEqual(ck, [['changes/CDC00005.csv', 't']]);

  // Statistics (committed with the checkpoint that follows the acknowledgements).
  await waitFor(async () => JSON.stringify(await cdcStats(task)) === JSON.stringify({ ...expectedStats(files) }) || null,
    { timeoutMs: 30000, what: `statistics ${JSON.stringify(expectedStats(files))}` });
  assert.deepEqual(await cdcStats(task), expectedStats(files));

  // stop_task during CDC, a file while stopped, resume-processing.
  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitFor(async () => !(await worker(task)), { what: 'worker gone after stop_task' });
  const stopped = await status(task);
  assert.equal(stopped.status, 'stopped');
  assert.equal(stopped.stopReason, 'Stop Reason NORMAL');
  await upload(mixed('CDC00006.csv', 6000, 8));
  await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  await waitRows(50 + replicated(), 'CDC00006 replicated after resume');
  await waitFor(async () => JSON.stringify(await cdcStats(task)) === JSON.stringify(expectedStats(files)) || null,
    { timeoutMs: 30000, what: 'statistics after resume' });

  const recs = await cliRecords(stream);
  assert.equal(recs.filter((r) => JSON.parse(r.text).metadata.operation === 'load').length, 50);
  const duplicates = compareCdc(cdcOnly(recs), files);
  assert.equal(duplicates, 0, 'no duplicates: the stop came between files');
  assert.equal(await one(`SELECT count(*) FROM dms_stream.apply_exceptions WHERE task_name = ${lit(task)}`), '2');
});

test('cdc-only task: files already present are read; SIGKILL and stop_task mid-file lose nothing', async () => {
  const settings = { TargetMetadata: { ParallelLoadThreads: 2, ParallelLoadBufferSize: 50 } };
  const { bucket, stream, task } = await makeTask('cdc', settings);
  const files = [];
  const ops = ['I', 'u', 'Delete', 'INSERT', 'update', 'd'];
  for (const [name, base, n] of [['CDC00001.csv', 100000, 200], ['CDC00002.csv', 200000, 3000]]) {
    const specs = [];
    for (let k = 0; k < n; k++) specs.push({ op: ops[k % ops.length], table: k % 3 ? 'table01' : 'table02', schema: 'schema01', i: base + k });
    const f = cdcFile(name, specs);
    await put(bucket, `changes/${name}`, f.text);
    files.push(f);
  }
  await kp.setFaults({ delay_ms: 100, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    const w = await waitFor(() => worker(task), { what: 'worker' });
    await waitFor(async () => Number(await one(`SELECT rows_sent FROM dms_stream.task_checkpoint
      WHERE task_name = ${lit(task)} AND schema_name = '(cdc)' AND file_key = 'changes/CDC00002.csv'`)) > 300 || null,
    { timeoutMs: 120000, what: 'into CDC00002' });
    const committed = Number(await one(`SELECT rows_sent FROM dms_stream.task_checkpoint WHERE task_name = ${lit(task)} AND schema_name = '(cdc)'`));
    assert.ok(committed < 3200, `killed in the middle of CDC00002 (${committed})`);
    process.kill(w.pid, 'SIGKILL');
    await waitFor(async () => {
      const w2 = await worker(task).catch(() => null);
      return w2 && w2.pid !== w.pid;
    }, { timeoutMs: 60000, what: 'worker restarted after SIGKILL' });
    await kp.setFaults({});
    await waitFor(async () => (await one(`SELECT file_key || ' ' || table_done FROM dms_stream.task_checkpoint
      WHERE task_name = ${lit(task)} AND schema_name = '(cdc)'`)) === 'changes/CDC00002.csv true' || null,
    { timeoutMs: 180000, what: 'CDC00002 completed' });
    const recs = await records(stream);
    const duplicates = compareCdc(recs, files);
    console.log(`CDC SIGKILL: ${committed} rows committed before the kill, ${duplicates} re-sent`);
    assert.ok(duplicates <= 1000, `duplicates only in the unacknowledged window (${duplicates})`);
    assert.deepEqual(await cdcStats(task), expectedStats(files));
    assert.equal((await status(task)).status, 'running');

    // stop_task in the middle of a CDC file, a late file uploaded while
    // stopped, resume-processing from the checkpoint inside the file.
    const specs = [];
    for (let k = 0; k < 3000; k++) specs.push({ op: ops[k % ops.length], table: k % 2 ? 'table01' : 'table02', schema: 'schema01', i: 300000 + k });
    const f3 = cdcFile('CDC00003.csv', specs);
    await kp.setFaults({ delay_ms: 100, match: { stream: `^${stream}$`, target: 'PutRecords' } });
    await put(bucket, 'changes/CDC00003.csv', f3.text);
    files.push(f3);
    await waitFor(async () => (await one(`SELECT file_key || ' ' || table_done FROM dms_stream.task_checkpoint
      WHERE task_name = ${lit(task)} AND schema_name = '(cdc)'`)) === 'changes/CDC00003.csv false' || null,
    { timeoutMs: 120000, what: 'into CDC00003' });
    await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
    await waitFor(async () => !(await worker(task)), { what: 'worker gone after stop_task mid-file' });
    assert.equal((await status(task)).status, 'stopped');
    assert.equal(await one(`SELECT table_done FROM dms_stream.task_checkpoint
      WHERE task_name = ${lit(task)} AND schema_name = '(cdc)'`), 'f', 'stopped inside CDC00003');
    await kp.setFaults({});
    await sleep(1100); // LastModified (whole seconds) after the last checkpoint
    const late = cdcFile('CDC00002a.csv', [{ op: 'I', table: 'table01', schema: 'schema01', i: 399999, replicated: false }]);
    await put(bucket, 'changes/CDC00002a.csv', late.text);
    files.push(late);
    await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
    await waitFor(async () => (await one(`SELECT file_key || ' ' || table_done FROM dms_stream.task_checkpoint
      WHERE task_name = ${lit(task)} AND schema_name = '(cdc)'`)) === 'changes/CDC00003.csv true' || null,
    { timeoutMs: 180000, what: 'CDC00003 completed after resume' });
    const dup2 = compareCdc(await records(stream), files);
    console.log(`CDC stop mid-file: ${dup2} re-sent in all`);
    assert.deepEqual(await cdcStats(task), expectedStats(files));
    const lateRows = await sql(`SELECT source_uri FROM dms_stream.apply_exceptions
      WHERE task_name = ${lit(task)} AND error_code = 'late_cdc_file'`);
    assert.deepEqual(lateRows, [[`s3://${bucket}/changes/CDC00002a.csv`]], 'a late file uploaded while stopped is reported');
  } finally {
    await kp.setFaults({});
  }
});
