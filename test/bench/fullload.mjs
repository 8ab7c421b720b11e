// Full load from S3 CSV files to Kinesis (issue 4): throughput of a dms_stream
// `full-load` task against PostgreSQL's own COPY of the same files in the same
// run, and the task worker's peak memory.
//
// For each size (--mb, then --small-mb to show memory does not grow with the
// input):
//   1. generate CSV files of the seed's table schema01.table01 (ingest_time
//      DATETIME pk 'YYYY-MM-DD HH:MM:SS', doi STRING(30), id INT8,
//      value NUMERIC(5,2), data_sig STRING(10); every 7th doi quoted with a
//      comma and doubled quotes) as --files LOADnnn.csv files in a temporary
//      directory the server can read, and upload them with the AWS CLI
//      through the S3 proxy to s3://<bucket>/schema01/table01/;
//   2. anchor: COPY schema01.table01_copy FROM '<file>' (FORMAT csv) of every
//      file into an UNLOGGED table (timestamp, varchar(30), bigint,
//      numeric(5,2), varchar(10)), timed by the server's clock;
//   3. dms_stream: an S3 source endpoint with the external table definition
//      (reading s3rver directly by default, --source-via-proxy to read through
//      the verifying proxy) and a Kinesis target endpoint whose endpoint_url is
//      the minimal acknowledging server (test/bench/ack_server.c, compiled
//      and started here, or ack_server.mjs with --ack-server node; the worker
//      only calls PutRecords on the target), a full-load task
//      with TargetMetadata.ParallelLoadThreads / ParallelLoadBufferSize;
//      start_task, poll dms_stream.task_status until stopped/failed while
//      sampling every process of the task (pg_stat_activity rows with
//      application_name = the task and a backend_type starting with
//      'dms_stream': the task worker, and the shipping process when there is
//      one) every 50 ms: VmHWM / VmRSS / RssAnon from /proc/<pid>/status and
//      CPU seconds (utime + stime) from /proc/<pid>/stat, the last sample;
//      check that the ack server counted exactly the rows generated and that
//      FullLoadRows in dms_stream.table_statistics_view is that number.
// Then, unless --kinesalite-mb 0, the same full load of a small input into a
// kinesalite stream (directly, no proxy), with the records counted back.
//
// Time of dms_stream: from start_task to the status 'stopped' seen by the
// poller (includes worker start-up; --poll-ms resolution); FullLoadEndTime -
// FullLoadStartTime is printed too. MB is the CSV bytes (MiB). Memory: the
// peaks per process type and the sum of the RssAnon peaks; CPU seconds per
// process type and of the ack server during the load.
//
// Needs the test bed (source test/bed/env.sh or let test/lib/bed.mjs read it).
//
//   node test/bench/fullload.mjs [--mb 1024] [--small-mb mb/4] [--files 4]
//        [--threads 8] [--buffer 500] [--kinesalite-mb 20] [--source-via-proxy]
//        [--poll-ms 250] [--ack-server c|node]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { env, psql, psqlTry, aws, kinesis, createBucket, waitStreamActive, uniqueName, sleep } from '../lib/bed.mjs';
import {
  lit, PRE, sql, fmt, startAckServer, cpuSeconds, processSampler, describeProcs, TASK_PROCS_SQL, procTypes, procColumns,
  procCells, dropTasks, dropEndpoints,
} from './lib.mjs';
import { SEED_ETD, SEED_MAPPINGS } from '../lib/tasks.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MB = opt('mb', 1024);
const SMALL_MB = opt('small-mb', MB / 4);
const FILES = opt('files', 4);
const THREADS = opt('threads', 8);
const BUFFER = opt('buffer', 500);
const KMB = opt('kinesalite-mb', 20);
const POLL_MS = opt('poll-ms', 250);
const VIA_PROXY = args.includes('--source-via-proxy');
const MiB = 1024 * 1024;

// What this run created, for the clean-up.
const created = { tasks: [], endpoints: [], dirs: [], buckets: [], servers: [], copySchema: false };

// ------------------------------------------------------------------ data

const pad2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const DAY0 = Date.UTC(2020, 0, 1);

/**
 * Write `files` CSV files of about `mb` MiB in all into dir (rows numbered
 * from 1, one second apart, so the primary key is unique); returns
 * {files: [{name, file, bytes}], rows, bytes}.
 */
function generate(dir, mb, files) {
  const per = Math.ceil((mb * MiB) / files);
  const out = [];
  let n = 0;
  let total = 0;
  let day = '';
  let dayNo = -1;
  for (let f = 1; f <= files; f++) {
    const name = `LOAD${String(f).padStart(3, '0')}.csv`;
    const file = path.join(dir, name);
    const fd = fs.openSync(file, 'w', 0o644);
    let bytes = 0;
    const buf = Buffer.allocUnsafe(4 * MiB + 256);
    while (bytes < per) {
      let off = 0;
      while (off < 4 * MiB && bytes + off < per) {
        n++;
        const d = Math.floor(n / 86400);
        if (d !== dayNo) {
          dayNo = d;
          day = new Date(DAY0 + d * 86400000).toISOString().slice(0, 10);
        }
        const s = n % 86400;
        const time = `${day} ${pad2[Math.floor(s / 3600)]}:${pad2[Math.floor(s / 60) % 60]}:${pad2[s % 60]}`;
        const doi = n % 7 === 0 ? `"10.1000/a,""q""${n}"` : `10.1000/${n}`;
        const cents = ((n * 37) % 199999) - 99999;
        const a = Math.abs(cents);
        const value = `${cents < 0 ? '-' : ''}${Math.floor(a / 100)}.${pad2[a % 100]}`;
        off += buf.latin1Write(`${time},${doi},${n},${value},s${n % 1000}\n`, off);
      }
      fs.writeSync(fd, buf, 0, off);
      bytes += off;
    }
    fs.closeSync(fd);
    fs.chmodSync(file, 0o644);
    out.push({ name, file, bytes });
    total += bytes;
  }
  return { files: out, rows: n, bytes: total };
}

async function upload(bucket, files) {
  for (const f of files) {
    await aws(['s3', 'cp', '--only-show-errors', f.file, `s3://${bucket}/schema01/table01/${f.name}`], { endpoint: env.S3_PROXY_URL });
  }
}

// ------------------------------------------------------------------ COPY anchor

async function copyAnchor(data) {
  const exists = (await sql(`SELECT count(*) FROM pg_namespace WHERE nspname = 'schema01'`))[0][0] === '1';
  if (!exists) created.copySchema = true;
  const rows = await sql(`
    CREATE SCHEMA IF NOT EXISTS schema01;
    DROP TABLE IF EXISTS schema01.table01_copy;
    CREATE UNLOGGED TABLE schema01.table01_copy (ingest_time timestamp, doi varchar(30), id bigint,
                                                 value numeric(5,2), data_sig varchar(10));
    SELECT 't0', extract(epoch FROM clock_timestamp());
    ${data.files.map((f) => `COPY schema01.table01_copy FROM ${lit(f.file)} (FORMAT csv);`).join('\n    ')}
    SELECT 't1', extract(epoch FROM clock_timestamp());
    SELECT 'rows', count(*) FROM schema01.table01_copy;
    DROP TABLE schema01.table01_copy;`);
  const get = (tag) => Number(rows.find((r) => r[0] === tag)[1]);
  if (get('rows') !== data.rows) throw new Error(`COPY read ${get('rows')} rows, generated ${data.rows}`);
  return { rows: data.rows, seconds: get('t1') - get('t0') };
}

// ------------------------------------------------------------------ the task

/** Full load of bucket into stream at targetUrl; returns figures. */
async function fullLoad({ bucket, targetUrl, stream }) {
  const task = uniqueName('bench-fl');
  const src = `${task}-src`;
  const tgt = `${task}-tgt`;
  const srcSettings = { BucketName: bucket, ExternalTableDefinition: JSON.stringify(SEED_ETD) };
  const settings = { TargetMetadata: { ParallelLoadThreads: THREADS, ParallelLoadBufferSize: BUFFER } };
  created.endpoints.push(src, tgt);
  await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 's3', 'source', ${lit(JSON.stringify(srcSettings))}, ${lit(VIA_PROXY ? env.S3_PROXY_URL : env.S3RVER_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(src)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream }))}, ${lit(targetUrl)});
    SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, 'full-load', ${lit(JSON.stringify(SEED_MAPPINGS))}, ${lit(JSON.stringify(settings))});`);
  created.tasks.push(task);

  const t0 = performance.now();
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  const sampler = processSampler();
  let st;
  let seconds;
  let procs;
  try {
    for (;;) {
      const rows = await sql(`SELECT t.status, coalesce(t.last_error, ''), t.worker_pid, ${TASK_PROCS_SQL('t.task')}
        FROM dms_stream.task_status t WHERE t.task = ${lit(task)}`);
      const [status, lastError, wpid, list] = rows[0];
      if (wpid) sampler.add(Number(wpid), 'dms_stream task');
      sampler.addList(list);
      if (status === 'stopped' || status === 'failed') {
        seconds = (performance.now() - t0) / 1000;
        st = { status, lastError };
        break;
      }
      if (performance.now() - t0 > 3 * 3600 * 1000) throw new Error(`task ${task} still ${status} after 3 hours`);
      await sleep(POLL_MS);
    }
  } finally {
    procs = sampler.stop();
  }
  if (st.status !== 'stopped') throw new Error(`task ${task} ${st.status}: ${st.lastError}`);
  const [fullLoadRows, errorRows, loadSeconds] = (await sql(`SELECT "FullLoadRows", "FullLoadErrorRows",
        extract(epoch FROM "FullLoadEndTime" - "FullLoadStartTime")
      FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)} AND "SchemaName" = 'schema01' AND "TableName" = 'table01'`))[0];
  return {
    task, seconds, loadSeconds: Number(loadSeconds), fullLoadRows: Number(fullLoadRows), errorRows: Number(errorRows),
    procs,
  };
}

// ------------------------------------------------------------------ run

const results = [];
function line(label, rows, bytes, seconds, extra = '') {
  const mb = bytes / MiB;
  console.log(`${label.padEnd(28)} ${String(rows).padStart(9)} rows ${fmt(mb).padStart(7)} MB ${fmt(seconds, 2).padStart(7)} s `
    + `${Math.round(rows / seconds).toString().padStart(8)} rows/s ${fmt(mb / seconds).padStart(6)} MB/s${extra}`);
}

async function oneSize(mb, ack) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dms-bench-fullload-'));
  created.dirs.push(dir);
  fs.chmodSync(dir, 0o755);
  let t = performance.now();
  const data = generate(dir, mb, FILES);
  const genS = (performance.now() - t) / 1000;
  const bucket = await createBucket(uniqueName('bench-fl'));
  created.buckets.push(bucket);
  t = performance.now();
  await upload(bucket, data.files);
  const upS = (performance.now() - t) / 1000;
  console.log(`\n== ${fmt(data.bytes / MiB)} MB in ${data.files.length} files, ${data.rows} rows `
    + `(generated in ${fmt(genS)} s, uploaded through the S3 proxy in ${fmt(upS)} s)`);

  const copy = await copyAnchor(data);
  line('COPY (unlogged table)', copy.rows, data.bytes, copy.seconds);

  await ack.reset();
  const ackCpu0 = cpuSeconds(ack.pid);
  const r = await fullLoad({ bucket, targetUrl: ack.url, stream: 'ack' });
  const ackCpu = cpuSeconds(ack.pid) - ackCpu0;
  const s = await ack.stats();
  if (s.records !== data.rows) throw new Error(`ack server counted ${s.records} records, generated ${data.rows} rows`);
  if (r.fullLoadRows !== data.rows) throw new Error(`FullLoadRows ${r.fullLoadRows}, generated ${data.rows} rows`);
  if (r.errorRows !== 0) throw new Error(`FullLoadErrorRows ${r.errorRows}`);
  line(`dms_stream -> ack server`, data.rows, data.bytes, r.seconds,
    ` (FullLoadEnd-Start ${fmt(r.loadSeconds, 2)} s, ${s.requests} PutRecords, ${s.max_in_flight} in flight)`);
  const ratio = copy.seconds / r.seconds;
  console.log(`dms_stream/COPY throughput ratio: ${fmt(ratio, 2)} (target >= 0.5)`);
  for (const l of describeProcs(r.procs)) console.log(l);
  console.log(`(RssAnon target < 100 MB; ack server CPU ${fmt(ackCpu, 2)} s)`);
  if (!r.procs.samples) console.log('  (no memory sample: the worker ended before the poller saw its pid)');
  results.push({ sink: 'ack', mb: data.bytes / MiB, rows: data.rows, copyS: copy.seconds, dmsS: r.seconds, ratio, procs: r.procs, ackCpu });
  fs.rmSync(dir, { recursive: true, force: true });
  await aws(['s3', 'rb', '--force', `s3://${bucket}`], { endpoint: env.S3_PROXY_URL }).catch(() => {});
}

async function kinesaliteSize(mb) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dms-bench-fullload-'));
  created.dirs.push(dir);
  fs.chmodSync(dir, 0o755);
  const data = generate(dir, mb, 1);
  const bucket = await createBucket(uniqueName('bench-fl'));
  created.buckets.push(bucket);
  await upload(bucket, data.files);
  const stream = uniqueName('bench-fl');
  await kinesis('CreateStream', { StreamName: stream, ShardCount: 4 });
  await waitStreamActive(stream);
  console.log(`\n== kinesalite (direct): ${fmt(data.bytes / MiB)} MB, ${data.rows} rows`);
  const r = await fullLoad({ bucket, targetUrl: env.KINESALITE_URL, stream });
  if (r.fullLoadRows !== data.rows) throw new Error(`FullLoadRows ${r.fullLoadRows}, generated ${data.rows} rows`);
  let stored = 0;
  const { Shards } = await kinesis('ListShards', { StreamName: stream });
  for (const shard of Shards) {
    let { ShardIterator: it } = await kinesis('GetShardIterator', { StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' });
    while (it) {
      const g = await kinesis('GetRecords', { ShardIterator: it, Limit: 10000 });
      stored += g.Records.length;
      if (g.Records.length === 0) break;
      it = g.NextShardIterator;
    }
  }
  if (stored !== data.rows) throw new Error(`kinesalite stored ${stored} records, generated ${data.rows} rows`);
  line('dms_stream -> kinesalite', data.rows, data.bytes, r.seconds, ` (all ${stored} records stored)`);
  for (const l of describeProcs(r.procs)) console.log(l);
  results.push({ sink: 'kinesalite', mb: data.bytes / MiB, rows: data.rows, dmsS: r.seconds, procs: r.procs });
  await kinesis('DeleteStream', { StreamName: stream }).catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
  await aws(['s3', 'rb', '--force', `s3://${bucket}`], { endpoint: env.S3_PROXY_URL }).catch(() => {});
}

async function cleanup() {
  await dropTasks(created.tasks);
  await dropEndpoints(created.endpoints);
  await psqlTry(`${PRE}DROP TABLE IF EXISTS schema01.table01_copy;${created.copySchema ? ' DROP SCHEMA IF EXISTS schema01;' : ''}`);
  for (const b of created.buckets) await aws(['s3', 'rb', '--force', `s3://${b}`], { endpoint: env.S3_PROXY_URL }).catch(() => {});
  for (const d of created.dirs) fs.rmSync(d, { recursive: true, force: true });
  for (const a of created.servers) a.stop();
}

console.log(`Full load S3 CSV -> Kinesis: ${MB} MB then ${SMALL_MB} MB in ${FILES} files, ParallelLoadThreads ${THREADS}, `
  + `ParallelLoadBufferSize ${BUFFER}, source ${VIA_PROXY ? 'through the S3 proxy' : 's3rver directly'}; kinesalite ${KMB} MB`);
try {
  await psql(`${PRE}DO $$ BEGIN
      IF to_regproc('dms_stream.create_endpoint') IS NULL THEN CREATE EXTENSION dms_stream; END IF;
    END $$;`);
  const ack = await startAckServer();
  created.servers.push(ack);
  console.log(`ack server: ${ack.label}`);
  for (const mb of SMALL_MB > 0 ? [MB, SMALL_MB] : [MB]) await oneSize(mb, ack);
  if (KMB > 0) await kinesaliteSize(KMB);
  const types = procTypes(results.map((r) => r.procs));
  const cols = [...procColumns(types, { cpu: true }), 'ack server CPU s'];
  console.log(`\n| sink | CSV MB | rows | COPY s | COPY rows/s | COPY MB/s | dms_stream s | dms_stream rows/s | dms_stream MB/s | ratio | ${cols.join(' | ')} |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|${cols.map(() => '---:|').join('')}`);
  for (const r of results) {
    const copy = r.copyS === undefined ? '| - | - | - ' : `| ${fmt(r.copyS, 2)} | ${Math.round(r.rows / r.copyS)} | ${fmt(r.mb / r.copyS)} `;
    const cells = [...procCells(r.procs, types, { cpu: true }), r.ackCpu === undefined ? '-' : fmt(r.ackCpu, 2)];
    console.log(`| ${r.sink} | ${fmt(r.mb)} | ${r.rows} ${copy}| ${fmt(r.dmsS, 2)} | `
      + `${Math.round(r.rows / r.dmsS)} | ${fmt(r.mb / r.dmsS)} | ${r.ratio === undefined ? '-' : fmt(r.ratio, 2)} | ${cells.join(' | ')} |`);
  }
} finally {
  await cleanup();
}
