-- Tasks whose source is this database (src/pg_source_job.c, src/pg_slot.c):
-- the name of a task's replication slot, checking it before a start,
-- dropping a task's own slot with the task, and the slot lag view.

-- The replication slot a task with a postgres source creates for itself:
-- dms_ + the task name folded to [a-z0-9_] (at most 40 characters) + _ + 8
-- hex digits of its hash, so that every task has its own valid slot name.
CREATE FUNCTION dms_stream.task_own_slot_name(task_name text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'dms_' || left(regexp_replace(lower(task_name), '[^a-z0-9_]', '_', 'g'), 40)
		|| '_' || left(md5(task_name), 8)
$$;

COMMENT ON FUNCTION dms_stream.task_own_slot_name(text) IS
'name of the logical replication slot that a task with a postgres source creates for itself';

-- The replication slot a task uses: its source endpoint's SlotName for a
-- task of migration type cdc (a slot created beforehand, never created or
-- dropped by dms_stream), else its own slot.
CREATE FUNCTION dms_stream.task_slot_name(task_name text)
RETURNS text
LANGUAGE sql
STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(
		(SELECT e.settings ->> 'SlotName'
		   FROM dms_stream.task t
		   JOIN dms_stream.endpoint e ON e.endpoint_name = t.source_endpoint
		  WHERE t.task_name = task_slot_name.task_name
			AND e.engine = 'postgres' AND t.migration_type = 'cdc'),
		dms_stream.task_own_slot_name(task_name))
$$;

COMMENT ON FUNCTION dms_stream.task_slot_name(text) IS
'name of the logical replication slot a task with a postgres source uses: the endpoint''s SlotName (cdc tasks) or its own';

-- start_task: the slot the task will use must be usable (SlotName: exists,
-- logical, this database, plugin dms_stream; a task resuming from a CDC
-- position: its slot exists and was not invalidated; no other running task
-- uses it).
CREATE FUNCTION dms_stream.check_task_slot(task_name text)
RETURNS void
LANGUAGE c
STRICT
AS 'MODULE_PATHNAME', 'dms_check_task_slot';

COMMENT ON FUNCTION dms_stream.check_task_slot(text) IS
'raise an error naming the problem when the replication slot a postgres-source task would use is missing, invalidated, of another plugin or database, or used by another running task';

-- task_guard: SlotName cannot serve a full-load-and-cdc task.
CREATE FUNCTION dms_stream.check_slot_name_use(task_name text, migration_type text, slot_name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'dms_check_slot_name_use';

COMMENT ON FUNCTION dms_stream.check_slot_name_use(text, text, text) IS
'raise an error when a source endpoint''s SlotName is used with migration type full-load-and-cdc';

-- Drop a task's own slot (if it exists and no worker uses it; never a slot
-- named by SlotName) and its spool files.
CREATE FUNCTION dms_stream.forget_task_source(task_name text)
RETURNS void
LANGUAGE c
STRICT
AS 'MODULE_PATHNAME', 'dms_forget_task_source';

COMMENT ON FUNCTION dms_stream.forget_task_source(text) IS
'drop the own replication slot and the spool files of a task with a postgres source (drop_task and reload-target call it); a slot named by SlotName is kept';

CREATE VIEW dms_stream.replication_slot_lag AS
SELECT t.task_name AS task,
	   s.slot_name,
	   s.active,
	   s.active_pid,
	   s.restart_lsn,
	   s.confirmed_flush_lsn,
	   pg_catalog.pg_current_wal_lsn() AS current_lsn,
	   pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint
		   AS unconfirmed_bytes,
	   pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint
		   AS retained_bytes,
	   pg_catalog.current_setting('dms_stream.max_slot_lag') AS max_slot_lag,
	   s.wal_status
  FROM dms_stream.task t
  JOIN dms_stream.endpoint e ON e.endpoint_name = t.source_endpoint AND e.engine = 'postgres'
  LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = dms_stream.task_slot_name(t.task_name);

COMMENT ON VIEW dms_stream.replication_slot_lag IS
'per task with a postgres source: its replication slot, the WAL not yet confirmed (acknowledged by Kinesis) and the WAL the slot retains, against dms_stream.max_slot_lag';

-- DROP TABLE for postgres-source tasks: logical decoding sees no DDL, so
-- this sql_drop event trigger writes, for each dropped permanent table, a
-- transactional logical message (prefix dms_stream_drop_table, JSON oid,
-- schema, table) that the dms_stream output plugin turns into a drop-table
-- control record in commit order.  Nothing is written unless wal_level is
-- logical and this database has a dms_stream slot.
CREATE FUNCTION dms_stream.note_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o record;
BEGIN
	IF current_setting('wal_level') <> 'logical'
		OR NOT EXISTS (SELECT 1 FROM pg_replication_slots
						WHERE plugin = 'dms_stream' AND database = current_database()) THEN
		RETURN;
	END IF;
	FOR o IN SELECT d.objid, d.schema_name, d.object_name
			   FROM pg_event_trigger_dropped_objects() d
			  WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
				AND d.object_type = 'table' AND NOT d.is_temporary
	LOOP
		PERFORM pg_logical_emit_message(true, 'dms_stream_drop_table',
			json_build_object('oid', o.objid::bigint, 'schema', o.schema_name, 'table', o.object_name)::text);
	END LOOP;
END
$$;

COMMENT ON FUNCTION dms_stream.note_dropped_tables() IS
'sql_drop event trigger function: a logical message per dropped table, sent by postgres-source tasks as a drop-table control record';

CREATE EVENT TRIGGER dms_stream_drop_table ON sql_drop
	EXECUTE FUNCTION dms_stream.note_dropped_tables();
