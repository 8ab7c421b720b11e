/*-------------------------------------------------------------------------
 *
 * dms_stream.c
 *	  Module entry point: load-time checks and the extension's settings.
 *
 * dms_stream runs background workers and must therefore be loaded through
 * shared_preload_libraries.  _PG_init refuses any other way of loading it
 * with a hint saying what to change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "aws_credentials.h"
#include "csv.h"
#include "dms_json.h"
#include "extension_drop.h"
#include "http.h"
#include "kinesis_shipper.h"
#include "launcher.h"
#include "pg_slot.h"
#include "pg_source_job.h"
#include "dms_stream.h"

PG_MODULE_MAGIC;

char	   *dms_stream_database = NULL;
int			dms_stream_naptime_ms = 1000;
int			dms_stream_max_task_workers = 4;
int			dms_stream_poll_interval_ms = 5000;
int			dms_stream_log_min_messages = LOG;

/* The values of PostgreSQL's log_min_messages, in its order. */
static const struct config_enum_entry log_level_options[] = {
	{"debug5", DEBUG5, false},
	{"debug4", DEBUG4, false},
	{"debug3", DEBUG3, false},
	{"debug2", DEBUG2, false},
	{"debug1", DEBUG1, false},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{"error", ERROR, false},
	{"log", LOG, false},
	{"fatal", FATAL, false},
	{"panic", PANIC, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/*
 * dms_stream_log_enabled
 *		Whether a message of level elevel passes dms_stream.log_min_messages,
 *		ranked as log_min_messages ranks levels for the server log (LOG sits
 *		between ERROR and FATAL), as PostgreSQL's is_log_level_output does.
 */
bool
dms_stream_log_enabled(int elevel)
{
	int			threshold = dms_stream_log_min_messages;

	if (elevel == LOG || elevel == LOG_SERVER_ONLY)
		return threshold == LOG || threshold <= ERROR;
	if (threshold == LOG)
		return elevel >= FATAL;
	return elevel >= threshold;
}

/*
 * _PG_init
 *		Check that we are being preloaded and define the settings.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	dms_json_use_palloc();

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dms_stream can only be loaded via shared_preload_libraries"),
				 errhint("Add dms_stream to the shared_preload_libraries "
						 "setting in postgresql.conf and restart the server.")));

	DefineCustomStringVariable("dms_stream.database",
							   "Database in which the dms_stream launcher runs tasks.",
							   "The extension must be created in this database.",
							   &dms_stream_database,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("dms_stream.naptime",
							"Time the launcher sleeps between checks of the task table.",
							"Start and stop requests wake the launcher at once; "
							"this is the fallback interval.",
							&dms_stream_naptime_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("dms_stream.max_task_workers",
							"Maximum number of dms_stream task workers running at once.",
							"Each also needs a slot in max_worker_processes.",
							&dms_stream_max_task_workers,
							4, 1, 64,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("dms_stream.poll_interval",
							"Interval between listings of an S3 CDC folder for new files.",
							"Also the interval between the launcher's checks of the replication slots "
							"of tasks that do not run (dms_stream.max_slot_lag).",
							&dms_stream_poll_interval_ms,
							5000, 100, 24 * 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("dms_stream.log_min_messages",
							 "Threshold of dms_stream's progress messages in the server log.",
							 "Has the meaning of log_min_messages: progress lines are LOG messages, "
							 "written unless the threshold is fatal or panic.",
							 &dms_stream_log_min_messages,
							 LOG,
							 log_level_options,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	dms_http_define_settings();
	aws_credentials_define_settings();
	launcher_init();
	csv_define_settings();
	pg_source_define_settings();
	kinesis_shipper_define_settings();
	pg_slot_define_settings();
	extension_drop_install_hook();

	MarkGUCPrefixReserved("dms_stream");
}
