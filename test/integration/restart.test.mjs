// Tasks come back by themselves (src/task_worker.c, src/launcher.c,
// src/kinesis_shipper.c): the restart matrix.
//
// Two tasks run side by side with continuous input: an S3-source CDC task
// (a CDC file of a few rows put into s3rver every 400 ms) and a postgres-source
// logical decoding task (a few rows inserted every 150 ms), both shipping
// through their shipping process.  Then, one after the other: pg_ctl restart
// -m fast, -m immediate, SIGKILL of each task's worker, SIGKILL of each
// task's shipping process, and three of those in a row.  After each, both
// tasks are running again by themselves with new workers and make progress;
// run_history says how each run ended: 'stopped', "server restarted" for a
// restart of the server and for the task whose process was not the one
// killed; 'failed', "the task's worker (shipping process) was killed or
// crashed" for the task whose process was.  At the end every input row is in
// the task's stream (nothing lost; a row sent twice only with the same event
// id and data), and stop_task ends each run 'stopped' ("stopped by
// dms_stream.stop_task()") with one LOG line and no FATAL line.
//
// Delta extracts (run by SQL or pg_cron, no worker): an extract cut by a
// fast or an immediate restart in the middle of its upload leaves its
// controller row as it was before the run (watermark and file number
// unmoved, last_status 'running' of a session that is gone), and the next
// run takes it over: it succeeds, removes the cut run's files and writes
// the same files a run without the restart would have.
//
// The crash guard: three crashes of a task's own worker without progress
// stop the task (a run row says why) but server restarts do not count, and
// start_task() runs it again.
//
// Run: test/check.sh --only restart

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  env, psqlTry, proxy, createBucket, createStream, listS3Keys, uniqueName, waitFor, sleep, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import { readParquetRows } from '../lib/delta.mjs';
import { lit, sql, one, seedRow, SEED_ETD, SEED_MAPPINGS, createS3Task } from '../lib/tasks.mjs';

/** The records, after the stream invariants (per-key order, repeats only of an event id). */
const assertRead = (recs) => { assertStreamInvariants(recs); return recs; };

const SERVER = ['stopped', 'server restarted'];
const WORKER_CRASH = ['failed', "the task's worker was killed or crashed"];
const SHIPPER_CRASH = ['failed', "the task's shipping process was killed or crashed"];
const STOPPED = ['stopped', 'stopped by dms_stream.stop_task()'];

const tasks = [];
const endpoints = [];
const s3p = proxy('s3');

/** pg_ctl as the postgres user (as test/bed/lib.sh runs it). */
function pgCtl(args) {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', `${env.PGBIN}/pg_ctl`, '-D', env.DMS_BED_PGDATA, ...args],
    { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Stop (mode fast or immediate) and start the bed's PostgreSQL. */
function pgRestart(mode) {
  pgCtl(['-m', mode, '-w', 'stop']);
  pgCtl(['-l', path.join(env.DMS_BED_PGRUN, 'pg.log'), '-w', '-t', '60', 'start']);
}

/** Pid of the task's process of backend_type type, or null. */
async function pidOf(task, type = 'dms_stream task') {
  const rows = await sql(`SELECT pid FROM pg_stat_activity WHERE backend_type = ${lit(type)} AND application_name = ${lit(task)}`)
    .catch(() => []);
  return rows.length ? Number(rows[0][0]) : null;
}

/** [status, message] of the task's runs, oldest first. */
async function runs(task) {
  return sql(`SELECT status, coalesce(message, '') FROM dms_stream.run_history
    WHERE run_kind = 'task' AND task_name = ${lit(task)} ORDER BY run_id`);
}

/** Something that changes whenever the task commits a checkpoint. */
async function checkpointMark(task) {
  return one(`SELECT coalesce(max(updated_at)::text, '') || sum(rows_sent)
    FROM dms_stream.task_checkpoint WHERE task_name = ${lit(task)}`);
}

/** Wait until the task runs with a worker other than oldPid and commits a new checkpoint. */
async function waitBack(task, oldPid, what) {
  const pid = await waitFor(async () => {
    const st = await one(`SELECT status FROM dms_stream.task WHERE task_name = ${lit(task)}`).catch(() => null);
    if (st === 'failed') throw new Error(`${task} failed: ${await one(`SELECT last_error FROM dms_stream.task WHERE task_name = ${lit(task)}`)}`);
    const p = await pidOf(task);
    return st === 'running' && p && p !== oldPid ? p : null;
  }, { timeoutMs: 90000, intervalMs: 250, what: `${task} running again after ${what}` });
  const mark = await checkpointMark(task);
  await waitFor(async () => (await checkpointMark(task)) !== mark,
    { timeoutMs: 60000, intervalMs: 250, what: `${task} progress after ${what}` });
  // Also a shipping process, which the matrix kills.
  await waitFor(() => pidOf(task, 'dms_stream shipper'), { timeoutMs: 30000, what: `${task} shipper` });
  return pid;
}

// ---------------------------------------------------------------- inputs

/**
 * Put a CDC file into s3rver's store at once (written aside, then renamed):
 * s3rver's own PUT creates the file empty and fills it, and a listing in
 * between shows it shorter than it is, which real S3 never does.
 */
function putAtomically(bucket, key, text) {
  const file = path.join(env.S3RVER_DIR, bucket, `${key}._S3rver_object`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.part`, text);
  fs.renameSync(`${file}.part`, file);
}

/** An S3-source CDC task and a writer uploading CDC files of new rows. */
async function s3Kind() {
  const made = await createS3Task({
    prefix: 'rst', migrationType: 'cdc', etd: SEED_ETD, mappings: SEED_MAPPINGS, s3: { CdcPath: 'changes' },
    settings: { TargetMetadata: { ParallelLoadThreads: 1, ParallelLoadBufferSize: 20 } },
  });
  tasks.push(made.task);
  endpoints.push(made.src, made.tgt);
  const ids = [];
  let n = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      n++;
      let text = '';
      const batch = [];
      for (let k = 0; k < 5; k++) {
        const i = 1000000 + n * 10 + k;
        text += `I,table01,schema01,${seedRow(i).csv}\n`;
        batch.push(i);
      }
      putAtomically(made.bucket, `changes/CDC${String(n).padStart(6, '0')}.csv`, text);
      ids.push(...batch);
      await sleep(400);
    }
  })();
  return {
    ...made,
    stopWriter: async () => { stop = true; await loop; },
    expected: async () => ids,
    /** Every record: {id, eventId, data}. */
    records: async () => assertRead(await streamRecords(made.stream)).map((r) => {
      const m = JSON.parse(r.Data.toString('utf8'));
      return { id: Number(m.data.id), eventId: m.metadata['event-id'], data: m.data };
    }),
  };
}

/** A postgres-source CDC task and a writer inserting rows. */
async function pgKind() {
  const schema = uniqueName('rst').replace(/-/g, '_');
  await sql(`CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.items (id bigint PRIMARY KEY, note text);
    CREATE SEQUENCE ${schema}.ids;`);
  const stream = uniqueName('rst');
  const task = uniqueName('pgtask');
  const src = `${task}-src`;
  const tgt = `${task}-tgt`;
  await createStream(stream, 1);
  const ks = { StreamName: stream, IncludeTransactionDetails: true };
  const mappings = {
    rules: [{
      'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one',
      'object-locator': { 'schema-name': schema, 'table-name': '%' }, 'rule-action': 'include',
    }],
  };
  const settings = { TargetMetadata: { ParallelLoadThreads: 1, ParallelLoadBufferSize: 20 } };
  await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify(ks))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, 'cdc', ${lit(JSON.stringify(mappings))}, ${lit(JSON.stringify(settings))});`);
  tasks.push(task);
  endpoints.push(src, tgt);
  let stop = false;
  let loop = null;
  const startWriter = () => { loop ??= (async () => {
    while (!stop) {
      // Fails while the server restarts; the table says what was committed.
      await psqlTry(`INSERT INTO ${schema}.items SELECT nextval('${schema}.ids'), 'row ' || g FROM generate_series(1, 3) g`);
      await sleep(150);
    }
  })(); };
  return {
    task, stream, schema, startWriter,
    stopWriter: async () => { stop = true; await loop; },
    expected: async () => (await sql(`SELECT id FROM ${schema}.items ORDER BY id`)).map((r) => Number(r[0])),
    records: async () => assertRead(await streamRecords(stream)).map((r) => {
      const m = JSON.parse(r.Data.toString('utf8'));
      return { id: Number(m.data.id), eventId: m.metadata['event-id'], data: m.data, op: m.metadata.operation };
    }).filter((r) => r.op === 'insert'),
  };
}

/** Every expected id is in the stream; a record sent twice has the same event id and data. */
function checkStream(name, recs, expected) {
  const byEvent = new Map();
  const ids = new Set();
  let duplicates = 0;
  for (const r of recs) {
    if (byEvent.has(r.eventId)) {
      duplicates++;
      assert.deepEqual(r.data, byEvent.get(r.eventId).data, `${name}: re-sent ${r.eventId} carries the same data`);
      continue;
    }
    byEvent.set(r.eventId, r);
    assert.ok(!ids.has(r.id), `${name}: row ${r.id} sent twice under different event ids`);
    ids.add(r.id);
  }
  const missing = expected.filter((i) => !ids.has(i));
  assert.deepEqual(missing, [], `${name}: every input row is in the stream`);
  assert.equal(ids.size, expected.length, `${name}: no row that was not input`);
  return duplicates;
}

before(async () => {
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
  await sql(`ALTER SYSTEM SET dms_stream.poll_interval = '500ms'; SELECT pg_reload_conf();`);
});

after(async () => {
  await psqlTry('ALTER SYSTEM RESET dms_stream.poll_interval; SELECT pg_reload_conf();');
  for (const t of tasks) await psqlTry(`UPDATE dms_stream.task SET desired_state = 'stopped' WHERE task_name = ${lit(t)};`);
  for (const t of tasks) {
    await waitFor(async () => !(await pidOf(t)), { timeoutMs: 30000, what: `worker of ${t} gone` }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped' WHERE task_name = ${lit(t)} AND status <> 'stopped';
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const e of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(e)});`);
});

test('restart matrix: both task kinds come back by themselves after every kind of restart, nothing lost', async () => {
  const s3 = await s3Kind();
  const pg = await pgKind();
  const kinds = [s3, pg];
  const expectRuns = new Map(kinds.map((k) => [k.task, []]));
  try {
    for (const k of kinds) await sql(`SELECT dms_stream.start_task(${lit(k.task)});`);
    // A cdc task streams the changes committed once it runs.
    await waitFor(async () => (await one(`SELECT phase FROM dms_stream.task_status WHERE task = ${lit(pg.task)}`))?.startsWith('cdc:'),
      { timeoutMs: 60000, what: 'postgres task streaming' });
    pg.startWriter();
    const pids = new Map();
    for (const k of kinds) pids.set(k.task, await waitBack(k.task, null, 'start'));

    /** One event; victim: the kind whose process is killed (null: the server restarts). */
    const event = async (what, fn, victim = null, crash = null) => {
      await fn();
      for (const k of kinds) {
        expectRuns.get(k.task).push(k === victim ? crash : SERVER);
        pids.set(k.task, await waitBack(k.task, pids.get(k.task), what));
        assert.deepEqual(await runs(k.task), [...expectRuns.get(k.task), ['running', '']],
          `${k.task} (${k === s3 ? 's3' : 'postgres'} source): run history after ${what}`);
      }
    };
    const killWorker = (k) => async () => process.kill(pids.get(k.task), 'SIGKILL');
    const killShipper = (k) => async () => {
      const p = await pidOf(k.task, 'dms_stream shipper');
      assert.ok(p, `${k.task} has a shipping process`);
      process.kill(p, 'SIGKILL');
    };

    await event('pg_ctl restart -m fast', async () => pgRestart('fast'));
    await event('pg_ctl restart -m immediate', async () => pgRestart('immediate'));
    await event('SIGKILL of the S3 task\'s worker', killWorker(s3), s3, WORKER_CRASH);
    await event('SIGKILL of the postgres task\'s worker', killWorker(pg), pg, WORKER_CRASH);
    await event('SIGKILL of the S3 task\'s shipper', killShipper(s3), s3, SHIPPER_CRASH);
    await event('SIGKILL of the postgres task\'s shipper', killShipper(pg), pg, SHIPPER_CRASH);
    // Three in a row, each after progress: the crash guard does not stop them.
    await event('a second SIGKILL of the postgres task\'s worker', killWorker(pg), pg, WORKER_CRASH);
    await event('a third SIGKILL of the postgres task\'s worker', killWorker(pg), pg, WORKER_CRASH);
    await event('a fourth SIGKILL of the postgres task\'s worker', killWorker(pg), pg, WORKER_CRASH);
    await event('another fast restart', async () => pgRestart('fast'));

    for (const k of kinds) await k.stopWriter();
    for (const k of kinds) {
      const want = await k.expected();
      await waitFor(async () => new Set((await k.records()).map((r) => r.id)).size >= want.length,
        { timeoutMs: 60000, intervalMs: 500, what: `${k.task}: all ${want.length} rows in the stream` })
        .catch(() => {}); // checkStream says which are missing
      const duplicates = checkStream(k.task, await k.records(), want);
      console.log(`${k.task}: ${want.length} rows, ${duplicates} re-sent`);
    }

    // stop_task: the run is 'stopped'; one LOG line, no FATAL line.
    const log = path.join(env.DMS_BED_PGRUN, 'pg.log');
    const from = fs.statSync(log).size;
    const stopped = new Map();
    for (const k of kinds) {
      stopped.set(k.task, [pids.get(k.task), await pidOf(k.task, 'dms_stream shipper')]);
      await sql(`SELECT dms_stream.stop_task(${lit(k.task)});`);
    }
    for (const k of kinds) {
      await waitFor(async () => (await one(`SELECT status FROM dms_stream.task WHERE task_name = ${lit(k.task)}`)) === 'stopped',
        { what: `${k.task} stopped` });
      assert.deepEqual(await runs(k.task), [...expectRuns.get(k.task), STOPPED]);
    }
    await sleep(500);
    const lines = fs.readFileSync(log).subarray(from).toString('utf8').split('\n');
    for (const k of kinds) {
      const [w, s] = stopped.get(k.task);
      const mine = lines.filter((l) => l.includes(`[${w}]`) || l.includes(`[${s}]`) || l.includes(`PID ${w})`) || l.includes(`PID ${s})`) || l.includes(k.task));
      assert.deepEqual(mine.filter((l) => /FATAL|ERROR|WARNING/.test(l)), [], `${k.task}: no FATAL, ERROR or WARNING at stop_task`);
      assert.equal(mine.filter((l) => l.includes(`dms_stream task "${k.task}" stopped as asked`)).length, 1,
        `${k.task}: one LOG line says it stopped`);
    }
  } finally {
    for (const k of kinds) await k.stopWriter();
  }
});

test('crash guard: only own crashes without progress count; start_task recovers the task', async () => {
  const made = await createS3Task({
    prefix: 'rstg', migrationType: 'cdc', etd: SEED_ETD, mappings: SEED_MAPPINGS, s3: { CdcPath: 'changes' },
  });
  tasks.push(made.task);
  endpoints.push(made.src, made.tgt);
  const { task } = made;
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  let pid = await waitFor(() => pidOf(task), { timeoutMs: 30000, what: 'worker' });
  const statusOf = () => one(`SELECT status || ' ' || desired_state FROM dms_stream.task WHERE task_name = ${lit(task)}`);
  const next = async (what) => {
    const p = await waitFor(async () => {
      const q = await pidOf(task);
      return q && q !== pid ? q : null;
    }, { timeoutMs: 90000, intervalMs: 250, what: `worker after ${what}` });
    pid = p;
    assert.equal(await statusOf(), 'running running', what);
  };
  // No input: no progress.  Two crashes, a server restart, two crashes:
  // never three own crashes in a row.
  process.kill(pid, 'SIGKILL');
  await next('crash 1');
  process.kill(pid, 'SIGKILL');
  await next('crash 2');
  pgRestart('immediate');
  await next('immediate restart');
  process.kill(pid, 'SIGKILL');
  await next('crash 3');
  process.kill(pid, 'SIGKILL');
  await next('crash 4');
  assert.deepEqual(await runs(task), [WORKER_CRASH, WORKER_CRASH, SERVER, WORKER_CRASH, WORKER_CRASH, ['running', '']]);
  // The third own crash in a row: the task is not run again.
  process.kill(pid, 'SIGKILL');
  const tripped = await waitFor(async () => {
    const st = await statusOf().catch(() => null);
    return st === 'failed stopped' ? st : null;
  }, { timeoutMs: 90000, intervalMs: 250, what: 'guard tripped' });
  assert.ok(tripped);
  assert.equal(await pidOf(task), null, 'no worker');
  const history = await runs(task);
  assert.deepEqual(history.slice(-2), [WORKER_CRASH,
    ['failed', "not run: the task's processes crashed in its last three runs without progress; dms_stream.start_task() runs it again"]]);
  assert.match(await one(`SELECT last_error FROM dms_stream.task WHERE task_name = ${lit(task)}`), /crashed three times in a row/);

  // start_task runs it again, and it works.
  await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  await waitFor(async () => (await statusOf()) === 'running running' && (await pidOf(task)), { timeoutMs: 30000, what: 'running after start_task' });
  putAtomically(made.bucket, 'changes/CDC000001.csv', `I,table01,schema01,${seedRow(7).csv}\n`);
  await waitFor(async () => (await streamRecords(made.stream)).length >= 1, { timeoutMs: 30000, what: 'the row after start_task' });
  await sleep(1500);
  assert.equal(await statusOf(), 'running running');
  assert.deepEqual((await runs(task)).slice(-1), [['running', '']]);
});

test('delta extract cut by a fast or an immediate restart: consistent controller row, the next run succeeds', async () => {
  const bucket = await createBucket(uniqueName('rstd'));
  const ep = uniqueName('rstlake');
  const schema = uniqueName('rstd').replace(/-/g, '_');
  await sql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, BucketFolder: 'lake/', DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    CREATE SCHEMA ${schema};`);
  const controller = async (target) => one(`SELECT last_status || ' ' || coalesce(watermark, '<null>') || ' ' || next_file_number
    FROM dms_stream.delta_load_controller WHERE target_table_name = ${lit(target)}`);
  try {
    for (const mode of ['fast', 'immediate']) {
      const target = `${schema}_${mode}`;
      const table = `src_${mode}`;
      // (The bed runs with synchronous_commit off: what comes just before an
      // immediate stop must be on disk.)
      await sql(`SET synchronous_commit = on;
        CREATE TABLE ${schema}.${table} (id int PRIMARY KEY, v text);
        INSERT INTO ${schema}.${table} SELECT g, 'v' || g FROM generate_series(1, 600) g;
        INSERT INTO dms_stream.delta_load_controller
          (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value,
           output_s3_prefix, target_endpoint, replication_task_settings)
        VALUES (${lit(target)}, ${lit(schema)}, ${lit(table)}, 'id', 'gte', '1', 'x', ${lit(ep)},
          ${lit(JSON.stringify({ DeltaLoadSettings: { MaxFileRows: 200 } }))});`);
      const folder = `lake/x/${schema}/${target}/`;
      // The third file's upload hangs: the restart comes in the middle of the run.
      await s3p.setFaults({ hang: true, match: { method: '^PUT$', path: `${folder}LOAD00000003` } });
      const run = new Promise((resolve) => {
        const child = spawn('psql', ['-X', '-q', '-c', 'SET synchronous_commit = on', '-c', `CALL dms_stream.run_delta_load(${lit(target)})`],
          { env: process.env, stdio: 'ignore' });
        child.on('close', resolve);
      });
      try {
        await waitFor(() => listS3Keys(bucket, folder).length === 2, { timeoutMs: 60000, what: 'two files uploaded' });
        pgRestart(mode);
      } finally {
        await s3p.setFaults({});
      }
      await run;
      assert.equal(await controller(target), 'running <null> 1', `${mode}: the controller row is as before the run`);
      assert.deepEqual(await sql(`SELECT status FROM dms_stream.run_history
        WHERE run_kind = 'delta' AND target_table_name = ${lit(target)}`), [['running']]);

      await sql(`DELETE FROM ${schema}.${table} WHERE id > 300`);
      const r = await psqlTry(`CALL dms_stream.run_delta_load(${lit(target)})`);
      assert.ok(r.ok, r.error);
      assert.equal(await controller(target), 'succeeded 300 3', `${mode}: the next run succeeded`);
      const h = await sql(`SELECT status, coalesce(message, '') FROM dms_stream.run_history
        WHERE run_kind = 'delta' AND target_table_name = ${lit(target)} ORDER BY run_id`);
      assert.deepEqual(h.map((x) => x[0]), ['failed', 'succeeded']);
      assert.match(h[0][1], /abandoned/);
      const keys = listS3Keys(bucket, folder);
      assert.deepEqual(keys, [`${folder}LOAD00000001.parquet`, `${folder}LOAD00000002.parquet`]);
      const back = await readParquetRows(keys.map((k) => path.join(env.S3RVER_DIR, bucket, `${k}._S3rver_object`)), { orderBy: 'id' });
      assert.deepEqual(back.map((x) => x.id), Array.from({ length: 300 }, (_, i) => i + 1));
    }
  } finally {
    await s3p.setFaults({});
    await psqlTry(`DELETE FROM dms_stream.delta_load_controller WHERE target_endpoint = ${lit(ep)};
      SELECT dms_stream.drop_endpoint(${lit(ep)}); DROP SCHEMA ${schema} CASCADE;`);
  }
});
