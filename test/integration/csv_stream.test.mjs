// The streaming CSV reader (src/csv.c) and the DMS value typing and rendering
// (src/dms_value.c) on big inputs, through dms_stream.csv_scan_file (a server
// file read in chunks) and dms_stream.csv_parse_records.
//
// Covered: a generated full-load file of the seed's table schema01.table01
// (~200 MB by default, CSV_STREAM_MB to change it; header, quoted fields with
// delimiters, quotes and newlines) read in 1 MiB chunks: every row typed and
// rendered, the backend's peak memory (VmHWM of /proc/self/status) bounded;
// throughput of parse only and of parse + render, against COPY ... FROM of the
// same file into an unlogged table in the same run (printed as diagnostics,
// not asserted); a file holding one 48 MiB record with max_record_bytes 4 MiB:
// that record is an error, the reader resynchronises at the next row and
// memory stays bounded; random records with every kind of quoting round-trip
// through csv_parse_records with several delimiter settings and chunk sizes
// from 1 byte up, with the same fields and positions whatever the chunks.
//
// The generated files live in a temporary directory that the server (user
// postgres) can read; nothing is committed or left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { psql, psqlTry, uniqueName } from '../lib/bed.mjs';
import { SEED_ETD } from '../lib/tasks.mjs';

const MiB = 1024 * 1024;
const FILE_MB = Number(process.env.CSV_STREAM_MB || 200);
const PRE = '\\set QUIET on\n\\set VERBOSITY verbose\nSET client_min_messages = warning;\n';
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);


let tmp;
let seedEp;
const endpoints = [];

async function sql(q) {
  return psql(PRE + q);
}

async function createEndpoint(settings) {
  const name = uniqueName('csv');
  await sql(`SELECT dms_stream.create_endpoint(${lit(name)}, 's3', 'source', ${lit(JSON.stringify(settings))}::jsonb);`);
  endpoints.push(name);
  return name;
}

/** Write a file in pieces from a generator of strings; returns its size. */
function writeFile(file, pieces) {
  const fd = fs.openSync(file, 'w', 0o644);
  let size = 0;
  try {
    for (const piece of pieces) {
      const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
      fs.writeSync(fd, buf);
      size += buf.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(file, 0o644);
  return size;
}

/** Rows of schema01.table01 (ASCII), in 4 MiB buffers, until `bytes` are written. */
function* seedRows(bytes, counter) {
  const pad2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
  yield 'ingest_time,doi,id,value,data_sig\n';
  let written = 0;
  let n = 0;
  while (written < bytes) {
    const buf = Buffer.allocUnsafe(4 * MiB + 256);
    let off = 0;
    while (off < 4 * MiB && written + off < bytes) {
      n++;
      off += buf.latin1Write(n % 10 === 0
        // quoted fields with a delimiter, quotes and a newline
        ? `2020-01-01 00:00:00,"10.1000/""q"", x",${n},1.50,"a\nb"\n`
        : `2020-01-${pad2[1 + (n % 28)]} ${pad2[n % 24]}:${pad2[n % 60]}:${pad2[(n * 7) % 60]}.${pad2[n % 100]}${pad2[(n >> 3) % 100]}${pad2[(n >> 6) % 100]},`
          + `10.${n % 10000}/${((n * 40503) >>> 0).toString(16)},${n},${n % 1000}.${pad2[n % 100]},${(n * 7).toString(36)}\n`, off);
    }
    written += off;
    yield buf.subarray(0, off);
  }
  counter.rows = n;
}

/** VmHWM (kB) before and after q, in one session, after a warm-up. */
async function backendMemory(warmup, q) {
  const mem = (tag) => `SELECT '${tag}', (regexp_match(s, 'VmHWM:\\s+(\\d+)'))[1] FROM pg_read_file('/proc/self/status') s;`;
  const rows = await sql(`${warmup}\n${mem('before')}\n${q}\n${mem('after')}`);
  const get = (tag) => Number(rows.find((r) => r[0] === tag)[1]);
  return { rows, growthMiB: (get('after') - get('before')) / 1024, afterMiB: get('after') / 1024 };
}

before(async () => {
  const r = await psqlTry(`SET client_min_messages = warning;
    DO $$ BEGIN
      IF to_regproc('dms_stream.create_endpoint') IS NULL THEN CREATE EXTENSION dms_stream; END IF;
    END $$;`);
  assert.ok(r.ok, r.error);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'csv-stream-'));
  fs.chmodSync(tmp, 0o755);
  seedEp = await createEndpoint({
    BucketName: 'dms-s3-source', CsvDelimiter: ',', CsvRowDelimiter: '\n', IgnoreHeaderRows: '1',
    Rfc4180: 'y', CsvNullValue: 'NULL', ExternalTableDefinition: JSON.stringify(SEED_ETD),
  });
});

after(async () => {
  for (const name of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(name)})`);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test(`a ${FILE_MB} MB full-load file: every row rendered, memory bounded, throughput vs COPY`, async (t) => {
  const file = path.join(tmp, 'LOAD001.csv');
  const counter = {};
  const t0 = Date.now();
  const size = writeFile(file, seedRows(FILE_MB * 1000 * 1000, counter));
  t.diagnostic(`generated ${(size / MiB).toFixed(1)} MiB, ${counter.rows} rows in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const warm = `SELECT count(*) FROM dms_stream.csv_preview(${lit(seedEp)}, E'h\\n2020-01-01 00:00:00,a,1,1,x\\n');`;
  const scan = (render) => `SELECT 'scan', bytes, records, rows_ok, rows_failed, json_bytes, reader_memory, seconds, end_offset, first_error
      FROM dms_stream.csv_scan_file(${lit(seedEp)}, ${lit(file)}, render => ${render}, chunk_bytes => 1048576);`;

  // parse + route + type + render every row
  const full = await backendMemory(warm, scan(true));
  const row = full.rows.find((r) => r[0] === 'scan');
  const [bytes, records, ok, failed, jsonBytes, readerMemory, seconds, endOffset, firstError] = row.slice(1);
  assert.equal(Number(bytes), size, 'every byte read');
  assert.equal(Number(endOffset), size, 'reader ended at the end of the file');
  assert.equal(Number(records), counter.rows);
  assert.equal(Number(ok), counter.rows, `all rows good (first error: ${firstError})`);
  assert.equal(Number(failed), 0);
  assert.ok(Number(jsonBytes) > size, 'JSON data objects are bigger than the CSV');
  assert.ok(Number(readerMemory) < 4 * MiB, `reader buffers ${readerMemory} bytes for 1 MiB chunks`);
  assert.ok(full.growthMiB < 24, `backend peak memory grew by ${full.growthMiB.toFixed(1)} MiB`);
  const renderSec = Number(seconds);

  // parse only
  const parse = (await sql(scan(false))).find((r) => r[0] === 'scan');
  assert.equal(Number(parse[3]), counter.rows);
  const parseSec = Number(parse[7]);

  // PostgreSQL's own COPY of the same file into an unlogged table
  const copyRows = await sql(`
    CREATE UNLOGGED TABLE csv_stream_copy (ingest_time timestamp, doi varchar(30), id int8,
                                           value numeric(5,2), data_sig varchar(10));
    SELECT 't0', extract(epoch FROM clock_timestamp());
    COPY csv_stream_copy FROM ${lit(file)} (FORMAT csv, HEADER true);
    SELECT 't1', extract(epoch FROM clock_timestamp());
    SELECT 'rows', count(*) FROM csv_stream_copy;
    DROP TABLE csv_stream_copy;`);
  const get = (tag) => Number(copyRows.find((r) => r[0] === tag)[1]);
  assert.equal(get('rows'), counter.rows, 'COPY read the same rows');
  const copySec = get('t1') - get('t0');

  const mbps = (s) => (size / MiB / s).toFixed(1);
  const rps = (s) => Math.round(counter.rows / s).toLocaleString('en-US');
  t.diagnostic(`parse only:      ${parseSec.toFixed(2)} s, ${mbps(parseSec)} MiB/s, ${rps(parseSec)} rows/s`);
  t.diagnostic(`parse + render:  ${renderSec.toFixed(2)} s, ${mbps(renderSec)} MiB/s, ${rps(renderSec)} rows/s`);
  t.diagnostic(`COPY (unlogged): ${copySec.toFixed(2)} s, ${mbps(copySec)} MiB/s, ${rps(copySec)} rows/s`);
  t.diagnostic(`parse + render is ${(copySec / renderSec).toFixed(2)}x the speed of COPY; parse only ${(copySec / parseSec).toFixed(2)}x`);
  t.diagnostic(`backend VmHWM +${full.growthMiB.toFixed(1)} MiB (now ${full.afterMiB.toFixed(1)} MiB), reader buffers ${(Number(readerMemory) / MiB).toFixed(2)} MiB`);
  fs.rmSync(file, { force: true });
});

test('a 48 MiB record beyond max_record_bytes: an error for that record, memory bounded, reading goes on', async (t) => {
  const file = path.join(tmp, 'LOAD002.csv');
  const good = (i) => `2020-01-09 04:13:38,10.1000/${i},${i},1.50,sig\n`;
  const pieces = function* () {
    yield 'ingest_time,doi,id,value,data_sig\n';
    for (let i = 1; i <= 1000; i++) yield good(i);
    yield '2020-01-09 04:13:38,';
    const block = Buffer.alloc(MiB, 'x');
    for (let i = 0; i < 48; i++) yield block;
    yield ',1,1.50,sig\n';
    for (let i = 1001; i <= 2000; i++) yield good(i);
  };
  const size = writeFile(file, pieces());
  const warm = `SELECT count(*) FROM dms_stream.csv_preview(${lit(seedEp)}, E'h\\n2020-01-01 00:00:00,a,1,1,x\\n');`;
  const r = await backendMemory(warm, `SELECT 'scan', records, rows_ok, rows_failed, reader_memory, end_offset, first_error_line, first_error
      FROM dms_stream.csv_scan_file(${lit(seedEp)}, ${lit(file)}, chunk_bytes => 1048576, max_record_bytes => ${4 * MiB});`);
  const [records, ok, failed, readerMemory, endOffset, errLine, err] = r.rows.find((x) => x[0] === 'scan').slice(1);
  assert.equal(Number(records), 2001);
  assert.equal(Number(ok), 2000, 'rows after the long one are read');
  assert.equal(Number(failed), 1);
  assert.equal(Number(errLine), 1002);
  assert.match(err, /column 2: record is longer than 4194304 bytes/);
  assert.equal(Number(endOffset), size);
  assert.ok(Number(readerMemory) < 8 * MiB, `reader buffers ${readerMemory} bytes`);
  assert.ok(r.growthMiB < 16, `backend peak memory grew by ${r.growthMiB.toFixed(1)} MiB`);
  t.diagnostic(`${(size / MiB).toFixed(1)} MiB file with a 48 MiB record: reader buffers ${(Number(readerMemory) / MiB).toFixed(2)} MiB, backend VmHWM +${r.growthMiB.toFixed(1)} MiB`);
  fs.rmSync(file, { force: true });
});

test('random records round-trip for every delimiter setting and chunk size', async (t) => {
  const configs = [
    { CsvDelimiter: ',', CsvRowDelimiter: '\\n', d: ',', rd: '\n' },
    { CsvDelimiter: '|', CsvRowDelimiter: '\\r\\n', d: '|', rd: '\r\n' },
    { CsvDelimiter: '\u00a6~', CsvRowDelimiter: '\\n', d: '\u00a6~', rd: '\n' },
    { CsvDelimiter: '\\t', CsvRowDelimiter: '~~', d: '\t', rd: '~~' },
  ];
  const etd = {
    TableCount: 1, Tables: [{ TableName: 't', TablePath: 's/t/', TableOwner: 's', TableColumnsTotal: 1,
      TableColumns: [{ ColumnName: 'a', ColumnType: 'STRING', ColumnLength: 100 }] }],
  };
  for (const c of configs) {
    c.ep = await createEndpoint({ BucketName: 'bucket', CsvDelimiter: c.CsvDelimiter, CsvRowDelimiter: c.CsvRowDelimiter, ExternalTableDefinition: etd });
  }
  const alphabet = ['a', 'b', '"', ',', '|', '\n', '\r', '\u00a6', '~', '\t', '\u00e9', '\u{1F600}', ' ', 'x'];
  const seed = randomBytes(4).readUInt32LE();
  let state = seed;
  const rand = (n) => {
    state = (state * 1103515245 + 12345) >>> 0;
    return Math.floor((state / 4294967296) * n);
  };
  t.diagnostic(`seed ${seed}`);
  let cases = 0;
  for (let it = 0; it < 40; it++) {
    const c = configs[rand(configs.length)];
    const lines = [];
    const expect = [];
    for (let r = 0, nr = 1 + rand(12); r < nr; r++) {
      const fields = [];
      for (let f = 0, nf = 1 + rand(5); f < nf; f++) {
        let s = '';
        for (let k = 0, nk = rand(9); k < nk; k++) s += alphabet[rand(alphabet.length)];
        fields.push(s);
      }
      // quote what must be quoted (and some more): a field with a quote or
      // any character of a delimiter, an empty one, one ending in CR
      const enc = fields.map((f) => {
        const must = f === '' || [...'"', ...c.d, ...c.rd].some((ch) => f.includes(ch)) || (c.rd === '\n' && f.endsWith('\r'));
        return must || rand(5) === 0 ? `"${f.replace(/"/g, '""')}"` : f;
      });
      const line = enc.join(c.d);
      lines.push(line);
      expect.push(fields.map((f, i) => [f, enc[i].startsWith('"')]));
    }
    const text = lines.join(c.rd) + (rand(2) ? c.rd : '');
    const hex = Buffer.from(text).toString('hex');
    const rows = await sql(`SELECT c, coalesce(json_agg(json_build_object('f', fields, 'q', quoted, 'e', error, 's', start_offset,
                                      'n', end_offset, 'l', line, 'el', end_line) ORDER BY start_offset)::text, '[]')
        FROM unnest(ARRAY[1, 2, 3, 5, 17, 1000000]) c,
             LATERAL dms_stream.csv_parse_records(${lit(c.ep)}, '\\x${hex}'::bytea, c)
       GROUP BY c ORDER BY c;`);
    const results = rows.map((r) => r[1]);
    for (const r of results) assert.equal(r, results[0], `same records whatever the chunk size (seed ${seed}, case ${it}): ${JSON.stringify(text)}`);
    const got = JSON.parse(results[0]).map((r) => (r.f ? r.f.map((f, i) => [f, r.q[i]]) : r.e));
    assert.deepEqual(got, expect, `fields of ${JSON.stringify(text)} (seed ${seed}, case ${it})`);
    // records tile the file: each starts where the previous one ended
    const recs = JSON.parse(results[0]);
    for (let i = 1; i < recs.length; i++) assert.equal(recs[i].s, recs[i - 1].n);
    assert.equal(recs.at(-1).n, Buffer.byteLength(text));
    cases++;
  }
  t.diagnostic(`${cases} random files checked with chunks of 1, 2, 3, 5, 17 and 1000000 bytes`);
});
