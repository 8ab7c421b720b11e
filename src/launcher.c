/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The dms_stream launcher background worker (see launcher.h).
 *
 * The launcher keeps, for each worker slot, the handle of the dynamic
 * worker it registered.  Each pass over the task table (launcher_scan):
 *	- reaps workers that have exited and frees their slots;
 *	- starts a worker for every task whose desired_state is 'running' and
 *	  that has none, while slots are free (dms_stream.max_task_workers);
 *	- asks the worker of a task whose desired_state is 'stopped' to exit
 *	  (SIGTERM: the worker's committed checkpoint is where it resumes);
 *	- records a task as stopped once its worker has gone.
 * A pass runs in one short transaction and never waits for a worker.
 * Every dms_stream.poll_interval, another short transaction applies the
 * WAL cap to the replication slots of tasks that have no worker
 * (pg_slot_check_idle_tasks, see pg_slot.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "kinesis_shipper.h"	/* before utils/builtins.h: json_object */

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "replication/slot.h"
#include "utils/timestamp.h"

#include "dms_stream.h"
#include "launcher.h"
#include "pg_slot.h"
#include "task_worker.h"

/* A worker slot in shared memory. */
typedef struct LauncherSlot
{
	bool		in_use;			/* set by the launcher when it starts a worker */
	pid_t		worker_pid;		/* set by the worker; 0 when it has exited */
	char		task_name[LAUNCHER_TASK_NAME_SIZE];
} LauncherSlot;

/* Shared state of the launcher. */
typedef struct LauncherShared
{
	slock_t		mutex;
	Latch	   *launcher_latch; /* NULL while no launcher runs */
	bool		runs_recovered; /* crash bookkeeping done since shmem init */
	LauncherSlot slots[FLEXIBLE_ARRAY_MEMBER];
} LauncherShared;

/* What the launcher process knows of the worker of a slot. */
typedef struct LaunchedWorker
{
	bool		used;
	BackgroundWorkerHandle *handle; /* NULL for a worker adopted at start */
	pid_t		adopted_pid;	/* pid of an adopted worker */
	bool		terminating;	/* SIGTERM sent */
	TimestampTz started_at;
	char		task_name[LAUNCHER_TASK_NAME_SIZE];
} LaunchedWorker;

static LauncherShared *launcher_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static LaunchedWorker *launched = NULL;
/*
 * Tasks whose worker exited soon after it started: not started again before
 * LAUNCHER_RETRY_DELAY_MS, so that a worker failing at once does not loop.
 */
#define LAUNCHER_MIN_LIFETIME_MS	10000
#define LAUNCHER_RETRY_DELAY_MS		5000
#define LAUNCHER_MAX_BACKOFF		64

typedef struct LauncherBackoff
{
	char		task_name[LAUNCHER_TASK_NAME_SIZE];
	TimestampTz not_before;
} LauncherBackoff;

static LauncherBackoff backoff[LAUNCHER_MAX_BACKOFF];

/* When the slots of tasks that do not run were last checked. */
static TimestampTz last_slot_check = 0;

static bool wake_pending = false;
static bool wake_callback_registered = false;

PGDLLEXPORT void launcher_main(Datum main_arg);

static void launcher_exec(const char *sql, const char *param, int expected);

/* Whether the absence of the extension has been logged since it was last seen. */
static bool no_extension_logged = false;

/*
 * launcher_shmem_size
 *		Bytes of shared memory the launcher needs.
 */
static Size
launcher_shmem_size(void)
{
	return add_size(offsetof(LauncherShared, slots),
					mul_size(sizeof(LauncherSlot), dms_stream_max_task_workers));
}

/*
 * launcher_shmem_request
 *		shmem_request_hook: reserve the launcher's shared memory.
 */
static void
launcher_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(launcher_shmem_size());
}

/*
 * launcher_shmem_startup
 *		shmem_startup_hook: create or attach to the launcher's shared memory.
 */
static void
launcher_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	launcher_shared = ShmemInitStruct("dms_stream launcher",
									  launcher_shmem_size(), &found);
	if (!found)
	{
		memset(launcher_shared, 0, launcher_shmem_size());
		SpinLockInit(&launcher_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * launcher_init
 *		Install the shared memory hooks and register the static launcher.
 */
void
launcher_init(void)
{
	BackgroundWorker worker;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = launcher_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = launcher_shmem_startup;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "dms_stream");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "dms_stream launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "dms_stream launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * launcher_slot_task_name
 *		Copy the task name of a slot; used by a worker as it starts.
 */
void
launcher_slot_task_name(int slot, char *name)
{
	if (launcher_shared == NULL || slot < 0 || slot >= dms_stream_max_task_workers)
		elog(ERROR, "dms_stream worker slot %d does not exist", slot);
	SpinLockAcquire(&launcher_shared->mutex);
	strlcpy(name, launcher_shared->slots[slot].task_name, LAUNCHER_TASK_NAME_SIZE);
	SpinLockRelease(&launcher_shared->mutex);
}

/*
 * launcher_slot_clear_pid
 *		on_shmem_exit callback of a worker: its slot no longer has a process.
 */
static void
launcher_slot_clear_pid(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);

	SpinLockAcquire(&launcher_shared->mutex);
	if (launcher_shared->slots[slot].worker_pid == MyProcPid)
		launcher_shared->slots[slot].worker_pid = 0;
	SpinLockRelease(&launcher_shared->mutex);
}

/*
 * launcher_slot_attach
 *		Record the calling worker's pid in its slot (cleared at exit), so that
 *		a restarted launcher can find the workers still running.
 */
void
launcher_slot_attach(int slot)
{
	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->slots[slot].worker_pid = MyProcPid;
	SpinLockRelease(&launcher_shared->mutex);
	on_shmem_exit(launcher_slot_clear_pid, Int32GetDatum(slot));
}

/*
 * launcher_wake_callback
 *		XactCallback: set the launcher's latch once the transaction commits.
 */
static void
launcher_wake_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending && launcher_shared != NULL)
			{
				Latch	   *latch;

				SpinLockAcquire(&launcher_shared->mutex);
				latch = launcher_shared->launcher_latch;
				SpinLockRelease(&launcher_shared->mutex);
				if (latch != NULL)
					SetLatch(latch);
			}
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending = false;
			break;
		default:
			break;
	}
}

/*
 * launcher_wake_at_commit
 *		Arrange for the launcher to be woken when this transaction commits.
 */
void
launcher_wake_at_commit(void)
{
	if (!wake_callback_registered)
	{
		RegisterXactCallback(launcher_wake_callback, NULL);
		wake_callback_registered = true;
	}
	wake_pending = true;
}

/*
 * launcher_forget_latch
 *		on_shmem_exit callback of the launcher: nobody is to be woken.
 */
static void
launcher_forget_latch(int code, Datum arg)
{
	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->launcher_latch = NULL;
	SpinLockRelease(&launcher_shared->mutex);
}

/*
 * launcher_adopt_workers
 *		At launcher start, take over the slots of workers that still run
 *		(the launcher alone was restarted) and free the others.
 */
static void
launcher_adopt_workers(void)
{
	int			i;

	SpinLockAcquire(&launcher_shared->mutex);
	for (i = 0; i < dms_stream_max_task_workers; i++)
	{
		LauncherSlot *slot = &launcher_shared->slots[i];

		if (slot->in_use && slot->worker_pid != 0 && kill(slot->worker_pid, 0) == 0)
		{
			launched[i].used = true;
			launched[i].handle = NULL;
			launched[i].adopted_pid = slot->worker_pid;
			launched[i].started_at = GetCurrentTimestamp();
			strlcpy(launched[i].task_name, slot->task_name, LAUNCHER_TASK_NAME_SIZE);
		}
		else
			slot->in_use = false;
	}
	SpinLockRelease(&launcher_shared->mutex);
}

/*
 * launcher_worker_alive
 *		Whether the worker of a launched slot still runs.
 */
static bool
launcher_worker_alive(int i)
{
	LaunchedWorker *lw = &launched[i];

	if (lw->handle != NULL)
	{
		pid_t		pid;

		return GetBackgroundWorkerPid(lw->handle, &pid) != BGWH_STOPPED;
	}
	else
	{
		bool		alive;

		SpinLockAcquire(&launcher_shared->mutex);
		alive = launcher_shared->slots[i].worker_pid == lw->adopted_pid &&
			kill(lw->adopted_pid, 0) == 0;
		SpinLockRelease(&launcher_shared->mutex);
		return alive;
	}
}

/*
 * launcher_free_slot
 *		Forget the worker of slot i.
 */
static void
launcher_free_slot(int i)
{
	if (launched[i].handle != NULL)
		pfree(launched[i].handle);
	memset(&launched[i], 0, sizeof(LaunchedWorker));
	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->slots[i].in_use = false;
	launcher_shared->slots[i].worker_pid = 0;
	SpinLockRelease(&launcher_shared->mutex);
}

/*
 * launcher_backoff
 *		Hold task_name back for LAUNCHER_RETRY_DELAY_MS.
 */
static void
launcher_backoff(const char *task_name)
{
	TimestampTz now = GetCurrentTimestamp();
	int			oldest = 0;
	int			i;

	for (i = 0; i < LAUNCHER_MAX_BACKOFF; i++)
	{
		if (backoff[i].task_name[0] == '\0' || backoff[i].not_before < now ||
			strcmp(backoff[i].task_name, task_name) == 0)
		{
			oldest = i;
			break;
		}
		if (backoff[i].not_before < backoff[oldest].not_before)
			oldest = i;
	}
	strlcpy(backoff[oldest].task_name, task_name, LAUNCHER_TASK_NAME_SIZE);
	backoff[oldest].not_before = TimestampTzPlusMilliseconds(now, LAUNCHER_RETRY_DELAY_MS);
}

/*
 * launcher_in_backoff
 *		Whether task_name is held back; arranges a wake-up when it is.
 */
static bool
launcher_in_backoff(const char *task_name)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < LAUNCHER_MAX_BACKOFF; i++)
		if (backoff[i].task_name[0] != '\0' && backoff[i].not_before > now &&
			strcmp(backoff[i].task_name, task_name) == 0)
			return true;
	return false;
}

/*
 * launcher_find_slot
 *		The slot running task_name, or -1.
 */
static int
launcher_find_slot(const char *task_name)
{
	int			i;

	for (i = 0; i < dms_stream_max_task_workers; i++)
		if (launched[i].used && strcmp(launched[i].task_name, task_name) == 0)
			return i;
	return -1;
}

/*
 * launcher_has_worker
 *		Whether the launcher runs (or still waits for the exit of) a worker
 *		of task_name.
 */
static bool
launcher_has_worker(const char *task_name)
{
	return launcher_find_slot(task_name) >= 0;
}

/* Why launcher_start_worker could not start a worker. */
typedef enum LauncherStartResult
{
	LAUNCHER_STARTED,
	LAUNCHER_NO_TASK_SLOT,		/* dms_stream.max_task_workers are busy */
	LAUNCHER_NO_BGWORKER		/* no free slot in max_worker_processes */
} LauncherStartResult;

/*
 * Whether the lack of a background worker slot has been reported since a
 * worker last started: warned once, not at every pass.
 */
static bool no_bgworker_warned = false;

/*
 * launcher_start_worker
 *		Register a dynamic worker for task_name; when no launcher slot or no
 *		background worker is free, say which (tried again on the next pass).
 */
static LauncherStartResult
launcher_start_worker(const char *task_name)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	MemoryContext oldcxt;
	int			slot = -1;
	int			i;
	bool		ok;

	for (i = 0; i < dms_stream_max_task_workers; i++)
		if (!launched[i].used)
		{
			slot = i;
			break;
		}
	if (slot < 0)
		return LAUNCHER_NO_TASK_SLOT;

	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->slots[slot].in_use = true;
	launcher_shared->slots[slot].worker_pid = 0;
	strlcpy(launcher_shared->slots[slot].task_name, task_name, LAUNCHER_TASK_NAME_SIZE);
	SpinLockRelease(&launcher_shared->mutex);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "dms_stream");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "task_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "dms_stream task %s", task_name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "dms_stream task");
	worker.bgw_main_arg = Int32GetDatum(slot);
	worker.bgw_notify_pid = MyProcPid;

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(oldcxt);

	if (!ok)
	{
		SpinLockAcquire(&launcher_shared->mutex);
		launcher_shared->slots[slot].in_use = false;
		SpinLockRelease(&launcher_shared->mutex);
		if (!no_bgworker_warned)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("dms_stream could not start a worker for task \"%s\": no background worker slot is free",
							task_name),
					 errdetail("Every one of the max_worker_processes = %d background worker slots is in use.",
							   max_worker_processes),
					 errhint("Raise max_worker_processes (a restart is needed) to at least %d: the launcher, one "
							 "per task worker (dms_stream.max_task_workers = %d) and, while "
							 "dms_stream.shipping_process is on, one more per task, besides the workers of "
							 "parallel queries, logical replication and other extensions.  The task waits "
							 "in phase \"waiting for a free background worker (max_worker_processes)\" and "
							 "starts when a slot frees; this is reported once.",
							 1 + dms_stream_max_task_workers * (dms_stream_shipping_process ? 2 : 1),
							 dms_stream_max_task_workers)));
		no_bgworker_warned = true;
		return LAUNCHER_NO_BGWORKER;
	}

	no_bgworker_warned = false;
	launched[slot].used = true;
	launched[slot].handle = handle;
	launched[slot].adopted_pid = 0;
	launched[slot].terminating = false;
	launched[slot].started_at = GetCurrentTimestamp();
	strlcpy(launched[slot].task_name, task_name, LAUNCHER_TASK_NAME_SIZE);
	dms_stream_log(LOG,
				   (errmsg("dms_stream launcher started a worker for task \"%s\"", task_name)));
	return LAUNCHER_STARTED;
}

/*
 * launcher_set_waiting
 *		Record in task_progress why a task waits for a worker.
 */
static void
launcher_set_waiting(const char *task_name, LauncherStartResult why)
{
	if (why == LAUNCHER_NO_TASK_SLOT)
		launcher_exec("INSERT INTO dms_stream.task_progress AS p (task_name, phase)"
					  " VALUES ($1, 'waiting for a free worker (dms_stream.max_task_workers)')"
					  " ON CONFLICT (task_name) DO UPDATE SET phase = EXCLUDED.phase,"
					  "   updated_at = now()"
					  " WHERE p.phase IS DISTINCT FROM EXCLUDED.phase",
					  task_name, SPI_OK_INSERT);
	else
		launcher_exec("INSERT INTO dms_stream.task_progress AS p (task_name, phase)"
					  " VALUES ($1, 'waiting for a free background worker (max_worker_processes)')"
					  " ON CONFLICT (task_name) DO UPDATE SET phase = EXCLUDED.phase,"
					  "   updated_at = now()"
					  " WHERE p.phase IS DISTINCT FROM EXCLUDED.phase",
					  task_name, SPI_OK_INSERT);
}

/*
 * launcher_stop_worker
 *		Ask the worker of slot i to exit (once).
 */
static void
launcher_stop_worker(int i)
{
	if (launched[i].terminating)
		return;
	if (launched[i].handle != NULL)
		TerminateBackgroundWorker(launched[i].handle);
	else
		kill(launched[i].adopted_pid, SIGTERM);
	launched[i].terminating = true;
}

/*
 * launcher_exec
 *		Run a statement with one text parameter (NULL: none) through SPI.
 */
static void
launcher_exec(const char *sql, const char *param, int expected)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	values[0] = param ? CStringGetTextDatum(param) : (Datum) 0;
	rc = SPI_execute_with_args(sql, param ? 1 : 0, types, values, NULL, false, 0);
	if (rc != expected)
		elog(ERROR, "dms_stream launcher: SPI_execute_with_args failed (%d) for: %s", rc, sql);
}

/*
 * launcher_recover_runs
 *		Once per server start: runs left 'running' by the previous server
 *		life failed when one of their processes crashed (its marker is left,
 *		see task_worker.h), else they were stopped by the restart; their
 *		tasks resume from their checkpoints.
 */
static void
launcher_recover_runs(void)
{
	task_worker_recover_runs();
	launcher_exec("UPDATE dms_stream.run_history"
				  "   SET status = 'stopped', finished_at = now(),"
				  "       message = 'server restarted'"
				  " WHERE run_kind = 'task' AND status = 'running'",
				  NULL, SPI_OK_UPDATE);
	launcher_exec("UPDATE dms_stream.task_progress SET worker_pid = NULL"
				  " WHERE worker_pid IS NOT NULL",
				  NULL, SPI_OK_UPDATE);
	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->runs_recovered = true;
	SpinLockRelease(&launcher_shared->mutex);
}

/*
 * launcher_mark_stopped
 *		A task asked to stop has no worker any more: record it as stopped.
 */
static void
launcher_mark_stopped(const char *task_name)
{
	launcher_exec("UPDATE dms_stream.task"
				  "   SET status = 'stopped',"
				  "       stop_reason = coalesce(stop_reason, 'Stop Reason NORMAL')"
				  " WHERE task_name = $1 AND desired_state = 'stopped'"
				  "   AND status IN ('starting', 'running', 'stopping')",
				  task_name, SPI_OK_UPDATE);
	launcher_exec("UPDATE dms_stream.run_history"
				  "   SET status = 'stopped', finished_at = now(),"
				  "       message = 'stopped by dms_stream.stop_task()'"
				  " WHERE run_kind = 'task' AND task_name = $1 AND status = 'running'",
				  task_name, SPI_OK_UPDATE);
	launcher_exec("UPDATE dms_stream.task_progress"
				  "   SET worker_pid = NULL, phase = 'stopped', updated_at = now()"
				  " WHERE task_name = $1",
				  task_name, SPI_OK_UPDATE);
}

/*
 * launcher_scan
 *		One pass over the task table (see the file header).
 */
static void
launcher_scan(void)
{
	bool		recovered;
	int			i;
	uint64		n;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "checking the task table");

	for (i = 0; i < dms_stream_max_task_workers; i++)
		if (launched[i].used && !launcher_worker_alive(i))
		{
			if (!TimestampDifferenceExceeds(launched[i].started_at, GetCurrentTimestamp(),
											LAUNCHER_MIN_LIFETIME_MS))
				launcher_backoff(launched[i].task_name);
			launcher_free_slot(i);
		}

	if (!OidIsValid(get_extension_oid("dms_stream", true)))
	{
		/* Not created (or dropped): no task may run. */
		for (i = 0; i < dms_stream_max_task_workers; i++)
			if (launched[i].used)
				launcher_stop_worker(i);
		if (!no_extension_logged)
			ereport(LOG,
					(errmsg("dms_stream launcher: extension dms_stream does not exist in database \"%s\" (dms_stream.database); no task runs",
							dms_stream_database),
					 errhint("Tasks run only in the database named by dms_stream.database: "
							 "CREATE EXTENSION dms_stream there, or set dms_stream.database to the database "
							 "where the extension is created and restart the server.")));
		no_extension_logged = true;
		goto done;
	}
	no_extension_logged = false;

	SpinLockAcquire(&launcher_shared->mutex);
	recovered = launcher_shared->runs_recovered;
	SpinLockRelease(&launcher_shared->mutex);
	if (!recovered)
		launcher_recover_runs();

	launcher_exec("SELECT task_name, desired_state"
				  "  FROM dms_stream.task"
				  " WHERE desired_state = 'running'"
				  "    OR status IN ('starting', 'running', 'stopping')"
				  " ORDER BY updated_at, task_name",
				  NULL, SPI_OK_SELECT);
	n = SPI_processed;
	if (n > 0)
	{
		SPITupleTable *tuptable = SPI_tuptable;
		char	  **names = palloc(sizeof(char *) * n);
		bool	   *running = palloc(sizeof(bool) * n);
		uint64		r;

		/* Copy first: the statements below replace SPI_tuptable. */
		for (r = 0; r < n; r++)
		{
			char	   *state;

			names[r] = SPI_getvalue(tuptable->vals[r], tuptable->tupdesc, 1);
			state = SPI_getvalue(tuptable->vals[r], tuptable->tupdesc, 2);
			running[r] = strcmp(state, "running") == 0;
		}

		for (r = 0; r < n; r++)
		{
			int			slot = launcher_find_slot(names[r]);
			LauncherStartResult why;

			if (running[r])
			{
				if (slot >= 0 || launcher_in_backoff(names[r]))
					continue;
				why = launcher_start_worker(names[r]);
				if (why != LAUNCHER_STARTED)
					launcher_set_waiting(names[r], why);
			}
			else if (slot >= 0)
				launcher_stop_worker(slot);
			else
				launcher_mark_stopped(names[r]);
		}
	}

done:
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, "waiting for task changes");
}

/*
 * launcher_main
 *		Entry point of the launcher background worker.
 */
void
launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	launched = MemoryContextAllocZero(TopMemoryContext,
									  sizeof(LaunchedWorker) * dms_stream_max_task_workers);
	launcher_adopt_workers();

	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->launcher_latch = MyLatch;
	SpinLockRelease(&launcher_shared->mutex);
	on_shmem_exit(launcher_forget_latch, (Datum) 0);

	BackgroundWorkerInitializeConnection(dms_stream_database, NULL, 0);
	pgstat_report_appname("dms_stream launcher");
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);

	dms_stream_log(LOG,
			(errmsg("dms_stream launcher started in database \"%s\"", dms_stream_database)));

	for (;;)
	{
		MemoryContext scan_cxt = CurrentMemoryContext;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		PG_TRY();
		{
			launcher_scan();
			if (TimestampDifferenceExceeds(last_slot_check, GetCurrentTimestamp(),
										   dms_stream_poll_interval_ms))
			{
				last_slot_check = GetCurrentTimestamp();
				pg_slot_check_idle_tasks(launcher_has_worker);
			}
		}
		PG_CATCH();
		{
			/* Log, clean up and try again after the nap. */
			MemoryContextSwitchTo(scan_cxt);
			EmitErrorReport();
			FlushErrorState();
			if (MyReplicationSlot != NULL)
				ReplicationSlotRelease();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 dms_stream_naptime_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

PG_FUNCTION_INFO_V1(dms_wake_launcher_at_commit);

/*
 * dms_wake_launcher_at_commit
 *		SQL function dms_stream.wake_launcher_at_commit(): wake the launcher
 *		when the calling transaction commits.
 */
Datum
dms_wake_launcher_at_commit(PG_FUNCTION_ARGS)
{
	launcher_wake_at_commit();
	PG_RETURN_VOID();
}
