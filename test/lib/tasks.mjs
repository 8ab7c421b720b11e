// Helpers shared by the task tests and benchmarks: quiet SQL, the seed's
// table01 rows, and an S3 source -> Kinesis target task made in one call.
//
//   lit(s), sql(q), one(q)      SQL literal, a quiet psql run, its last value
//   seedRow(i)                  row i of the seed table: {csv (no newline), key, data}
//   SEED_ETD, SEED_MAPPINGS     the seed's external table definition (schema01.table01) and
//                               a selection rule including every table of schema01
//   createS3Task(opts)          bucket + stream + endpoints + task: {bucket, stream, task, src, tgt}
//   taskStatus(task)            {status, lastError, pid, stopReason, phase} from task_status

import { env, psql, createBucket, createStream, uniqueName } from './bed.mjs';

export const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
export const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
export const sql = (q) => psql(PRE + q);

/** The last row's first value of q, or undefined. */
export async function one(q) {
  const rows = await sql(q);
  return rows.length ? rows[rows.length - 1][0] : undefined;
}

/** The seed's external table definition: schema01.table01 (ingest_time pk, doi, id, value, data_sig). */
export const SEED_ETD = {
  TableCount: '1',
  Tables: [{
    TableName: 'table01', TablePath: 'schema01/table01/', TableOwner: 'schema01', TableColumnsTotal: '5',
    TableColumns: [
      { ColumnName: 'ingest_time', ColumnType: 'DATETIME', ColumnNullable: 'false', ColumnIsPk: 'true' },
      { ColumnName: 'doi', ColumnType: 'STRING', ColumnLength: '30' },
      { ColumnName: 'id', ColumnType: 'INT8' },
      { ColumnName: 'value', ColumnType: 'NUMERIC', ColumnPrecision: '5', ColumnScale: '2' },
      { ColumnName: 'data_sig', ColumnType: 'STRING', ColumnLength: '10' },
    ],
  }],
};
/** Every table of schema01. */
export const SEED_MAPPINGS = {
  rules: [{
    'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'all',
    'object-locator': { 'schema-name': 'schema01', 'table-name': '%' }, 'rule-action': 'include',
  }],
};

/** Row i of the seed table: CSV fields (no row delimiter) and the data DMS renders. */
export function seedRow(i) {
  const t = new Date(Date.UTC(2020, 7, 3, 22, 0, 0) + i * 1000);
  const iso = t.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const csvTime = iso.replace('T', ' ').replace('Z', '');
  const doi = i % 7 === 0 ? `10.1000/a,"q"${i}` : `10.1000/${i}`;
  const cents = ((i * 37) % 199999) - 99999;
  const value = `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`;
  const sig = `s${i % 1000}`;
  const csvDoi = doi.includes(',') || doi.includes('"') ? `"${doi.replace(/"/g, '""')}"` : doi;
  return { csv: `${csvTime},${csvDoi},${i},${value},${sig}`, key: iso, data: { ingest_time: iso, doi, id: i, value, data_sig: sig } };
}

/**
 * A new bucket and stream, an S3 source endpoint (external table definition
 * etd, extra S3Settings s3) and a Kinesis target endpoint (kinesisSettings)
 * through the verifying proxies with the bed's keys, and a task between them.
 */
export async function createS3Task({
  prefix, migrationType = 'full-load', etd, mappings, settings = {}, s3 = {}, kinesisSettings = {}, stream,
}) {
  const bucket = uniqueName(prefix);
  const task = uniqueName('task');
  const src = `${task}-src`;
  const tgt = `${task}-tgt`;
  stream ??= uniqueName(prefix);
  await createBucket(bucket);
  await createStream(stream, 1);
  const srcSettings = { BucketName: bucket, ExternalTableDefinition: JSON.stringify(etd), ...s3 };
  await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 's3', 'source', ${lit(JSON.stringify(srcSettings))}, ${lit(env.S3_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(src)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream, ...kinesisSettings }))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, ${lit(migrationType)}, ${lit(JSON.stringify(mappings))}, ${lit(JSON.stringify(settings))});`);
  return { bucket, stream, task, src, tgt };
}

/** The task's row of dms_stream.task_status. */
export async function taskStatus(task) {
  const rows = await sql(`SELECT status, coalesce(last_error, ''), coalesce(worker_pid::text, ''), coalesce(stop_reason, ''), coalesce(phase, '')
    FROM dms_stream.task_status WHERE task = ${lit(task)}`);
  const [status, lastError, pid, stopReason, phase] = rows[0];
  return { status, lastError, pid, stopReason, phase };
}
