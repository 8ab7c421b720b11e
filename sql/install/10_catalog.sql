-- Catalog: configuration in AWS DMS's own vocabulary, plus run-time state.
--
-- Constraints call the C validators, so garbage is rejected at INSERT time
-- whether a row comes from a registration function or from plain SQL.

-- Endpoints ----------------------------------------------------------------

CREATE TABLE dms_stream.endpoint (
	endpoint_name		text PRIMARY KEY
		CONSTRAINT endpoint_name_valid CHECK (dms_stream.check_identifier('endpoint', endpoint_name)),
	engine				text NOT NULL
		CONSTRAINT endpoint_engine_valid CHECK (engine IN ('s3', 'kinesis', 'postgres')),
	endpoint_type		text NOT NULL
		CONSTRAINT endpoint_type_valid CHECK (endpoint_type IN ('source', 'target')),
	settings			jsonb NOT NULL DEFAULT '{}',
	endpoint_url		text
		CONSTRAINT endpoint_url_valid CHECK (endpoint_url ~ '^https?://[^/?#\s]+/?$'),
	region				text
		CONSTRAINT endpoint_region_valid CHECK (region ~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$'),
	s3_addressing_style text NOT NULL DEFAULT 'auto'
		CONSTRAINT endpoint_addressing_valid CHECK (s3_addressing_style IN ('auto', 'path', 'virtual')),
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT endpoint_settings_valid
		CHECK (dms_stream.check_endpoint_settings(engine, endpoint_type, settings))
);

COMMENT ON TABLE dms_stream.endpoint IS
'Source and target endpoints; settings use the DMS API keys (S3Settings, KinesisSettings)';
COMMENT ON COLUMN dms_stream.endpoint.endpoint_url IS
'custom endpoint for S3- or Kinesis-compatible servers, e.g. http://127.0.0.1:9000; NULL = AWS';
COMMENT ON COLUMN dms_stream.endpoint.s3_addressing_style IS
'path (http://host/bucket/key), virtual (http://bucket.host/key) or auto (virtual on AWS, path on custom endpoints)';

-- Explicit keys for an endpoint.  Only dms_stream_admin can read this table.
CREATE TABLE dms_stream.endpoint_credential (
	endpoint_name		text PRIMARY KEY
		REFERENCES dms_stream.endpoint ON DELETE CASCADE ON UPDATE CASCADE,
	access_key_id		text NOT NULL
		CONSTRAINT credential_key_id_valid CHECK (access_key_id ~ '^[A-Za-z0-9]{3,128}$'),
	secret_access_key	text NOT NULL
		CONSTRAINT credential_secret_valid CHECK (length(secret_access_key) BETWEEN 1 AND 1024),
	session_token		text,
	updated_at			timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dms_stream.endpoint_credential IS
'explicit AWS keys of an endpoint (first in the credential chain); readable only by dms_stream_admin';

-- External table definitions, normalised from S3Settings.ExternalTableDefinition
-- by a trigger on dms_stream.endpoint.  Read-only for everyone.
CREATE TABLE dms_stream.external_table (
	endpoint_name		text NOT NULL
		REFERENCES dms_stream.endpoint ON DELETE CASCADE ON UPDATE CASCADE,
	table_owner			text NOT NULL,
	table_name			text NOT NULL,
	table_path			text NOT NULL,
	table_index			integer NOT NULL,
	PRIMARY KEY (endpoint_name, table_owner, table_name)
);

CREATE TABLE dms_stream.external_column (
	endpoint_name		text NOT NULL,
	table_owner			text NOT NULL,
	table_name			text NOT NULL,
	column_ordinal		integer NOT NULL,
	column_name			text NOT NULL,
	column_type			text NOT NULL
		CHECK (column_type IN ('BYTE', 'DATE', 'TIME', 'DATETIME', 'INT1', 'INT2', 'INT4', 'INT8',
							   'NUMERIC', 'REAL4', 'REAL8', 'STRING', 'UINT1', 'UINT2', 'UINT4',
							   'UINT8', 'BLOB', 'CLOB', 'BOOLEAN')),
	column_length		bigint,
	column_precision	integer,
	column_scale		integer,
	column_nullable		boolean NOT NULL,
	column_is_pk		boolean NOT NULL,
	column_date_format	text,
	PRIMARY KEY (endpoint_name, table_owner, table_name, column_ordinal),
	UNIQUE (endpoint_name, table_owner, table_name, column_name),
	FOREIGN KEY (endpoint_name, table_owner, table_name)
		REFERENCES dms_stream.external_table ON DELETE CASCADE ON UPDATE CASCADE
);

-- Replication tasks ---------------------------------------------------------

CREATE TABLE dms_stream.task (
	task_name			text PRIMARY KEY
		CONSTRAINT task_name_valid CHECK (dms_stream.check_identifier('task', task_name)),
	source_endpoint		text NOT NULL
		REFERENCES dms_stream.endpoint ON UPDATE CASCADE,
	target_endpoint		text NOT NULL
		REFERENCES dms_stream.endpoint ON UPDATE CASCADE,
	migration_type		text NOT NULL
		CONSTRAINT task_migration_type_valid
		CHECK (migration_type IN ('full-load', 'cdc', 'full-load-and-cdc')),
	table_mappings		jsonb NOT NULL
		CONSTRAINT task_table_mappings_valid CHECK (dms_stream.check_table_mappings(table_mappings)),
	task_settings		jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT task_settings_valid CHECK (dms_stream.check_task_settings(task_settings)),
	desired_state		text NOT NULL DEFAULT 'stopped'
		CONSTRAINT task_desired_state_valid CHECK (desired_state IN ('running', 'stopped')),
	start_type			text
		CONSTRAINT task_start_type_valid
		CHECK (start_type IN ('start-replication', 'resume-processing', 'reload-target')),
	status				text NOT NULL DEFAULT 'ready'
		CONSTRAINT task_status_valid
		CHECK (status IN ('ready', 'starting', 'running', 'stopping', 'stopped', 'failed')),
	stop_reason			text,
	last_error			text,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dms_stream.task IS
'replication tasks: source and target endpoints, DMS migration type, table mappings and task settings';
COMMENT ON COLUMN dms_stream.task.desired_state IS
'what the administrator asked for (start_task / stop_task); the worker drives status towards it';
COMMENT ON COLUMN dms_stream.task.status IS
'what the task is doing, in DMS task status words';

-- Delta loads ---------------------------------------------------------------

CREATE SEQUENCE dms_stream.delta_run_lock_key_seq AS integer;

CREATE TABLE dms_stream.delta_load_controller (
	target_table_name	text PRIMARY KEY
		CONSTRAINT delta_target_name_valid CHECK (target_table_name ~ '^[A-Za-z0-9_.-]{1,255}$'),
	source_schema		text NOT NULL,
	source_table		text NOT NULL,
	filter_column		text NOT NULL,
	filter_operator		text NOT NULL
		CONSTRAINT delta_filter_operator_valid
		CHECK (filter_operator IN ('lte', 'ste', 'gte', 'eq', 'noteq', 'null', 'notnull',
								   'between', 'notbetween')),
	start_value			text,
	end_value			text,
	active_flag			boolean NOT NULL DEFAULT true,
	output_s3_prefix	text NOT NULL
		CONSTRAINT delta_prefix_valid CHECK (output_s3_prefix !~ '^/' AND output_s3_prefix !~ '//'),
	target_endpoint		text NOT NULL
		REFERENCES dms_stream.endpoint ON UPDATE CASCADE,
	replication_task_settings jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT delta_task_settings_valid
		CHECK (dms_stream.check_task_settings(replication_task_settings)),
	watermark			text,
	next_file_number	bigint NOT NULL DEFAULT 1 CHECK (next_file_number >= 1),
	last_run_at			timestamptz,
	last_status			text CHECK (last_status IN ('running', 'succeeded', 'failed')),
	last_error			text,
	last_rows			bigint,
	last_bytes			bigint,
	last_files			integer,
	-- Run state kept by the run procedures (sql/install/70_delta.sql):
	-- the snapshot of the last extract when other transactions were open
	-- during it (their rows, committed later, are caught by the next run),
	-- the last run's history row, and the key of the session advisory lock
	-- that keeps two runs of this target apart.
	late_row_snapshot	pg_snapshot,
	last_run_id			bigint,
	run_lock_key		integer NOT NULL UNIQUE
		DEFAULT nextval('dms_stream.delta_run_lock_key_seq'),
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dms_stream.delta_load_controller IS
'one row per delta-extract target table (the seed''s DynamoDB controller table), managed with plain SQL';

-- Run-time state ------------------------------------------------------------

-- DMS TableStatistics per task and source table.
CREATE TABLE dms_stream.table_statistics (
	task_name			text NOT NULL
		REFERENCES dms_stream.task ON DELETE CASCADE ON UPDATE CASCADE,
	schema_name			text NOT NULL,
	table_name			text NOT NULL,
	full_load_rows		bigint NOT NULL DEFAULT 0,
	full_load_error_rows bigint NOT NULL DEFAULT 0,
	inserts				bigint NOT NULL DEFAULT 0,
	updates				bigint NOT NULL DEFAULT 0,
	deletes				bigint NOT NULL DEFAULT 0,
	ddls				bigint NOT NULL DEFAULT 0,
	full_load_start_time timestamptz,
	full_load_end_time	timestamptz,
	full_load_reloaded	boolean NOT NULL DEFAULT false,
	table_state			text NOT NULL DEFAULT 'Before load'
		CHECK (table_state IN ('Table does not exist', 'Before load', 'Full load',
							   'Table completed', 'Table cancelled', 'Table error',
							   'Table is being reloaded')),
	last_update_time	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (task_name, schema_name, table_name)
);

-- Rejected rows and records: nothing is dropped silently.
CREATE TABLE dms_stream.apply_exceptions (
	exception_id		bigserial PRIMARY KEY,
	task_name			text,
	target_table_name	text,
	table_owner			text,
	table_name			text,
	error_time			timestamptz NOT NULL DEFAULT now(),
	source_uri			text,
	line_number			bigint,
	column_number		integer,
	error_code			text NOT NULL,
	error				text NOT NULL,
	raw_data			text
);

COMMENT ON TABLE dms_stream.apply_exceptions IS
'rows that could not be read or delivered, with where they came from and why (DMS awsdms_apply_exceptions)';

-- One row per task run, full-load phase or delta extract.
CREATE TABLE dms_stream.run_history (
	run_id				bigserial PRIMARY KEY,
	run_kind			text NOT NULL CHECK (run_kind IN ('task', 'delta')),
	task_name			text,
	target_table_name	text,
	started_at			timestamptz NOT NULL DEFAULT now(),
	finished_at			timestamptz,
	status				text NOT NULL DEFAULT 'running'
		CHECK (status IN ('running', 'succeeded', 'failed', 'stopped')),
	rows_processed		bigint NOT NULL DEFAULT 0,
	bytes_written		bigint NOT NULL DEFAULT 0,
	files_written		integer NOT NULL DEFAULT 0,
	message				text,
	details				jsonb,
	CHECK ((run_kind = 'task') = (task_name IS NOT NULL)),
	CHECK ((run_kind = 'delta') = (target_table_name IS NOT NULL))
);

CREATE INDEX run_history_task_idx ON dms_stream.run_history (task_name, started_at);
CREATE INDEX run_history_delta_idx ON dms_stream.run_history (target_table_name, started_at);

-- Configuration is user data: pg_dump must keep it.  external_table and
-- external_column are not dumped: the endpoint's ExternalTableDefinition
-- rebuilds them (trigger endpoint_sync_external_tables) when it is restored.
SELECT pg_catalog.pg_extension_config_dump('dms_stream.endpoint', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.endpoint_credential', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.task', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.delta_load_controller', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.delta_run_lock_key_seq', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.table_statistics', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.apply_exceptions', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.apply_exceptions_exception_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.run_history', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.run_history_run_id_seq', '');
