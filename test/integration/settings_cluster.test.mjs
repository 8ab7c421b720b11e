// settings_cluster.test.mjs — settings that used to stop everything, on a
// throwaway cluster of its own (like preload.test.mjs):
//   - dms_stream.log_min_messages = error is a threshold, not the level the
//     progress lines are sent at: the launcher and a task keep running;
//     debug1 still writes the progress lines;
//   - the extension created in a database other than dms_stream.database:
//     start_task says so instead of leaving the task 'starting' for ever, and
//     the launcher logs once that the extension is missing in its database;
//   - max_worker_processes too small for the tasks: the waiting task's phase
//     names max_worker_processes, and the server log warns once.
// The cluster uses the bed's s3rver and kinesalite (through the proxies) for
// the tasks it runs; it is stopped and removed at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { env, run, sleep, waitFor, uniqueName, createBucket, createStream } from '../lib/bed.mjs';
import { lit, SEED_ETD, SEED_MAPPINGS } from '../lib/tasks.mjs';

const PGBIN = process.env.PGBIN || '/usr/lib/postgresql/15/bin';
let PORT;
let dir;
let data;
let started = false;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(String(port))); });
  });
}

function asPostgres(cmd, args) {
  return execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' });
}

const serverLog = () => readFileSync(join(dir, 'log'), 'utf8');
const count = (text, re) => (text.match(new RegExp(re.source, `${re.flags.replace('g', '')}g`)) ?? []).length;

/** psql against the throwaway cluster: {ok, rows, error}. */
async function q(sql, db = 'postgres') {
  const r = await run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-F', '\x1f', '-h', '127.0.0.1', '-p', PORT,
    '-U', 'postgres', '-d', db], { input: `\\set QUIET on\nSET client_min_messages = warning;\n${sql}` });
  const rows = r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n').map((l) => l.split('\x1f'));
  return { ok: r.status === 0, rows, error: r.stderr.trim() };
}
async function qq(sql, db) {
  const r = await q(sql, db);
  if (!r.ok) throw new Error(`psql failed: ${r.error}\n${sql}`);
  return r.rows;
}

/** An S3 CDC task (it polls an empty CdcPath: it keeps running) in database db. */
async function cdcTask(db = 'postgres') {
  const bucket = uniqueName('stc');
  const stream = uniqueName('stc');
  const task = uniqueName('task');
  await createBucket(bucket);
  await createStream(stream, 1);
  const src = { BucketName: bucket, CdcPath: 'changes', ExternalTableDefinition: JSON.stringify(SEED_ETD) };
  await qq(`SELECT dms_stream.create_endpoint(${lit(`${task}-src`)}, 's3', 'source', ${lit(JSON.stringify(src))}, ${lit(env.S3_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(`${task}-src`)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_endpoint(${lit(`${task}-tgt`)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream }))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(`${task}-tgt`)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(`${task}-src`)}, ${lit(`${task}-tgt`)}, 'cdc', ${lit(JSON.stringify(SEED_MAPPINGS))});`, db);
  return task;
}

async function status(task) {
  const rows = await qq(`SELECT status, coalesce(phase, ''), coalesce(worker_pid::text, '') FROM dms_stream.task_status WHERE task = ${lit(task)}`);
  const [st, phase, pid] = rows[0];
  return { status: st, phase, pid };
}

const launcherPid = async () => (await qq("SELECT pid FROM pg_stat_activity WHERE backend_type = 'dms_stream launcher'"))[0]?.[0];

before(async () => {
  PORT = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'dms-settings-'));
  chmodSync(dir, 0o777);
  data = join(dir, 'data');
  asPostgres(`${PGBIN}/initdb`, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  // Room for the launcher and one task worker, nothing else: no logical
  // replication launcher, no shipping process.
  const opts = [
    `-c port=${PORT}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories=${dir}`,
    '-c shared_preload_libraries=dms_stream', "-c dms_stream.database=postgres",
    '-c dms_stream.log_min_messages=error', '-c dms_stream.shipping_process=off',
    '-c dms_stream.poll_interval=1000', '-c max_worker_processes=2', '-c max_logical_replication_workers=0',
    '-c max_parallel_workers=0', '-c max_parallel_workers_per_gather=0',
    "-c log_line_prefix='%m [%p] '",
  ].join(' ');
  try {
    asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-l', join(dir, 'log'), '-w', 'start', '-o', opts]);
  } catch (e) {
    throw new Error(`${e.message}\n${readFileSync(join(dir, 'log'), 'utf8')}`);
  }
  started = true;
});

after(() => {
  if (started) asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-m', 'immediate', '-w', 'stop']);
  rmSync(dir, { recursive: true, force: true });
});

test('log_min_messages = error: the launcher runs (no crash loop), logs its progress line at LOG, and says once that the extension is missing', async () => {
  const pid = await waitFor(launcherPid, { timeoutMs: 20000, what: 'the launcher' });
  await waitFor(() => /LOG:  dms_stream launcher started in database "postgres"/.test(serverLog()),
    { timeoutMs: 10000, what: 'the launcher\'s progress line' });
  await sleep(7000); // longer than the launcher's restart interval (5 s), several naptimes
  const log = serverLog();
  assert.equal(await launcherPid(), pid, 'the same launcher process');
  assert.doesNotMatch(log, /ERROR:  dms_stream launcher/);
  assert.equal(count(log, /dms_stream launcher started in database/), 1);
  assert.equal(count(log, /extension dms_stream does not exist in database "postgres" \(dms_stream\.database\)/), 1,
    'the missing extension is logged once');
});

test('the extension in another database: start_task says where tasks run instead of leaving the task starting', async () => {
  await qq('CREATE DATABASE other');
  await qq('CREATE EXTENSION dms_stream', 'other');
  const task = await cdcTask('other');
  const r = await q(`SELECT dms_stream.start_task(${lit(task)})`, 'other');
  assert.ok(!r.ok, 'start_task must fail');
  assert.match(r.error, new RegExp(`task "${task}" cannot run: dms_stream runs tasks only in database "postgres"`));
  assert.match(r.error, /DETAIL:  The extension is created in database "other", but the launcher runs in the database named by dms_stream\.database \("postgres"\)/);
  assert.match(r.error, /HINT:  Create the extension and the task in database "postgres", or set dms_stream\.database = 'other'/);
  const st = await qq(`SELECT status, desired_state FROM dms_stream.task WHERE task_name = ${lit(task)}`, 'other');
  assert.deepEqual(st[0], ['ready', 'stopped'], 'nothing was changed');
});

test('too few max_worker_processes: the waiting task names it and the log warns once; log_min_messages = error never fails a task', async () => {
  await qq('CREATE EXTENSION dms_stream');
  const t1 = await cdcTask();
  const t2 = await cdcTask();
  await qq(`SELECT dms_stream.start_task(${lit(t1)})`);
  await waitFor(async () => (await status(t1)).status === 'running', { timeoutMs: 30000, what: `${t1} running` });
  await qq(`SELECT dms_stream.start_task(${lit(t2)})`);
  await waitFor(async () => (await status(t2)).phase === 'waiting for a free background worker (max_worker_processes)',
    { timeoutMs: 20000, what: `${t2} waiting for max_worker_processes` });
  await sleep(6000); // six passes of the launcher
  const log = serverLog();
  assert.equal(count(log, /WARNING:  dms_stream could not start a worker for task ".*": no background worker slot is free/), 1,
    'warned once, not at every pass');
  assert.match(log, /HINT:  Raise max_worker_processes \(a restart is needed\) to at least 5: the launcher, one per task worker \(dms_stream\.max_task_workers = 4\)/);
  assert.equal((await status(t2)).status, 'starting');

  // log_min_messages = error did not turn the task's progress line into an ERROR
  const s1 = await status(t1);
  assert.equal(s1.status, 'running');
  assert.doesNotMatch(log, /ERROR:  dms_stream task/);
  assert.match(log, new RegExp(`LOG:  dms_stream task "${t1}" started \\(run \\d+\\)`));
  const runs = await qq(`SELECT count(*) FROM dms_stream.run_history WHERE task_name = ${lit(t1)}`);
  assert.equal(runs[0][0], '1', 'one run: the worker never died');

  // debug1: the progress lines are still written (at LOG)
  await qq("ALTER SYSTEM SET dms_stream.log_min_messages = 'debug1'; SELECT pg_reload_conf();");
  await sleep(1500);
  await qq(`SELECT dms_stream.stop_task(${lit(t1)})`);
  await waitFor(async () => (await status(t2)).status === 'running', { timeoutMs: 30000, what: `${t2} started once the slot freed` });
  await waitFor(() => new RegExp(`LOG:  dms_stream task "${t2}" started \\(run \\d+\\)`).test(serverLog()),
    { timeoutMs: 10000, what: `${t2}'s progress line at debug1` });
  assert.match(serverLog(), new RegExp(`LOG:  dms_stream launcher started a worker for task "${t2}"`));
});
