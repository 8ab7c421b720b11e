-- CREATE / DROP / re-create, objects, role and settings.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;
SELECT extversion FROM pg_extension WHERE extname = 'dms_stream';
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'dms_stream_admin';
SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'dms_stream' AND c.relkind IN ('r', 'v')
 ORDER BY 1;
-- Every SECURITY DEFINER function pins search_path.
SELECT p.proname
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'dms_stream' AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
SELECT count(*) > 0 AS has_security_definer_functions
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'dms_stream' AND p.prosecdef;
-- Settings defined by _PG_init.
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'dms_stream.%'
   AND name IN ('dms_stream.database', 'dms_stream.naptime', 'dms_stream.max_task_workers',
				'dms_stream.poll_interval', 'dms_stream.log_min_messages',
				'dms_stream.max_slot_lag', 'dms_stream.drop_slot_past_max_lag')
 ORDER BY name;
-- The reserved prefix rejects typos.
SET dms_stream.napitme = 5;
-- Configuration survives in pg_dump.
SELECT count(*) AS config_tables FROM pg_extension, unnest(extconfig) WHERE extname = 'dms_stream';
-- The schema cannot be changed, and the extension drops and comes back cleanly.
ALTER EXTENSION dms_stream SET SCHEMA public;
SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s"}');
DROP EXTENSION dms_stream;
-- Nothing is left behind but the empty schema (PostgreSQL keeps the schema
-- named in the control file).
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'dms_stream') AS relations,
       (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'dms_stream') AS functions,
       (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'dms_stream') AS types;
CREATE EXTENSION dms_stream;
SELECT count(*) FROM dms_stream.endpoint;
DROP EXTENSION dms_stream;
