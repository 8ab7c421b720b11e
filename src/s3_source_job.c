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
#include "mapping.h"
#include "s3.h"
#include "s3_source_job.h"
#include "task_worker.h"

/* Bytes fetched per ranged GET. */
#define JOB_CHUNK_BYTES			(4 * 1024 * 1024)

/* Least time between two periodic checkpoints. */
#define JOB_CHECKPOINT_INTERVAL_MS	1000

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
	char	   *previous;		/* last chunk fed (the reader may use it) */
} JobTable;

/* What the ring remembers of a queued record. */
typedef struct JobRingEntry
{
	JobTable   *table;
	JobPosition pos;			/* where the record ends */
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
	KinesisBatcher *batcher;
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

	MemoryContext row_cxt;		/* reset per row */
	StringInfoData values;		/* rendered column values of a row */
	StringInfoData message;
	StringInfoData key;
	DmsColumnValue *column_values;	/* one per column of the widest table */

	S3SourceJobResult *result;
} Job;

/*
 * job_exec
 *		Run a statement through SPI with text parameters (NULL for SQL NULL);
 *		returns the first column of the first row, or NULL.
 */
static char *
job_exec(const char *sql, int nargs, const char **params, int expected)
{
	Oid			types[12];
	Datum		values[12];
	char		nulls[12];
	int			i;
	int			rc;

	Assert(nargs <= 12);
	for (i = 0; i < nargs; i++)
	{
		types[i] = TEXTOID;
		values[i] = params[i] ? CStringGetTextDatum(params[i]) : (Datum) 0;
		nulls[i] = params[i] ? ' ' : 'n';
	}
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "dms_stream full load: SPI_execute_with_args failed (%d) for: %s", rc, sql);
	if (SPI_processed > 0 && SPI_tuptable != NULL)
		return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return NULL;
}

/*
 * job_xact_begin / job_xact_end
 *		A short transaction with SPI; the caller's memory context is kept.
 */
static void
job_xact_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
job_xact_end(MemoryContext keep)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(keep);
	pgstat_report_stat(false);
}

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

	job_xact_begin();
	job_exec("SELECT t.source_endpoint, t.target_endpoint, t.table_mappings, t.start_type,"
			 "       t.task_settings #>> '{TargetMetadata,ParallelLoadThreads}',"
			 "       t.task_settings #>> '{TargetMetadata,ParallelLoadBufferSize}',"
			 "       t.task_settings #>> '{TargetMetadata,LobMaxSize}',"
			 "       t.task_settings #>> '{ErrorBehavior,DataErrorPolicy}',"
			 "       t.task_settings #>> '{ErrorBehavior,DataTruncationErrorPolicy}',"
			 "       CASE jsonb_typeof(e.settings -> 'ExternalTableDefinition')"
			 "            WHEN 'string' THEN e.settings ->> 'ExternalTableDefinition'"
			 "            ELSE (e.settings -> 'ExternalTableDefinition')::text END,"
			 "       t.task_settings,"
			 "       t.task_settings #>> '{FullLoadSettings,MaxFullLoadSubTasks}'"
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
	job_exec("SELECT schema_name, table_name, file_key, next_offset, next_line,"
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
	job_xact_end(job_cxt);

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
	opts.max_buffered_records = per_request * opts.max_in_flight * 2;
	job->batcher = kinesis_batcher_create(job->kinesis, &opts);
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
	return rows;
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
	job_exec("UPDATE dms_stream.task_progress"
			 "   SET phase = $2, bytes_total = $3::bigint, bytes_done = $4::bigint,"
			 "       rows_sent = $5::bigint, rows_per_second = $6::double precision,"
			 "       updated_at = now()"
			 " WHERE task_name = $1",
			 6, params, SPI_OK_UPDATE);
	params[0] = job_int64_text(job->run_id);
	job_exec("UPDATE dms_stream.run_history SET rows_processed = $2::bigint"
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
	job_exec("INSERT INTO dms_stream.task_checkpoint AS c"
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
	job_exec(finished ?
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
			params[1] = jt->plan->target_table ? jt->plan->target_table : jt->et->name;
			params[2] = jt->et->owner;
			params[3] = jt->et->name;
			params[4] = job_file_uri(job, jt, ex->file);
			params[5] = job_int64_text(ex->line);
			params[6] = ex->column > 0 ? psprintf("%d", ex->column) : NULL;
			params[7] = ex->code;
			params[8] = ex->reason;
			params[9] = ex->raw;
			job_exec("INSERT INTO dms_stream.apply_exceptions"
					 "       (task_name, target_table_name, table_owner, table_name, source_uri,"
					 "        line_number, column_number, error_code, error, raw_data)"
					 " VALUES ($1, $2, $3, $4, $5, $6::bigint, $7::integer, $8, $9, $10)",
					 10, params, SPI_OK_INSERT);
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

	job_xact_begin();
	job_write_exceptions(job, jt, pos);
	jt->committed = *pos;
	job_write_table(job, jt, state);
	job_write_progress(job);
	job_xact_end(cxt);
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
 *		position moved, once the interval has passed since their last one.
 */
static void
job_note_acks(Job *job, JobTable **active, int nactive)
{
	uint64		tag;
	int			i;

	if (kinesis_batcher_acked_through(job->batcher, &tag) && tag > job->acked_tag)
	{
		uint64		t;

		for (t = job->acked_tag + 1; t <= tag; t++)
		{
			JobRingEntry *e = &job->ring[t % job->ring_size];

			e->table->acked = e->pos;
		}
		job->acked_tag = tag;
	}
	for (i = 0; i < nactive; i++)
	{
		JobTable   *jt = active[i];

		if (job_position_after(&jt->acked, &jt->committed) &&
			TimestampDifferenceExceeds(jt->last_checkpoint, GetCurrentTimestamp(),
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
	kinesis_batcher_flush(job->batcher);
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
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("bad row in %s line %lld%s: %s",
							job_file_uri(job, jt, file), (long long) rec->start.line,
							column > 0 ? psprintf(" column %d", column) : "", reason),
					 errdetail("%s is STOP_TASK, so the task stopped at this row.",
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
 * job_event_id
 *		The stable event id of a record: a 64-bit hash of the file's key and
 *		the line where the record starts.
 */
static char *
job_event_id(JobTable *jt, int file, int64 line)
{
	const char *key = jt->files[file].key;
	uint64		hash = hash_bytes_extended((const unsigned char *) key, strlen(key), 0);

	return psprintf("%016llx:%lld", (unsigned long long) hash, (long long) line);
}

/*
 * job_row
 *		One CSV record of table jt.  Returns false when the table must stop
 *		(SUSPEND_TABLE).
 */
static bool
job_row(Job *job, JobTable *jt, CsvResult res, CsvRecord *rec)
{
	const ExternalTable *et = jt->et;
	int			file = jt->file;
	DmsRow		row;
	DmsRowError rerr;
	DmsValueResult vres;
	int			truncated_column = 0;
	char		truncated_reason[DMS_VALUE_MESSAGE_SIZE + 64];
	int			c;
	int		   *starts;
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
	resetStringInfo(&job->values);
	starts = palloc(sizeof(int) * (et->ncolumns + 1));
	truncated_reason[0] = '\0';
	for (c = 0; c < et->ncolumns; c++)
	{
		const CsvField *f = &row.columns[c];
		DmsColumnValue *v = &job->column_values[c];

		starts[c] = job->values.len;
		if (!dms_value_render(&et->columns[c], f->data, f->len, f->quoted,
							  &job->value_options, &job->values, &vres))
		{
			if (vres.error_class == DMS_VALUE_DATA_ERROR)
				return job_reject(job, jt, file, rec, row.first_field + c, "bad_value",
								  psprintf("column %s: %s", et->columns[c].name, vres.message),
								  false);
			if (truncated_column == 0)
			{
				truncated_column = row.first_field + c;
				snprintf(truncated_reason, sizeof(truncated_reason), "column %s: %s",
						 et->columns[c].name, vres.message);
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
		return job_reject(job, jt, file, rec, truncated_column, "truncated",
						  truncated_reason, true);

	if (!mapping_row_passes(jt->plan, job->column_values))
		return true;

	/* The message. */
	memset(&change, 0, sizeof(change));
	change.operation = DMS_OP_LOAD;
	change.values = job->column_values;
	change.event_id = job_event_id(jt, file, rec->start.line);
	change.timestamp = GetCurrentTimestamp();
	dms_message_build(jt->writer, &change, &job->message, &job->key);

	tag = job->next_tag + 1;
	entry = &job->ring[tag % job->ring_size];
	entry->table = jt;
	entry->pos.file = file;
	entry->pos.offset = rec->end.offset;
	entry->pos.line = rec->end.line;
	entry->pos.rows = jt->queued.rows + 1;
	status = kinesis_batcher_add(job->batcher, job->message.data, job->message.len,
								 job->key.data, NULL, tag, &problem);
	if (status != KINESIS_RECORD_OK)
		return job_reject(job, jt, file, rec, 0, "record_refused",
						  problem ? problem : "Kinesis would refuse this record", false);
	job->next_tag = tag;
	jt->queued.rows++;

	/* Keep the ring ahead of the oldest unacknowledged record. */
	if (job->next_tag - job->acked_tag >= (uint64) job->ring_size - 8)
		kinesis_batcher_flush(job->batcher);
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
	if (jt->reader)
		csv_reader_free(jt->reader);
	if (jt->previous)
		pfree(jt->previous);
	jt->reader = NULL;
	jt->previous = NULL;
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
			ereport(dms_stream_log_min_messages,
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
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}

	if (jt->offset < f->size)
	{
		size_t		len;
		char	   *data;
		int64		end = Min(jt->offset + JOB_CHUNK_BYTES, f->size) - 1;

		data = s3_get_object(job->source, job->bucket, f->key, jt->offset, end, &len);
		if (len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("s3://%s/%s ended at byte %lld, before its listed size %lld",
							job->bucket, f->key, (long long) jt->offset, (long long) f->size)));
		csv_reader_feed(jt->reader, data, len);
		if (jt->previous)
			pfree(jt->previous);
		jt->previous = data;
		jt->offset += len;
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
	job_list_files(job);

	for (t = 0; t < job->def->ntables; t++)
		max_columns = Max(max_columns, job->def->tables[t].ncolumns);
	job->column_values = palloc0(sizeof(DmsColumnValue) * max_columns);
	initStringInfo(&job->values);
	initStringInfo(&job->message);
	initStringInfo(&job->key);
	job->row_cxt = AllocSetContextCreate(job_cxt, "dms_stream row", ALLOCSET_SMALL_SIZES);
	active = palloc0(sizeof(JobTable *) * Max(job->ntables, 1));

	for (;;)
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

	task_worker_set_phase("full load finished");
	job_xact_begin();
	job_write_progress(job);
	job_xact_end(job_cxt);
	kinesis_batcher_destroy(job->batcher);
}
