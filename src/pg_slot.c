/*-------------------------------------------------------------------------
 *
 * pg_slot.c
 *	  Replication slots of tasks with a postgres source: checks before use
 *	  and the WAL cap for tasks that do not run (see pg_slot.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "dms_stream.h"
#include "pg_slot.h"
#include "pg_source_job.h"

bool		dms_stream_drop_slot_past_max_lag = false;

/*
 * Launcher: tasks failed on the cap (or on an invalidated slot) whose slot
 * has not been seen back under it since; one WARNING per crossing.
 */
static List *idle_flagged = NIL;

/* What pg_slot_check needs of a slot, copied under its mutex. */
typedef struct SlotFacts
{
	bool		logical;
	Oid			database;
	char		plugin[NAMEDATALEN];
	XLogRecPtr	invalidated_at;
	XLogRecPtr	confirmed_flush;
} SlotFacts;

/*
 * pg_slot_define_settings
 *		Define dms_stream.drop_slot_past_max_lag.
 */
void
pg_slot_define_settings(void)
{
	DefineCustomBoolVariable("dms_stream.drop_slot_past_max_lag",
							 "Drop the replication slot of a task that does not run once it retains more WAL than dms_stream.max_slot_lag.",
							 "The task is failed and must then be started with reload-target. "
							 "Slots named by an endpoint's SlotName are never dropped.",
							 &dms_stream_drop_slot_past_max_lag,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
}

/*
 * pg_slot_facts
 *		Look up a slot; false when there is none of that name.
 */
static bool
pg_slot_facts(const char *slot_name, SlotFacts *facts)
{
	ReplicationSlot *s;

	if (max_replication_slots <= 0)
		return false;
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	s = SearchNamedReplicationSlot(slot_name, false);
	if (s != NULL && facts != NULL)
	{
		SpinLockAcquire(&s->mutex);
		facts->logical = SlotIsLogical(s);
		facts->database = s->data.database;
		strlcpy(facts->plugin, NameStr(s->data.plugin), NAMEDATALEN);
		facts->invalidated_at = s->data.invalidated_at;
		facts->confirmed_flush = s->data.confirmed_flush;
		SpinLockRelease(&s->mutex);
	}
	LWLockRelease(ReplicationSlotControlLock);
	return s != NULL;
}

/*
 * pg_slot_exists
 *		Whether a replication slot of that name exists.
 */
bool
pg_slot_exists(const char *slot_name)
{
	return pg_slot_facts(slot_name, NULL);
}

/*
 * pg_slot_check
 *		See pg_slot.h.  Returns the slot's confirmed_flush (InvalidXLogRecPtr
 *		when the task's own slot does not exist yet and may be created).
 */
XLogRecPtr
pg_slot_check(const char *task_name, const char *slot_name, bool user_slot,
			  bool positioned, const char *last_error)
{
	SlotFacts	f;
	char	   *lit = quote_literal_cstr(slot_name);

	if (!pg_slot_facts(slot_name, &f))
	{
		if (user_slot)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("replication slot \"%s\" named by SlotName of the source endpoint of task \"%s\" does not exist",
							slot_name, task_name),
					 errdetail("With SlotName, a cdc task decodes from a logical replication slot created beforehand; dms_stream neither creates nor drops it."),
					 errhint("Create it in database \"%s\": SELECT pg_create_logical_replication_slot(%s, 'dms_stream'); changes are captured from then on.",
							 dms_stream_database, lit)));
		if (positioned)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("replication slot \"%s\" of task \"%s\" does not exist", slot_name, task_name),
					 last_error != NULL ?
					 errdetail("Changes made since the task last ran cannot be captured. The task's last error: %s",
							   last_error) :
					 errdetail("Changes made since the task last ran cannot be captured."),
					 errhint("Start the task with reload-target: it creates a new slot (a full-load-and-cdc task loads the tables again) and captures changes from then on.")));
		return InvalidXLogRecPtr;
	}
	if (user_slot)
	{
		if (!f.logical)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("replication slot \"%s\" named by SlotName of the source endpoint of task \"%s\" is a physical slot",
							slot_name, task_name),
					 errdetail("Tasks decode changes from a logical replication slot."),
					 errhint("Name a logical slot created with SELECT pg_create_logical_replication_slot('name', 'dms_stream');")));
		if (f.database != MyDatabaseId)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("replication slot \"%s\" named by SlotName of the source endpoint of task \"%s\" belongs to another database (OID %u)",
							slot_name, task_name, f.database),
					 errdetail("A logical slot decodes the changes of the database it was created in; tasks run in database \"%s\" (dms_stream.database).",
							   dms_stream_database),
					 errhint("Create the slot in database \"%s\": SELECT pg_create_logical_replication_slot('name', 'dms_stream');",
							 dms_stream_database)));
		if (strcmp(f.plugin, "dms_stream") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("replication slot \"%s\" named by SlotName of the source endpoint of task \"%s\" uses output plugin \"%s\", not \"dms_stream\"",
							slot_name, task_name, f.plugin),
					 errdetail("Tasks decode with dms_stream's own output plugin, and a slot's plugin cannot be changed."),
					 errhint("Create a slot for the task with SELECT pg_create_logical_replication_slot('name', 'dms_stream'); and name it in SlotName.")));
	}
	if ((user_slot || positioned) && f.invalidated_at != InvalidXLogRecPtr)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replication slot \"%s\" of task \"%s\" was invalidated by PostgreSQL", slot_name, task_name),
				 errdetail("It retained more WAL than max_slot_wal_keep_size allows and the WAL it needed was removed: changes made since the task last ran cannot be captured."),
				 user_slot ?
				 errhint("Drop the slot and create it again (SELECT pg_drop_replication_slot(%s); SELECT pg_create_logical_replication_slot(%s, 'dms_stream');), then start the task with reload-target.",
						 lit, lit) :
				 errhint("Start the task with reload-target: it creates a new slot (a full-load-and-cdc task loads the tables again) and captures changes from then on.")));
	return f.confirmed_flush;
}

/*
 * pg_slot_check_migration_type
 *		See pg_slot.h.
 */
void
pg_slot_check_migration_type(const char *task_name, const char *migration_type,
							 const char *slot_name)
{
	if (slot_name != NULL && strcmp(migration_type, "full-load-and-cdc") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("SlotName cannot be used with migration type full-load-and-cdc (task \"%s\", slot \"%s\")",
						task_name, slot_name),
				 errdetail("A replication slot created beforehand has no snapshot from which the tables could be loaded consistently with the changes decoded after it."),
				 errhint("Use migration type cdc with SlotName (and a full-load task for the tables), or remove SlotName from the source endpoint so that the task creates its own slot.")));
}

/*
 * dms_check_slot_name_use(task_name text, migration_type text, slot_name text)
 *		SQL wrapper of pg_slot_check_migration_type for the task trigger.
 */
PG_FUNCTION_INFO_V1(dms_check_slot_name_use);
Datum
dms_check_slot_name_use(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_VOID();
	pg_slot_check_migration_type(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								 text_to_cstring(PG_GETARG_TEXT_PP(1)),
								 text_to_cstring(PG_GETARG_TEXT_PP(2)));
	PG_RETURN_VOID();
}

/*
 * dms_check_task_slot(task_name text)
 *		start_task's check of the slot a postgres-source task will use (see
 *		pg_slot.h); also refuses a slot that another running task uses.
 */
PG_FUNCTION_INFO_V1(dms_check_task_slot);
Datum
dms_check_task_slot(PG_FUNCTION_ARGS)
{
	char	   *task = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(task)};
	char	   *migration_type;
	char	   *engine;
	char	   *slot_setting;
	char	   *slot;
	bool		positioned;
	char	   *last_error;
	char	   *other;
	char	   *active_pid;

	SPI_connect();
	if (SPI_execute_with_args("SELECT t.migration_type, e.engine, e.settings ->> 'SlotName',"
							  "       dms_stream.task_slot_name(t.task_name),"
							  "       EXISTS (SELECT 1 FROM dms_stream.task_checkpoint c"
							  "                WHERE c.task_name = t.task_name AND c.schema_name = '(pg)'"
							  "                  AND c.table_name = '(cdc)'),"
							  "       t.last_error,"
							  "       (SELECT o.task_name FROM dms_stream.task o"
							  "         WHERE o.task_name <> t.task_name"
							  "           AND (o.desired_state = 'running' OR o.status IN ('starting', 'running', 'stopping'))"
							  "           AND dms_stream.task_slot_name(o.task_name) = dms_stream.task_slot_name(t.task_name)"
							  "         ORDER BY 1 LIMIT 1),"
							  "       (SELECT s.active_pid FROM pg_catalog.pg_replication_slots s"
							  "         WHERE s.slot_name = dms_stream.task_slot_name(t.task_name))"
							  "  FROM dms_stream.task t"
							  "  JOIN dms_stream.endpoint e ON e.endpoint_name = t.source_endpoint"
							  " WHERE t.task_name = $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "dms_stream: reading task \"%s\" failed", task);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task \"%s\" does not exist", task)));
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		migration_type = SPI_getvalue(tup, desc, 1);
		engine = SPI_getvalue(tup, desc, 2);
		slot_setting = SPI_getvalue(tup, desc, 3);
		slot = SPI_getvalue(tup, desc, 4);
		positioned = strcmp(SPI_getvalue(tup, desc, 5), "t") == 0;
		last_error = SPI_getvalue(tup, desc, 6);
		other = SPI_getvalue(tup, desc, 7);
		active_pid = SPI_getvalue(tup, desc, 8);
	}
	if (strcmp(engine, "postgres") == 0 && strcmp(migration_type, "full-load") != 0)
	{
		pg_slot_check_migration_type(task, migration_type, slot_setting);
		if (other != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("replication slot \"%s\" is used by task \"%s\", which is running", slot, other),
					 errdetail("Two tasks cannot decode from one slot: each would confirm changes the other has not sent."),
					 errhint("Stop task \"%s\" first, or give this task's source endpoint a SlotName of its own.", other)));
		(void) pg_slot_check(task, slot, slot_setting != NULL, positioned, last_error);
		/* A task's own slot may still be held by the worker of its last run. */
		if (slot_setting != NULL && active_pid != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("replication slot \"%s\" named by SlotName of the source endpoint of task \"%s\" is in use by process %s",
							slot, task, active_pid),
					 errdetail("Only one process at a time can decode from a slot."),
					 errhint("Stop the client of that process, or create another slot for the task.")));
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * idle_flagged_has
 *		Whether the launcher already failed task_name for its slot.
 */
static bool
idle_flagged_has(List *list, const char *task_name)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp((const char *) lfirst(lc), task_name) == 0)
			return true;
	return false;
}

/*
 * pg_slot_fail_idle_task
 *		Fail a task that does not run because of its slot (over the cap, or
 *		invalidated), dropping its own slot past the cap when
 *		dms_stream.drop_slot_past_max_lag is on; log a WARNING.  Nothing
 *		happens when the task was started meanwhile.
 */
static void
pg_slot_fail_idle_task(const char *task, const char *slot, bool own, bool lost,
					   int64 retained, const char *restart_lsn, const char *flush_lsn)
{
	bool		drop = !lost && own && dms_stream_drop_slot_past_max_lag;
	char	   *msg;
	char	   *detail;
	const char *hint;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	if (lost)
	{
		msg = psprintf("replication slot \"%s\" of stopped task \"%s\" was invalidated by PostgreSQL",
					   slot, task);
		detail = pstrdup("It retained more WAL than max_slot_wal_keep_size allows and the WAL it needed was removed: changes made since the task last ran cannot be captured.");
		hint = own ?
			"Start the task with reload-target: it creates a new slot (a full-load-and-cdc task loads the tables again)." :
			"Drop the slot and create it again with the dms_stream plugin, then start the task with reload-target.";
	}
	else
	{
		msg = psprintf("replication slot \"%s\" of stopped task \"%s\" retains " INT64_FORMAT " MB of WAL, more than dms_stream.max_slot_lag (%d MB)",
					   slot, task, retained / (1024 * 1024), dms_stream_max_slot_lag_mb);
		detail = psprintf("The slot retains " INT64_FORMAT " bytes of WAL (restart_lsn %s, WAL flushed up to %s); the limit is %d MB. %s",
						  retained, restart_lsn, flush_lsn, dms_stream_max_slot_lag_mb,
						  drop ? "The slot was dropped (dms_stream.drop_slot_past_max_lag) to release the WAL: changes made since the task last ran cannot be captured." :
						  own ? "The slot is kept (dms_stream.drop_slot_past_max_lag is off): no change is lost." :
						  "The slot is named by the source endpoint's SlotName and is kept: dms_stream never drops it.");
		hint = drop ?
			"Start the task with reload-target: it creates a new slot (a full-load-and-cdc task loads the tables again)." :
			own ?
			"Resume the task to catch up (raise dms_stream.max_slot_lag first, or it fails again at once), or drop the task to release the WAL (or set dms_stream.drop_slot_past_max_lag)." :
			"Resume the task to catch up (raise dms_stream.max_slot_lag first), or drop the slot yourself to release the WAL.";
	}

	values[0] = CStringGetTextDatum(task);
	values[1] = CStringGetTextDatum(psprintf("%s (%s)", msg, detail));
	if (SPI_execute_with_args("UPDATE dms_stream.task"
							  "   SET status = 'failed', stop_reason = 'Stop Reason FATAL_ERROR', last_error = $2"
							  " WHERE task_name = $1 AND desired_state = 'stopped'"
							  "   AND status NOT IN ('starting', 'running', 'stopping')",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "dms_stream launcher: updating task \"%s\" failed", task);
	if (SPI_processed != 1)
		return;					/* started meanwhile */

	/* The drop cannot be undone: last, once the task row is updated. */
	if (drop)
		ReplicationSlotDrop(slot, true);

	ereport(WARNING,
			(errcode(lost ? ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE : ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg_internal("%s", msg),
			 errdetail_internal("%s", detail),
			 errhint("%s", hint)));
}

/*
 * pg_slot_check_idle_tasks
 *		See pg_slot.h.
 */
void
pg_slot_check_idle_tasks(bool (*has_worker) (const char *task_name))
{
	List	   *flagged = NIL;
	MemoryContext old;
	uint64		n;
	uint64		i;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "checking the replication slots of tasks that do not run");

	if (OidIsValid(get_extension_oid("dms_stream", true)) && max_replication_slots > 0)
	{
		if (SPI_execute("SELECT t.task_name, s.slot_name,"
						"       s.slot_name = dms_stream.task_own_slot_name(t.task_name),"
						"       s.wal_status = 'lost',"
						"       pg_catalog.pg_wal_lsn_diff(f.lsn, s.restart_lsn)::bigint,"
						"       s.restart_lsn::text, f.lsn::text"
						"  FROM dms_stream.task t"
						"  JOIN dms_stream.endpoint e"
						"    ON e.endpoint_name = t.source_endpoint AND e.engine = 'postgres'"
						"  JOIN pg_catalog.pg_replication_slots s"
						"    ON s.slot_name = dms_stream.task_slot_name(t.task_name) AND NOT s.active"
						"   AND s.database = pg_catalog.current_database()"
						" CROSS JOIN (SELECT pg_catalog.pg_current_wal_flush_lsn() AS lsn) f"
						" WHERE t.migration_type <> 'full-load' AND t.desired_state = 'stopped'"
						"   AND t.status NOT IN ('starting', 'running', 'stopping')"
						" ORDER BY t.task_name",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "dms_stream launcher: reading the slots of tasks failed");
		n = SPI_processed;
		if (n > 0)
		{
			SPITupleTable *tt = SPI_tuptable;
			char	  **row = palloc(sizeof(char *) * n * 7);

			/* Copy first: the updates below replace SPI_tuptable. */
			for (i = 0; i < n; i++)
			{
				int			c;

				for (c = 0; c < 7; c++)
					row[i * 7 + c] = SPI_getvalue(tt->vals[i], tt->tupdesc, c + 1);
			}
			for (i = 0; i < n; i++)
			{
				char	  **r = row + i * 7;
				bool		own = strcmp(r[2], "t") == 0;
				bool		lost = r[3] != NULL && strcmp(r[3], "t") == 0;
				int64		retained = r[4] != NULL ? strtoll(r[4], NULL, 10) : 0;
				bool		over;

				over = !lost && dms_stream_max_slot_lag_mb > 0 &&
					retained / (1024 * 1024) > (int64) dms_stream_max_slot_lag_mb;
				if (!(over || lost) || has_worker(r[0]))
					continue;
				if (!idle_flagged_has(idle_flagged, r[0]))
					pg_slot_fail_idle_task(r[0], r[1], own, lost, retained, r[5], r[6]);
				old = MemoryContextSwitchTo(TopMemoryContext);
				flagged = lappend(flagged, pstrdup(r[0]));
				MemoryContextSwitchTo(old);
			}
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* Only once committed: what is flagged is not failed again. */
	list_free_deep(idle_flagged);
	idle_flagged = flagged;
	pgstat_report_stat(false);
}

/*
 * pg_slot_remove_spool
 *		Remove the spool files of a slot (pg_source_job.c names them).
 */
void
pg_slot_remove_spool(const char *slot)
{
	static const char *const kinds[] = {"load", "cdc"};
	int			i;

	for (i = 0; i < lengthof(kinds); i++)
	{
		char	   *path = psprintf("%s/pg_dms_stream/%s.%s", DataDir, slot, kinds[i]);

		if (unlink(path) != 0 && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove \"%s\": %m", path)));
	}
}

/*
 * dms_forget_task_source(task_name text)
 *		drop_task and reload-target: drop the task's own replication slot,
 *		if it exists (never a slot named by SlotName), and the spool files
 *		of the slot it uses (unless another task uses that slot too).
 */
PG_FUNCTION_INFO_V1(dms_forget_task_source);
Datum
dms_forget_task_source(PG_FUNCTION_ARGS)
{
	char	   *task = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(task)};
	char	   *slot;
	char	   *own;
	bool		shared;

	SPI_connect();
	if (SPI_execute_with_args("SELECT dms_stream.task_slot_name($1), dms_stream.task_own_slot_name($1),"
							  "       EXISTS (SELECT 1 FROM dms_stream.task o"
							  "                WHERE o.task_name <> $1"
							  "                  AND dms_stream.task_slot_name(o.task_name) = dms_stream.task_slot_name($1))",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "dms_stream: task_slot_name failed");
	slot = MemoryContextStrdup(CurTransactionContext,
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	own = MemoryContextStrdup(CurTransactionContext,
							  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	shared = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), "t") == 0;
	SPI_finish();

	/* The own slot: also when SlotName replaced it since it was made. */
	if (pg_slot_exists(own))
	{
		CheckSlotPermissions();
		ReplicationSlotDrop(own, true);
	}
	pg_slot_remove_spool(own);
	if (strcmp(slot, own) != 0 && !shared)
		pg_slot_remove_spool(slot);
	PG_RETURN_VOID();
}
