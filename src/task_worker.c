/*-------------------------------------------------------------------------
 *
 * task_worker.c
 *	  The dynamic background worker of one replication task (see
 *	  task_worker.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"		/* before utils/builtins.h: json_object */

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
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

static char task_name[LAUNCHER_TASK_NAME_SIZE];
static char current_phase[256] = "starting";

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
						 "    SELECT status, message FROM dms_stream.run_history"
						 "     WHERE run_kind = 'task' AND task_name = $1"
						 "     ORDER BY run_id DESC LIMIT 3) r"
						 "   WHERE r.status IN ('running', 'failed')"
						 "     AND r.message IS DISTINCT FROM 'stopped by dms_stream.stop_task() before the end'"
						 "     AND (r.status = 'running' OR r.message = 'server restarted')) = 3",
						 1, params, SPI_OK_SELECT) != NULL)
	{
		/* Three runs in a row ended by a crash: stop restarting. */
		worker_exec("UPDATE dms_stream.run_history"
						 "   SET status = 'failed', finished_at = now(), message = 'server restarted'"
						 " WHERE run_kind = 'task' AND task_name = $1 AND status = 'running'",
						 1, params, SPI_OK_UPDATE);
		worker_exec("UPDATE dms_stream.task"
						 "   SET status = 'failed', desired_state = 'stopped',"
						 "       stop_reason = 'Stop Reason FATAL_ERROR',"
						 "       last_error = 'the task''s worker ended the server three times in a row"
						 " (crash); see the server log'"
						 " WHERE task_name = $1",
						 1, params, SPI_OK_UPDATE);
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\" failed: its worker crashed three times in a row",
						task_name)));
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
								 "                           'migration_type', t.migration_type)"
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
	pqsignal(SIGTERM, die);
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
	if (error == NULL)
		dms_stream_log(LOG,
				(errmsg("dms_stream task \"%s\" finished its full load: %lld rows sent, %lld error rows",
						task_name, (long long) result.rows_sent,
						(long long) result.error_rows)));
	proc_exit(0);
}
