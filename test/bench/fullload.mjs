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
//      the minimal acknowledging server (test/bench/ack_server.mjs, started
//      here; the worker only calls PutRecords on the target), a full-load task
//      with TargetMetadata.ParallelLoadThreads / ParallelLoadBufferSize;
//      start_task, poll dms_stream.task_status until stopped/failed while
//      sampling the worker's VmHWM / VmRSS / RssAnon from /proc/<pid>/status;
//      check that the ack server counted exactly the rows generated and that
//      FullLoadRows in dms_stream.table_statistics_view is that number.
// Then, unless --kinesalite-mb 0, the same full load of a small input into a
// kinesalite stream (directly, no proxy), with the records counted back.
//
// Time of dms_stream: from start_task to the status 'stopped' seen by the
// poller (includes worker start-up; --poll-ms resolution); FullLoadEndTime -
// FullLoadStartTime is printed too. MB is the CSV bytes (MiB).
//
// Needs the test bed (source test/bed/env.sh or let test/lib/bed.mjs read it).
//
//   node test/bench/fullload.mjs [--mb 1024] [--small-mb mb/4] [--files 4]
//        [--threads 8] [--buffer 500] [--kinesalite-mb 20] [--source-via-proxy]
//        [--poll-ms 250]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { env, psql, psqlTry, aws, kinesis, createBucket, waitStreamActive, uniqueName, sleep } from '../lib/bed.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
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

const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const sql = (q) => psql(PRE + q);

const ETD = {
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
const MAPPINGS = {
  rules: [{
    'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'all',
    'object-locator': { 'schema-name': 'schema01', 'table-name': '%' }, 'rule-action': 'include',
  }],
};

// What this run created, for the clean-up.
const created = { tasks: [], endpoints: [], dirs: [], buckets: [], children: [], copySchema: false };

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

// ------------------------------------------------------------------ sinks

/** The minimal acknowledging server (test/bench/ack_server.mjs) in its own process. */
async function startAckServer() {
  const child = spawn(process.execPath, [path.join(HERE, 'ack_server.mjs'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  created.children.push(child);
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`ack server exited with ${code}`)));
  });
  const call = async (p, method = 'GET') => (await fetch(`${url}/${p}`, { method })).json();
  return { url, stats: () => call('__stats'), reset: () => call('__reset', 'POST') };
}

// ------------------------------------------------------------------ the task

function procStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((new RegExp(`${k}:\\s+(\\d+)`).exec(s) || [])[1] || 0);
    return { hwm: kb('VmHWM'), rss: kb('VmRSS'), anon: kb('RssAnon') };
  } catch {
    return null;
  }
}

/** Full load of bucket into stream at targetUrl; returns figures. */
async function fullLoad({ bucket, targetUrl, stream }) {
  const task = uniqueName('bench-fl');
  const src = `${task}-src`;
  const tgt = `${task}-tgt`;
  const srcSettings = { BucketName: bucket, ExternalTableDefinition: JSON.stringify(ETD) };
  const settings = { TargetMetadata: { ParallelLoadThreads: THREADS, ParallelLoadBufferSize: BUFFER } };
  created.endpoints.push(src, tgt);
  await sql(`SELECT dms_stream.create_endpoint(${lit(src)}, 's3', 'source', ${lit(JSON.stringify(srcSettings))}, ${lit(VIA_PROXY ? env.S3_PROXY_URL : env.S3RVER_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(src)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_endpoint(${lit(tgt)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream }))}, ${lit(targetUrl)});
    SELECT dms_stream.set_endpoint_credentials(${lit(tgt)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(src)}, ${lit(tgt)}, 'full-load', ${lit(JSON.stringify(MAPPINGS))}, ${lit(JSON.stringify(settings))});`);
  created.tasks.push(task);

  const t0 = performance.now();
  await sql(`SELECT dms_stream.start_task(${lit(task)});`);
  let pid = null;
  const mem = { hwm: 0, rss: 0, anon: 0, samples: 0 };
  const sample = () => {
    if (!pid) return;
    const s = procStatus(pid);
    if (!s) return;
    mem.hwm = Math.max(mem.hwm, s.hwm);
    mem.rss = Math.max(mem.rss, s.rss);
    mem.anon = Math.max(mem.anon, s.anon);
    mem.samples++;
  };
  const sampler = setInterval(sample, 50);
  let st;
  let seconds;
  try {
    for (;;) {
      const rows = await sql(`SELECT t.status, coalesce(t.last_error, ''),
          coalesce(t.worker_pid, (SELECT pid FROM pg_stat_activity WHERE application_name = t.task AND backend_type = 'dms_stream task' LIMIT 1))
        FROM dms_stream.task_status t WHERE t.task = ${lit(task)}`);
      const [status, lastError, wpid] = rows[0];
      if (wpid && Number(wpid) !== pid) {
        pid = Number(wpid);
        sample();
      }
      if (status === 'stopped' || status === 'failed') {
        seconds = (performance.now() - t0) / 1000;
        st = { status, lastError };
        break;
      }
      if (performance.now() - t0 > 3 * 3600 * 1000) throw new Error(`task ${task} still ${status} after 3 hours`);
      await sleep(POLL_MS);
    }
  } finally {
    clearInterval(sampler);
  }
  if (st.status !== 'stopped') throw new Error(`task ${task} ${st.status}: ${st.lastError}`);
  const [fullLoadRows, errorRows, loadSeconds] = (await sql(`SELECT "FullLoadRows", "FullLoadErrorRows",
        extract(epoch FROM "FullLoadEndTime" - "FullLoadStartTime")
      FROM dms_stream.table_statistics_view WHERE "TaskName" = ${lit(task)} AND "SchemaName" = 'schema01' AND "TableName" = 'table01'`))[0];
  return {
    task, seconds, loadSeconds: Number(loadSeconds), fullLoadRows: Number(fullLoadRows), errorRows: Number(errorRows),
    pid, mem,
  };
}

// ------------------------------------------------------------------ run

const results = [];
const fmt = (n, d = 1) => n.toFixed(d);
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
  const r = await fullLoad({ bucket, targetUrl: ack.url, stream: 'ack' });
  const s = await ack.stats();
  if (s.records !== data.rows) throw new Error(`ack server counted ${s.records} records, generated ${data.rows} rows`);
  if (r.fullLoadRows !== data.rows) throw new Error(`FullLoadRows ${r.fullLoadRows}, generated ${data.rows} rows`);
  if (r.errorRows !== 0) throw new Error(`FullLoadErrorRows ${r.errorRows}`);
  line(`dms_stream -> ack server`, data.rows, data.bytes, r.seconds,
    ` (FullLoadEnd-Start ${fmt(r.loadSeconds, 2)} s, ${s.requests} PutRecords, ${s.max_in_flight} in flight)`);
  const ratio = copy.seconds / r.seconds;
  console.log(`dms_stream/COPY throughput ratio: ${fmt(ratio, 2)} (target >= 0.5)`);
  console.log(`worker pid ${r.pid}: peak VmHWM ${fmt(r.mem.hwm / 1024)} MB, max VmRSS ${fmt(r.mem.rss / 1024)} MB, `
    + `max RssAnon ${fmt(r.mem.anon / 1024)} MB (${r.mem.samples} samples; target < 100 MB)`);
  if (!r.mem.samples) console.log('  (no memory sample: the worker ended before the poller saw its pid)');
  results.push({ sink: 'ack', mb: data.bytes / MiB, rows: data.rows, copyS: copy.seconds, dmsS: r.seconds, ratio, hwm: r.mem.hwm / 1024, anon: r.mem.anon / 1024 });
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
  line('dms_stream -> kinesalite', data.rows, data.bytes, r.seconds,
    ` (all ${stored} records stored; peak VmHWM ${fmt(r.mem.hwm / 1024)} MB)`);
  results.push({ sink: 'kinesalite', mb: data.bytes / MiB, rows: data.rows, dmsS: r.seconds, hwm: r.mem.hwm / 1024, anon: r.mem.anon / 1024 });
  await kinesis('DeleteStream', { StreamName: stream }).catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
  await aws(['s3', 'rb', '--force', `s3://${bucket}`], { endpoint: env.S3_PROXY_URL }).catch(() => {});
}

async function cleanup() {
  for (const t of created.tasks) {
    await psqlTry(`${PRE}SELECT dms_stream.stop_task(${lit(t)}) FROM dms_stream.task_status WHERE task = ${lit(t)} AND status NOT IN ('stopped', 'failed', 'ready');`);
    await psqlTry(`${PRE}SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const e of created.endpoints) await psqlTry(`${PRE}SELECT dms_stream.drop_endpoint(${lit(e)});`);
  await psqlTry(`${PRE}DROP TABLE IF EXISTS schema01.table01_copy;${created.copySchema ? ' DROP SCHEMA IF EXISTS schema01;' : ''}`);
  for (const b of created.buckets) await aws(['s3', 'rb', '--force', `s3://${b}`], { endpoint: env.S3_PROXY_URL }).catch(() => {});
  for (const d of created.dirs) fs.rmSync(d, { recursive: true, force: true });
  for (const c of created.children) if (c.exitCode === null) c.kill('SIGTERM');
}

console.log(`Full load S3 CSV -> Kinesis: ${MB} MB then ${SMALL_MB} MB in ${FILES} files, ParallelLoadThreads ${THREADS}, `
  + `ParallelLoadBufferSize ${BUFFER}, source ${VIA_PROXY ? 'through the S3 proxy' : 's3rver directly'}; kinesalite ${KMB} MB`);
try {
  await psql(`${PRE}DO $$ BEGIN
      IF to_regproc('dms_stream.create_endpoint') IS NULL THEN CREATE EXTENSION dms_stream; END IF;
    END $$;`);
  const ack = await startAckServer();
  for (const mb of SMALL_MB > 0 ? [MB, SMALL_MB] : [MB]) await oneSize(mb, ack);
  if (KMB > 0) await kinesaliteSize(KMB);
  console.log('\n| sink | CSV MB | rows | COPY s | COPY rows/s | COPY MB/s | dms_stream s | dms_stream rows/s | dms_stream MB/s | ratio | worker VmHWM MB | worker RssAnon MB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const copy = r.copyS === undefined ? '| - | - | - ' : `| ${fmt(r.copyS, 2)} | ${Math.round(r.rows / r.copyS)} | ${fmt(r.mb / r.copyS)} `;
    console.log(`| ${r.sink} | ${fmt(r.mb)} | ${r.rows} ${copy}| ${fmt(r.dmsS, 2)} | `
      + `${Math.round(r.rows / r.dmsS)} | ${fmt(r.mb / r.dmsS)} | ${r.ratio === undefined ? '-' : fmt(r.ratio, 2)} | ${fmt(r.hwm)} | ${fmt(r.anon)} |`);
  }
} finally {
  await cleanup();
}
