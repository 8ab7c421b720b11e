/*-------------------------------------------------------------------------
 *
 * extension_drop.c
 *	  What DROP EXTENSION dms_stream must take with it that the extension's
 *	  tables do not hold: the replication slots tasks created for themselves
 *	  (they pin WAL, and nothing would cap them once the tasks are gone) and
 *	  the tasks' spool files under $PGDATA/pg_dms_stream.
 *
 *	  A ProcessUtility hook sees the DROP before it runs.  It refuses while a
 *	  task runs or is to run (its worker holds the slot), and otherwise notes
 *	  the slots and spool files of every task with a postgres source.  The
 *	  slots are dropped at PRE_COMMIT, only if the extension is then really
 *	  gone (the DROP may fail on a dependent object, or a savepoint may roll
 *	  it back); an error there aborts the whole transaction.  Spool files are
 *	  removed after the commit.  Slots named by an endpoint's SlotName belong
 *	  to the user and are kept, with a NOTICE naming them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/slot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "extension_drop.h"
#include "pg_slot.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Noted by the hook, in TopMemoryContext, for the end of the transaction. */
static List *own_slots = NIL;	/* slots to drop */
static List *spool_slots = NIL; /* slots whose spool files to remove */
static bool xact_callback_registered = false;

/*
 * drops_this_extension
 *		Whether the statement is a DROP EXTENSION naming dms_stream, and the
 *		extension exists in this database.
 */
static bool
drops_this_extension(Node *parsetree)
{
	DropStmt   *drop;
	ListCell   *lc;

	if (!IsA(parsetree, DropStmt))
		return false;
	drop = (DropStmt *) parsetree;
	if (drop->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, drop->objects)
	{
		Node	   *name = lfirst(lc);

		if (IsA(name, String) && strcmp(strVal(name), "dms_stream") == 0)
			return OidIsValid(get_extension_oid("dms_stream", true));
	}
	return false;
}

/*
 * forget_noted
 *		Free what the hook noted.
 */
static void
forget_noted(void)
{
	list_free_deep(own_slots);
	list_free_deep(spool_slots);
	own_slots = NIL;
	spool_slots = NIL;
}

/*
 * extension_drop_xact_callback
 *		PRE_COMMIT: drop the noted slots if the extension is gone.  COMMIT:
 *		remove the spool files.  ABORT: forget.
 */
static void
extension_drop_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (own_slots == NIL && spool_slots == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			if (OidIsValid(get_extension_oid("dms_stream", true)))
			{
				/* The DROP was rolled back to a savepoint. */
				forget_noted();
				return;
			}
			foreach(lc, own_slots)
			{
				char	   *slot = lfirst(lc);

				if (!pg_slot_exists(slot))
					continue;
				CheckSlotPermissions();
				ReplicationSlotDrop(slot, true);
				ereport(LOG,
						(errmsg("dms_stream: dropped replication slot \"%s\" with the extension",
								slot)));
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot prepare a transaction that drops extension dms_stream"),
					 errhint("Drop the extension in an ordinary transaction.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, spool_slots)
				pg_slot_remove_spool(lfirst(lc));
			forget_noted();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget_noted();
			break;
		default:
			break;
	}
}

/*
 * refuse_while_tasks_run
 *		ERROR naming the tasks that run or are to run.
 */
static void
refuse_while_tasks_run(void)
{
	char	   *running;

	if (SPI_execute("SELECT string_agg(pg_catalog.quote_literal(task_name), ', ' ORDER BY task_name)"
					"  FROM dms_stream.task"
					" WHERE status IN ('starting', 'running', 'stopping')"
					"    OR desired_state = 'running'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "dms_stream: could not read the task table");
	running = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (running == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("cannot drop extension dms_stream while tasks run"),
			 errdetail("Running or starting: %s.", running),
			 errhint("Stop them first with SELECT dms_stream.stop_task(name), wait until "
					 "dms_stream.task_status shows them stopped, then drop the extension.")));
}

/*
 * note_task_sources
 *		Note each postgres-source task's own slot (to drop) and the slots
 *		whose spool files to remove; NOTICE for slots named by SlotName.
 */
static void
note_task_sources(void)
{
	MemoryContext old;
	uint64		i;

	if (SPI_execute("SELECT dms_stream.task_own_slot_name(t.task_name),"
					"       dms_stream.task_slot_name(t.task_name), t.source_endpoint"
					"  FROM dms_stream.task t"
					"  JOIN dms_stream.endpoint e"
					"    ON e.endpoint_name = t.source_endpoint AND e.engine = 'postgres'"
					" ORDER BY t.task_name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dms_stream: could not read the task table");
	old = MemoryContextSwitchTo(TopMemoryContext);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *own = SPI_getvalue(tup, desc, 1);
		char	   *used = SPI_getvalue(tup, desc, 2);

		own_slots = lappend(own_slots, pstrdup(own));
		spool_slots = lappend(spool_slots, pstrdup(own));
		if (strcmp(own, used) != 0)
		{
			spool_slots = lappend(spool_slots, pstrdup(used));
			if (pg_slot_exists(used))
				ereport(NOTICE,
						(errmsg("replication slot \"%s\" is kept", used),
						 errdetail("It is the SlotName of endpoint \"%s\", created by you, not by dms_stream.",
								   SPI_getvalue(tup, desc, 3)),
						 errhint("Drop it with SELECT pg_drop_replication_slot(%s); if nothing else uses it.",
								 quote_literal_cstr(used))));
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * before_drop
 *		The checks and notes, in their own SPI connection and snapshot.
 */
static void
before_drop(void)
{
	bool		pushed = false;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	SPI_connect();
	refuse_while_tasks_run();
	forget_noted();
	note_task_sources();
	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
	if (!xact_callback_registered)
	{
		RegisterXactCallback(extension_drop_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * extension_drop_ProcessUtility
 *		ProcessUtility hook: before_drop for DROP EXTENSION dms_stream.
 */
static void
extension_drop_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc)
{
	if (IsTransactionState() && drops_this_extension(pstmt->utilityStmt))
		before_drop();
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/*
 * extension_drop_install_hook
 *		See extension_drop.h.
 */
void
extension_drop_install_hook(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = extension_drop_ProcessUtility;
}
