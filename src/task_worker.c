/*-------------------------------------------------------------------------
 *
 * task_worker.c
 *	  The dynamic background worker of one replication task (see
 *	  task_worker.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dms_json.h"		/* before utils/builtins.h: json_object */

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "dms_stream.h"
#include "kinesis_shipper.h"
#include "launcher.h"
#include "pg_source_job.h"
#include "s3_source_job.h"
#include "task_worker.h"
#include "worker_xact.h"

/* Crash markers live here, in the data directory (see task_worker.h). */
#define TASK_MARKER_DIR "pg_dms_stream"

/* run_history.message of a run ended by a crash of one of its processes */
#define TASK_CRASH_WORKER	"the task's worker was killed or crashed"
#define TASK_CRASH_SHIPPER	"the task's shipping process was killed or crashed"
/* the same as SQL literals */
#define TASK_CRASH_MESSAGES_SQL \
	"('the task''s worker was killed or crashed'," \
	" 'the task''s shipping process was killed or crashed')"

/*
 * What the task's checkpoints are at the start of a run (its rows in
 * task_checkpoint, hashed): equal fingerprints of two runs mean that the
 * earlier one made no progress.  $1 is the task name.
 */
#define TASK_CHECKPOINT_SQL \
	"(SELECT coalesce(md5(string_agg(concat_ws(':', c.schema_name, c.table_name," \
	"        c.file_key, c.next_offset, c.next_line, c.table_done, c.rows_sent)," \
	"        ',' ORDER BY c.schema_name, c.table_name)), '')" \
	"   FROM dms_stream.task_checkpoint c WHERE c.task_name = $1)"

static char task_name[LAUNCHER_TASK_NAME_SIZE];
static char current_phase[256] = "starting";
static int64 current_run_id = 0;

/* Set by the SIGTERM handler: the process was asked to exit. */
static volatile sig_atomic_t got_sigterm = false;
static emit_log_hook_type prev_emit_log_hook = NULL;

/* This process's crash marker, removed at exit and on SIGQUIT. */
static char marker_path[MAXPGPATH];

/*
 * task_worker_sigterm
 *		SIGTERM: remember that the exit was asked for, then die() as usual
 *		(the next CHECK_FOR_INTERRUPTS ends the process).
 */
static void
task_worker_sigterm(SIGNAL_ARGS)
{
	got_sigterm = true;
	die(postgres_signal_arg);
}

/*
 * task_worker_quiet_stop
 *		emit_log_hook: after a SIGTERM, the FATAL "terminating background
 *		worker ... due to administrator command" is the requested stop, not
 *		an error: it is not logged (the worker logs one LOG line instead) and
 *		the process exits as the FATAL would, but with status 0, so that the
 *		postmaster does not log the exit either.
 */
static void
task_worker_quiet_stop(ErrorData *edata)
{
	if (got_sigterm && edata->elevel == FATAL &&
		edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
	{
		edata->output_to_server = false;
		proc_exit(0);
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * task_worker_handle_sigterm
 *		Install the SIGTERM handler and the log hook above in this process
 *		(the task worker or its shipping process).
 */
void
task_worker_handle_sigterm(void)
{
	pqsignal(SIGTERM, task_worker_sigterm);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = task_worker_quiet_stop;
}

/*
 * task_worker_got_sigterm
 *		Whether this process was asked to exit (SIGTERM).
 */
bool
task_worker_got_sigterm(void)
{
	return got_sigterm;
}

/*
 * task_worker_run_id
 *		The run this task worker process runs (0 in other processes).
 */
int64
task_worker_run_id(void)
{
	return current_run_id;
}

/*
 * task_marker_sigquit
 *		SIGQUIT (immediate shutdown, or the crash of another process): this
 *		process did not crash; remove its marker and exit as
 *		SignalHandlerForCrashExit does.
 */
static void
task_marker_sigquit(SIGNAL_ARGS)
{
	if (marker_path[0] != '\0')
		(void) unlink(marker_path);
	_exit(2);
}

/*
 * task_marker_remove
 *		on_proc_exit callback: the process ends normally (also by FATAL).
 */
static void
task_marker_remove(int code, Datum arg)
{
	if (marker_path[0] != '\0')
		(void) unlink(marker_path);
	marker_path[0] = '\0';
}

/*
 * task_worker_mark_process
 *		Create the crash marker of this process of run run_id (role "worker"
 *		or "shipper").  It is removed when the process exits or receives
 *		SIGQUIT; one left behind after a restart means that the process was
 *		killed (SIGKILL) or crashed.
 */
void
task_worker_mark_process(int64 run_id, const char *role)
{
	int			fd;

	if (run_id <= 0)
		return;
	if (mkdir(TASK_MARKER_DIR, pg_dir_create_mode) != 0 && errno != EEXIST)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", TASK_MARKER_DIR)));
		return;
	}
	snprintf(marker_path, sizeof(marker_path), "%s/run_" INT64_FORMAT ".%s.%d",
			 TASK_MARKER_DIR, run_id, role, MyProcPid);
	fd = open(marker_path, O_CREAT | O_WRONLY | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", marker_path)));
		marker_path[0] = '\0';
		return;
	}
	close(fd);
	pqsignal(SIGQUIT, task_marker_sigquit);
	on_proc_exit(task_marker_remove, (Datum) 0);
}

/*
 * task_worker_recover_runs
 *		At server start (the launcher, in a transaction with SPI connected):
 *		the runs of which a process left its crash marker ended by a crash
 *		of their own processes; record them so and remove the markers.
 */
void
task_worker_recover_runs(void)
{
	DIR		   *dir;
	struct dirent *de;

	dir = AllocateDir(TASK_MARKER_DIR);
	while ((de = ReadDirExtended(dir, TASK_MARKER_DIR, DEBUG1)) != NULL)
	{
		long long	run;
		char		role[16];
		int			pid;
		char		path[MAXPGPATH];
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2];

		if (sscanf(de->d_name, "run_%lld.%15[a-z].%d", &run, role, &pid) != 3)
			continue;
		values[0] = Int64GetDatum((int64) run);
		values[1] = CStringGetTextDatum(strcmp(role, "shipper") == 0 ?
										TASK_CRASH_SHIPPER : TASK_CRASH_WORKER);
		if (SPI_execute_with_args("UPDATE dms_stream.run_history"
								  "   SET status = 'failed', finished_at = now(), message = $2"
								  " WHERE run_id = $1 AND run_kind = 'task' AND status = 'running'",
								  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "dms_stream: could not record the crash of run %lld", run);
		snprintf(path, sizeof(path), "%s/%s", TASK_MARKER_DIR, de->d_name);
		if (unlink(path) != 0)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove file \"%s\": %m", path)));
	}
	if (dir != NULL)
		FreeDir(dir);
}

/*
 * task_worker_set_phase
 *		Record the task's phase and show it in pg_stat_activity.
 */
void
task_worker_set_phase(const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(current_phase, sizeof(current_phase), fmt, args);
	va_end(args);
	pgstat_report_activity(STATE_RUNNING, current_phase);
}

/*
 * task_worker_check_interrupts
 *		Called by the jobs between units of work: honour cancel and SIGTERM
 *		(CHECK_FOR_INTERRUPTS) and reload the configuration after a SIGHUP.
 */
void
task_worker_check_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * task_worker_phase
 *		The phase last set.
 */
const char *
task_worker_phase(void)
{
	return current_phase;
}

/*
 * task_worker_begin
 *		Open a run for the task and mark it running.  Returns the run id, or
 *		0 when the task is no longer to run (then nothing is changed).
 *		*kind receives the source engine and migration type
 *		("s3 full-load").
 */
static int64
task_worker_begin(char *kind, size_t kind_size)
{
	const char *params[2] = {task_name, NULL};
	char	   *value;
	int64		run_id = 0;
	char		pid[32];

	worker_xact_begin();
	value = worker_exec("SELECT e.engine || ' ' || t.migration_type"
							 "  FROM dms_stream.task t"
							 "  JOIN dms_stream.endpoint e ON e.endpoint_name = t.source_endpoint"
							 " WHERE t.task_name = $1 AND t.desired_state = 'running'"
							 "   FOR UPDATE OF t",
							 1, params, SPI_OK_SELECT);
	if (value != NULL &&
		worker_exec("SELECT 1 WHERE (SELECT count(*) FROM ("
						 "    SELECT status, message, details FROM dms_stream.run_history"
						 "     WHERE run_kind = 'task' AND task_name = $1"
						 "     ORDER BY run_id DESC LIMIT 3) r"
						 "   WHERE r.status = 'failed'"
						 "     AND r.message IN " TASK_CRASH_MESSAGES_SQL
						 "     AND r.details->>'checkpoint' = " TASK_CHECKPOINT_SQL ") = 3",
						 1, params, SPI_OK_SELECT) != NULL)
	{
		/*
		 * The task's own processes crashed in its last three runs and none of
		 * them made progress: stop restarting.  A run row says so, which
		 * also lets start_task() run the task again.
		 */
		worker_exec("INSERT INTO dms_stream.run_history"
						 "       (run_kind, task_name, status, finished_at, message, details)"
						 " VALUES ('task', $1, 'failed', now(),"
						 "         'not run: the task''s processes crashed in its last three runs"
						 " without progress; dms_stream.start_task() runs it again',"
						 "         jsonb_build_object('checkpoint', " TASK_CHECKPOINT_SQL "))",
						 1, params, SPI_OK_INSERT);
		worker_exec("UPDATE dms_stream.task"
						 "   SET status = 'failed', desired_state = 'stopped',"
						 "       stop_reason = 'Stop Reason FATAL_ERROR',"
						 "       last_error = 'the task''s processes crashed three times in a row"
						 " without progress; see the server log'"
						 " WHERE task_name = $1",
						 1, params, SPI_OK_UPDATE);
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\" failed: its processes crashed three times in a row without progress",
						task_name),
				 errhint("Start it again with dms_stream.start_task() once the cause is fixed.")));
		value = NULL;
	}
	if (value != NULL)
	{
		strlcpy(kind, value, kind_size);
		worker_exec("UPDATE dms_stream.run_history"
						 "   SET status = 'failed', finished_at = now(),"
						 "       message = 'the task''s worker exited before the end'"
						 " WHERE run_kind = 'task' AND task_name = $1 AND status = 'running'",
						 1, params, SPI_OK_UPDATE);
		value = worker_exec("INSERT INTO dms_stream.run_history (run_kind, task_name, details)"
								 " SELECT 'task', t.task_name,"
								 "        jsonb_build_object('start_type', t.start_type,"
								 "                           'migration_type', t.migration_type,"
								 "                           'checkpoint', " TASK_CHECKPOINT_SQL ")"
								 "   FROM dms_stream.task t WHERE t.task_name = $1"
								 " RETURNING run_id",
								 1, params, SPI_OK_INSERT_RETURNING);
		run_id = strtoll(value, NULL, 10);
		worker_exec("UPDATE dms_stream.task"
						 "   SET status = 'running', stop_reason = NULL, last_error = NULL"
						 " WHERE task_name = $1",
						 1, params, SPI_OK_UPDATE);
		snprintf(pid, sizeof(pid), "%d", MyProcPid);
		params[1] = pid;
		worker_exec("INSERT INTO dms_stream.task_progress AS p"
						 "       (task_name, worker_pid, phase, run_started_at, updated_at)"
						 " VALUES ($1, $2::integer, 'starting', now(), now())"
						 " ON CONFLICT (task_name) DO UPDATE"
						 "   SET worker_pid = EXCLUDED.worker_pid, phase = EXCLUDED.phase,"
						 "       run_started_at = EXCLUDED.run_started_at,"
						 "       updated_at = EXCLUDED.updated_at",
						 2, params, SPI_OK_INSERT);
	}
	worker_xact_end(NULL);
	return run_id;
}

/*
 * task_worker_finish
 *		The job ended: record the task as stopped (error == NULL) or failed.
 */
static void
task_worker_finish(int64 run_id, const S3SourceJobResult *result, const char *error)
{
	const char *params[4];
	char		run[32];
	char		rows[32];

	snprintf(run, sizeof(run), INT64_FORMAT, run_id);
	snprintf(rows, sizeof(rows), INT64_FORMAT, result->rows_sent);
	params[0] = task_name;
	params[1] = run;
	params[2] = error;
	params[3] = rows;

	worker_xact_begin();
	worker_exec("UPDATE dms_stream.run_history"
					 "   SET status = CASE WHEN $3 IS NULL THEN 'succeeded' ELSE 'failed' END,"
					 "       finished_at = now(), message = $3,"
					 "       rows_processed = $4::bigint"
					 " WHERE run_id = $2::bigint",
					 4, params, SPI_OK_UPDATE);
	worker_exec("UPDATE dms_stream.task"
					 "   SET status = CASE WHEN $3 IS NULL THEN 'stopped' ELSE 'failed' END,"
					 "       desired_state = 'stopped',"
					 "       stop_reason = CASE WHEN $3 IS NULL"
					 "                          THEN 'Stop Reason FULL_LOAD_ONLY_FINISHED'"
					 "                          ELSE 'Stop Reason FATAL_ERROR' END,"
					 "       last_error = $3"
					 " WHERE task_name = $1",
					 3, params, SPI_OK_UPDATE);
	worker_exec("UPDATE dms_stream.task_progress"
					 "   SET worker_pid = NULL, updated_at = now(),"
					 "       phase = CASE WHEN $3 IS NULL THEN 'full load finished' ELSE 'failed' END"
					 " WHERE task_name = $1",
					 3, params, SPI_OK_UPDATE);
	worker_xact_end(NULL);
}

/*
 * task_worker_exit_log
 *		before_shmem_exit callback: after a SIGTERM (stop_task, a server
 *		shutdown), say in one LOG line that the task stopped as asked.
 */
static void
task_worker_exit_log(int code, Datum arg)
{
	if (got_sigterm && current_run_id != 0)
		ereport(LOG,
				(errmsg("dms_stream task \"%s\" stopped as asked (stop_task or a server shutdown); run %lld ended",
						task_name, (long long) current_run_id),
				 errdetail("The task resumes from its last checkpoint when it runs again.")));
	current_run_id = 0;
}

/*
 * task_worker_main
 *		Entry point: run the task of the slot given by the launcher.
 */
void
task_worker_main(Datum main_arg)
{
	int			slot = DatumGetInt32(main_arg);
	char		kind[64];
	int64		run_id;
	S3SourceJobResult result;
	char	   *volatile error = NULL;
	MemoryContext job_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	task_worker_handle_sigterm();
	BackgroundWorkerUnblockSignals();

	launcher_slot_task_name(slot, task_name);
	launcher_slot_attach(slot);

	BackgroundWorkerInitializeConnection(dms_stream_database, NULL, 0);
	pgstat_report_appname(task_name);
	/* A committed checkpoint must survive a crash of the server. */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	task_worker_set_phase("starting");

	run_id = task_worker_begin(kind, sizeof(kind));
	if (run_id == 0)
		proc_exit(0);
	current_run_id = run_id;
	task_worker_mark_process(run_id, "worker");
	before_shmem_exit(task_worker_exit_log, (Datum) 0);

	dms_stream_log(LOG,
			(errmsg("dms_stream task \"%s\" started (run %lld)", task_name, (long long) run_id)));

	memset(&result, 0, sizeof(result));
	job_cxt = AllocSetContextCreate(TopMemoryContext, "dms_stream task job",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(job_cxt);
	PG_TRY();
	{
		if (strncmp(kind, "postgres ", 9) == 0)
			pg_source_job_run(task_name, run_id, &result);
		else if (strcmp(kind, "s3 full-load") != 0 && strcmp(kind, "s3 cdc") != 0 &&
				 strcmp(kind, "s3 full-load-and-cdc") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("task \"%s\": %s tasks are not supported by this version",
							task_name, kind),
					 errhint("Tasks with an S3 or postgres source can run.")));
		else
			s3_source_job_run(task_name, run_id, &result);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		StringInfoData msg;

		MemoryContextSwitchTo(job_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		kinesis_shipper_abort_all();

		/*
		 * Asked to exit (stop_task, a server shutdown): whatever the error,
		 * the run ends as asked, not as a failure of the task.
		 */
		if (got_sigterm)
			proc_exit(0);

		initStringInfo(&msg);
		appendStringInfoString(&msg, edata->message);
		if (edata->detail)
			appendStringInfo(&msg, " (%s)", edata->detail);
		error = msg.data;
		ereport(LOG,
				(errmsg("dms_stream task \"%s\" failed: %s", task_name, error),
				 edata->hint ? errhint("%s", edata->hint) : 0));
	}
	PG_END_TRY();

	task_worker_finish(run_id, &result, error);
	current_run_id = 0;
	if (error == NULL)
		dms_stream_log(LOG,
				(errmsg("dms_stream task \"%s\" finished its full load: %lld rows sent, %lld error rows",
						task_name, (long long) result.rows_sent,
						(long long) result.error_rows)));
	proc_exit(0);
}
