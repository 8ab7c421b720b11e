// Delta extract to S3 Parquet (issue 6): a table of --rows rows (default 10
// million) extracted by CALL dms_stream.run_delta_load (zstd), upload to the
// S3 emulator included, against PostgreSQL's COPY (query) TO CSV of the same
// rows in the same run; the files' size against DuckDB writing the same data
// with the same codec; the backend's peak memory.
//
//   1. table bench_delta.src (id bigint primary key, placed_at timestamptz,
//      customer_id int, status text (5 values), amount numeric(12,2),
//      note text), --rows rows, VACUUM ANALYZE'd;
//   2. anchor: COPY (SELECT ... ORDER BY id) TO '<file>' (FORMAT csv), the
//      query the extract runs, timed by the server's clock;
//   3. dms_stream: a controller row (gte 1, DeltaLoadSettings CompressionType
//      zstd, MaxFileSize --file-mb), CALL run_delta_load timed from a psql
//      session whose backend's VmHWM / RssAnon are sampled every 100 ms from
//      /proc/<pid>/status; the objects are checked (row count and codec with
//      hyparquet, sums with DuckDB) in s3rver's store;
//   4. DuckDB: the CSV of step 2 read with the table's types and written
//      with COPY ... (FORMAT parquet, COMPRESSION zstd), same row order.
//
//   node test/bench/delta_extract.mjs [--rows 10000000] [--file-mb 1024] [--keep]

import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { env, psql, createBucket, listS3Keys, uniqueName, sleep } from '../lib/bed.mjs';
import { Session, readParquetRows, parquetInfo, duckRun } from '../lib/delta.mjs';
import { lit, procStatus, processSampler } from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROWS = opt('rows', 10_000_000);
const FILE_MB = opt('file-mb', 1024);
const fmt = (n, d = 1) => Number(n).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const work = fs.mkdtempSync(path.join(env.DMS_BED_DIR, 'delta-bench-'));
fs.chmodSync(work, 0o777);
const csv = path.join(work, 'copy.csv');

/** Sample a backend's memory every 100 ms until stop() is called: its peaks {hwm, anon, shmem, samples}. */
function sampler(pid) {
  const s = processSampler({ intervalMs: 100 });
  s.add(pid, 'backend');
  return { stop: () => s.stop().types[0] };
}

async function main() {
  const bucket = await createBucket(uniqueName('deltabench'));
  const ep = uniqueName('benchlake');
  console.log(`generating ${ROWS.toLocaleString('en-US')} rows ...`);
  let t = performance.now();
  await psql(`CREATE EXTENSION IF NOT EXISTS dms_stream;
    DROP SCHEMA IF EXISTS bench_delta CASCADE;
    CREATE SCHEMA bench_delta;
    CREATE TABLE bench_delta.src (id bigint PRIMARY KEY, placed_at timestamptz NOT NULL, customer_id int NOT NULL,
      status text NOT NULL, amount numeric(12,2), note text);
    INSERT INTO bench_delta.src
    SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '3 seconds', (g::bigint * 7919) % 100000,
           (ARRAY['new','paid','shipped','delivered','returned'])[1 + g % 5],
           CASE WHEN g % 50 = 0 THEN NULL ELSE ((g::bigint * 37) % 1000000) / 100.0 END,
           'order note ' || (g % 1000)
      FROM generate_series(1, ${ROWS}) g;
    VACUUM ANALYZE bench_delta.src;`);
  console.log(`  ${fmt((performance.now() - t) / 1000)} s`);

  // COPY (query) TO CSV: the same query the extract runs
  const q = await psql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target',
      ${lit(JSON.stringify({ BucketName: bucket, DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(ep)}, 'S3RVER', 'S3RVER');
    INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column,
      filter_operator, start_value, output_s3_prefix, target_endpoint, replication_task_settings)
    VALUES ('bench_src', 'bench_delta', 'src', 'id', 'gte', '1', 'bench', ${lit(ep)},
      ${lit(JSON.stringify({ DeltaLoadSettings: { CompressionType: 'zstd', MaxFileSize: FILE_MB * 1024 } }))});
    SELECT replace(query, '$1', '1') FROM dms_stream.delta_load_query('bench_src');`);
  const query = q[q.length - 1][0];
  const cs = new Session();
  const copyMem = sampler(await cs.pid());
  const copy = await cs.query(`SELECT extract(epoch FROM clock_timestamp()) AS extract \\gset t0_
    COPY (${query}) TO ${lit(csv)} (FORMAT csv);
    SELECT extract(epoch FROM clock_timestamp()) - :t0_extract`, { timeoutMs: 3600_000 });
  const copyPeak = copyMem.stop();
  cs.close();
  if (copy.err) throw new Error(copy.err);
  const copyS = Number(copy.out.split('\n').pop());
  const csvBytes = fs.statSync(csv).size;
  console.log(`COPY (query) TO CSV: ${fmt(copyS, 2)} s, ${fmt(ROWS / copyS, 0)} rows/s, ${fmt(csvBytes / 1048576)} MiB`);

  // dms_stream
  const s = new Session();
  const pid = await s.pid();
  const base = procStatus(pid);
  const mem = sampler(pid);
  t = performance.now();
  const r = await s.query(`CALL dms_stream.run_delta_load('bench_src')`, { timeoutMs: 3600_000 });
  const dmsS = (performance.now() - t) / 1000;
  const peak = mem.stop();
  s.close();
  if (r.err) throw new Error(r.err);
  const [st] = await psql(`SELECT last_rows, last_bytes, last_files, watermark FROM dms_stream.delta_load_controller
    WHERE target_table_name = 'bench_src'`);
  const keys = listS3Keys(bucket, 'bench/');
  const files = keys.map((k) => path.join(env.S3RVER_DIR, bucket, `${k}._S3rver_object`));
  const ourBytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  const info = files.map(parquetInfo);
  const rowsBack = info.reduce((n, i) => n + i.rows, 0);
  if (rowsBack !== ROWS || Number(st[0]) !== ROWS) throw new Error(`rows: files ${rowsBack}, controller ${st[0]}, expected ${ROWS}`);
  const [sums] = await readParquetRows(files, { columns: 'count(*) AS n, sum(id) AS ids, sum(amount) AS amount, count(DISTINCT status) AS statuses' });
  console.log(`dms_stream run_delta_load: ${fmt(dmsS, 2)} s, ${fmt(ROWS / dmsS, 0)} rows/s, ${keys.length} file(s), `
    + `${fmt(ourBytes / 1048576)} MiB (${info[0].codecs.join(',')}), watermark ${st[3]}; read back: ${JSON.stringify(sums, (k, v) => (typeof v === "bigint" ? String(v) : v && typeof v === "object" && !Array.isArray(v) && v.constructor !== Object ? String(v) : v))}`);

  // DuckDB with the same codec, same rows and order
  const duckFile = path.join(work, 'duckdb.parquet');
  t = performance.now();
  await duckRun(`COPY (SELECT * FROM read_csv(${lit(csv)}, header = false, columns = {
      'id': 'BIGINT', 'placed_at': 'TIMESTAMPTZ', 'customer_id': 'INTEGER', 'status': 'VARCHAR',
      'amount': 'DECIMAL(12,2)', 'note': 'VARCHAR'})) TO ${lit(duckFile)} (FORMAT parquet, COMPRESSION zstd)`);
  const duckS = (performance.now() - t) / 1000;
  const duckBytes = fs.statSync(duckFile).size;
  console.log(`DuckDB COPY TO parquet (zstd) from the CSV: ${fmt(duckS, 2)} s, ${fmt(duckBytes / 1048576)} MiB`);

  const speed = copyS / dmsS;
  const size = ourBytes / duckBytes;
  console.log(`\nbackend pid ${pid}: VmHWM ${fmt(peak.hwm / 1024)} MB (at start ${fmt(base.hwm / 1024)} MB), `
    + `peak RssAnon ${fmt(peak.anon / 1024)} MB, peak RssShmem ${fmt(peak.shmem / 1024)} MB (${peak.samples} samples); `
    + `the COPY backend: VmHWM ${fmt(copyPeak.hwm / 1024)} MB, RssAnon ${fmt(copyPeak.anon / 1024)} MB, `
    + `RssShmem ${fmt(copyPeak.shmem / 1024)} MB`);
  console.log('(VmHWM counts the shared buffers a backend touched, RssShmem; RssAnon is its own memory)');
  console.log('\n| rows | COPY TO CSV s | COPY rows/s | dms_stream s | dms_stream rows/s | ratio to COPY (target >= 0.8) | '
    + 'dms_stream MiB | DuckDB MiB | size ratio (target <= 1.1) | VmHWM MB (COPY\'s) | peak RssAnon MB (target < 128) |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  console.log(`| ${ROWS.toLocaleString('en-US')} | ${fmt(copyS, 2)} | ${fmt(ROWS / copyS, 0)} | ${fmt(dmsS, 2)} | `
    + `${fmt(ROWS / dmsS, 0)} | **${fmt(speed, 2)}** | ${fmt(ourBytes / 1048576)} | ${fmt(duckBytes / 1048576)} | `
    + `**${fmt(size, 3)}** | ${fmt(peak.hwm / 1024)} (${fmt(copyPeak.hwm / 1024)}) | ${fmt(peak.anon / 1024)} |`);

  if (!args.includes('--keep')) {
    await psql(`DELETE FROM dms_stream.delta_load_controller WHERE target_table_name = 'bench_src';
      DELETE FROM dms_stream.run_history WHERE target_table_name = 'bench_src';
      SELECT dms_stream.drop_endpoint(${lit(ep)}); DROP SCHEMA bench_delta CASCADE;`);
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(path.join(env.S3RVER_DIR, bucket), { recursive: true, force: true });
  }
  await sleep(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
