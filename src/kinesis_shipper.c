/*-------------------------------------------------------------------------
 *
 * kinesis_shipper.c
 *	  The shipping process of a replication task and the producer's side of
 *	  its queue (see kinesis_shipper.h).
 *
 * Layout of the dynamic shared memory segment: a ShipperShared header, then
 * the shm_mq of KINESIS_SHIPPER_QUEUE_BYTES.  A message on the queue is
 * either a flush mark or a nudge (a ShipperMessageHeader alone), or records
 * back to back (up to SHIPPER_BATCH_BYTES, or one larger record), each a
 * ShipperMessageHeader followed by the partition key (with its NUL), the
 * explicit hash key (with its NUL, when there is one) and the data: one
 * shm_mq message per record would cost more than the copy itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"		/* before utils/builtins.h: json_object */

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "dms_stream.h"
#include "kinesis_shipper.h"
#include "task_worker.h"
#include "worker_xact.h"

#define SHIPPER_MAGIC			0x44534850	/* "DSHP" */
#define SHIPPER_NAME_SIZE		256
#define SHIPPER_TEXT_SIZE		2048
/* Records taken from the queue between two publications of progress. */
#define SHIPPER_DRAIN_BATCH		256
/* Records are queued in messages of up to this many bytes. */
#define SHIPPER_BATCH_BYTES		(64 * 1024)
/* Most shippers one process runs at once. */
#define SHIPPER_MAX_PER_PROCESS 4
/* How long the producer waits for its own signal when the shipper exited. */
#define SHIPPER_EXIT_GRACE_MS	2000

bool		dms_stream_shipping_process = true;
bool		dms_stream_strict_key_order = true;

typedef enum ShipperMessageKind
{
	SHIPPER_RECORD = 1,
	SHIPPER_FLUSH = 2,			/* flush the batcher, publish the mark */
	SHIPPER_NUDGE = 3			/* nothing: pushes the queue's contents */
} ShipperMessageKind;

typedef struct ShipperMessageHeader
{
	uint8		kind;
	uint8		has_hash_key;
	uint16		key_len;		/* including the NUL */
	uint32		data_len;
	uint64		tag;			/* record tag, or flush sequence */
} ShipperMessageHeader;

/* The segment's header. */
typedef struct ShipperShared
{
	uint32		magic;
	Oid			database_id;
	PGPROC	   *producer;		/* to wake it */
	int64		run_id;			/* the producer's task run (crash marker) */
	char		task_name[SHIPPER_NAME_SIZE];
	char		endpoint_name[SHIPPER_NAME_SIZE];
	KinesisBatcherOptions opts; /* callbacks unset */

	slock_t		mutex;			/* protects everything below */
	bool		ready;			/* the shipper opened the endpoint */
	bool		failed;			/* it raised an ERROR, described below */
	bool		terminated;		/* it exited on SIGTERM */
	int			sqlerrcode;
	char		message[SHIPPER_TEXT_SIZE];
	char		detail[SHIPPER_TEXT_SIZE];
	char		hint[SHIPPER_TEXT_SIZE];
	bool		have_acked_through;
	uint64		acked_through;	/* producer's tag */
	int64		received;		/* records taken from the queue */
	int64		unacked;		/* of those, not yet acknowledged */
	uint64		flushed_seq;	/* last flush mark fully flushed */
	KinesisBatcherStats stats;
} ShipperShared;

#define SHIPPER_QUEUE_OFFSET	MAXALIGN(sizeof(ShipperShared))

struct KinesisShipper
{
	KinesisBatcher *local;		/* in-process mode; else NULL */
	dsm_segment *seg;
	ShipperShared *shared;
	shm_mq_handle *mqh;
	BackgroundWorkerHandle *handle;
	char	   *task_name;
	int64		max_record_bytes;
	int64		max_unacked;	/* records added and not acknowledged */
	int64		added;			/* records queued */
	int64		rejected;		/* refused by the checks */
	uint64		flush_seq;		/* last flush mark sent */
	int			adds_since_check;
	char	   *batch;			/* records not yet queued, back to back */
	int			batch_len;
	bool		stopped;
	KinesisBatcherStats stats;	/* last published */
	KinesisBatcherStats view;	/* stats with the producer's refusals: what
								 * kinesis_shipper_stats returns, kept current */
	bool		have_acked_through;
	uint64		acked_through;
	int64		acked;			/* records acknowledged (published) */
	int64		shipper_unacked;
	bool		strict_key_order;
};

/* Shippers started by this process and not stopped, for the exit hook. */
static KinesisShipper *running_shippers[SHIPPER_MAX_PER_PROCESS];
static bool exit_hook_installed = false;

static void shipper_raise(KinesisShipper *s);

/*
 * kinesis_shipper_define_settings
 *		Define dms_stream.shipping_process and dms_stream.strict_key_order.
 */
void
kinesis_shipper_define_settings(void)
{
	DefineCustomBoolVariable("dms_stream.shipping_process",
							 "Ship each task's Kinesis records from a separate process.",
							 "Producing records (reading files, decoding WAL, rendering messages) "
							 "and shipping them (PutRecords bodies, signing, HTTP) then use two "
							 "cores; each running task needs a second slot in max_worker_processes.",
							 &dms_stream_shipping_process,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("dms_stream.strict_key_order",
							 "Keep the records of each partition key in order in the stream.",
							 "At most one record of a partition key is on the wire at a time, "
							 "so a record Kinesis rejects is never overtaken by a later record "
							 "of its key; off allows many records of a key per PutRecords "
							 "request, and such a later record may then be stored first.",
							 &dms_stream_strict_key_order,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
}

/* ----------------------------------------------------------------
 * The producer's side
 * ----------------------------------------------------------------
 */

/*
 * shipper_forget
 *		Remove s from the running shippers.
 */
static void
shipper_forget(KinesisShipper *s)
{
	int			i;

	for (i = 0; i < SHIPPER_MAX_PER_PROCESS; i++)
		if (running_shippers[i] == s)
			running_shippers[i] = NULL;
}

/*
 * shipper_terminate
 *		Detach from the shipping process's segment, which makes it exit once
 *		it looks at its queue; with kill, also signal it to exit at once.
 */
static void
shipper_terminate(KinesisShipper *s, bool kill)
{
	if (s->stopped || s->local != NULL)
		return;
	s->stopped = true;
	shipper_forget(s);
	if (kill && s->handle != NULL)
		TerminateBackgroundWorker(s->handle);
	if (s->mqh != NULL)
		shm_mq_detach(s->mqh);
	s->mqh = NULL;
	if (s->seg != NULL)
		dsm_detach(s->seg);
	s->seg = NULL;
	s->shared = NULL;
}

/*
 * shipper_exit_hook
 *		At process exit, stop the shipping processes still running.
 */
static void
shipper_exit_hook(int code, Datum arg)
{
	int			i;

	for (i = 0; i < SHIPPER_MAX_PER_PROCESS; i++)
	{
		KinesisShipper *s = running_shippers[i];

		running_shippers[i] = NULL;
		if (s != NULL && s->handle != NULL)
			TerminateBackgroundWorker(s->handle);
	}
}

/*
 * kinesis_shipper_abort_all
 *		Stop every shipper this process started and has not stopped.
 */
void
kinesis_shipper_abort_all(void)
{
	int			i;

	for (i = 0; i < SHIPPER_MAX_PER_PROCESS; i++)
		if (running_shippers[i] != NULL)
			shipper_terminate(running_shippers[i], true);
}

/*
 * shipper_take_published
 *		Copy what the shipper has published; raise its error if it failed.
 */
static void
shipper_take_published(KinesisShipper *s)
{
	ShipperShared *sh = s->shared;
	bool		failed;

	if (s->stopped)
		elog(ERROR, "the shipping process of task \"%s\" was stopped", s->task_name);
	SpinLockAcquire(&sh->mutex);
	failed = sh->failed;
	s->have_acked_through = sh->have_acked_through;
	s->acked_through = sh->acked_through;
	s->shipper_unacked = sh->unacked;
	s->acked = sh->received - sh->unacked;
	memcpy(&s->stats, &sh->stats, sizeof(KinesisBatcherStats));
	SpinLockRelease(&sh->mutex);
	s->view = s->stats;
	s->view.records_rejected += s->rejected;
	if (failed)
		shipper_raise(s);
}

/*
 * shipper_wait_for_signal
 *		The shipping process exited without an error of its own.  At a server
 *		shutdown (SIGTERM) or after the crash of another process (SIGQUIT)
 *		this process is signalled at the same time: give that signal a moment
 *		to arrive, so that the stop wins over an error of the task.
 */
static void
shipper_wait_for_signal(void)
{
	int			waited;

	for (waited = 0; waited < SHIPPER_EXIT_GRACE_MS && !task_worker_got_sigterm();
		 waited += 100)
	{
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	CHECK_FOR_INTERRUPTS();
}

/*
 * shipper_raise
 *		Raise the shipper's error in the producer (and stop the shipper).
 */
static void
shipper_raise(KinesisShipper *s)
{
	ShipperShared *sh = s->shared;
	int			sqlerrcode = ERRCODE_INTERNAL_ERROR;
	char	   *message = NULL;
	char	   *detail = NULL;
	char	   *hint = NULL;
	char	   *task_name = s->task_name;
	bool		terminated = false;

	if (sh != NULL)
	{
		SpinLockAcquire(&sh->mutex);
		if (sh->failed)
		{
			sqlerrcode = sh->sqlerrcode;
			message = pstrdup(sh->message);
			detail = sh->detail[0] ? pstrdup(sh->detail) : NULL;
			hint = sh->hint[0] ? pstrdup(sh->hint) : NULL;
		}
		terminated = sh->terminated;
		SpinLockRelease(&sh->mutex);
	}
	shipper_terminate(s, true);
	if (message == NULL)
	{
		shipper_wait_for_signal();
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the shipping process of task \"%s\" exited", task_name),
				 terminated ? errdetail("It was terminated (SIGTERM); records it had not acknowledged will be sent again when the task resumes.") :
				 errdetail("Records it had not acknowledged will be sent again when the task resumes."),
				 errhint("See the server log for why it exited.")));
	}
	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg_internal("%s", message),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errcontext("shipping process of task \"%s\"", task_name)));
}

/*
 * shipper_check_alive
 *		Raise an error when the shipping process is gone.
 */
static void
shipper_check_alive(KinesisShipper *s)
{
	pid_t		pid;

	shipper_take_published(s);
	if (GetBackgroundWorkerPid(s->handle, &pid) == BGWH_STOPPED)
	{
		shipper_take_published(s);	/* its error, if it wrote one */
		shipper_raise(s);
	}
}

/*
 * shipper_sleep
 *		Wait (at most a second) for the shipping process to set our latch,
 *		honouring interrupts; the callers look at the published state again.
 */
static void
shipper_sleep(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 1000L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * kinesis_shipper_start
 *		Start the shipping process, or a local batcher; see the header.
 */
KinesisShipper *
kinesis_shipper_start(KinesisClient *client, const char *task_name,
					  const KinesisBatcherOptions *opts)
{
	KinesisShipper *s = palloc0(sizeof(KinesisShipper));
	BackgroundWorker worker;
	ShipperShared *sh;
	shm_mq	   *mq;
	pid_t		pid;
	int			slot;

	Assert(opts->on_ack == NULL);
	s->task_name = pstrdup(task_name);
	s->max_record_bytes = opts->max_record_bytes;
	s->max_unacked = opts->max_buffered_records;
	s->strict_key_order = opts->strict_key_order;

	for (slot = 0; slot < SHIPPER_MAX_PER_PROCESS; slot++)
		if (running_shippers[slot] == NULL)
			break;
	if (!dms_stream_shipping_process || slot == SHIPPER_MAX_PER_PROCESS)
	{
		s->local = kinesis_batcher_create(client, opts);
		return s;
	}

	s->seg = dsm_create(SHIPPER_QUEUE_OFFSET + KINESIS_SHIPPER_QUEUE_BYTES, 0);
	dsm_pin_mapping(s->seg);
	sh = s->shared = dsm_segment_address(s->seg);
	memset(sh, 0, sizeof(ShipperShared));
	sh->magic = SHIPPER_MAGIC;
	sh->database_id = MyDatabaseId;
	sh->producer = MyProc;
	sh->run_id = task_worker_run_id();
	strlcpy(sh->task_name, task_name, SHIPPER_NAME_SIZE);
	strlcpy(sh->endpoint_name, client->endpoint_name, SHIPPER_NAME_SIZE);
	sh->opts = *opts;
	sh->opts.on_ack = NULL;
	sh->opts.ack_arg = NULL;
	sh->opts.records_checked = true;	/* by kinesis_shipper_add */
	SpinLockInit(&sh->mutex);
	mq = shm_mq_create((char *) sh + SHIPPER_QUEUE_OFFSET, KINESIS_SHIPPER_QUEUE_BYTES);
	shm_mq_set_sender(mq, MyProc);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "dms_stream");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "kinesis_shipper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "dms_stream shipper %s", task_name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "dms_stream shipper");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(s->seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &s->handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("task \"%s\" ships its records in its own process: no background worker slot is free for a shipping process",
						task_name),
				 errhint("Raise max_worker_processes (each running task uses two) to ship from a separate process.")));
		dsm_detach(s->seg);
		s->seg = NULL;
		s->shared = NULL;
		s->local = kinesis_batcher_create(client, opts);
		return s;
	}
	s->mqh = shm_mq_attach(mq, s->seg, s->handle);
	s->batch = palloc(SHIPPER_BATCH_BYTES);
	running_shippers[slot] = s;
	if (!exit_hook_installed)
	{
		before_shmem_exit(shipper_exit_hook, (Datum) 0);
		exit_hook_installed = true;
	}

	if (WaitForBackgroundWorkerStartup(s->handle, &pid) != BGWH_STARTED)
		shipper_raise(s);

	/* Wait until it has opened the endpoint, or failed. */
	for (;;)
	{
		bool		ready;

		shipper_check_alive(s);
		SpinLockAcquire(&sh->mutex);
		ready = sh->ready;
		SpinLockRelease(&sh->mutex);
		if (ready)
			break;
		shipper_sleep();
	}
	return s;
}

/*
 * kinesis_shipper_is_separate
 *		True when a shipping process ships the records.
 */
bool
kinesis_shipper_is_separate(KinesisShipper *s)
{
	return s->local == NULL;
}

/*
 * shipper_send
 *		Queue one message, waiting (interruptibly) for room.
 */
static void
shipper_send(KinesisShipper *s, shm_mq_iovec *iov, int iovcnt, bool force_flush)
{
	shm_mq_result res;

	if (s->stopped)
		elog(ERROR, "the shipping process of task \"%s\" was stopped", s->task_name);
	res = shm_mq_sendv(s->mqh, iov, iovcnt, false, force_flush);
	if (res != SHM_MQ_SUCCESS)
	{
		shipper_take_published(s);
		shipper_raise(s);
	}
}

/*
 * shipper_send_batch
 *		Queue the records gathered so far as one message.
 */
static void
shipper_send_batch(KinesisShipper *s, bool force_flush)
{
	shm_mq_iovec iov;

	if (s->batch_len == 0)
		return;
	iov.data = s->batch;
	iov.len = s->batch_len;
	shipper_send(s, &iov, 1, force_flush);
	s->batch_len = 0;
}

/*
 * shipper_send_mark
 *		Queue the records gathered so far and a flush mark or a nudge,
 *		flushed to the shipper.
 */
static void
shipper_send_mark(KinesisShipper *s, ShipperMessageKind kind, uint64 seq)
{
	ShipperMessageHeader h;
	shm_mq_iovec iov;

	shipper_send_batch(s, false);
	memset(&h, 0, sizeof(h));
	h.kind = kind;
	h.tag = seq;
	iov.data = (const char *) &h;
	iov.len = sizeof(h);
	shipper_send(s, &iov, 1, true);
}

/*
 * shipper_wait_for_room
 *		With as many records unacknowledged as the batcher may buffer, wait
 *		until some are acknowledged, as a local batcher would: the producer
 *		stays no further ahead of Kinesis than max_buffered_records, so that
 *		its checkpoints keep moving while it produces.
 */
static void
shipper_wait_for_room(KinesisShipper *s)
{
	/* Make sure the shipper sees every record added so far. */
	shipper_send_mark(s, SHIPPER_NUDGE, 0);
	for (;;)
	{
		shipper_check_alive(s);
		if (s->added - s->acked < s->max_unacked)
			break;
		shipper_sleep();
	}
}

/*
 * kinesis_shipper_add
 *		Check and queue one record.
 */
KinesisRecordStatus
kinesis_shipper_add(KinesisShipper *s, const char *data, size_t data_len,
					const char *partition_key, const char *explicit_hash_key,
					uint64 tag, char **problem)
{
	ShipperMessageHeader h;
	size_t		hash_len = explicit_hash_key ? strlen(explicit_hash_key) + 1 : 0;
	size_t		size;
	char	   *p;
	KinesisRecordStatus status;

	if (s->local)
		return kinesis_batcher_add(s->local, data, data_len, partition_key,
								   explicit_hash_key, tag, problem);

	status = kinesis_record_check(data, data_len, partition_key, explicit_hash_key,
								  s->max_record_bytes, problem);
	if (status != KINESIS_RECORD_OK)
	{
		s->rejected++;
		return status;
	}
	h.kind = SHIPPER_RECORD;
	h.has_hash_key = explicit_hash_key != NULL;
	h.key_len = strlen(partition_key) + 1;
	h.data_len = data_len;
	h.tag = tag;
	size = sizeof(h) + h.key_len + hash_len + data_len;
	if (s->batch_len + size > SHIPPER_BATCH_BYTES)
		shipper_send_batch(s, false);
	if (size > SHIPPER_BATCH_BYTES)
	{
		/* a large record is a message of its own */
		shm_mq_iovec iov[4];
		int			n = 0;

		iov[n].data = (const char *) &h;
		iov[n++].len = sizeof(h);
		iov[n].data = partition_key;
		iov[n++].len = h.key_len;
		if (explicit_hash_key != NULL)
		{
			iov[n].data = explicit_hash_key;
			iov[n++].len = hash_len;
		}
		iov[n].data = data;
		iov[n++].len = data_len;
		shipper_send(s, iov, n, false);
	}
	else
	{
		p = s->batch + s->batch_len;
		memcpy(p, &h, sizeof(h));
		p += sizeof(h);
		memcpy(p, partition_key, h.key_len);
		p += h.key_len;
		if (explicit_hash_key != NULL)
		{
			memcpy(p, explicit_hash_key, hash_len);
			p += hash_len;
		}
		memcpy(p, data, data_len);
		s->batch_len += size;
	}
	s->added++;
	if (++s->adds_since_check >= SHIPPER_DRAIN_BATCH)
	{
		s->adds_since_check = 0;
		shipper_take_published(s);
	}
	if (s->added - s->acked >= s->max_unacked)
		shipper_wait_for_room(s);
	return KINESIS_RECORD_OK;
}

/*
 * kinesis_shipper_poll
 *		Hand the records gathered so far to the shipper and take the
 *		progress it has published.
 */
void
kinesis_shipper_poll(KinesisShipper *s)
{
	if (s->local)
		kinesis_batcher_poll(s->local);
	else
	{
		shipper_send_batch(s, true);
		shipper_take_published(s);
	}
}

/*
 * kinesis_shipper_flush
 *		Queue a flush mark and wait until the shipper has flushed past it.
 */
void
kinesis_shipper_flush(KinesisShipper *s)
{
	if (s->local)
	{
		kinesis_batcher_flush(s->local);
		return;
	}
	shipper_send_mark(s, SHIPPER_FLUSH, ++s->flush_seq);
	for (;;)
	{
		uint64		flushed;

		shipper_check_alive(s);
		SpinLockAcquire(&s->shared->mutex);
		flushed = s->shared->flushed_seq;
		SpinLockRelease(&s->shared->mutex);
		if (flushed >= s->flush_seq)
			break;
		shipper_sleep();
	}
	shipper_take_published(s);
}

/*
 * kinesis_shipper_flush_start
 *		Queue a flush mark without waiting for it (see the header).
 */
void
kinesis_shipper_flush_start(KinesisShipper *s)
{
	if (s->local)
	{
		kinesis_batcher_flush(s->local);
		return;
	}
	shipper_send_mark(s, SHIPPER_FLUSH, ++s->flush_seq);
}

/*
 * kinesis_shipper_flush_done
 *		Whether the shipper has flushed past the last mark, waiting at most
 *		timeout_ms for it; the published acknowledgements are taken.
 */
bool
kinesis_shipper_flush_done(KinesisShipper *s, long timeout_ms)
{
	uint64		flushed;

	if (s->local)
		return true;
	shipper_check_alive(s);
	SpinLockAcquire(&s->shared->mutex);
	flushed = s->shared->flushed_seq;
	SpinLockRelease(&s->shared->mutex);
	if (flushed < s->flush_seq)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		shipper_check_alive(s);
		SpinLockAcquire(&s->shared->mutex);
		flushed = s->shared->flushed_seq;
		SpinLockRelease(&s->shared->mutex);
	}
	shipper_take_published(s);
	return flushed >= s->flush_seq;
}

/*
 * kinesis_shipper_acked_through
 *		The acknowledged prefix, as last published.
 */
bool
kinesis_shipper_acked_through(KinesisShipper *s, uint64 *tag)
{
	if (s->local)
		return kinesis_batcher_acked_through(s->local, tag);
	if (s->have_acked_through)
		*tag = s->acked_through;
	return s->have_acked_through;
}

/*
 * kinesis_shipper_unacked
 *		Records added and not yet known to be acknowledged.
 */
int64
kinesis_shipper_unacked(KinesisShipper *s)
{
	if (s->local)
		return kinesis_batcher_unacked(s->local);
	return s->added - s->acked;
}

/*
 * kinesis_shipper_stats
 *		The counters, with the producer's refusals.
 */
const KinesisBatcherStats *
kinesis_shipper_stats(KinesisShipper *s)
{
	if (s->local)
		return kinesis_batcher_stats(s->local);
	s->view = s->stats;
	s->view.records_rejected += s->rejected;
	return &s->view;
}

/*
 * kinesis_shipper_stats_json
 *		The counters as JSON, with "shipping_process" saying where they were
 *		counted.
 */
json_t *
kinesis_shipper_stats_json(KinesisShipper *s)
{
	json_t	   *o;

	if (s->local)
		o = kinesis_batcher_stats_json(s->local);
	else
		o = kinesis_stats_json(kinesis_shipper_stats(s), kinesis_shipper_unacked(s),
							   s->have_acked_through, s->acked_through,
							   s->strict_key_order);
	json_object_set_new(o, "shipping_process", json_boolean(s->local == NULL));
	return o;
}

/*
 * kinesis_shipper_stop
 *		Stop the shipper, or destroy the local batcher.
 */
void
kinesis_shipper_stop(KinesisShipper *s)
{
	if (s->local)
	{
		kinesis_batcher_destroy(s->local);
		s->local = NULL;
		s->stopped = true;
		return;
	}
	shipper_terminate(s, false);
}

/* ----------------------------------------------------------------
 * The shipping process
 * ----------------------------------------------------------------
 */

static ShipperShared *my_shared = NULL;

/*
 * shipper_publish
 *		Publish the batcher's progress and wake the producer when it moved.
 */
static void
shipper_publish(KinesisBatcher *b, int64 received, uint64 flushed_seq, bool force)
{
	ShipperShared *sh = my_shared;
	uint64		tag = 0;
	bool		have = kinesis_batcher_acked_through(b, &tag);
	int64		unacked = kinesis_batcher_unacked(b);
	const KinesisBatcherStats *st = kinesis_batcher_stats(b);
	bool		moved;

	SpinLockAcquire(&sh->mutex);
	moved = force || sh->have_acked_through != have || sh->acked_through != tag ||
		sh->flushed_seq != flushed_seq || sh->unacked != unacked;
	sh->have_acked_through = have;
	sh->acked_through = tag;
	sh->received = received;
	sh->unacked = unacked;
	sh->flushed_seq = flushed_seq;
	memcpy(&sh->stats, st, sizeof(KinesisBatcherStats));
	SpinLockRelease(&sh->mutex);
	if (moved)
		SetLatch(&sh->producer->procLatch);
}

/*
 * shipper_fail
 *		Record the error being raised so that the producer raises it too.
 */
static void
shipper_fail(ErrorData *edata)
{
	ShipperShared *sh = my_shared;

	if (sh == NULL)
		return;
	SpinLockAcquire(&sh->mutex);
	sh->failed = true;
	sh->sqlerrcode = edata->sqlerrcode;
	strlcpy(sh->message, edata->message ? edata->message : "unknown error", SHIPPER_TEXT_SIZE);
	strlcpy(sh->detail, edata->detail ? edata->detail : "", SHIPPER_TEXT_SIZE);
	strlcpy(sh->hint, edata->hint ? edata->hint : "", SHIPPER_TEXT_SIZE);
	SpinLockRelease(&sh->mutex);
	SetLatch(&sh->producer->procLatch);
}

/*
 * shipper_loop
 *		Take records from the queue into the batcher, keep requests going,
 *		publish progress; returns when the producer detached.
 */
static void
shipper_loop(shm_mq_handle *mqh, KinesisBatcher *b)
{
	int64		received = 0;
	uint64		flushed_seq = 0;

	for (;;)
	{
		int			n = 0;
		uint64		flush_mark = 0;
		shm_mq_result res = SHM_MQ_WOULD_BLOCK;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		while (n < SHIPPER_DRAIN_BATCH && flush_mark == 0)
		{
			Size		len;
			void	   *msg;
			const char *p;
			const char *end;

			res = shm_mq_receive(mqh, &len, &msg, true);
			if (res != SHM_MQ_SUCCESS)
				break;
			p = msg;
			end = p + len;
			while (p < end)
			{
				ShipperMessageHeader h;
				const char *key;
				const char *hash_key = NULL;
				char	   *problem = NULL;

				if (end - p < (long) sizeof(h))
					elog(ERROR, "malformed message of %zu bytes in the shipping queue", len);
				memcpy(&h, p, sizeof(h));
				p += sizeof(h);
				if (h.kind == SHIPPER_NUDGE)
					continue;
				if (h.kind == SHIPPER_FLUSH)
				{
					flush_mark = h.tag;
					continue;
				}
				key = p;
				p += h.key_len;
				if (h.has_hash_key && p < end)
				{
					hash_key = p;
					p += strnlen(p, end - p) + 1;
				}
				if (h.kind != SHIPPER_RECORD || h.key_len == 0 ||
					p + h.data_len > end || key[h.key_len - 1] != '\0')
					elog(ERROR, "malformed message of %zu bytes in the shipping queue", len);
				if (kinesis_batcher_add(b, p, h.data_len, key, hash_key, h.tag,
										&problem) != KINESIS_RECORD_OK)
					elog(ERROR, "the shipping process refused a record the producer accepted: %s",
						 problem ? problem : "?");
				p += h.data_len;
				received++;
				n++;
			}
		}
		if (res == SHM_MQ_DETACHED)
			return;

		kinesis_batcher_poll(b);
		if (flush_mark != 0)
		{
			kinesis_batcher_flush(b);
			flushed_seq = flush_mark;
		}
		shipper_publish(b, received, flushed_seq, false);
		if (n > 0 || flush_mark != 0)
			continue;			/* more may be queued */

		/* Nothing queued: sleep until an answer or a record arrives. */
		kinesis_batcher_wait(b);
	}
}

/*
 * shipper_note_exit
 *		before_shmem_exit callback of the shipping process: tell the producer
 *		that it exited on SIGTERM (see shipper_raise).
 */
static void
shipper_note_exit(int code, Datum arg)
{
	ShipperShared *sh = my_shared;

	if (sh == NULL || !task_worker_got_sigterm())
		return;
	SpinLockAcquire(&sh->mutex);
	sh->terminated = true;
	SpinLockRelease(&sh->mutex);
	SetLatch(&sh->producer->procLatch);
}

/*
 * kinesis_shipper_main
 *		Entry point of the shipping process: attach to the producer's
 *		segment, open the endpoint, ship until the producer detaches.
 */
void
kinesis_shipper_main(Datum main_arg)
{
	dsm_segment *seg;
	ShipperShared *sh;
	shm_mq	   *mq;
	shm_mq_handle *mqh;
	MemoryContext cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	task_worker_handle_sigterm();
	BackgroundWorkerUnblockSignals();

	cxt = AllocSetContextCreate(TopMemoryContext, "dms_stream shipper",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map the shared memory segment of a dms_stream shipping process"),
				 errdetail("The task process that started it has exited.")));
	dsm_pin_mapping(seg);
	sh = dsm_segment_address(seg);
	if (sh->magic != SHIPPER_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("bad magic number in the shared memory segment of a dms_stream shipping process")));
	my_shared = sh;
	task_worker_mark_process(sh->run_id, "shipper");
	before_shmem_exit(shipper_note_exit, (Datum) 0);
	mq = (shm_mq *) ((char *) sh + SHIPPER_QUEUE_OFFSET);
	shm_mq_set_receiver(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);

	BackgroundWorkerInitializeConnectionByOid(sh->database_id, InvalidOid, 0);
	pgstat_report_appname(sh->task_name);

	PG_TRY();
	{
		KinesisClient *client;
		KinesisBatcher *b;

		pgstat_report_activity(STATE_RUNNING, "opening the Kinesis endpoint");
		worker_xact_begin();
		MemoryContextSwitchTo(cxt);		/* SPI switched to its own */
		client = kinesis_client_open(sh->endpoint_name);
		worker_xact_end(cxt);
		b = kinesis_batcher_create(client, &sh->opts);

		SpinLockAcquire(&sh->mutex);
		sh->ready = true;
		SpinLockRelease(&sh->mutex);
		SetLatch(&sh->producer->procLatch);

		pgstat_report_activity(STATE_RUNNING,
							   psprintf("shipping records to Kinesis stream %s", client->stream_name));
		shipper_loop(mqh, b);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		shipper_fail(edata);
		PG_RE_THROW();
	}
	PG_END_TRY();
	proc_exit(0);
}
