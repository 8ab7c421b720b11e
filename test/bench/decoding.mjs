// Benchmark of tasks with a postgres source (issue 5): logical decoding of
// this database's tables, shipped to a Kinesis-compatible sink.
//
//  (a) Throughput: one WAL, two decoders, in the same run. A cdc task's slot
//      and a wal2json slot are created, the task is stopped, --rows rows are
//      inserted in transactions of --tx-rows. Then wal2json (format-version
//      2) decodes that WAL with pg_logical_slot_get_changes (decode only,
//      nothing shipped), and the task is resumed: it decodes the same WAL,
//      renders DMS messages and ships them to the minimal acknowledging
//      server (ack_server.c, or ack_server.mjs with --ack-server node, in its
//      own process) until the server counted
//      every record. Ratio = wal2json seconds / dms_stream seconds (>= 1.0:
//      decode-and-ship at least as fast as wal2json's decoding alone). The
//      same with --kinesalite-rows into kinesalite (directly, no proxy).
//  (b) Latency: pgbench commits one-row transactions at --rate per second
//      (synchronous_commit on) for --seconds; a sink in this process parses
//      every PutRecords body and takes, per record, arrival time minus the
//      record's commit-timestamp: p50/p99/max after a 2 s warm-up.
//  (c) Large transaction: --large-rows rows inserted in one transaction
//      (beyond logical_decoding_work_mem), shipped to the ack server.
// Memory and CPU: while a task runs, every process of the task (the
// pg_stat_activity rows with application_name = the task and a backend_type
// starting with 'dms_stream': the task worker, and the shipping process when
// there is one) is sampled every 50 ms: peak VmHWM / RssAnon per process
// type, the sum of the RssAnon peaks, and CPU seconds (utime + stime of
// /proc/<pid>/stat, the last sample) per process type.
//
//   source test/bed/env.sh   # bed running (test/bed/start.sh), extension installed
//   NODE_NO_WARNINGS=1 node test/bench/decoding.mjs [--rows 200000] [--tx-rows 100]
//       [--kinesalite-rows 20000] [--rate 2000] [--seconds 20] [--large-rows 1000000] [--repeat 3]
//       [--ack-server c|node]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { env, psql, createStream, uniqueName, sleep, waitFor } from '../lib/bed.mjs';
import {
  lit, sql, one, fmt, startAckServer, cpuOfStat, processSampler, describeProcs, mergePeaks, TASK_PROCS_SQL, procTypes,
  procColumns, procCells,
} from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROWS = opt('rows', 200000);
const TX_ROWS = opt('tx-rows', 100);
const KL_ROWS = opt('kinesalite-rows', 20000);
const RATE = opt('rate', 2000);
const SECONDS = opt('seconds', 20);
const LARGE = opt('large-rows', 1000000);
const REPEAT = opt('repeat', 3);

const created = { tasks: [], children: [], slots: [], schema: null, servers: [] };

// ------------------------------------------------------------------ sinks

/** A sink in this process that measures commit-to-arrival latency per record. */
async function startLatencySink() {
  const lat = [];
  let seq = 10n ** 55n;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      const target = req.headers['x-amz-target'] || '';
      let body;
      if (target.endsWith('PutRecords')) {
        const reqBody = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const records = reqBody.Records.map(() => ({ SequenceNumber: String(seq++), ShardId: 'shardId-000000000000' }));
        for (const r of reqBody.Records) {
          const m = JSON.parse(Buffer.from(r.Data, 'base64').toString('utf8'));
          const ct = m.metadata['commit-timestamp'];
          if (ct) lat.push({ at: now, ms: now - Date.parse(ct) });
        }
        body = { FailedRecordCount: 0, Records: records };
      } else {
        body = { StreamDescriptionSummary: { StreamName: 's', StreamStatus: 'ACTIVE', OpenShardCount: 1 }, Shards: [{ ShardId: 'shardId-000000000000' }] };
      }
      const text = JSON.stringify(body);
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 60000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  created.servers.push(server);
  return { url: `http://127.0.0.1:${server.address().port}`, lat };
}

// ------------------------------------------------------------------ tasks

async function makeTask(table, url, stream = 'bench', migration = 'cdc', applyThreads = 0) {
  const task = uniqueName('bench-dec');
  await sql(`SELECT dms_stream.create_endpoint(${lit(`${task}-src`)}, 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint(${lit(`${task}-tgt`)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream, IncludeTransactionDetails: true, MessageFormat: 'json-unformatted' }))}, ${lit(url)});
    SELECT dms_stream.set_endpoint_credentials(${lit(`${task}-tgt`)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(`${task}-src`)}, ${lit(`${task}-tgt`)}, ${lit(migration)},
      ${lit(JSON.stringify({ rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': '1', 'object-locator': { 'schema-name': created.schema, 'table-name': table }, 'rule-action': 'include' }] }))},
      ${lit(JSON.stringify({ TargetMetadata: { ParallelLoadThreads: 4, ParallelLoadBufferSize: 500, ...(applyThreads ? { ParallelApplyThreads: applyThreads } : {}) } }))});`);
  created.tasks.push(task);
  return task;
}

/** The processes of task now ('pid type,pid type'), or '' when none. */
async function taskProcs(task) {
  return (await one(`SELECT ${TASK_PROCS_SQL(lit(task))}`)) ?? '';
}

async function startAndStream(task, startType = 'start-replication') {
  await sql(`SELECT dms_stream.start_task(${lit(task)}, ${lit(startType)});`);
  await waitFor(async () => {
    const [st, err, phase] = (await sql(`SELECT status, coalesce(last_error, ''), coalesce(phase, '') FROM dms_stream.task_status WHERE task = ${lit(task)}`))[0];
    if (st === 'failed') throw new Error(`task ${task} failed: ${err}`);
    return phase.startsWith('cdc:');
  }, { timeoutMs: 60000, what: `${task} streaming` });
}

async function stopTask(task) {
  await sql(`SELECT dms_stream.stop_task(${lit(task)});`);
  await waitFor(async () => !(await taskProcs(task))
    && (await one(`SELECT status FROM dms_stream.task WHERE task_name = ${lit(task)}`)) === 'stopped',
  { timeoutMs: 30000, what: `${task} stopped` });
}

/**
 * Resume a stopped task and wait until count() reaches n; seconds, and the
 * memory peaks and CPU seconds of the task's processes (procs, a
 * processSampler summary; cpu = their CPU seconds added).
 */
async function resumeUntil(task, n, count) {
  const s = processSampler();
  await sql(`SELECT dms_stream.start_task(${lit(task)}, 'resume-processing');`);
  // Time from the worker's start (the launcher may take a moment to start it).
  let pid = null;
  while (!pid) {
    const list = await taskProcs(task);
    s.addList(list);
    pid = Number((/(\d+) dms_stream task/.exec(list) || [])[1]) || null;
    if (!pid) await sleep(2);
  }
  const t0 = performance.now();
  let procs;
  const perf = process.env.BENCH_PERF ? spawn('perf', ['record', '-g', '-o', process.env.BENCH_PERF, '-p', String(pid)], { stdio: 'ignore' }) : null;
  try {
    for (;;) {
      const c = await count();
      if (c >= n) break;
      const [st, list] = (await sql(`SELECT status || ' ' || coalesce(last_error, ''), ${TASK_PROCS_SQL('task')}
        FROM dms_stream.task_status WHERE task = ${lit(task)}`))[0];
      s.addList(list);
      if (st.startsWith('failed')) throw new Error(`task ${task}: ${st}`);
      if (performance.now() - t0 > 3600e3) throw new Error(`${task}: ${c} of ${n} after an hour`);
      await sleep(20);
    }
  } finally {
    // the last sample: the CPU seconds when the count was reached
    procs = s.stop();
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((r) => perf.on('close', r));
    }
  }
  // The processes started for this run: their CPU time is this run's (start-up included).
  return { seconds: (performance.now() - t0) / 1000, procs, cpu: procs.cpu };
}

/** cpuText: CPU seconds of a task's processes, with the split per type when there are several. */
function cpuText(procs) {
  const split = procs.types.length > 1 ? ` (${procs.types.map((t) => `${t.type === 'task' ? 'worker' : t.type} ${fmt(t.cpu, 2)}`).join(' + ')})` : '';
  return `${fmt(procs.cpu, 2)}${split}`;
}

/**
 * Where the worker of task spent its time, from its log lines (rounds of 10,000+ records): decoding (and
 * rendering), handing records to the PutRecords batcher (which sends requests while decoding goes on), and waiting
 * for the last answers once caught up with the WAL; http = time the batcher spent driving requests.
 */
function workerTimes(task) {
  const log = fs.readFileSync(path.join(env.DMS_BED_PGRUN, 'pg.log'), 'utf8');
  const re = new RegExp(`task "${task}": decoded and shipped (\\d+) records \\((\\d+) bytes\\) in ([\\d.]+) ms: decoding ([\\d.]+) ms, feeding the batcher ([\\d.]+) ms, waiting for the last answers ([\\d.]+) ms \\(http ([\\d.]+) ms\\)`, 'g');
  const t = { records: 0, bytes: 0, total: 0, decode: 0, feed: 0, wait: 0, http: 0 };
  for (const m of log.matchAll(re)) {
    t.records += Number(m[1]);
    t.bytes += Number(m[2]);
    t.total += Number(m[3]);
    t.decode += Number(m[4]);
    t.feed += Number(m[5]);
    t.wait += Number(m[6]);
    t.http += Number(m[7]);
  }
  return t;
}

/** wal2json over the slot's WAL in one backend: seconds, changes, and the backend's CPU seconds. */
async function wal2json(slot, peek = false) {
  const stat = "replace(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), E'\\n', '')";
  const t0 = performance.now();
  const rows = await sql(`SELECT ${stat};
    SELECT count(*) FROM pg_logical_slot_${peek ? 'peek' : 'get'}_changes(${lit(slot)}, NULL, NULL, 'format-version', '2');
    SELECT ${stat};`);
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, n: Number(rows[1][0]), cpu: cpuOfStat(rows[2][0]) - cpuOfStat(rows[0][0]) };
}

// ------------------------------------------------------------------ run

async function cleanup() {
  for (const t of created.tasks) {
    await psql(`SELECT dms_stream.stop_task(${lit(t)}) FROM dms_stream.task WHERE task_name = ${lit(t)} AND desired_state = 'running'`).catch(() => {});
  }
  for (const t of created.tasks) {
    await waitFor(async () => !(await taskProcs(t)), { timeoutMs: 30000 }).catch(() => {});
    await psql(`UPDATE dms_stream.task SET status = 'stopped' WHERE task_name = ${lit(t)}; SELECT dms_stream.drop_task(${lit(t)});
      DELETE FROM dms_stream.endpoint WHERE endpoint_name IN (${lit(`${t}-src`)}, ${lit(`${t}-tgt`)});`).catch((e) => console.error(String(e).slice(0, 300)));
  }
  for (const s of created.slots) await psql(`SELECT pg_drop_replication_slot(${lit(s)}) FROM pg_replication_slots WHERE slot_name = ${lit(s)}`).catch(() => {});
  if (created.schema) await psql(`DROP SCHEMA ${created.schema} CASCADE`).catch(() => {});
  for (const a of created.children) a.stop();
  for (const s of created.servers) s.close();
}

async function main() {
  created.schema = uniqueName('bench_dec').replace(/-/g, '_');
  const S = created.schema;
  await sql(`CREATE SCHEMA ${S};
    CREATE TABLE ${S}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(10,2), ts timestamptz, note text);
    CREATE TABLE ${S}.kl (LIKE ${S}.items INCLUDING ALL);
    CREATE TABLE ${S}.big (LIKE ${S}.items INCLUDING ALL);
    CREATE TABLE ${S}.lat (id bigserial PRIMARY KEY, v int, ts timestamptz DEFAULT now());
    CREATE PROCEDURE ${S}.gen(tbl text, n bigint, per bigint) LANGUAGE plpgsql AS $$
    BEGIN
      FOR b IN 0..(n - 1) / per LOOP
        EXECUTE format('INSERT INTO ${S}.%I SELECT g, ''name '' || g, (g %% 1000)::int, g / 100.0, now(), md5(g::text) FROM generate_series($1, $2) g', tbl)
          USING b * per + 1, least((b + 1) * per, n);
        COMMIT;
      END LOOP;
    END $$;`);
  const ack = await startAckServer();
  created.children.push(ack);
  console.log(`ack server: ${ack.label}`);
  const rowsOut = [];
  let cpuOut = null;

  // (a) throughput, ack server: partition key schema.table (DMS's CDC default:
  // one key, so the batcher keeps one request in flight to keep the order),
  // and primary key (TargetMetadata.ParallelApplyThreads > 0), on the same
  // WAL. Each of wal2json (peek, so the WAL is decoded again each time) and
  // the two kinds of task runs --repeat times, alternating; the best counts
  // (the machine is shared: single runs vary a lot).
  {
    const tasks = { st: [], pk: [] };
    for (let r = 0; r < REPEAT; r++) {
      for (const kind of ['st', 'pk']) {
        const t = await makeTask('items', ack.url, 'bench', 'cdc', kind === 'pk' ? 4 : 0);
        await startAndStream(t);
        await stopTask(t);
        tasks[kind].push(t);
      }
    }
    const w2j = `bench_w2j_${Date.now().toString(36)}`;
    created.slots.push(w2j);
    await sql(`SELECT pg_create_logical_replication_slot(${lit(w2j)}, 'wal2json');`);
    const g0 = performance.now();
    await sql(`SET synchronous_commit = on; CALL ${S}.gen('items', ${ROWS}, ${TX_ROWS});`);
    const genSeconds = (performance.now() - g0) / 1000;
    const wal = Number(await one(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = ${lit(w2j)}`));
    console.log(`generated ${ROWS} rows in ${ROWS / TX_ROWS} transactions in ${fmt(genSeconds)} s, ${fmt(wal / 1048576)} MB of WAL`);
    const best = { w2j: Infinity, st: Infinity, pk: Infinity, procs: null, stProcs: null, pkProcs: null };
    for (let r = 0; r < REPEAT; r++) {
      const w = await wal2json(w2j, true);
      best.w2j = Math.min(best.w2j, w.seconds);
      best.w2jCpu = Math.min(best.w2jCpu ?? Infinity, w.cpu);
      for (const kind of ['st', 'pk']) {
        await ack.reset();
        const d = await resumeUntil(tasks[kind][r], ROWS, async () => (await ack.stats()).records);
        await stopTask(tasks[kind][r]);
        best[kind] = Math.min(best[kind], d.seconds);
        best[`${kind}Cpu`] = Math.min(best[`${kind}Cpu`] ?? Infinity, d.cpu);
        best[`${kind}Procs`] = mergePeaks(best[`${kind}Procs`], d.procs);
        best.procs = mergePeaks(best.procs, d.procs);
        const wt = workerTimes(tasks[kind][r]);
        if (wt.records > 0) best.decode = Math.min(best.decode ?? Infinity, wt.decode / 1000 * (ROWS / wt.records));
        console.log(`run ${r + 1}: wal2json ${w.n} changes in ${fmt(w.seconds, 2)} s (backend CPU ${fmt(w.cpu, 2)} s); dms_stream (${kind === 'st' ? 'key schema.table' : 'key primary key'}) ${ROWS} records in ${fmt(d.seconds, 2)} s (${d.procs.types.length > 1 ? 'task processes' : 'worker'} CPU ${cpuText(d.procs)} s), ratio ${fmt(w.seconds / d.seconds, 2)}x`
          + (wt.records ? ` (worker log: ${fmt(wt.total / 1000, 2)} s = decode+render ${fmt(wt.decode / 1000, 2)} s + feeding the batcher ${fmt(wt.feed / 1000, 2)} s + waiting for the last answers ${fmt(wt.wait / 1000, 2)} s; http ${fmt(wt.http / 1000, 2)} s; ${wt.records} records)` : ''));
      }
    }
    rowsOut.push({ sink: 'ack server, key schema.table', rows: ROWS, wal, w2j: best.w2j, dms: best.st, procs: best.procs });
    rowsOut.push({ sink: 'ack server, key primary key', rows: ROWS, wal, w2j: best.w2j, dms: best.pk, procs: best.procs });
    const several = best.procs.types.length > 1;
    cpuOut = `CPU seconds, best of ${REPEAT}: wal2json backend ${fmt(best.w2jCpu, 2)}; dms_stream ${several ? 'task processes' : 'worker'} (start-up, decoding, rendering, shipping) `
      + `key schema.table ${fmt(best.stCpu, 2)} (ratio ${fmt(best.w2jCpu / best.stCpu, 2)}x), key primary key ${fmt(best.pkCpu, 2)} (ratio ${fmt(best.w2jCpu / best.pkCpu, 2)}x)`
      + (several ? `; per process type, best of each: schema.table ${cpuText(best.stProcs)}, primary key ${cpuText(best.pkProcs)}` : '');
    if (best.decode) rowsOut.push({ sink: 'decode + render only (worker log, no shipping)', rows: ROWS, wal, w2j: best.w2j, dms: best.decode, procs: best.procs });
  }
  // (a') throughput, kinesalite
  if (KL_ROWS > 0) {
    const stream = uniqueName('bench-dec');
    await createStream(stream, 1);
    const task = await makeTask('kl', env.KINESALITE_URL, stream);
    await startAndStream(task);
    await stopTask(task);
    const w2j = `bench_w2j_kl_${Date.now().toString(36)}`;
    created.slots.push(w2j);
    await sql(`SELECT pg_create_logical_replication_slot(${lit(w2j)}, 'wal2json');`);
    await sql(`SET synchronous_commit = on; CALL ${S}.gen('kl', ${KL_ROWS}, ${TX_ROWS});`);
    const wal = Number(await one(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = ${lit(w2j)}`));
    const w = await wal2json(w2j);
    const d = await resumeUntil(task, KL_ROWS, async () => Number(await one(`SELECT coalesce(max(rows_sent), 0) FROM dms_stream.task_checkpoint WHERE task_name = ${lit(task)} AND table_name = '(cdc)'`)));
    await stopTask(task);
    rowsOut.push({ sink: 'kinesalite', rows: KL_ROWS, wal, w2j: w.seconds, dms: d.seconds, procs: d.procs });
  }

  // (b) latency at RATE commits/s
  let latency = null;
  if (RATE > 0 && SECONDS > 0) {
    const sink = await startLatencySink();
    const task = await makeTask('lat', sink.url);
    await startAndStream(task);
    const script = path.join(fs.mkdtempSync('/tmp/bench-dec-'), 'lat.sql');
    fs.writeFileSync(script, `INSERT INTO ${S}.lat (v) VALUES (1);\n`);
    fs.chmodSync(path.dirname(script), 0o755);
    fs.chmodSync(script, 0o644);
    const t0 = Date.now();
    // Not spawnSync: the sink runs in this process's event loop.
    const pb = await new Promise((resolve) => {
      const child = spawn(`${env.PGBIN}/pgbench`, ['-n', '-c', '4', '-j', '2', '-R', String(RATE), '-T', String(SECONDS), '-f', script, '-h', env.PGHOST, '-p', env.PGPORT, '-U', env.PGUSER, env.PGDATABASE],
        { env: { ...process.env, PGOPTIONS: '-c synchronous_commit=on' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => { stdout += d; });
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    if (pb.status !== 0) throw new Error(`pgbench: ${pb.stderr}`);
    const committed = Number(await one(`SELECT count(*) FROM ${S}.lat`));
    await waitFor(() => sink.lat.length >= committed, { timeoutMs: 60000, what: 'every commit at the sink' });
    const tps = (/tps = ([\d.]+)/.exec(pb.stdout) || [])[1];
    const xs = sink.lat.filter((l) => l.at >= t0 + 2000).map((l) => l.ms).sort((a, b) => a - b);
    const q = (p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
    latency = { committed, tps: Number(tps), n: xs.length, p50: q(0.5), p99: q(0.99), max: xs[xs.length - 1] };
    await stopTask(task);
  }

  // (c) large transaction
  let large = null;
  if (LARGE > 0) {
    const task = await makeTask('big', ack.url);
    await startAndStream(task);
    await stopTask(task);
    const g0 = performance.now();
    await sql(`SET synchronous_commit = on; CALL ${S}.gen('big', ${LARGE}, ${LARGE});`);
    const genSeconds = (performance.now() - g0) / 1000;
    await ack.reset();
    const d = await resumeUntil(task, LARGE, async () => (await ack.stats()).records);
    await stopTask(task);
    large = { rows: LARGE, gen: genSeconds, seconds: d.seconds, procs: d.procs, workMem: await one('SHOW logical_decoding_work_mem') };
  }

  const types = procTypes(rowsOut.map((r) => r.procs));
  const cols = procColumns(types);
  console.log(`\n| sink | rows | WAL MB | wal2json decode-only s | dms_stream decode+ship s | dms_stream rows/s | ratio (wal2json s / dms_stream s) | ${cols.join(' | ')} |`);
  console.log(`|---|---|---|---|---|---|---|${cols.map(() => '---|').join('')}`);
  for (const r of rowsOut) {
    console.log(`| ${r.sink} | ${r.rows} | ${fmt(r.wal / 1048576)} | ${fmt(r.w2j, 2)} | ${fmt(r.dms, 2)} | ${fmt(r.rows / r.dms, 0)} | ${fmt(r.w2j / r.dms, 2)}x | ${procCells(r.procs, types).join(' | ')} |`);
  }
  if (cpuOut) console.log(`\n${cpuOut}`);
  if (latency) {
    console.log(`\nlatency at ${RATE} commits/s target (pgbench ${fmt(latency.tps, 0)} tps, ${latency.committed} commits, ${latency.n} after warm-up): `
      + `p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms (commit-timestamp to arrival at the sink)`);
  }
  if (large) {
    console.log(`\nlarge transaction: ${large.rows} rows in one transaction (generated in ${fmt(large.gen)} s, logical_decoding_work_mem ${large.workMem}): `
      + `shipped in ${fmt(large.seconds, 1)} s (${fmt(large.rows / large.seconds, 0)} rows/s), worker peak VmHWM ${fmt((large.procs.types.find((t) => t.type === 'task')?.hwm ?? 0) / 1024)} MB`);
    for (const l of describeProcs(large.procs)) console.log(`  ${l}`);
  }
}

try {
  await main();
} finally {
  await cleanup();
}
