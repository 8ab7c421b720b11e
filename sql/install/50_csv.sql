-- CSV tools (src/csv_sql.c over the streaming reader src/csv.c and the
-- DMS value typing src/dms_value.c).
--
-- Each reads CSV with an S3 source endpoint's settings (CsvDelimiter,
-- CsvRowDelimiter, IgnoreHeaderRows, Rfc4180, CsvNullValue) and external
-- table definition, exactly as a replication task does.
--
-- Admin only: they read endpoint configuration, credentials included.

CREATE FUNCTION dms_stream.csv_preview(
	endpoint_name text,
	csv text,
	table_owner text DEFAULT NULL,
	table_name text DEFAULT NULL,
	cdc boolean DEFAULT false,
	max_rows integer DEFAULT 100)
RETURNS TABLE (line bigint, operation text, table_owner text, table_name text,
               message_data jsonb, error text)
AS 'MODULE_PATHNAME', 'dms_csv_preview'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.csv_preview(text, text, text, text, boolean, integer) IS
'Check a CSV file against an S3 source endpoint before starting a task: read csv with the endpoint''s '
'S3Settings and ExternalTableDefinition as a task does and return, per record, its line, operation '
'(load, or insert/update/delete for cdc files), table, and either the DMS data object (column name -> '
'value as rendered in Kinesis messages, NULLs included) or the error with its column. A full-load '
'file belongs to table_owner.table_name (default: the only table); a CDC record (cdc true) names '
'operation, table and schema first. A truncated value gives both the truncated data and the error. '
'At most max_rows rows (NULL: all). Admin only.';

CREATE FUNCTION dms_stream.csv_preview(
	endpoint_name text,
	csv bytea,
	table_owner text DEFAULT NULL,
	table_name text DEFAULT NULL,
	cdc boolean DEFAULT false,
	max_rows integer DEFAULT 100)
RETURNS TABLE (line bigint, operation text, table_owner text, table_name text,
               message_data jsonb, error text)
AS 'MODULE_PATHNAME', 'dms_csv_preview_bytea'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.csv_preview(text, bytea, text, text, boolean, integer) IS
'csv_preview of a file''s bytes as they are (e.g. s3_get_object output or pg_read_binary_file), '
'so that bytes that are not UTF-8 are reported as the task would. Admin only.';

CREATE FUNCTION dms_stream.csv_parse_records(
	endpoint_name text,
	data bytea,
	chunk_bytes integer DEFAULT 65536,
	max_record_bytes integer DEFAULT NULL,
	start_offset bigint DEFAULT 0,
	start_line bigint DEFAULT 1)
RETURNS TABLE (line bigint, start_offset bigint, end_offset bigint, end_line bigint,
               fields text[], quoted boolean[], error text, raw text)
AS 'MODULE_PATHNAME', 'dms_csv_parse_records'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.csv_parse_records(text, bytea, integer, integer, bigint, bigint) IS
'The records of CSV data as the streaming reader splits them with the endpoint''s CSV settings, '
'fed chunk_bytes at a time: start line and byte offset, end offset and line (where the next record '
'starts: a task resumes there), the fields and whether each was quoted, or the error, and the raw '
'text (bytes that are not UTF-8 shown as \xNN). data is the file from start_offset, at start_line. '
'max_record_bytes overrides dms_stream.csv_max_record_size. Admin only.';

CREATE FUNCTION dms_stream.csv_scan_file(
	endpoint_name text,
	path text,
	table_owner text DEFAULT NULL,
	table_name text DEFAULT NULL,
	cdc boolean DEFAULT false,
	render boolean DEFAULT true,
	chunk_bytes integer DEFAULT 1048576,
	max_record_bytes integer DEFAULT NULL)
RETURNS TABLE (bytes bigint, records bigint, rows_ok bigint, rows_failed bigint,
               json_bytes bigint, reader_memory bigint, seconds double precision,
               end_offset bigint, first_error_line bigint, first_error text)
AS 'MODULE_PATHNAME', 'dms_csv_scan_file'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.csv_scan_file(text, text, text, text, boolean, boolean, integer, integer) IS
'Read a file of the database server in chunks of chunk_bytes through the streaming reader and, when '
'render, the routing and DMS JSON rendering of a task, and return counts: bytes, records, good and '
'failed rows, bytes of JSON data objects, the reader''s largest buffer size, the seconds spent, the '
'offset where reading ended and the first error. For checking big files and measuring throughput. '
'max_record_bytes overrides dms_stream.csv_max_record_size. '
'Admin only, and the caller must also be a superuser or a member of pg_read_server_files.';

CREATE FUNCTION dms_stream.csv_render_value(
	column_definition jsonb,
	value text,
	quoted boolean DEFAULT false,
	csv_null_value text DEFAULT NULL,
	no_hex_prefix boolean DEFAULT false)
RETURNS TABLE (json text, is_null boolean, is_empty boolean, error_class text, error text)
AS 'MODULE_PATHNAME', 'dms_csv_render_value'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.csv_render_value(jsonb, text, boolean, text, boolean) IS
'Type one CSV field for a column given as a DMS TableColumns element (e.g. {"ColumnName": "c", '
'"ColumnType": "NUMERIC", "ColumnPrecision": 5, "ColumnScale": 2}) and return the exact JSON text a '
'Kinesis message carries for it, whether it is NULL or empty, and the error class (data or truncation; '
'a truncated value is returned too) and message. quoted says the field was in quotes; csv_null_value '
'is the endpoint''s CsvNullValue; no_hex_prefix the target''s NoHexPrefix. Admin only.';

REVOKE ALL ON FUNCTION dms_stream.csv_preview(text, text, text, text, boolean, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.csv_preview(text, bytea, text, text, boolean, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.csv_parse_records(text, bytea, integer, integer, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.csv_scan_file(text, text, text, text, boolean, boolean, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.csv_render_value(jsonb, text, boolean, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dms_stream.csv_preview(text, text, text, text, boolean, integer) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.csv_preview(text, bytea, text, text, boolean, integer) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.csv_parse_records(text, bytea, integer, integer, bigint, bigint) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.csv_scan_file(text, text, text, text, boolean, boolean, integer, integer) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.csv_render_value(jsonb, text, boolean, text, boolean) TO dms_stream_admin;
