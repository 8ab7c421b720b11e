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
