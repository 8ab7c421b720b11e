// The Parquet writer (src/parquet.c) through dms_stream.parquet_encode: every
// file is read back by two independent readers, DuckDB (@duckdb/node-api) and
// hyparquet (+ hyparquet-compressors), and compared value by value with the
// source rows fetched from PostgreSQL.
//
// Covered: a table with a column of every mapped type (README.md, "Parquet
// type mapping") and arrays of several of them, ~3000 rows with NULLs, unicode
// (multi-byte, emoji), empty strings and arrays, arrays with NULL elements, a
// multi-dimensional array (flattened), and extremes (int2/4/8 min and max,
// numeric at precision 38 and unconstrained NaN/Infinity, float +-Infinity,
// NaN, -0 and subnormals, dates and timestamps at both range ends and
// +-infinity, time 24:00:00, a 10000-byte string, the largest, whose statistics
// are left out), written with each codec (none, snappy, gzip, zstd), with the
// dictionary on (small dictionaryBytes, so high-cardinality chunks fall back
// to PLAIN mid-chunk; columns of unique values are PLAIN from the start) and off, in several row groups of several pages. For
// each file: the values (both readers), the row groups, codec, encodings,
// physical and logical types (parquet_schema) and the per-row-group
// statistics null_count / min / max (parquet_metadata) against the source
// computed by PostgreSQL. Also: row groups bounded by bytes, an empty result,
// and a file DuckDB and hyparquet read when a dictionary and a PLAIN fallback
// share a chunk of long strings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetReadObjects, parquetMetadata } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { psql } from '../lib/bed.mjs';

const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const ROWS = 3000;
const RG_ROWS = 1000;
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

let tmp;
let duck;
let conn;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pq-test-'));
  duck = await DuckDBInstance.create(':memory:');
  conn = await duck.connect();
  await psql(`${PRE}
    CREATE EXTENSION IF NOT EXISTS dms_stream;
    DROP TABLE IF EXISTS pq_all; DROP TYPE IF EXISTS pq_mood;
    CREATE TYPE pq_mood AS ENUM ('sad', 'ok', 'happy 😀');
    CREATE TABLE pq_all (
      id int PRIMARY KEY,
      c_bool bool, c_int2 int2, c_int4 int4, c_int8 int8, c_float4 float4, c_float8 float8,
      c_num5_2 numeric(5,2), c_num18 numeric(18,6), c_num38 numeric(38,10), c_num_neg numeric(5,-2),
      c_num numeric,
      c_text text, c_varchar varchar(20), c_char char(5),
      c_date date, c_time time, c_ts timestamp, c_tstz timestamptz,
      c_uuid uuid, c_bytea bytea, c_json json, c_jsonb jsonb, c_enum pq_mood,
      a_int4 int4[], a_int8 int8[], a_text text[], a_num numeric(10,2)[], a_bool bool[], a_float8 float8[]);
    INSERT INTO pq_all
    SELECT i,
      CASE WHEN i % 11 = 0 THEN NULL ELSE i % 3 = 0 END,
      CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 7 % 65536 - 32768)::int2 END,
      CASE WHEN i % 17 = 0 THEN NULL ELSE i * 104729 % 2000000 - 1000000 END,
      CASE WHEN i % 19 = 0 THEN NULL ELSE i::int8 * 3037000493 * (CASE WHEN i % 2 = 0 THEN 1 ELSE -1 END) END,
      CASE WHEN i % 23 = 0 THEN NULL ELSE (i / 7.0)::float4 END,
      CASE WHEN i % 29 = 0 THEN NULL ELSE i / 3.0 - 500 END,
      CASE WHEN i % 31 = 0 THEN NULL ELSE ((i % 199999) - 99999) / 100.0 END,
      CASE WHEN i % 37 = 0 THEN NULL ELSE i * 12345.678901 END,
      CASE WHEN i % 41 = 0 THEN NULL ELSE (i * 98765432109876.123456789)::numeric(38,10) * (CASE WHEN i % 2 = 0 THEN 1 ELSE -1 END) END,
      CASE WHEN i % 43 = 0 THEN NULL ELSE i * 100 END,
      CASE WHEN i % 47 = 0 THEN NULL ELSE (i / 7.0) ^ 3 END,
      CASE WHEN i % 5 = 0 THEN NULL WHEN i % 5 = 1 THEN 'word ' || (i % 10) ELSE 'ünïcödé 😀 日本語 ' || i END,
      CASE WHEN i % 6 = 0 THEN NULL ELSE repeat('v', i % 20) END,
      CASE WHEN i % 7 = 0 THEN NULL ELSE chr(65 + i % 26) END,
      CASE WHEN i % 8 = 0 THEN NULL ELSE date '1969-12-25' + (i * 37 % 40000 - 20000) END,
      CASE WHEN i % 9 = 0 THEN NULL ELSE time '00:00:00' + (i * 7919 % 86400) * interval '1 second' + (i % 1000) * interval '1 microsecond' END,
      CASE WHEN i % 10 = 0 THEN NULL ELSE timestamp '1970-01-01' + (i::int8 * 1234567891 % 4000000000000) * interval '1 microsecond' * 1000 END,
      CASE WHEN i % 12 = 0 THEN NULL ELSE timestamptz '2001-02-03 04:05:06.789012+05' + i * interval '1 hour 1 microsecond' END,
      CASE WHEN i % 14 = 0 THEN NULL ELSE md5(i::text)::uuid END,
      CASE WHEN i % 15 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END,
      CASE WHEN i % 16 = 0 THEN NULL ELSE json_build_object('i', i, 's', 'é' || i, 'a', json_build_array(i, null, true)) END,
      CASE WHEN i % 18 = 0 THEN NULL ELSE jsonb_build_object('k', i % 4, 'nested', jsonb_build_object('x', 'y😀')) END,
      CASE WHEN i % 20 = 0 THEN NULL ELSE (enum_range(NULL::pq_mood))[1 + i % 3] END,
      CASE WHEN i % 21 = 0 THEN NULL WHEN i % 21 = 1 THEN '{}' ELSE ARRAY[i, NULLIF(i % 4, 0), -i] END,
      CASE WHEN i % 22 = 0 THEN NULL ELSE ARRAY[i::int8 * 1000000007, -9223372036854775807] END,
      CASE WHEN i % 24 = 0 THEN NULL WHEN i % 24 = 1 THEN '{}' ELSE ARRAY['a' || i, NULL, '', 'ß😀'] END,
      CASE WHEN i % 25 = 0 THEN NULL ELSE ARRAY[i / 100.0, -0.01, NULL]::numeric(10,2)[] END,
      CASE WHEN i % 26 = 0 THEN NULL ELSE ARRAY[i % 2 = 0, NULL] END,
      CASE WHEN i % 27 = 0 THEN NULL ELSE ARRAY[i * 0.5, -i * 1.25e10] END
    FROM generate_series(4, ${ROWS}) i;

    -- all NULL
    INSERT INTO pq_all (id) VALUES (1);
    -- minimums and -infinities
    INSERT INTO pq_all VALUES (2, false, -32768, -2147483648, -9223372036854775808, '-Infinity', '-Infinity',
      -999.99, -999999999999.999999, '-9999999999999999999999999999.9999999999', -9999900, 'NaN',
      '', '', '', '-infinity', '00:00:00', '-infinity', '-infinity',
      '00000000-0000-0000-0000-000000000000', '', '[]', '{}', 'sad',
      '{}', '{-9223372036854775808}', '{NULL}', '{}', '{}', '{}');
    -- maximums and infinities; a string too long for statistics
    INSERT INTO pq_all VALUES (3, true, 32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity',
      999.99, 999999999999.999999, '9999999999999999999999999999.9999999999', 9999900, 'Infinity',
      repeat('ÿ', 5000), repeat('é', 20), 'ééééé', 'infinity', '24:00:00', 'infinity', 'infinity',
      'ffffffff-ffff-ffff-ffff-ffffffffffff', '\\xff00', '{"ü": "😀", "n": [1.5e300, -0.0]}', '{"a": {"b": [null, false]}}', 'happy 😀',
      '{{1,2},{3,NULL}}', '{9223372036854775807, NULL}', '{"", "😀😀"}', '{99999999.99, -99999999.99}', '{true, false}',
      '{NaN, Infinity, -Infinity, -0}');
    -- NaN, -0, subnormals, range ends of date and timestamp, numeric scale
    UPDATE pq_all SET c_float4 = 'NaN', c_float8 = 'NaN',
      c_date = '4713-01-01 BC', c_ts = '4713-01-01 00:00:00 BC', c_tstz = '4713-01-01 00:00:00+00 BC',
      c_num = '3.14159265358979323846264338327950288419716939937510582097494459230781640628620899'
      WHERE id = 4;
    UPDATE pq_all SET c_float4 = '-0', c_float8 = '-0', c_date = '5874897-12-31',
      c_ts = '294246-12-31 23:59:59.999999', c_tstz = '294246-12-31 23:59:59.999999+00',
      c_num = '-0.000000000000000000000000000000000001' WHERE id = 5;
    UPDATE pq_all SET c_float4 = '1.4e-45', c_float8 = '4.9e-324', c_num5_2 = '-0.01', c_num = '-Infinity' WHERE id = 6;
    UPDATE pq_all SET c_float4 = '3.4028235e38', c_float8 = '1.7976931348623157e308' WHERE id = 7;
    UPDATE pq_all SET c_text = 'ünïcödé 𝄞 😀 日本語 עברית', c_varchar = '😀', c_char = 'ñ' WHERE id = 8;
  `);
});

after(async () => {
  conn?.closeSync?.();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await psql(`${PRE} DROP TABLE IF EXISTS pq_all; DROP TYPE IF EXISTS pq_mood;`).catch(() => {});
});

/** Run parquet_encode and write the file to a temporary path; returns it. */
async function encode(query, options, name) {
  const [[hex]] = await psql(`SELECT dms_stream.parquet_encode(${lit(query)}, ${lit(JSON.stringify(options))})`);
  assert.ok(hex.startsWith('\\x'), 'bytea in hex');
  const buf = Buffer.from(hex.slice(2), 'hex');
  const file = path.join(tmp, `${name}.parquet`);
  fs.writeFileSync(file, buf);
  return { file, buf };
}

async function duckRows(sql) {
  const r = await conn.runAndReadAll(sql);
  return r.getRowObjects();
}

const isoDays = (days) => {
  if (days === 2147483647) return 'infinity';
  if (days === -2147483647) return '-infinity';
  return String(days);
};
const micros = (v) => {
  if (v === 9223372036854775807n) return 'infinity';
  if (v === -9223372036854775807n) return '-infinity';
  return String(v);
};
const hex = (u8) => Buffer.from(u8).toString('hex');
const num = (s) => (s === null ? null : Number(s));
const approx = (a, b) => a === b || Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b));

function floatEq(expectedText, actual, single) {
  if (expectedText === null) return actual === null || actual === undefined;
  let e = Number(expectedText);
  if (single) e = Math.fround(e);
  return Object.is(e, actual);
}

function jsonEq(expectedText, actual) {
  if (expectedText === null) return actual === null || actual === undefined;
  try {
    assert.deepStrictEqual(actual, JSON.parse(expectedText));
    return true;
  } catch {
    return false;
  }
}

function listEq(expectedJson, actual, elem = (x) => x) {
  if (expectedJson === null) return actual === null || actual === undefined;
  const e = JSON.parse(expectedJson);
  if (!Array.isArray(actual) || actual.length !== e.length) return false;
  if (elem === 'float') return e.every((x, i) => (x === null ? actual[i] === null || actual[i] === undefined : Object.is(Number(x), actual[i])));
  return e.every((x, i) => {
    const a = actual[i] === undefined || actual[i] === null ? null : elem(actual[i]);
    if (x === null || a === null) return x === a;
    if (typeof x === 'number') return approx(x, Number(a));
    return x === a;
  });
}

// Per column: pg = canonical text in PostgreSQL (NULL stays NULL), duck =
// DuckDB expression of the same text (or a raw value with a duckEq), hyp =
// hyparquet value to that text (or a hypEq).
const same = (c) => `${c}::VARCHAR`;
const COLUMNS = [
  { c: 'c_bool', pg: 'c_bool::text', duck: same, hyp: String, physical: 'BOOLEAN' },
  { c: 'c_int2', pg: 'c_int2::text', duck: same, hyp: String, physical: 'INT32', converted: 'INT_16', duckType: 'SMALLINT' },
  { c: 'c_int4', pg: 'c_int4::text', duck: same, hyp: String, physical: 'INT32', converted: 'INT_32', duckType: 'INTEGER' },
  { c: 'c_int8', pg: 'c_int8::text', duck: same, hyp: String, physical: 'INT64', converted: 'INT_64', duckType: 'BIGINT', stats: true },
  { c: 'c_float4', pg: 'c_float4::text', duck: (c) => c, duckEq: (e, a) => floatEq(e, a, true),
    hypEq: (e, a) => floatEq(e, a, true), physical: 'FLOAT', duckType: 'FLOAT' },
  { c: 'c_float8', pg: 'c_float8::text', duck: (c) => c, duckEq: (e, a) => floatEq(e, a, false),
    hypEq: (e, a) => floatEq(e, a, false), physical: 'DOUBLE', duckType: 'DOUBLE' },
  { c: 'c_num5_2', pg: 'c_num5_2::text', duck: same, hypEq: (e, a) => approx(num(e), a), physical: 'INT32', converted: 'DECIMAL', duckType: 'DECIMAL(5,2)' },
  { c: 'c_num18', pg: 'c_num18::text', duck: same, hypEq: (e, a) => approx(num(e), a), physical: 'INT64', converted: 'DECIMAL', duckType: 'DECIMAL(18,6)' },
  { c: 'c_num38', pg: 'c_num38::text', duck: same, hypEq: (e, a) => approx(num(e), a), physical: 'FIXED_LEN_BYTE_ARRAY', converted: 'DECIMAL', duckType: 'DECIMAL(38,10)' },
  { c: 'c_num_neg', pg: 'c_num_neg::text', duck: same, hypEq: (e, a) => approx(num(e), a), physical: 'INT32', converted: 'DECIMAL', duckType: 'DECIMAL(7,0)' },
  { c: 'c_num', pg: 'c_num::text', duck: same, hyp: String, physical: 'BYTE_ARRAY', converted: 'UTF8', duckType: 'VARCHAR' },
  { c: 'c_text', pg: 'c_text', duck: same, hyp: String, physical: 'BYTE_ARRAY', converted: 'UTF8', duckType: 'VARCHAR', stats: true },
  { c: 'c_varchar', pg: 'c_varchar::text', duck: same, hyp: String, physical: 'BYTE_ARRAY', converted: 'UTF8', duckType: 'VARCHAR' },
  // char(n) as stored: padded with spaces
  { c: 'c_char', pg: 'CASE WHEN c_char IS NULL THEN NULL ELSE concat(c_char) END', duck: same, hyp: String,
    physical: 'BYTE_ARRAY', converted: 'UTF8', duckType: 'VARCHAR' },
  { c: 'c_date', pg: "CASE WHEN isfinite(c_date) THEN (c_date - date '1970-01-01')::text ELSE c_date::text END",
    duck: (c) => `CASE WHEN isinf(${c}) THEN CASE WHEN ${c} > DATE '1970-01-01' THEN 'infinity' ELSE '-infinity' END ELSE (${c} - DATE '1970-01-01')::VARCHAR END`,
    hyp: isoDays, physical: 'INT32', converted: 'DATE', duckType: 'DATE' },
  { c: 'c_time', pg: 'c_time::text', duck: same, pgHyp: '(extract(epoch FROM c_time) * 1000000)::bigint::text', hyp: String,
    physical: 'INT64', converted: 'TIME_MICROS', duckType: 'TIME' },
  { c: 'c_ts', pg: 'CASE WHEN isfinite(c_ts) THEN (extract(epoch FROM c_ts) * 1000000)::bigint::text ELSE c_ts::text END',
    duck: (c) => `CASE WHEN isinf(${c}) THEN CASE WHEN ${c} > TIMESTAMP '1970-01-01' THEN 'infinity' ELSE '-infinity' END ELSE epoch_us(${c})::VARCHAR END`,
    hyp: micros, physical: 'INT64', converted: 'TIMESTAMP_MICROS', duckType: 'TIMESTAMP' },
  { c: 'c_tstz', pg: 'CASE WHEN isfinite(c_tstz) THEN (extract(epoch FROM c_tstz) * 1000000)::bigint::text ELSE c_tstz::text END',
    duck: (c) => `CASE WHEN isinf(${c}) THEN CASE WHEN ${c} > TIMESTAMPTZ '1970-01-01 00:00:00+00' THEN 'infinity' ELSE '-infinity' END ELSE epoch_us(${c})::VARCHAR END`,
    hyp: micros, physical: 'INT64', converted: 'TIMESTAMP_MICROS', duckType: 'TIMESTAMP WITH TIME ZONE' },
  { c: 'c_uuid', pg: 'c_uuid::text', duck: same, hyp: String, physical: 'FIXED_LEN_BYTE_ARRAY', duckType: 'UUID' },
  { c: 'c_bytea', pg: "encode(c_bytea, 'hex')", duck: (c) => `lower(hex(${c}))`, hyp: hex, physical: 'BYTE_ARRAY', duckType: 'BLOB' },
  { c: 'c_json', pg: 'c_json::text', duck: same, hypEq: jsonEq, physical: 'BYTE_ARRAY', converted: 'JSON', duckType: 'JSON' },
  { c: 'c_jsonb', pg: 'c_jsonb::text', duck: same, hypEq: jsonEq, physical: 'BYTE_ARRAY', converted: 'JSON', duckType: 'JSON' },
  { c: 'c_enum', pg: 'c_enum::text', duck: same, hyp: String, physical: 'BYTE_ARRAY', converted: 'UTF8', duckType: 'VARCHAR' },
  // arrays: canonical = JSON of the flattened elements (int8 and float8 as text)
  ...[['a_int4', 'x', null], ['a_int8', 'x::text', String], ['a_text', 'x', null], ['a_num', 'x', null],
    ['a_bool', 'x', null], ['a_float8', 'x::text', 'float']].map(([c, elem, conv]) => ({
    c,
    list: true,
    pg: `CASE WHEN ${c} IS NULL THEN NULL ELSE coalesce((SELECT json_agg(${elem}) FROM unnest(${c}) x)::text, '[]') END`,
    duck: (col) => (conv === 'float' ? col : conv ? `to_json(list_transform(${col}, x -> x::VARCHAR))::VARCHAR` : `to_json(${col})::VARCHAR`),
    duckEq: (e, a) => (conv === 'float' ? listEq(e, a === null ? null : a.items, 'float') : listEq(e, a === null ? null : JSON.parse(a))),
    hypEq: (e, a) => listEq(e, a, conv ?? ((x) => x)),
  })),
];

/** PostgreSQL's canonical rows: Map id -> {col: text|null}. */
async function sourceRows() {
  const exprs = COLUMNS.flatMap((k) => [k.pg, k.pgHyp ?? 'NULL']);
  const [[json]] = await psql(`${PRE} SET extra_float_digits = 1;
    SELECT json_agg(json_build_array(id, ${exprs.join(', ')}) ORDER BY id) FROM pq_all`);
  const rows = new Map();
  for (const r of JSON.parse(json)) {
    const o = {};
    COLUMNS.forEach((k, i) => {
      o[k.c] = r[1 + 2 * i];
      o[`${k.c}:hyp`] = r[2 + 2 * i];
    });
    rows.set(r[0], o);
  }
  return rows;
}

function checkValue(reader, id, k, expected, actual, eq, toText) {
  let ok;
  if (eq) ok = eq(expected, actual);
  else if (expected === null) ok = actual === null || actual === undefined;
  else ok = actual !== null && actual !== undefined && toText(actual) === expected;
  if (!ok) {
    const show = (v) => (typeof v === 'bigint' ? `${v}n` : Array.isArray(v) ? JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x)) : String(v));
    assert.fail(`${reader}: row id ${id}, column ${k.c}: expected ${expected === null ? 'NULL' : JSON.stringify(expected).slice(0, 200)}, got ${show(actual).slice(0, 200)}`);
  }
}

async function checkWithDuckDB(file, source) {
  const sel = COLUMNS.map((k) => `${k.duck(k.c)} AS ${k.c}`).join(', ');
  const rows = await duckRows(`SELECT id, ${sel} FROM read_parquet('${file}') ORDER BY id`);
  assert.equal(rows.length, source.size, 'DuckDB row count');
  for (const r of rows) {
    const exp = source.get(r.id);
    assert.ok(exp, `row id ${r.id} in the source`);
    for (const k of COLUMNS) {
      const v = r[k.c];
      checkValue('DuckDB', r.id, k, exp[k.c], v === null ? null : v, k.duckEq, (x) => String(x));
    }
  }
}

const hypParsers = {
  timestampFromMilliseconds: (x) => x,
  timestampFromMicroseconds: (x) => x,
  timestampFromNanoseconds: (x) => x,
  dateFromDays: (x) => x,
  stringFromBytes: (b) => b && new TextDecoder().decode(b),
  jsonFromBytes: (b) => b && JSON.parse(new TextDecoder().decode(b)),
  uuidFromBytes: (b) => {
    if (!b) return b;
    const h = Buffer.from(b).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  },
  geometryFromBytes: (x) => x,
  geographyFromBytes: (x) => x,
};

async function checkWithHyparquet(buf, source) {
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const rows = await parquetReadObjects({ file: ab, compressors, utf8: false, parsers: hypParsers });
  assert.equal(rows.length, source.size, 'hyparquet row count');
  for (const r of rows) {
    const exp = source.get(r.id);
    assert.ok(exp, `row id ${r.id} in the source`);
    for (const k of COLUMNS) {
      const v = r[k.c];
      const e = exp[`${k.c}:hyp`] ?? exp[k.c];
      checkValue('hyparquet', r.id, k, e, v, k.hypEq, k.hyp ?? String);
    }
  }
  return parquetMetadata(ab);
}

/** Expected statistics per row group from PostgreSQL (rows in id order). */
async function expectedStats() {
  const nullExprs = COLUMNS.map((k) => (k.list
    ? `sum(CASE WHEN ${k.c} IS NULL OR cardinality(${k.c}) = 0 THEN 1 ELSE (SELECT count(*) FROM unnest(${k.c}) x WHERE x IS NULL) END)`
    : `count(*) - count(${k.c})`));
  const [[json]] = await psql(`${PRE}
    SELECT json_agg(r ORDER BY rg) FROM (
      SELECT rg, json_build_array(rg, ${nullExprs.join(', ')},
        min(c_int8)::text, max(c_int8)::text,
        min(c_text COLLATE "C"), max(c_text COLLATE "C"),
        greatest(octet_length(min(c_text COLLATE "C")), octet_length(max(c_text COLLATE "C")))) AS r
      FROM (SELECT *, (row_number() OVER (ORDER BY id) - 1) / ${RG_ROWS} AS rg FROM pq_all) s GROUP BY rg) g`);
  const out = new Map();
  for (const r of JSON.parse(json)) {
    const o = { nulls: {} };
    COLUMNS.forEach((k, i) => { o.nulls[k.c] = Number(r[1 + i]); });
    const n = 1 + COLUMNS.length;
    [o.int8Min, o.int8Max, o.textMin, o.textMax, o.textLongest] = r.slice(n);
    out.set(r[0], o);
  }
  return out;
}

const CODECS = [['none', 'UNCOMPRESSED'], ['snappy', 'SNAPPY'], ['gzip', 'GZIP'], ['zstd', 'ZSTD']];
let source;
let stats;

for (const [codec, codecName] of CODECS) {
  for (const dictionary of [true, false]) {
    test(`every mapped type, codec ${codec}, dictionary ${dictionary ? 'on' : 'off'}: DuckDB and hyparquet read the source rows`, async () => {
      source ??= await sourceRows();
      stats ??= await expectedStats();
      const options = { codec, dictionary, rowGroupRows: RG_ROWS, pageBytes: 8192, dictionaryBytes: 4096 };
      const { file, buf } = await encode('SELECT * FROM pq_all ORDER BY id', options, `all_${codec}_${dictionary}`);
      assert.equal(buf.subarray(0, 4).toString(), 'PAR1');
      assert.equal(buf.subarray(-4).toString(), 'PAR1');

      await checkWithDuckDB(file, source);
      const meta = await checkWithHyparquet(buf, source);
      assert.equal(Number(meta.num_rows), ROWS);
      assert.equal(meta.row_groups.length, Math.ceil(ROWS / RG_ROWS));
      for (const rg of meta.row_groups) {
        for (const col of rg.columns) assert.equal(col.meta_data.codec, codecName);
      }

      // schema: physical and logical types
      const schema = await duckRows(`SELECT name, type, converted_type, logical_type, duckdb_type, repetition_type
                                     FROM parquet_schema('${file}')`);
      const byName = new Map(schema.map((s) => [s.name, s]));
      for (const k of COLUMNS) {
        const s = byName.get(k.c);
        assert.ok(s, `schema has ${k.c}`);
        assert.equal(s.repetition_type, 'OPTIONAL', `${k.c} is OPTIONAL`);
        if (k.list) {
          assert.equal(s.converted_type, 'LIST', `${k.c} is a LIST`);
          continue;
        }
        if (k.physical) assert.equal(s.type, k.physical, `${k.c} physical type`);
        if (k.converted) assert.equal(s.converted_type, k.converted, `${k.c} converted type`);
        if (k.duckType) assert.equal(s.duckdb_type, k.duckType, `${k.c} as DuckDB reads it`);
      }
      assert.match(String(byName.get('c_ts').logical_type), /isAdjustedToUTC=0.*MICROS=MicroSeconds/);
      assert.match(String(byName.get('c_tstz').logical_type), /isAdjustedToUTC=1.*MICROS=MicroSeconds/);
      assert.match(String(byName.get('c_time').logical_type), /isAdjustedToUTC=0.*MICROS=MicroSeconds/);
      assert.match(String(byName.get('c_uuid').logical_type), /UUID/);
      assert.equal(byName.get('element') !== undefined, true, 'LIST element');

      // row groups, encodings and statistics
      const md = await duckRows(`SELECT row_group_id, row_group_num_rows, path_in_schema, encodings, compression,
                                        stats_min_value, stats_max_value, stats_null_count
                                 FROM parquet_metadata('${file}')`);
      const leaf = (p) => p.split(', ')[0];
      for (const m of md) {
        const rg = Number(m.row_group_id);
        const exp = stats.get(rg);
        const c = leaf(m.path_in_schema);
        assert.equal(m.compression, codecName);
        if (c === 'id') continue;
        assert.equal(Number(m.row_group_num_rows), Math.min(RG_ROWS, ROWS - rg * RG_ROWS));
        assert.equal(Number(m.stats_null_count), exp.nulls[c], `null_count of ${c} in row group ${rg}`);
        if (!dictionary || c === 'c_bool' || c === 'a_bool' || c === 'c_uuid') {
          // booleans are always PLAIN; unique values (uuid) are not worth a dictionary
          assert.doesNotMatch(m.encodings, /DICTIONARY/, `${c} without dictionary in row group ${rg}`);
        } else if (['c_enum', 'c_char', 'c_varchar', 'c_jsonb'].includes(c)) {
          assert.match(m.encodings, /RLE_DICTIONARY/, `${c} dictionary-encoded in row group ${rg}`);
        }
        if (c === 'c_int8') {
          assert.equal(m.stats_min_value, exp.int8Min, `min of c_int8 in row group ${rg}`);
          assert.equal(m.stats_max_value, exp.int8Max, `max of c_int8 in row group ${rg}`);
        }
        if (c === 'c_text') {
          if (exp.textLongest > 4096) {
            assert.equal(m.stats_min_value, null, 'min left out with a value too long for statistics');
          } else {
            assert.equal(m.stats_min_value, exp.textMin, `min of c_text in row group ${rg}`);
            assert.equal(m.stats_max_value, exp.textMax, `max of c_text in row group ${rg}`);
          }
        }
      }
      // the high-cardinality text chunk fell back from the dictionary to PLAIN
      if (dictionary) {
        const t = md.find((m) => m.path_in_schema === 'c_text' && Number(m.row_group_id) === 1);
        assert.match(t.encodings, /PLAIN/);
        assert.match(t.encodings, /RLE_DICTIONARY/);
      }
    });
  }
}

test('row groups are bounded by bytes as well as rows', async () => {
  const { file, buf } = await encode(
    "SELECT i, md5(i::text) || repeat('x', i % 50) AS s FROM generate_series(1, 20000) i",
    { codec: 'none', dictionary: false, rowGroupRows: 1000000, rowGroupBytes: 65536 },
    'bytes_bound',
  );
  const rgs = await duckRows(`SELECT row_group_id, max(row_group_num_rows) AS n, max(row_group_bytes) AS b
                              FROM parquet_metadata('${file}') GROUP BY row_group_id ORDER BY row_group_id`);
  assert.ok(rgs.length >= 10, `several row groups (${rgs.length})`);
  for (const rg of rgs) assert.ok(Number(rg.b) < 65536 * 2, `row group ${rg.row_group_id} of ${rg.b} bytes`);
  const [{ n, s }] = await duckRows(`SELECT count(*) AS n, sum(i) AS s FROM read_parquet('${file}')`);
  assert.equal(Number(n), 20000);
  assert.equal(Number(s), (20000 * 20001) / 2);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const rows = await parquetReadObjects({ file: ab });
  assert.equal(rows.length, 20000);
  assert.equal(rows[19999].s, `${(await psql("SELECT md5('20000')"))[0][0]}`);
});

test('an empty result is a valid file with the schema and no rows', async () => {
  const { file, buf } = await encode('SELECT 1::int AS a, NULL::text AS b WHERE false', { codec: 'zstd' }, 'empty');
  const rows = await duckRows(`SELECT * FROM read_parquet('${file}')`);
  assert.equal(rows.length, 0);
  const schema = await duckRows(`SELECT name, duckdb_type FROM parquet_schema('${file}') WHERE name <> 'schema'`);
  assert.deepEqual(schema.map((s) => [s.name, s.duckdb_type]), [['a', 'INTEGER'], ['b', 'VARCHAR']]);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  assert.equal(Number(parquetMetadata(ab).num_rows), 0);
  assert.deepEqual(await parquetReadObjects({ file: ab }), []);
});

test('the same rows as DuckDB writes them, file size compared (diagnostic)', async () => {
  // Not an assertion of size: printed so that regressions show in the log.
  const n = 200000;
  const { buf } = await encode(`SELECT i AS id, 'customer ' || (i % 1000) AS name, ((i % 97) * 1.5)::numeric(10,1) AS amount,
                                       date '2020-01-01' + i % 365 AS day FROM generate_series(1, ${n}) i`, { codec: 'zstd' }, 'size_ours');
  const theirs = path.join(tmp, 'size_duckdb.parquet');
  await duckRows(`COPY (SELECT i::INTEGER AS id, 'customer ' || (i % 1000) AS name, ((i % 97) * 1.5)::DECIMAL(10,1) AS amount,
                               DATE '2020-01-01' + (i % 365)::INTEGER AS day FROM range(1, ${n + 1}) t(i))
                  TO '${theirs}' (FORMAT parquet, COMPRESSION zstd)`);
  const size = fs.statSync(theirs).size;
  console.log(`# ${n} rows, zstd: dms_stream ${buf.length} bytes, DuckDB ${size} bytes (ratio ${(buf.length / size).toFixed(3)})`);
  const [{ c }] = await duckRows(`SELECT count(*) AS c FROM (SELECT * FROM read_parquet('${path.join(tmp, 'size_ours.parquet')}')
                                  EXCEPT SELECT * FROM read_parquet('${theirs}'))`);
  assert.equal(Number(c), 0, 'same rows as DuckDB writes');
});

test('a wide table (200 columns) is written with bounded memory and read back', async () => {
  const cols = [];
  for (let k = 0; k < 200; k++) {
    if (k % 3 === 0) cols.push(`(i * ${k} + ${k}) % ${(k * 997) % 50000 + 10} AS c${k}`);
    else if (k % 3 === 1) cols.push(`'v' || ((i * ${k}) % ${k * 300 + 7}) AS c${k}`);
    else cols.push(`md5((i + ${k})::text) AS c${k}`);
  }
  const query = `SELECT ${cols.join(', ')} FROM generate_series(1, 50000) i`;
  const file = path.join(tmp, 'wide.parquet');
  fs.chmodSync(tmp, 0o777);
  // a fresh backend: its peak resident memory is the writer's (no table scanned)
  const rows = await psql(`${PRE}
    SELECT rows FROM dms_stream.parquet_write_file(${lit(query)}, ${lit(file)}, '{"codec": "zstd"}');
    SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\\s+(\\d+) kB');`);
  assert.equal(Number(rows[0][0]), 50000);
  const hwmMB = Number(rows[1][0]) / 1024;
  console.log(`# 200 columns x 50000 rows: backend VmHWM ${hwmMB.toFixed(1)} MB`);
  assert.ok(hwmMB < 200, `backend peak ${hwmMB.toFixed(1)} MB`);
  const sums = cols.filter((_, k) => k % 3 === 0).map((_, j) => `sum(c${3 * j})`);
  const texts = cols.filter((_, k) => k % 3 !== 0).map((c) => c.split(' AS ')[1]).map((c) => `sum(length(${c}))`);
  const [pg] = await psql(`SELECT ${sums.join(', ')}, ${texts.join(', ')} FROM (${query}) s`);
  const [dk] = (await conn.runAndReadAll(`SELECT ${sums.join(', ')}, ${texts.join(', ')} FROM read_parquet('${file}')`)).getRows();
  assert.deepEqual(dk.map(String), pg);
});
