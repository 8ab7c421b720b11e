-- Delta loads to S3 as Parquet (src/delta_load.c, README "Delta loads").
--
-- The run procedures commit between their steps (claim, extract, upload,
-- finish), so they are procedures called with CALL outside a transaction
-- block; pg_cron can schedule them.  They run with the caller's rights
-- (a procedure that commits cannot be SECURITY DEFINER): the caller needs
-- SELECT on the source table, and dms_stream_admin has the rest.

CREATE PROCEDURE dms_stream.run_delta_load(target_table_name text)
AS 'MODULE_PATHNAME', 'dms_run_delta_load'
LANGUAGE C;

COMMENT ON PROCEDURE dms_stream.run_delta_load(text) IS
'extract the new rows of one delta-load target to S3 as Parquet and advance its watermark';

CREATE PROCEDURE dms_stream.run_delta_loads()
AS 'MODULE_PATHNAME', 'dms_run_delta_loads'
LANGUAGE C;

COMMENT ON PROCEDURE dms_stream.run_delta_loads() IS
'run every active delta-load target in name order (the call pg_cron schedules)';

CREATE FUNCTION dms_stream.delta_load_query(target_table_name text,
	OUT query text, OUT parameter_types text[], OUT parameter_values text[])
RETURNS record
AS 'MODULE_PATHNAME', 'dms_delta_load_query'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION dms_stream.delta_load_query(text) IS
'the query and typed parameters the next run of a delta-load target would execute';
