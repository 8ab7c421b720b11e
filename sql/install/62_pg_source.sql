-- Tasks whose source is this database (src/pg_source_job.c): the name of a
-- task's replication slot, dropping it with the task, and the slot lag view.

-- The replication slot of a task with a postgres source: dms_ + the task
-- name folded to [a-z0-9_] (at most 40 characters) + _ + 8 hex digits of its
-- hash, so that every task has its own valid slot name.
CREATE FUNCTION dms_stream.task_slot_name(task_name text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'dms_' || left(regexp_replace(lower(task_name), '[^a-z0-9_]', '_', 'g'), 40)
		|| '_' || left(md5(task_name), 8)
$$;

COMMENT ON FUNCTION dms_stream.task_slot_name(text) IS
'name of the logical replication slot of a task with a postgres source endpoint';

-- Drop a task's slot (if it exists and no worker uses it) and its spool files.
CREATE FUNCTION dms_stream.forget_task_source(task_name text)
RETURNS void
LANGUAGE c
STRICT
AS 'MODULE_PATHNAME', 'dms_forget_task_source';

COMMENT ON FUNCTION dms_stream.forget_task_source(text) IS
'drop the replication slot and spool files of a task with a postgres source (drop_task and reload-target call it)';

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
