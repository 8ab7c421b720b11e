-- Catalog triggers and registration functions.
--
-- Registration functions are SECURITY DEFINER with a pinned search_path and
-- fully qualified names; only dms_stream_admin may execute them (see
-- 90_privileges.sql).  Values are passed as parameters, never spliced into SQL.

-- Keep updated_at current --------------------------------------------------

CREATE FUNCTION dms_stream.touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$$;

CREATE TRIGGER endpoint_touch BEFORE UPDATE ON dms_stream.endpoint
	FOR EACH ROW EXECUTE FUNCTION dms_stream.touch_updated_at();
CREATE TRIGGER task_touch BEFORE UPDATE ON dms_stream.task
	FOR EACH ROW EXECUTE FUNCTION dms_stream.touch_updated_at();
CREATE TRIGGER delta_touch BEFORE UPDATE ON dms_stream.delta_load_controller
	FOR EACH ROW EXECUTE FUNCTION dms_stream.touch_updated_at();
CREATE TRIGGER credential_touch BEFORE UPDATE ON dms_stream.endpoint_credential
	FOR EACH ROW EXECUTE FUNCTION dms_stream.touch_updated_at();

-- Endpoints ----------------------------------------------------------------

-- Clear messages for the simple columns (CHECK constraints stay as a backstop;
-- BEFORE triggers run first, so users see these).
CREATE FUNCTION dms_stream.endpoint_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM dms_stream.check_identifier('endpoint', NEW.endpoint_name);
	IF NEW.engine IS NULL OR NEW.engine NOT IN ('s3', 'kinesis', 'postgres') THEN
		RAISE EXCEPTION 'unknown engine "%" for endpoint "%"', NEW.engine, NEW.endpoint_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Valid engines are: s3, kinesis, postgres (this database).';
	END IF;
	IF NEW.endpoint_type IS NULL OR NEW.endpoint_type NOT IN ('source', 'target') THEN
		RAISE EXCEPTION 'unknown endpoint type "%" for endpoint "%"', NEW.endpoint_type, NEW.endpoint_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Valid endpoint types are: source, target.';
	END IF;
	IF NEW.endpoint_url IS NOT NULL AND NEW.endpoint_url !~ '^https?://[^/?#\s]+/?$' THEN
		RAISE EXCEPTION 'invalid endpoint URL "%" for endpoint "%"', NEW.endpoint_url, NEW.endpoint_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The URL must be http:// or https:// followed by a host and optional port, without a path.',
				  HINT = 'e.g. http://127.0.0.1:9000 for an S3-compatible server; NULL means AWS.';
	END IF;
	IF NEW.region IS NOT NULL AND NEW.region !~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$' THEN
		RAISE EXCEPTION 'invalid region "%" for endpoint "%"', NEW.region, NEW.endpoint_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Write an AWS region code such as us-east-1 or eu-west-2.';
	END IF;
	IF NEW.s3_addressing_style IS NULL OR NEW.s3_addressing_style NOT IN ('auto', 'path', 'virtual') THEN
		RAISE EXCEPTION 'invalid s3_addressing_style "%" for endpoint "%"', NEW.s3_addressing_style, NEW.endpoint_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Valid styles are: auto, path, virtual.';
	END IF;
	IF NEW.settings IS NULL THEN
		NEW.settings := '{}';
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER endpoint_check BEFORE INSERT OR UPDATE ON dms_stream.endpoint
	FOR EACH ROW EXECUTE FUNCTION dms_stream.endpoint_check();

-- An endpoint used by a task or a delta load keeps its engine and type.
CREATE FUNCTION dms_stream.endpoint_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF (NEW.engine, NEW.endpoint_type) IS DISTINCT FROM (OLD.engine, OLD.endpoint_type)
	   AND (EXISTS (SELECT 1 FROM dms_stream.task t
					WHERE OLD.endpoint_name IN (t.source_endpoint, t.target_endpoint))
			OR EXISTS (SELECT 1 FROM dms_stream.delta_load_controller d
					   WHERE d.target_endpoint = OLD.endpoint_name)) THEN
		RAISE EXCEPTION 'cannot change the engine or endpoint type of endpoint "%"', OLD.endpoint_name
			USING ERRCODE = 'object_in_use',
				  DETAIL = 'Tasks or delta loads use this endpoint.',
				  HINT = 'Create a new endpoint instead.';
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER endpoint_guard BEFORE UPDATE ON dms_stream.endpoint
	FOR EACH ROW EXECUTE FUNCTION dms_stream.endpoint_guard();

CREATE VIEW dms_stream.endpoint_settings_without_effect AS
SELECT e.endpoint_name, e.engine, e.endpoint_type, s.key, s.reason
  FROM dms_stream.endpoint e,
	   LATERAL dms_stream.settings_without_effect(e.engine, e.endpoint_type, e.settings) s;

COMMENT ON VIEW dms_stream.endpoint_settings_without_effect IS
'per endpoint, the settings keys DMS documents that dms_stream accepted but that change nothing here, and why';

CREATE VIEW dms_stream.task_settings_without_effect AS
SELECT t.task_name, s.key, s.reason
  FROM dms_stream.task t,
	   LATERAL dms_stream.settings_without_effect(t.task_settings) s;

COMMENT ON VIEW dms_stream.task_settings_without_effect IS
'per task, the task settings keys DMS documents that dms_stream accepted but that change nothing here (Section.Key), and why';

-- Normalise S3Settings.ExternalTableDefinition into external_table/_column.
CREATE FUNCTION dms_stream.endpoint_sync_external_tables()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	etd jsonb := NEW.settings -> 'ExternalTableDefinition';
	definition text;
BEGIN
	DELETE FROM dms_stream.external_table WHERE endpoint_name = NEW.endpoint_name;
	IF NEW.engine <> 's3' OR NEW.endpoint_type <> 'source' OR etd IS NULL
	   OR jsonb_typeof(etd) = 'null' THEN
		RETURN NULL;
	END IF;
	definition := CASE jsonb_typeof(etd) WHEN 'string' THEN etd #>> '{}' ELSE etd::text END;

	-- One parse feeds both tables (the foreign key is checked at statement end).
	WITH p AS (
		SELECT * FROM dms_stream.parse_external_table_definition(definition)
	), tables AS (
		INSERT INTO dms_stream.external_table (endpoint_name, table_owner, table_name, table_path, table_index)
		SELECT DISTINCT NEW.endpoint_name, p.table_owner, p.table_name, p.table_path, p.table_index FROM p
	)
	INSERT INTO dms_stream.external_column
		(endpoint_name, table_owner, table_name, column_ordinal, column_name, column_type,
		 column_length, column_precision, column_scale, column_nullable, column_is_pk,
		 column_date_format)
	SELECT NEW.endpoint_name, p.table_owner, p.table_name, p.column_ordinal, p.column_name,
		   p.column_type, p.column_length, p.column_precision, p.column_scale,
		   p.column_nullable, p.column_is_pk, p.column_date_format
	  FROM p;
	RETURN NULL;
END
$$;

CREATE TRIGGER endpoint_sync_external_tables
	AFTER INSERT OR UPDATE OF settings, engine, endpoint_type ON dms_stream.endpoint
	FOR EACH ROW EXECUTE FUNCTION dms_stream.endpoint_sync_external_tables();

CREATE FUNCTION dms_stream.create_endpoint(
	endpoint_name text,
	engine text,
	endpoint_type text,
	settings jsonb DEFAULT '{}',
	endpoint_url text DEFAULT NULL,
	region text DEFAULT NULL,
	s3_addressing_style text DEFAULT 'auto')
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM dms_stream.endpoint e WHERE e.endpoint_name = create_endpoint.endpoint_name) THEN
		RAISE EXCEPTION 'endpoint "%" already exists', create_endpoint.endpoint_name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Use dms_stream.alter_endpoint() to change it, or choose another name.';
	END IF;
	INSERT INTO dms_stream.endpoint (endpoint_name, engine, endpoint_type, settings, endpoint_url,
									 region, s3_addressing_style)
	VALUES (create_endpoint.endpoint_name, create_endpoint.engine, create_endpoint.endpoint_type,
			coalesce(create_endpoint.settings, '{}'), create_endpoint.endpoint_url,
			create_endpoint.region, coalesce(create_endpoint.s3_addressing_style, 'auto'));
END
$$;

COMMENT ON FUNCTION dms_stream.create_endpoint(text, text, text, jsonb, text, text, text) IS
'create an endpoint: engine s3, kinesis or postgres; endpoint_type source or target; settings in DMS key spelling';

CREATE FUNCTION dms_stream.require_endpoint(name text)
RETURNS dms_stream.endpoint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e dms_stream.endpoint;
BEGIN
	SELECT * INTO e FROM dms_stream.endpoint WHERE endpoint_name = name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'endpoint "%" does not exist', name
			USING ERRCODE = 'undefined_object',
				  HINT = 'See SELECT endpoint_name FROM dms_stream.endpoint.';
	END IF;
	RETURN e;
END
$$;

CREATE FUNCTION dms_stream.alter_endpoint(
	endpoint_name text,
	settings jsonb DEFAULT NULL,
	endpoint_url text DEFAULT NULL,
	region text DEFAULT NULL,
	s3_addressing_style text DEFAULT NULL,
	replace_settings boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e dms_stream.endpoint := dms_stream.require_endpoint(alter_endpoint.endpoint_name);
	merged jsonb := e.settings;
	k text;
BEGIN
	IF alter_endpoint.settings IS NOT NULL THEN
		IF jsonb_typeof(alter_endpoint.settings) <> 'object' THEN
			RAISE EXCEPTION 'settings must be a JSON object'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give the keys to change, e.g. ''{"CdcPath": "changes"}''.';
		END IF;
		IF replace_settings THEN
			merged := alter_endpoint.settings;
		ELSE
			merged := merged || alter_endpoint.settings;
		END IF;
		-- A key set to JSON null is removed.
		FOR k IN SELECT key FROM jsonb_each(alter_endpoint.settings) WHERE jsonb_typeof(value) = 'null' LOOP
			merged := merged - k;
		END LOOP;
	END IF;

	UPDATE dms_stream.endpoint ep
	   SET settings = merged,
		   endpoint_url = CASE WHEN alter_endpoint.endpoint_url IS NULL THEN ep.endpoint_url
							   ELSE nullif(alter_endpoint.endpoint_url, '') END,
		   region = CASE WHEN alter_endpoint.region IS NULL THEN ep.region
						 ELSE nullif(alter_endpoint.region, '') END,
		   s3_addressing_style = coalesce(alter_endpoint.s3_addressing_style, ep.s3_addressing_style)
	 WHERE ep.endpoint_name = alter_endpoint.endpoint_name;
END
$$;

COMMENT ON FUNCTION dms_stream.alter_endpoint(text, jsonb, text, text, text, boolean) IS
'change an endpoint: settings keys are merged (a key set to null is removed; replace_settings replaces all); '''' clears endpoint_url or region';

CREATE FUNCTION dms_stream.drop_endpoint(endpoint_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	users text;
BEGIN
	PERFORM dms_stream.require_endpoint(drop_endpoint.endpoint_name);
	SELECT string_agg(u, ', ' ORDER BY u) INTO users FROM (
		SELECT 'task ' || t.task_name AS u FROM dms_stream.task t
		 WHERE drop_endpoint.endpoint_name IN (t.source_endpoint, t.target_endpoint)
		UNION ALL
		SELECT 'delta load ' || d.target_table_name FROM dms_stream.delta_load_controller d
		 WHERE d.target_endpoint = drop_endpoint.endpoint_name) s;
	IF users IS NOT NULL THEN
		RAISE EXCEPTION 'endpoint "%" is in use', drop_endpoint.endpoint_name
			USING ERRCODE = 'dependent_objects_still_exist',
				  DETAIL = 'Used by ' || users || '.',
				  HINT = 'Drop those tasks and delta loads first.';
	END IF;
	DELETE FROM dms_stream.endpoint e WHERE e.endpoint_name = drop_endpoint.endpoint_name;
END
$$;

CREATE FUNCTION dms_stream.set_endpoint_credentials(
	endpoint_name text,
	access_key_id text,
	secret_access_key text,
	session_token text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM dms_stream.require_endpoint(set_endpoint_credentials.endpoint_name);
	IF access_key_id IS NULL AND secret_access_key IS NULL THEN
		DELETE FROM dms_stream.endpoint_credential c
		 WHERE c.endpoint_name = set_endpoint_credentials.endpoint_name;
		RETURN;
	END IF;
	IF access_key_id IS NULL OR secret_access_key IS NULL THEN
		RAISE EXCEPTION 'access_key_id and secret_access_key go together'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give both, or neither to remove the endpoint''s keys.';
	END IF;
	INSERT INTO dms_stream.endpoint_credential AS c
		(endpoint_name, access_key_id, secret_access_key, session_token)
	VALUES (set_endpoint_credentials.endpoint_name, access_key_id, secret_access_key, session_token)
	ON CONFLICT ON CONSTRAINT endpoint_credential_pkey DO UPDATE
		SET access_key_id = EXCLUDED.access_key_id,
			secret_access_key = EXCLUDED.secret_access_key,
			session_token = EXCLUDED.session_token;
END
$$;

COMMENT ON FUNCTION dms_stream.set_endpoint_credentials(text, text, text, text) IS
'store explicit AWS keys for an endpoint (readable only by dms_stream_admin); NULL keys remove them';

CREATE FUNCTION dms_stream.register_external_table_definition(endpoint_name text, definition text)
RETURNS TABLE (table_owner text, table_name text, table_path text, column_count bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e dms_stream.endpoint := dms_stream.require_endpoint(register_external_table_definition.endpoint_name);
BEGIN
	IF e.engine <> 's3' OR e.endpoint_type <> 'source' THEN
		RAISE EXCEPTION 'endpoint "%" is not an S3 source', e.endpoint_name
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = format('It is a %s %s endpoint.', e.engine, e.endpoint_type),
				  HINT = 'External table definitions describe the CSV files of an S3 source endpoint.';
	END IF;
	-- Validate first so errors name the definition, not the endpoint row.
	PERFORM count(*) FROM dms_stream.parse_external_table_definition(definition);
	UPDATE dms_stream.endpoint ep
	   SET settings = ep.settings || jsonb_build_object('ExternalTableDefinition', definition)
	 WHERE ep.endpoint_name = e.endpoint_name;
	RETURN QUERY
		SELECT t.table_owner, t.table_name, t.table_path, count(c.*)
		  FROM dms_stream.external_table t
		  JOIN dms_stream.external_column c USING (endpoint_name, table_owner, table_name)
		 WHERE t.endpoint_name = e.endpoint_name
		 GROUP BY t.table_owner, t.table_name, t.table_path, t.table_index
		 ORDER BY t.table_index;
END
$$;

COMMENT ON FUNCTION dms_stream.register_external_table_definition(text, text) IS
'validate a DMS external table definition and store it as the S3 source endpoint''s ExternalTableDefinition';

-- Tasks --------------------------------------------------------------------

CREATE FUNCTION dms_stream.task_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	src dms_stream.endpoint;
	tgt dms_stream.endpoint;
BEGIN
	PERFORM dms_stream.check_identifier('task', NEW.task_name);
	-- Documents as describe-replication-tasks returns them (JSON strings
	-- holding JSON) are stored as the documents; null rule fields are absent.
	NEW.table_mappings := pg_catalog.jsonb_strip_nulls(dms_stream.json_document(NEW.table_mappings, 'table mapping'));
	NEW.task_settings := dms_stream.json_document(NEW.task_settings, 'task settings');
	IF NEW.migration_type IS NULL OR NEW.migration_type NOT IN ('full-load', 'cdc', 'full-load-and-cdc') THEN
		RAISE EXCEPTION 'unknown migration type "%" for task "%"', NEW.migration_type, NEW.task_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Valid migration types are: full-load, cdc, full-load-and-cdc.';
	END IF;
	SELECT * INTO src FROM dms_stream.endpoint WHERE endpoint_name = NEW.source_endpoint;
	SELECT * INTO tgt FROM dms_stream.endpoint WHERE endpoint_name = NEW.target_endpoint;
	IF src.endpoint_type IS DISTINCT FROM 'source' THEN
		RAISE EXCEPTION 'endpoint "%" is not a source endpoint', NEW.source_endpoint
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'A task reads from an endpoint with endpoint_type ''source''.';
	END IF;
	IF tgt.endpoint_type IS DISTINCT FROM 'target' THEN
		RAISE EXCEPTION 'endpoint "%" is not a target endpoint', NEW.target_endpoint
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'A task writes to an endpoint with endpoint_type ''target''.';
	END IF;
	IF tgt.engine <> 'kinesis' THEN
		RAISE EXCEPTION 'replication tasks write to Kinesis, not to %', tgt.engine
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'S3 targets are written by delta loads: see dms_stream.delta_load_controller.';
	END IF;
	IF src.engine = 's3' AND NEW.migration_type <> 'full-load'
	   AND coalesce(src.settings ->> 'CdcPath', '') = '' THEN
		RAISE EXCEPTION 'migration type "%" needs CdcPath on S3 source endpoint "%"',
			NEW.migration_type, src.endpoint_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'DMS reads change files from S3Settings.CdcPath.',
				  HINT = format('SELECT dms_stream.alter_endpoint(%L, ''{"CdcPath": "changes"}'');', src.endpoint_name);
	END IF;
	IF src.engine = 'postgres' AND (TG_OP = 'INSERT' OR (NEW.source_endpoint, NEW.migration_type)
									IS DISTINCT FROM (OLD.source_endpoint, OLD.migration_type)) THEN
		PERFORM dms_stream.check_slot_name_use(NEW.task_name, NEW.migration_type, src.settings ->> 'SlotName');
	END IF;
	IF TG_OP = 'UPDATE' AND (OLD.status IN ('starting', 'running', 'stopping') OR OLD.desired_state = 'running')
	   AND (NEW.source_endpoint, NEW.target_endpoint, NEW.migration_type, NEW.table_mappings, NEW.task_settings)
		   IS DISTINCT FROM
		   (OLD.source_endpoint, OLD.target_endpoint, OLD.migration_type, OLD.table_mappings, OLD.task_settings) THEN
		RAISE EXCEPTION 'task "%" must be stopped before it is modified', OLD.task_name
			USING ERRCODE = 'object_in_use',
				  HINT = format('SELECT dms_stream.stop_task(%L);', OLD.task_name);
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER task_guard BEFORE INSERT OR UPDATE ON dms_stream.task
	FOR EACH ROW EXECUTE FUNCTION dms_stream.task_guard();

-- One NOTICE naming the task settings keys accepted without effect.
CREATE FUNCTION dms_stream.notice_task_settings(task_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
	keys text;
	why text;
BEGIN
	SELECT count(*), string_agg(s.key, ', ' ORDER BY s.ord)
	  INTO n, keys
	  FROM dms_stream.task t,
		   dms_stream.settings_without_effect(t.task_settings) WITH ORDINALITY AS s(key, reason, ord)
	 WHERE t.task_name = notice_task_settings.task_name;
	IF n = 0 THEN
		RETURN;
	END IF;
	SELECT string_agg(r.keys || ': ' || r.reason || '.', E'\n' ORDER BY r.first)
	  INTO why
	  FROM (SELECT s.reason, string_agg(s.key, ', ') AS keys, min(s.ord) AS first
			  FROM dms_stream.task t,
				   dms_stream.settings_without_effect(t.task_settings) WITH ORDINALITY AS s(key, reason, ord)
			 WHERE t.task_name = notice_task_settings.task_name
			 GROUP BY s.reason) r;
	RAISE NOTICE 'task settings: % key% accepted without effect here: %', n,
		CASE WHEN n = 1 THEN '' ELSE 's' END, keys
		USING DETAIL = why,
			  HINT = 'They are kept as given; dms_stream.task_settings_without_effect lists them per task.';
END
$$;

CREATE FUNCTION dms_stream.create_task(
	task_name text,
	source_endpoint text,
	target_endpoint text,
	migration_type text,
	table_mappings jsonb,
	task_settings jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM dms_stream.task t WHERE t.task_name = create_task.task_name) THEN
		RAISE EXCEPTION 'task "%" already exists', create_task.task_name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Use dms_stream.modify_task() to change it, or choose another name.';
	END IF;
	PERFORM dms_stream.require_endpoint(create_task.source_endpoint);
	PERFORM dms_stream.require_endpoint(create_task.target_endpoint);
	INSERT INTO dms_stream.task (task_name, source_endpoint, target_endpoint, migration_type,
								 table_mappings, task_settings)
	VALUES (create_task.task_name, create_task.source_endpoint, create_task.target_endpoint,
			create_task.migration_type, create_task.table_mappings,
			coalesce(create_task.task_settings, '{}'));
	PERFORM dms_stream.notice_task_settings(create_task.task_name);
END
$$;

COMMENT ON FUNCTION dms_stream.create_task(text, text, text, text, jsonb, jsonb) IS
'create a replication task (DMS CreateReplicationTask): migration type full-load, cdc or full-load-and-cdc';

CREATE FUNCTION dms_stream.require_task(name text)
RETURNS dms_stream.task
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t dms_stream.task;
BEGIN
	SELECT * INTO t FROM dms_stream.task WHERE task_name = name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'task "%" does not exist', name
			USING ERRCODE = 'undefined_object',
				  HINT = 'See SELECT task_name FROM dms_stream.task.';
	END IF;
	RETURN t;
END
$$;

CREATE FUNCTION dms_stream.modify_task(
	task_name text,
	migration_type text DEFAULT NULL,
	table_mappings jsonb DEFAULT NULL,
	task_settings jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM dms_stream.require_task(modify_task.task_name);
	UPDATE dms_stream.task t
	   SET migration_type = coalesce(modify_task.migration_type, t.migration_type),
		   table_mappings = coalesce(modify_task.table_mappings, t.table_mappings),
		   task_settings = coalesce(modify_task.task_settings, t.task_settings)
	 WHERE t.task_name = modify_task.task_name;
	IF modify_task.task_settings IS NOT NULL THEN
		PERFORM dms_stream.notice_task_settings(modify_task.task_name);
	END IF;
END
$$;

COMMENT ON FUNCTION dms_stream.modify_task(text, text, jsonb, jsonb) IS
'change a stopped task''s migration type, table mappings or task settings (NULL keeps the current value)';

CREATE FUNCTION dms_stream.drop_task(task_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t dms_stream.task := dms_stream.require_task(drop_task.task_name);
BEGIN
	IF t.status IN ('starting', 'running', 'stopping') OR t.desired_state = 'running' THEN
		RAISE EXCEPTION 'task "%" is running', t.task_name
			USING ERRCODE = 'object_in_use',
				  HINT = format('Stop it first: SELECT dms_stream.stop_task(%L);', t.task_name);
	END IF;
	PERFORM dms_stream.forget_task_source(t.task_name);
	DELETE FROM dms_stream.task x WHERE x.task_name = t.task_name;
END
$$;

-- Delta loads --------------------------------------------------------------

-- Reject controller rows that cannot work: wrong values for the operator,
-- a source table or column that does not exist, a filter column whose type
-- has no ordering (the watermark needs one), values that are not of the
-- column's type, or a target that is not an S3 target endpoint.
CREATE FUNCTION dms_stream.delta_load_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass;
	col_type oid;
	col_typmod integer;
	type_name text;
	tgt dms_stream.endpoint;
	v text;
BEGIN
	-- The seed's DynamoDB controller holds the task settings as a string.
	NEW.replication_task_settings := dms_stream.json_document(NEW.replication_task_settings, 'task settings');
	IF NEW.target_table_name IS NULL OR NEW.target_table_name !~ '^[A-Za-z0-9_.-]{1,255}$' THEN
		RAISE EXCEPTION 'invalid target_table_name "%"', NEW.target_table_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use 1 to 255 letters, digits, underscores, dots and hyphens: it names the files'' folder.';
	END IF;
	IF NEW.filter_operator IS NULL OR NEW.filter_operator NOT IN ('lte', 'ste', 'gte', 'eq', 'noteq', 'null', 'notnull', 'between', 'notbetween') THEN
		RAISE EXCEPTION 'unknown filter_operator "%"', NEW.filter_operator
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Controller row "%s".', NEW.target_table_name),
				  HINT = 'Valid operators are: lte, ste, gte, eq, noteq, null, notnull, between, notbetween.';
	END IF;
	IF NEW.output_s3_prefix IS NULL OR NEW.output_s3_prefix ~ '^/' OR NEW.output_s3_prefix ~ '//' THEN
		RAISE EXCEPTION 'invalid output_s3_prefix "%"', NEW.output_s3_prefix
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Controller row "%s".', NEW.target_table_name),
				  HINT = 'Write the key prefix inside the target bucket without a leading slash, e.g. "etl/raw".';
	END IF;
	-- the folder is [BucketFolder/]output_s3_prefix/source_schema/target_table_name/
	PERFORM dms_stream.check_s3_key_part('target_table_name', NEW.target_table_name),
			dms_stream.check_s3_key_part('output_s3_prefix', NEW.output_s3_prefix),
			dms_stream.check_s3_key_part('source_schema', NEW.source_schema);
	IF NEW.filter_operator IN ('between', 'notbetween') THEN
		IF NEW.start_value IS NULL OR NEW.end_value IS NULL THEN
			RAISE EXCEPTION 'filter_operator "%" needs start_value and end_value', NEW.filter_operator
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Controller row "%s".', NEW.target_table_name),
					  HINT = 'Set both bounds of the range (inclusive).';
		END IF;
	ELSIF NEW.filter_operator IN ('null', 'notnull') THEN
		IF NEW.start_value IS NOT NULL OR NEW.end_value IS NOT NULL THEN
			RAISE EXCEPTION 'filter_operator "%" takes no values', NEW.filter_operator
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Controller row "%s".', NEW.target_table_name),
					  HINT = 'Set start_value and end_value to NULL.';
		END IF;
	ELSE
		IF NEW.start_value IS NULL THEN
			RAISE EXCEPTION 'filter_operator "%" needs start_value', NEW.filter_operator
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Controller row "%s".', NEW.target_table_name),
					  HINT = 'Set start_value to the value the filter column is compared with.';
		END IF;
		IF NEW.end_value IS NOT NULL AND NEW.end_value IS DISTINCT FROM NEW.start_value THEN
			RAISE EXCEPTION 'filter_operator "%" compares with one value, but end_value differs from start_value', NEW.filter_operator
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Controller row "%s": start_value %L, end_value %L.',
									  NEW.target_table_name, NEW.start_value, NEW.end_value),
					  HINT = 'Set end_value to NULL (or equal to start_value, as in the DMS delta-load example), or use between.';
		END IF;
	END IF;

	-- Restoring a dump (pg_dump sets check_function_bodies off, deferring
	-- checks that depend on other objects): a row whose source table or
	-- filter column was dropped after it was made is kept with a WARNING;
	-- its delta runs fail until the table is back.
	IF NOT pg_catalog.current_setting('check_function_bodies')::boolean THEN
		rel := to_regclass(format('%I.%I', NEW.source_schema, NEW.source_table));
		IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a
									   WHERE a.attrelid = rel AND a.attname = NEW.filter_column
										 AND a.attnum > 0 AND NOT a.attisdropped) THEN
			RAISE WARNING 'controller row "%" kept without its source: %.% or its column "%" does not exist',
				NEW.target_table_name, quote_ident(NEW.source_schema), quote_ident(NEW.source_table),
				NEW.filter_column
				USING HINT = 'check_function_bodies is off (a dump being restored), so the row is not checked against the table; its delta runs fail until the table exists.';
			rel := NULL;
		END IF;
	END IF;

	IF pg_catalog.current_setting('check_function_bodies')::boolean OR rel IS NOT NULL THEN
		rel := to_regclass(format('%I.%I', NEW.source_schema, NEW.source_table));
		IF rel IS NULL THEN
			RAISE EXCEPTION 'source table %.% does not exist',
				quote_ident(NEW.source_schema), quote_ident(NEW.source_table)
				USING ERRCODE = 'undefined_table',
					  DETAIL = format('Controller row "%s".', NEW.target_table_name),
					  HINT = 'source_schema and source_table are names as stored in the catalog (case-sensitive, unquoted).';
		END IF;

		SELECT a.atttypid, a.atttypmod INTO col_type, col_typmod
		  FROM pg_attribute a
		 WHERE a.attrelid = rel AND a.attname = NEW.filter_column AND a.attnum > 0 AND NOT a.attisdropped;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'column "%" does not exist in %', NEW.filter_column, rel
				USING ERRCODE = 'undefined_column',
					  DETAIL = format('Controller row "%s".', NEW.target_table_name),
					  HINT = 'filter_column is a column name as stored in the catalog (case-sensitive).';
		END IF;
		type_name := format_type(col_type, col_typmod);

		IF NOT EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
					   WHERE am.amname = 'btree' AND oc.opcdefault
						 AND (oc.opcintype = col_type
							  OR oc.opcintype = (SELECT typbasetype FROM pg_type WHERE oid = col_type)
							  OR (oc.opcintype = 'anyenum'::regtype
								  AND EXISTS (SELECT 1 FROM pg_type WHERE oid = col_type AND typtype = 'e')))) THEN
			RAISE EXCEPTION 'filter column "%" of type % cannot be ordered', NEW.filter_column, type_name
				USING ERRCODE = 'datatype_mismatch',
					  DETAIL = format('Controller row "%s": the watermark needs a type with a default btree ordering.',
									  NEW.target_table_name),
					  HINT = 'Use a numeric, date/time or text column that increases with new rows.';
		END IF;

		FOREACH v IN ARRAY ARRAY[NEW.start_value, NEW.end_value, NEW.watermark] LOOP
			CONTINUE WHEN v IS NULL;
			BEGIN
				EXECUTE format('SELECT CAST($1 AS %s)', type_name) USING v;
			EXCEPTION WHEN data_exception THEN
				RAISE EXCEPTION 'value % is not a valid % for filter column "%"', quote_literal(v), type_name, NEW.filter_column
					USING ERRCODE = 'invalid_text_representation',
						  DETAIL = format('Controller row "%s": %s.', NEW.target_table_name, SQLERRM),
						  HINT = format('Write start_value, end_value and watermark as %s literals.', type_name);
			END;
		END LOOP;
	END IF;

	SELECT * INTO tgt FROM dms_stream.endpoint WHERE endpoint_name = NEW.target_endpoint;
	IF tgt.engine IS DISTINCT FROM 's3' OR tgt.endpoint_type IS DISTINCT FROM 'target' THEN
		RAISE EXCEPTION 'endpoint "%" is not an S3 target endpoint', NEW.target_endpoint
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = format('Controller row "%s".', NEW.target_table_name),
				  HINT = 'Delta loads write Parquet files to an endpoint with engine ''s3'' and endpoint_type ''target''.';
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER delta_load_guard
	BEFORE INSERT OR UPDATE OF target_table_name, source_schema, source_table, filter_column,
		filter_operator, start_value, end_value, watermark, output_s3_prefix, target_endpoint,
		replication_task_settings
	ON dms_stream.delta_load_controller
	FOR EACH ROW EXECUTE FUNCTION dms_stream.delta_load_guard();
