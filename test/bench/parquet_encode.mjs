// Parquet writer micro-benchmark: dms_stream.parquet_write_file (the writer
// of src/parquet.c fed by the executor, the path of parquet_encode and of
// delta extracts) against PostgreSQL's COPY (query) TO '<file>' (FORMAT csv)
// of the same rows in the same run, the file's size against the one DuckDB
// writes of the same rows with the same codec, and the backend's memory.
//
//   source test/bed/env.sh     # the bed must be running (test/bed/start.sh)
//   NODE_NO_WARNINGS=1 node test/bench/parquet_encode.mjs [--rows 10000000]
//       [--codec zstd] [--repeat 2] [--options '{"rowGroupRows": 1000000}'] [--keep]
//
// Rows (table pq_bench, UNLOGGED, rebuilt when its row count differs):
//   id bigint (unique), customer_id int (100000 values), name text
//   ('customer N', 50000 values), amount numeric(12,2), status text (4 values),
//   created_at timestamptz (unique), flag bool, note text (md5, unique)
// Each side runs --repeat times, alternating, in a fresh connection; the best
// time counts. Memory: the backend's VmHWM at the end (peak resident memory,
// shared buffers it touched included) and the largest RssAnon (its private
// memory) sampled every 20 ms while the statement runs.
// The files are checked: DuckDB reads the same row count and the same hash of
// all values from ours and from its own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { DuckDBInstance } from '@duckdb/node-api';
import { psql, env } from '../lib/bed.mjs';
import { lit, fmt, procStatus } from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const ROWS = Number(opt('rows', 10000000));
const CODEC = opt('codec', 'zstd');
const REPEAT = Number(opt('repeat', 2));
const EXTRA = JSON.parse(opt('options', '{}'));
const KEEP = args.includes('--keep');

/** Run sql in a fresh psql whose backend is sampled; resolves {ms, out, hwm, anon}. */
async function measured(sql) {
  const app = `pq_bench_${process.pid}_${Date.now()}`;
  const t0 = performance.now();
  const child = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    env: { ...env, PGAPPNAME: app },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = [];
  const err = [];
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  const done = new Promise((resolve) => child.on('close', resolve));
  let pid = null;
  let hwm = 0;
  let anon = 0;
  let finished = false;
  done.then(() => { finished = true; });
  while (!finished) {
    if (pid === null) {
      const rows = await psql(`SELECT pid FROM pg_stat_activity WHERE application_name = ${lit(app)}`).catch(() => []);
      if (rows.length) pid = Number(rows[0][0]);
    } else {
      const st = procStatus(pid);
      if (st) {
        hwm = Math.max(hwm, st.hwm);
        anon = Math.max(anon, st.anon);
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const status = await done;
  const ms = performance.now() - t0;
  if (status !== 0) throw new Error(`psql failed: ${Buffer.concat(err)}`);
  return { ms, out: Buffer.concat(out).toString().trim(), hwm, anon };
}

async function ensureTable() {
  const [[exists]] = await psql("SELECT to_regclass('pq_bench') IS NOT NULL");
  if (exists === 't') {
    const [[n]] = await psql('SELECT count(*) FROM pq_bench');
    if (Number(n) === ROWS) return;
  }
  console.log(`building pq_bench with ${ROWS} rows ...`);
  await psql(`\\set QUIET on
    SET client_min_messages = warning;
    DROP TABLE IF EXISTS pq_bench;
    CREATE UNLOGGED TABLE pq_bench AS
    SELECT i::int8 AS id, (i % 100000)::int AS customer_id, 'customer ' || (i % 50000) AS name,
           ((i::int8 * 7919) % 1000000 / 100.0)::numeric(12,2) AS amount,
           (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + i % 4] AS status,
           timestamptz '2024-01-01' + i * interval '1 second' AS created_at,
           i % 3 = 0 AS flag, md5(i::text) AS note
      FROM generate_series(1, ${ROWS}) i;`);
  await psql('VACUUM ANALYZE pq_bench');
}

async function main() {
  await ensureTable();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pq-bench-'));
  fs.chmodSync(dir, 0o777);
  const csv = path.join(dir, 'rows.csv');
  const ours = path.join(dir, 'rows.parquet');
  const theirs = path.join(dir, 'duckdb.parquet');
  const options = { codec: CODEC, ...EXTRA };
  const best = { copy: null, pq: null };
  try {
    for (let r = 0; r < REPEAT; r++) {
      const c = await measured(`COPY (SELECT * FROM pq_bench) TO ${lit(csv)} (FORMAT csv)`);
      if (!best.copy || c.ms < best.copy.ms) best.copy = c;
      const p = await measured(`SELECT rows || ' ' || bytes FROM dms_stream.parquet_write_file('SELECT * FROM pq_bench', ${lit(ours)}, ${lit(JSON.stringify(options))})`);
      if (!best.pq || p.ms < best.pq.ms) best.pq = p;
      console.log(`run ${r + 1}: COPY csv ${fmt(c.ms / 1000, 2)} s, parquet ${fmt(p.ms / 1000, 2)} s (${p.out})`);
    }

    const duck = await DuckDBInstance.create(':memory:');
    const conn = await duck.connect();
    const one = async (q) => (await conn.runAndReadAll(q)).getRows()[0];
    const cols = "{'id': 'BIGINT', 'customer_id': 'INTEGER', 'name': 'VARCHAR', 'amount': 'DECIMAL(12,2)', 'status': 'VARCHAR', 'created_at': 'TIMESTAMPTZ', 'flag': 'BOOLEAN', 'note': 'VARCHAR'}";
    const dt0 = performance.now();
    await conn.run(`COPY (SELECT * FROM read_csv(${lit(csv)}, header = false, columns = ${cols}))
                    TO ${lit(theirs)} (FORMAT parquet, COMPRESSION ${CODEC === 'none' ? 'uncompressed' : CODEC})`);
    const duckMs = performance.now() - dt0;
    const h = 'count(*), sum(hash(id, customer_id, name, amount, status, created_at, flag, note))';
    const a = await one(`SELECT ${h} FROM read_parquet(${lit(ours)})`);
    const b = await one(`SELECT ${h} FROM read_parquet(${lit(theirs)})`);
    const same = String(a) === String(b) && Number(a[0]) === ROWS;
    const [rgs] = await one(`SELECT count(DISTINCT row_group_id) FROM parquet_metadata(${lit(ours)})`);

    const oursSize = fs.statSync(ours).size;
    const theirSize = fs.statSync(theirs).size;
    const csvSize = fs.statSync(csv).size;
    const rps = (ms) => ROWS / (ms / 1000);
    console.log(`\n${ROWS} rows, codec ${CODEC}, options ${JSON.stringify(options)}; best of ${REPEAT}`);
    console.log('| path | seconds | rows/s | file MB | backend VmHWM MB | backend max RssAnon MB |');
    console.log('|---|---|---|---|---|---|');
    console.log(`| COPY (query) TO csv | ${fmt(best.copy.ms / 1000, 2)} | ${fmt(rps(best.copy.ms), 0)} | ${fmt(csvSize / 1e6)} | ${fmt(best.copy.hwm / 1024)} | ${fmt(best.copy.anon / 1024)} |`);
    console.log(`| parquet_write_file | ${fmt(best.pq.ms / 1000, 2)} | ${fmt(rps(best.pq.ms), 0)} | ${fmt(oursSize / 1e6)} | ${fmt(best.pq.hwm / 1024)} | ${fmt(best.pq.anon / 1024)} |`);
    console.log(`| DuckDB COPY from the csv (reference file) | ${fmt(duckMs / 1000, 2)} | ${fmt(rps(duckMs), 0)} | ${fmt(theirSize / 1e6)} | | |`);
    console.log(`\nspeed ratio parquet/COPY csv: ${fmt(best.copy.ms / best.pq.ms, 3)} (>= 0.8 wanted)`);
    console.log(`size ratio ours/DuckDB: ${fmt(oursSize / theirSize, 3)} (<= 1.1 wanted); row groups: ${rgs}`);
    console.log(`DuckDB reads the same ${a[0]} rows and values from both files: ${same ? 'yes' : 'NO'}`);
    if (!same) process.exitCode = 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    if (!KEEP) await psql('DROP TABLE IF EXISTS pq_bench');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
