/*-------------------------------------------------------------------------
 *
 * worker_xact.c
 *	  Short SPI transactions for dms_stream's background workers (see
 *	  worker_xact.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "worker_xact.h"

/*
 * worker_xact_begin
 *		Start a transaction with SPI connected and a snapshot pushed.
 */
void
worker_xact_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

/*
 * worker_xact_end
 *		Commit the transaction of worker_xact_begin; the caller continues in
 *		keep (when not NULL).
 */
void
worker_xact_end(MemoryContext keep)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (keep != NULL)
		MemoryContextSwitchTo(keep);
	pgstat_report_stat(false);
}

/*
 * worker_exec
 *		Run a statement with text parameters through SPI; returns the first
 *		column of the first row or NULL.
 */
char *
worker_exec(const char *sql, int nargs, const char **params, int expected)
{
	Oid			types[WORKER_EXEC_MAX_PARAMS];
	Datum		values[WORKER_EXEC_MAX_PARAMS];
	char		nulls[WORKER_EXEC_MAX_PARAMS] = {0};
	int			i;
	int			rc;

	if (nargs > WORKER_EXEC_MAX_PARAMS)
		elog(ERROR, "dms_stream: %d parameters for one statement, at most %d",
			 nargs, WORKER_EXEC_MAX_PARAMS);
	for (i = 0; i < nargs; i++)
	{
		types[i] = TEXTOID;
		values[i] = params[i] ? CStringGetTextDatum(params[i]) : (Datum) 0;
		nulls[i] = params[i] ? ' ' : 'n';
	}
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "dms_stream: SPI_execute_with_args returned %d (expected %d) for: %s",
			 rc, expected, sql);
	if (SPI_processed > 0 && SPI_tuptable != NULL)
		return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return NULL;
}

/*
 * worker_write_figures
 *		Write the latency, rate and throttling figures of task_progress (see
 *		worker_xact.h).
 */
void
worker_write_figures(const char *task_name, TimestampTz source_commit,
					 TimestampTz target_commit, TimestampTz idle_at,
					 TimestampTz caught_up_at, WorkerRateInterval *iv,
					 TimestampTz run_started, int64 rows,
					 int64 throttled_requests, int64 throttled_records)
{
	TimestampTz now = GetCurrentTimestamp();
	const char *params[9];
	long		secs;
	int			usecs;
	bool		first = iv->start == 0;

	if (first)
	{
		iv->start = run_started;
		iv->start_rows = 0;
	}
	params[0] = task_name;
	params[1] = source_commit ? psprintf(INT64_FORMAT, (int64) source_commit) : NULL;
	params[2] = target_commit ? psprintf(INT64_FORMAT, (int64) target_commit) : NULL;
	params[3] = idle_at ? psprintf(INT64_FORMAT, (int64) idle_at) : NULL;
	params[4] = caught_up_at ? psprintf(INT64_FORMAT, (int64) caught_up_at) : NULL;
	params[5] = NULL;
	params[6] = NULL;
	TimestampDifference(iv->start, now, &secs, &usecs);
	if (secs >= 1)
	{
		params[5] = psprintf(INT64_FORMAT, rows - iv->start_rows);
		params[6] = psprintf("%.3f", secs + usecs / 1000000.0);
		iv->start = now;
		iv->start_rows = rows;
	}
	else if (first)
	{
		/* no interval yet in this run: not the last run's figure */
		params[5] = "0";
		params[6] = "0";
	}
	params[7] = psprintf(INT64_FORMAT, throttled_requests);
	params[8] = psprintf(INT64_FORMAT, throttled_records);
	/* timestamps as microseconds since 2000-01-01 UTC (TimestampTz) */
#define WORKER_TS(p) "'2000-01-01 00:00:00+00'::timestamptz + " p "::bigint * interval '1 microsecond'"
	worker_exec("UPDATE dms_stream.task_progress"
				"   SET source_commit_time = " WORKER_TS("$2") ", target_commit_time = " WORKER_TS("$3") ","
				"       source_idle_at = " WORKER_TS("$4") ", caught_up_at = " WORKER_TS("$5") ","
				"       interval_rows = coalesce($6::bigint, interval_rows),"
				"       interval_seconds = coalesce($7::double precision, interval_seconds),"
				"       throttled_requests = $8::bigint, throttled_records = $9::bigint"
				" WHERE task_name = $1",
				9, params, SPI_OK_UPDATE);
}
