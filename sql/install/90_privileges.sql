-- Privileges.
--
-- Everybody may read the configuration but not credentials or rejected row
-- contents; only dms_stream_admin (and superusers) may change anything.

REVOKE ALL ON ALL TABLES IN SCHEMA dms_stream FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA dms_stream FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dms_stream FROM PUBLIC;

GRANT SELECT ON dms_stream.endpoint, dms_stream.external_table, dms_stream.external_column,
	dms_stream.task, dms_stream.delta_load_controller, dms_stream.table_statistics,
	dms_stream.run_history, dms_stream.endpoint_settings_without_effect,
	dms_stream.task_settings_without_effect
	TO PUBLIC;

GRANT SELECT ON ALL TABLES IN SCHEMA dms_stream TO dms_stream_admin;
GRANT INSERT, UPDATE, DELETE ON dms_stream.endpoint, dms_stream.endpoint_credential,
	dms_stream.delta_load_controller
	TO dms_stream_admin;
GRANT DELETE ON dms_stream.apply_exceptions TO dms_stream_admin;

-- Validators are harmless and useful to everybody.
GRANT EXECUTE ON FUNCTION dms_stream.check_identifier(text, text),
	dms_stream.check_endpoint_settings(text, text, jsonb),
	dms_stream.check_s3_key_part(text, text),
	dms_stream.check_task_settings(jsonb),
	dms_stream.check_table_mappings(jsonb),
	dms_stream.parse_external_table_definition(text),
	dms_stream.settings_without_effect(text, text, jsonb),
	dms_stream.settings_without_effect(jsonb),
	dms_stream.json_document(jsonb, text)
	TO PUBLIC;

-- Trigger functions run as part of the admin's own statements.
GRANT EXECUTE ON FUNCTION dms_stream.touch_updated_at(), dms_stream.endpoint_guard(),
	dms_stream.endpoint_check(),
	dms_stream.endpoint_sync_external_tables(), dms_stream.task_guard(),
	dms_stream.delta_load_guard(), dms_stream.require_endpoint(text),
	dms_stream.require_task(text), dms_stream.check_slot_name_use(text, text, text)
	TO dms_stream_admin;

GRANT EXECUTE ON FUNCTION
	dms_stream.create_endpoint(text, text, text, jsonb, text, text, text),
	dms_stream.alter_endpoint(text, jsonb, text, text, text, boolean),
	dms_stream.drop_endpoint(text),
	dms_stream.set_endpoint_credentials(text, text, text, text),
	dms_stream.register_external_table_definition(text, text),
	dms_stream.create_task(text, text, text, text, jsonb, jsonb),
	dms_stream.modify_task(text, text, jsonb, jsonb),
	dms_stream.drop_task(text)
	TO dms_stream_admin;

-- The Parquet writer's entry points run any query as the caller.
GRANT EXECUTE ON FUNCTION dms_stream.parquet_encode(text, jsonb),
	dms_stream.parquet_write_file(text, text, jsonb)
	TO dms_stream_admin;

-- Mapping and message diagnostics and URI encoding touch no credentials.
GRANT EXECUTE ON FUNCTION
	dms_stream.aws_uri_encode(text, boolean),
	dms_stream.mapping_preview(jsonb, text, text, text[], text[], text[]),
	dms_stream.render_message(jsonb, jsonb, jsonb, text, text, text, jsonb, text[], jsonb, jsonb, text, timestamptz, jsonb, text)
	TO PUBLIC;

-- Task status and statistics views are for everybody, like the tables under them.
GRANT SELECT ON dms_stream.task_status, dms_stream.table_statistics_view,
	dms_stream.replication_slot_lag TO PUBLIC;
GRANT EXECUTE ON FUNCTION dms_stream.task_slot_name(text), dms_stream.task_own_slot_name(text) TO PUBLIC;
GRANT SELECT ON dms_stream.task_checkpoint, dms_stream.task_progress TO PUBLIC;

-- Delta loads: run by the admin (and pg_cron jobs owned by one), with the
-- caller's rights; a run writes its state and history rows.
REVOKE ALL ON ALL PROCEDURES IN SCHEMA dms_stream FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE dms_stream.run_delta_load(text), dms_stream.run_delta_loads()
	TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.delta_load_query(text) TO dms_stream_admin;
GRANT INSERT, UPDATE ON dms_stream.run_history TO dms_stream_admin;
GRANT USAGE ON SEQUENCE dms_stream.run_history_run_id_seq TO dms_stream_admin;
