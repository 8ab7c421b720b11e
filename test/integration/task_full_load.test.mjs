// Replication tasks: the launcher and task workers (src/launcher.c,
// src/task_worker.c), start_task / stop_task and the status views
// (sql/install/60_tasks.sql), and the full load from S3 CSV files to Kinesis
// (src/s3_source_job.c).
//
// Covered: a worker appears in pg_stat_activity under the task's name when
// the task starts and disappears when it stops, without a server restart;
// start-replication refuses a task that already ran (hint: resume-processing
// or reload-target); a full load of several files of the seed's
// schema01.table01, read back with the AWS CLI and compared record by record
// with the CSV (values as rendered, metadata, partition key, event id);
// TableStatistics in DMS words; bad rows (wrong column count, bad value,
// value too long, invalid UTF-8, unterminated quote) in apply_exceptions with
// file, line and reason while the load goes on; DataErrorPolicy STOP_TASK;
// SIGKILL of a worker and an immediate stop of PostgreSQL in the middle of a
// file: every row arrives, duplicates only for rows re-sent after the last
// checkpoint (same event id, same data); SIGTERM ends a worker at once.
//
// The launcher runs in the bed's postgres database: the extension is created
// there. Names are unique per run; the Kinesis proxy's delay fault (used to
// slow a load down) is scoped to this file's streams and cleared afterwards.
//
// Run: test/check.sh --only task (bed started by check.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  env, psql, psqlTry, aws, proxy, createBucket, createStream, uniqueName, waitFor, sleep, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import {
  lit, sql, one, seedRow, createS3Task, taskStatus, SEED_ETD, SEED_MAPPINGS,
} from '../lib/tasks.mjs';

const kp = proxy('kinesis');

const tasks = [];
const endpoints = [];
const streams = [];
let tmp;

/** Files of rows [from, to) split in `files` pieces: [{name, text, rows: [{line, ...}]}]. */
function seedFiles(from, to, files) {
  const out = [];
  const per = Math.ceil((to - from) / files);
  for (let f = 0; f < files; f++) {
    const rows = [];
    let text = '';
    for (let i = from + f * per, line = 1; i < Math.min(to, from + (f + 1) * per); i++, line++) {
      const r = seedRow(i);
      text += `${r.csv}\n`;
      rows.push({ ...r, line });
    }
    out.push({ name: `full_${String(f).padStart(3, '0')}`, text, rows });
  }
  return out;
}

/** Upload files under schema01/<table>/ of bucket. */
async function upload(bucket, files, table = 'table01') {
  for (const f of files) {
    const file = path.join(tmp, `${bucket}-${table}-${f.name}`);
    fs.writeFileSync(file, typeof f.text === 'string' ? f.text : Buffer.from(f.text));
    await aws(['s3', 'cp', file, `s3://${bucket}/schema01/${table}/${f.name}`], { endpoint: env.S3_PROXY_URL });
  }
}

/** Source and target endpoints, a stream and a task; returns their names. */
async function makeTask({ settings = {}, s3 = {}, kinesisSettings = {} } = {}) {
  const made = await createS3Task({ prefix: 'tfl', etd: SEED_ETD, mappings: SEED_MAPPINGS, settings, s3, kinesisSettings });
  streams.push(made.stream);
  tasks.push(made.task);
  endpoints.push(made.src, made.tgt);
  return made;
}

const status = taskStatus;

/** Wait until the task's status is one of `wanted`; returns status(). */
async function waitStatus(task, wanted, timeoutMs = 120000) {
  return waitFor(async () => {
    const s = await status(task);
    return wanted.includes(s.status) ? s : null;
  }, { timeoutMs, intervalMs: 200, what: `task ${task} ${wanted.join('|')}` });
}

/** The task's worker in pg_stat_activity: {pid, appname, type, query} or null. */
async function worker(task) {
  const rows = await sql(`SELECT pid, application_name, backend_type, query FROM pg_stat_activity
    WHERE backend_type = 'dms_stream task' AND application_name = ${lit(task)}`);
  return rows.length ? { pid: Number(rows[0][0]), appname: rows[0][1], type: rows[0][2], query: rows[0][3] } : null;
}

async function stats(task) {
  const rows = await sql(`SELECT "FullLoadRows", "FullLoadErrorRows", "TableState", "SchemaName", "TableName"
    FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)}`);
  return rows.map(([r, e, s, sc, tn]) => ({ rows: Number(r), errors: Number(e), state: s, schema: sc, table: tn }));
}

/** Every record of the stream with the AWS CLI, straight from kinesalite. */
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

/** Records read with the test bed's own client (faster for big streams). */
async function records(stream) {
  const recs = (await streamRecords(stream)).map((r) => ({ key: r.PartitionKey, text: r.Data.toString('utf8') }));
  assertStreamInvariants(recs, { what: stream });
  return recs;
}

/**
 * Check that the stream holds every row of files (in a bucket) exactly as
 * rendered; returns {duplicates} (records whose event id was seen before).
 */
function compare(recs, files) {
  const expected = new Map();
  for (const f of files) for (const r of f.rows) expected.set(`${f.name}:${r.line}`, r);
  const byEvent = new Map();
  const fileOfHash = new Map();
  let duplicates = 0;
  for (const rec of recs) {
    const msg = JSON.parse(rec.text);
    const id = msg.metadata['event-id'];
    assert.match(id, /^[0-9a-f]{16}:\d+$/, 'event id is hash:line');
    if (byEvent.has(id)) {
      duplicates++;
      const first = byEvent.get(id);
      assert.deepEqual(msg.data, first.data, `duplicate ${id} carries the same data`);
      continue;
    }
    byEvent.set(id, msg);
  }
  // Map each file's hash from one of its rows (ids of one file share the hash).
  for (const [id, msg] of byEvent) {
    const [hash, line] = id.split(':');
    if (fileOfHash.has(hash)) continue;
    const f = files.find((ff) => ff.rows[Number(line) - 1] && ff.rows[Number(line) - 1].data.id === msg.data.id);
    assert.ok(f, `event ${id} belongs to one of the files`);
    fileOfHash.set(hash, f.name);
  }
  const seen = new Set();
  for (const rec of recs) {
    const msg = JSON.parse(rec.text);
    const id = msg.metadata['event-id'];
    if (seen.has(id)) continue;
    seen.add(id);
    const [hash, line] = id.split(':');
    const want = expected.get(`${fileOfHash.get(hash)}:${line}`);
    assert.ok(want, `event ${id} is a row of the files`);
    assert.deepEqual(Object.keys(msg), ['data', 'metadata']);
    assert.equal(msg.data.ingest_time, want.data.ingest_time);
    assert.equal(msg.data.doi, want.data.doi);
    assert.equal(msg.data.id, want.data.id);
    assert.equal(msg.data.data_sig, want.data.data_sig);
    const value = /"value":\s*(-?\d+\.\d+)/.exec(rec.text);
    assert.ok(value, `value rendered as a number in ${rec.text}`);
    assert.equal(value[1], want.data.value, `value of ${id} with two decimals`);
    assert.equal(msg.metadata['record-type'], 'data');
    assert.equal(msg.metadata.operation, 'load');
    assert.equal(msg.metadata['schema-name'], 'schema01');
    assert.equal(msg.metadata['table-name'], 'table01');
    assert.equal(msg.metadata['partition-key-type'], 'primary-key');
    assert.match(msg.metadata.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(rec.key, want.key, 'partition key = primary key value');
  }
  assert.equal(seen.size, expected.size, 'every row of the files is in the stream');
  return { duplicates };
}

/** Stop and start the bed's PostgreSQL: mode immediate (crash) or fast. */
function pgRestart(mode) {
  const pgctl = `${env.PGBIN}/pg_ctl`;
  const asPg = (args) => spawnSync('runuser', ['-u', 'postgres', '--', pgctl, ...args], { encoding: 'utf8' });
  const stop = asPg(['-D', env.DMS_BED_PGDATA, '-m', mode, '-w', 'stop']);
  assert.equal(stop.status, 0, stop.stderr);
  const start = asPg(['-D', env.DMS_BED_PGDATA, '-l', path.join(env.DMS_BED_PGRUN, 'pg.log'), '-w', '-t', '60', 'start']);
  assert.equal(start.status, 0, start.stderr);
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'task-full-load-'));
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  await kp.setFaults({}).catch(() => {});
  for (const t of tasks) {
    await psqlTry(`UPDATE dms_stream.task SET desired_state = 'stopped' WHERE task_name = ${lit(t)};`);
  }
  for (const t of tasks) {
    await waitFor(async () => !(await worker(t)), { timeoutMs: 30000, what: `worker of ${t} gone` }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped' WHERE task_name = ${lit(t)} AND status <> 'stopped';
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const e of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(e)});`);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the launcher runs in the database and names itself', async () => {
  const rows = await sql(`SELECT backend_type, application_name, wait_event_type FROM pg_stat_activity
    WHERE backend_type = 'dms_stream launcher'`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0][1], 'dms_stream launcher');
});

test('full load of several files, read back with the AWS CLI record by record', async () => {
  const { bucket, stream, task } = await makeTask();
  const files = seedFiles(0, 600, 3);
  await upload(bucket, files);
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const s = await waitStatus(task, ['stopped', 'failed']);
  assert.equal(s.status, 'stopped', s.lastError);
  assert.equal(s.stopReason, 'Stop Reason FULL_LOAD_ONLY_FINISHED');
  assert.equal(s.pid, '', 'no worker pid once finished');

  const recs = await cliRecords(stream);
  const { duplicates } = compare(recs, files);
  assert.equal(duplicates, 0, 'no duplicates without a failure');
  assert.equal(recs.length, 600);

  assert.deepEqual(await stats(task), [{ rows: 600, errors: 0, state: 'Table completed', schema: 'schema01', table: 'table01' }]);
  const ts = await sql(`SELECT progress_percent, phase, records_sent_this_run FROM dms_stream.task_status WHERE task = ${lit(task)}`);
  assert.deepEqual(ts[0], ['100.0', 'full load finished', '600']);
  const runs = await sql(`SELECT status, rows_processed FROM dms_stream.run_history WHERE task_name = ${lit(task)}`);
  assert.deepEqual(runs, [['succeeded', '600']]);
  const ck = await sql(`SELECT file_key, table_done FROM dms_stream.task_checkpoint WHERE task_name = ${lit(task)}`);
  assert.deepEqual(ck, [['schema01/table01/full_002', 't']]);

  // start-replication again: refused, with the way out.
  const again = await psqlTry(`SELECT dms_stream.start_task(${lit(task)});`);
  assert.equal(again.ok, false);
  assert.match(again.error, /has already run/);
  assert.match(again.error, /resume-processing/);
  assert.match(again.error, /reload-target/);

  // reload-target: everything again, statistics from zero.
  await sql(`SELECT dms_stream.start_task(${lit(task)}, 'reload-target');`);
  assert.equal((await waitStatus(task, ['stopped', 'failed'])).status, 'stopped');
  const after2 = await records(stream);
  assert.equal(after2.length, 1200);
  const st = await stats(task);
  assert.equal(st[0].rows, 600);
  assert.equal(st[0].state, 'Table completed');
  assert.equal(await one(`SELECT "FullLoadReloaded" FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)}`), 't');
});

test('bad rows go to apply_exceptions with file, line and reason; the load goes on', async () => {
  const { bucket, stream, task } = await makeTask();
  const good = seedFiles(1000, 1010, 1)[0];
  const lines = good.text.split('\n').filter(Boolean);
  // Lines 1..10 good; then bad ones interleaved.
  const text = Buffer.concat([
    Buffer.from(`${lines.slice(0, 3).join('\n')}\n`),
    Buffer.from('2020-08-03 23:00:00,only,three\n'), // line 4: wrong column count
    Buffer.from(`${lines.slice(3, 5).join('\n')}\n`),
    Buffer.from('2020-08-03 23:00:01,10.1000/x,notanumber,1.00,s\n'), // line 7: bad INT8
    Buffer.from(`${lines[5]}\n`),
    Buffer.from('2020-08-03 23:00:02,10.1000/this-doi-is-far-longer-than-thirty-bytes,5,1.00,s\n'), // line 9: too long
    Buffer.from('2020-08-03 23:00:03,10.1000/'), Buffer.from([0xff, 0xfe]), Buffer.from(',6,1.00,s\n'), // line 10: bad UTF-8
    Buffer.from(`${lines.slice(6, 10).join('\n')}\n`),
    Buffer.from('2020-08-03 23:00:04,"unterminated,7,1.00,s\n'), // line 15: unterminated quote to the end
  ]);
  const files = [{ name: 'full_000', text, rows: [] }];
  await upload(bucket, files);
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const s = await waitStatus(task, ['stopped', 'failed']);
  assert.equal(s.status, 'stopped', s.lastError);

  const ex = await sql(`SELECT line_number, coalesce(column_number::text, ''), error_code, error, source_uri, replace(raw_data, E'\\n', '\\n')
    FROM dms_stream.apply_exceptions WHERE task_name = ${lit(task)} ORDER BY line_number`);
  assert.deepEqual(ex.map((r) => r[0]), ['4', '7', '9', '10', '15']);
  for (const r of ex) {
    assert.equal(r[4], `s3://${bucket}/schema01/table01/full_000`);
    assert.ok(r[3].length > 5, `a reason: ${r[3]}`);
  }
  assert.match(ex[0][3], /field/);
  assert.equal(ex[0][5], '2020-08-03 23:00:00,only,three');
  assert.equal(ex[1][1], '3');
  assert.match(ex[1][3], /notanumber|integer|INT8/i);
  assert.equal(ex[2][1], '2');
  assert.equal(ex[2][2], 'truncated');
  assert.equal(ex[3][2], 'invalid_utf8');
  assert.match(ex[3][5], /\\xFF/i);
  assert.equal(ex[4][2], 'unterminated_quote');

  const recs = await records(stream);
  const ids = recs.map((r) => JSON.parse(r.text).data.id).sort((a, b) => a - b);
  assert.deepEqual(ids, Array.from({ length: 10 }, (_, i) => 1000 + i), 'every good row is sent');
  assert.deepEqual(await stats(task), [{ rows: 10, errors: 5, state: 'Table completed', schema: 'schema01', table: 'table01' }]);
});

test('DataErrorPolicy STOP_TASK fails the task naming file and line', async () => {
  const { bucket, task } = await makeTask({ settings: { ErrorBehavior: { DataErrorPolicy: 'STOP_TASK' } } });
  const good = seedFiles(2000, 2005, 1)[0];
  const text = `${good.text}2020-08-03 23:00:00,only,three\n${seedRow(2005).csv}\n`;
  await upload(bucket, [{ name: 'full_000', text, rows: [] }]);
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const s = await waitStatus(task, ['stopped', 'failed']);
  assert.equal(s.status, 'failed');
  assert.equal(s.stopReason, 'Stop Reason FATAL_ERROR');
  assert.match(s.lastError, new RegExp(`s3://${bucket}/schema01/table01/full_000 line 6`));
  const st = await stats(task);
  assert.equal(st[0].state, 'Table error');
  assert.equal(st[0].rows, 5, 'the rows before the bad one were sent');
  assert.equal(await one(`SELECT status FROM dms_stream.run_history WHERE task_name = ${lit(task)}`), 'failed');
});

/** Slow the Kinesis proxy down for one stream. */
async function slow(stream, ms) {
  await kp.setFaults({ delay_ms: ms, match: { stream: `^${stream}$`, target: 'PutRecords' } });
}

test('start and stop without a restart: the worker comes and goes; SIGTERM ends it at once', async () => {
  const settings = { TargetMetadata: { ParallelLoadThreads: 2, ParallelLoadBufferSize: 50 } };
  const { bucket, stream, task } = await makeTask({ settings });
  const files = seedFiles(3000, 7000, 2);
  await upload(bucket, files);
  await slow(stream, 150);
  try {
    assert.equal(await worker(task), null);
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    const w = await waitFor(() => worker(task), { what: 'worker in pg_stat_activity' });
    assert.equal(w.appname, task);
    assert.equal(w.type, 'dms_stream task');
    await waitFor(async () => (await stats(task))[0]?.rows > 0, { what: 'first checkpoint' });
    assert.match((await worker(task)).query, /full load of schema01\.table01/);
    const st = await status(task);
    assert.equal(st.status, 'running');
    assert.equal(st.pid, String(w.pid));

    await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
    await waitFor(async () => !(await worker(task)), { what: 'worker gone after stop_task' });
    const stopped = await waitStatus(task, ['stopped']);
    assert.equal(stopped.stopReason, 'Stop Reason NORMAL');
    const partial = (await stats(task))[0];
    assert.ok(partial.rows > 0 && partial.rows < 4000, `partial load (${partial.rows})`);
    assert.equal(partial.state, 'Full load');

    // A SIGTERM to the worker ends it; the launcher starts it again, and it resumes.
    await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
    const w2 = await waitFor(() => worker(task), { what: 'worker again' });
    process.kill(w2.pid, 'SIGTERM');
    await waitFor(async () => (await worker(task))?.pid !== w2.pid, { what: 'SIGTERM ends the worker' });

    await kp.setFaults({});
    const done = await waitStatus(task, ['stopped', 'failed'], 180000);
    assert.equal(done.status, 'stopped', done.lastError);
    assert.equal(done.stopReason, 'Stop Reason FULL_LOAD_ONLY_FINISHED');
    const { duplicates } = compare(await records(stream), files);
    assert.ok(duplicates <= 1000, `re-sent only the window after the checkpoint (${duplicates})`);
    assert.deepEqual(await stats(task), [{ rows: 4000, errors: 0, state: 'Table completed', schema: 'schema01', table: 'table01' }]);
  } finally {
    await kp.setFaults({});
  }
});

test('a restarted launcher adopts the running worker and can stop it', async () => {
  const { bucket, stream, task } = await makeTask();
  await upload(bucket, seedFiles(30000, 36000, 1));
  await slow(stream, 200);
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    const w = await waitFor(() => worker(task), { what: 'worker' });
    const launcher = Number(await one(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream launcher'`));
    process.kill(launcher, 'SIGTERM');
    const launcher2 = await waitFor(async () => {
      const p = Number(await one(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream launcher'`));
      return p && p !== launcher ? p : null;
    }, { timeoutMs: 60000, what: 'launcher restarted' });
    assert.ok(launcher2);
    await sleep(1500); // a few passes of the new launcher
    const workers = await sql(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream task' AND application_name = ${lit(task)}`);
    assert.deepEqual(workers.map((r) => Number(r[0])), [w.pid], 'the same single worker');
    await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
    await waitFor(async () => !(await worker(task)), { what: 'adopted worker stopped' });
    assert.equal((await waitStatus(task, ['stopped'])).stopReason, 'Stop Reason NORMAL');
  } finally {
    await kp.setFaults({});
  }
});

test('SIGKILL of the worker mid-file: resumed from the checkpoint, every row delivered', async () => {
  const settings = { TargetMetadata: { ParallelLoadThreads: 2, ParallelLoadBufferSize: 50 } };
  const { bucket, stream, task } = await makeTask({ settings });
  const files = seedFiles(10000, 16000, 2);
  await upload(bucket, files);
  await slow(stream, 100);
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    const w = await waitFor(() => worker(task), { what: 'worker' });
    await waitFor(async () => (await stats(task))[0]?.rows > 500, { what: 'some rows committed' });
    const committed = (await stats(task))[0].rows;
    assert.ok(committed < 6000, 'killed in the middle of the load');
    process.kill(w.pid, 'SIGKILL');
    // The postmaster restarts every process; the launcher starts the task again.
    await waitFor(async () => {
      const w2 = await worker(task).catch(() => null);
      return w2 && w2.pid !== w.pid;
    }, { timeoutMs: 60000, what: 'worker restarted after SIGKILL' });
    await kp.setFaults({});
    const done = await waitStatus(task, ['stopped', 'failed'], 180000);
    assert.equal(done.status, 'stopped', done.lastError);
    const runs = await sql(`SELECT status, coalesce(message, '') FROM dms_stream.run_history WHERE task_name = ${lit(task)} ORDER BY run_id`);
    assert.deepEqual(runs[0], ['failed', "the task's worker was killed or crashed"]);
    assert.deepEqual(runs[runs.length - 1], ['succeeded', '']);
    const { duplicates } = compare(await records(stream), files);
    console.log(`SIGKILL: ${committed} rows committed before the kill, ${duplicates} re-sent`);
    assert.ok(duplicates <= 1000, `duplicates only in the unacknowledged window (${duplicates}, ${committed} committed before the kill)`);
    assert.deepEqual(await stats(task), [{ rows: 6000, errors: 0, state: 'Table completed', schema: 'schema01', table: 'table01' }]);
  } finally {
    await kp.setFaults({});
  }
});

test('immediate stop of PostgreSQL mid-file: the task resumes after the restart', async () => {
  const settings = { TargetMetadata: { ParallelLoadThreads: 1, ParallelLoadBufferSize: 100 } };
  const { bucket, stream, task } = await makeTask({ settings });
  const files = seedFiles(20000, 26000, 3);
  await upload(bucket, files);
  await slow(stream, 100);
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    await waitFor(() => worker(task), { what: 'worker' });
    await waitFor(async () => (await stats(task))[0]?.rows > 500, { what: 'some rows committed' });
    pgRestart('immediate');
    await waitFor(() => worker(task), { timeoutMs: 60000, what: 'worker after the restart' });
    await kp.setFaults({});
    const done = await waitStatus(task, ['stopped', 'failed'], 180000);
    assert.equal(done.status, 'stopped', done.lastError);
    const runs = await sql(`SELECT status, coalesce(message, '') FROM dms_stream.run_history WHERE task_name = ${lit(task)} ORDER BY run_id`);
    assert.deepEqual(runs[0], ['stopped', 'server restarted']);
    const { duplicates } = compare(await records(stream), files);
    console.log(`immediate stop: ${duplicates} re-sent`);
    assert.ok(duplicates <= 1000, `duplicates only in the unacknowledged window (${duplicates})`);
    assert.deepEqual(await stats(task), [{ rows: 6000, errors: 0, state: 'Table completed', schema: 'schema01', table: 'table01' }]);
  } finally {
    await kp.setFaults({});
  }
});

test('MaxFullLoadSubTasks: two tables are loaded at once', async () => {
  const etd = {
    TableCount: '2',
    Tables: [SEED_ETD.Tables[0], { ...SEED_ETD.Tables[0], TableName: 'table02', TablePath: 'schema01/table02/' }],
  };
  const { bucket, stream, task } = await makeTask({
    s3: { ExternalTableDefinition: JSON.stringify(etd) },
    settings: { FullLoadSettings: { MaxFullLoadSubTasks: 2 } },
  });
  await upload(bucket, seedFiles(40000, 40600, 2), 'table01');
  await upload(bucket, seedFiles(50000, 50600, 2), 'table02');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const s = await waitStatus(task, ['stopped', 'failed']);
  assert.equal(s.status, 'stopped', s.lastError);
  const msgs = (await records(stream)).map((r) => JSON.parse(r.text));
  const of = (t) => msgs.filter((m) => m.metadata['table-name'] === t).map((m) => m.data.id);
  assert.deepEqual(of('table01').sort((a, b) => a - b), Array.from({ length: 600 }, (_, i) => 40000 + i));
  assert.deepEqual(of('table02').sort((a, b) => a - b), Array.from({ length: 600 }, (_, i) => 50000 + i));
  const first02 = msgs.findIndex((m) => m.metadata['table-name'] === 'table02');
  const last01 = msgs.map((m) => m.metadata['table-name']).lastIndexOf('table01');
  assert.ok(first02 < last01, `the tables' records interleave (${first02} < ${last01})`);
  const st = (await stats(task)).sort((a, b) => a.table.localeCompare(b.table));
  assert.deepEqual(st, [
    { rows: 600, errors: 0, state: 'Table completed', schema: 'schema01', table: 'table01' },
    { rows: 600, errors: 0, state: 'Table completed', schema: 'schema01', table: 'table02' },
  ]);
});

test('a source that cannot be read fails the task with the reason', async () => {
  const { task } = await makeTask({ s3: { BucketName: uniqueName('missing') } });
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const s = await waitStatus(task, ['stopped', 'failed']);
  assert.equal(s.status, 'failed');
  assert.match(s.lastError, /NoSuchBucket|does not exist|404/);
  assert.equal(await worker(task), null);
  assert.equal(await one(`SELECT status FROM dms_stream.run_history WHERE task_name = ${lit(task)}`), 'failed');
});

test('start_task and stop_task are for dms_stream_admin only', async () => {
  const admin = uniqueName('adm').replace(/-/g, '_');
  const reader = uniqueName('rdr').replace(/-/g, '_');
  await sql(`CREATE ROLE ${admin} IN ROLE dms_stream_admin; CREATE ROLE ${reader};`);
  try {
    for (const f of ["start_task('no-such-task')", "stop_task('no-such-task')"]) {
      let r = await psqlTry(`SET ROLE ${reader}; SELECT dms_stream.${f};`);
      assert.equal(r.ok, false);
      assert.match(r.error, /permission denied/);
      r = await psqlTry(`SET ROLE ${admin}; SELECT dms_stream.${f};`);
      assert.equal(r.ok, false);
      assert.match(r.error, /does not exist/, 'the admin gets past the privilege check');
    }
    const r = await psqlTry(`SET ROLE ${admin}; SELECT dms_stream.wake_launcher_at_commit();`);
    assert.match(r.error, /permission denied/, 'the internal wake-up is not callable');
  } finally {
    await sql(`DROP ROLE ${admin}; DROP ROLE ${reader};`);
  }
});

test('stop_task and start_task check their arguments; the views are in DMS words', async () => {
  const { task } = await makeTask();
  let r = await psqlTry(`SELECT dms_stream.stop_task(${lit(task)});`);
  assert.equal(r.ok, false);
  assert.match(r.error, /is not running/);
  r = await psqlTry(`SELECT dms_stream.start_task(${lit(task)}, 'bogus');`);
  assert.equal(r.ok, false);
  assert.match(r.error, /unknown start type/);
  r = await psqlTry(`SELECT dms_stream.start_task('no-such-task');`);
  assert.equal(r.ok, false);
  assert.match(r.error, /does not exist/);
  const cols = await sql(`SELECT attname FROM pg_attribute WHERE attrelid = 'dms_stream.table_statistics_view'::regclass AND attnum > 0 ORDER BY attnum`);
  assert.deepEqual(cols.map((c) => c[0]).slice(1, 3), ['SchemaName', 'TableName']);
  assert.ok(cols.some((c) => c[0] === 'FullLoadRows'));
  assert.ok(cols.some((c) => c[0] === 'TableState'));
});
