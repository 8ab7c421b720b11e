// Per-partition-key order of task streams under partial PutRecords failures
// (issue 11): the verifying proxy in front of kinesalite fails 30 % of the
// entries of every PutRecords (ProvisionedThroughputExceeded or
// InternalFailure), throttles and fails whole requests and resets
// connections (some after kinesalite stored the request, so that records are
// stored twice); the streams are read back from kinesalite directly and
// checked with test/lib/stream_invariants.mjs: every change present, and for
// each partition key the changes in the order they were made (a record sent
// again may repeat, under its own event id), by event id and by a value
// each change writes (the change's number).
//
// Covered, with dms_stream.strict_key_order on (the default):
//   * a postgres-source cdc task, primary-key partition keys
//     (ParallelApplyThreads), shipping process: 20,000 upserts on 2,500 keys
//     in transactions of 1-20 changes;
//   * a postgres-source cdc task, schema.table keys (DMS's CDC default, ten
//     tables: ten keys), the task worker shipping itself
//     (dms_stream.shipping_process off): 2,000 changes;
//   * an S3-source full-load-and-cdc task with primary-key keys: a full load
//     of 1,000 rows, then a CDC file of 5,000 updates of those rows;
//   * an S3-source full load with a constant partition key (object-mapping):
//     300 rows, every record of one key.
// And with strict_key_order off the same constant-key full load comes out of
// order (the checker sees what the setting prevents).
//
// Faults are scoped with `match` to each stream and cleared in a finally;
// settings changed with ALTER SYSTEM are reset in `after`.
//
// Run: test/check.sh --only key_order

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  env, psqlTry, aws, proxy, createStream, kinesis, uniqueName, waitFor, streamRecords,
} from '../lib/bed.mjs';
import { lit, sql, one, seedRow, createS3Task, taskStatus, SEED_ETD } from '../lib/tasks.mjs';
import { checkStream, assertStreamInvariants } from '../lib/stream_invariants.mjs';

const kp = proxy('kinesis');
const exactly = (name) => `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
const tasks = [];
const streams = [];
let tmp;

/** The faults of this file, on the PutRecords of one stream. */
const FAULTS = (stream, extra = {}) => ({
  match: { target: 'PutRecords$', stream: exactly(stream) },
  put_records_fail_rate: 0.3, throttle_rate: 0.05, http_fail_rate: 0.03, fail_status: 503, reset_rate: 0.05,
  ...extra,
});

/** Faults seen on the stream's PutRecords, by kind. */
async function faultCounts(stream) {
  return (await kp.requests({ stream: exactly(stream), op: '^PutRecords$' }))
    .flatMap((r) => r.faults).reduce((m, f) => ({ ...m, [f]: (m[f] ?? 0) + 1 }), {});
}

async function worker(task) {
  const rows = await sql(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream task' AND application_name = ${lit(task)}`);
  return rows.length ? Number(rows[0][0]) : null;
}

/** Stop a task and wait for its worker to end (dms_stream.max_task_workers is small). */
async function stopTask(task) {
  await psqlTry(`SELECT dms_stream.stop_task(${lit(task)})`);
  await waitFor(async () => !(await worker(task)), { timeoutMs: 30000, what: 'worker gone' }).catch(() => {});
}

/** Read the stream until `enough(records)`; the records, parsed. */
async function readUntil(stream, enough, what, timeoutMs = 240000) {
  let recs = [];
  await waitFor(async () => {
    recs = (await streamRecords(stream)).map((r) => ({ key: r.PartitionKey, msg: JSON.parse(r.Data.toString('utf8')) }));
    return enough(recs);
  }, { timeoutMs, intervalMs: 2000, what: `${what} (${recs.length} records so far)` });
  return recs;
}

/** Distinct values of data[field] among the records. */
const distinct = (recs, field) => new Set(recs.map((r) => r.msg.data && r.msg.data[field])).size;

/** Check a stream twice: by event id, and by the change number each record carries in data[field]. */
function checkOrder(t, recs, field, n, what) {
  const byEvent = assertStreamInvariants(recs, { what: `${what}, by event id` });
  const byValue = assertStreamInvariants(recs, {
    what: `${what}, by change number`,
    idOf: (r) => r.msg.data[field],
    expected: Array.from({ length: n }, (_, i) => i),
  });
  t.diagnostic(`${what}: ${byValue.records} records, ${byValue.distinct} changes on ${byValue.keys} keys, `
    + `${byValue.duplicates} stored again`);
  assert.equal(byEvent.outOfOrder.length, 0);
  return byValue;
}

// ------------------------------------------------------------------ postgres source

/** A schema with tables k0..k(n-1) (id primary key, v the change number) and a procedure making changes. */
async function pgSchema(ntables) {
  const schema = uniqueName('kord').replace(/-/g, '_');
  let ddl = `CREATE SCHEMA ${schema};`;
  for (let i = 0; i < ntables; i++) ddl += `CREATE TABLE ${schema}.k${i} (id int PRIMARY KEY, v int NOT NULL, pad text);`;
  // n changes: change c upserts key (c * 7919) % keys of table c % ntables with v = c,
  // committing after 1..20 changes
  ddl += `CREATE PROCEDURE ${schema}.work(n int, keys int) LANGUAGE plpgsql AS $p$
    DECLARE in_tx int := 0;
    BEGIN
      FOR c IN 0..n - 1 LOOP
        EXECUTE format('INSERT INTO ${schema}.%I VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v',
                       'k' || (c % ${ntables}))
          USING (c::bigint * 7919) % keys, c, repeat('x', c % 50);
        in_tx := in_tx + 1;
        IF in_tx >= 1 + (c % 20) THEN COMMIT; in_tx := 0; END IF;
      END LOOP;
      COMMIT;
    END $p$;`;
  await sql(ddl);
  return schema;
}

async function pgTask(schema, settings) {
  const stream = uniqueName('kord');
  const task = uniqueName('kordtask');
  await createStream(stream, 2);
  streams.push(stream);
  const mappings = { rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': { 'schema-name': schema, 'table-name': '%' }, 'rule-action': 'include' }] };
  await sql(`SELECT dms_stream.create_endpoint(${lit(`${task}-src`)}, 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint(${lit(`${task}-tgt`)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream, IncludeTransactionDetails: true }))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(`${task}-tgt`)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(`${task}-src`)}, ${lit(`${task}-tgt`)}, 'cdc', ${lit(JSON.stringify(mappings))}, ${lit(JSON.stringify(settings))});`);
  tasks.push(task);
  return { stream, task };
}

async function startStreaming(task) {
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitFor(async () => {
    const st = await taskStatus(task);
    if (st.status === 'failed') throw new Error(`task failed: ${st.lastError}`);
    return st.phase.startsWith('cdc:');
  }, { timeoutMs: 60000, what: `task ${task} streaming` });
}

/** Run a postgres-source cdc task through the faults; the records read back. */
async function runPg(t, { ntables, keys, n, settings, extraFaults }) {
  const schema = await pgSchema(ntables);
  const { stream, task } = await pgTask(schema, settings);
  let recs;
  try {
    await kp.setFaults(FAULTS(stream, extraFaults));
    await startStreaming(task);
    await sql(`CALL ${schema}.work(${n}, ${keys});`);
    recs = await readUntil(stream, (rs) => distinct(rs, 'v') >= n, `all ${n} changes in ${stream}`);
  } finally {
    await kp.setFaults({});
  }
  t.diagnostic(`proxy faults: ${JSON.stringify(await faultCounts(stream))}`);
  const st = await taskStatus(task);
  await stopTask(task);
  assert.equal(st.status, 'running', st.lastError);
  return recs;
}

test('postgres cdc, primary-key keys, shipping process: 20,000 changes on 2,500 keys in key order', async (t) => {
  const n = 20000;
  const recs = await runPg(t, {
    ntables: 1, keys: 2500, n, extraFaults: { reset_after_forward: true },
    settings: { TargetMetadata: { ParallelApplyThreads: 4 } },
  });
  assert.equal(recs[0].msg.metadata['partition-key-type'], 'primary-key');
  const r = checkOrder(t, recs, 'v', n, 'pg cdc, primary key');
  assert.equal(r.keys, 2500);
});

test('postgres cdc, schema.table keys (ten tables), worker shipping itself: 2,000 changes in key order', async (t) => {
  await sql('ALTER SYSTEM SET dms_stream.shipping_process = off; SELECT pg_reload_conf();');
  let recs;
  try {
    recs = await runPg(t, { ntables: 10, keys: 200, n: 2000, settings: {} });
  } finally {
    await sql('ALTER SYSTEM RESET dms_stream.shipping_process; SELECT pg_reload_conf();');
  }
  assert.equal(recs[0].msg.metadata['partition-key-type'], 'schema-table');
  const r = checkOrder(t, recs, 'v', 2000, 'pg cdc, schema.table');
  assert.equal(r.keys, 10);
});

// ------------------------------------------------------------------ S3 source

async function put(bucket, key, text) {
  const file = path.join(tmp, `${bucket}-${key.replace(/\//g, '_')}`);
  fs.writeFileSync(file, text);
  await aws(['s3', 'cp', file, `s3://${bucket}/${key}`], { endpoint: env.S3_PROXY_URL });
}

const csvTime = (k) => seedRow(k).csv.split(',')[0];
/** A load row of key k whose id (the change number) is c. */
const loadRow = (k, c) => `${csvTime(k)},10.1000/${c},${c},1.00,s${k}`;

async function s3Task({ migrationType, mappings, settings = {} }) {
  const made = await createS3Task({
    prefix: 'kord', migrationType, etd: SEED_ETD, settings, s3: { CdcPath: 'changes' },
    mappings: { rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'all', 'object-locator': { 'schema-name': 'schema01', 'table-name': '%' }, 'rule-action': 'include' }, ...mappings] },
  });
  tasks.push(made.task);
  streams.push(made.stream);
  return made;
}

const CONSTANT_KEY = [{
  'rule-type': 'object-mapping', 'rule-id': '2', 'rule-name': 'constant', 'rule-action': 'map-record-to-record',
  'object-locator': { 'schema-name': 'schema01', 'table-name': 'table01' },
  'mapping-parameters': { 'partition-key-type': 'constant', 'partition-key': { value: 'the-one-key' } },
}];

/** A full load of n rows with a constant key through the faults; the records read back. */
async function constantKeyLoad(t, n) {
  const made = await s3Task({ migrationType: 'full-load', mappings: CONSTANT_KEY, settings: { TargetMetadata: { ParallelLoadThreads: 4 } } });
  let text = '';
  for (let c = 0; c < n; c++) text += `${loadRow(c, c)}\n`;
  await put(made.bucket, 'schema01/table01/LOAD00000001.csv', text);
  let recs;
  try {
    await kp.setFaults(FAULTS(made.stream));
    await sql(`SELECT dms_stream.start_task(${lit(made.task)});`);
    const st = await waitFor(async () => {
      const s = await taskStatus(made.task);
      return ['stopped', 'failed'].includes(s.status) ? s : null;
    }, { timeoutMs: 240000, intervalMs: 1000, what: 'full load finished' });
    assert.equal(st.status, 'stopped', st.lastError);
    recs = await readUntil(made.stream, (rs) => distinct(rs, 'id') >= n, `all ${n} rows`);
  } finally {
    await kp.setFaults({});
  }
  t.diagnostic(`proxy faults: ${JSON.stringify(await faultCounts(made.stream))}`);
  for (const r of recs) assert.equal(r.key, 'the-one-key');
  return recs;
}

test('S3 full-load-and-cdc, primary-key keys: 1,000 rows loaded, then 5,000 updates of them, in key order', async (t) => {
  const keys = 1000;
  const updates = 5000;
  const made = await s3Task({
    migrationType: 'full-load-and-cdc', mappings: [],
    settings: { TargetMetadata: { ParallelApplyThreads: 4, ParallelLoadThreads: 4, ParallelLoadBufferSize: 500 } },
  });
  let load = '';
  for (let k = 0; k < keys; k++) load += `${loadRow(k, k)}\n`;
  let cdc = '';
  for (let u = 0; u < updates; u++) {
    const c = keys + u;
    cdc += `U,table01,schema01,${loadRow((u * 7919) % keys, c)}\n`;
  }
  await put(made.bucket, 'schema01/table01/LOAD00000001.csv', load);
  await put(made.bucket, 'changes/CDC00000001.csv', cdc);
  let recs;
  try {
    await kp.setFaults(FAULTS(made.stream, { reset_after_forward: true }));
    await sql(`SELECT dms_stream.start_task(${lit(made.task)});`);
    recs = await readUntil(made.stream, (rs) => distinct(rs, 'id') >= keys + updates, `all ${keys + updates} changes`);
  } finally {
    await kp.setFaults({});
  }
  t.diagnostic(`proxy faults: ${JSON.stringify(await faultCounts(made.stream))}`);
  const st = await taskStatus(made.task);
  await stopTask(made.task);
  assert.equal(st.status, 'running', st.lastError);
  assert.deepEqual([...new Set(recs.map((r) => r.msg.metadata['partition-key-type']))], ['primary-key']);
  const r = checkOrder(t, recs, 'id', keys + updates, 's3 load + cdc, primary key');
  assert.equal(r.keys, keys);
});

test('S3 full load, constant partition key: 300 rows, one key, in order', async (t) => {
  const recs = await constantKeyLoad(t, 300);
  const r = checkOrder(t, recs, 'id', 300, 's3 load, constant key');
  assert.equal(r.keys, 1);
});

test('with dms_stream.strict_key_order off the same load is stored out of order (what the setting keeps)', async (t) => {
  await sql('ALTER SYSTEM SET dms_stream.strict_key_order = off; SELECT pg_reload_conf();');
  let recs;
  try {
    recs = await constantKeyLoad(t, 300);
  } finally {
    await sql('ALTER SYSTEM RESET dms_stream.strict_key_order; SELECT pg_reload_conf();');
  }
  const r = checkStream(recs, { idOf: (x) => x.msg.data.id, expected: Array.from({ length: 300 }, (_, i) => i) });
  t.diagnostic(`strict_key_order off: ${r.outOfOrder.length} of ${r.distinct} rows stored before an earlier one`);
  assert.deepEqual(r.missing, [], 'nothing lost either way');
  assert.ok(r.outOfOrder.length > 0, 'several records of the key per request, 30 % rejected: later ones overtake');
});

// ------------------------------------------------------------------ set-up

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kord-'));
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
  assert.equal(await one('SHOW dms_stream.strict_key_order'), 'on', 'the default');
});

after(async () => {
  await kp.setFaults({}).catch(() => {});
  await psqlTry('ALTER SYSTEM RESET dms_stream.strict_key_order; ALTER SYSTEM RESET dms_stream.shipping_process; SELECT pg_reload_conf();');
  for (const t of tasks) await psqlTry(`SELECT dms_stream.stop_task(${lit(t)})`);
  for (const t of tasks) {
    await waitFor(async () => !(await worker(t)), { timeoutMs: 20000, what: 'worker gone' }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped', desired_state = 'stopped' WHERE task_name = ${lit(t)};
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const st of streams) await kinesis('DeleteStream', { StreamName: st }).catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});
