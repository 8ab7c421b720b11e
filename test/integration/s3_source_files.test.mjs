// s3_source_files.test.mjs — S3 source files as DMS users have them.
//
// gzip-compressed objects (named .gz, or not) are refused with a clear
// error naming the object, never read as raw bytes into rows of a table
// reported completed. Empty fields: without CsvNullValue an unquoted empty
// field is NULL; with CsvNullValue set (DMS's way to tell NULL from an
// empty string) it is an empty string for STRING columns and only the
// CsvNullValue token is NULL. A NULL in a column whose ColumnNullable is
// absent (false) goes to apply_exceptions with a reason that says how to
// fix the definition.
//
// Run: test/check.sh --only s3_source_files
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { env, psqlTry, aws, kinesis, waitFor, streamRecords } from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import { lit, sql, createS3Task, taskStatus } from '../lib/tasks.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dms-s3files-'));
const tasks = [];
const streams = [];

after(async () => {
  for (const t of tasks) {
    await psqlTry(`SELECT dms_stream.stop_task(${lit(t)})`);
    await waitFor(async () => ['stopped', 'failed', 'ready'].includes((await taskStatus(t)).status), { timeoutMs: 30000 }).catch(() => {});
    await psqlTry(`SELECT dms_stream.drop_task(${lit(t)})`);
  }
  for (const s of streams) await kinesis('DeleteStream', { StreamName: s }).catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ETD = {
  TableCount: '1',
  Tables: [{
    TableName: 'items', TablePath: 'app/items/', TableOwner: 'app', TableColumnsTotal: '3',
    TableColumns: [
      { ColumnName: 'k', ColumnType: 'INT4', ColumnNullable: 'false', ColumnIsPk: 'true' },
      { ColumnName: 's', ColumnType: 'STRING', ColumnLength: '20' },
      { ColumnName: 'n', ColumnType: 'INT4', ColumnNullable: 'true' },
    ],
  }],
};
const MAPPINGS = { rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1',
  'object-locator': { 'schema-name': 'app', 'table-name': '%' }, 'rule-action': 'include' }] };

async function put(bucket, key, body) {
  const file = path.join(tmp, key.replace(/\//g, '_'));
  fs.writeFileSync(file, body);
  await aws(['s3', 'cp', file, `s3://${bucket}/${key}`], { endpoint: env.S3_PROXY_URL });
}

async function fullLoad({ files, s3 = {}, etd = ETD }) {
  const made = await createS3Task({ prefix: 'sfi', etd, mappings: MAPPINGS, s3,
    kinesisSettings: { IncludeNullAndEmpty: true } });
  tasks.push(made.task);
  streams.push(made.stream);
  for (const [key, body] of files) await put(made.bucket, key, body);
  await sql(`SELECT dms_stream.start_task(${lit(made.task)})`);
  const st = await waitFor(async () => {
    const s = await taskStatus(made.task);
    return ['stopped', 'failed'].includes(s.status) ? s : null;
  }, { timeoutMs: 90000, what: 'full load finished' });
  const recs = await streamRecords(made.stream);
  assertStreamInvariants(recs, { what: made.stream });
  const data = recs.map((r) => JSON.parse(r.Data.toString('utf8')).data);
  const state = (await sql(`SELECT "TableState" FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(made.task)}`))[0]?.[0];
  return { ...made, st, data, state };
}

for (const [what, key] of [['without a .gz name (gzip magic)', 'app/items/part_002.csv'], ['named .gz', 'app/items/part_002.csv.gz']]) {
  test(`a gzip-compressed object ${what} is refused with an error naming it; no row of it is sent`, { timeout: 120000 }, async () => {
    const plain = '1,one,10\n2,two,20\n';
    const gz = zlib.gzipSync(Buffer.from('3,three,30\n4,four,40\n'.repeat(50)));
    const r = await fullLoad({ files: [['app/items/part_001.csv', plain], [key, gz]] });
    assert.equal(r.st.status, 'failed', 'the task must not complete over a compressed file');
    assert.match(r.st.lastError, new RegExp(`s3://${r.bucket}/${key.replace(/\./g, '\\.')} is gzip-compressed`));
    assert.notEqual(r.state, 'Table completed');
    // Only the plain file's rows, each as written.
    assert.deepEqual(r.data.map((d) => d.k).sort(), [1, 2]);
  });
}

test('empty fields: NULL without CsvNullValue; with CsvNullValue an empty string, the token NULL', { timeout: 120000 }, async () => {
  const csv = '1,,\n2,NULL,\n3,"",\n4,x,5\n5,NULL,NULL\n';
  const nullable = JSON.parse(JSON.stringify(ETD));
  nullable.Tables[0].TableColumns[1].ColumnNullable = 'true';
  const without = await fullLoad({ files: [['app/items/f.csv', csv]], etd: nullable });
  assert.equal(without.st.status, 'stopped', without.st.lastError);
  const byK = (rows) => Object.fromEntries(rows.map((d) => [d.k, d]));
  const w = byK(without.data);
  assert.equal(w[1].s, null, 'unquoted empty without CsvNullValue: NULL');
  assert.equal(w[2].s, 'NULL', 'the text NULL without CsvNullValue is a string');
  assert.equal(w[3].s, '', 'quoted empty: empty string');
  assert.equal(w[5], undefined, 'the text NULL in an INT4 column without CsvNullValue is a bad value (rejected)');

  const withNull = await fullLoad({ files: [['app/items/f.csv', csv]], etd: nullable, s3: { CsvNullValue: 'NULL' } });
  assert.equal(withNull.st.status, 'stopped', withNull.st.lastError);
  const v = byK(withNull.data);
  assert.equal(v[1].s, '', 'unquoted empty with CsvNullValue: empty string');
  assert.equal(v[1].n, null, 'an empty number is still NULL');
  assert.equal(v[2].s, null, 'the CsvNullValue token: NULL');
  assert.deepEqual(v[5], { k: 5, s: null, n: null });
  assert.equal(v[3].s, '');
  assert.deepEqual(v[4], { k: 4, s: 'x', n: 5 });
});

test('NULL in a column without ColumnNullable: the exception says how to fix the definition', { timeout: 120000 }, async () => {
  const r = await fullLoad({ files: [['app/items/f.csv', '1,,1\n2,b,2\n']] });
  assert.equal(r.st.status, 'stopped', r.st.lastError);
  assert.deepEqual(r.data.map((d) => d.k), [2]);
  const reason = (await sql(`SELECT error FROM dms_stream.apply_exceptions WHERE task_name = ${lit(r.task)}`))[0][0];
  assert.match(reason, /ColumnNullable false, the default when absent/);
  assert.match(reason, /add "ColumnNullable": "true" to the column/);
  assert.match(reason, /or set CsvNullValue so that an empty field is an empty string/);
});

test('metadata.timestamp is when each message is built: the first change files after a full load carry their own time', { timeout: 180000 }, async () => {
  const nullable = JSON.parse(JSON.stringify(ETD));
  nullable.Tables[0].TableColumns[1].ColumnNullable = 'true';
  const made = await createS3Task({ prefix: 'sfi', migrationType: 'full-load-and-cdc', etd: nullable, mappings: MAPPINGS,
    s3: { CdcPath: 'changes' } });
  tasks.push(made.task);
  streams.push(made.stream);
  await put(made.bucket, 'app/items/f.csv', '1,a,1\n2,b,2\n3,c,3\n');
  await sql(`SELECT dms_stream.start_task(${lit(made.task)})`);
  await waitFor(async () => {
    const s = await taskStatus(made.task);
    if (s.status === 'failed') throw new Error(s.lastError);
    return s.phase.startsWith('cdc');
  }, { timeoutMs: 90000, what: 'task in CDC' });
  await new Promise((r) => setTimeout(r, 3000));
  const before = Date.now();
  await put(made.bucket, 'changes/CDC00001.csv', 'I,items,app,10,x,10\nU,items,app,10,y,11\n');
  const recs = await waitFor(async () => {
    const r = (await streamRecords(made.stream)).map((x) => JSON.parse(x.Data.toString('utf8')));
    return r.length >= 5 ? r : null;
  }, { timeoutMs: 60000, what: 'the change rows in the stream' });
  const changes = recs.filter((m) => m.metadata.operation !== 'load');
  assert.equal(changes.length, 2);
  for (const m of changes) {
    const t = Date.parse(m.metadata.timestamp);
    assert.ok(t >= before - 1000, `change built after the file arrived: ${m.metadata.timestamp} vs ${new Date(before).toISOString()}`);
  }
});
