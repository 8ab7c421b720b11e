// postgres source parity with DMS's PostgreSQL source (issue 12 point 7,
// src/decoding_plugin.c, src/pg_source_job.c, sql/install/62_pg_source.sql):
// stored generated columns in the full load and the changes; a selection
// rule naming a partitioned table replicates its partitions' rows and
// changes under its name (PublishViaPartitionRoot, default true; false:
// partitions under their own names); a column rename is a rename-column
// control record and DROP TABLE a drop-table record with
// IncludeTableAlterOperations; tables without a primary key or replica
// identity: inserts only (DMS ignores their updates and deletes), one
// WARNING per table.
//
// Every test works on its own schema and reads the stream back from
// kinesalite.
//
// Run: test/check.sh --only pg_parity

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { assertStreamInvariants, compareEventIds } from '../lib/stream_invariants.mjs';
import {
  env, psql, psqlTry, createStream, kinesis, uniqueName, waitFor, streamRecords,
} from '../lib/bed.mjs';

const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const sql = (q) => psql(PRE + q);
async function one(q) {
  const rows = await sql(q);
  return rows.length ? rows[rows.length - 1][0] : undefined;
}

const tasks = [];
const streams = [];

async function makeSchema() {
  const schema = uniqueName('pgp').replace(/-/g, '_');
  await sql(`CREATE SCHEMA ${schema};`);
  return schema;
}

async function makeTask(schema, migrationType, { kinesisSettings = {}, sourceSettings = {}, table = '%' } = {}) {
  const stream = uniqueName('pgp');
  const task = uniqueName('pgptask');
  const src = `${task}-src`;
  const tgt = `${task}-tgt`;
  await createStream(stream, 1);
  streams.push(stream);
  const ks = { StreamName: stream, IncludeTransactionDetails: true, IncludeNullAndEmpty: true, ...kinesisSettings };
  const mappings = {
    rules: [{
      'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one',
      'object-locator': { 'schema-name': schema, 'table-name': table }, 'rule-action': 'include',
    }],
  };
  await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 'postgres', 'source', ${lit(JSON.stringify(sourceSettings))});
    SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify(ks))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, ${lit(migrationType)}, ${lit(JSON.stringify(mappings))}, '{}');`);
  tasks.push(task);
  return { stream, task };
}

async function status(task) {
  const rows = await sql(`SELECT status, coalesce(last_error, ''), coalesce(phase, '')
    FROM dms_stream.task_status WHERE task = ${lit(task)}`);
  const [st, lastError, phase] = rows[0];
  return { status: st, lastError, phase };
}

async function worker(task) {
  const rows = await sql(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream task' AND application_name = ${lit(task)}`);
  return rows.length ? Number(rows[0][0]) : null;
}

async function waitStreaming(task, timeoutMs = 60000) {
  return waitFor(async () => {
    const st = await status(task);
    if (st.status === 'failed') throw new Error(`task failed: ${st.lastError}`);
    return st.phase.startsWith('cdc:') ? st : null;
  }, { timeoutMs, what: `task ${task} streaming` });
}

async function stopTask(task) {
  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitFor(async () => !(await worker(task)), { timeoutMs: 30000, what: 'worker gone' });
}

/**
 * The records read back: the load first, then the changes in the order they
 * were made (by event id). With strict per-key order, records of different
 * partition keys (a table's data and its control records) are not stored in
 * decode order; per key they are, which assertStreamInvariants checks.
 */
async function messages(stream) {
  const records = await streamRecords(stream);
  assertStreamInvariants(records, { what: stream });
  const msgs = records.map((r) => JSON.parse(r.Data.toString('utf8')));
  const load = msgs.filter((m) => m.metadata.operation === 'load');
  const changes = msgs.filter((m) => m.metadata.operation !== 'load')
    .sort((a, b) => compareEventIds(a.metadata['event-id'], b.metadata['event-id']));
  return [...load, ...changes];
}

/** Records read back once pred holds for one of them and no more arrive. */
async function until(stream, pred, what) {
  let msgs;
  await waitFor(async () => {
    msgs = await messages(stream);
    return msgs.some(pred);
  }, { timeoutMs: 60000, what });
  for (let n = -1; n !== msgs.length;) {
    n = msgs.length;
    await new Promise((r) => setTimeout(r, 1000));
    msgs = await messages(stream);
  }
  return msgs;
}

const opsOf = (msgs) => msgs.map((m) => `${m.metadata['table-name']}:${m.metadata.operation}`);

before(async () => {
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  for (const t of tasks) await psqlTry(`SELECT dms_stream.stop_task(${lit(t)})`);
  for (const t of tasks) {
    await waitFor(async () => !(await worker(t)), { timeoutMs: 20000, what: 'worker gone' }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped', desired_state = 'stopped' WHERE task_name = ${lit(t)};
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const st of streams) await kinesis('DeleteStream', { StreamName: st }).catch(() => {});
});

test('stored generated columns are in the full load and in the changes', async () => {
  const schema = await makeSchema();
  await sql(`CREATE TABLE ${schema}.g (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED,
      label text GENERATED ALWAYS AS ('n' || a) STORED);
    INSERT INTO ${schema}.g (id, a) VALUES (1, 10), (2, 20);`);
  const { stream, task } = await makeTask(schema, 'full-load-and-cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(`INSERT INTO ${schema}.g (id, a) VALUES (3, 30);
    UPDATE ${schema}.g SET a = 11 WHERE id = 1;
    DELETE FROM ${schema}.g WHERE id = 2;
    INSERT INTO ${schema}.g (id, a) VALUES (4, 40);`);
  const msgs = await until(stream, (m) => m.data && m.data.id === 4, 'all changes');
  assert.deepEqual(opsOf(msgs), ['g:load', 'g:load', 'g:insert', 'g:update', 'g:delete', 'g:insert']);
  const data = msgs.map((m) => m.data);
  assert.deepEqual(data[0], { id: 1, a: 10, twice: 20, label: 'n10' }, 'generated values in the load');
  assert.deepEqual(data[1], { id: 2, a: 20, twice: 40, label: 'n20' });
  assert.deepEqual(data[2], { id: 3, a: 30, twice: 60, label: 'n30' }, 'generated values in an insert');
  assert.deepEqual(data[3], { id: 1, a: 11, twice: 22, label: 'n11' }, 'recomputed value in an update');
  assert.deepEqual(data[4], { id: 2 }, 'delete: the key');
  await stopTask(task);
});

/** A partitioned table p (p3 with another column order and a dropped column) with rows, and a table plain. */
async function makePartitioned() {
  const schema = await makeSchema();
  await sql(`CREATE TABLE ${schema}.p (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
    CREATE TABLE ${schema}.p1 PARTITION OF ${schema}.p FOR VALUES FROM (0) TO (100);
    CREATE TABLE ${schema}.p2 PARTITION OF ${schema}.p FOR VALUES FROM (100) TO (200);
    CREATE TABLE ${schema}.p3 (v text, junk int, k int NOT NULL, id int NOT NULL);
    ALTER TABLE ${schema}.p3 DROP COLUMN junk;
    ALTER TABLE ${schema}.p ATTACH PARTITION ${schema}.p3 FOR VALUES FROM (200) TO (300);
    CREATE TABLE ${schema}.plain (id int PRIMARY KEY);
    INSERT INTO ${schema}.p VALUES (1, 5, 'a'), (2, 150, 'b'), (3, 250, 'c');`);
  return schema;
}

const partitionChanges = (schema) => `INSERT INTO ${schema}.p VALUES (4, 6, 'd'), (5, 260, 'e');
    UPDATE ${schema}.p SET v = 'cc' WHERE id = 3;
    UPDATE ${schema}.p SET k = 120 WHERE id = 1;
    DELETE FROM ${schema}.p WHERE id = 2;
    TRUNCATE ${schema}.p;
    INSERT INTO ${schema}.plain VALUES (99);`;

test('a partitioned table selected by name: its partitions\' rows and changes under its name', async () => {
  const schema = await makePartitioned();
  const { stream, task } = await makeTask(schema, 'full-load-and-cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(partitionChanges(schema));
  // TRUNCATE of one partition: nothing (as pgoutput with publish_via_partition_root).
  await sql(`INSERT INTO ${schema}.p VALUES (6, 7, 'f'); TRUNCATE ${schema}.p1; INSERT INTO ${schema}.plain VALUES (100);`);
  const msgs = await until(stream, (m) => m.data && m.data.id === 100, 'all changes');
  const ops = opsOf(msgs);
  assert.deepEqual(ops.slice(0, 3).sort(), ['p:load', 'p:load', 'p:load'], 'the load under the root\'s name');
  assert.deepEqual(ops.slice(3), ['p:insert', 'p:insert', 'p:update',
    'p:delete', 'p:insert', // a row moved to another partition
    'p:delete', 'p:truncate-table', 'plain:insert', 'p:insert', 'plain:insert'],
  'changes under the root\'s name, one TRUNCATE');
  const load = msgs.slice(0, 3).map((m) => m.data).sort((x, y) => x.id - y.id);
  assert.deepEqual(load, [{ id: 1, k: 5, v: 'a' }, { id: 2, k: 150, v: 'b' }, { id: 3, k: 250, v: 'c' }]);
  assert.deepEqual(Object.keys(msgs[4].data), ['id', 'k', 'v'], 'the root\'s column order for p3\'s rows');
  assert.deepEqual(msgs[4].data, { id: 5, k: 260, v: 'e' });
  assert.deepEqual(msgs[5].data, { id: 3, k: 250, v: 'cc' });
  assert.deepEqual(msgs[6].data, { id: 1, k: 5 });
  assert.deepEqual(msgs[7].data, { id: 1, k: 120, v: 'a' });
  const stats = await sql(`SELECT "TableName" FROM dms_stream.table_statistics_view
    WHERE "TaskName" = ${lit(task)} ORDER BY 1`);
  assert.deepEqual(stats.map((r) => r[0]), ['p', 'plain'], 'statistics under the root only');
  await stopTask(task);
});

test('PublishViaPartitionRoot false: partitions under their own names, nothing under the parent\'s', async () => {
  const schema = await makePartitioned();
  const { stream, task } = await makeTask(schema, 'full-load-and-cdc', { sourceSettings: { PublishViaPartitionRoot: false } });
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(partitionChanges(schema));
  const msgs = await until(stream, (m) => m.data && m.data.id === 99, 'all changes');
  const ops = opsOf(msgs);
  assert.deepEqual(ops.slice(0, 3).sort(), ['p1:load', 'p2:load', 'p3:load']);
  assert.deepEqual(ops.slice(3), ['p1:insert', 'p3:insert', 'p3:update', 'p1:delete', 'p2:insert', 'p2:delete',
    'p1:truncate-table', 'p2:truncate-table', 'p3:truncate-table', 'plain:insert']);
  await stopTask(task);
});

test('rename-column and drop-table control records with IncludeTableAlterOperations', async () => {
  const schema = await makeSchema();
  await sql(`CREATE TABLE ${schema}.t (id int PRIMARY KEY, name text, qty int);
    CREATE TABLE ${schema}.gone (id int PRIMARY KEY);
    CREATE TABLE ${schema}.never (id int PRIMARY KEY);
    CREATE TABLE ${schema}.pp (id int, k int) PARTITION BY LIST (k);
    CREATE TABLE ${schema}.pp1 PARTITION OF ${schema}.pp FOR VALUES IN (1);`);
  const { stream, task } = await makeTask(schema, 'cdc', {
    kinesisSettings: { IncludeTableAlterOperations: true, IncludeControlDetails: true },
  });
  const quiet = await makeTask(schema, 'cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)}); SELECT dms_stream.start_task(${lit(quiet.task)});`);
  await waitStreaming(task);
  await waitStreaming(quiet.task);
  await sql(`INSERT INTO ${schema}.t VALUES (1, 'one', 1);
    ALTER TABLE ${schema}.t RENAME COLUMN name TO title;
    INSERT INTO ${schema}.t VALUES (2, 'two', 2);
    ALTER TABLE ${schema}.t RENAME COLUMN qty TO amount;
    ALTER TABLE ${schema}.t ADD COLUMN extra int;
    INSERT INTO ${schema}.t VALUES (3, 'three', 3, 33);
    BEGIN; INSERT INTO ${schema}.gone VALUES (7); DROP TABLE ${schema}.gone; COMMIT;
    DROP TABLE ${schema}.never;
    INSERT INTO ${schema}.pp VALUES (1, 1);
    DROP TABLE ${schema}.pp;
    INSERT INTO ${schema}.t VALUES (4, 'four', 4, 44);`);
  const msgs = await until(stream, (m) => m.data && m.data.id === 4, 'all changes');
  assert.deepEqual(opsOf(msgs), ['t:insert', 't:rename-column', 't:insert',
    't:rename-column', 't:add-column', 't:insert',
    'gone:insert', 'gone:drop-table', 'never:drop-table',
    'pp:insert', 'pp:drop-table', 't:insert']);
  const [, ren1, ins2, ren2, add, ins3, , drop, never, , ppDrop] = msgs;
  assert.equal(ren1.metadata['record-type'], 'control');
  assert.deepEqual(ren1.control, { 'column-name': 'title', 'old-column-name': 'name' });
  assert.deepEqual(ins2.data, { id: 2, title: 'two', qty: 2 });
  assert.deepEqual(ren2.control, { 'column-name': 'amount', 'old-column-name': 'qty' });
  assert.equal(add.control['column-name'], 'extra');
  assert.deepEqual(ins3.data, { id: 3, title: 'three', amount: 3, extra: 33 });
  assert.equal(drop.metadata['record-type'], 'control');
  assert.equal(drop.metadata['schema-name'], schema);
  assert.equal(drop.metadata['event-id'].split(':')[0], msgs[6].metadata['stream-position'],
    'the drop in the dropping transaction, after its changes');
  assert.equal(never.metadata['table-name'], 'never', 'a table without changes: by its name');
  assert.equal(ppDrop.metadata['schema-name'], schema);
  // Without IncludeTableAlterOperations: data records only.
  const qmsgs = await until(quiet.stream, (m) => m.data && m.data.id === 4, 'all changes (quiet)');
  assert.deepEqual(opsOf(qmsgs), ['t:insert', 't:insert', 't:insert', 'gone:insert', 'pp:insert', 't:insert']);
  await stopTask(task);
  await stopTask(quiet.task);
});

test('tables without a primary key or replica identity: inserts only, one WARNING per table', async () => {
  const schema = await makeSchema();
  await sql(`CREATE TABLE ${schema}.nokey (id int, v text);
    CREATE TABLE ${schema}.full_nokey (id int, v text);
    ALTER TABLE ${schema}.full_nokey REPLICA IDENTITY FULL;
    CREATE TABLE ${schema}.keyed (id int PRIMARY KEY, v text);`);
  const logFile = path.join(process.env.DMS_BED_DIR || '/tmp/dms_stream_bed', 'pgrun', 'pg.log');
  const { stream, task } = await makeTask(schema, 'cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(`INSERT INTO ${schema}.nokey VALUES (1, 'a'), (2, 'b');
    UPDATE ${schema}.nokey SET v = 'x';
    DELETE FROM ${schema}.nokey WHERE id = 1;
    UPDATE ${schema}.nokey SET v = 'y';
    INSERT INTO ${schema}.full_nokey VALUES (1, 'a');
    UPDATE ${schema}.full_nokey SET v = 'x';
    DELETE FROM ${schema}.full_nokey;
    INSERT INTO ${schema}.nokey VALUES (3, 'c');
    INSERT INTO ${schema}.keyed VALUES (1, 'a');`);
  const msgs = await until(stream, (m) => m.metadata['table-name'] === 'keyed', 'all changes');
  assert.deepEqual(opsOf(msgs), ['nokey:insert', 'nokey:insert', 'full_nokey:insert', 'full_nokey:update',
    'full_nokey:delete', 'nokey:insert', 'keyed:insert']);
  assert.deepEqual(msgs[4].data, { id: 1, v: 'x' }, 'REPLICA IDENTITY FULL: the old row');
  const warning = `dms_stream task "${task}": table ${schema}.nokey has no primary key or replica identity`;
  const log = fs.readFileSync(logFile, 'utf8');
  assert.equal(log.split(warning).length - 1, 1, 'one WARNING for the table, not one per change');
  assert.ok(!log.includes(`table ${schema}.full_nokey has no primary key`));
  await stopTask(task);
});
