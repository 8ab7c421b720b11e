// No row data or secrets where non-admins can read them (issue 11 point 5).
//
// Covered: a task that stops at a rejected row whose value is a marker
// string (DataErrorPolicy STOP_TASK) and one that logs such rows (LOG_ERROR):
// the marker is in dms_stream.apply_exceptions (admin only) and in no table
// or view every role can read (task, task_status, run_history, ...); a delta
// load failing with an error that quotes a value: the value is in
// apply_exceptions, not in the controller row, run_history or the NOTIFY
// payload a LISTENing client receives; set_endpoint_credentials with values
// that break the table's checks: the error names the problem and never the
// secret; endpoint_url with user:password refused without echoing it; a
// heartbeat table in a schema a non-superuser owns refused; the README's
// recipe for setting credentials keeps the secret out of the server log.
//
// Run: test/check.sh --only security (bed started by check.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { env, psqlTry, run, aws, createBucket, createStream, uniqueName, waitFor } from '../lib/bed.mjs';
import { lit, sql, createS3Task, taskStatus, seedRow, SEED_ETD, SEED_MAPPINGS } from '../lib/tasks.mjs';
import { notifications } from '../lib/delta.mjs';

const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const READER = 'regress_sec_reader';
const tasks = [];
const endpoints = [];
const cleanup = [];
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dms-security-'));
  await sql(`CREATE EXTENSION IF NOT EXISTS dms_stream;
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${READER}') THEN CREATE ROLE ${READER} LOGIN; END IF;
    END $$;`);
});

after(async () => {
  for (const t of tasks) {
    await psqlTry(`${PRE}SELECT dms_stream.stop_task(${lit(t)});`);
  }
  for (const t of tasks) {
    await waitFor(async () => ['stopped', 'failed', 'ready'].includes((await taskStatus(t)).status),
      { timeoutMs: 60000, what: `task ${t} stopped` }).catch(() => {});
    await psqlTry(`${PRE}SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const e of endpoints) await psqlTry(`${PRE}SELECT dms_stream.drop_endpoint(${lit(e)});`);
  for (const q of cleanup) await psqlTry(PRE + q);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Every row of every relation of schema dms_stream that READER may SELECT, as text. */
async function readableByEveryone() {
  const rels = await sql(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'dms_stream' AND c.relkind IN ('r', 'v')
      AND has_table_privilege('${READER}', c.oid, 'SELECT') ORDER BY 1`);
  assert.ok(rels.some((r) => r[0] === 'task_status'), 'task_status is readable by everybody');
  assert.ok(!rels.some((r) => r[0] === 'apply_exceptions'), 'apply_exceptions is not');
  let text = '';
  for (const [rel] of rels) {
    const rows = await sql(`SELECT t::text FROM dms_stream.${rel} t`);
    text += `${rel}: ${rows.map((r) => r[0]).join('\n')}\n`;
  }
  return text;
}

async function upload(bucket, key, text) {
  const file = path.join(tmp, `${bucket}-${key.replace(/\//g, '_')}`);
  fs.writeFileSync(file, text);
  await aws(['s3', 'cp', '--only-show-errors', file, `s3://${bucket}/${key}`], { endpoint: env.S3_PROXY_URL });
}

async function waitStatus(task, wanted) {
  return waitFor(async () => {
    const s = await taskStatus(task);
    return wanted.includes(s.status) ? s : null;
  }, { timeoutMs: 120000, intervalMs: 200, what: `task ${task} ${wanted.join('|')}` });
}

test('a rejected row\'s value is in apply_exceptions only, never in what every role reads', async () => {
  const marker = `ROWSECRET${Date.now().toString(36)}`;
  const bad = `2020-08-03 23:59:59,10.1000/x,${marker},1.00,s`;
  const runs = [];
  for (const policy of ['STOP_TASK', 'LOG_ERROR']) {
    const made = await createS3Task({
      prefix: 'sec', etd: SEED_ETD, mappings: SEED_MAPPINGS, settings: { ErrorBehavior: { DataErrorPolicy: policy } },
    });
    tasks.push(made.task);
    endpoints.push(made.src, made.tgt);
    await upload(made.bucket, 'schema01/table01/full_000', `${seedRow(1).csv}\n${seedRow(2).csv}\n${bad}\n${seedRow(3).csv}\n`);
    await sql(`SELECT dms_stream.start_task(${lit(made.task)});`);
    runs.push({ policy, ...made });
  }
  const stopped = await waitStatus(runs[0].task, ['stopped', 'failed']);
  assert.equal(stopped.status, 'failed');
  assert.match(stopped.lastError, new RegExp(`s3://${runs[0].bucket}/schema01/table01/full_000 line 3 column 3`));
  assert.ok(!stopped.lastError.includes(marker), `last_error: ${stopped.lastError}`);
  const logged = await waitStatus(runs[1].task, ['stopped', 'failed']);
  assert.equal(logged.status, 'stopped', logged.lastError);

  for (const r of runs) {
    const ex = await sql(`SELECT error || ' ' || coalesce(raw_data, '') FROM dms_stream.apply_exceptions WHERE task_name = ${lit(r.task)}`);
    assert.ok(ex.some((e) => e[0].includes(marker)), `${r.policy}: the value is in apply_exceptions: ${JSON.stringify(ex)}`);
  }
  const everyone = await readableByEveryone();
  for (const r of runs) assert.ok(everyone.includes(r.task), 'the tasks are there');
  assert.ok(!everyone.includes(marker), `the marker is in a table every role reads:\n${everyone.split('\n').filter((l) => l.includes(marker)).join('\n')}`);
});

test('a delta load failing on a value: not in the controller row, run_history or NOTIFY payloads', async () => {
  const marker = `DELTASECRET${Date.now().toString(36)}`;
  const schema = `sec_${Date.now().toString(36)}`;
  const target = `sec_delta_${Date.now().toString(36)}`;
  const bucket = await createBucket(uniqueName('secdelta'));
  const ep = uniqueName('seclake');
  endpoints.push(ep);
  cleanup.push(`DELETE FROM dms_stream.delta_load_controller WHERE target_table_name = ${lit(target)};
    DELETE FROM dms_stream.run_history WHERE target_table_name = ${lit(target)};
    SELECT dms_stream.drop_endpoint(${lit(ep)}); DROP SCHEMA IF EXISTS ${schema} CASCADE;`);
  // The filter column was text when the controller row was written; it is an
  // integer now, so the run cannot read start_value: invalid input syntax
  // for type integer, quoting the value.
  await sql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.t (k text PRIMARY KEY, v text);
    INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value,
       output_s3_prefix, target_endpoint)
    VALUES (${lit(target)}, ${lit(schema)}, 't', 'k', 'gte', ${lit(marker)}, 'p', ${lit(ep)});
    ALTER TABLE ${schema}.t ALTER COLUMN k TYPE integer USING 0;`);
  const r = await psqlTry(`${PRE}LISTEN dms_stream_delta_load;\nCALL dms_stream.run_delta_load(${lit(target)});\nSELECT 1;`);
  assert.equal(r.ok, false, 'the run fails');
  assert.match(r.error, new RegExp(marker), 'the caller (an admin) sees the whole error');
  const notes = notifications(r.rows.map((x) => x.join('|')).join('\n'));
  assert.equal(notes.length, 1, `one NOTIFY: ${JSON.stringify(r.rows)}`);
  assert.equal(notes[0].status, 'failed');
  assert.match(notes[0].error, /SQLSTATE 22P02/);
  assert.ok(!JSON.stringify(notes[0]).includes(marker), `NOTIFY payload: ${JSON.stringify(notes[0])}`);
  const ex = await sql(`SELECT error FROM dms_stream.apply_exceptions WHERE target_table_name = ${lit(target)}`);
  assert.ok(ex.some((e) => e[0].includes(marker)), `the error is in apply_exceptions: ${JSON.stringify(ex)}`);
  const everyone = await readableByEveryone();
  const history = await sql(`SELECT message FROM dms_stream.run_history WHERE target_table_name = ${lit(target)}`);
  assert.match(history[0][0], /SQLSTATE 22P02/);
  // start_value itself is configuration every role may read: look elsewhere.
  const lines = everyone.split('\n').filter((l) => l.includes(marker) && !l.startsWith('delta_load_controller: ('));
  assert.deepEqual(lines, [], 'the marker is only in the controller row\'s start_value');
  const [lastError] = (await sql(`SELECT last_error FROM dms_stream.delta_load_controller WHERE target_table_name = ${lit(target)}`))[0];
  assert.ok(!lastError.includes(marker), `controller last_error: ${lastError}`);
});

/** psql's error text (VERBOSITY verbose: message, detail, hint, context) of q, or '' if it worked. */
async function errorOf(q, opts) {
  const r = await psqlTry(`\\set QUIET on\n\\set VERBOSITY verbose\n\\set SHOW_CONTEXT always\n${q}`, opts);
  return r.ok ? '' : r.error;
}

test('set_endpoint_credentials: a value the table refuses is named without echoing the secret', async () => {
  const ep = uniqueName('seccred');
  endpoints.push(ep);
  await sql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 'kinesis', 'target', '{"StreamName": "s"}');`);
  const secret = `CREDSECRET${Date.now().toString(36)}`;
  const cases = [
    [`SELECT dms_stream.set_endpoint_credentials(${lit(ep)}, 'AK-ID!', ${lit(secret)})`, /invalid access_key_id for endpoint/],
    [`SELECT dms_stream.set_endpoint_credentials(${lit(ep)}, 'AKIDOK', ${lit(secret.repeat(60))})`, /invalid secret_access_key for endpoint/],
    [`SELECT dms_stream.set_endpoint_credentials(${lit(ep)}, ${lit(secret)}, '')`, /invalid (access_key_id|secret_access_key) for endpoint/],
    // plain SQL by an admin goes through the same checks
    [`INSERT INTO dms_stream.endpoint_credential (endpoint_name, access_key_id, secret_access_key) VALUES (${lit(ep)}, 'a b', ${lit(secret)})`, /invalid access_key_id for endpoint/],
    [`INSERT INTO dms_stream.endpoint_credential (endpoint_name, access_key_id, secret_access_key, session_token) VALUES (${lit(ep)}, NULL, ${lit(secret)}, ${lit(secret)})`, /must both be given/],
  ];
  for (const [q, want] of cases) {
    const err = await errorOf(`${q};`);
    assert.ok(err, `refused: ${q}`);
    assert.match(err, want);
    assert.ok(!err.includes(secret), `the error echoes the secret: ${err}`);
    assert.doesNotMatch(err, /Failing row contains/);
  }
  assert.equal((await sql(`SELECT count(*) FROM dms_stream.endpoint_credential WHERE endpoint_name = ${lit(ep)}`))[0][0], '0');
});

test('an endpoint_url with user:password is refused without echoing it', async () => {
  const ep = uniqueName('securl');
  const password = `URLSECRET${Date.now().toString(36)}`;
  for (const url of [`http://user:${password}@127.0.0.1:9000`, `https://${password}@s3.example.com/`]) {
    const err = await errorOf(`SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'source', '{"BucketName": "b", "ExternalTableDefinition": ${JSON.stringify(JSON.stringify(SEED_ETD)).replace(/'/g, "''")}}', ${lit(url)});`);
    assert.match(err, /the endpoint URL of endpoint ".*" contains a user name or password/);
    assert.match(err, /HINT: {2}Remove "user:password@" from the URL/);
    assert.ok(!err.includes(password), err);
  }
  endpoints.push(ep);
  await sql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 'kinesis', 'target', '{"StreamName": "s"}', 'http://127.0.0.1:9000');`);
  const err = await errorOf(`SELECT dms_stream.alter_endpoint(${lit(ep)}, endpoint_url => ${lit(`http://k:${password}@127.0.0.1:9000`)});`);
  assert.match(err, /contains a user name or password/);
  assert.ok(!err.includes(password), err);
  assert.equal((await sql(`SELECT endpoint_url FROM dms_stream.endpoint WHERE endpoint_name = ${lit(ep)}`))[0][0], 'http://127.0.0.1:9000');
});

test('the heartbeat is never written as a superuser where a user can put code', async () => {
  const base = uniqueName('sechb').replace(/-/g, '_');
  const user = `${base}_u`;
  const userSchema = `${base}_mine`;
  const trapSchema = `${base}_trap`;
  cleanup.push(`DROP SCHEMA IF EXISTS ${base} CASCADE; DROP SCHEMA IF EXISTS ${userSchema} CASCADE;
    DROP SCHEMA IF EXISTS ${trapSchema} CASCADE; DROP TABLE IF EXISTS public.${base}_ran; DROP ROLE IF EXISTS ${user};`);
  // userSchema belongs to a user; trapSchema to the superuser, but the user
  // made awsdms_heartbeat there first, with a trigger that records who ran it.
  await sql(`CREATE ROLE ${user};
    CREATE SCHEMA ${base}; CREATE TABLE ${base}.items (id int PRIMARY KEY);
    CREATE SCHEMA ${userSchema} AUTHORIZATION ${user};
    CREATE SCHEMA ${trapSchema}; GRANT USAGE, CREATE ON SCHEMA ${trapSchema} TO ${user};
    CREATE TABLE public.${base}_ran (who text, super text); GRANT INSERT ON public.${base}_ran TO PUBLIC;
    SET ROLE ${user};
    CREATE TABLE ${trapSchema}.awsdms_heartbeat (slot_name text PRIMARY KEY, heartbeat_timestamp timestamptz NOT NULL);
    CREATE FUNCTION ${trapSchema}.f() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN INSERT INTO public.${base}_ran VALUES (current_user, current_setting('is_superuser')); RETURN NEW; END $f$;
    CREATE TRIGGER t BEFORE INSERT OR UPDATE ON ${trapSchema}.awsdms_heartbeat FOR EACH ROW EXECUTE FUNCTION ${trapSchema}.f();
    RESET ROLE;`);
  const mappings = { rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one', 'object-locator': { 'schema-name': base, 'table-name': '%' }, 'rule-action': 'include' }] };
  for (const [schema, want] of [
    [userSchema, new RegExp(`HeartbeatSchema "${userSchema}" of the source endpoint of task ".*" is owned by a role that is not a superuser`)],
    [trapSchema, new RegExp(`heartbeat table ${trapSchema}.awsdms_heartbeat of task ".*" is not safe to write`)],
  ]) {
    const task = uniqueName('sechbt');
    const src = `${task}-src`;
    const tgt = `${task}-tgt`;
    tasks.push(task);
    endpoints.push(src, tgt);
    await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 'postgres', 'source', ${lit(JSON.stringify({ HeartbeatEnable: true, HeartbeatSchema: schema }))});
      SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: task }))}, ${lit(env.KINESIS_PROXY_URL)});
      SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
      SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, 'cdc', ${lit(JSON.stringify(mappings))}, '{}');
      SELECT dms_stream.start_task(${lit(task)});`);
    const s = await waitFor(async () => {
      const st = await taskStatus(task);
      return st.status === 'failed' ? st : null;
    }, { timeoutMs: 90000, intervalMs: 300, what: `task ${task} failed` });
    assert.match(s.lastError, want);
  }
  // A schema of pg_database_owner (as public is) stands for the database's owner, a superuser here: written.
  const dbOwnerSchema = `${base}_dbo`;
  cleanup.push(`DROP SCHEMA IF EXISTS ${dbOwnerSchema} CASCADE;`);
  await sql(`CREATE SCHEMA ${dbOwnerSchema} AUTHORIZATION pg_database_owner;`);
  {
    const task = uniqueName('sechbt');
    const src = `${task}-src`;
    const tgt = `${task}-tgt`;
    tasks.push(task);
    endpoints.push(src, tgt);
    await createStream(task, 1);
    await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 'postgres', 'source', ${lit(JSON.stringify({ HeartbeatEnable: true, HeartbeatSchema: dbOwnerSchema }))});
      SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: task }))}, ${lit(env.KINESIS_PROXY_URL)});
      SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
      SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, 'cdc', ${lit(JSON.stringify(mappings))}, '{}');
      SELECT dms_stream.start_task(${lit(task)});`);
    await waitFor(async () => {
      const st = await taskStatus(task);
      assert.notEqual(st.status, 'failed', st.lastError);
      return (await sql(`SELECT to_regclass('${dbOwnerSchema}.awsdms_heartbeat') IS NOT NULL
        AND EXISTS (SELECT 1 FROM ${dbOwnerSchema}.awsdms_heartbeat)`).catch(() => [['f']]))[0][0] === 't';
    }, { timeoutMs: 90000, intervalMs: 300, what: `heartbeat row of ${task}` });
  }
  assert.deepEqual(await sql(`SELECT * FROM public.${base}_ran`), [], 'the user\'s trigger never ran');
  assert.equal((await sql(`SELECT count(*) FROM pg_class WHERE relname = 'awsdms_heartbeat' AND relnamespace = ${lit(userSchema)}::regnamespace`))[0][0], '0',
    'no table was created in the user\'s schema');
});

/** The text pg.log gained while fn ran. */
async function logDuring(fn) {
  const file = path.join(env.DMS_BED_DIR, 'pgrun', 'pg.log');
  const start = fs.statSync(file).size;
  await fn();
  await sql('SELECT pg_sleep(0.5)');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(fs.statSync(file).size - start);
  fs.readSync(fd, buf, 0, buf.length, start);
  fs.closeSync(fd);
  return buf.toString();
}

test('the README\'s ways of setting keys keep the secret out of the server log', async () => {
  const ep = uniqueName('seclog');
  const role = `${ep.replace(/-/g, '_')}_keys`;
  endpoints.push(ep);
  cleanup.push(`DROP ROLE IF EXISTS ${role};`);
  await sql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 'kinesis', 'target', '{"StreamName": "s"}');
    CREATE ROLE ${role} LOGIN IN ROLE dms_stream_admin;`);
  const tag = Date.now().toString(36);
  const set = (secret) => `SELECT dms_stream.set_endpoint_credentials(${lit(ep)}, 'AKIDLOGTEST', ${lit(secret)});`;
  const fail = (secret) => `SELECT dms_stream.set_endpoint_credentials(${lit(`${ep}-none`)}, 'AKIDLOGTEST', ${lit(secret)});`;
  // A server that logs every statement (and, by default, failed ones).
  await sql(`ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf();`);
  try {
    await sql('SELECT pg_sleep(0.5)');
    // Without the recipe both secrets land in the log: the check below can see them.
    let log = await logDuring(async () => {
      await psqlTry(`${set(`PLAINOK${tag}`)}\n${fail(`PLAINFAIL${tag}`)}\n`);
    });
    assert.match(log, new RegExp(`PLAINOK${tag}`));
    assert.match(log, new RegExp(`PLAINFAIL${tag}`));

    // Recipe 1 (superuser session): the settings, each its own statement, before the call.
    log = await logDuring(async () => {
      await psqlTry(`SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\nSET log_min_duration_statement = -1;\n${set(`SESSOK${tag}`)}\n${fail(`SESSFAIL${tag}`)}\n`);
    });
    assert.doesNotMatch(log, new RegExp(`SESS(OK|FAIL)${tag}`));
    assert.match(log, /endpoint ".*-none" does not exist/, 'the failure itself is logged, without the statement');

    // Recipe 2: a login role for setting keys, whose sessions never log statements.
    await sql(`ALTER ROLE ${role} SET log_statement = 'none';
      ALTER ROLE ${role} SET log_min_error_statement = 'panic';
      ALTER ROLE ${role} SET log_min_duration_statement = -1;`);
    const asRole = (input) => run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=0', '-d', env.PGDATABASE || 'postgres'],
      { input, env: { PGUSER: role } });
    log = await logDuring(async () => {
      const r = await asRole(`${set(`ROLEOK${tag}`)}\n${fail(`ROLEFAIL${tag}`)}\n`);
      assert.match(r.stderr, /does not exist/, 'the failing call ran as the role');
    });
    assert.equal((await sql(`SELECT access_key_id FROM dms_stream.endpoint_credential WHERE endpoint_name = ${lit(ep)}`))[0][0], 'AKIDLOGTEST');
    assert.doesNotMatch(log, new RegExp(`ROLE(OK|FAIL)${tag}`));
    assert.match(log, new RegExp(`${role}@.*endpoint ".*-none" does not exist`), 'the role\'s session was logged to');
  } finally {
    await sql(`ALTER SYSTEM RESET log_statement; SELECT pg_reload_conf();`);
  }
});
