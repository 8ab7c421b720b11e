-- Running tasks: start_task / stop_task, their run-time state and the views
-- that show it in DMS words.
--
-- The launcher background worker (src/launcher.c) starts one worker per task
-- whose desired_state is 'running'; start_task and stop_task only change the
-- task row and wake the launcher when their transaction commits.

-- Run-time state ------------------------------------------------------------

-- Where the full load of a table stands: the file being read and the byte
-- offset and line of the next record to send.  Written only after Kinesis
-- acknowledged every record before that point; a resumed task starts there.
-- CDC tasks keep their position in a row with schema_name and table_name
-- '(cdc)': the CDC file being read (table_done false) or the last one
-- completed (table_done true, the high-water mark; see s3_source_job.c).
CREATE TABLE dms_stream.task_checkpoint (
	task_name			text NOT NULL
		REFERENCES dms_stream.task ON DELETE CASCADE ON UPDATE CASCADE,
	schema_name			text NOT NULL,
	table_name			text NOT NULL,
	file_key			text,
	next_offset			bigint NOT NULL DEFAULT 0 CHECK (next_offset >= 0),
	next_line			bigint NOT NULL DEFAULT 1 CHECK (next_line >= 1),
	table_done			boolean NOT NULL DEFAULT false,
	rows_sent			bigint NOT NULL DEFAULT 0,
	error_rows			bigint NOT NULL DEFAULT 0,
	updated_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (task_name, schema_name, table_name)
);

COMMENT ON TABLE dms_stream.task_checkpoint IS
'per task and source table: the S3 file being loaded and the byte offset and line of the next record not yet acknowledged by Kinesis';

-- What a task's worker is doing, for dms_stream.task_status.
CREATE TABLE dms_stream.task_progress (
	task_name			text PRIMARY KEY
		REFERENCES dms_stream.task ON DELETE CASCADE ON UPDATE CASCADE,
	worker_pid			integer,
	phase				text,
	run_started_at		timestamptz,
	bytes_total			bigint,
	bytes_done			bigint,
	rows_sent			bigint NOT NULL DEFAULT 0,
	rows_per_second		double precision,
	updated_at			timestamptz NOT NULL DEFAULT now(),
	-- CDC latency (task_status): commit time of the newest change read from
	-- the source and of the newest one acknowledged by Kinesis (an S3 CDC
	-- file's LastModified), and the time of the last check that found
	-- nothing new to read (source_idle_at) and also nothing unacknowledged
	-- (caught_up_at); NULL when that check found more to do.
	source_commit_time	timestamptz,
	target_commit_time	timestamptz,
	source_idle_at		timestamptz,
	caught_up_at		timestamptz,
	-- records acknowledged in the last progress interval and its length
	interval_rows		bigint,
	interval_seconds	double precision,
	-- the Kinesis batcher's throttling counters this run: requests
	-- re-queued because of throttling, entries answered
	-- ProvisionedThroughputExceeded
	throttled_requests	bigint,
	throttled_records	bigint
);

COMMENT ON TABLE dms_stream.task_progress IS
'phase and progress of each task''s worker, written with its checkpoints';

-- Waking the launcher ---------------------------------------------------------

CREATE FUNCTION dms_stream.wake_launcher_at_commit()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'dms_wake_launcher_at_commit';

COMMENT ON FUNCTION dms_stream.wake_launcher_at_commit() IS
'make the dms_stream launcher look at the task table as soon as the current transaction commits';

-- start_task / stop_task ------------------------------------------------------

CREATE FUNCTION dms_stream.start_task(
	task_name text,
	start_type text DEFAULT 'start-replication')
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t dms_stream.task := dms_stream.require_task(start_task.task_name);
	has_run boolean;
	launcher_db text := current_setting('dms_stream.database');
BEGIN
	-- The launcher only sees the tasks of its own database: a task started
	-- elsewhere would wait in 'starting' for ever.
	IF current_database() <> launcher_db THEN
		RAISE EXCEPTION 'task "%" cannot run: dms_stream runs tasks only in database "%"', t.task_name, launcher_db
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('The extension is created in database "%s", but the launcher runs in the database named by dms_stream.database ("%s").',
								  current_database(), launcher_db),
				  HINT = format('Create the extension and the task in database "%s", or set dms_stream.database = ''%s'' in postgresql.conf and restart the server.',
								launcher_db, current_database());
	END IF;
	IF start_type IS NULL OR start_type NOT IN ('start-replication', 'resume-processing', 'reload-target') THEN
		RAISE EXCEPTION 'unknown start type "%"', start_type
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Valid start types are: start-replication, resume-processing, reload-target.';
	END IF;
	IF t.desired_state = 'running' OR t.status IN ('starting', 'running') THEN
		RAISE EXCEPTION 'task "%" is already running', t.task_name
			USING ERRCODE = 'object_in_use',
				  HINT = format('See SELECT * FROM dms_stream.task_status WHERE task = %L;', t.task_name);
	END IF;
	IF t.status = 'stopping' THEN
		RAISE EXCEPTION 'task "%" is stopping', t.task_name
			USING ERRCODE = 'object_in_use',
				  HINT = 'Start it again once its status is stopped.';
	END IF;

	has_run := t.status IN ('stopped', 'failed')
		OR EXISTS (SELECT 1 FROM dms_stream.run_history r WHERE r.task_name = t.task_name)
		OR EXISTS (SELECT 1 FROM dms_stream.task_checkpoint c WHERE c.task_name = t.task_name);
	IF start_type = 'start-replication' AND has_run THEN
		RAISE EXCEPTION 'task "%" has already run', t.task_name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'start-replication is only for the first start of a task.',
				  HINT = format('Continue where it stopped with SELECT dms_stream.start_task(%L, ''resume-processing''); '
								'or load everything again with SELECT dms_stream.start_task(%L, ''reload-target'');',
								t.task_name, t.task_name);
	END IF;

	IF start_type = 'reload-target' THEN
		PERFORM dms_stream.forget_task_source(t.task_name);
		DELETE FROM dms_stream.task_checkpoint c WHERE c.task_name = t.task_name;
		DELETE FROM dms_stream.table_statistics s WHERE s.task_name = t.task_name;
		DELETE FROM dms_stream.task_progress p WHERE p.task_name = t.task_name;
	END IF;
	-- The slot of a postgres-source task: usable, and not dropped or
	-- invalidated under a task that would resume from it.
	PERFORM dms_stream.check_task_slot(t.task_name);

	UPDATE dms_stream.task x
	   SET desired_state = 'running', status = 'starting', start_type = start_task.start_type,
		   stop_reason = NULL, last_error = NULL
	 WHERE x.task_name = t.task_name;
	PERFORM dms_stream.wake_launcher_at_commit();
END
$$;

COMMENT ON FUNCTION dms_stream.start_task(text, text) IS
'start a task (DMS StartReplicationTask): start-replication the first time, then resume-processing (from the checkpoints) or reload-target (from the beginning, statistics cleared)';

CREATE FUNCTION dms_stream.stop_task(task_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t dms_stream.task := dms_stream.require_task(stop_task.task_name);
BEGIN
	IF t.desired_state = 'stopped' AND t.status NOT IN ('starting', 'running') THEN
		RAISE EXCEPTION 'task "%" is not running', t.task_name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Its status is %s.', t.status);
	END IF;
	UPDATE dms_stream.task x
	   SET desired_state = 'stopped',
		   status = CASE WHEN x.status IN ('starting', 'running') THEN 'stopping' ELSE x.status END,
		   stop_reason = 'Stop Reason NORMAL'
	 WHERE x.task_name = t.task_name;
	PERFORM dms_stream.wake_launcher_at_commit();
END
$$;

COMMENT ON FUNCTION dms_stream.stop_task(text) IS
'stop a running task (DMS StopReplicationTask); its worker exits and the task can later be resumed';

-- Views -------------------------------------------------------------------------

CREATE VIEW dms_stream.task_status AS
SELECT t.task_name AS task,
	   t.status,
	   t.migration_type,
	   p.phase,
	   CASE WHEN p.bytes_total > 0
			THEN round(100.0 * least(p.bytes_done, p.bytes_total) / p.bytes_total, 1)
			WHEN p.bytes_total = 0 THEN 100.0 END AS progress_percent,
	   CASE WHEN t.status = 'running' THEN
			coalesce(round((p.interval_rows / nullif(p.interval_seconds, 0))::numeric, 1),
					 round(p.rows_per_second::numeric, 1)) END AS records_per_second,
	   round(p.rows_per_second::numeric, 1) AS records_per_second_run,
	   p.rows_sent AS records_sent_this_run,
	   CASE WHEN t.status = 'running' THEN now() - p.updated_at END AS lag,
	   CASE WHEN t.status = 'running' AND t.migration_type <> 'full-load' THEN
			greatest(now() - greatest(p.source_commit_time, p.source_idle_at), interval '0') END
		 AS cdc_latency_source,
	   CASE WHEN t.status = 'running' AND t.migration_type <> 'full-load' THEN
			greatest(now() - greatest(p.target_commit_time, p.caught_up_at), interval '0') END
		 AS cdc_latency_target,
	   p.throttled_requests,
	   p.throttled_records,
	   t.stop_reason,
	   t.last_error,
	   p.worker_pid,
	   p.run_started_at,
	   p.updated_at AS progress_updated_at
  FROM dms_stream.task t
  LEFT JOIN dms_stream.task_progress p USING (task_name);

COMMENT ON VIEW dms_stream.task_status IS
'one row per task: DMS status, what its worker does, full-load progress, throughput (records/s of the last progress interval, and the run average), lag since the last progress write, DMS CDC latencies (CDCLatencySource, CDCLatencyTarget), throttling counts, last error and worker pid';

CREATE VIEW dms_stream.table_statistics_view AS
SELECT s.task_name AS "TaskName",
	   s.schema_name AS "SchemaName",
	   s.table_name AS "TableName",
	   s.inserts AS "Inserts",
	   s.deletes AS "Deletes",
	   s.updates AS "Updates",
	   s.ddls AS "Ddls",
	   s.full_load_rows AS "FullLoadRows",
	   s.full_load_error_rows AS "FullLoadErrorRows",
	   s.full_load_start_time AS "FullLoadStartTime",
	   s.full_load_end_time AS "FullLoadEndTime",
	   s.full_load_reloaded AS "FullLoadReloaded",
	   s.last_update_time AS "LastUpdateTime",
	   s.table_state AS "TableState"
  FROM dms_stream.table_statistics s;

COMMENT ON VIEW dms_stream.table_statistics_view IS
'DMS DescribeTableStatistics: per task and table, with the DMS field names';

SELECT pg_catalog.pg_extension_config_dump('dms_stream.task_checkpoint', '');
SELECT pg_catalog.pg_extension_config_dump('dms_stream.task_progress', '');

-- Privileges (90_privileges.sql revokes everything from PUBLIC first).
GRANT EXECUTE ON FUNCTION dms_stream.start_task(text, text), dms_stream.stop_task(text)
	TO dms_stream_admin;
