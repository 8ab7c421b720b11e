-- Parquet writer (src/parquet.c, the file format of delta extracts) and
-- its SQL entry point for tests and inspection (src/parquet_sql.c).
--
-- Admin only (granted in 90_privileges.sql): it runs any query as the caller
-- and holds the whole file in memory.

CREATE FUNCTION dms_stream.parquet_encode(query text, options jsonb DEFAULT '{}')
RETURNS bytea
AS 'MODULE_PATHNAME', 'dms_parquet_encode'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.parquet_encode(text, jsonb) IS
'The rows of query as a complete Parquet file, written by the same writer as delta extracts. '
'options: codec ("none", "snappy", "gzip", "zstd"; default snappy), compressionLevel (0 = the '
'codec''s default), rowGroupRows (1000000), rowGroupBytes (67108864), pageBytes (1048576), '
'dictionary (true), dictionaryBytes (1048576), createdBy. The type mapping is in README.md '
'("Parquet type mapping"); a column of another type is an error. The file is at most 1 GB. Admin only.';

CREATE FUNCTION dms_stream.parquet_write_file(query text, path text, options jsonb DEFAULT '{}')
RETURNS TABLE (rows bigint, bytes bigint, seconds double precision)
AS 'MODULE_PATHNAME', 'dms_parquet_write_file'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.parquet_write_file(text, text, jsonb) IS
'parquet_encode into a file of the database server (overwritten): for results over 1 GB and benchmarks. '
'Returns the rows written, the file''s size and the seconds spent. Admin only, and the caller must also '
'be a superuser or a member of pg_write_server_files.';
