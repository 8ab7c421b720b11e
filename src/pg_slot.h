/*-------------------------------------------------------------------------
 *
 * pg_slot.h
 *	  The replication slots of tasks whose source is this database: which
 *	  slot a task uses, the checks before a task uses it, and the WAL cap
 *	  for tasks that do not run.
 *
 * Which slot.  A task with CDC uses the slot named by
 * dms_stream.task_slot_name(task): the source endpoint's SlotName for a
 * task of migration type cdc (a slot the user created beforehand, e.g.
 * SELECT pg_create_logical_replication_slot('name', 'dms_stream')), else
 * its own slot dms_stream.task_own_slot_name(task), which the worker
 * creates.  SlotName is refused with full-load-and-cdc (a slot created
 * beforehand has no snapshot for a consistent full load) and not used by
 * full-load tasks (they need no slot).  drop_task and reload-target drop
 * only a task's own slot, never one named by SlotName.
 *
 * Checks (pg_slot_check), at start_task and again in the worker: a slot
 * named by SlotName must exist, be logical, belong to this database and
 * use the dms_stream output plugin; a task resuming from a CDC position
 * needs its slot, not invalidated by max_slot_wal_keep_size (wal_status
 * lost); otherwise the task must be started with reload-target.
 *
 * Cap for tasks that do not run (pg_slot_check_idle_tasks, called by the
 * launcher every dms_stream.poll_interval): one query over the slots of
 * postgres-source tasks without a worker, in a short transaction of its
 * own.  A slot retaining more WAL than dms_stream.max_slot_lag (or
 * invalidated by PostgreSQL) fails its task with last_error saying so and
 * a WARNING, once per crossing; with dms_stream.drop_slot_past_max_lag the
 * task's own slot is dropped to release the WAL.  (Running tasks check the
 * cap themselves, see pg_source_job.c.)
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_PG_SLOT_H
#define DMS_PG_SLOT_H

#include "access/xlogdefs.h"

/* Drop a task's own slot when it is past max_slot_lag and the task idles. */
extern bool dms_stream_drop_slot_past_max_lag;

/* Define the GUCs of this module (from _PG_init). */
extern void pg_slot_define_settings(void);

/* Whether a replication slot of that name exists. */
extern bool pg_slot_exists(const char *slot_name);

/* Remove the spool files of a slot (WARNING when one cannot be removed). */
extern void pg_slot_remove_spool(const char *slot_name);

/*
 * Check the slot task_name is to use before it decodes from it: user_slot
 * (named by SlotName) must exist, be logical, be of this database and use
 * the dms_stream plugin; positioned (the task has a CDC position) needs the
 * slot to exist and not be invalidated.  last_error (or NULL), the task's,
 * is quoted in the detail when the slot is missing.  ERROR otherwise;
 * returns the slot's confirmed_flush (InvalidXLogRecPtr when the task's
 * own slot does not exist yet, to be created).
 */
extern XLogRecPtr pg_slot_check(const char *task_name, const char *slot_name, bool user_slot,
						  bool positioned, const char *last_error);

/*
 * ERROR when a source endpoint's SlotName (NULL: none) cannot be used with
 * the task's migration type (full-load-and-cdc).
 */
extern void pg_slot_check_migration_type(const char *task_name, const char *migration_type,
										 const char *slot_name);

/*
 * Launcher: apply the WAL cap to the slots of tasks that have no worker;
 * has_worker tells whether the launcher still runs one for a task.  Runs
 * its own transaction; call with none open.
 */
extern void pg_slot_check_idle_tasks(bool (*has_worker) (const char *task_name));

#endif							/* DMS_PG_SLOT_H */
