-- Table mappings applied, and DMS messages rendered (src/mapping_sql.c over
-- src/mapping.c and src/dms_message.c, the code a replication task uses).
--
-- Both are diagnostics that touch no endpoint and no credential, meant to be
-- open to everybody: 90_privileges.sql revokes every function from PUBLIC
-- and grants these two back with the validators.

CREATE FUNCTION dms_stream.mapping_preview(
	table_mappings jsonb,
	schema_name text,
	table_name text,
	columns text[],
	column_types text[] DEFAULT NULL,
	pk_columns text[] DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dms_mapping_preview'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.mapping_preview(jsonb, text, text, text[], text[], text[]) IS
'What a DMS table-mapping document does to one source table with the given columns (optional DMS '
'types per column, default STRING, and primary key columns): whether it is selected and by which rule '
'(exclude wins over include and explicit), the target schema and table names and the rules giving '
'them (lowest rule-id wins), each column''s target name or why it is left out (remove-column, '
'exclude-columns), the object mapping with its attribute templates, the partition-key-type for full '
'load and changes, the source filters with the comparison they use, warnings, and the error that '
'would stop the table.';

CREATE FUNCTION dms_stream.render_message(
	kinesis_settings jsonb,
	task_settings jsonb,
	table_mappings jsonb,
	schema_name text,
	table_name text,
	operation text,
	data jsonb,
	pk_columns text[] DEFAULT NULL,
	before_image jsonb DEFAULT NULL,
	transaction jsonb DEFAULT NULL,
	event_id text DEFAULT NULL,
	at timestamptz DEFAULT NULL,
	columns jsonb DEFAULT NULL,
	task_id text DEFAULT NULL)
RETURNS TABLE (partition_key text, data text)
AS 'MODULE_PATHNAME', 'dms_render_message'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.render_message(jsonb, jsonb, jsonb, text, text, text, jsonb, text[], jsonb, jsonb, text, timestamptz, jsonb, text) IS
'The Kinesis record (partition key and data) a task sends for one change, in AWS DMS''s message '
'format: kinesis_settings (KinesisSettings; NULL = defaults), task_settings (BeforeImageSettings, '
'TargetMetadata.ParallelApplyThreads; NULL = defaults) and table_mappings (NULL = every table) are '
'validated as the catalog validates them. operation is load, insert, update, delete or a control '
'operation (create-table, drop-table, ...). data is the row as column -> JSON value (for control '
'operations: the control object, NULL for the default). columns gives the source columns in order '
'as DMS TableColumns elements ({"ColumnName", "ColumnType", "ColumnLength", "ColumnNullable", '
'"ColumnIsPk", ...}); without it they are data''s keys, typed by value. pk_columns sets the primary '
'key. before_image holds the before values of an update; transaction the DMS transaction fields '
'(transaction-id, transaction-record-id, prev-transaction-id, prev-transaction-record-id, '
'commit-timestamp, stream-position); event_id goes into metadata as event-id; at is the message '
'timestamp (NULL = now); task_id keys control records. No row is returned (with a notice saying '
'why) when the table is not selected, a source filter rejects the row, or the settings leave the '
'operation out.';
