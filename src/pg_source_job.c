/*-------------------------------------------------------------------------
 *
 * pg_source_job.c
 *	  Full load and logical decoding of this database's tables to Kinesis
 *	  (see pg_source_job.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"		/* before utils/builtins.h: json_object */

#include <unistd.h>

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/interrupt.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/message.h"
#include "replication/slot.h"
#include "replication/snapbuild.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "decoding_plugin.h"
#include "dms_message.h"
#include "dms_stream.h"
#include "kinesis.h"
#include "kinesis_shipper.h"
#include "mapping.h"
#include "pg_slot.h"
#include "pg_source_job.h"
#include "worker_xact.h"
#include "task_worker.h"

#define PG_JOB_CHECKPOINT_MS	1000
#define PG_JOB_SLOT_SAVE_MS		1000
#define PG_JOB_IDLE_WAIT_MS		10
#define PG_JOB_STRETCH_BYTES	(64 * 1024 * 1024)	/* WAL per round */
#define PG_JOB_FEED_BYTES		(512 * 1024)	/* spool fed to the batcher */
#define PG_JOB_SPOOL_MEMORY		(2 * 1024 * 1024)	/* larger: in the file */
#define PG_JOB_POLL_RECORDS		64	/* WAL records between batcher polls */
#define PG_JOB_MARKS			64

int			dms_stream_max_slot_lag_mb = 10240;

/* What the ring remembers of a queued record. */
typedef struct PgRingEntry
{
	int64		spool_end;		/* full load: spool offset after it */
	XLogRecPtr	commit_lsn;		/* CDC */
	TimestampTz commit_time;	/* CDC: its transaction's commit time */
	int64		ordinal;
	int32		table;
	uint32		stat;
} PgRingEntry;

/* The slot may be confirmed up to lsn once the record of tag is acked. */
typedef struct PgConfirmMark
{
	uint64		tag;
	XLogRecPtr	lsn;
} PgConfirmMark;

typedef struct PgJob
{
	const char *task_name;
	int64		run_id;
	S3SourceJobResult *result;
	char	   *migration_type;
	bool		full_load;
	bool		cdc;
	char	   *slot_name;		/* dms_stream.task_slot_name(task) */
	bool		user_slot;		/* named by the endpoint's SlotName */
	bool		via_root;		/* PublishViaPartitionRoot (default true) */
	char	   *spool_dir;
	bool		heartbeat;
	int			heartbeat_minutes;
	char	   *heartbeat_schema;	/* HeartbeatSchema, or NULL */

	KinesisClient *kinesis;
	KinesisShipper *shipper;	/* the PutRecords batcher, maybe in a shipping process */
	MappingSet *mappings;
	DmsMessageSettings settings;
	PgSourceContext *pc;

	PgRingEntry *ring;
	int			ring_size;
	uint64		next_tag;
	uint64		acked_tag;
	uint64		checkpoint_tag; /* acked_tag at the last checkpoint */
	int64		refused;

	/* CDC pipeline */
	PgConfirmMark marks[PG_JOB_MARKS];
	int			nmarks;
	int64		fed_records;	/* spooled records handed to the batcher */
	int64		fed_bytes;

	/* checkpoints */
	bool		has_load_row;
	bool		load_done;
	int64		load_offset;	/* acknowledged spool offset */
	int64		load_rows;
	int64		load_rows_at_start;
	bool		has_cdc_row;
	XLogRecPtr	start_lsn;		/* the slot's consistent point */
	XLogRecPtr	ack_lsn;		/* newest acknowledged record: commit LSN */
	int64		ack_ordinal;	/* ... and ordinal */
	int64		cdc_rows;
	int64		cdc_rows_at_start;
	bool		loading;		/* the ring holds full-load records */

	/* task_status figures (see pj_write_progress) */
	TimestampTz read_commit_time;	/* newest transaction decoded */
	TimestampTz ack_commit_time;	/* newest acknowledged record's */
	bool		read_caught_up; /* the last check found no new WAL */
	XLogRecPtr	wal_seen;		/* decoded, or written by this worker */
	WorkerRateInterval interval;

	TimestampTz run_started;
	TimestampTz last_checkpoint;
	TimestampTz last_slot_save;
	TimestampTz last_heartbeat;
	XLogRecPtr	confirmed;
	XLogRecPtr	saved;

	StringInfoData data;
	StringInfoData key;
	StringInfoData pdata;		/* the record held back until the next entry
								 * says whether it ends its transaction */
	StringInfoData pkey;
	StringInfoData held;		/* control records held behind pdata */
} PgJob;

/*
 * lsn_text
 *		An LSN as PostgreSQL prints it (X/XXXXXXXX), palloc'd.
 */
static char *
lsn_text(XLogRecPtr lsn)
{
	return psprintf("%X/%08X", LSN_FORMAT_ARGS(lsn));
}

static XLogRecPtr
lsn_parse(const char *s)
{
	bool		have_error = false;
	XLogRecPtr	lsn = pg_lsn_in_internal(s, &have_error);

	if (have_error)
		elog(ERROR, "dms_stream: bad LSN \"%s\" in task_checkpoint", s);
	return lsn;
}

/* ----------------------------------------------------------------
 * Task
 * ----------------------------------------------------------------
 */

static void
pj_load_task(PgJob *job, MemoryContext job_cxt)
{
	const char *params[1] = {job->task_name};
	char	   *target_name;
	char	   *threads;
	char	   *buffer_size;
	Jsonb	   *mappings;
	Jsonb	   *task_settings;
	Jsonb	   *source_settings;
	KinesisBatcherOptions opts;
	int			in_flight;
	int			per_request;
	uint64		n;
	uint64		i;

	worker_xact_begin();
	worker_exec("SELECT t.target_endpoint, t.table_mappings, t.migration_type,"
			"       t.task_settings #>> '{TargetMetadata,ParallelLoadThreads}',"
			"       t.task_settings #>> '{TargetMetadata,ParallelLoadBufferSize}',"
			"       t.task_settings, e.settings, dms_stream.task_slot_name(t.task_name)"
			"  FROM dms_stream.task t"
			"  JOIN dms_stream.endpoint e ON e.endpoint_name = t.source_endpoint"
			" WHERE t.task_name = $1",
			1, params, SPI_OK_SELECT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task \"%s\" does not exist", job->task_name)));
	MemoryContextSwitchTo(job_cxt);
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		target_name = SPI_getvalue(tup, desc, 1);
		mappings = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 2, &isnull));
		job->migration_type = SPI_getvalue(tup, desc, 3);
		threads = SPI_getvalue(tup, desc, 4);
		buffer_size = SPI_getvalue(tup, desc, 5);
		task_settings = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 6, &isnull));
		source_settings = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 7, &isnull));
		job->slot_name = SPI_getvalue(tup, desc, 8);
	}
	job->full_load = strcmp(job->migration_type, "cdc") != 0;
	job->cdc = strcmp(job->migration_type, "full-load") != 0;
	job->kinesis = kinesis_client_open(target_name);
	job->mappings = mapping_compile(mappings);
	{
		DmsJsonDoc	doc = {"task settings"};
		DmsJsonDoc	sdoc = {"PostgreSQL source settings"};
		json_t	   *ss = dms_json_from_jsonb(&sdoc, source_settings);
		json_t	   *v;

		dms_message_settings_from_json(&job->settings, job->kinesis->endpoint->settings,
									   dms_json_from_jsonb(&doc, task_settings),
									   job->task_name);
		v = json_object_get(ss, "HeartbeatEnable");
		job->heartbeat = v != NULL && json_is_true(v);
		v = json_object_get(ss, "HeartbeatFrequency");
		job->heartbeat_minutes = v != NULL && json_is_integer(v) ? (int) json_integer_value(v) : 5;
		v = json_object_get(ss, "HeartbeatSchema");
		job->heartbeat_schema = v != NULL && json_is_string(v) ? pstrdup(json_string_value(v)) : NULL;
		v = json_object_get(ss, "PublishViaPartitionRoot");
		job->via_root = v == NULL || !json_is_false(v);
		v = json_object_get(ss, "SlotName");
		if (v != NULL && json_is_string(v))
		{
			pg_slot_check_migration_type(job->task_name, job->migration_type,
										 json_string_value(v));
			/* task_slot_name gives SlotName for cdc tasks only (pg_slot.h) */
			job->user_slot = !job->full_load;
		}
	}

	/* Checkpoints. */
	MemoryContextSwitchTo(CurTransactionContext);
	worker_exec("SELECT table_name, file_key, next_offset, table_done, rows_sent"
			"  FROM dms_stream.task_checkpoint"
			" WHERE task_name = $1 AND schema_name = '(pg)'",
			1, params, SPI_OK_SELECT);
	n = SPI_processed;
	MemoryContextSwitchTo(job_cxt);
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *table = SPI_getvalue(tup, desc, 1);
		char	   *key = SPI_getvalue(tup, desc, 2);
		int64		offset = strtoll(SPI_getvalue(tup, desc, 3), NULL, 10);
		bool		done = strcmp(SPI_getvalue(tup, desc, 4), "t") == 0;
		int64		rows = strtoll(SPI_getvalue(tup, desc, 5), NULL, 10);

		if (strcmp(table, "(full-load)") == 0)
		{
			job->has_load_row = true;
			job->load_offset = offset;
			job->load_done = done;
			job->load_rows = job->load_rows_at_start = rows;
			if (key != NULL)
				job->start_lsn = lsn_parse(key);
		}
		else if (strcmp(table, "(cdc)") == 0)
		{
			job->has_cdc_row = true;
			job->ack_lsn = key ? lsn_parse(key) : InvalidXLogRecPtr;
			job->ack_ordinal = offset;
			job->cdc_rows = job->cdc_rows_at_start = rows;
		}
	}
	worker_xact_end(job_cxt);

	job->spool_dir = psprintf("%s/pg_dms_stream", DataDir);
	job->pc = pg_source_context_create(job->task_name, job->mappings, &job->settings);
	job->pc->via_root = job->via_root;

	/* ParallelLoadThreads requests of ParallelLoadBufferSize records. */
	in_flight = threads ? atoi(threads) : 4;
	in_flight = Max(in_flight, 1);
	per_request = buffer_size ? atoi(buffer_size) : 0;
	if (per_request <= 0)
		per_request = 500;
	per_request = Min(per_request, KINESIS_MAX_REQUEST_RECORDS);
	kinesis_batcher_default_options(&opts);
	opts.max_in_flight = Min(in_flight, 64);
	opts.max_request_records = per_request;
	opts.strict_key_order = dms_stream_strict_key_order;
	opts.max_buffered_records = Max(per_request * opts.max_in_flight * 2, 1000);
	job->shipper = kinesis_shipper_start(job->kinesis, job->task_name, &opts);
	job->ring_size = opts.max_buffered_records * 2 + 16;
	job->ring = palloc0(sizeof(PgRingEntry) * job->ring_size);

	initStringInfo(&job->data);
	initStringInfo(&job->key);
	initStringInfo(&job->pdata);
	initStringInfo(&job->pkey);
	initStringInfo(&job->held);
}

/* ----------------------------------------------------------------
 * Checkpoints
 * ----------------------------------------------------------------
 */

/*
 * pj_write_progress
 *		The task_status figures (inside the checkpoint's transaction): the
 *		commit times of the newest change decoded and of the newest one
 *		acknowledged, whether the worker was caught up (decoded up to the
 *		flushed WAL, and everything acknowledged) at its last check, the
 *		records acknowledged in the last interval of at least a second, and
 *		the batcher's throttling counters.
 */
static void
pj_write_progress(PgJob *job, int64 rows)
{
	const KinesisBatcherStats *bs = kinesis_shipper_stats(job->shipper);
	TimestampTz now = GetCurrentTimestamp();
	/* nothing unacknowledged, nor decoded and not yet handed to the batcher */
	bool		all_acked = kinesis_shipper_unacked(job->shipper) == 0 &&
		job->acked_tag == job->next_tag &&
		(job->pc->spool == NULL || job->pc->spool->bytes == 0);
	bool		idle = job->cdc && !job->loading && job->read_caught_up;

	/* everything read is acknowledged: the newest read commit counts */
	if (all_acked && job->read_commit_time > job->ack_commit_time)
		job->ack_commit_time = job->read_commit_time;
	worker_write_figures(job->task_name, job->read_commit_time, job->ack_commit_time,
						 idle ? now : 0, idle && all_acked ? now : 0, &job->interval,
						 job->run_started, rows, bs->requests_throttled,
						 bs->entries_throttled);
}

static void
pj_write_checkpoint(PgJob *job)
{
	const char *params[8];
	int			i;
	int64		rows;
	long		secs;
	int			usecs;
	double		elapsed;

	params[0] = job->task_name;
	if (job->full_load && job->has_load_row)
	{
		params[1] = "(full-load)";
		params[2] = job->start_lsn != InvalidXLogRecPtr ? lsn_text(job->start_lsn) : NULL;
		params[3] = psprintf(INT64_FORMAT, job->load_offset);
		params[4] = job->load_done ? "true" : "false";
		params[5] = psprintf(INT64_FORMAT, job->load_rows);
		worker_exec("INSERT INTO dms_stream.task_checkpoint AS c"
				"       (task_name, schema_name, table_name, file_key, next_offset,"
				"        table_done, rows_sent, updated_at)"
				" VALUES ($1, '(pg)', $2, $3, $4::bigint, $5::boolean, $6::bigint, now())"
				" ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
				"   SET file_key = EXCLUDED.file_key, next_offset = EXCLUDED.next_offset,"
				"       table_done = EXCLUDED.table_done, rows_sent = EXCLUDED.rows_sent,"
				"       updated_at = now()",
				6, params, SPI_OK_INSERT);
	}
	if (job->cdc && job->has_cdc_row)
	{
		params[1] = "(cdc)";
		params[2] = lsn_text(job->ack_lsn);
		params[3] = psprintf(INT64_FORMAT, job->ack_ordinal);
		params[4] = "false";
		params[5] = psprintf(INT64_FORMAT, job->cdc_rows);
		worker_exec("INSERT INTO dms_stream.task_checkpoint AS c"
				"       (task_name, schema_name, table_name, file_key, next_offset,"
				"        table_done, rows_sent, updated_at)"
				" VALUES ($1, '(pg)', $2, $3, $4::bigint, $5::boolean, $6::bigint, now())"
				" ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
				"   SET file_key = EXCLUDED.file_key, next_offset = EXCLUDED.next_offset,"
				"       table_done = EXCLUDED.table_done, rows_sent = EXCLUDED.rows_sent,"
				"       updated_at = now()",
				6, params, SPI_OK_INSERT);
	}
	for (i = 0; i < job->pc->nstats; i++)
	{
		PgStatTable *st = &job->pc->stats[i];
		bool		any = false;
		int			k;

		for (k = 0; k < PG_STAT_NONE; k++)
			any |= st->pending[k] != 0;
		if (!any && !(job->load_done && job->loading))
			continue;
		params[1] = st->schema;
		params[2] = st->table;
		params[3] = psprintf(INT64_FORMAT, st->pending[PG_STAT_LOAD]);
		params[4] = psprintf(INT64_FORMAT, st->pending[PG_STAT_INSERT]);
		params[5] = psprintf(INT64_FORMAT, st->pending[PG_STAT_UPDATE]);
		params[6] = psprintf(INT64_FORMAT, st->pending[PG_STAT_DELETE]);
		params[7] = psprintf(INT64_FORMAT, st->pending[PG_STAT_DDL]);
		worker_exec(job->loading ?
				"INSERT INTO dms_stream.table_statistics AS s"
				"       (task_name, schema_name, table_name, full_load_rows,"
				"        full_load_start_time, table_state, last_update_time)"
				" VALUES ($1, $2, $3, $4::bigint, now(), 'Full load', now())"
				" ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
				"   SET full_load_rows = s.full_load_rows + EXCLUDED.full_load_rows,"
				"       table_state = 'Full load', last_update_time = now()"
				:
				"INSERT INTO dms_stream.table_statistics AS s"
				"       (task_name, schema_name, table_name, inserts, updates, deletes, ddls,"
				"        table_state, last_update_time)"
				" VALUES ($1, $2, $3, $5::bigint, $6::bigint, $7::bigint, $8::bigint,"
				"         'Table completed', now())"
				" ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
				"   SET inserts = s.inserts + EXCLUDED.inserts,"
				"       updates = s.updates + EXCLUDED.updates,"
				"       deletes = s.deletes + EXCLUDED.deletes,"
				"       ddls = s.ddls + EXCLUDED.ddls,"
				"       last_update_time = now()",
				8, params, SPI_OK_INSERT);
		memset(st->pending, 0, sizeof(st->pending));
	}
	if (job->loading && job->load_done)
		worker_exec("UPDATE dms_stream.table_statistics"
				"   SET table_state = 'Table completed', full_load_end_time = now()"
				" WHERE task_name = $1 AND table_state IN ('Before load', 'Full load')",
				1, params, SPI_OK_UPDATE);

	rows = (job->load_rows - job->load_rows_at_start) + (job->cdc_rows - job->cdc_rows_at_start);
	TimestampDifference(job->run_started, GetCurrentTimestamp(), &secs, &usecs);
	elapsed = secs + usecs / 1000000.0;
	params[1] = task_worker_phase();
	params[2] = psprintf(INT64_FORMAT, rows);
	params[3] = psprintf("%.3f", elapsed > 0 ? rows / elapsed : 0.0);
	worker_exec("UPDATE dms_stream.task_progress"
			"   SET phase = $2, rows_sent = $3::bigint, rows_per_second = $4::double precision,"
			"       updated_at = now()"
			" WHERE task_name = $1",
			4, params, SPI_OK_UPDATE);
	pj_write_progress(job, rows);
	params[0] = psprintf(INT64_FORMAT, job->run_id);
	params[1] = psprintf(INT64_FORMAT, rows);
	worker_exec("UPDATE dms_stream.run_history SET rows_processed = $2::bigint"
			" WHERE run_id = $1::bigint",
			2, params, SPI_OK_UPDATE);
	job->result->rows_sent = rows;
}

static void
pj_checkpoint(PgJob *job)
{
	MemoryContext cxt = CurrentMemoryContext;

	worker_xact_begin();
	pj_write_checkpoint(job);
	worker_xact_end(cxt);
	/* this worker's own WAL is not new work for it */
	job->wal_seen = Max(job->wal_seen, XactLastCommitEnd);
	job->last_checkpoint = GetCurrentTimestamp();
	job->checkpoint_tag = job->acked_tag;
}

/*
 * pj_idle_checkpoint
 *		Checkpoint after the decoder reached the end of the WAL: caught up on
 *		the source side unless WAL other than this worker's own progress
 *		writes was flushed since.
 */
static void
pj_idle_checkpoint(PgJob *job)
{
	job->read_caught_up = GetFlushRecPtr(NULL) <= job->wal_seen;
	pj_checkpoint(job);
}

/* Take the newly acknowledged records from the batcher. */
static void
pj_note_acks(PgJob *job)
{
	uint64		tag;
	uint64		t;

	if (!kinesis_shipper_acked_through(job->shipper, &tag) || tag <= job->acked_tag)
		return;
	for (t = job->acked_tag + 1; t <= tag; t++)
	{
		PgRingEntry *e = &job->ring[t % job->ring_size];

		if (e->table >= 0 && e->stat < PG_STAT_NONE)
			job->pc->stats[e->table].pending[e->stat]++;
		if (job->loading)
		{
			job->load_offset = e->spool_end;
			job->load_rows++;
		}
		else
		{
			job->ack_lsn = e->commit_lsn;
			job->ack_ordinal = e->ordinal;
			if (e->commit_time != 0)
				job->ack_commit_time = e->commit_time;
			job->cdc_rows++;
		}
	}
	job->acked_tag = tag;
}

/* Queue one record. */
static void
pj_add(PgJob *job, const PgSpoolEntry *e, StringInfo data, StringInfo key, int64 spool_end)
{
	uint64		tag = job->next_tag + 1;
	PgRingEntry *r = &job->ring[tag % job->ring_size];
	char	   *problem = NULL;
	KinesisRecordStatus status;

	r->spool_end = spool_end;
	r->commit_lsn = e->commit_lsn;
	r->commit_time = e->commit_time;
	r->ordinal = e->ordinal;
	r->table = e->table;
	r->stat = e->stat;
	status = kinesis_shipper_add(job->shipper, data->data, data->len, key->data, NULL,
								 tag, &problem);
	if (status != KINESIS_RECORD_OK)
	{
		/* Never silently: logged, counted, and the stream goes on. */
		MemoryContext cxt = CurrentMemoryContext;
		const char *params[4];

		job->refused++;
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\": record %s:" INT64_FORMAT " refused: %s",
						job->task_name, lsn_text(e->commit_lsn), e->ordinal / PG_SPOOL_SUBS,
						problem ? problem : "Kinesis would refuse it")));
		kinesis_shipper_flush(job->shipper);
		pj_note_acks(job);
		params[0] = job->task_name;
		params[1] = e->table >= 0 ? job->pc->stats[e->table].schema : NULL;
		params[2] = e->table >= 0 ? job->pc->stats[e->table].table : NULL;
		params[3] = problem ? problem : "Kinesis would refuse this record";
		worker_xact_begin();
		worker_exec("INSERT INTO dms_stream.apply_exceptions"
				"       (task_name, target_table_name, table_owner, table_name, error_code, error)"
				" VALUES ($1, $3, $2, $3, 'record_refused', $4)",
				4, params, SPI_OK_INSERT);
		worker_xact_end(cxt);
		return;
	}
	job->next_tag = tag;
	if (job->next_tag - job->acked_tag >= (uint64) job->ring_size - 8)
		kinesis_shipper_flush(job->shipper);
	pj_note_acks(job);
	if (TimestampDifferenceExceeds(job->last_checkpoint, GetCurrentTimestamp(),
								   PG_JOB_CHECKPOINT_MS))
		pj_checkpoint(job);
}

/* ----------------------------------------------------------------
 * Full load
 * ----------------------------------------------------------------
 */

static char *
pj_load_path(PgJob *job)
{
	return psprintf("%s/%s.load", job->spool_dir, job->slot_name);
}

/*
 * pj_spool_tables
 *		Read every selected table under the transaction's snapshot into the
 *		full-load spool (inside a transaction with SPI and an active
 *		snapshot).  Higher load-order first, then schema and name.
 */
static void
pj_spool_tables(PgJob *job)
{
	PgSourceContext *pc = job->pc;
	PgSpool    *spool = pg_spool_open(pj_load_path(job), true);
	MemoryContext cxt = CurrentMemoryContext;
	Oid		   *oids;
	int64	   *orders;
	int			n = 0;
	uint64		i;
	int			t;
	char	   *position = lsn_text(job->start_lsn);

	task_worker_set_phase("full load: reading the tables under the slot's snapshot");
	worker_exec("SELECT c.oid, n.nspname, c.relname, c.relispartition FROM pg_catalog.pg_class c"
			"  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
			" WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'dms_stream')"
			"   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
			" ORDER BY n.nspname, c.relname",
			0, NULL, SPI_OK_SELECT);
	MemoryContextSwitchTo(cxt);
	oids = palloc(sizeof(Oid) * Max(SPI_processed, 1));
	orders = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			oid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		MappingSelection sel;
		int			pos;
		char	   *tschema;
		char	   *ttable;

		/* a partition of a selected partitioned table: under the root's name */
		pg_source_target(pc, oid, DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull)),
						 SPI_getvalue(tup, desc, 2), SPI_getvalue(tup, desc, 3),
						 &tschema, &ttable);
		mapping_select(job->mappings, tschema, ttable, false, &sel);
		if (!sel.selected)
			continue;
		pos = n++;
		while (pos > 0 && orders[pos - 1] < sel.load_order)
		{
			oids[pos] = oids[pos - 1];
			orders[pos] = orders[pos - 1];
			pos--;
		}
		oids[pos] = oid;
		orders[pos] = sel.load_order;
	}

	for (t = 0; t < n; t++)
	{
		Relation	rel = table_open(oids[t], AccessShareLock);
		PgSourceRel *r = pg_source_rel(pc, rel);
		TableScanDesc scan;
		HeapTuple	tup;
		int64		row = 0;

		if (!r->selected)
		{
			table_close(rel, AccessShareLock);
			continue;
		}
		task_worker_set_phase("full load: reading %s.%s", r->schema, r->table);
		scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
		while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(pc->row_cxt);
			DmsChange	ch;
			PgSpoolEntry e;
			char		event_id[96];

			CHECK_FOR_INTERRUPTS();
			pc->stored_tuples = true;
			pg_source_render_tuple(pc, r, RelationGetDescr(rel), tup, NULL, false, false);
			pc->stored_tuples = false;
			if (mapping_row_passes(r->plan, pc->cur))
			{
				row++;
				memset(&ch, 0, sizeof(ch));
				ch.operation = DMS_OP_LOAD;
				ch.values = pc->cur;
				snprintf(event_id, sizeof(event_id), "%s:load:%u:" INT64_FORMAT,
						 position, oids[t], row);
				ch.event_id = event_id;
				ch.timestamp = GetCurrentTimestamp();
				dms_message_build(r->writer, &ch, &pc->message, &pc->key);
				memset(&e, 0, sizeof(e));
				e.kind = PG_SPOOL_RECORD;
				e.data_len = pc->message.len;
				e.key_len = pc->key.len;
				e.table = r->stat_index;
				e.stat = PG_STAT_LOAD;
				e.ordinal = row;
				pg_spool_write(spool, &e, pc->message.data, pc->key.data);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(pc->row_cxt);
		}
		table_endscan(scan);
		table_close(rel, AccessShareLock);
		{
			const char *params[3] = {job->task_name, r->schema, r->table};

			worker_exec("INSERT INTO dms_stream.table_statistics AS s"
					"       (task_name, schema_name, table_name, full_load_start_time,"
					"        table_state, last_update_time)"
					" VALUES ($1, $2, $3, now(), 'Before load', now())"
					" ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
					"   SET full_load_rows = 0, table_state = 'Before load',"
					"       full_load_start_time = now(), full_load_end_time = NULL,"
					"       last_update_time = now()",
					3, params, SPI_OK_INSERT);
		}
	}
	pg_spool_sync(spool);
	pg_spool_close(spool, false);
	job->has_load_row = true;
	job->load_offset = 0;
	job->load_done = false;
}

/*
 * pj_ship_load
 *		Send the full-load spool from the acknowledged offset.
 */
static void
pj_ship_load(PgJob *job)
{
	PgSpool    *spool = pg_spool_open(pj_load_path(job), false);
	PgSpoolEntry e;
	int64		offset = job->load_offset;

	job->loading = true;
	task_worker_set_phase("full load: sending");
	pg_spool_rewind(spool, offset);
	while (pg_spool_read(spool, &e, &job->data, &job->key))
	{
		CHECK_FOR_INTERRUPTS();
		offset += sizeof(e) + e.data_len + e.key_len;
		pj_add(job, &e, &job->data, &job->key, offset);
	}
	task_worker_set_phase("full load: waiting for Kinesis");
	kinesis_shipper_flush(job->shipper);
	pj_note_acks(job);
	job->load_offset = offset;
	job->load_done = true;
	pj_checkpoint(job);
	job->loading = false;
	pg_spool_close(spool, true);
}

/* ----------------------------------------------------------------
 * Slot
 * ----------------------------------------------------------------
 */

/*
 * pj_start
 *		First start (or after reload-target): create the slot (dropping an
 *		old one), read the full load under its initial snapshot into the
 *		spool when the task has one, and commit the checkpoints.  Without
 *		CDC, only the full load under a REPEATABLE READ snapshot.  With a
 *		slot named by SlotName (cdc only), check it and start from its
 *		confirmed position: nothing is created.
 */
static void
pj_start(PgJob *job, bool need_load)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (need_load)
		XactIsoLevel = XACT_REPEATABLE_READ;
	if (job->user_slot)
	{
		task_worker_set_phase("checking replication slot %s", job->slot_name);
		job->start_lsn = pg_slot_check(job->task_name, job->slot_name, true, false, NULL);
		job->has_cdc_row = true;
		job->ack_lsn = InvalidXLogRecPtr;
		job->ack_ordinal = 0;
		dms_stream_log(LOG,
				(errmsg("dms_stream task \"%s\": decoding from replication slot \"%s\" (SlotName), confirmed up to %s",
						job->task_name, job->slot_name, lsn_text(job->start_lsn))));
	}
	else if (job->cdc)
	{
		LogicalDecodingContext *ctx;

		task_worker_set_phase("creating replication slot %s", job->slot_name);
		CheckSlotPermissions();
		CheckLogicalDecodingRequirements();
		if (pg_slot_exists(job->slot_name))
			ReplicationSlotDrop(job->slot_name, false);
		ReplicationSlotCreate(job->slot_name, true, RS_EPHEMERAL, false);
		pg_source_current = job->pc;
		ctx = CreateInitDecodingContext("dms_stream", NIL, need_load, InvalidXLogRecPtr,
										XL_ROUTINE(.page_read = read_local_xlog_page,
												   .segment_open = wal_segment_open,
												   .segment_close = wal_segment_close),
										NULL, NULL, NULL);
		DecodingContextFindStartpoint(ctx);
		job->start_lsn = MyReplicationSlot->data.confirmed_flush;
		if (need_load)
		{
			Snapshot	snap = SnapBuildInitialSnapshot(ctx->snapshot_builder);

			RestoreTransactionSnapshot(snap, MyProc);
		}
		FreeDecodingContext(ctx);
		ReplicationSlotPersist();
		ReplicationSlotRelease();
		pg_source_current = NULL;
		job->has_cdc_row = true;
		job->ack_lsn = InvalidXLogRecPtr;
		job->ack_ordinal = 0;
		dms_stream_log(LOG,
				(errmsg("dms_stream task \"%s\": replication slot \"%s\" created at %s",
						job->task_name, job->slot_name, lsn_text(job->start_lsn))));
	}
	else
		job->start_lsn = GetXLogInsertRecPtr();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (need_load)
		pj_spool_tables(job);
	pj_write_checkpoint(job);
	worker_xact_end(cxt);
}

/* ----------------------------------------------------------------
 * CDC
 * ----------------------------------------------------------------
 */

static char *
pj_cdc_path(PgJob *job)
{
	return psprintf("%s/%s.cdc", job->spool_dir, job->slot_name);
}

/*
 * pj_add_held
 *		Queue the control records held back behind the pending data record.
 */
static void
pj_add_held(PgJob *job)
{
	int			at = 0;

	while (at < job->held.len)
	{
		PgSpoolEntry e;
		StringInfoData data;
		StringInfoData key;

		memcpy(&e, job->held.data + at, sizeof(e));
		at += sizeof(e);
		/* read-only views of the held bytes (each NUL-terminated) */
		data.data = job->held.data + at;
		data.len = e.data_len;
		data.maxlen = e.data_len + 1;
		data.cursor = 0;
		at += e.data_len + 1;
		key.data = job->held.data + at;
		key.len = e.key_len;
		key.maxlen = e.key_len + 1;
		key.cursor = 0;
		at += e.key_len + 1;
		pj_add(job, &e, &data, &key, 0);
	}
	resetStringInfo(&job->held);
}

/*
 * pj_feed_cdc
 *		Hand every record decoded into the spool since the last feed to the
 *		batcher, and empty the spool.  The last data record of a transaction
 *		carries "transaction-last": each data record is held back until the
 *		next data record or the transaction's commit entry shows whether it
 *		is the last, and control records that come after it (which carry no
 *		transaction metadata, as in DMS) are held behind it, so that the
 *		order stays as decoded.  Runs between WAL records, never inside a
 *		transaction: the batcher sends requests as they fill and may wait
 *		for answers when its memory bounds are reached.  The spool holds
 *		whole transactions here (the plugin writes a transaction's records
 *		and its commit entry during the one LogicalDecodingProcessRecord
 *		call of its commit record).
 */
static void
pj_feed_cdc(PgJob *job, PgSpool *spool)
{
	PgSpoolEntry e;
	PgSpoolEntry pending;
	bool		have_pending = false;

	Assert(!IsTransactionOrTransactionBlock());
	if (spool->bytes == 0)
		return;
	pg_spool_rewind(spool, 0);
	while (pg_spool_read(spool, &e, &job->data, &job->key))
	{
		CHECK_FOR_INTERRUPTS();
		if (e.kind == PG_SPOOL_RECORD && e.stat == PG_STAT_DDL)
		{
			/* a control record: behind the pending data record, if any */
			if (!have_pending)
				pj_add(job, &e, &job->data, &job->key, 0);
			else
			{
				appendBinaryStringInfo(&job->held, (char *) &e, sizeof(e));
				appendBinaryStringInfo(&job->held, job->data.data, job->data.len + 1);
				appendBinaryStringInfo(&job->held, job->key.data, job->key.len + 1);
			}
		}
		else if (e.kind == PG_SPOOL_RECORD)
		{
			StringInfoData tmp;

			if (have_pending)
			{
				pj_add(job, &pending, &job->pdata, &job->pkey, 0);
				pj_add_held(job);
			}
			pending = e;
			have_pending = true;
			tmp = job->pdata;
			job->pdata = job->data;
			job->data = tmp;
			tmp = job->pkey;
			job->pkey = job->key;
			job->key = tmp;
		}
		else if (have_pending && pending.commit_lsn == e.commit_lsn)
		{
			dms_message_mark_last(&job->pdata, job->settings.unformatted);
			pj_add(job, &pending, &job->pdata, &job->pkey, 0);
			pj_add_held(job);
			have_pending = false;
		}
	}
	if (have_pending)
	{
		pj_add(job, &pending, &job->pdata, &job->pkey, 0);
		pj_add_held(job);
	}
	job->fed_records += spool->records;
	job->fed_bytes += spool->bytes;
	pg_spool_reset(spool);
}

/*
 * pj_mark
 *		Remember that the slot may be confirmed up to lsn once every record
 *		added so far is acknowledged.  When the list is full the newest mark
 *		moves forward (a later confirmation, never an early one).
 */
static void
pj_mark(PgJob *job, XLogRecPtr lsn)
{
	PgConfirmMark *m;

	if (job->nmarks > 0 && job->marks[job->nmarks - 1].tag == job->next_tag)
		m = &job->marks[job->nmarks - 1];
	else if (job->nmarks < PG_JOB_MARKS)
		m = &job->marks[job->nmarks++];
	else
		m = &job->marks[job->nmarks - 1];
	m->tag = job->next_tag;
	m->lsn = lsn;
}

/*
 * pj_confirm
 *		Confirm the slot up to the newest mark whose records are all
 *		acknowledged, and save it at most once a second.
 */
static void
pj_confirm(PgJob *job)
{
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	int			done = 0;

	pj_note_acks(job);
	while (done < job->nmarks && job->marks[done].tag <= job->acked_tag)
		lsn = job->marks[done++].lsn;
	if (done > 0)
	{
		memmove(job->marks, job->marks + done, sizeof(PgConfirmMark) * (job->nmarks - done));
		job->nmarks -= done;
	}
	if (lsn > job->confirmed)
	{
		LogicalConfirmReceivedLocation(lsn);
		job->confirmed = lsn;
	}
	if (job->confirmed > job->saved &&
		TimestampDifferenceExceeds(job->last_slot_save, GetCurrentTimestamp(),
								   PG_JOB_SLOT_SAVE_MS))
	{
		ReplicationSlotMarkDirty();
		ReplicationSlotSave();
		job->saved = job->confirmed;
		job->last_slot_save = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(job->last_checkpoint, GetCurrentTimestamp(),
									   PG_JOB_CHECKPOINT_MS * 10))
			pj_checkpoint(job);
	}
}

static void
pj_check_lag(PgJob *job)
{
	XLogRecPtr	flush = GetFlushRecPtr(NULL);
	XLogRecPtr	restart = MyReplicationSlot->data.restart_lsn;

	if (dms_stream_max_slot_lag_mb > 0 && restart != InvalidXLogRecPtr && flush > restart &&
		(flush - restart) / (1024 * 1024) > (uint64) dms_stream_max_slot_lag_mb)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("replication slot \"%s\" of task \"%s\" retains %lld MB of WAL, more than dms_stream.max_slot_lag (%d MB)",
						job->slot_name, job->task_name,
						(long long) ((flush - restart) / (1024 * 1024)),
						dms_stream_max_slot_lag_mb),
				 errdetail("The task stopped so that the slot does not fill the disk; the slot keeps its position and the task can resume."),
				 errhint("Resume the task (it catches up from the slot), raise dms_stream.max_slot_lag, or drop the task to release the WAL.")));
}

/*
 * pj_heartbeat_check_table
 *		The worker writes the heartbeat as a superuser: refuse a table it
 *		would write as someone else's code (owned by a non-superuser, with
 *		triggers or rules, row security, not a plain table).  Called with
 *		the table locked, so no trigger can be added before the commit.
 */
static void
pj_heartbeat_check_table(PgJob *job, const char *table)
{
	const char *params[1] = {table};
	char	   *problem;

	problem = worker_exec("SELECT pg_catalog.concat_ws('; ',"
						  "   CASE WHEN NOT r.rolsuper THEN 'it is owned by ' || pg_catalog.quote_ident(r.rolname)"
						  "        || ', who is not a superuser' END,"
						  "   CASE WHEN c.relkind <> 'r' THEN 'it is not a plain table' END,"
						  "   CASE WHEN c.relhastriggers THEN 'it has triggers' END,"
						  "   CASE WHEN c.relhasrules THEN 'it has rules' END,"
						  "   CASE WHEN c.relrowsecurity THEN 'it has row-level security' END)"
						  "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner"
						  " WHERE c.oid = $1::pg_catalog.regclass",
						  1, params, SPI_OK_SELECT);
	if (problem != NULL && problem[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("heartbeat table %s of task \"%s\" is not safe to write", table, job->task_name),
				 errdetail("The task's worker writes the heartbeat as a superuser, and %s.", problem),
				 errhint("Drop the table (the task creates it) or make a superuser its owner without triggers, rules or row security.")));
}

/*
 * pj_heartbeat
 *		Write WAL so that a quiet database still moves the slot: without
 *		HeartbeatSchema a non-transactional logical message; with it, as DMS
 *		does, a row of HeartbeatSchema.awsdms_heartbeat (created when
 *		missing; one row per slot) updated in a short transaction of its
 *		own.  A HeartbeatSchema that does not exist fails the task, and so
 *		does one a non-superuser owns (the worker is a superuser: it runs no
 *		DDL or DML where a user can put code), with search_path pinned.
 */
static void
pj_heartbeat(PgJob *job)
{
	MemoryContext cxt = CurrentMemoryContext;
	const char *params[1] = {job->slot_name};
	const char *schema_param[1] = {job->heartbeat_schema};
	char	   *table;
	char	   *owner_super;

	if (job->heartbeat_schema == NULL)
	{
		(void) LogLogicalMessage("dms_stream_heartbeat", "", 0, false);
		return;
	}
	worker_xact_begin();
	worker_exec("SET LOCAL search_path = pg_catalog, pg_temp", 0, NULL, SPI_OK_UTILITY);
	/* pg_database_owner (owner of public) stands for the database's owner */
	owner_super = worker_exec("SELECT r.rolsuper::text FROM pg_catalog.pg_namespace n"
							  "  JOIN pg_catalog.pg_roles r ON r.oid = CASE"
							  "       WHEN n.nspowner = 'pg_database_owner'::pg_catalog.regrole"
							  "       THEN (SELECT d.datdba FROM pg_catalog.pg_database d"
							  "              WHERE d.datname = pg_catalog.current_database())"
							  "       ELSE n.nspowner END"
							  " WHERE n.nspname = $1",
							  1, schema_param, SPI_OK_SELECT);
	if (owner_super == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("HeartbeatSchema \"%s\" of the source endpoint of task \"%s\" does not exist",
						job->heartbeat_schema, job->task_name),
				 errdetail("With HeartbeatEnable, the heartbeat is written to a table awsdms_heartbeat in that schema."),
				 errhint("Create the schema, or remove HeartbeatSchema from the endpoint's settings (the heartbeat is then a logical message).")));
	if (strcmp(owner_super, "true") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("HeartbeatSchema \"%s\" of the source endpoint of task \"%s\" is owned by a role that is not a superuser",
						job->heartbeat_schema, job->task_name),
				 errdetail("The task's worker writes the heartbeat as a superuser; the owner of the schema could make it run their code."),
				 errhint("Use a schema a superuser owns, or remove HeartbeatSchema from the endpoint's settings (the heartbeat is then a logical message).")));
	table = psprintf("%s.awsdms_heartbeat", quote_identifier(job->heartbeat_schema));
	worker_exec(psprintf("CREATE TABLE IF NOT EXISTS %s"
						 " (slot_name pg_catalog.text PRIMARY KEY,"
						 "  heartbeat_timestamp pg_catalog.timestamptz NOT NULL)",
						 table),
				0, NULL, SPI_OK_UTILITY);
	worker_exec(psprintf("LOCK TABLE %s IN ROW EXCLUSIVE MODE", table), 0, NULL, SPI_OK_UTILITY);
	pj_heartbeat_check_table(job, table);
	worker_exec(psprintf("INSERT INTO %s AS h (slot_name, heartbeat_timestamp) VALUES ($1, pg_catalog.now())"
						 " ON CONFLICT (slot_name) DO UPDATE"
						 "   SET heartbeat_timestamp = EXCLUDED.heartbeat_timestamp",
						 table),
				1, params, SPI_OK_INSERT);
	worker_xact_end(cxt);
}

/*
 * pj_read_ahead
 *		While waiting for Kinesis: decode the WAL flushed since into the
 *		spool (fed to the batcher by the next round of pj_cdc_run), a
 *		bounded amount, and stopping only where no transaction is open, so
 *		that the source side stays read (cdc_latency_source) while the target
 *		is slow.
 */
static void
pj_read_ahead(PgJob *job, LogicalDecodingContext *ctx, PgSpool *spool)
{
	XLogRecPtr	end_of_wal = GetFlushRecPtr(NULL);

	while (ctx->reader->EndRecPtr < end_of_wal &&
		   (spool->bytes < PG_JOB_FEED_BYTES || IsTransactionOrTransactionBlock()))
	{
		XLogRecord *record;
		char	   *errm = NULL;

		record = XLogReadRecord(ctx->reader, &errm);
		if (errm)
			elog(ERROR, "could not find record for logical decoding: %s", errm);
		if (record != NULL)
			LogicalDecodingProcessRecord(ctx, ctx->reader);
		CHECK_FOR_INTERRUPTS();
	}
	if (job->pc->commit_time > job->read_commit_time)
		job->read_commit_time = job->pc->commit_time;
	job->wal_seen = Max(job->wal_seen, ctx->reader->EndRecPtr);
}

/*
 * pj_cdc_run
 *		Decode, ship and confirm until stopped.
 */
static void
pj_cdc_run(PgJob *job)
{
	PgSourceContext *pc = job->pc;
	PgSpool    *spool = pg_spool_open(pj_cdc_path(job), true);
	LogicalDecodingContext *ctx;

	/* Missing, invalidated (max_slot_wal_keep_size), or not usable. */
	(void) pg_slot_check(job->task_name, job->slot_name, job->user_slot, true, NULL);

	pg_spool_memory(spool, PG_JOB_SPOOL_MEMORY);
	pc->spool = spool;
	pc->skip_lsn = job->ack_lsn;
	pc->skip_ordinal = job->ack_ordinal;
	pg_source_current = pc;
	/* Wait if a worker of an earlier run still holds the slot. */
	ReplicationSlotAcquire(job->slot_name, false);
	ctx = CreateDecodingContext(InvalidXLogRecPtr, NIL, false,
								XL_ROUTINE(.page_read = read_local_xlog_page,
										   .segment_open = wal_segment_open,
										   .segment_close = wal_segment_close),
								NULL, NULL, NULL);
	XLogBeginRead(ctx->reader, MyReplicationSlot->data.restart_lsn);
	job->confirmed = job->saved = MyReplicationSlot->data.confirmed_flush;
	job->last_heartbeat = 0;	/* the first heartbeat at once */
	task_worker_set_phase("cdc: streaming from slot %s", job->slot_name);
	pj_checkpoint(job);

	for (;;)
	{
		XLogRecPtr	end_of_wal;
		XLogRecPtr	from = ctx->reader->EndRecPtr;
		int64		records0 = job->fed_records;
		int64		bytes0 = job->fed_bytes;
		const KinesisBatcherStats *bs = kinesis_shipper_stats(job->shipper);
		double		http0 = bs->http_ms;
		double		feed_ms = 0;
		double		wait_ms = 0;
		int			since_poll = 0;
		instr_time	t0,
					t1;

		task_worker_check_interrupts();
		pj_check_lag(job);

		/*
		 * Decode up to the flushed WAL (at most PG_JOB_STRETCH_BYTES of it),
		 * handing the spooled records to the batcher every PG_JOB_FEED_BYTES
		 * and driving its requests every PG_JOB_POLL_RECORDS WAL records, so
		 * that requests are on the wire while the next records are decoded.
		 * This happens between WAL records only, where no transaction is
		 * open: the reorder buffer replays a committed transaction inside a
		 * transaction of its own, started and aborted within the one
		 * LogicalDecodingProcessRecord call of the commit record; network
		 * I/O is never done inside it.  Should a transaction be open here
		 * nonetheless, feeding and polling wait until it is not.
		 */
		end_of_wal = GetFlushRecPtr(NULL);
		if (end_of_wal > job->wal_seen)
			job->read_caught_up = false;
		INSTR_TIME_SET_CURRENT(t0);
		while (ctx->reader->EndRecPtr < end_of_wal &&
			   ctx->reader->EndRecPtr - from < PG_JOB_STRETCH_BYTES)
		{
			XLogRecord *record;
			char	   *errm = NULL;

			record = XLogReadRecord(ctx->reader, &errm);
			if (errm)
				elog(ERROR, "could not find record for logical decoding: %s", errm);
			if (record != NULL)
				LogicalDecodingProcessRecord(ctx, ctx->reader);
			CHECK_FOR_INTERRUPTS();
			if (IsTransactionOrTransactionBlock())
				continue;
			if (spool->bytes >= PG_JOB_FEED_BYTES)
			{
				instr_time	f0,
							f1;

				INSTR_TIME_SET_CURRENT(f0);
				pj_feed_cdc(job, spool);
				pj_mark(job, ctx->reader->EndRecPtr);
				pj_confirm(job);
				INSTR_TIME_SET_CURRENT(f1);
				INSTR_TIME_SUBTRACT(f1, f0);
				feed_ms += INSTR_TIME_GET_MILLISEC(f1);
				since_poll = 0;
			}
			else if (++since_poll >= PG_JOB_POLL_RECORDS &&
					 kinesis_shipper_unacked(job->shipper) > 0)
			{
				kinesis_shipper_poll(job->shipper);
				since_poll = 0;
			}
		}

		/* The rest of the spool; caught up: send everything and wait. */
		{
			instr_time	f0,
						f1;

			INSTR_TIME_SET_CURRENT(f0);
			pj_feed_cdc(job, spool);
			pj_mark(job, ctx->reader->EndRecPtr);
			INSTR_TIME_SET_CURRENT(f1);
			INSTR_TIME_SUBTRACT(f1, f0);
			feed_ms += INSTR_TIME_GET_MILLISEC(f1);
		}
		if (pc->commit_time > job->read_commit_time)
			job->read_commit_time = pc->commit_time;
		job->wal_seen = Max(job->wal_seen, ctx->reader->EndRecPtr);
		if (ctx->reader->EndRecPtr >= end_of_wal)
		{
			instr_time	w0,
						w1;

			/*
			 * Send everything and wait for the answers, writing the
			 * progress every second meanwhile: task_status shows the target
			 * latency growing while the source side stays caught up.
			 */
			INSTR_TIME_SET_CURRENT(w0);
			kinesis_shipper_flush_start(job->shipper);
			while (!kinesis_shipper_flush_done(job->shipper, PG_JOB_CHECKPOINT_MS / 10))
			{
				task_worker_check_interrupts();
				pj_note_acks(job);
				pj_read_ahead(job, ctx, spool);
				if (!IsTransactionOrTransactionBlock() &&
					TimestampDifferenceExceeds(job->last_checkpoint, GetCurrentTimestamp(),
											   PG_JOB_CHECKPOINT_MS))
					pj_idle_checkpoint(job);
			}
			pj_note_acks(job);
			if (job->acked_tag != job->checkpoint_tag)
				pj_idle_checkpoint(job);
			INSTR_TIME_SET_CURRENT(w1);
			INSTR_TIME_SUBTRACT(w1, w0);
			wait_ms = INSTR_TIME_GET_MILLISEC(w1);
		}
		pj_confirm(job);
		/* caught up and idle: the progress (latency, rate) every second */
		if (ctx->reader->EndRecPtr >= end_of_wal &&
			TimestampDifferenceExceeds(job->last_checkpoint, GetCurrentTimestamp(),
									   PG_JOB_CHECKPOINT_MS))
			pj_idle_checkpoint(job);

		INSTR_TIME_SET_CURRENT(t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		if (job->fed_records - records0 >= 10000)
			elog(LOG, "dms_stream task \"%s\": decoded and shipped %lld records (%lld bytes) in %.1f ms: decoding %.1f ms, feeding the batcher %.1f ms, waiting for the last answers %.1f ms (http %.1f ms)",
				 job->task_name, (long long) (job->fed_records - records0),
				 (long long) (job->fed_bytes - bytes0), INSTR_TIME_GET_MILLISEC(t1),
				 INSTR_TIME_GET_MILLISEC(t1) - feed_ms - wait_ms, feed_ms, wait_ms,
				 bs->http_ms - http0);

		if (job->heartbeat &&
			TimestampDifferenceExceeds(job->last_heartbeat, GetCurrentTimestamp(),
									   job->heartbeat_minutes * 60 * 1000))
		{
			pj_heartbeat(job);
			job->last_heartbeat = GetCurrentTimestamp();
		}

		if (ctx->reader->EndRecPtr == from)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 PG_JOB_IDLE_WAIT_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/* ----------------------------------------------------------------
 * Entry
 * ----------------------------------------------------------------
 */

void
pg_source_job_run(const char *task_name, int64 run_id, S3SourceJobResult *result)
{
	MemoryContext job_cxt = CurrentMemoryContext;
	PgJob	   *job = palloc0(sizeof(PgJob));
	bool		need_load;

	job->task_name = pstrdup(task_name);
	job->run_id = run_id;
	job->result = result;
	job->run_started = GetCurrentTimestamp();
	SetConfigOption("DateStyle", "ISO, YMD", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("IntervalStyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("extra_float_digits", "1", PGC_SUSET, PGC_S_OVERRIDE);

	task_worker_set_phase("reading the task");
	pj_load_task(job, job_cxt);

	need_load = job->full_load && !(job->has_load_row && job->load_done);
	if ((job->cdc && !job->has_cdc_row) || (!job->cdc && need_load && !job->has_load_row))
		pj_start(job, need_load);
	else if (need_load && !job->has_load_row)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("task \"%s\" has a CDC position but no full load", job->task_name),
				 errhint("Start it with reload-target.")));
	if (need_load)
		pj_ship_load(job);
	if (job->cdc)
		pj_cdc_run(job);		/* returns only by an ERROR or exit */

	task_worker_set_phase("full load finished");
	pj_checkpoint(job);
	kinesis_shipper_stop(job->shipper);
}

void
pg_source_define_settings(void)
{
	DefineCustomIntVariable("dms_stream.max_slot_lag",
							"WAL a task's replication slot may retain before the task fails.",
							"0 means no cap (then max_slot_wal_keep_size is the only limit).",
							&dms_stream_max_slot_lag_mb,
							10240, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);
}
