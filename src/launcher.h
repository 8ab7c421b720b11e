/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The dms_stream launcher: a static background worker that starts one
 *	  dynamic worker per running task and stops it when the task is stopped.
 *
 * The launcher connects to dms_stream.database and idles while the
 * extension does not exist there.  Once per server start (and after every
 * crash restart) it marks task runs left 'running' in run_history as failed
 * when a process of the run crashed, else as stopped ("server restarted";
 * see task_worker.h); tasks whose desired_state is still 'running' are
 * then started again and resume from their checkpoints.  start_task and
 * stop_task wake it at commit (launcher_wake_at_commit), so it reacts at
 * once; otherwise it looks at the task table every dms_stream.naptime.
 * Every dms_stream.poll_interval it also applies dms_stream.max_slot_lag
 * to the replication slots of tasks that do not run (pg_slot.h).
 *
 * Shared memory holds the launcher's latch and one slot per task worker
 * (dms_stream.max_task_workers); a slot carries the task name to the
 * worker, whose bgw_main_arg is the slot number.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_LAUNCHER_H
#define DMS_LAUNCHER_H

/* Longest task name (see check_identifier), plus the terminating NUL. */
#define LAUNCHER_TASK_NAME_SIZE 256

/* Request shared memory and register the launcher; call from _PG_init. */
extern void launcher_init(void);

/* Copy the task name of a worker slot into name (LAUNCHER_TASK_NAME_SIZE). */
extern void launcher_slot_task_name(int slot, char *name);

/*
 * Record the calling worker's pid in its slot (cleared when it exits), so
 * that a restarted launcher finds the workers still running.
 */
extern void launcher_slot_attach(int slot);

/* Set the launcher's latch when the current transaction commits. */
extern void launcher_wake_at_commit(void);

#endif							/* DMS_LAUNCHER_H */
