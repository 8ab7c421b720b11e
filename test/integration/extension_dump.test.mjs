// extension_dump.test.mjs — what DROP EXTENSION and pg_dump do to what
// dms_stream keeps outside its tables, seen by a DBA.
//
// A throwaway cluster of its own (dms_stream preloaded, its launcher in
// database postgres), so the extension can be dropped and databases dumped
// without touching the bed's cluster; tasks in it send to the bed's
// Kinesis proxy.
//
// DROP EXTENSION: refused while a task runs, naming it; once the task is
// stopped the drop takes the task's own replication slot and its spool
// files along (only when the drop commits: a rolled-back drop keeps them);
// a slot the user named with SlotName is kept, with a NOTICE.
//
// pg_dump: a database with endpoints (an S3 source with an external table
// definition, credentials), tasks and delta controller rows (one whose
// source table was dropped since) dumps and restores, plain through psql
// with ON_ERROR_STOP and custom-format through pg_restore --exit-on-error,
// into databases whose configuration tables equal the original's, row for
// row.
//
// Run: test/check.sh --only extension_dump
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { env, run, createStream, uniqueName, waitFor } from '../lib/bed.mjs';
import { lit, SEED_ETD, SEED_MAPPINGS } from '../lib/tasks.mjs';

const PGBIN = process.env.PGBIN || '/usr/lib/postgresql/15/bin';
let dir;
let data;
let port;
let started = false;

/** A port nobody listens on right now, from the kernel. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port: p } = srv.address(); srv.close(() => resolve(String(p))); });
  });
}

function asPostgres(cmd, args) {
  return execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' });
}

/** psql against the throwaway cluster: {ok, rows, stdout, stderr}. */
async function q(sql, { db = 'postgres' } = {}) {
  const r = await run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-F', '\x1f', '-h', '127.0.0.1', '-p', port,
    '-U', 'postgres', '-d', db], { input: `\\set QUIET on\n${sql}` });
  const rows = r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n').map((l) => l.split('\x1f'));
  return { ok: r.status === 0, rows, stdout: r.stdout, stderr: r.stderr };
}
async function qq(sql, opts) {
  const r = await q(sql, opts);
  if (!r.ok) throw new Error(`psql failed: ${r.stderr}\n-- SQL:\n${sql}`);
  return r.rows;
}
const one = async (sql, opts) => (await qq(sql, opts)).at(-1)?.[0];

/** Run a server program (pg_dump, pg_restore, createdb) of the bed's PostgreSQL. */
async function tool(name, args) {
  const r = await run(`${PGBIN}/${name}`, ['-h', '127.0.0.1', '-p', port, '-U', 'postgres', ...args]);
  return r;
}

before(async () => {
  port = await freePort();
  dir = fs.mkdtempSync(join(tmpdir(), 'dms-extdump-'));
  fs.chmodSync(dir, 0o777);
  data = join(dir, 'data');
  asPostgres(`${PGBIN}/initdb`, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  fs.appendFileSync(join(data, 'postgresql.conf'), [
    `port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${dir}'`,
    "shared_preload_libraries = 'dms_stream'", 'wal_level = logical', 'max_replication_slots = 8',
    'max_wal_senders = 8', 'max_worker_processes = 16', "dms_stream.database = 'postgres'",
    "output_plugin_libraries = 'dms_stream'", 'dms_stream.naptime = 200', 'fsync = off', "timezone = 'UTC'", '',
  ].join('\n'));
  try {
    asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-l', join(dir, 'log'), '-w', 'start']);
  } catch (e) {
    throw new Error(`${e.message}\n${fs.readFileSync(join(dir, 'log'), 'utf8')}`);
  }
  started = true;
});

after(() => {
  if (started) asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-m', 'immediate', '-w', 'stop']);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Files in the cluster's spool directory whose name starts with one of the slots. */
function spoolFiles(slots) {
  const spool = join(data, 'pg_dms_stream');
  if (!fs.existsSync(spool)) return [];
  return fs.readdirSync(spool).filter((f) => slots.some((s) => f.startsWith(`${s}.`)));
}

const slotNames = async () => (await qq('SELECT slot_name FROM pg_replication_slots ORDER BY 1')).map((r) => r[0]);

test('DROP EXTENSION is refused while a task runs, then takes the task\'s own slot and spool files, keeps a SlotName slot', { timeout: 180000 }, async () => {
  const stream = uniqueName('extdrop');
  await createStream(stream, 1);
  const ks = { StreamName: stream, IncludeTransactionDetails: true };
  const mappings = {
    rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one',
      'object-locator': { 'schema-name': 'app', 'table-name': '%' }, 'rule-action': 'include' }],
  };
  await qq(`CREATE EXTENSION dms_stream;
    CREATE SCHEMA app; CREATE TABLE app.items (id int PRIMARY KEY, v text);
    SELECT pg_create_logical_replication_slot('users_own_slot', 'dms_stream');
    SELECT dms_stream.create_endpoint('src', 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint('src-named', 'postgres', 'source', '{"SlotName": "users_own_slot"}');
    SELECT dms_stream.create_endpoint('tgt', 'kinesis', 'target', ${lit(JSON.stringify(ks))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials('tgt', ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task('t-own', 'src', 'tgt', 'full-load-and-cdc', ${lit(JSON.stringify(mappings))});
    SELECT dms_stream.create_task('t-named', 'src-named', 'tgt', 'cdc', ${lit(JSON.stringify(mappings))});
    INSERT INTO app.items SELECT g, 'v' || g FROM generate_series(1, 50) g;
    SELECT dms_stream.start_task('t-own');`);
  const own = await one("SELECT dms_stream.task_own_slot_name('t-own')");
  await waitFor(async () => (await one("SELECT status FROM dms_stream.task_status WHERE task = 't-own'")) === 'running'
    && (await slotNames()).includes(own), { timeoutMs: 60000, what: 't-own running with its slot' });
  await qq("INSERT INTO app.items VALUES (51, 'cdc')");

  // Refused while it runs, naming the task and how to stop it.
  const refused = await q('DROP EXTENSION dms_stream');
  assert.equal(refused.ok, false, 'DROP EXTENSION must be refused while a task runs');
  assert.match(refused.stderr, /cannot drop extension dms_stream while tasks run/);
  assert.match(refused.stderr, /DETAIL:\s+Running or starting: 't-own'\./);
  assert.match(refused.stderr, /HINT:\s+Stop them first with SELECT dms_stream\.stop_task/);

  await qq("SELECT dms_stream.stop_task('t-own')");
  await waitFor(async () => (await one("SELECT status FROM dms_stream.task_status WHERE task = 't-own'")) === 'stopped',
    { timeoutMs: 60000, what: 't-own stopped' });
  // Spool files of both tasks' slots (a stopped full-load-and-cdc task may
  // have removed its own; these stand for what an interrupted task leaves).
  fs.mkdirSync(join(data, 'pg_dms_stream'), { recursive: true });
  for (const f of [`${own}.cdc`, 'users_own_slot.cdc']) fs.writeFileSync(join(data, 'pg_dms_stream', f), 'x');

  // A drop rolled back keeps everything.
  await qq('BEGIN; DROP EXTENSION dms_stream; ROLLBACK;');
  assert.deepEqual((await slotNames()).filter((s) => s === own || s === 'users_own_slot'), [own, 'users_own_slot'].sort());
  assert.equal(spoolFiles([own, 'users_own_slot']).length, 2);
  // So does a drop that fails on a dependent object.
  await qq('CREATE VIEW public.uses_dms AS SELECT * FROM dms_stream.task_status');
  const dependent = await q('DROP EXTENSION dms_stream');
  assert.equal(dependent.ok, false);
  assert.ok((await slotNames()).includes(own), 'a failed DROP must not drop the slot');
  await qq('DROP VIEW public.uses_dms');

  const dropped = await q('DROP EXTENSION dms_stream');
  assert.equal(dropped.ok, true, dropped.stderr);
  assert.match(dropped.stderr, /NOTICE:\s+replication slot "users_own_slot" is kept/);
  assert.match(dropped.stderr, /SlotName of endpoint "src-named"/);
  const left = await slotNames();
  assert.ok(!left.includes(own), `the task's own slot ${own} must be dropped with the extension (left: ${left})`);
  assert.ok(left.includes('users_own_slot'), 'the SlotName slot is the user\'s and stays');
  assert.deepEqual(spoolFiles([own, 'users_own_slot']), [], 'spool files of the tasks\' slots are removed');

  // The extension can be created again and works.
  await qq("CREATE EXTENSION dms_stream; SELECT pg_drop_replication_slot('users_own_slot');");
  assert.equal(await one('SELECT count(*) FROM dms_stream.task'), '0');
  await qq('DROP EXTENSION dms_stream; DROP SCHEMA app CASCADE;');
});

/** Every configuration table of a database, as sorted row texts. */
async function configTables(db) {
  const out = {};
  for (const t of ['endpoint', 'endpoint_credential', 'external_table', 'external_column', 'task',
    'delta_load_controller']) {
    out[t] = (await qq(`SELECT x::text FROM dms_stream.${t} x ORDER BY 1`, { db })).map((r) => r[0]);
  }
  return out;
}

test('pg_dump and restore (plain with psql, custom with pg_restore) round-trip the configuration, a controller row whose table was dropped included', { timeout: 180000 }, async () => {
  const db = 'dms_dump_src';
  assert.equal((await tool('createdb', [db])).status, 0);
  const s3src = { BucketName: 'dumpbucket', ExternalTableDefinition: JSON.stringify(SEED_ETD), CsvDelimiter: ',', CdcPath: 'changes' };
  await qq(`CREATE EXTENSION dms_stream;
    SELECT dms_stream.create_endpoint('s3src', 's3', 'source', ${lit(JSON.stringify(s3src))}, ${lit(env.S3_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials('s3src', 'AKIDDUMPTEST', 'dump/secret+key');
    SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s", "PartitionIncludeSchemaTable": true}', ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.create_endpoint('pgsrc', 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake", "DataFormat": "parquet"}', ${lit(env.S3_PROXY_URL)});
    SELECT dms_stream.create_task('s3task', 's3src', 'kin', 'full-load-and-cdc', ${lit(JSON.stringify(SEED_MAPPINGS))}, '{"TargetMetadata": {"BatchApplyEnabled": false}}');
    SELECT dms_stream.create_task('pgtask', 'pgsrc', 'kin', 'cdc', ${lit(JSON.stringify(SEED_MAPPINGS))});
    CREATE SCHEMA sales;
    CREATE TABLE sales.orders (id bigint PRIMARY KEY, updated_at timestamptz);
    CREATE TABLE sales.gone (id int, ts date);
    INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value,
       end_value, output_s3_prefix, target_endpoint, watermark)
    VALUES ('orders', 'sales', 'orders', 'updated_at', 'gte', '2024-01-01', NULL, 'raw/sales', 'lake', '2024-06-01 00:00:00+00'),
           ('gone', 'sales', 'gone', 'ts', 'between', '2024-01-01', '2024-12-31', 'raw/gone', 'lake', NULL);
    DROP TABLE sales.gone;`, { db });
  const original = await configTables(db);
  assert.ok(original.external_column.length === 5 && original.delta_load_controller.length === 2,
    'the source database holds what the test dumps');

  const plain = join(dir, 'dump.sql');
  const custom = join(dir, 'dump.custom');
  let r = await tool('pg_dump', ['-d', db, '-f', plain]);
  assert.equal(r.status, 0, r.stderr);
  r = await tool('pg_dump', ['-d', db, '-Fc', '-f', custom]);
  assert.equal(r.status, 0, r.stderr);

  // Plain dump through psql, stopping at the first error.
  assert.equal((await tool('createdb', ['dms_dump_plain'])).status, 0);
  r = await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', port, '-U', 'postgres',
    '-d', 'dms_dump_plain', '-f', plain]);
  assert.equal(r.status, 0, `plain restore failed:\n${r.stderr}`);
  assert.match(r.stderr, /WARNING:\s+controller row "gone" kept without its source/);
  assert.deepEqual(await configTables('dms_dump_plain'), original);

  // Custom dump through pg_restore, stopping at the first error.
  assert.equal((await tool('createdb', ['dms_dump_custom'])).status, 0);
  r = await tool('pg_restore', ['--exit-on-error', '-d', 'dms_dump_custom', custom]);
  assert.equal(r.status, 0, `pg_restore failed:\n${r.stderr}`);
  assert.deepEqual(await configTables('dms_dump_custom'), original);

  // Outside a restore the same row is still refused with the clear error.
  const refused = await q(`INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value,
       output_s3_prefix, target_endpoint) VALUES ('gone2', 'sales', 'gone', 'ts', 'gte', '2024-01-01', 'raw/x', 'lake')`,
  { db: 'dms_dump_custom' });
  assert.equal(refused.ok, false);
  assert.match(refused.stderr, /source table sales\.gone does not exist/);
  // The credential survived the round trip and stays unreadable to PUBLIC.
  assert.equal(await one("SELECT access_key_id FROM dms_stream.endpoint_credential WHERE endpoint_name = 's3src'",
    { db: 'dms_dump_custom' }), 'AKIDDUMPTEST');
  assert.equal(await one("SELECT has_table_privilege('public', 'dms_stream.endpoint_credential', 'SELECT')",
    { db: 'dms_dump_custom' }), 'f');
});
