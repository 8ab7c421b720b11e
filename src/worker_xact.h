/*-------------------------------------------------------------------------
 *
 * worker_xact.h
 *	  Short SPI transactions for dms_stream's background workers: the task
 *	  worker and its jobs record progress, checkpoints and statistics in
 *	  transactions that open, run a few statements with text parameters and
 *	  commit, never spanning network I/O.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_WORKER_XACT_H
#define DMS_WORKER_XACT_H

#include "postgres.h"

/* Most parameters of one worker_exec statement. */
#define WORKER_EXEC_MAX_PARAMS 12

/* Start a transaction, connect SPI and push a snapshot. */
extern void worker_xact_begin(void);

/* Disconnect SPI and commit; then switch to keep (if not NULL), which must
 * outlive the transaction, and report statistics. */
extern void worker_xact_end(MemoryContext keep);

/* Run sql with nargs text parameters (NULL = SQL NULL); an SPI result other
 * than expected is an ERROR.  Returns the first column of the first row
 * (palloc'd in the current context) or NULL. */
extern char *worker_exec(const char *sql, int nargs, const char **params,
						 int expected);

/*
 * The task_status figures of a task's worker (task_progress): commit times
 * of the newest change read and of the newest acknowledged (0: none), the
 * time of the last check that found nothing new to read (idle_at) and
 * nothing unacknowledged either (caught_up_at; 0: the check found work),
 * the records acknowledged in the interval of at least a second that ended
 * last (an interval shorter than that keeps counting), and the Kinesis
 * batcher's throttling counters.  Inside a transaction.
 */
typedef struct WorkerRateInterval
{
	TimestampTz start;			/* 0: not started */
	int64		start_rows;
} WorkerRateInterval;

extern void worker_write_figures(const char *task_name, TimestampTz source_commit,
								 TimestampTz target_commit, TimestampTz idle_at,
								 TimestampTz caught_up_at, WorkerRateInterval *iv,
								 TimestampTz run_started, int64 rows,
								 int64 throttled_requests, int64 throttled_records);

#endif							/* DMS_WORKER_XACT_H */
