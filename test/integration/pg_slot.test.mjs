// Replication slots of tasks whose source is this database (src/pg_slot.c,
// src/launcher.c, src/pg_source_job.c): the WAL cap for tasks that do not
// run, PostgreSQL's own cap (max_slot_wal_keep_size), and the endpoint's
// SlotName (a slot created beforehand).
//
// Covered: a stopped task whose slot retains more WAL than
// dms_stream.max_slot_lag is failed by the launcher with a message naming
// task, slot and MB (one WARNING in the server log), the slot is kept and
// the task resumes with every change once the cap is raised; with
// dms_stream.drop_slot_past_max_lag the slot is dropped, resume-processing
// is refused and reload-target creates a new slot and loads again; a slot
// invalidated by max_slot_wal_keep_size (wal_status lost) fails the task
// and resume-processing is refused; SlotName: a slot created by SQL with
// the dms_stream plugin, changes made before the task starts are streamed,
// the lag view, spool file and heartbeat use that name, drop_task keeps
// the slot; a missing slot, a slot of another plugin, SlotName with
// full-load-and-cdc (create_task, modify_task, start_task after the
// endpoint gained SlotName) and two running tasks on one slot are refused.
//
// Every change of the settings is reset (ALTER SYSTEM RESET) afterwards.
//
// Run: test/check.sh --only pg_slot

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  env, psqlTry, createStream, kinesis, uniqueName, waitFor, sleep, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import { lit, sql, one } from '../lib/tasks.mjs';

const tasks = [];
const streams = [];
const slots = [];
const SETTINGS = ['dms_stream.max_slot_lag', 'dms_stream.drop_slot_past_max_lag', 'dms_stream.poll_interval',
  'max_slot_wal_keep_size'];

async function resetSettings() {
  for (const s of SETTINGS) await psqlTry(`ALTER SYSTEM RESET ${s}`);
  await sql('SELECT pg_reload_conf();');
}

/** A schema with a table items (selected by the task) and a table busy (not selected). */
async function makeSchema(rows = 0) {
  const schema = uniqueName('slt').replace(/-/g, '_');
  await sql(`CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.items (id bigint PRIMARY KEY, name text);
    INSERT INTO ${schema}.items SELECT g, 'seed ' || g FROM generate_series(1, ${rows}) g;
    CREATE SCHEMA ${schema}_other;
    CREATE TABLE ${schema}_other.busy (g int, w text);`);
  return schema;
}

/** Endpoints (source settings src) and a task selecting schema.%. */
async function makeTask(schema, migrationType, { src = {} } = {}) {
  const stream = uniqueName('slt');
  const task = uniqueName('slttask');
  await createStream(stream, 1);
  streams.push(stream);
  const ks = { StreamName: stream, IncludeTransactionDetails: true };
  const mappings = {
    rules: [{
      'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one',
      'object-locator': { 'schema-name': schema, 'table-name': '%' }, 'rule-action': 'include',
    }],
  };
  await sql(`SELECT dms_stream.create_endpoint(${lit(`${task}-src`)}, 'postgres', 'source', ${lit(JSON.stringify(src))});
    SELECT dms_stream.create_endpoint(${lit(`${task}-tgt`)}, 'kinesis', 'target', ${lit(JSON.stringify(ks))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(`${task}-tgt`)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});`);
  const made = await psqlTry(`SELECT dms_stream.create_task(${lit(task)}, ${lit(`${task}-src`)}, ${lit(`${task}-tgt`)},
    ${lit(migrationType)}, ${lit(JSON.stringify(mappings))});`);
  if (made.ok) tasks.push(task);
  return { stream, task, made, slot: made.ok ? await one(`SELECT dms_stream.task_slot_name(${lit(task)})`) : null };
}

async function status(task) {
  const [st, lastError, phase] = (await sql(`SELECT status, coalesce(last_error, ''), coalesce(phase, '')
    FROM dms_stream.task_status WHERE task = ${lit(task)}`))[0];
  return { status: st, lastError, phase };
}

async function worker(task) {
  const rows = await sql(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream task' AND application_name = ${lit(task)}`);
  return rows.length ? Number(rows[0][0]) : null;
}

async function waitStreaming(task) {
  return waitFor(async () => {
    const st = await status(task);
    if (st.status === 'failed') throw new Error(`task failed: ${st.lastError}`);
    return st.phase.startsWith('cdc:') ? st : null;
  }, { timeoutMs: 60000, what: `task ${task} streaming` });
}

async function waitFailed(task, what) {
  return waitFor(async () => {
    const s = await status(task);
    return s.status === 'failed' ? s : null;
  }, { timeoutMs: 60000, what });
}

async function stopTask(task) {
  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitFor(async () => (await status(task)).status === 'stopped' && !(await worker(task)), { what: 'stopped' });
}

async function slotCount(slot) {
  return Number(await one(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`));
}

/** The data of the stream's records: {op, id} per record. */
async function records(stream) {
  const recs = await streamRecords(stream);
  assertStreamInvariants(recs, { what: stream });
  return recs.map((r) => JSON.parse(r.Data.toString('utf8')))
    .map((m) => ({ op: m.metadata.operation, id: m.data && m.data.id }));
}

async function waitIds(stream, ids, op = 'insert') {
  let got = [];
  await waitFor(async () => {
    got = (await records(stream)).filter((r) => r.op === op).map((r) => r.id);
    return ids.every((id) => got.includes(id));
  }, { timeoutMs: 60000, intervalMs: 300, what: `${op} ${ids.join(',')} in the stream (have ${got.length})` });
  return got;
}

/** More than 1 MB of WAL of a table the task does not select, and a new segment. */
async function makeWal(schema) {
  await sql(`INSERT INTO ${schema}_other.busy SELECT g, repeat('v', 500) FROM generate_series(1, 8000) g;
    SELECT pg_switch_wal();`);
}

function serverLog() {
  return fs.readFileSync(path.join(env.DMS_BED_PGRUN, 'pg.log'), 'utf8');
}

before(async () => {
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  await resetSettings().catch(() => {});
  for (const t of tasks) await psqlTry(`SELECT dms_stream.stop_task(${lit(t)})`);
  for (const t of tasks) {
    await waitFor(async () => !(await worker(t)), { timeoutMs: 20000, what: 'worker gone' }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped', desired_state = 'stopped' WHERE task_name = ${lit(t)};
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const s of slots) await psqlTry(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${lit(s)}`);
  for (const st of streams) await kinesis('DeleteStream', { StreamName: st }).catch(() => {});
});

test('stopped task past max_slot_lag: failed by the launcher with a clear message, one WARNING, slot kept, resumes', async () => {
  const schema = await makeSchema();
  const { stream, task, slot } = await makeTask(schema, 'cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(`INSERT INTO ${schema}.items VALUES (1, 'one');`);
  await waitIds(stream, [1]);
  await stopTask(task);
  await sql(`INSERT INTO ${schema}.items VALUES (2, 'while stopped');`);
  const logBefore = serverLog().length;
  try {
    await sql(`ALTER SYSTEM SET dms_stream.max_slot_lag = '1MB'; ALTER SYSTEM SET dms_stream.poll_interval = '200ms';
      SELECT pg_reload_conf();`);
    await makeWal(schema);
    const st = await waitFailed(task, 'the stopped task failed on the cap');
    assert.match(st.lastError, new RegExp(`^replication slot "${slot}" of stopped task "${task}" retains \\d+ MB of WAL, more than dms_stream\\.max_slot_lag \\(1 MB\\) \\(.*limit is 1 MB.*kept`));
    assert.equal(await slotCount(slot), 1, 'the slot is kept (drop_slot_past_max_lag is off)');
    // Several checks later (poll_interval 200ms, naptime 1s), still one WARNING for this crossing.
    await sleep(3500);
    const log = serverLog().slice(logBefore);
    const warnings = log.split('\n').filter((l) => l.includes('WARNING:') && l.includes(`of stopped task "${task}"`));
    assert.equal(warnings.length, 1, `one WARNING per crossing:\n${warnings.join('\n')}`);
    assert.match(log, /HINT: {2}Resume the task/);
  } finally {
    await resetSettings();
  }
  // With the cap back to its default, the task resumes from its slot: nothing lost.
  await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  await waitStreaming(task);
  await sql(`INSERT INTO ${schema}.items VALUES (3, 'after');`);
  const ids = await waitIds(stream, [1, 2, 3]);
  assert.deepEqual([...new Set(ids)].sort(), [1, 2, 3]);
  await stopTask(task);
});

test('drop_slot_past_max_lag: the slot is dropped, resume-processing refused, reload-target re-creates it and loads again', async () => {
  const schema = await makeSchema(5);
  const { stream, task, slot } = await makeTask(schema, 'full-load-and-cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(`INSERT INTO ${schema}.items VALUES (100, 'cdc');`);
  await waitIds(stream, [100]);
  assert.equal((await records(stream)).filter((r) => r.op === 'load').length, 5);
  await stopTask(task);
  try {
    await sql(`ALTER SYSTEM SET dms_stream.max_slot_lag = '1MB'; ALTER SYSTEM SET dms_stream.drop_slot_past_max_lag = on;
      ALTER SYSTEM SET dms_stream.poll_interval = '200ms'; SELECT pg_reload_conf();`);
    await makeWal(schema);
    const st = await waitFailed(task, 'the stopped task failed on the cap');
    assert.match(st.lastError, new RegExp(`replication slot "${slot}" of stopped task "${task}" retains \\d+ MB of WAL`));
    assert.match(st.lastError, /[Tt]he slot was dropped \(dms_stream\.drop_slot_past_max_lag\)/);
    await waitFor(async () => (await slotCount(slot)) === 0, { what: 'slot dropped' });
  } finally {
    await resetSettings();
  }
  const resume = await psqlTry(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  assert.equal(resume.ok, false, 'resume-processing is refused');
  assert.match(resume.error, new RegExp(`ERROR: {2}replication slot "${slot}" of task "${task}" does not exist`));
  assert.match(resume.error, /drop_slot_past_max_lag/, 'the detail says why');
  assert.match(resume.error, /HINT: {2}Start the task with reload-target/);
  assert.equal((await status(task)).status, 'failed', 'the refused start changed nothing');

  await sql(`INSERT INTO ${schema}.items VALUES (101, 'before the reload');
    SELECT dms_stream.start_task(${lit(task)}, 'reload-target');`);
  await waitStreaming(task);
  assert.equal(await slotCount(slot), 1, 'reload-target created the slot again');
  await sql(`INSERT INTO ${schema}.items VALUES (102, 'after the reload');`);
  await waitIds(stream, [102]);
  const loads = (await records(stream)).filter((r) => r.op === 'load').map((r) => r.id).sort((a, b) => a - b);
  assert.deepEqual(loads, [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 100, 101].sort((a, b) => a - b), 'loaded again, with the rows added meanwhile');
  await stopTask(task);
});

test('slot invalidated by max_slot_wal_keep_size: the task fails clearly, resume-processing refused, reload-target works', async () => {
  const schema = await makeSchema();
  const { stream, task, slot } = await makeTask(schema, 'cdc');
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await stopTask(task);
  try {
    await sql(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'; ALTER SYSTEM SET dms_stream.poll_interval = '200ms';
      SELECT pg_reload_conf();`);
    await sleep(300);
    // The checkpoint invalidates a slot whose restart_lsn is in a segment no longer kept.
    for (let i = 0; i < 3; i++) await makeWal(schema);
    await sql('CHECKPOINT;');
    await waitFor(async () => (await one(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`)) === 'lost',
      { timeoutMs: 30000, what: 'slot invalidated' });
    const st = await waitFailed(task, 'the launcher failed the task');
    assert.match(st.lastError, new RegExp(`replication slot "${slot}" of stopped task "${task}" was invalidated by PostgreSQL`));
  } finally {
    await resetSettings();
  }
  const resume = await psqlTry(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  assert.equal(resume.ok, false, 'resume-processing is refused');
  assert.match(resume.error, new RegExp(`ERROR: {2}replication slot "${slot}" of task "${task}" was invalidated`));
  assert.match(resume.error, /max_slot_wal_keep_size/);
  assert.match(resume.error, /HINT: {2}Start the task with reload-target/);
  await sql(`SELECT dms_stream.start_task(${lit(task)}, 'reload-target');`);
  await waitStreaming(task);
  assert.equal(await one(`SELECT wal_status <> 'lost' FROM pg_replication_slots WHERE slot_name = ${lit(slot)}`), 't');
  await sql(`INSERT INTO ${schema}.items VALUES (7, 'after');`);
  await waitIds(stream, [7]);
  await stopTask(task);
});

test('SlotName: a slot created beforehand is used; changes made before the start are streamed; drop_task keeps it', async () => {
  const schema = await makeSchema();
  const slotName = uniqueName('slt').replace(/-/g, '_').toLowerCase();
  slots.push(slotName);
  await sql(`SELECT pg_create_logical_replication_slot(${lit(slotName)}, 'dms_stream');
    INSERT INTO ${schema}.items VALUES (1, 'made after the slot, before the task');`);
  const { stream, task, slot } = await makeTask(schema, 'cdc', {
    src: { SlotName: slotName, HeartbeatEnable: true, HeartbeatSchema: `${schema}_other` },
  });
  assert.equal(slot, slotName, 'task_slot_name is the endpoint\'s SlotName');
  await sql(`INSERT INTO ${schema}.items VALUES (2, 'also before the start');
    SELECT dms_stream.start_task(${lit(task)});`);
  await waitStreaming(task);
  await sql(`INSERT INTO ${schema}.items VALUES (3, 'while streaming');`);
  const ids = await waitIds(stream, [1, 2, 3]);
  assert.deepEqual([...new Set(ids)].sort(), [1, 2, 3]);
  assert.deepEqual(await sql(`SELECT slot_name, active FROM dms_stream.replication_slot_lag WHERE task = ${lit(task)}`),
    [[slotName, 't']], 'the lag view shows the endpoint\'s slot');
  assert.ok(fs.existsSync(path.join(env.DMS_BED_PGDATA, 'pg_dms_stream', `${slotName}.cdc`)), 'the spool is named after the slot');
  await waitFor(async () => (await one(`SELECT count(*) FROM ${schema}_other.awsdms_heartbeat WHERE slot_name = ${lit(slotName)}`)) === '1',
    { what: 'heartbeat row for the slot' });
  assert.equal(Number(await one(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = dms_stream.task_own_slot_name(${lit(task)})`)), 0,
    'the task made no slot of its own');

  // A second task on the same slot cannot run at the same time.
  const second = await makeTask(schema, 'cdc', { src: { SlotName: slotName } });
  const clash = await psqlTry(`SELECT dms_stream.start_task(${lit(second.task)});`);
  assert.equal(clash.ok, false);
  assert.match(clash.error, new RegExp(`replication slot "${slotName}" is used by task "${task}"`));

  await stopTask(task);
  await sql(`INSERT INTO ${schema}.items VALUES (4, 'while stopped');
    SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  await waitStreaming(task);
  await waitIds(stream, [4]);
  await stopTask(task);
  await sql(`SELECT dms_stream.drop_task(${lit(task)});`);
  tasks.splice(tasks.indexOf(task), 1);
  assert.equal(await slotCount(slotName), 1, 'drop_task keeps a slot it did not create');
  assert.equal(await one(`SELECT plugin FROM pg_replication_slots WHERE slot_name = ${lit(slotName)}`), 'dms_stream');
});

test('SlotName: a missing slot, a slot of another plugin and full-load-and-cdc are refused clearly', async () => {
  const schema = await makeSchema(2);
  const missing = uniqueName('nosuch').replace(/-/g, '_').toLowerCase();
  const a = await makeTask(schema, 'cdc', { src: { SlotName: missing } });
  let r = await psqlTry(`SELECT dms_stream.start_task(${lit(a.task)});`);
  assert.equal(r.ok, false);
  assert.match(r.error, new RegExp(`ERROR: {2}replication slot "${missing}" named by SlotName of the source endpoint of task "${a.task}" does not exist`));
  assert.match(r.error, new RegExp(`HINT: .*SELECT pg_create_logical_replication_slot\\('${missing}', 'dms_stream'\\)`));

  const other = uniqueName('td').replace(/-/g, '_').toLowerCase();
  slots.push(other);
  await sql(`SELECT pg_create_logical_replication_slot(${lit(other)}, 'test_decoding');`);
  const b = await makeTask(schema, 'cdc', { src: { SlotName: other } });
  r = await psqlTry(`SELECT dms_stream.start_task(${lit(b.task)});`);
  assert.equal(r.ok, false);
  assert.match(r.error, new RegExp(`ERROR: {2}replication slot "${other}" .* uses output plugin "test_decoding", not "dms_stream"`));
  assert.equal(await slotCount(other), 1, 'the slot is left alone');

  const c = await makeTask(schema, 'full-load-and-cdc', { src: { SlotName: other } });
  assert.equal(c.made.ok, false, 'create_task refuses SlotName with full-load-and-cdc');
  assert.match(c.made.error, /ERROR: {2}SlotName cannot be used with migration type full-load-and-cdc/);
  assert.match(c.made.error, /HINT: .*migration type cdc/);

  // modify_task to full-load-and-cdc, and an endpoint that gains SlotName after the task was made: refused too.
  r = await psqlTry(`SELECT dms_stream.modify_task(${lit(b.task)}, 'full-load-and-cdc');`);
  assert.equal(r.ok, false);
  assert.match(r.error, /ERROR: {2}SlotName cannot be used with migration type full-load-and-cdc/);
  const e = await makeTask(schema, 'full-load-and-cdc');
  await sql(`SELECT dms_stream.alter_endpoint(${lit(`${e.task}-src`)}, ${lit(JSON.stringify({ SlotName: other }))});`);
  r = await psqlTry(`SELECT dms_stream.start_task(${lit(e.task)});`);
  assert.equal(r.ok, false);
  assert.match(r.error, new RegExp(`ERROR: {2}SlotName cannot be used with migration type full-load-and-cdc \\(task "${e.task}", slot "${other}"\\)`));
  assert.equal(await one(`SELECT status FROM dms_stream.task WHERE task_name = ${lit(e.task)}`), 'ready', 'not started');

  // full-load needs no slot: SlotName is not used and the slot is not touched.
  const d = await makeTask(schema, 'full-load', { src: { SlotName: missing } });
  assert.equal(d.made.ok, true, d.made.error);
  await sql(`SELECT dms_stream.start_task(${lit(d.task)});`);
  await waitFor(async () => (await status(d.task)).status === 'stopped', { timeoutMs: 60000, what: 'full load done' });
  assert.equal((await records(d.stream)).filter((x) => x.op === 'load').length, 2);
  assert.equal(await slotCount(missing), 0);
});
