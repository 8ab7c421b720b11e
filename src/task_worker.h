/*-------------------------------------------------------------------------
 *
 * task_worker.h
 *	  The dynamic background worker that runs one replication task.
 *
 * The launcher (launcher.h) starts it with the number of a worker slot
 * holding the task name.  The worker connects to dms_stream.database,
 * names itself after the task (application_name), opens a run in
 * dms_stream.run_history, marks the task running and runs the task's job
 * (s3_source_job.h for an S3 source).  It ends the task itself when the job
 * ends: stopped with "Stop Reason FULL_LOAD_ONLY_FINISHED" after a full
 * load, failed with the error as last_error when the job raised one.  A
 * task with CDC (cdc, full-load-and-cdc) runs until stopped: its job polls
 * the CDC folder (phase "cdc: ..."), waiting on the process latch.
 *
 * SIGTERM (stop_task, server shutdown) ends the worker at the next
 * interrupt check, also inside HTTP waits; the job's last committed
 * checkpoint is where the task resumes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_TASK_WORKER_H
#define DMS_TASK_WORKER_H

#include "postgres.h"

/* Entry point of the worker (bgw_main_arg: the launcher slot). */
extern PGDLLEXPORT void task_worker_main(Datum main_arg);

/*
 * Say what the task is doing now: shown in pg_stat_activity.query and,
 * from the next progress write, in dms_stream.task_status.phase.
 */
extern void task_worker_set_phase(const char *fmt,...) pg_attribute_printf(1, 2);

/* The phase last set (a static buffer). */
extern const char *task_worker_phase(void);

/* Between units of work: CHECK_FOR_INTERRUPTS and a pending SIGHUP reload. */
extern void task_worker_check_interrupts(void);

#endif							/* DMS_TASK_WORKER_H */
