// Helpers for the delta-load tests: Parquet read back (DuckDB and hyparquet),
// persistent psql sessions for concurrency tests, NOTIFY payloads.
//
//   readParquetRows(file, orderBy)   rows through DuckDB (BigInt -> Number when safe); with
//                                    columns '*' every file is also read by hyparquet and the
//                                    two readers must agree value by value
//   parquetInfo(file)                hyparquet metadata: rows, row groups, codecs
//   Session                          one psql process kept open: await s.query(sql)
//   notifications(text)              payloads of "Asynchronous notification" lines

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { env } from './bed.mjs';

let duck;
async function duckdb() {
  if (!duck) duck = await (await DuckDBInstance.create(':memory:')).connect();
  return duck;
}

const plain = (v) => (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** Rows of Parquet files (a path or array of paths) read with DuckDB, as objects. */
export async function readParquetRows(files, { columns = '*', orderBy } = {}) {
  const list = (Array.isArray(files) ? files : [files]).map((f) => `'${f.replace(/'/g, "''")}'`).join(', ');
  const c = await duckdb();
  const r = await c.runAndReadAll(`SELECT ${columns} FROM read_parquet([${list}])${orderBy ? ` ORDER BY ${orderBy}` : ''}`);
  const rows = r.getRowObjects().map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)])));
  if (columns === '*') await sameWithHyparquet(Array.isArray(files) ? files : [files], rows);
  return rows;
}

/** One value as both readers can be compared on: numbers (decimals too), text, instants in ms. */
function canon(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return Number.isInteger(v) ? v : Number(v.toPrecision(15)); // decimals as doubles
  if (typeof v === 'boolean') return v;
  if (v instanceof Date) return `instant:${v.getTime()}`;
  if (typeof v === 'object' && typeof v.micros === 'bigint') return `instant:${Number(v.micros / 1000n)}`;
  const s = String(v);
  return /^-?\d+(\.\d+)?$/.test(s) ? canon(Number(s)) : s;
}
const rowKey = (row) => JSON.stringify(Object.keys(row).sort().map((k) => [k, canon(row[k])]));

/** Read the files with hyparquet too: the same rows and values as DuckDB read, or an error. */
async function sameWithHyparquet(files, duckRows) {
  const hyp = [];
  for (const f of files) {
    const buf = fs.readFileSync(f);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    hyp.push(...(await parquetReadObjects({ file: ab, compressors })));
  }
  const a = duckRows.map(rowKey).sort();
  const b = hyp.map(rowKey).sort();
  if (a.length !== b.length) throw new Error(`hyparquet read ${b.length} rows, DuckDB ${a.length}: ${files.join(', ')}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error(`hyparquet and DuckDB disagree on ${files.join(', ')}: ${b[i]} vs ${a[i]}`);
  }
}

/** One SQL statement in DuckDB (e.g. COPY ... TO for comparisons). */
export async function duckRun(sql) {
  const c = await duckdb();
  const r = await c.runAndReadAll(sql);
  return r.getRowObjects();
}

/** hyparquet's view of a file: rows, row groups, codecs, created_by. */
export function parquetInfo(file) {
  const buf = fs.readFileSync(file);
  const md = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const codecs = new Set();
  for (const rg of md.row_groups) for (const col of rg.columns) codecs.add(col.meta_data.codec);
  return {
    rows: Number(md.num_rows),
    rowGroups: md.row_groups.length,
    codecs: [...codecs],
    createdBy: md.created_by,
    columns: md.schema.slice(1).map((s) => s.name),
  };
}

/** Payloads of the NOTIFYs psql printed on channel. */
export function notifications(text, channel = 'dms_stream_delta_load') {
  const out = [];
  const re = new RegExp(`Asynchronous notification "${channel}" with payload "(.*)" received from server process with PID \\d+\\.`, 'g');
  let m;
  while ((m = re.exec(text))) out.push(JSON.parse(m[1]));
  return out;
}

/**
 * A psql process kept open, for tests that need two connections at once.
 * query(sql) resolves {out, err} once psql has run sql (a marker is echoed
 * after it); errors do not stop the session.
 */
export class Session {
  constructor() {
    this.proc = spawn('psql', ['-X', '-At', '-q', '-d', env.PGDATABASE || 'postgres'], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.out = '';
    this.err = '';
    this.n = 0;
    this.proc.stdout.on('data', (d) => { this.out += d; this.wake?.(); });
    this.proc.stderr.on('data', (d) => { this.err += d; });
    this.proc.stdin.on('error', () => {});
  }

  async query(sql, { timeoutMs = 60000 } = {}) {
    const marker = `__done_${++this.n}__`;
    const startOut = this.out.length;
    const startErr = this.err.length;
    this.proc.stdin.write(`${sql.trim().replace(/;?$/, ';')}\n\\echo ${marker}\n`);
    const end = Date.now() + timeoutMs;
    while (!this.out.includes(marker, startOut)) {
      if (Date.now() > end) throw new Error(`session: timed out on ${sql}`);
      await new Promise((r) => { this.wake = r; setTimeout(r, 50); });
    }
    const out = this.out.slice(startOut, this.out.indexOf(marker, startOut)).trim();
    await new Promise((r) => setTimeout(r, 20)); // let stderr catch up
    return { out, err: this.err.slice(startErr).trim() };
  }

  /** The backend pid of this session. */
  async pid() {
    if (!this._pid) this._pid = Number((await this.query('SELECT pg_backend_pid()')).out);
    return this._pid;
  }

  close() {
    this.proc.stdin.end('\\q\n');
  }
}
