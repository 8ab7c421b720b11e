-- Validators (C).  Each returns true or raises an error that names the
-- offending JSON path; the catalog's CHECK constraints call them, and DBAs can
-- call them directly to check a document before registering it.

CREATE FUNCTION dms_stream.check_identifier(kind text, name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'dms_check_identifier'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.check_identifier(text, text) IS
'true if name follows the AWS DMS identifier rules (letters, digits, hyphens; starts with a letter); error otherwise';

CREATE FUNCTION dms_stream.check_endpoint_settings(engine text, endpoint_type text, settings jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'dms_check_endpoint_settings'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.check_endpoint_settings(text, text, jsonb) IS
'true if settings are valid S3Settings / KinesisSettings / PostgreSQL source settings for the engine and endpoint type; error naming the JSON path otherwise';

CREATE FUNCTION dms_stream.settings_without_effect(engine text, endpoint_type text, settings jsonb,
	OUT key text, OUT reason text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dms_settings_without_effect'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.settings_without_effect(text, text, jsonb) IS
'the keys of valid endpoint settings that DMS documents and dms_stream accepts but that change nothing for this engine and endpoint type, and why';

CREATE FUNCTION dms_stream.settings_without_effect(task_settings jsonb,
	OUT key text, OUT reason text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dms_settings_without_effect'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.settings_without_effect(jsonb) IS
'the keys of valid DMS task settings that dms_stream accepts but that change nothing here (Section.Key), and why';

CREATE FUNCTION dms_stream.json_document(doc jsonb, what text DEFAULT 'document')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dms_json_document'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.json_document(jsonb, text) IS
'a JSON string holding a JSON object or array (as the DMS API returns TableMappings and ReplicationTaskSettings) as the document it holds; other values unchanged';

CREATE FUNCTION dms_stream.check_s3_key_part(setting text, value text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'dms_check_s3_key_part'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.check_s3_key_part(text, text) IS
'true if value can be part of an S3 key (no "." or ".." segment, no empty segment or leading "/", no control character); error naming setting otherwise';

CREATE FUNCTION dms_stream.check_task_settings(settings jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'dms_check_task_settings'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.check_task_settings(jsonb) IS
'true if settings are valid DMS task settings; error naming the JSON path otherwise';

CREATE FUNCTION dms_stream.check_table_mappings(mappings jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'dms_check_table_mappings'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.check_table_mappings(jsonb) IS
'true if mappings are a valid DMS table-mapping document ({"rules": [...]}); error naming the JSON path otherwise';

CREATE FUNCTION dms_stream.parse_external_table_definition(
	definition text,
	OUT table_index integer,
	OUT table_owner text,
	OUT table_name text,
	OUT table_path text,
	OUT column_ordinal integer,
	OUT column_name text,
	OUT column_type text,
	OUT column_length bigint,
	OUT column_precision integer,
	OUT column_scale integer,
	OUT column_nullable boolean,
	OUT column_is_pk boolean,
	OUT column_date_format text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dms_parse_external_table_definition'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.parse_external_table_definition(text) IS
'validate a DMS external table definition and return one row per column';
