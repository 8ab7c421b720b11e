// S3 keys stay where the configuration says (issue 11 point 3), end to end
// against s3rver behind the SigV4 proxy: "." and ".." segments are refused
// with a clear error at every site that takes a key part, nothing is written
// outside the configured folder, and a controller row that skipped the
// validation trigger (session_replication_role = replica, as a restore or a
// logical replica of the configuration does) is refused when the run builds
// its keys, before any request.  The validation sites themselves are listed
// in sql/s3_keys.sql (regress).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, psql, psqlTry, proxy, createBucket, listS3Keys, uniqueName } from '../lib/bed.mjs';

const s3p = proxy('s3');
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const sql = (q) => psql(PRE + q);
const sqlTry = (q) => psqlTry(PRE + q);

let bucket;
let ep;
const schema = `keys_${Date.now().toString(36)}`;
const BAD = ['..', '.', 'a/../b', './x'];
const targets = ['keys_t1', 'keys_dotdot', 'keys_dot'];

before(async () => {
  bucket = await createBucket(uniqueName('keys'));
  ep = uniqueName('keys');
  await sql(`CREATE EXTENSION IF NOT EXISTS dms_stream;
    SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, BucketFolder: 'inside/folder', DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    CREATE SCHEMA ${schema};
    CREATE SCHEMA "..";
    CREATE TABLE ${schema}.src (id int);
    CREATE TABLE ${schema}."a/../b" (id int);
    CREATE TABLE "..".src (id int);
    INSERT INTO ${schema}.src SELECT generate_series(1, 10);
    INSERT INTO ${schema}."a/../b" SELECT generate_series(1, 10);
    INSERT INTO "..".src SELECT generate_series(1, 10);
    DELETE FROM dms_stream.delta_load_controller WHERE target_table_name IN (${targets.map(lit).join(', ')});`);
  await s3p.reset();
});

after(async () => {
  await sql(`DELETE FROM dms_stream.delta_load_controller WHERE target_endpoint = ${lit(ep)};
    SELECT dms_stream.drop_endpoint(${lit(ep)});
    DROP SCHEMA ${schema} CASCADE;
    DROP SCHEMA ".." CASCADE;`);
});

test('S3 functions refuse "." and ".." keys and prefixes; nothing lands outside BucketFolder', async () => {
  const seq = await s3p.seq();
  for (const bad of BAD) {
    for (const key of [bad, `${bad}/x.txt`, `d/${bad}/x.txt`]) {
      for (const call of [
        `SELECT dms_stream.s3_put_object(${lit(ep)}, ${lit(key)}, 'x'::bytea)`,
        `SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, ${lit(key)}, 100)`,
        `SELECT dms_stream.s3_delete_object(${lit(ep)}, ${lit(key)})`,
        `SELECT dms_stream.s3_get_object(${lit(ep)}, ${lit(key)})`,
      ]) {
        const r = await sqlTry(call);
        assert.equal(r.ok, false, call);
        assert.match(r.error, /ERROR: {2}key must not contain a "\.{1,2}" path segment/, call);
        assert.match(r.error, /DETAIL: {2}Segment \d+ of ".*" is "\.{1,2}"\./, call);
      }
    }
  }
  const r = await sqlTry(`SELECT * FROM dms_stream.s3_list_objects(${lit(ep)}, '../')`);
  assert.match(r.error, /prefix must not contain a "\.\." path segment/);
  // refused before any request: the proxy saw none
  assert.deepEqual(await s3p.requests({ since: seq, path: bucket }), []);
  // a good key still works, under the folder
  await sql(`SELECT dms_stream.s3_put_object(${lit(ep)}, 'ok/x.txt', 'x'::bytea)`);
  assert.deepEqual(listS3Keys(bucket), ['inside/folder/ok/x.txt']);
  await sql(`SELECT dms_stream.s3_delete_object(${lit(ep)}, 'ok/x.txt')`);
});

test('endpoint settings: a BucketFolder with "." or ".." is refused by create_endpoint and alter_endpoint', async () => {
  for (const bad of BAD) {
    const r = await sqlTry(`SELECT dms_stream.alter_endpoint(${lit(ep)}, ${lit(JSON.stringify({ BucketFolder: bad }))})`);
    assert.match(r.error, /S3Settings\.BucketFolder must not contain a "\.{1,2}" path segment/, bad);
    const c = await sqlTry(`SELECT dms_stream.create_endpoint(${lit(uniqueName('bad'))}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, BucketFolder: `x/${bad}` }))})`);
    assert.match(c.error, /S3Settings\.BucketFolder must not contain a "\.{1,2}" path segment/, bad);
  }
  const [[folder]] = await sql(`SELECT settings ->> 'BucketFolder' FROM dms_stream.endpoint WHERE endpoint_name = ${lit(ep)}`);
  assert.equal(folder, 'inside/folder');
});

test('delta controller: target, prefix and a source schema named ".." are refused at INSERT', async () => {
  const insert = (target, schemaName, table, prefix) => sqlTry(`INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
    VALUES (${lit(target)}, ${lit(schemaName)}, ${lit(table)}, 'id', 'gte', '1', ${lit(prefix)}, ${lit(ep)})`);
  for (const bad of BAD) {
    const p = await insert('keys_t1', schema, 'src', bad);
    assert.match(p.error, /output_s3_prefix must not contain a "\.{1,2}" path segment/, bad);
  }
  for (const bad of ['..', '.']) {
    const t = await insert(bad, schema, 'src', 'p');
    assert.match(t.error, /target_table_name must not contain a "\.{1,2}" path segment/, bad);
  }
  const s = await insert('keys_t1', '..', 'src', 'p');
  assert.match(s.error, /source_schema must not contain a "\.\." path segment/);
  // a source table named "a/../b" is fine: the folder uses target_table_name, not the table's name
  const ok = await insert('keys_t1', schema, 'a/../b', 'p');
  assert.ok(ok.ok, ok.error);
  const r = await sqlTry(`CALL dms_stream.run_delta_load('keys_t1')`);
  assert.ok(r.ok, r.error);
  assert.deepEqual(listS3Keys(bucket), [`inside/folder/p/${schema}/keys_t1/LOAD00000001.parquet`]);
});

test('a controller row that skipped the trigger is refused when the run builds its keys: nothing written', async () => {
  const before = listS3Keys(bucket);
  // session_replication_role = replica skips the validation trigger (a restore, a logical replica)
  await sql(`SET session_replication_role = replica;
    INSERT INTO dms_stream.delta_load_controller
      (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
    VALUES ('keys_dotdot', '..', 'src', 'id', 'gte', '1', 'p', ${lit(ep)}),
           ('keys_dot', ${lit(schema)}, 'src', 'id', 'gte', '1', '../../escape', ${lit(ep)});`);
  const seq = await s3p.seq();
  const a = await sqlTry(`CALL dms_stream.run_delta_load('keys_dotdot')`);
  assert.equal(a.ok, false);
  assert.match(a.error, /delta load "keys_dotdot" failed in step extract: source_schema must not contain a "\.\." path segment/);
  const b = await sqlTry(`CALL dms_stream.run_delta_load('keys_dot')`);
  assert.match(b.error, /delta load "keys_dot" failed in step extract: output_s3_prefix must not contain a "\.\." path segment/);
  assert.deepEqual(await s3p.requests({ since: seq, path: bucket }), [], 'no request reached S3');
  assert.deepEqual(listS3Keys(bucket), before, 'nothing written anywhere in the bucket');
  const rows = await sql(`SELECT target_table_name, last_status, coalesce(watermark, '<null>') FROM dms_stream.delta_load_controller
    WHERE target_table_name IN ('keys_dotdot', 'keys_dot') ORDER BY 1`);
  assert.deepEqual(rows, [['keys_dot', 'failed', '<null>'], ['keys_dotdot', 'failed', '<null>']]);
});
