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
 * checkpoint is where the task resumes.  Such a requested exit is not an
 * error: the worker logs one LOG line instead of the FATAL "terminating
 * background worker", and an error raised because of it (its shipping
 * process exiting first at a shutdown) does not fail the task.
 *
 * Crashes: the worker and its shipping process each keep a marker file
 * (pg_dms_stream/run_<run id>.<role>.<pid> in the data directory) while they
 * run.  It is removed when the process exits, also by FATAL, and when it
 * receives SIGQUIT (immediate shutdown, the crash of another process), so a
 * marker left at the next server start means that the process itself was
 * killed or crashed: the launcher records such runs as failed with "the
 * task's worker (shipping process) was killed or crashed"
 * (task_worker_recover_runs); other runs left running are 'stopped',
 * "server restarted".  When the last three runs of a task ended by such
 * crashes and none made progress (its checkpoints were the same at the
 * start of each, run_history.details->>'checkpoint'), the worker does not
 * run it again: it records a run saying so and sets the task failed;
 * start_task() runs it again.
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

/* SIGTERM handling of the worker and of its shipping process (see above). */
extern void task_worker_handle_sigterm(void);

/* Whether this process received SIGTERM. */
extern bool task_worker_got_sigterm(void);

/* The run of this task worker process; 0 in other processes. */
extern int64 task_worker_run_id(void);

/* Create this process's crash marker for run run_id ("worker", "shipper"). */
extern void task_worker_mark_process(int64 run_id, const char *role);

/* Launcher, at server start: record the runs whose processes crashed. */
extern void task_worker_recover_runs(void);

#endif							/* DMS_TASK_WORKER_H */
