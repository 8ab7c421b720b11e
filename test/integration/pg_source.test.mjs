// Tasks whose source is this database (src/pg_source_job.c,
// src/decoding_plugin.c): logical decoding with the extension's own output
// plugin, a replication slot per task, snapshot-consistent full load, DMS
// messages with transaction details, acknowledged slot confirmation.
//
// Every test works on its own schema; an AFTER ROW trigger writes each
// change (transaction id, order, operation, row as jsonb) to an audit table
// in another schema that the task does not select, and the stream read
// back from kinesalite is compared with it change by change: per
// transaction, the records in record-id order carry the same operations and
// rows; record ids run 1..n with only the last flagged; transactions come
// in commit order; event ids (commit LSN:ordinal) are unique except for
// re-sent records, which carry the same data.
//
// Covered: cdc task (slot created with the task, dropped by drop_task),
// insert/update/delete with transaction details; full-load-and-cdc while a
// writer commits concurrently (replaying the load and the changes gives the
// final table, no insert of a row the load had: no gap, no overlap);
// SIGKILL of the worker and an immediate stop of PostgreSQL in the middle of
// streaming transactions; TRUNCATE as a control record; column added and
// dropped; before images; unchanged TOASTed values (filled with REPLICA
// IDENTITY FULL, else listed as unchanged, never null); slot confirmation
// over WAL of tables not selected (heartbeat); the lag view and the
// dms_stream.max_slot_lag cap.
//
// Run: test/check.sh --only pg_source

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  env, psql, psqlTry, proxy, createStream, kinesis, uniqueName, waitFor, sleep, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants, compareEventIds } from '../lib/stream_invariants.mjs';

const kp = proxy('kinesis');
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const sql = (q) => psql(PRE + q);
async function one(q) {
  const rows = await sql(q);
  return rows.length ? rows[rows.length - 1][0] : undefined;
}

const tasks = [];
const streams = [];

/** A schema with table items and an audit log of its changes. */
async function makeSchema({ identityFull = false } = {}) {
  const schema = uniqueName('pgs').replace(/-/g, '_');
  const audit = `${schema}_audit`;
  await sql(`CREATE SCHEMA ${schema}; CREATE SCHEMA ${audit};
    CREATE TABLE ${schema}.items (id bigint PRIMARY KEY, name text, qty int, payload text);
    ${identityFull ? `ALTER TABLE ${schema}.items REPLICA IDENTITY FULL;` : ''}
    CREATE SEQUENCE ${schema}.ids;
    CREATE TABLE ${audit}.log (seq bigserial PRIMARY KEY, xid bigint, op text, id bigint, row jsonb);
    CREATE FUNCTION ${audit}.f() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        INSERT INTO ${audit}.log (xid, op, id, row) VALUES (txid_current() % 4294967296, 'delete', OLD.id, to_jsonb(OLD));
      ELSE
        INSERT INTO ${audit}.log (xid, op, id, row) VALUES (txid_current() % 4294967296, lower(TG_OP), NEW.id, to_jsonb(NEW));
      END IF;
      RETURN NULL;
    END $f$;
    CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON ${schema}.items
      FOR EACH ROW EXECUTE FUNCTION ${audit}.f();
    -- A procedure committing n small transactions of mixed changes.
    CREATE PROCEDURE ${schema}.work(n int, pause float8 DEFAULT 0) LANGUAGE plpgsql AS $p$
    DECLARE k bigint;
    BEGIN
      FOR i IN 1..n LOOP
        k := nextval('${schema}.ids');
        INSERT INTO ${schema}.items VALUES (k, 'item ' || k, (k % 97)::int, NULL);
        IF i % 3 = 0 THEN
          INSERT INTO ${schema}.items SELECT nextval('${schema}.ids'), 'batch', g, 'p' || g FROM generate_series(1, (i % 7) + 1) g;
        END IF;
        IF i % 4 = 0 THEN
          UPDATE ${schema}.items SET qty = qty + 1, name = name || '+' WHERE id IN (SELECT id FROM ${schema}.items ORDER BY id DESC LIMIT 3 OFFSET 2);
        END IF;
        IF i % 5 = 0 THEN
          DELETE FROM ${schema}.items WHERE id = (SELECT min(id) FROM ${schema}.items);
        END IF;
        COMMIT;
        IF pause > 0 THEN PERFORM pg_sleep(pause); END IF;
      END LOOP;
    END $p$;`);
  return { schema, audit };
}

async function makeTask(schema, migrationType, { kinesisSettings = {}, taskSettings = {}, shards = 1 } = {}) {
  const stream = uniqueName('pgs');
  const task = uniqueName('pgtask');
  const src = `${task}-src`;
  const tgt = `${task}-tgt`;
  await createStream(stream, shards);
  streams.push(stream);
  const ks = { StreamName: stream, IncludeTransactionDetails: true, IncludeNullAndEmpty: true, ...kinesisSettings };
  const mappings = {
    rules: [{
      'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one',
      'object-locator': { 'schema-name': schema, 'table-name': '%' }, 'rule-action': 'include',
    }],
  };
  await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify(ks))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, ${lit(migrationType)}, ${lit(JSON.stringify(mappings))}, ${lit(JSON.stringify(taskSettings))});`);
  tasks.push(task);
  return { stream, task, slot: await one(`SELECT dms_stream.task_slot_name(${lit(task)})`) };
}

async function status(task) {
  const rows = await sql(`SELECT status, coalesce(last_error, ''), coalesce(phase, ''), coalesce(worker_pid::text, '')
    FROM dms_stream.task_status WHERE task = ${lit(task)}`);
  const [st, lastError, phase, pid] = rows[0];
  return { status: st, lastError, phase, pid };
}

/** Start a full-load task and wait until it has stopped or failed. */
async function runFullLoad(task, timeoutMs) {
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  return waitFor(async () => {
    const st = await status(task);
    return ['stopped', 'failed'].includes(st.status) ? st : null;
  }, { timeoutMs, what: 'full load finished' });
}

async function worker(task) {
  const rows = await sql(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream task' AND application_name = ${lit(task)}`);
  return rows.length ? Number(rows[0][0]) : null;
}

/** Wait until the worker streams changes (slot created, full load shipped). */
async function waitStreaming(task, timeoutMs = 60000) {
  return waitFor(async () => {
    const st = await status(task);
    if (st.status === 'failed') throw new Error(`task failed: ${st.lastError}`);
    return st.phase.startsWith('cdc:') ? st : null;
  }, { timeoutMs, what: `task ${task} streaming` });
}

/** CDC records acknowledged so far (the checkpoint). */
async function cdcSent(task) {
  return Number(await one(`SELECT coalesce(max(rows_sent), 0) FROM dms_stream.task_checkpoint
    WHERE task_name = ${lit(task)} AND schema_name = '(pg)' AND table_name = '(cdc)'`));
}

async function auditLog(audit) {
  const rows = await sql(`SELECT xid, op, id, row FROM ${audit}.log ORDER BY seq`);
  return rows.map(([xid, op, id, row]) => ({ xid: Number(xid), op, id: Number(id), row: JSON.parse(row) }));
}

async function messages(stream) {
  const msgs = (await streamRecords(stream)).map((r) => ({ key: r.PartitionKey, msg: JSON.parse(r.Data.toString('utf8')) }));
  assertStreamInvariants(msgs, { what: stream });
  return msgs;
}

/** Wait until every audited change is in the stream (by distinct event id). */
async function waitAll(stream, audit, timeoutMs = 120000) {
  const want = (await auditLog(audit)).length;
  let last = 0;
  await waitFor(async () => {
    const ids = new Set((await messages(stream)).map((m) => m.msg.metadata['event-id']).filter((id) => !id.includes(':load:')));
    last = ids.size;
    return ids.size >= want;
  }, { timeoutMs, intervalMs: 500, what: `all ${want} changes in the stream (last ${last})` });
}

/**
 * Compare the CDC records with the audit log, change by change. Returns
 * {duplicates, transactions}. Only transactions whose xid appears in the
 * stream are compared when partial is set (full-load-and-cdc: older ones
 * are in the load).
 */
function compareWithAudit(msgs, log, { partial = false } = {}) {
  const cdc = msgs.filter((m) => ['insert', 'update', 'delete'].includes(m.msg.metadata.operation));
  const byId = new Map();
  const byXid = new Map();
  let duplicates = 0;
  let lastPos = null;
  for (const { msg } of cdc) {
    const md = msg.metadata;
    const id = md['event-id'];
    assert.equal(id, `${md['stream-position']}:${md['transaction-record-id']}`, 'event id is commit position:ordinal');
    if (byId.has(id)) {
      duplicates++;
      assert.deepEqual(msg.data, byId.get(id).data, `re-sent ${id} carries the same data`);
      assert.equal(md.operation, byId.get(id).metadata.operation);
      continue;
    }
    byId.set(id, msg);
    const pos = md['stream-position'];
    if (lastPos !== null && !byXid.has(md['transaction-id'])) {
      const cmp = (p) => p.split('/').map((h) => BigInt(`0x${h}`)).reduce((a, b) => (a << 32n) + b);
      assert.ok(cmp(pos) > cmp(lastPos), `transactions in commit order (${lastPos} then ${pos})`);
    }
    lastPos = pos;
    if (!byXid.has(md['transaction-id'])) byXid.set(md['transaction-id'], []);
    byXid.get(md['transaction-id']).push(msg);
  }
  const expected = new Map();
  for (const a of log) {
    if (!expected.has(a.xid)) expected.set(a.xid, []);
    expected.get(a.xid).push(a);
  }
  if (!partial) assert.deepEqual([...byXid.keys()].sort(), [...expected.keys()].sort(), 'the same transactions');
  for (const [xid, got] of byXid) {
    const want = expected.get(xid);
    assert.ok(want, `transaction ${xid} of the stream is in the audit log`);
    got.sort((a, b) => a.metadata['transaction-record-id'] - b.metadata['transaction-record-id']);
    assert.equal(got.length, want.length, `transaction ${xid}: ${want.length} changes`);
    got.forEach((m, i) => {
      const md = m.metadata;
      assert.equal(md['transaction-record-id'], i + 1, 'record ids 1..n');
      assert.equal(md.operation, want[i].op, `transaction ${xid} change ${i + 1}: operation`);
      assert.equal(md['transaction-last'] === true, i === got.length - 1, 'only the last record is flagged');
      assert.ok(md['commit-timestamp'], 'commit timestamp');
      if (want[i].op === 'delete') assert.equal(Number(m.data.id), want[i].id);
      else assert.deepEqual(m.data, want[i].row, `transaction ${xid} change ${i + 1}: row`);
    });
  }
  return { duplicates, transactions: byXid.size };
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

/** Stop a task and wait for its worker to end (frees a worker slot). */
async function stopTask(task) {
  await psqlTry(`SELECT dms_stream.stop_task(${lit(task)})`);
  await waitFor(async () => !(await worker(task)), { timeoutMs: 30000, what: 'worker gone' }).catch(() => {});
}

/** Run psql in the background; resolves when it ends. */
function background(q) {
  return new Promise((resolve) => {
    const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=0', '-c', q], { env: process.env, stdio: 'ignore' });
    child.on('close', resolve);
  });
}

before(async () => {
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  await kp.setFaults({}).catch(() => {});
  for (const t of tasks) {
    await psqlTry(`SELECT dms_stream.stop_task(${lit(t)})`);
  }
  for (const t of tasks) {
    await waitFor(async () => !(await worker(t)), { timeoutMs: 20000, what: 'worker gone' }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped', desired_state = 'stopped' WHERE task_name = ${lit(t)};
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  await psqlTry('ALTER SYSTEM RESET dms_stream.max_slot_lag; SELECT pg_reload_conf();');
  // The bed's kinesalite allows 50 shards in all: give them back to the tests that follow.
  for (const st of streams) await kinesis('DeleteStream', { StreamName: st }).catch(() => {});
});

test('cdc task: slot created with the task, changes with transaction details, dropped with the task', async () => {
  const { schema, audit } = await makeSchema();
  const { stream, task, slot } = await makeTask(schema, 'cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  assert.equal(await one(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${lit(slot)} AND plugin = 'dms_stream'`), '1');
  await sql(`CALL ${schema}.work(60);`);
  await waitAll(stream, audit);
  const msgs = await messages(stream);
  const { duplicates, transactions } = compareWithAudit(msgs, await auditLog(audit));
  assert.equal(duplicates, 0);
  assert.equal(transactions, 60);
  for (const { key, msg } of msgs) {
    assert.equal(key, `${schema}.items`, 'CDC partition key schema-table');
    assert.equal(msg.metadata['schema-name'], schema);
    assert.equal(msg.metadata['table-name'], 'items');
  }
  // Statistics per operation.
  const log = await auditLog(audit);
  await waitFor(async () => {
    const [ins, upd, del] = (await sql(`SELECT "Inserts", "Updates", "Deletes" FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)}`))[0] || [];
    return Number(ins) === log.filter((a) => a.op === 'insert').length
      && Number(upd) === log.filter((a) => a.op === 'update').length
      && Number(del) === log.filter((a) => a.op === 'delete').length;
  }, { what: 'statistics' });
  // The slot is confirmed once acknowledged: nothing left unconfirmed.
  await waitFor(async () => Number(await one(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`)) < 100000,
    { what: 'slot confirmed' });

  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitFor(async () => (await status(task)).status === 'stopped' && !(await worker(task)), { what: 'stopped' });
  assert.equal(await one(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`), '1', 'a stopped task keeps its slot');
  await sql(`SELECT dms_stream.drop_task(${lit(task)});`);
  tasks.splice(tasks.indexOf(task), 1);
  assert.equal(await one(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`), '0', 'drop_task drops the slot');
});

test('full-load-and-cdc with concurrent writes: every change exactly once across load and CDC', async () => {
  const { schema, audit } = await makeSchema();
  await sql(`INSERT INTO ${schema}.items SELECT nextval('${schema}.ids'), 'seed', g % 100, repeat('x', g % 50) FROM generate_series(1, 20000) g;`);
  const { stream, task } = await makeTask(schema, 'full-load-and-cdc');
  const writer = background(`CALL ${schema}.work(400, 0.002);`);
  await sleep(300);
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await writer;
  await waitStreaming(task, 120000);
  await waitFor(async () => {
    const msgs = await messages(stream);
    const cdcXids = new Set(msgs.filter((m) => m.msg.metadata.operation !== 'load').map((m) => m.msg.metadata['transaction-id']));
    const log = await auditLog(audit);
    const lastXid = log[log.length - 1].xid;
    return cdcXids.has(lastXid);
  }, { timeoutMs: 120000, intervalMs: 1000, what: 'the last transaction in the stream' });
  const msgs = await messages(stream);
  const loads = msgs.filter((m) => m.msg.metadata.operation === 'load');
  const changes = msgs.filter((m) => m.msg.metadata.operation !== 'load');
  assert.ok(loads.length >= 20000, `the load (${loads.length} rows)`);
  assert.ok(changes.length > 0, 'changes after the snapshot');
  // Replay: load, then changes in stream order, gives the final table.
  const state = new Map();
  for (const { msg } of loads) {
    assert.ok(!state.has(msg.data.id), `load row ${msg.data.id} once`);
    state.set(msg.data.id, msg.data);
  }
  const seen = new Set();
  for (const { msg } of changes) {
    const id = msg.metadata['event-id'];
    assert.ok(!seen.has(id), `event ${id} once`);
    seen.add(id);
    const op = msg.metadata.operation;
    if (op === 'insert') {
      assert.ok(!state.has(msg.data.id), `insert of ${msg.data.id} is not in the load (no overlap)`);
      state.set(msg.data.id, msg.data);
    } else if (op === 'update') {
      assert.ok(state.has(msg.data.id), `update of ${msg.data.id} follows its row (no gap)`);
      state.set(msg.data.id, msg.data);
    } else if (op === 'delete') {
      assert.ok(state.has(msg.data.id), `delete of ${msg.data.id} follows its row (no gap)`);
      state.delete(msg.data.id);
    }
  }
  const final = (await sql(`SELECT to_jsonb(i) FROM ${schema}.items i ORDER BY id`)).map(([j]) => JSON.parse(j));
  assert.equal(state.size, final.length, 'row count of the replay');
  for (const row of final) assert.deepEqual(state.get(row.id), row, `row ${row.id}`);
  compareWithAudit(msgs, await auditLog(audit), { partial: true });
  const st = await sql(`SELECT "FullLoadRows", "TableState" FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)}`);
  assert.deepEqual(st, [[String(loads.length), 'Table completed']]);
  await stopTask(task);
});

test('SIGKILL of the worker while transactions stream: every change, duplicates only re-sent', async () => {
  const { schema, audit } = await makeSchema();
  // primary-key partition keys: with one schema.table key (one record per round trip) the
  // delayed requests would take minutes to acknowledge 100 changes
  const { stream, task } = await makeTask(schema, 'cdc', { taskSettings: { TargetMetadata: { ParallelLoadBufferSize: 20, ParallelLoadThreads: 1, ParallelApplyThreads: 4 } } });
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await kp.setFaults({ delay_ms: 150, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    const writer = background(`CALL ${schema}.work(300, 0.001);`);
    await waitFor(async () => (await cdcSent(task)) > 100, { timeoutMs: 60000, what: 'some changes acknowledged' });
    const pid = await worker(task);
    const before = await cdcSent(task);
    process.kill(pid, 'SIGKILL');
    await writer;
    await waitFor(async () => {
      const w2 = await worker(task).catch(() => null);
      return w2 && w2 !== pid;
    }, { timeoutMs: 60000, what: 'worker restarted after SIGKILL' });
    await kp.setFaults({});
    await waitAll(stream, audit);
    const { duplicates } = compareWithAudit(await messages(stream), await auditLog(audit));
    console.log(`SIGKILL: ${before} changes acknowledged before the kill, ${duplicates} re-sent`);
    assert.ok(duplicates <= 200, `duplicates only from the unacknowledged window (${duplicates})`);
  } finally {
    await kp.setFaults({});
    await stopTask(task);
  }
});

test('immediate stop of PostgreSQL while transactions stream: every change after the restart', async () => {
  const { schema, audit } = await makeSchema();
  // primary-key partition keys: with one schema.table key (one record per round trip) the
  // delayed requests would take minutes to acknowledge 100 changes
  const { stream, task } = await makeTask(schema, 'cdc', { taskSettings: { TargetMetadata: { ParallelLoadBufferSize: 20, ParallelLoadThreads: 1, ParallelApplyThreads: 4 } } });
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await kp.setFaults({ delay_ms: 150, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    const writer = background(`CALL ${schema}.work(300, 0.001);`);
    await waitFor(async () => (await cdcSent(task)) > 100, { timeoutMs: 60000, what: 'some changes acknowledged' });
    pgRestart('immediate');
    await writer;
    await waitFor(() => worker(task), { timeoutMs: 60000, what: 'worker after the restart' });
    await kp.setFaults({});
    // What the crash cut off the writer's loop is not in the audit either.
    await waitAll(stream, audit);
    const { duplicates } = compareWithAudit(await messages(stream), await auditLog(audit));
    console.log(`immediate stop: ${duplicates} re-sent`);
    assert.ok(duplicates <= 200, `duplicates only from the unacknowledged window (${duplicates})`);
    const runs = await sql(`SELECT status, coalesce(message, '') FROM dms_stream.run_history WHERE task_name = ${lit(task)} ORDER BY run_id`);
    assert.deepEqual(runs[0], ['stopped', 'server restarted']);
  } finally {
    await kp.setFaults({});
    await stopTask(task);
  }
});

test('TRUNCATE, columns added and dropped, before images, unchanged TOAST values', async () => {
  const { schema } = await makeSchema();
  await sql(`CREATE TABLE ${schema}.full_t (id int PRIMARY KEY, note varchar(20), big text);
    ALTER TABLE ${schema}.full_t REPLICA IDENTITY FULL;
    ALTER TABLE ${schema}.items ALTER COLUMN payload SET STORAGE EXTERNAL;
    ALTER TABLE ${schema}.full_t ALTER COLUMN big SET STORAGE EXTERNAL;`);
  const { stream, task } = await makeTask(schema, 'cdc', {
    kinesisSettings: { IncludeTableAlterOperations: true, IncludeControlDetails: true },
    taskSettings: { BeforeImageSettings: { EnableBeforeImage: true, FieldName: 'before-image', ColumnFilter: 'all' } },
  });
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  const big = 'B'.repeat(10000);
  await sql(`INSERT INTO ${schema}.items VALUES (1, 'one', 1, '${big}');
    INSERT INTO ${schema}.full_t VALUES (1, 'n', '${big}');
    UPDATE ${schema}.items SET qty = 2 WHERE id = 1;
    UPDATE ${schema}.full_t SET note = 'm' WHERE id = 1;
    TRUNCATE ${schema}.items;
    ALTER TABLE ${schema}.items ADD COLUMN extra int;
    INSERT INTO ${schema}.items VALUES (2, 'two', 2, 'p', 42);
    ALTER TABLE ${schema}.items DROP COLUMN qty;
    INSERT INTO ${schema}.items VALUES (3, 'three', 'p', 43);`);
  let msgs;
  await waitFor(async () => {
    msgs = (await messages(stream)).map((m) => m.msg);
    return msgs.some((m) => m.data && m.data.id === 3);
  }, { timeoutMs: 60000, what: 'all changes' });
  // decode order: the stream keeps it per partition key only (control records have keys of their own)
  msgs.sort((a, b) => compareEventIds(a.metadata['event-id'], b.metadata['event-id']));
  const ops = msgs.map((m) => `${m.metadata['table-name']}:${m.metadata.operation}`);
  assert.deepEqual(ops, ['items:insert', 'full_t:insert', 'items:update', 'full_t:update', 'items:truncate-table',
    'items:add-column', 'items:insert', 'items:drop-column', 'items:insert']);
  const [, , updItems, updFull, trunc, add, ins2, drop, ins3] = msgs;
  // Default replica identity: the unchanged TOASTed value is not sent, and marked.
  assert.ok(!('payload' in updItems.data), 'no false NULL for the unchanged TOAST value');
  assert.deepEqual(updItems.metadata['unchanged-columns'], ['payload']);
  assert.deepEqual(updItems.data, { id: 1, name: 'one', qty: 2 });
  assert.deepEqual(updItems['before-image'], {}, 'default identity logs no old row when the key is unchanged');
  // REPLICA IDENTITY FULL: filled from the old row; full before image.
  assert.deepEqual(updFull.data, { id: 1, note: 'm', big });
  assert.equal(updFull.metadata['unchanged-columns'], undefined);
  assert.deepEqual(updFull['before-image'], { id: 1, note: 'n' }, 'full before image, LOB columns left out as in DMS');
  assert.equal(trunc.metadata['record-type'], 'control');
  assert.deepEqual(trunc.control, { operation: 'TRUNCATE', cascade: false, 'restart-identity': false });
  assert.equal(add.metadata['record-type'], 'control');
  assert.equal(add.control['column-name'], 'extra');
  assert.deepEqual(ins2.data, { id: 2, name: 'two', qty: 2, payload: 'p', extra: 42 });
  // Control records take sub-positions: data record ids stay 1..n.
  assert.match(trunc.metadata['event-id'], /^[0-9A-F]+\/[0-9A-F]+:0\.1$/);
  assert.match(add.metadata['event-id'], /:0\.1$/);
  assert.equal(ins2.metadata['transaction-record-id'], 1);
  assert.equal(ins2.metadata['event-id'], `${ins2.metadata['stream-position']}:1`);
  assert.equal(add.metadata['event-id'].split(':')[0], ins2.metadata['stream-position'], 'noticed in the next change\'s transaction');
  assert.equal(drop.control['column-name'], 'qty');
  assert.deepEqual(ins3.data, { id: 3, name: 'three', payload: 'p', extra: 43 });
  const ddls = await one(`SELECT "Ddls" FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)} AND "TableName" = 'items'`);
  assert.equal(ddls, '3');
  await stopTask(task);
});

test('transaction-last: the last data record of a transaction that ends with control records', async () => {
  const { schema } = await makeSchema();
  await sql(`CREATE TABLE ${schema}.other (id int PRIMARY KEY);`);
  const { stream, task } = await makeTask(schema, 'cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(`BEGIN;
    INSERT INTO ${schema}.items VALUES (1, 'one', 1, 'p');
    INSERT INTO ${schema}.items VALUES (2, 'two', 2, 'p');
    TRUNCATE ${schema}.other;
    TRUNCATE ${schema}.other;
    COMMIT;
    BEGIN; TRUNCATE ${schema}.other; INSERT INTO ${schema}.items VALUES (3, 'three', 3, 'p'); COMMIT;`);
  let msgs;
  await waitFor(async () => {
    msgs = (await messages(stream)).map((m) => m.msg);
    return msgs.some((m) => m.data && m.data.id === 3);
  }, { timeoutMs: 60000, what: 'all changes' });
  // decode order: the stream keeps it per partition key only (control records have keys of their own)
  msgs.sort((a, b) => compareEventIds(a.metadata['event-id'], b.metadata['event-id']));
  const ops = msgs.map((m) => `${m.metadata['table-name']}:${m.metadata.operation}`);
  assert.deepEqual(ops, ['items:insert', 'items:insert', 'other:truncate-table', 'other:truncate-table',
    'other:truncate-table', 'items:insert'], 'order as decoded');
  const last = msgs.map((m) => m.metadata['transaction-last'] === true);
  assert.deepEqual(last, [false, true, false, false, false, true],
    'the last data record of each transaction is flagged, also when control records follow it');
  assert.equal(msgs[1].metadata['transaction-id'], msgs[0].metadata['transaction-id']);
  await stopTask(task);
});

test('slot safety: confirmed over WAL of other tables (heartbeat), lag view, max_slot_lag stops the task', async () => {
  const { schema } = await makeSchema();
  const { task, slot } = await makeTask(schema, 'cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  // Busy server, quiet table: WAL of a table the task does not select.
  await sql(`CREATE TABLE ${schema}_audit.busy AS SELECT g, repeat('w', 200) AS w FROM generate_series(1, 20000) g;`);
  const target = await one('SELECT pg_current_wal_lsn()');
  await waitFor(async () => (await one(`SELECT confirmed_flush_lsn >= ${lit(target)}::pg_lsn FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`)) === 't',
    { timeoutMs: 30000, what: 'slot confirmed past WAL without relevant changes' });
  const lag = await sql(`SELECT slot_name, active, unconfirmed_bytes >= 0, retained_bytes > 0 FROM dms_stream.replication_slot_lag WHERE task = ${lit(task)}`);
  assert.deepEqual(lag, [[slot, 't', 't', 't']]);

  // The cap: stop, let WAL pile up, resume with a cap below it.
  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitFor(async () => (await status(task)).status === 'stopped' && !(await worker(task)), { what: 'stopped' });
  await sql(`INSERT INTO ${schema}_audit.busy SELECT g, repeat('v', 500) FROM generate_series(1, 20000) g; SELECT pg_switch_wal();
    ALTER SYSTEM SET dms_stream.max_slot_lag = '1MB'; SELECT pg_reload_conf();`);
  try {
    await sleep(500);
    await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
    const st = await waitFor(async () => {
      const s = await status(task);
      return s.status === 'failed' ? s : null;
    }, { timeoutMs: 30000, what: 'task failed on the cap' });
    assert.match(st.lastError, /retains \d+ MB of WAL, more than dms_stream\.max_slot_lag/);
    assert.equal(await one(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`), '1', 'the slot keeps its position');
  } finally {
    await sql('ALTER SYSTEM RESET dms_stream.max_slot_lag; SELECT pg_reload_conf();');
  }
});

test('HeartbeatSchema: the heartbeat row is written there; a schema that does not exist fails the task clearly', async () => {
  const { schema } = await makeSchema();
  const { stream, task, slot } = await makeTask(schema, 'cdc');
  const audit = `${schema}_audit`;
  await sql(`SELECT dms_stream.alter_endpoint(${lit(`${task}-src`)}, ${lit(JSON.stringify({ HeartbeatEnable: true, HeartbeatSchema: audit }))});
    SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  // The first heartbeat is written when streaming starts, then every HeartbeatFrequency minutes.
  await waitFor(async () => (await one(`SELECT count(*) FROM ${audit}.awsdms_heartbeat WHERE slot_name = ${lit(slot)}`)) === '1',
    { timeoutMs: 30000, what: 'heartbeat row' });
  await sql(`INSERT INTO ${schema}.items VALUES (1, 'one', 1, 'p');`);
  await waitFor(async () => (await messages(stream)).some((m) => m.msg.data && m.msg.data.id === 1), { timeoutMs: 30000, what: 'change after the heartbeat' });
  await stopTask(task);
  await sql(`SELECT dms_stream.alter_endpoint(${lit(`${task}-src`)}, ${lit(JSON.stringify({ HeartbeatSchema: `${schema}_missing` }))});
    SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  const st = await waitFor(async () => {
    const s = await status(task);
    return s.status === 'failed' ? s : null;
  }, { timeoutMs: 30000, what: 'task failed on the missing schema' });
  assert.match(st.lastError, new RegExp(`HeartbeatSchema "${schema}_missing" of the source endpoint of task "${task}" does not exist`));
});

test('large transaction beyond logical_decoding_work_mem: streamed whole, with bounded worker memory', async () => {
  const { schema } = await makeSchema();
  await sql(`ALTER TABLE ${schema}.items DISABLE TRIGGER audit;
    ALTER SYSTEM SET logical_decoding_work_mem = '256kB'; SELECT pg_reload_conf();`);
  // primary-key partition keys: one schema.table key would send one record per round trip
  const { stream, task } = await makeTask(schema, 'cdc', {
    kinesisSettings: { MessageFormat: 'json-unformatted' }, taskSettings: { TargetMetadata: { ParallelApplyThreads: 4 } },
  });
  const N = 100000;
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    await waitStreaming(task);
    const pid = await worker(task);
    const kb = () => {
      try {
        return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
      } catch { return 0; }
    };
    const base = kb();
    await sql(`INSERT INTO ${schema}.items SELECT g, 'row ' || g, g % 1000, repeat(md5(g::text), 6) FROM generate_series(1, ${N}) g;`);
    await waitFor(async () => (await cdcSent(task)) >= N, { timeoutMs: 300000, intervalMs: 500, what: `${N} records acknowledged` });
    const peak = kb();
    console.log(`large transaction: ${N} rows, worker VmHWM ${Math.round(base / 1024)} MB before, ${Math.round(peak / 1024)} MB after`);
    assert.ok(peak < 200 * 1024, `worker memory bounded (VmHWM ${peak} kB)`);
    const msgs = (await messages(stream)).map((m) => m.msg)
      .sort((a, b) => compareEventIds(a.metadata['event-id'], b.metadata['event-id']));
    assert.equal(msgs.length, N);
    const xids = new Set(msgs.map((m) => m.metadata['transaction-id']));
    assert.equal(xids.size, 1, 'one transaction');
    msgs.forEach((m, i) => {
      assert.equal(m.metadata['transaction-record-id'], i + 1);
      assert.equal(m.data.id, i + 1);
      assert.equal(m.metadata['transaction-last'] === true, i === N - 1);
    });
  } finally {
    await sql('ALTER SYSTEM RESET logical_decoding_work_mem; SELECT pg_reload_conf();');
    await stopTask(task);
  }
});

test('full-load task: the tables under one snapshot, no slot, then stopped; reload-target starts over', async () => {
  const { schema } = await makeSchema();
  await sql(`INSERT INTO ${schema}.items SELECT g, 'r' || g, g, NULL FROM generate_series(1, 3000) g;
    CREATE TABLE ${schema}.other (k text PRIMARY KEY, at timestamptz, d date, b bytea, f float8, n numeric(6,3), ok boolean);
    INSERT INTO ${schema}.other VALUES ('a', '2021-02-03 04:05:06.789+00', '2021-02-03', '\\x00ff', 1.5, 12.345, true),
      ('b', NULL, NULL, NULL, 'NaN', NULL, false);`);
  const { stream, task, slot } = await makeTask(schema, 'full-load');
  const done = await runFullLoad(task, 60000);
  assert.equal(done.status, 'stopped', done.lastError);
  assert.equal(await one(`SELECT stop_reason FROM dms_stream.task WHERE task_name = ${lit(task)}`), 'Stop Reason FULL_LOAD_ONLY_FINISHED');
  assert.equal(await one(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`), '0', 'no slot for a full load');
  let msgs = (await messages(stream)).map((m) => m.msg);
  assert.equal(msgs.length, 3002);
  assert.ok(msgs.every((m) => m.metadata.operation === 'load'));
  // Load records are keyed by primary key: order across keys is not kept.
  const other = msgs.filter((m) => m.metadata['table-name'] === 'other').map((m) => m.data)
    .sort((x, y) => x.k.localeCompare(y.k));
  assert.deepEqual(other, [
    { k: 'a', at: '2021-02-03T04:05:06.789000Z', d: '2021-02-03', b: '0x00FF', f: 1.5, n: 12.345, ok: true },
    { k: 'b', at: null, d: null, b: null, f: 'NaN', n: null, ok: false },
  ]);
  const ids = new Set(msgs.map((m) => m.metadata['event-id']));
  assert.equal(ids.size, 3002, 'distinct event ids');
  const st = await sql(`SELECT "TableName", "FullLoadRows", "TableState" FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)} ORDER BY 1`);
  assert.deepEqual(st, [['items', '3000', 'Table completed'], ['other', '2', 'Table completed']]);

  await sql(`DELETE FROM ${schema}.items WHERE id > 1000; SELECT dms_stream.start_task(${lit(task)}, 'reload-target');`);
  await waitFor(async () => (await status(task)).status === 'stopped' && (await messages(stream)).length >= 3002 + 1002,
    { timeoutMs: 60000, what: 'reloaded' });
  msgs = (await messages(stream)).map((m) => m.msg);
  assert.equal(msgs.length, 3002 + 1002, 'the reload sent the table as it is now');
});

test('full load of values stored out of line (TOAST): every value sent whole, none dropped', async () => {
  // The oracle is the table itself: md5 and length of each value, computed
  // by PostgreSQL, against the values in the load records read back.
  const { schema } = await makeSchema();
  await sql(`CREATE TABLE ${schema}.big (id int PRIMARY KEY, t text, ext text, j jsonb, b bytea, small text);
    ALTER TABLE ${schema}.big ALTER COLUMN ext SET STORAGE EXTERNAL;
    INSERT INTO ${schema}.big
      SELECT g,
        (SELECT string_agg(md5(g::text || ':' || i || random()::text), '') FROM generate_series(1, 320 * g) i),
        repeat('e', 100000 * g),
        (SELECT jsonb_agg(md5(g::text || i)) FROM generate_series(1, 2000) i),
        decode((SELECT string_agg(md5(i::text || random()::text), '') FROM generate_series(1, 1000) i), 'hex'),
        'small ' || g
      FROM generate_series(1, 4) g;`);
  // The values really are stored out of line: the table's TOAST relation holds chunks.
  const toastBytes = await one(`SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = '${schema}.big'::regclass`);
  assert.ok(Number(toastBytes) > 0, 'the TOAST table is not empty');
  const want = await sql(`SELECT id, md5(t), length(t), md5(ext), length(ext), md5(j::text), upper(encode(b, 'hex')), small
    FROM ${schema}.big ORDER BY id`);
  const { stream, task } = await makeTask(schema, 'full-load');
  const done = await runFullLoad(task, 120000);
  assert.equal(done.status, 'stopped', done.lastError);
  const recs = (await messages(stream)).map((m) => m.msg).filter((m) => m.metadata['table-name'] === 'big')
    .sort((x, y) => x.data.id - y.data.id);
  assert.equal(recs.length, 4);
  const md5 = (s) => crypto.createHash('md5').update(s, 'utf8').digest('hex');
  const got = recs.map(({ data: d }) => [String(d.id), md5(d.t ?? ''), String((d.t ?? '').length),
    md5(d.ext ?? ''), String((d.ext ?? '').length), d.j === undefined ? null : d.j, d.b, d.small]);
  for (let i = 0; i < 4; i++) {
    const w = want[i];
    const g = got[i];
    assert.deepEqual(Object.keys(recs[i].data).sort(), ['b', 'ext', 'id', 'j', 'small', 't'], `row ${w[0]}: every column present`);
    assert.deepEqual([g[0], g[1], g[2], g[3], g[4]], [w[0], w[1], w[2], w[3], w[4]], `row ${w[0]}: text values whole`);
    // jsonb travels as a string holding the JSON text, as for any JSON column.
    assert.equal(typeof g[5], 'string', `row ${w[0]}: jsonb value present`);
    assert.deepEqual(JSON.parse(g[5]), JSON.parse(await one(`SELECT j::text FROM ${schema}.big WHERE id = ${w[0]}`)), `row ${w[0]}: jsonb value`);
    assert.equal(g[6], '0x' + w[6], `row ${w[0]}: bytea value`);
    assert.equal(g[7], w[7]);
  }
});

test('SIGKILL in the middle of shipping the full load: resumed from the spool, every row once or re-sent', async () => {
  const { schema } = await makeSchema();
  await sql(`ALTER TABLE ${schema}.items DISABLE TRIGGER audit;
    INSERT INTO ${schema}.items SELECT g, 'r' || g, g, NULL FROM generate_series(1, 6000) g;`);
  const { stream, task } = await makeTask(schema, 'full-load-and-cdc', { taskSettings: { TargetMetadata: { ParallelLoadBufferSize: 50, ParallelLoadThreads: 1 } } });
  await kp.setFaults({ delay_ms: 100, match: { stream: `^${stream}$`, target: 'PutRecords' } });
  try {
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    await waitFor(async () => Number(await one(`SELECT coalesce(max(rows_sent), 0) FROM dms_stream.task_checkpoint
      WHERE task_name = ${lit(task)} AND table_name = '(full-load)'`)) > 500, { timeoutMs: 60000, what: 'part of the load acknowledged' });
    const pid = await worker(task);
    process.kill(pid, 'SIGKILL');
    // Changes made meanwhile come through CDC after the load.
    await waitFor(async () => {
      const w2 = await worker(task).catch(() => null);
      return w2 && w2 !== pid;
    }, { timeoutMs: 60000, what: 'worker restarted after SIGKILL' });
    await sql(`UPDATE ${schema}.items SET qty = -1 WHERE id = 1;`);
    await kp.setFaults({});
    await waitStreaming(task, 120000);
    let msgs;
    await waitFor(async () => {
      msgs = (await messages(stream)).map((m) => m.msg);
      return msgs.some((m) => m.metadata.operation === 'update');
    }, { timeoutMs: 60000, what: 'the update after the load' });
    const loads = msgs.filter((m) => m.metadata.operation === 'load');
    const byId = new Map();
    let duplicates = 0;
    for (const m of loads) {
      const id = m.metadata['event-id'];
      if (byId.has(id)) {
        duplicates++;
        assert.deepEqual(m.data, byId.get(id).data, 're-sent with the same data');
      } else byId.set(id, m);
    }
    assert.equal(byId.size, 6000, 'every row of the snapshot once');
    assert.deepEqual([...new Set(loads.map((m) => m.data.id))].sort((a, b) => a - b), Array.from({ length: 6000 }, (_, i) => i + 1));
    console.log(`full load SIGKILL: ${duplicates} rows re-sent`);
    // The load's checkpoint is committed at most once a second (as for S3 full loads).
    assert.ok(duplicates <= 1000, `duplicates only from the window since the last checkpoint (${duplicates})`);
    const upd = msgs.filter((m) => m.metadata.operation === 'update');
    assert.equal(upd.length, 1);
    assert.equal(upd[0].data.qty, -1);
  } finally {
    await kp.setFaults({});
    await stopTask(task);
  }
});
