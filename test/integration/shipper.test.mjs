// The shipping process of a task (src/kinesis_shipper.c): the task worker
// produces records into a shared-memory queue and a second background worker
// ships them to Kinesis and publishes how far they are acknowledged.
//
// Covered: a running task shows its shipping process in pg_stat_activity
// (backend_type 'dms_stream shipper', application_name the task) next to its
// worker, and both are gone when the task ends; every row arrives in order
// (each row is its own partition key). The shipping process terminated in the middle of a
// load: the task fails with an error that says so, resume-processing
// delivers every row, re-sent rows only after the last checkpoint and with
// the same event id. An error raised in the shipping process (Kinesis refuses
// a request with a non-retryable error) is the task's last_error, with the stream's name.
// dms_stream.shipping_process = off: the worker ships the records itself
// (no shipping process is ever seen) with the same result.
//
// Run: test/check.sh --only shipper (bed started by check.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  env, psqlTry, aws, proxy, waitFor, streamRecords, sleep,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import {
  lit, sql, seedRow, createS3Task, taskStatus, SEED_ETD, SEED_MAPPINGS,
} from '../lib/tasks.mjs';

const kp = proxy('kinesis');

const tasks = [];
const endpoints = [];
let tmp;

async function makeTask(settings = { TargetMetadata: { ParallelLoadThreads: 2, ParallelLoadBufferSize: 25 } }) {
  const made = await createS3Task({ prefix: 'shp', etd: SEED_ETD, mappings: SEED_MAPPINGS, settings });
  tasks.push(made.task);
  endpoints.push(made.src, made.tgt);
  return made;
}

/** Upload rows [from, to) as one full-load file. */
async function upload(bucket, from, to, name = 'LOAD001.csv') {
  const file = path.join(tmp, `${bucket}-${name}`);
  let text = '';
  for (let i = from; i < to; i++) text += `${seedRow(i).csv}\n`;
  fs.writeFileSync(file, text);
  await aws(['s3', 'cp', '--only-show-errors', file, `s3://${bucket}/schema01/table01/${name}`], { endpoint: env.S3_PROXY_URL });
}

/** The dms_stream processes of a task now: [{pid, type}]. */
async function processes(task) {
  const r = await sql(`SELECT pid, backend_type FROM pg_stat_activity
    WHERE application_name = ${lit(task)} AND backend_type LIKE 'dms_stream %' ORDER BY backend_type`);
  return r.map(([pid, type]) => ({ pid: Number(pid), type }));
}

async function waitStatus(task, wanted, timeoutMs = 180000) {
  return waitFor(async () => {
    const s = await taskStatus(task);
    return wanted.includes(s.status) ? s : null;
  }, { timeoutMs, intervalMs: 200, what: `task ${task} ${wanted.join('|')}` });
}

async function fullLoadRows(task) {
  const r = await sql(`SELECT "FullLoadRows" FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)}`);
  return r.length ? Number(r[0][0]) : 0;
}

/**
 * Check the stream against rows [from, to): every id present, each id's
 * copies with one event id; returns the number of re-sent copies.
 */
async function checkStream(stream, from, to) {
  const byId = new Map();
  const recs = await streamRecords(stream);
  assertStreamInvariants(recs, { what: stream });
  for (const rec of recs) {
    const m = JSON.parse(rec.Data.toString('utf8'));
    assert.equal(m.metadata.operation, 'load');
    const id = Number(m.data.id);
    if (!byId.has(id)) byId.set(id, []);
    byId.get(id).push(m.metadata['event-id']);
    const want = seedRow(id).data;
    assert.deepEqual(m.data, { ...want, value: Number(want.value) }, `row ${id} as rendered`);
  }
  for (let i = from; i < to; i++) assert.ok(byId.has(i), `row ${i} delivered`);
  assert.equal(byId.size, to - from, 'no row that was not in the file');
  let resent = 0;
  for (const [id, evs] of byId) {
    assert.equal(new Set(evs).size, 1, `row ${id}: copies carry one event id`);
    resent += evs.length - 1;
  }
  return resent;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shipper-'));
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  await kp.setFaults({}).catch(() => {});
  await psqlTry('ALTER SYSTEM RESET dms_stream.shipping_process; SELECT pg_reload_conf();');
  for (const t of tasks) await psqlTry(`UPDATE dms_stream.task SET desired_state = 'stopped' WHERE task_name = ${lit(t)};`);
  for (const t of tasks) {
    await waitFor(async () => (await processes(t)).length === 0, { timeoutMs: 30000, what: `processes of ${t} gone` }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped' WHERE task_name = ${lit(t)} AND status <> 'stopped';
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const e of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(e)});`);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('a running task has a shipping process next to its worker; both end with the task; every row arrives', async () => {
  const { bucket, stream, task } = await makeTask();
  await upload(bucket, 0, 1500);
  await kp.setFaults({ delay_ms: 100, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    const procs = await waitFor(async () => {
      const p = await processes(task);
      return p.length === 2 ? p : null;
    }, { what: 'worker and shipping process' });
    assert.deepEqual(procs.map((p) => p.type), ['dms_stream shipper', 'dms_stream task']);
    const query = await sql(`SELECT query FROM pg_stat_activity WHERE pid = ${procs[0].pid}`);
    assert.match(query[0][0], new RegExp(`shipping records to Kinesis stream ${stream}`));
    await kp.setFaults({});
    const done = await waitStatus(task, ['stopped', 'failed']);
    assert.equal(done.status, 'stopped', done.lastError);
    await waitFor(async () => (await processes(task)).length === 0, { what: 'both processes gone' });
    assert.equal(await checkStream(stream, 0, 1500), 0, 'nothing re-sent without a failure');
    assert.equal(await fullLoadRows(task), 1500);
  } finally {
    await kp.setFaults({});
  }
});

test('the shipping process terminated mid-load: the task fails saying so; resume-processing delivers every row', async () => {
  const { bucket, stream, task } = await makeTask();
  await upload(bucket, 2000, 5000);
  await kp.setFaults({ delay_ms: 150, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    await waitFor(async () => (await fullLoadRows(task)) > 0, { what: 'a first checkpoint' });
    const shipper = (await processes(task)).find((p) => p.type === 'dms_stream shipper');
    assert.ok(shipper, 'a shipping process');
    await sql(`SELECT pg_terminate_backend(${shipper.pid});`);
    const failed = await waitStatus(task, ['failed', 'stopped']);
    assert.equal(failed.status, 'failed');
    assert.match(failed.lastError, new RegExp(`shipping process of task "${task}" exited`));
    await waitFor(async () => (await processes(task)).length === 0, { what: 'worker gone' });
    const committed = await fullLoadRows(task);
    assert.ok(committed > 0 && committed < 3000, `partial load committed (${committed})`);

    await kp.setFaults({});
    await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
    const done = await waitStatus(task, ['stopped', 'failed']);
    assert.equal(done.status, 'stopped', done.lastError);
    const resent = await checkStream(stream, 2000, 5000);
    assert.ok(resent <= 3000 - committed, `re-sent only rows after the checkpoint (${resent}, ${committed} committed)`);
    assert.equal(await fullLoadRows(task), 3000);
  } finally {
    await kp.setFaults({});
  }
});

test('an error in the shipping process is the task\'s error', async () => {
  const { bucket, stream, task } = await makeTask();
  await upload(bucket, 6000, 8000);
  await kp.setFaults({ delay_ms: 150, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    await waitFor(async () => (await fullLoadRows(task)) > 0, { what: 'a first checkpoint' });
    // Kinesis refuses the next requests with an error that is not retried.
    await kp.setFaults({ http_fail_rate: 1.0, fail_status: 403, match: { stream: `^${stream}$`, target: 'PutRecords' } });
    const failed = await waitStatus(task, ['failed', 'stopped']);
    assert.equal(failed.status, 'failed');
    assert.match(failed.lastError, /ValidationException|Injected failure/);
    assert.match(failed.lastError, new RegExp(stream));
    await waitFor(async () => (await processes(task)).length === 0, { what: 'both processes gone' });
  } finally {
    await kp.setFaults({});
  }
});

test('dms_stream.shipping_process = off: the worker ships its records itself, with the same result', async () => {
  await sql('ALTER SYSTEM SET dms_stream.shipping_process = off; SELECT pg_reload_conf();');
  await sleep(500);
  try {
    const { bucket, stream, task } = await makeTask();
    await upload(bucket, 9000, 10000);
    await kp.setFaults({ delay_ms: 100, match: { stream: `^${stream}$`, target: 'PutRecords' } });
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    const types = new Set();
    await waitFor(async () => {
      for (const p of await processes(task)) types.add(p.type);
      return (await fullLoadRows(task)) >= 200;
    }, { intervalMs: 50, what: 'a few checkpoints' });
    await kp.setFaults({});
    const done = await waitStatus(task, ['stopped', 'failed']);
    assert.equal(done.status, 'stopped', done.lastError);
    assert.deepEqual([...types], ['dms_stream task'], 'no shipping process');
    assert.equal(await checkStream(stream, 9000, 10000), 0);
  } finally {
    await kp.setFaults({});
    await sql('ALTER SYSTEM RESET dms_stream.shipping_process; SELECT pg_reload_conf();');
  }
});
