/*-------------------------------------------------------------------------
 *
 * s3_source_job.c
 *	  Full load from S3 CSV files to Kinesis, resumable (see s3_source_job.h).
 *
 * Positions.  Each record queued in the batcher gets a tag (1, 2, ...); a
 * ring indexed by tag remembers its table, where the record ends (file,
 * byte offset and line of the next record) and how many rows of the table
 * had been queued with it.  When the batcher reports a newer tag
 * acknowledged together with everything before it, the positions of the
 * records up to it become the ones their tables' checkpoints may commit.  Rows rejected or filtered out are not
 * tagged: they are covered by the next tagged record, or by the end of the
 * file.  Rejected rows wait in a list and are written to apply_exceptions
 * by the checkpoint that moves past them, so each is recorded once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "csv.h"
#include "dms_json.h"
#include "dms_message.h"
#include "dms_stream.h"
#include "dms_value.h"
#include "endpoint.h"
#include "external_table.h"
#include "kinesis.h"
#include "kinesis_shipper.h"
#include "mapping.h"
#include "s3.h"
#include "s3_source_job.h"
#include "worker_xact.h"
#include "task_worker.h"

/* Bytes fetched per ranged GET. */
#define JOB_CHUNK_BYTES			(4 * 1024 * 1024)

/* Least time between two periodic checkpoints. */
#define JOB_CHECKPOINT_INTERVAL_MS	1000
/* Messages between two readings of the clock for their timestamps. */

/* What to do with a bad row (ErrorBehavior policies). */
typedef enum JobPolicy
{
	JOB_POLICY_LOG_ERROR,
	JOB_POLICY_IGNORE_RECORD,
	JOB_POLICY_SUSPEND_TABLE,
	JOB_POLICY_STOP_TASK
} JobPolicy;

/* A file of a table, from the listing. */
typedef struct JobFile
{
	char	   *key;
	int64		size;
	uint64		key_hash;		/* of key, for event ids (0: not yet) */
	TimestampTz last_modified;	/* CDC: the "commit time" of its rows */
} JobFile;

/* A place in a table's files: file index, next offset and line. */
typedef struct JobPosition
{
	int			file;
	int64		offset;
	int64		line;
	int64		rows;			/* table rows queued up to here */
} JobPosition;

/* A selected table and its progress. */
typedef struct JobTable
{
	int			index;			/* in the definition */
	const ExternalTable *et;
	MappingTablePlan *plan;
	DmsMessageWriter *writer;	/* made when the table's load starts */
	JobFile    *files;
	int			nfiles;
	int64		bytes_total;

	/* committed checkpoint */
	JobPosition committed;
	bool		done;
	int64		errors;			/* error rows committed */
	bool		has_checkpoint;
	char	   *checkpoint_key; /* file key of the checkpoint read at start */
	TimestampTz last_checkpoint;

	/* while the table is being loaded */
	JobPosition queued;			/* position after the last row read */
	JobPosition acked;			/* newest position Kinesis acknowledged */
	List	   *exceptions;		/* of JobException *, in file order */
	CsvReader  *reader;			/* file being read; NULL between files */
	int			file;			/* index of the file being read */
	int64		offset;			/* next byte of it to fetch */
	S3GetObject *fetch;			/* the chunk at offset, on its way */
	char	   *previous;		/* last chunk fed (the reader may use it) */

	/* CDC */
	int64		cdc_pending[4];	/* acknowledged, not yet in the statistics
								 * (by DmsRowOperation) */
	bool		cdc_off;		/* suspended (SUSPEND_TABLE) or unusable */
} JobTable;

/* What the ring remembers of a queued record. */
typedef struct JobRingEntry
{
	JobTable   *table;
	JobPosition pos;			/* where the record ends */
	JobTable   *stat_table;		/* CDC: the row's table, else NULL */
	DmsRowOperation op;			/* CDC: the row's operation */
} JobRingEntry;

/* A rejected row waiting for the checkpoint that passes it. */
typedef struct JobException
{
	int			file;
	int64		offset;			/* where the row starts */
	int64		line;
	int			column;
	bool		logged;			/* write to apply_exceptions (not IGNORE) */
	char	   *code;
	char	   *reason;
	char	   *raw;
	/* CDC: the row's table as named in it (NULL: the JobTable's) */
	char	   *owner;
	char	   *name;
	char	   *target;
	JobTable   *suspends;		/* CDC: the table this row suspended */
} JobException;

/* Everything a run needs. */
typedef struct Job
{
	const char *task_name;
	int64		run_id;
	bool		reload;

	DmsEndpoint *source;
	const char *bucket;
	KinesisClient *kinesis;
	KinesisShipper *shipper;	/* the PutRecords batcher, maybe in a shipping process */
	ExternalTableDefinition *def;
	MappingSet *mappings;
	DmsRowRenderer *renderer;
	DmsMessageSettings message_settings;
	CsvSettings csv;
	DmsValueOptions value_options;
	JobPolicy data_policy;
	JobPolicy truncation_policy;

	JobTable   *tables;
	int			ntables;
	int64		bytes_total;

	int			max_subtasks;	/* MaxFullLoadSubTasks: tables at once */
	JobRingEntry *ring;
	int			ring_size;
	uint64		next_tag;
	uint64		acked_tag;

	TimestampTz run_started;
	int64		rows_at_start;	/* rows committed for all tables at start */
	/* task_status figures (job_write_progress) */
	TimestampTz cdc_read_time;	/* LastModified of the CDC file read */
	TimestampTz cdc_ack_time;	/* ... of the one acknowledged */
	TimestampTz cdc_idle_at;	/* listing whose files are all done, or 0 */
	WorkerRateInterval interval;

	MemoryContext row_cxt;		/* reset per row */
	StringInfoData values;		/* rendered column values of a row */
	StringInfoData message;
	StringInfoData key;
	DmsColumnValue *column_values;	/* one per column of the widest table */
	int		   *value_starts;	/* where each value starts in values, and
								 * the end */

	S3SourceJobResult *result;
	double		s3_ms;			/* time spent reading from S3 */

	/* CDC */
	char	   *migration_type;
	JobTable  **by_index;		/* selected table per definition index */
	JobTable	cdc;			/* the CDC files being read, as a table */
	char	   *cdc_prefix;		/* BucketFolder/CdcPath/ */
} Job;

/*
 * job_int64_text
 *		An int64 as a palloc'd string.
 */
static char *
job_int64_text(int64 value)
{
	return psprintf(INT64_FORMAT, value);
}

/*
 * job_parse_policy
 *		An ErrorBehavior record policy by name (NULL: LOG_ERROR).
 */
static JobPolicy
job_parse_policy(const char *name)
{
	if (name == NULL || strcmp(name, "LOG_ERROR") == 0)
		return JOB_POLICY_LOG_ERROR;
	if (strcmp(name, "IGNORE_RECORD") == 0)
		return JOB_POLICY_IGNORE_RECORD;
	if (strcmp(name, "SUSPEND_TABLE") == 0)
		return JOB_POLICY_SUSPEND_TABLE;
	if (strcmp(name, "STOP_TASK") == 0)
		return JOB_POLICY_STOP_TASK;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown error policy \"%s\"", name),
			 errhint("Valid policies are LOG_ERROR, IGNORE_RECORD, SUSPEND_TABLE and STOP_TASK.")));
	return JOB_POLICY_LOG_ERROR;	/* keep the compiler quiet */
}

/*
 * job_file_uri
 *		s3://bucket/key of a file of a table.
 */
static char *
job_file_uri(Job *job, JobTable *jt, int file)
{
	return psprintf("s3://%s/%s", job->bucket, jt->files[file].key);
}

/*
 * job_table_prefix
 *		The key prefix of a table's files: BucketFolder/TablePath/.
 */
static char *
job_table_prefix(Job *job, const ExternalTable *et)
{
	const char *path = et->path;
	char	   *prefix;
	size_t		len;

	while (*path == '/')
		path++;
	s3_check_key_segments("TablePath", path, 0);
	prefix = s3_folder_key(job->source, path);
	len = strlen(prefix);
	if (len > 0 && prefix[len - 1] != '/')
		prefix = psprintf("%s/", prefix);
	return prefix;
}

/*
 * job_load_task
 *		Read the task, its endpoints, mappings, settings and checkpoints.
 */
static void
job_load_task(Job *job, MemoryContext job_cxt)
{
	const char *params[1] = {job->task_name};
	char	   *source_name;
	char	   *target_name;
	char	   *definition;
	char	   *threads;
	char	   *buffer_size;
	char	   *lob_max_kb;
	char	   *data_policy;
	char	   *truncation_policy;
	char	   *start_type;
	Jsonb	   *mappings;
	Jsonb	   *task_settings;
	char	   *subtasks;
	KinesisBatcherOptions opts;
	int			in_flight;
	int			per_request;
	int			i;
	uint64		n;

	worker_xact_begin();
	worker_exec("SELECT t.source_endpoint, t.target_endpoint, t.table_mappings, t.start_type,"
			 "       t.task_settings #>> '{TargetMetadata,ParallelLoadThreads}',"
			 "       t.task_settings #>> '{TargetMetadata,ParallelLoadBufferSize}',"
			 "       t.task_settings #>> '{TargetMetadata,LobMaxSize}',"
			 "       t.task_settings #>> '{ErrorBehavior,DataErrorPolicy}',"
			 "       t.task_settings #>> '{ErrorBehavior,DataTruncationErrorPolicy}',"
			 "       CASE jsonb_typeof(e.settings -> 'ExternalTableDefinition')"
			 "            WHEN 'string' THEN e.settings ->> 'ExternalTableDefinition'"
			 "            ELSE (e.settings -> 'ExternalTableDefinition')::text END,"
			 "       t.task_settings,"
			 "       t.task_settings #>> '{FullLoadSettings,MaxFullLoadSubTasks}',"
			 "       t.migration_type"
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
		Datum		d;

		source_name = SPI_getvalue(tup, desc, 1);
		target_name = SPI_getvalue(tup, desc, 2);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		mappings = DatumGetJsonbPCopy(d);
		start_type = SPI_getvalue(tup, desc, 4);
		threads = SPI_getvalue(tup, desc, 5);
		buffer_size = SPI_getvalue(tup, desc, 6);
		lob_max_kb = SPI_getvalue(tup, desc, 7);
		data_policy = SPI_getvalue(tup, desc, 8);
		truncation_policy = SPI_getvalue(tup, desc, 9);
		definition = SPI_getvalue(tup, desc, 10);
		d = SPI_getbinval(tup, desc, 11, &isnull);
		task_settings = DatumGetJsonbPCopy(d);
		subtasks = SPI_getvalue(tup, desc, 12);
		job->migration_type = SPI_getvalue(tup, desc, 13);
	}
	job->max_subtasks = subtasks ? atoi(subtasks) : 8;
	job->max_subtasks = Max(job->max_subtasks, 1);

	job->reload = start_type != NULL && strcmp(start_type, "reload-target") == 0;
	job->data_policy = job_parse_policy(data_policy);
	job->truncation_policy = job_parse_policy(truncation_policy);

	job->source = dms_endpoint_load(source_name);
	if (strcmp(job->source->engine, "s3") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("source endpoint \"%s\" of task \"%s\" is not an S3 endpoint",
						source_name, job->task_name)));
	if (definition == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 source endpoint \"%s\" has no ExternalTableDefinition", source_name),
				 errhint("Register one with dms_stream.register_external_table_definition().")));
	job->bucket = s3_endpoint_bucket(job->source);
	job->def = external_table_definition_parse(definition, strlen(definition),
											   "external table definition");
	job->kinesis = kinesis_client_open(target_name);
	job->mappings = mapping_compile(mappings);

	csv_settings_from_s3(&job->csv, job->source->settings);
	dms_value_options_from_settings(&job->value_options, job->source->settings,
									job->kinesis->endpoint->settings);
	if (lob_max_kb != NULL)
		job->value_options.lob_max_bytes = strtoll(lob_max_kb, NULL, 10) * 1024;
	else
		job->value_options.lob_max_bytes = 32 * 1024;
	job->renderer = dms_row_renderer_create(job->def, &job->value_options);
	{
		DmsJsonDoc	doc = {"task settings"};

		dms_message_settings_from_json(&job->message_settings,
									   job->kinesis->endpoint->settings,
									   dms_json_from_jsonb(&doc, task_settings),
									   job->task_name);
	}

	/* Selected tables, higher load-order first, then definition order. */
	job->tables = palloc0(sizeof(JobTable) * Max(job->def->ntables, 1));
	job->ntables = 0;
	{
		int64	   *orders = palloc(sizeof(int64) * Max(job->def->ntables, 1));

		for (i = 0; i < job->def->ntables; i++)
		{
			MappingTablePlan *plan = mapping_plan_external_table(job->mappings,
																 &job->def->tables[i]);
			int			pos;

			if (!plan->selection.selected)
				continue;
			pos = job->ntables;
			while (pos > 0 && orders[pos - 1] < plan->selection.load_order)
			{
				job->tables[pos] = job->tables[pos - 1];
				orders[pos] = orders[pos - 1];
				pos--;
			}
			memset(&job->tables[pos], 0, sizeof(JobTable));
			job->tables[pos].index = i;
			job->tables[pos].et = &job->def->tables[i];
			job->tables[pos].plan = plan;
			job->tables[pos].committed.line = 1;
			orders[pos] = plan->selection.load_order;
			job->ntables++;
		}
	}

	/* Checkpoints. */
	MemoryContextSwitchTo(CurTransactionContext);
	worker_exec("SELECT schema_name, table_name, file_key, next_offset, next_line,"
			 "       table_done, rows_sent, error_rows"
			 "  FROM dms_stream.task_checkpoint WHERE task_name = $1",
			 1, params, SPI_OK_SELECT);
	n = SPI_processed;
	MemoryContextSwitchTo(job_cxt);
	for (i = 0; i < (int) n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *schema = SPI_getvalue(tup, desc, 1);
		char	   *table = SPI_getvalue(tup, desc, 2);
		int			t;

		for (t = 0; t < job->ntables; t++)
		{
			JobTable   *jt = &job->tables[t];

			if (strcmp(jt->et->owner, schema) != 0 || strcmp(jt->et->name, table) != 0)
				continue;
			jt->has_checkpoint = true;
			jt->checkpoint_key = SPI_getvalue(tup, desc, 3);
			jt->committed.offset = strtoll(SPI_getvalue(tup, desc, 4), NULL, 10);
			jt->committed.line = strtoll(SPI_getvalue(tup, desc, 5), NULL, 10);
			jt->done = strcmp(SPI_getvalue(tup, desc, 6), "t") == 0;
			jt->committed.rows = strtoll(SPI_getvalue(tup, desc, 7), NULL, 10);
			jt->errors = strtoll(SPI_getvalue(tup, desc, 8), NULL, 10);
			job->rows_at_start += jt->committed.rows;
		}
	}
	worker_xact_end(job_cxt);

	/* The batcher: ParallelLoadThreads requests of ParallelLoadBufferSize. */
	in_flight = threads ? atoi(threads) : 0;
	in_flight = Max(in_flight, 1);
	per_request = buffer_size ? atoi(buffer_size) : 0;
	if (per_request <= 0)
		per_request = 50;
	per_request = Min(per_request, KINESIS_MAX_REQUEST_RECORDS);
	kinesis_batcher_default_options(&opts);
	opts.max_in_flight = Min(in_flight, 64);
	opts.max_request_records = per_request;
	opts.strict_key_order = dms_stream_strict_key_order;
	opts.max_buffered_records = per_request * opts.max_in_flight * 2;
	job->shipper = kinesis_shipper_start(job->kinesis, job->task_name, &opts);
	job->ring_size = opts.max_buffered_records * 2 + 16;
	job->ring = palloc0(sizeof(JobRingEntry) * job->ring_size);
}

/*
 * job_list_files
 *		List every selected table's files (key order) and count the bytes.
 */
static void
job_list_files(Job *job)
{
	int			t;

	for (t = 0; t < job->ntables; t++)
	{
		JobTable   *jt = &job->tables[t];
		char	   *prefix = job_table_prefix(job, jt->et);
		List	   *objects;
		ListCell   *lc;

		task_worker_set_phase("listing s3://%s/%s", job->bucket, prefix);
		objects = s3_list_objects(job->source, job->bucket, prefix, NULL, 0, 0);
		jt->files = palloc0(sizeof(JobFile) * Max(list_length(objects), 1));
		foreach(lc, objects)
		{
			S3Object   *obj = lfirst(lc);
			size_t		len = strlen(obj->key);

			if (len == 0 || obj->key[len - 1] == '/')
				continue;
			/* Only files directly in the table's folder. */
			if (strchr(obj->key + strlen(prefix), '/') != NULL)
				continue;
			jt->files[jt->nfiles].key = obj->key;
			jt->files[jt->nfiles].size = obj->size;
			jt->nfiles++;
			jt->bytes_total += obj->size;
		}
		job->bytes_total += jt->bytes_total;

		/* The checkpoint's file: files before it are done. */
		jt->committed.file = 0;
		if (jt->checkpoint_key != NULL)
		{
			while (jt->committed.file < jt->nfiles &&
				   strcmp(jt->files[jt->committed.file].key, jt->checkpoint_key) < 0)
				jt->committed.file++;
			if (jt->committed.file >= jt->nfiles ||
				strcmp(jt->files[jt->committed.file].key, jt->checkpoint_key) != 0)
			{
				/* The file is gone: go on with the next one. */
				jt->committed.offset = 0;
				jt->committed.line = 1;
			}
		}
	}
}

/*
 * job_bytes_done
 *		Bytes of all selected tables' files up to the committed checkpoints.
 */
static int64
job_bytes_done(Job *job)
{
	int64		done = 0;
	int			t;

	for (t = 0; t < job->ntables; t++)
	{
		JobTable   *jt = &job->tables[t];
		int			f;

		if (jt->done)
		{
			done += jt->bytes_total;
			continue;
		}
		for (f = 0; f < jt->committed.file && f < jt->nfiles; f++)
			done += jt->files[f].size;
		if (jt->committed.file < jt->nfiles)
			done += Min(jt->committed.offset, jt->files[jt->committed.file].size);
	}
	return done;
}

/*
 * job_rows_committed
 *		Rows committed for all tables.
 */
static int64
job_rows_committed(Job *job)
{
	int64		rows = 0;
	int			t;

	for (t = 0; t < job->ntables; t++)
		rows += job->tables[t].committed.rows;
	return rows + job->cdc.committed.rows;
}

/*
 * job_write_progress
 *		Update task_progress (inside a transaction).
 */
static void
job_write_progress(Job *job)
{
	const char *params[6];
	int64		rows = job_rows_committed(job) - job->rows_at_start;
	long		secs;
	int			usecs;
	double		elapsed;

	TimestampDifference(job->run_started, GetCurrentTimestamp(), &secs, &usecs);
	elapsed = secs + usecs / 1000000.0;
	params[0] = job->task_name;
	params[1] = task_worker_phase();
	params[2] = job_int64_text(job->bytes_total);
	params[3] = job_int64_text(job_bytes_done(job));
	params[4] = job_int64_text(rows);
	params[5] = psprintf("%.3f", elapsed > 0 ? rows / elapsed : 0.0);
	worker_exec("UPDATE dms_stream.task_progress"
			 "   SET phase = $2, bytes_total = $3::bigint, bytes_done = $4::bigint,"
			 "       rows_sent = $5::bigint, rows_per_second = $6::double precision,"
			 "       updated_at = now()"
			 " WHERE task_name = $1",
			 6, params, SPI_OK_UPDATE);
	{
		const KinesisBatcherStats *bs = job->shipper ? kinesis_shipper_stats(job->shipper) : NULL;

		worker_write_figures(job->task_name, job->cdc_read_time, job->cdc_ack_time,
							 job->cdc_idle_at, job->cdc_idle_at, &job->interval,
							 job->run_started, rows, bs ? bs->requests_throttled : 0,
							 bs ? bs->entries_throttled : 0);
	}
	params[0] = job_int64_text(job->run_id);
	worker_exec("UPDATE dms_stream.run_history SET rows_processed = $2::bigint"
			 " WHERE run_id = $1::bigint",
			 2, (const char *[]) {params[0], params[4]}, SPI_OK_UPDATE);
	job->result->rows_sent = rows;
}

/*
 * job_write_table
 *		Write a table's checkpoint and statistics (inside a transaction).
 *		state is the DMS TableState.
 */
static void
job_write_table(Job *job, JobTable *jt, const char *state)
{
	const char *params[11];
	bool		finished = strcmp(state, "Table completed") == 0 ||
		strcmp(state, "Table error") == 0;

	params[0] = job->task_name;
	params[1] = jt->et->owner;
	params[2] = jt->et->name;
	params[3] = jt->committed.file < jt->nfiles ? jt->files[jt->committed.file].key :
		(jt->nfiles > 0 ? jt->files[jt->nfiles - 1].key : NULL);
	params[4] = job_int64_text(jt->committed.offset);
	params[5] = job_int64_text(jt->committed.line);
	params[6] = jt->done ? "true" : "false";
	params[7] = job_int64_text(jt->committed.rows);
	params[8] = job_int64_text(jt->errors);
	params[9] = state;
	params[10] = job->reload ? "true" : "false";
	worker_exec("INSERT INTO dms_stream.task_checkpoint AS c"
			 "       (task_name, schema_name, table_name, file_key, next_offset, next_line,"
			 "        table_done, rows_sent, error_rows, updated_at)"
			 " VALUES ($1, $2, $3, $4, $5::bigint, $6::bigint, $7::boolean, $8::bigint,"
			 "         $9::bigint, now())"
			 " ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
			 "   SET file_key = EXCLUDED.file_key, next_offset = EXCLUDED.next_offset,"
			 "       next_line = EXCLUDED.next_line, table_done = EXCLUDED.table_done,"
			 "       rows_sent = EXCLUDED.rows_sent, error_rows = EXCLUDED.error_rows,"
			 "       updated_at = now()",
			 9, params, SPI_OK_INSERT);
	worker_exec(finished ?
			 "INSERT INTO dms_stream.table_statistics AS s"
			 "       (task_name, schema_name, table_name, full_load_rows, full_load_error_rows,"
			 "        full_load_start_time, full_load_end_time, full_load_reloaded,"
			 "        table_state, last_update_time)"
			 " VALUES ($1, $2, $3, $8::bigint, $9::bigint, now(), now(), $11::boolean, $10, now())"
			 " ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
			 "   SET full_load_rows = EXCLUDED.full_load_rows,"
			 "       full_load_error_rows = EXCLUDED.full_load_error_rows,"
			 "       full_load_start_time = coalesce(s.full_load_start_time, now()),"
			 "       full_load_end_time = now(), table_state = EXCLUDED.table_state,"
			 "       last_update_time = now()"
			 :
			 "INSERT INTO dms_stream.table_statistics AS s"
			 "       (task_name, schema_name, table_name, full_load_rows, full_load_error_rows,"
			 "        full_load_start_time, full_load_reloaded, table_state, last_update_time)"
			 " VALUES ($1, $2, $3, $8::bigint, $9::bigint, now(), $11::boolean, $10, now())"
			 " ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
			 "   SET full_load_rows = EXCLUDED.full_load_rows,"
			 "       full_load_error_rows = EXCLUDED.full_load_error_rows,"
			 "       full_load_start_time = coalesce(s.full_load_start_time, now()),"
			 "       full_load_end_time = NULL, table_state = EXCLUDED.table_state,"
			 "       last_update_time = now()",
			 11, params, SPI_OK_INSERT);
}

/*
 * job_write_exceptions
 *		Write a table's waiting rejected rows before pos to apply_exceptions
 *		(inside a transaction) and count them as committed error rows.
 */
static void
job_write_exceptions(Job *job, JobTable *jt, const JobPosition *pos)
{
	while (jt->exceptions != NIL)
	{
		JobException *ex = linitial(jt->exceptions);
		const char *params[10];

		if (ex->file > pos->file || (ex->file == pos->file && ex->offset >= pos->offset))
			break;
		if (ex->logged)
		{
			params[0] = job->task_name;
			if (ex->owner != NULL || ex->name != NULL || jt->et == NULL)
			{
				params[1] = ex->target ? ex->target : ex->name;
				params[2] = ex->owner;
				params[3] = ex->name;
			}
			else
			{
				params[1] = jt->plan->target_table ? jt->plan->target_table : jt->et->name;
				params[2] = jt->et->owner;
				params[3] = jt->et->name;
			}
			params[4] = job_file_uri(job, jt, ex->file);
			params[5] = job_int64_text(ex->line);
			params[6] = ex->column > 0 ? psprintf("%d", ex->column) : NULL;
			params[7] = ex->code;
			params[8] = ex->reason;
			params[9] = ex->raw;
			worker_exec("INSERT INTO dms_stream.apply_exceptions"
					 "       (task_name, target_table_name, table_owner, table_name, source_uri,"
					 "        line_number, column_number, error_code, error, raw_data)"
					 " VALUES ($1, $2, $3, $4, $5, $6::bigint, $7::integer, $8, $9, $10)",
					 10, params, SPI_OK_INSERT);
		}
		if (ex->suspends != NULL)
		{
			/* SUSPEND_TABLE in CDC: durable with the row that caused it */
			params[0] = job->task_name;
			params[1] = ex->suspends->et->owner;
			params[2] = ex->suspends->et->name;
			worker_exec("INSERT INTO dms_stream.table_statistics AS s"
					 "       (task_name, schema_name, table_name, table_state, last_update_time)"
					 " VALUES ($1, $2, $3, 'Table error', now())"
					 " ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
					 "   SET table_state = 'Table error', last_update_time = now()",
					 3, params, SPI_OK_INSERT);
		}
		jt->errors++;
		job->result->error_rows++;
		jt->exceptions = list_delete_first(jt->exceptions);
		pfree(ex->reason);
		if (ex->raw)
			pfree(ex->raw);
		pfree(ex);
	}
}

/*
 * job_checkpoint
 *		Commit a table's position pos (every record before it is
 *		acknowledged), the rejected rows before it, the statistics and the
 *		progress, in one short transaction.
 */
static void
job_checkpoint(Job *job, JobTable *jt, const JobPosition *pos, const char *state)
{
	MemoryContext cxt = CurrentMemoryContext;

	worker_xact_begin();
	job_write_exceptions(job, jt, pos);
	jt->committed = *pos;
	job_write_table(job, jt, state);
	job_write_progress(job);
	worker_xact_end(cxt);
	jt->last_checkpoint = GetCurrentTimestamp();
}

/*
 * job_position_after
 *		Whether a is further into the table's files than b.
 */
static bool
job_position_after(const JobPosition *a, const JobPosition *b)
{
	return a->file > b->file || (a->file == b->file && a->offset > b->offset);
}

/*
 * job_note_acks
 *		Take the newly acknowledged records from the batcher: each moves its
 *		table's acknowledged position.  Checkpoint the tables of active whose
 *		position moved, once the interval has passed since their last one
 *		(looked at when the acknowledged prefix moves).
 */
static void
job_note_acks(Job *job, JobTable **active, int nactive)
{
	uint64		tag;
	int			i;
	TimestampTz now;

	/*
	 * Acknowledgements arrive with the answers to requests, not with each
	 * row: look at the clock only when the acknowledged prefix moved.
	 */
	if (!kinesis_shipper_acked_through(job->shipper, &tag) || tag <= job->acked_tag)
		return;
	{
		uint64		t;

		for (t = job->acked_tag + 1; t <= tag; t++)
		{
			JobRingEntry *e = &job->ring[t % job->ring_size];

			e->table->acked = e->pos;
			if (e->stat_table != NULL)
				e->stat_table->cdc_pending[e->op]++;
		}
		job->acked_tag = tag;
	}
	now = GetCurrentTimestamp();
	for (i = 0; i < nactive; i++)
	{
		JobTable   *jt = active[i];

		if (job_position_after(&jt->acked, &jt->committed) &&
			TimestampDifferenceExceeds(jt->last_checkpoint, now,
									   JOB_CHECKPOINT_INTERVAL_MS))
			job_checkpoint(job, jt, &jt->acked, "Full load");
	}
}

/*
 * job_flush_to
 *		Wait until every queued record is acknowledged and commit pos (at or
 *		after the table's last queued record) as the table's checkpoint.
 */
static void
job_flush_to(Job *job, JobTable *jt, const JobPosition *pos, const char *state)
{
	task_worker_set_phase("full load of %s.%s: waiting for Kinesis",
						  jt->et->owner, jt->et->name);
	kinesis_shipper_flush(job->shipper);
	job_note_acks(job, NULL, 0);
	job_checkpoint(job, jt, pos, state);
}

/*
 * job_reject
 *		A bad row of table jt: apply the policy.  Returns false when the
 *		table must stop (SUSPEND_TABLE); raises an ERROR for STOP_TASK.
 */
static bool
job_reject(Job *job, JobTable *jt, int file, const CsvRecord *rec, int column,
		   const char *code, const char *reason, bool truncation)
{
	JobPolicy	policy = truncation ? job->truncation_policy : job->data_policy;
	MemoryContext old;
	JobException *ex;

	if (policy == JOB_POLICY_STOP_TASK || policy == JOB_POLICY_SUSPEND_TABLE)
	{
		JobPosition at;

		at.file = file;
		at.offset = rec->start.offset;
		at.line = rec->start.line;
		at.rows = jt->queued.rows;
		if (policy == JOB_POLICY_STOP_TASK)
		{
			job_flush_to(job, jt, &at, "Table error");
			/* the reason may quote the row: detail only (see error_public.h) */
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("bad row in %s line %lld%s (%s)",
							job_file_uri(job, jt, file), (long long) rec->start.line,
							column > 0 ? psprintf(" column %d", column) : "", code),
					 errdetail("%s. %s is STOP_TASK, so the task stopped at this row.", reason,
							   truncation ? "DataTruncationErrorPolicy" : "DataErrorPolicy"),
					 errhint("Correct the file and resume the task, or set the policy to LOG_ERROR.")));
		}
		jt->done = true;
		job_flush_to(job, jt, &at, "Table error");
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\": table %s.%s suspended at %s line %lld: %s",
						job->task_name, jt->et->owner, jt->et->name,
						job_file_uri(job, jt, file), (long long) rec->start.line, reason)));
		return false;
	}

	old = MemoryContextSwitchTo(TopMemoryContext);
	ex = palloc0(sizeof(JobException));
	ex->file = file;
	ex->offset = rec->start.offset;
	ex->line = rec->start.line;
	ex->column = column;
	ex->logged = policy == JOB_POLICY_LOG_ERROR;
	ex->code = (char *) code;
	ex->reason = pstrdup(reason);
	if (ex->logged && rec->raw != NULL)
	{
		StringInfoData raw;

		initStringInfo(&raw);
		csv_append_escaped_invalid(&raw, rec->raw, rec->raw_len);
		if (rec->raw_truncated)
			appendStringInfoString(&raw, "...");
		ex->raw = raw.data;
	}
	jt->exceptions = lappend(jt->exceptions, ex);
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * job_csv_error_code
 *		apply_exceptions.error_code of a CSV error.
 */
static const char *
job_csv_error_code(CsvErrorCode code)
{
	switch (code)
	{
		case CSV_ERR_UNTERMINATED_QUOTE:
			return "unterminated_quote";
		case CSV_ERR_TEXT_AFTER_QUOTE:
			return "text_after_quote";
		case CSV_ERR_INVALID_UTF8:
			return "invalid_utf8";
		case CSV_ERR_RECORD_TOO_LONG:
			return "record_too_long";
		case CSV_ERR_TOO_MANY_FIELDS:
			return "too_many_fields";
		default:
			return "csv_error";
	}
}

/*
 * job_clock
 *		The time for a message's metadata timestamp: the time it is built,
 *		read for every message (a message built long after the previous one,
 *		e.g. the first change after a full load, must not carry its time).
 */
static TimestampTz
job_clock(Job *job)
{
	return GetCurrentTimestamp();
}

/*
 * job_event_id
 *		The stable event id of a record: a 64-bit hash of the file's key and
 *		the line where the record starts.  The text is valid until the next
 *		call.
 */
static char *
job_event_id(JobTable *jt, int file, int64 line)
{
	static const char hex[] = "0123456789abcdef";
	static char buf[16 + 1 + 21];
	JobFile    *f = &jt->files[file];
	uint64		hash = f->key_hash;
	char		digits[21];
	int			n = 0;
	int			i;

	if (hash == 0)
	{
		hash = hash_bytes_extended((const unsigned char *) f->key, strlen(f->key), 0);
		/* 0 marks "not computed": the one key hashing to 0 is hashed each time */
		f->key_hash = hash;
	}
	/* "%016llx:%lld", without the printf machinery (once per row) */
	for (i = 15; i >= 0; i--)
	{
		buf[i] = hex[hash & 0xF];
		hash >>= 4;
	}
	buf[16] = ':';
	if (line < 0)
		return psprintf("%.17s%lld", buf, (long long) line);
	do
	{
		digits[n++] = '0' + (char) (line % 10);
		line /= 10;
	} while (line > 0);
	for (i = 0; i < n; i++)
		buf[17 + i] = digits[n - 1 - i];
	buf[17 + n] = '\0';
	return buf;
}

/*
 * job_render_columns
 *		Type and render the columns of a routed row (full load or CDC) into
 *		job->column_values.  False with *column, *code, *reason and
 *		*truncation set when the row is bad.
 */
static bool
job_render_columns(Job *job, const DmsRow *row, int *column, const char **code,
			   char **reason, bool *truncation)
{
	const ExternalTable *et = row->table;
	DmsValueResult vres;
	int		   *starts;
	int			c;
	int			truncated_column = 0;
	char	   *truncated_reason = NULL;

	resetStringInfo(&job->values);
	starts = job->value_starts;
	for (c = 0; c < et->ncolumns; c++)
	{
		const CsvField *f = &row->columns[c];
		DmsColumnValue *v = &job->column_values[c];

		starts[c] = job->values.len;
		if (!dms_value_render(&et->columns[c], f->data, f->len, f->quoted,
							  &job->value_options, &job->values, &vres))
		{
			if (vres.error_class == DMS_VALUE_DATA_ERROR)
			{
				*column = row->first_field + c;
				*code = "bad_value";
				*reason = psprintf("column %s: %s", et->columns[c].name, vres.message);
				*truncation = false;
				return false;
			}
			if (truncated_column == 0)
			{
				truncated_column = row->first_field + c;
				truncated_reason = psprintf("column %s: %s", et->columns[c].name, vres.message);
			}
		}
		v->is_null = vres.is_null;
		v->is_empty = vres.is_empty;
		v->is_missing = false;
	}
	starts[et->ncolumns] = job->values.len;
	for (c = 0; c < et->ncolumns; c++)
	{
		job->column_values[c].json = job->values.data + starts[c];
		job->column_values[c].len = starts[c + 1] - starts[c];
	}
	if (truncated_column > 0)
	{
		*column = truncated_column;
		*code = "truncated";
		*reason = truncated_reason;
		*truncation = true;
		return false;
	}
	return true;
}

/*
 * job_row
 *		One CSV record of table jt.  Returns false when the table must stop
 *		(SUSPEND_TABLE).
 */
static bool
job_row(Job *job, JobTable *jt, CsvResult res, CsvRecord *rec)
{
	int			file = jt->file;
	DmsRow		row;
	DmsRowError rerr;
	int			column;
	const char *code;
	char	   *reason;
	bool		truncation;
	uint64		tag;
	char	   *problem = NULL;
	KinesisRecordStatus status;
	DmsChange	change;
	JobRingEntry *entry;

	jt->queued.file = file;
	jt->queued.offset = rec->end.offset;
	jt->queued.line = rec->end.line;

	if (res == CSV_BAD_RECORD)
		return job_reject(job, jt, file, rec, rec->error.column,
						  job_csv_error_code(rec->error.code), rec->error.message,
						  rec->error.code == CSV_ERR_RECORD_TOO_LONG);

	if (!dms_row_route(job->renderer, jt->index, rec->fields, rec->nfields, &row, &rerr))
		return job_reject(job, jt, file, rec, rerr.field, "bad_row", rerr.message,
						  rerr.error_class == DMS_VALUE_TRUNCATED);

	/* Type and render every column. */
	if (!job_render_columns(job, &row, &column, &code, &reason, &truncation))
		return job_reject(job, jt, file, rec, column, code, reason, truncation);

	if (!mapping_row_passes(jt->plan, job->column_values))
		return true;

	/* The message. */
	memset(&change, 0, sizeof(change));
	change.operation = DMS_OP_LOAD;
	change.values = job->column_values;
	change.event_id = job_event_id(jt, file, rec->start.line);
	change.timestamp = job_clock(job);
	dms_message_build(jt->writer, &change, &job->message, &job->key);

	tag = job->next_tag + 1;
	entry = &job->ring[tag % job->ring_size];
	entry->table = jt;
	entry->stat_table = NULL;
	entry->pos.file = file;
	entry->pos.offset = rec->end.offset;
	entry->pos.line = rec->end.line;
	entry->pos.rows = jt->queued.rows + 1;
	status = kinesis_shipper_add(job->shipper, job->message.data, job->message.len,
								 job->key.data, NULL, tag, &problem);
	if (status != KINESIS_RECORD_OK)
		return job_reject(job, jt, file, rec, 0, "record_refused",
						  problem ? problem : "Kinesis would refuse this record", false);
	job->next_tag = tag;
	jt->queued.rows++;

	/* Keep the ring ahead of the oldest unacknowledged record. */
	if (job->next_tag - job->acked_tag >= (uint64) job->ring_size - 8)
		kinesis_shipper_flush(job->shipper);
	job_note_acks(job, &jt, 1);
	return true;
}

/*
 * job_table_records
 *		Hand every record the reader has ready to job_row.  Returns false
 *		when the table must stop.
 */
static bool
job_table_records(Job *job, JobTable *jt)
{
	CsvRecord	rec;
	CsvResult	res;
	bool		go_on = true;

	while (go_on && (res = csv_reader_next(jt->reader, &rec)) != CSV_NEED_MORE &&
		   res != CSV_END)
	{
		MemoryContext old = MemoryContextSwitchTo(job->row_cxt);

		go_on = job_row(job, jt, res, &rec);
		MemoryContextSwitchTo(old);
		MemoryContextReset(job->row_cxt);
	}
	return go_on;
}

/*
 * job_table_close_file
 *		Release the reader of the table's current file.
 */
static void
job_table_close_file(JobTable *jt)
{
	if (jt->fetch)
		s3_get_object_cancel(jt->fetch);
	jt->fetch = NULL;
	if (jt->reader)
		csv_reader_free(jt->reader);
	if (jt->previous)
		pfree(jt->previous);
	jt->reader = NULL;
	jt->previous = NULL;
}

/*
 * job_fetch_start
 *		Ask for the chunk of file f at the table's offset.
 */
static S3GetObject *
job_fetch_start(Job *job, JobTable *jt, JobFile *f)
{
	int64		end = Min(jt->offset + JOB_CHUNK_BYTES, f->size) - 1;

	return s3_get_object_start(job->source, job->bucket, f->key, jt->offset, end);
}

/*
 * job_refuse_compressed
 *		ERROR for a gzip-compressed object (its key ends in .gz, or the bytes
 *		read at offset 0 start with gzip's magic number): CSV objects are
 *		read as stored, and compressed bytes must never pass for rows of a
 *		table reported completed.
 */
static void
job_refuse_compressed(Job *job, const char *key, int64 offset, const char *data, size_t len)
{
	size_t		klen = strlen(key);

	if (!((klen > 3 && pg_strcasecmp(key + klen - 3, ".gz") == 0) ||
		  (offset == 0 && len >= 2 &&
		   (unsigned char) data[0] == 0x1f && (unsigned char) data[1] == 0x8b)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("s3://%s/%s is gzip-compressed", job->bucket, key),
			 errdetail("dms_stream reads S3 source files as uncompressed CSV; compressed bytes are never read as rows."),
			 errhint("Store the files uncompressed (as a DMS S3 target with CompressionType NONE writes them), or move compressed ones out of the table's folder.")));
}

/*
 * job_table_step
 *		One step of a table's load: open its next file, or read and send one
 *		chunk of the current one, or finish that file.  Returns false when the
 *		table is finished (completed or suspended).
 */
static bool
job_table_step(Job *job, JobTable *jt)
{
	JobFile    *f;

	if (jt->reader == NULL)
	{
		CsvPosition start;

		if (jt->file >= jt->nfiles)
		{
			JobPosition end_pos = jt->queued;

			jt->done = true;
			end_pos.file = Max(jt->nfiles - 1, 0);
			end_pos.offset = jt->nfiles > 0 ? jt->files[jt->nfiles - 1].size : 0;
			job_flush_to(job, jt, &end_pos, "Table completed");
			job->result->tables_loaded++;
			dms_stream_log(LOG,
					(errmsg("dms_stream task \"%s\": table %s.%s loaded: %lld rows, %lld error rows",
							job->task_name, jt->et->owner, jt->et->name,
							(long long) jt->committed.rows, (long long) jt->errors)));
			return false;
		}
		if (jt->file == jt->committed.file)
		{
			start.offset = jt->committed.offset;
			start.line = jt->committed.line;
		}
		else
		{
			start.offset = 0;
			start.line = 1;
		}
		jt->queued.file = jt->file;
		jt->queued.offset = start.offset;
		jt->queued.line = start.line;
		jt->offset = start.offset;
		jt->reader = csv_reader_create(&job->csv, &start);
	}

	f = &jt->files[jt->file];
	task_worker_set_phase("full load of %s.%s: s3://%s/%s at line %lld",
						  jt->et->owner, jt->et->name, job->bucket, f->key,
						  (long long) jt->queued.line);
	task_worker_check_interrupts();

	if (jt->offset < f->size)
	{
		size_t		len;
		char	   *data;
		TimestampTz t0 = GetCurrentTimestamp();

		/*
		 * The chunk at offset (asked for while the previous one was read, or
		 * now); then ask for the next one, which comes while this one is
		 * parsed and sent.
		 */
		if (jt->fetch == NULL)
			jt->fetch = job_fetch_start(job, jt, f);
		data = s3_get_object_finish(jt->fetch, &len);
		jt->fetch = NULL;
		job->s3_ms += (double) (GetCurrentTimestamp() - t0) / 1000.0;
		if (len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("s3://%s/%s ended at byte %lld, before its listed size %lld",
							job->bucket, f->key, (long long) jt->offset, (long long) f->size)));
		job_refuse_compressed(job, f->key, jt->offset, data, len);
		csv_reader_feed(jt->reader, data, len);
		if (jt->previous)
			pfree(jt->previous);
		jt->previous = data;
		jt->offset += len;
		if (jt->offset < f->size)
			jt->fetch = job_fetch_start(job, jt, f);
		if (!job_table_records(job, jt))
		{
			job_table_close_file(jt);
			return false;
		}
		return true;
	}

	/* The whole file is read: its end is the next checkpoint. */
	csv_reader_finish(jt->reader);
	if (!job_table_records(job, jt))
	{
		job_table_close_file(jt);
		return false;
	}
	job_table_close_file(jt);
	{
		JobPosition end_pos = jt->queued;

		end_pos.file = jt->file;
		end_pos.offset = f->size;
		job_flush_to(job, jt, &end_pos, "Full load");
	}
	jt->file++;
	return true;
}

/*
 * job_table_begin
 *		Start loading a table from its checkpoint.  False when its mapping
 *		plan rules it out (the table is then in "Table error").
 */
static bool
job_table_begin(Job *job, JobTable *jt)
{
	jt->queued = jt->committed;
	jt->acked = jt->committed;
	jt->exceptions = NIL;
	jt->file = jt->committed.file;
	jt->reader = NULL;
	jt->fetch = NULL;
	jt->previous = NULL;

	if (jt->plan->error != NULL)
	{
		jt->done = true;
		job_checkpoint(job, jt, &jt->committed, "Table error");
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\": table %s.%s cannot be loaded: %s",
						job->task_name, jt->et->owner, jt->et->name, jt->plan->error)));
		job->result->tables_failed++;
		return false;
	}
	jt->writer = dms_message_writer_create(jt->plan, &job->message_settings);
	/* Before load -> Full load */
	job_checkpoint(job, jt, &jt->committed, "Full load");
	return true;
}

/*
 * CDC (migration types cdc and full-load-and-cdc).
 *
 * The CDC files of all tables are in one folder, BucketFolder/CdcPath/
 * (only files directly in it), read in key order; each record is
 * "operation,table,schema,columns..." and is routed to its table
 * (dms_row_route with no load table).  Rows of tables the selection rules
 * exclude are skipped; rows naming a table the definition lacks are data
 * errors (apply_exceptions error_code "unknown_table").  I/INSERT becomes
 * a DMS "insert", U/UPDATE an "update" whose data is the row (the after
 * image), D/DELETE a "delete" whose data is the row as given.
 *
 * High-water mark.  The CDC position is a task_checkpoint row with
 * schema_name and table_name "(cdc)": file_key is the CDC file being read
 * (table_done false: resume there at next_offset / next_line) or the last
 * file completed (table_done true: the high-water mark), rows_sent and
 * error_rows count the CDC records of the task.  It moves, with the
 * statistics (Inserts/Updates/Deletes per table) and the rejected rows, only
 * for records Kinesis acknowledged, as in the full load.  A new task reads
 * every file of the folder from the first; a resumed one goes on after the
 * mark.
 *
 * Late files.  As DMS does, a file is only read when its key sorts after
 * the mark: a file uploaded later whose key sorts before a file already
 * read is never replicated.  So that it is not lost silently, such a file
 * is reported once with a WARNING and a row in apply_exceptions (error_code
 * "late_cdc_file").  Detection: every poll lists the whole folder (so the
 * listing does not use start-after, which would hide late files) and takes
 * the keys after the mark; a key before the mark that the previous poll's
 * listing did not have is late.  At the first poll of a worker, a key before
 * the mark is late if its LastModified is after the time the mark was
 * committed (uploaded while the task was stopped; this relies on the S3 and
 * server clocks agreeing).  Each late file is reported at most once per
 * task.
 *
 * Polling: every dms_stream.poll_interval, in WaitLatch (stop_task ends
 * the wait at once).  Each poll writes task_progress, so task_status.lag is
 * the time since the worker last listed the folder or checkpointed.
 */
#define JOB_CDC_NAME	"(cdc)"

/*
 * job_cdc_write_statistics
 *		Add the acknowledged operations of each table to its statistics
 *		(inside a transaction).
 */
static void
job_cdc_write_statistics(Job *job)
{
	int			t;

	for (t = 0; t < job->ntables; t++)
	{
		JobTable   *jt = &job->tables[t];
		const char *params[6];

		if (jt->cdc_pending[DMS_ROW_INSERT] == 0 && jt->cdc_pending[DMS_ROW_UPDATE] == 0 &&
			jt->cdc_pending[DMS_ROW_DELETE] == 0)
			continue;
		params[0] = job->task_name;
		params[1] = jt->et->owner;
		params[2] = jt->et->name;
		params[3] = job_int64_text(jt->cdc_pending[DMS_ROW_INSERT]);
		params[4] = job_int64_text(jt->cdc_pending[DMS_ROW_UPDATE]);
		params[5] = job_int64_text(jt->cdc_pending[DMS_ROW_DELETE]);
		worker_exec("INSERT INTO dms_stream.table_statistics AS s"
				 "       (task_name, schema_name, table_name, inserts, updates, deletes,"
				 "        table_state, last_update_time)"
				 " VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint, 'Table completed', now())"
				 " ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
				 "   SET inserts = s.inserts + EXCLUDED.inserts,"
				 "       updates = s.updates + EXCLUDED.updates,"
				 "       deletes = s.deletes + EXCLUDED.deletes,"
				 "       last_update_time = now()",
				 6, params, SPI_OK_INSERT);
		memset(jt->cdc_pending, 0, sizeof(jt->cdc_pending));
	}
}

/*
 * job_cdc_checkpoint
 *		Commit the CDC position pos (done: its file is completed), the
 *		rejected rows before it, the statistics and the progress.
 */
static void
job_cdc_checkpoint(Job *job, const JobPosition *pos, bool done)
{
	MemoryContext cxt = CurrentMemoryContext;
	JobTable   *cdc = &job->cdc;
	const char *params[7];

	worker_xact_begin();
	job_write_exceptions(job, cdc, pos);
	if (done || pos->rows > cdc->committed.rows)
		job->cdc_ack_time = cdc->files[pos->file].last_modified;
	cdc->committed = *pos;
	params[0] = job->task_name;
	params[1] = cdc->files[pos->file].key;
	params[2] = job_int64_text(pos->offset);
	params[3] = job_int64_text(pos->line);
	params[4] = done ? "true" : "false";
	params[5] = job_int64_text(pos->rows);
	params[6] = job_int64_text(cdc->errors);
	worker_exec("INSERT INTO dms_stream.task_checkpoint AS c"
			 "       (task_name, schema_name, table_name, file_key, next_offset, next_line,"
			 "        table_done, rows_sent, error_rows, updated_at)"
			 " VALUES ($1, '" JOB_CDC_NAME "', '" JOB_CDC_NAME "', $2, $3::bigint, $4::bigint,"
			 "         $5::boolean, $6::bigint, $7::bigint, now())"
			 " ON CONFLICT (task_name, schema_name, table_name) DO UPDATE"
			 "   SET file_key = EXCLUDED.file_key, next_offset = EXCLUDED.next_offset,"
			 "       next_line = EXCLUDED.next_line, table_done = EXCLUDED.table_done,"
			 "       rows_sent = EXCLUDED.rows_sent, error_rows = EXCLUDED.error_rows,"
			 "       updated_at = now()",
			 7, params, SPI_OK_INSERT);
	job_cdc_write_statistics(job);
	job_write_progress(job);
	worker_xact_end(cxt);
	cdc->last_checkpoint = GetCurrentTimestamp();
}

/*
 * job_cdc_note_acks
 *		Take acknowledgements; checkpoint now and then.
 */
static void
job_cdc_note_acks(Job *job)
{
	JobTable   *cdc = &job->cdc;

	job_note_acks(job, NULL, 0);
	if (job_position_after(&cdc->acked, &cdc->committed) &&
		TimestampDifferenceExceeds(cdc->last_checkpoint, GetCurrentTimestamp(),
								   JOB_CHECKPOINT_INTERVAL_MS))
		job_cdc_checkpoint(job, &cdc->acked, false);
}

/*
 * job_cdc_reject
 *		A bad CDC row (of table jt when known; owner / name as the row names
 *		them): apply the policy.
 */
static void
job_cdc_reject(Job *job, JobTable *jt, const char *owner, const char *name,
			   const CsvRecord *rec, int column, const char *code, const char *reason,
			   bool truncation)
{
	JobPolicy	policy = truncation ? job->truncation_policy : job->data_policy;
	JobTable   *cdc = &job->cdc;
	JobTable   *suspends = NULL;
	MemoryContext old;
	JobException *ex;

	if (policy == JOB_POLICY_STOP_TASK)
	{
		JobPosition at;

		at.file = cdc->file;
		at.offset = rec->start.offset;
		at.line = rec->start.line;
		at.rows = cdc->queued.rows;
		kinesis_shipper_flush(job->shipper);
		job_note_acks(job, NULL, 0);
		job_cdc_checkpoint(job, &at, false);
		/* the reason may quote the row: detail only (see error_public.h) */
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("bad row in %s line %lld%s (%s)",
						job_file_uri(job, cdc, cdc->file), (long long) rec->start.line,
						column > 0 ? psprintf(" column %d", column) : "", code),
				 errdetail("%s. %s is STOP_TASK, so the task stopped at this row.", reason,
						   truncation ? "DataTruncationErrorPolicy" : "DataErrorPolicy"),
				 errhint("Correct the file and resume the task, or set the policy to LOG_ERROR.")));
	}
	if (policy == JOB_POLICY_SUSPEND_TABLE && jt != NULL && !jt->cdc_off)
	{
		suspends = jt;
		jt->cdc_off = true;
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\": CDC of table %s.%s suspended at %s line %lld: %s",
						job->task_name, jt->et->owner, jt->et->name,
						job_file_uri(job, cdc, cdc->file), (long long) rec->start.line, reason)));
	}

	old = MemoryContextSwitchTo(TopMemoryContext);
	ex = palloc0(sizeof(JobException));
	ex->file = cdc->file;
	ex->offset = rec->start.offset;
	ex->line = rec->start.line;
	ex->column = column;
	ex->logged = policy != JOB_POLICY_IGNORE_RECORD;
	ex->code = (char *) code;
	ex->reason = pstrdup(reason);
	ex->owner = owner ? pstrdup(owner) : NULL;
	ex->name = name ? pstrdup(name) : NULL;
	ex->suspends = suspends;
	if (jt != NULL)
		ex->target = pstrdup(jt->plan->target_table ? jt->plan->target_table : jt->et->name);
	if (ex->logged && rec->raw != NULL)
	{
		StringInfoData raw;

		initStringInfo(&raw);
		csv_append_escaped_invalid(&raw, rec->raw, rec->raw_len);
		if (rec->raw_truncated)
			appendStringInfoString(&raw, "...");
		ex->raw = raw.data;
	}
	cdc->exceptions = lappend(cdc->exceptions, ex);
	MemoryContextSwitchTo(old);
}

/*
 * job_cdc_row
 *		One record of the current CDC file.
 */
static void
job_cdc_row(Job *job, CsvResult res, CsvRecord *rec)
{
	JobTable   *cdc = &job->cdc;
	JobTable   *jt;
	DmsRow		row;
	DmsRowError rerr;
	int			column = 0;
	const char *code = NULL;
	char	   *reason = NULL;
	bool		truncation = false;
	char	   *owner = NULL;
	char	   *name = NULL;
	DmsChange	change;
	JobRingEntry *entry;
	uint64		tag;
	char	   *problem = NULL;
	KinesisRecordStatus status;

	cdc->queued.file = cdc->file;
	cdc->queued.offset = rec->end.offset;
	cdc->queued.line = rec->end.line;

	if (res == CSV_BAD_RECORD)
	{
		job_cdc_reject(job, NULL, NULL, NULL, rec, rec->error.column,
					   job_csv_error_code(rec->error.code), rec->error.message,
					   rec->error.code == CSV_ERR_RECORD_TOO_LONG);
		return;
	}
	if (rec->nfields >= 3)
	{
		name = pnstrdup(rec->fields[1].data, rec->fields[1].len);
		owner = pnstrdup(rec->fields[2].data, rec->fields[2].len);
	}
	memset(&row, 0, sizeof(row));
	row.table_index = -1;
	if (!dms_row_route(job->renderer, -1, rec->fields, rec->nfields, &row, &rerr))
	{
		jt = row.table_index >= 0 ? job->by_index[row.table_index] : NULL;
		if (row.table_index >= 0 && (jt == NULL || jt->cdc_off))
			return;				/* a table not replicated */
		job_cdc_reject(job, jt, owner, name, rec, rerr.field,
					   rec->nfields >= 3 && row.table_index < 0 && rerr.field == 2 ?
					   "unknown_table" : "bad_row",
					   rerr.message, rerr.error_class == DMS_VALUE_TRUNCATED);
		return;
	}
	jt = job->by_index[row.table_index];
	if (jt == NULL || jt->cdc_off)
		return;					/* excluded by the selection rules */
	if (!job_render_columns(job, &row, &column, &code, &reason, &truncation))
	{
		job_cdc_reject(job, jt, owner, name, rec, column, code, reason, truncation);
		return;
	}
	if (!mapping_row_passes(jt->plan, job->column_values))
		return;

	memset(&change, 0, sizeof(change));
	change.operation = row.operation == DMS_ROW_UPDATE ? DMS_OP_UPDATE :
		row.operation == DMS_ROW_DELETE ? DMS_OP_DELETE : DMS_OP_INSERT;
	change.values = job->column_values;
	change.event_id = job_event_id(cdc, cdc->file, rec->start.line);
	change.timestamp = job_clock(job);
	if (!dms_message_build(jt->writer, &change, &job->message, &job->key))
		return;

	tag = job->next_tag + 1;
	entry = &job->ring[tag % job->ring_size];
	entry->table = cdc;
	entry->stat_table = jt;
	entry->op = row.operation;
	entry->pos.file = cdc->file;
	entry->pos.offset = rec->end.offset;
	entry->pos.line = rec->end.line;
	entry->pos.rows = cdc->queued.rows + 1;
	status = kinesis_shipper_add(job->shipper, job->message.data, job->message.len,
								 job->key.data, NULL, tag, &problem);
	if (status != KINESIS_RECORD_OK)
	{
		job_cdc_reject(job, jt, owner, name, rec, 0, "record_refused",
					   problem ? problem : "Kinesis would refuse this record", false);
		return;
	}
	job->next_tag = tag;
	cdc->queued.rows++;
	if (job->next_tag - job->acked_tag >= (uint64) job->ring_size - 8)
		kinesis_shipper_flush(job->shipper);
	job_cdc_note_acks(job);
}

/*
 * job_cdc_file
 *		Read and send CDC file number file of job->cdc.files from offset /
 *		line; commit its end as the new high-water mark.
 */
static void
job_cdc_file(Job *job, int file, int64 offset, int64 line)
{
	JobTable   *cdc = &job->cdc;
	JobFile    *f = &cdc->files[file];
	CsvPosition start;
	CsvReader  *reader;
	CsvRecord	rec;
	CsvResult	res;
	char	   *previous = NULL;
	JobPosition end_pos;
	bool		finished = false;

	start.offset = offset;
	start.line = line;
	job->cdc_read_time = f->last_modified;
	job->cdc_idle_at = 0;
	cdc->file = file;
	cdc->queued.file = file;
	cdc->queued.offset = offset;
	cdc->queued.line = line;
	cdc->committed.file = file;
	cdc->committed.offset = offset;
	cdc->committed.line = line;
	cdc->acked = cdc->committed;
	reader = csv_reader_create(&job->csv, &start);
	while (!finished)
	{
		task_worker_set_phase("cdc: s3://%s/%s at line %lld", job->bucket, f->key,
							  (long long) cdc->queued.line);
		CHECK_FOR_INTERRUPTS();
		if (offset < f->size)
		{
			size_t		len;
			char	   *data;
			int64		end = Min(offset + JOB_CHUNK_BYTES, f->size) - 1;

			data = s3_get_object(job->source, job->bucket, f->key, offset, end, &len);
			if (len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("s3://%s/%s ended at byte %lld, before its listed size %lld",
								job->bucket, f->key, (long long) offset, (long long) f->size)));
			job_refuse_compressed(job, f->key, offset, data, len);
			csv_reader_feed(reader, data, len);
			if (previous)
				pfree(previous);
			previous = data;
			offset += len;
		}
		else
		{
			csv_reader_finish(reader);
			finished = true;
		}
		while ((res = csv_reader_next(reader, &rec)) != CSV_NEED_MORE && res != CSV_END)
		{
			MemoryContext old = MemoryContextSwitchTo(job->row_cxt);

			job_cdc_row(job, res, &rec);
			MemoryContextSwitchTo(old);
			MemoryContextReset(job->row_cxt);
		}
	}
	csv_reader_free(reader);
	if (previous)
		pfree(previous);

	kinesis_shipper_flush(job->shipper);
	job_note_acks(job, NULL, 0);
	end_pos = cdc->queued;
	end_pos.file = file;
	end_pos.offset = f->size;
	job_cdc_checkpoint(job, &end_pos, true);
}

/*
 * job_cdc_late_file
 *		Report a late CDC file (once per task).
 */
static void
job_cdc_late_file(Job *job, const char *key, const char *mark)
{
	MemoryContext cxt = CurrentMemoryContext;
	const char *params[3];
	char	   *uri = psprintf("s3://%s/%s", job->bucket, key);
	char	   *reason = psprintf("CDC file %s was uploaded after %s was processed and sorts before it: "
								  "as in AWS DMS, it is not replicated", uri, mark);

	params[0] = job->task_name;
	params[1] = uri;
	params[2] = reason;
	worker_xact_begin();
	if (worker_exec("INSERT INTO dms_stream.apply_exceptions"
				 "       (task_name, source_uri, error_code, error)"
				 " SELECT $1, $2, 'late_cdc_file', $3"
				 "  WHERE NOT EXISTS (SELECT 1 FROM dms_stream.apply_exceptions"
				 "                     WHERE task_name = $1 AND source_uri = $2"
				 "                       AND error_code = 'late_cdc_file')"
				 " RETURNING 1",
				 3, params, SPI_OK_INSERT_RETURNING) != NULL)
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\": late CDC file %s is not replicated", job->task_name, uri),
				 errdetail("Its name sorts before %s, the last CDC file processed; "
						   "AWS DMS skips such files too.", mark),
				 errhint("Give CDC files names that sort after every file already uploaded.")));
	worker_xact_end(cxt);
}

/*
 * job_cdc_run
 *		Poll the CDC folder and replicate new files until stopped.
 */
static void
job_cdc_run(Job *job)
{
	JobTable   *cdc = &job->cdc;
	const char *params[1] = {job->task_name};
	const char *cdc_path = NULL;
	char	   *mark = NULL;	/* checkpoint file */
	bool		mark_done = true;
	int64		resume_offset = 0;
	int64		resume_line = 1;
	TimestampTz mark_time = 0;
	bool		first = true;
	MemoryContext list_cxt[2];	/* this poll's listing, the previous one's */
	char	  **prev_keys = NULL;	/* keys of the previous listing, sorted */
	int			nprev = 0;
	uint64		polls = 0;
	int			t;
	json_t	   *v;

	/* Tables by definition index; writers for those that can be sent. */
	job->by_index = palloc0(sizeof(JobTable *) * Max(job->def->ntables, 1));
	for (t = 0; t < job->ntables; t++)
	{
		JobTable   *jt = &job->tables[t];

		if (jt->plan->error != NULL)
		{
			ereport(WARNING,
					(errmsg("dms_stream task \"%s\": table %s.%s cannot be replicated: %s",
							job->task_name, jt->et->owner, jt->et->name, jt->plan->error)));
			continue;
		}
		if (jt->writer == NULL)
			jt->writer = dms_message_writer_create(jt->plan, &job->message_settings);
		job->by_index[jt->index] = jt;
	}

	v = json_object_get(job->source->settings, "CdcPath");
	if (v != NULL && json_is_string(v))
		cdc_path = json_string_value(v);
	if (cdc_path == NULL || cdc_path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 source endpoint \"%s\" of task \"%s\" has no CdcPath",
						job->source->name, job->task_name),
				 errhint("CDC tasks read the CDC files under BucketFolder/CdcPath.")));
	while (*cdc_path == '/')
		cdc_path++;
	s3_check_key_segments("CdcPath", cdc_path, S3_SEGMENTS_TRIM);
	job->cdc_prefix = s3_folder_key(job->source, cdc_path);
	if (job->cdc_prefix[0] != '\0' && job->cdc_prefix[strlen(job->cdc_prefix) - 1] != '/')
		job->cdc_prefix = psprintf("%s/", job->cdc_prefix);

	/* The CDC checkpoint. */
	worker_xact_begin();
	worker_exec("SELECT file_key, next_offset, next_line, table_done, rows_sent, error_rows"
			 "  FROM dms_stream.task_checkpoint"
			 " WHERE task_name = $1 AND schema_name = '" JOB_CDC_NAME "'"
			 "   AND table_name = '" JOB_CDC_NAME "'",
			 1, params, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(job));
		bool		isnull;

		mark = SPI_getvalue(tup, desc, 1);
		resume_offset = strtoll(SPI_getvalue(tup, desc, 2), NULL, 10);
		resume_line = strtoll(SPI_getvalue(tup, desc, 3), NULL, 10);
		mark_done = strcmp(SPI_getvalue(tup, desc, 4), "t") == 0;
		cdc->committed.rows = strtoll(SPI_getvalue(tup, desc, 5), NULL, 10);
		cdc->errors = strtoll(SPI_getvalue(tup, desc, 6), NULL, 10);
		job->rows_at_start += cdc->committed.rows;
		MemoryContextSwitchTo(old);
		worker_exec("SELECT updated_at FROM dms_stream.task_checkpoint"
				 " WHERE task_name = $1 AND schema_name = '" JOB_CDC_NAME "'"
				 "   AND table_name = '" JOB_CDC_NAME "'",
				 1, params, SPI_OK_SELECT);
		mark_time = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 1, &isnull));
	}
	/*
	 * Tables in "Table error" (suspended by SUSPEND_TABLE in the full load
	 * or in CDC, before a restart) stay suspended: their rows are skipped.
	 */
	worker_exec("SELECT schema_name, table_name FROM dms_stream.table_statistics"
			 " WHERE task_name = $1 AND table_state = 'Table error'",
			 1, params, SPI_OK_SELECT);
	for (t = 0; t < (int) SPI_processed; t++)
	{
		char	   *owner = SPI_getvalue(SPI_tuptable->vals[t], SPI_tuptable->tupdesc, 1);
		char	   *name = SPI_getvalue(SPI_tuptable->vals[t], SPI_tuptable->tupdesc, 2);
		int			i;

		for (i = 0; i < job->ntables; i++)
		{
			JobTable   *jt = &job->tables[i];

			if (!jt->cdc_off && strcmp(jt->et->owner, owner) == 0 &&
				strcmp(jt->et->name, name) == 0)
			{
				jt->cdc_off = true;
				dms_stream_log(LOG,
						(errmsg("dms_stream task \"%s\": table %s.%s is suspended (Table error): its CDC rows are skipped",
								job->task_name, owner, name)));
			}
		}
	}
	worker_xact_end(GetMemoryChunkContext(job));

	list_cxt[0] = AllocSetContextCreate(GetMemoryChunkContext(job), "dms_stream cdc listing",
										ALLOCSET_DEFAULT_SIZES);
	list_cxt[1] = AllocSetContextCreate(GetMemoryChunkContext(job), "dms_stream cdc listing",
										ALLOCSET_DEFAULT_SIZES);
	for (;; polls++)
	{
		MemoryContext poll_cxt = list_cxt[polls % 2];
		MemoryContext old;
		List	   *objects;
		ListCell   *lc;
		char	  **keys;
		int			nkeys = 0;
		int			nfiles = 0;
		int			p = 0;
		int			f;
		TimestampTz listed_at;

		task_worker_check_interrupts();

		MemoryContextReset(poll_cxt);
		old = MemoryContextSwitchTo(poll_cxt);
		task_worker_set_phase("cdc: listing s3://%s/%s", job->bucket, job->cdc_prefix);
		listed_at = GetCurrentTimestamp();
		objects = s3_list_objects(job->source, job->bucket, job->cdc_prefix, NULL, 0, 0);
		cdc->files = palloc0(sizeof(JobFile) * Max(list_length(objects), 1));
		keys = palloc(sizeof(char *) * Max(list_length(objects), 1));
		foreach(lc, objects)
		{
			S3Object   *obj = lfirst(lc);
			size_t		len = strlen(obj->key);
			int			cmp;

			if (len == 0 || obj->key[len - 1] == '/' ||
				strchr(obj->key + strlen(job->cdc_prefix), '/') != NULL)
				continue;
			keys[nkeys++] = obj->key;
			cmp = mark ? strcmp(obj->key, mark) : 1;
			if (cmp > 0 || (cmp == 0 && !mark_done))
			{
				cdc->files[nfiles].key = obj->key;
				cdc->files[nfiles].size = obj->size;
				cdc->files[nfiles].last_modified = obj->last_modified;
				nfiles++;
			}
			else if (cmp < 0)
			{
				/*
				 * Before the mark: late unless the previous listing had it
				 * (both listings are in key order: walk them together).  At
				 * the first poll, late if uploaded after the mark's commit.
				 */
				while (p < nprev && strcmp(prev_keys[p], obj->key) < 0)
					p++;
				if (first ? obj->last_modified > mark_time :
					(p >= nprev || strcmp(prev_keys[p], obj->key) != 0))
					job_cdc_late_file(job, obj->key, mark);
			}
		}
		first = false;

		for (f = 0; f < nfiles; f++)
		{
			JobFile    *jf = &cdc->files[f];
			bool		resume = mark != NULL && !mark_done && strcmp(jf->key, mark) == 0;

			job_cdc_file(job, f, resume ? resume_offset : 0, resume ? resume_line : 1);
			if (mark != NULL)
				pfree(mark);
			mark = MemoryContextStrdup(GetMemoryChunkContext(job), jf->key);
			mark_done = true;
		}
		/* This listing is the previous one of the next poll. */
		prev_keys = keys;
		nprev = nkeys;
		MemoryContextReset(list_cxt[(polls + 1) % 2]);

		task_worker_set_phase("cdc: waiting for new files in s3://%s/%s",
							  job->bucket, job->cdc_prefix);
		/* every file of the listing read and acknowledged: caught up */
		job->cdc_idle_at = listed_at;
		worker_xact_begin();
		job_write_progress(job);
		worker_xact_end(poll_cxt);
		MemoryContextSwitchTo(old);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 dms_stream_poll_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * s3_source_job_run
 *		Run or resume the full load of a task (see s3_source_job.h): up to
 *		MaxFullLoadSubTasks tables at once, one chunk of each in turn.
 */
void
s3_source_job_run(const char *task_name, int64 run_id, S3SourceJobResult *result)
{
	MemoryContext job_cxt = CurrentMemoryContext;
	Job		   *job = palloc0(sizeof(Job));
	JobTable  **active;
	int			nactive = 0;
	int			next = 0;
	int			t;
	int			max_columns = 1;

	job->task_name = pstrdup(task_name);
	job->run_id = run_id;
	job->result = result;
	job->run_started = GetCurrentTimestamp();

	task_worker_set_phase("reading the task");
	job_load_task(job, job_cxt);
	if (strcmp(job->migration_type, "cdc") != 0)
		job_list_files(job);

	for (t = 0; t < job->def->ntables; t++)
		max_columns = Max(max_columns, job->def->tables[t].ncolumns);
	job->column_values = palloc0(sizeof(DmsColumnValue) * max_columns);
	job->value_starts = palloc0(sizeof(int) * (max_columns + 1));
	initStringInfo(&job->values);
	initStringInfo(&job->message);
	initStringInfo(&job->key);
	job->row_cxt = AllocSetContextCreate(job_cxt, "dms_stream row", ALLOCSET_SMALL_SIZES);
	active = palloc0(sizeof(JobTable *) * Max(job->ntables, 1));

	for (; strcmp(job->migration_type, "cdc") != 0;)
	{
		int			i;

		/* Fill the set of tables being loaded, in load order. */
		while (nactive < job->max_subtasks && next < job->ntables)
		{
			JobTable   *jt = &job->tables[next++];

			if (!jt->done && job_table_begin(job, jt))
				active[nactive++] = jt;
		}
		if (nactive == 0)
			break;

		/* One step of each; drop the tables that finished. */
		for (i = 0; i < nactive;)
		{
			if (job_table_step(job, active[i]))
				i++;
			else
			{
				memmove(&active[i], &active[i + 1], sizeof(JobTable *) * (nactive - i - 1));
				nactive--;
			}
			job_note_acks(job, active, nactive);
		}
	}

	if (strcmp(job->migration_type, "full-load") != 0)
		job_cdc_run(job);		/* returns only by an ERROR or exit */

	task_worker_set_phase("full load finished");
	worker_xact_begin();
	job_write_progress(job);
	worker_xact_end(job_cxt);
	{
		json_t	   *stats = kinesis_shipper_stats_json(job->shipper);
		/* only for the log line: a value that cannot be encoded is left out */
		char	   *text = stats != NULL ? json_dumps(stats, JSON_COMPACT) : NULL;

		dms_stream_log(LOG,
				(errmsg("dms_stream task \"%s\": full load sent; S3 reads %.0f ms, Kinesis batcher %s",
						job->task_name, job->s3_ms, text ? text : "{}")));
		if (text)
			pfree(text);		/* jansson allocates with palloc */
		json_decref(stats);
	}
	kinesis_shipper_stop(job->shipper);
}
