-- dms_stream.parquet_encode: the Parquet writer's SQL entry point. The files
-- themselves are read back by DuckDB and hyparquet in
-- test/integration/parquet.test.mjs; here: option errors, types without a
-- mapping, values a column's Parquet type cannot hold, and privileges.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;

-- A file starts and ends with the magic bytes.
SELECT substr(f, 1, 4) = 'PAR1'::bytea AS head, substr(f, length(f) - 3) = 'PAR1'::bytea AS tail
  FROM dms_stream.parquet_encode('SELECT 1 AS a') f;
SELECT length(dms_stream.parquet_encode('SELECT i FROM generate_series(1, 100) i',
       '{"codec": "zstd", "rowGroupRows": "10", "dictionary": "false", "pageBytes": 64}')) > 0 AS ok;
SELECT length(dms_stream.parquet_encode('SELECT 1', NULL)) > 0 AS null_options_are_defaults;

-- Bad options: the message names the option, the detail what is wrong.
SELECT dms_stream.parquet_encode('SELECT 1', '[]');
SELECT dms_stream.parquet_encode('SELECT 1', '{"codec": "lz4"}');
SELECT dms_stream.parquet_encode('SELECT 1', '{"codec": 1}');
SELECT dms_stream.parquet_encode('SELECT 1', '{"Codec": "zstd"}');
SELECT dms_stream.parquet_encode('SELECT 1', '{"rowGroupRows": 0}');
SELECT dms_stream.parquet_encode('SELECT 1', '{"rowGroupBytes": "lots"}');
SELECT dms_stream.parquet_encode('SELECT 1', '{"pageBytes": 1e12}');
SELECT dms_stream.parquet_encode('SELECT 1', '{"dictionary": "maybe"}');
SELECT dms_stream.parquet_encode('SELECT 1', '{"compressionLevel": 99}');

-- The query: one statement returning rows.
SELECT dms_stream.parquet_encode('SELECT 1; SELECT 2');
SELECT dms_stream.parquet_encode('CREATE TEMP TABLE t_pq (a int)');
SELECT dms_stream.parquet_encode('SELECT FROM generate_series(1, 3)');
SELECT dms_stream.parquet_encode('SELECT no_such_column');

-- Types without a mapping: an error at create naming the column and type.
SELECT dms_stream.parquet_encode('SELECT 1 AS ok, interval ''1 day'' AS span');
SELECT dms_stream.parquet_encode('SELECT point(1, 2) AS p');
SELECT dms_stream.parquet_encode('SELECT ARRAY[interval ''1 day''] AS spans');
SELECT dms_stream.parquet_encode('SELECT ROW(1, 2) AS r');
SELECT dms_stream.parquet_encode('SELECT ''12:00''::timetz AS t');

-- Values the column's Parquet type cannot hold: an error naming column and row.
SELECT dms_stream.parquet_encode('SELECT v::numeric(5,2) AS amount FROM (VALUES (''1.5''), (''NaN'')) s(v)');
SELECT dms_stream.parquet_encode('SELECT ts FROM (VALUES (timestamp ''2020-01-01''), (timestamp ''294276-12-31 23:59:59''), (''infinity'')) s(ts)');
-- ... but the same values as text are fine
SELECT length(dms_stream.parquet_encode('SELECT ''NaN''::numeric AS n, ''294276-12-31 23:59:59''::timestamp::text AS t')) > 0 AS ok;

-- Admin only.
CREATE ROLE regress_pq_admin IN ROLE dms_stream_admin;
CREATE ROLE regress_pq_reader;
SET ROLE regress_pq_admin;
SELECT length(dms_stream.parquet_encode('SELECT 1 AS a')) > 0 AS admin_may;
-- parquet_write_file writes a server file: pg_write_server_files too.
SELECT rows FROM dms_stream.parquet_write_file('SELECT 1 AS a', '/nonexistent/dir/f.parquet');
SET ROLE regress_pq_reader;
SELECT dms_stream.parquet_encode('SELECT 1 AS a');
RESET ROLE;
-- A file that cannot be created is an error naming it.
SELECT rows FROM dms_stream.parquet_write_file('SELECT i FROM generate_series(1, 1000) i', '/nonexistent/dir/f.parquet');
DROP ROLE regress_pq_admin;
DROP ROLE regress_pq_reader;
DROP EXTENSION dms_stream;
