/*-------------------------------------------------------------------------
 *
 * delta_load.c
 *	  The delta-load run procedures (see delta_load.h for the steps) and
 *	  dms_stream.delta_load_query, the query a run would execute.
 *
 * Transactions: the procedures are called non-atomically (CALL outside a
 * transaction block) and commit between the steps with SPI_commit.  Each
 * step runs in an internal subtransaction so that an error leaves a usable
 * top-level transaction in which the failure is recorded, as a PL/pgSQL
 * exception block would.  The upload step runs in a transaction that has
 * taken no snapshot, has no xid and holds no relation lock: only the
 * target's session advisory lock is held across network I/O.
 *
 * Memory: a run allocates in a context of its own under PortalContext
 * (which survives the commits of a CALL); spool files are temporary
 * BufFiles opened across transactions and closed when the run ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"		/* first: it wraps utils/builtins.h */

#include "access/htup_details.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgtime.h"
#include "storage/buffile.h"
#include "tcop/pquery.h"
#include "utils/datum.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "delta_load.h"
#include "error_public.h"
#include "endpoint.h"
#include "parquet.h"
#include "s3.h"

/* utils/json.h clashes with jansson's json_object; this is all we need of it. */
extern void escape_json(StringInfo buf, const char *str);

PG_FUNCTION_INFO_V1(dms_run_delta_load);
PG_FUNCTION_INFO_V1(dms_run_delta_loads);
PG_FUNCTION_INFO_V1(dms_delta_load_query);

#define DELTA_DEFAULT_FETCH_ROWS		10000
#define DELTA_DEFAULT_MAX_FILE_KB		1048576 /* 1 GB, as DMS */
#define DELTA_COPY_BUFFER				(1024 * 1024)
#define DELTA_PARQUET_CONTENT_TYPE		"application/vnd.apache.parquet"

/* One spooled Parquet file. */
typedef struct DeltaFile
{
	BufFile    *buf;
	int64		number;			/* the 8 hex digits after LOAD */
	int64		rows;
	int64		bytes;
	char	   *key;			/* full object key */
} DeltaFile;

/* Everything about one run. */
typedef struct DeltaRun
{
	MemoryContext cxt;
	const char *target;

	/* controller row, read at claim */
	char	   *schema;
	char	   *table;
	char	   *filter_column;
	char	   *op;
	char	   *start_value;
	char	   *end_value;
	char	   *prefix;
	char	   *endpoint_name;
	char	   *watermark;
	int64		next_file_number;
	char	   *late_snapshot;
	int32		lock_key;
	char	   *task_settings;
	char	   *prev_status;
	char	   *fingerprint;	/* the row's configuration and state */

	/* options */
	ParquetWriterOptions parquet;
	int64		max_file_bytes;
	int64		max_file_rows;
	int			fetch_rows;
	int64		part_bytes;
	char	   *folder;			/* full key prefix of the table's files,
								 * ending in '/' */
	char	   *file_folder;	/* folder + date partition */

	/* state */
	bool		locked;
	bool		busy;			/* another session runs this target */
	int			busy_pid;
	int64		run_id;
	TimestampTz started;
	MemoryContext errcxt;		/* where run->error is allocated */
	DmsEndpoint *ep;
	const char *bucket;
	List	   *files;			/* of DeltaFile * */
	List	   *uploaded;		/* of char * (keys): every object this run
								 * may have written, from before its upload
								 * starts (an unknown outcome counts) */
	int64		rows;
	int64		bytes;
	int64		stale_deleted;
	int64		stale_uploads_aborted;
	char	   *new_watermark;
	char	   *new_late_snapshot;
	char	   *late_note;
	bool		late_branch;
	ErrorData  *error;
	const char *phase;
	int64		extract_ms;		/* step durations, for the history */
	int64		upload_ms;
} DeltaRun;

typedef void (*DeltaStep) (DeltaRun *run);

/* ---------------------------------------------------------------- SPI helpers */

/*
 * spi_exec
 *		Run sql with its parameters through SPI (read-write, no row limit);
 *		an ERROR if the result code is not expect.
 */
static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expect)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (ret != expect)
		elog(ERROR, "SPI_execute_with_args failed (%d): %s", ret, sql);
}

/*
 * spi_value
 *		Text of column col (1-based) of row row of the last SPI result; NULL
 *		for a null.
 */
static char *
spi_value(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * text_datum
 *		A text Datum of s, or (Datum) 0 for NULL (the caller passes the null
 *		flag).
 */
static Datum
text_datum(const char *s)
{
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* ---------------------------------------------------------------- locks */

/*
 * delta_lock_tag
 *		Fill tag with a run's advisory lock: database, DELTA_LOCK_CLASSID
 *		and key, in the two-key space that pg_advisory_lock(int4, int4)
 *		uses.
 */
static void
delta_lock_tag(LOCKTAG *tag, int32 key)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) DELTA_LOCK_CLASSID, (uint32) key, 2);
}

/*
 * delta_unlock
 *		Release the run's session advisory lock, if it holds it.
 */
static void
delta_unlock(DeltaRun *run)
{
	LOCKTAG		tag;

	if (!run->locked)
		return;
	delta_lock_tag(&tag, run->lock_key);
	LockRelease(&tag, ExclusiveLock, true);
	run->locked = false;
}

/* ---------------------------------------------------------------- options */

/*
 * json_section
 *		The object member name of root; NULL if root is NULL or the member
 *		is missing or not an object.
 */
static json_t *
json_section(json_t *root, const char *name)
{
	json_t	   *s = root ? json_object_get(root, name) : NULL;

	return (s && json_is_object(s)) ? s : NULL;
}

/*
 * int_option / str_option / bool_option
 *		DeltaLoadSettings key, else the endpoint's S3Settings key, else dflt.
 */
static int64
int_option(json_t *delta, json_t *ep, const char *key, int64 dflt)
{
	DmsJsonDoc	doc = {"delta load settings"};
	int64		v;

	if (delta && dms_json_get_int(&doc, delta, "DeltaLoadSettings", key, false, PG_INT64_MIN, PG_INT64_MAX, &v))
		return v;
	if (ep && dms_json_get_int(&doc, ep, "", key, false, PG_INT64_MIN, PG_INT64_MAX, &v))
		return v;
	return dflt;
}

static const char *
str_option(json_t *delta, json_t *ep, const char *key, const char *dflt)
{
	json_t	   *v = delta ? json_object_get(delta, key) : NULL;

	if (v && json_is_string(v))
		return json_string_value(v);
	v = ep ? json_object_get(ep, key) : NULL;
	if (v && json_is_string(v))
		return json_string_value(v);
	return dflt;
}

static bool
bool_option(json_t *delta, json_t *ep, const char *key, bool dflt)
{
	DmsJsonDoc	doc = {"delta load settings"};
	bool		v;

	if (delta && dms_json_get_bool(&doc, delta, "DeltaLoadSettings", key, false, false, &v))
		return v;
	if (ep && dms_json_get_bool(&doc, ep, "", key, false, false, &v))
		return v;
	return dflt;
}

/*
 * date_folder
 *		The DMS date partition folder of time t (UTC).
 */
static char *
date_folder(TimestampTz t, const char *sequence, const char *delimiter)
{
	struct pg_tm tm;
	fsec_t		fsec;
	const char *d;
	char		y[8],
				m[4],
				dd[4],
				h[4];

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "timestamp out of range");
	if (pg_strcasecmp(delimiter, "UNDERSCORE") == 0)
		d = "_";
	else if (pg_strcasecmp(delimiter, "DASH") == 0)
		d = "-";
	else if (pg_strcasecmp(delimiter, "NONE") == 0)
		d = "";
	else
		d = "/";
	snprintf(y, sizeof(y), "%04d", tm.tm_year);
	snprintf(m, sizeof(m), "%02d", tm.tm_mon);
	snprintf(dd, sizeof(dd), "%02d", tm.tm_mday);
	snprintf(h, sizeof(h), "%02d", tm.tm_hour);
	if (pg_strcasecmp(sequence, "YYYYMMDDHH") == 0)
		return psprintf("%s%s%s%s%s%s%s", y, d, m, d, dd, d, h);
	if (pg_strcasecmp(sequence, "YYYYMM") == 0)
		return psprintf("%s%s%s", y, d, m);
	if (pg_strcasecmp(sequence, "MMYYYYDD") == 0)
		return psprintf("%s%s%s%s%s", m, d, y, d, dd);
	if (pg_strcasecmp(sequence, "DDMMYYYY") == 0)
		return psprintf("%s%s%s%s%s", dd, d, m, d, y);
	return psprintf("%s%s%s%s%s", y, d, m, d, dd);
}

/*
 * resolve_options
 *		Parquet and file options from the controller's DeltaLoadSettings and
 *		the endpoint's S3Settings; the folder of the table's files.
 */
static void
resolve_options(DeltaRun *run, TimestampTz started)
{
	DmsJsonDoc	doc = {"replication_task_settings"};
	json_t	   *root = dms_json_parse(&doc, run->task_settings, strlen(run->task_settings));
	json_t	   *delta = json_section(root, "DeltaLoadSettings");
	json_t	   *eps = run->ep->settings;
	const char *codec = str_option(delta, eps, "CompressionType", "snappy");
	const char *encoding = str_option(delta, eps, "EncodingType", "rle-dictionary");
	StringInfoData rel;
	char	   *prefix;
	size_t		len;

	parquet_writer_default_options(&run->parquet);
	if (!parquet_codec_parse(codec, &run->parquet.codec))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown CompressionType \"%s\"", codec)));
	run->parquet.compression_level = (int) int_option(delta, NULL, "CompressionLevel", 0);
	run->parquet.row_group_rows = int_option(delta, eps, "RowGroupLength", run->parquet.row_group_rows);
	run->parquet.row_group_bytes = int_option(delta, NULL, "RowGroupSizeMB",
											  run->parquet.row_group_bytes / (1024 * 1024)) * 1024 * 1024;
	run->parquet.page_bytes = int_option(delta, eps, "DataPageSize", run->parquet.page_bytes);
	run->parquet.dictionary_bytes = int_option(delta, eps, "DictPageSizeLimit", run->parquet.dictionary_bytes);
	run->parquet.dictionary = pg_strcasecmp(encoding, "plain") != 0;
	run->parquet.created_by = "dms_stream version " DMS_STREAM_VERSION;
	run->max_file_bytes = int_option(delta, eps, "MaxFileSize", DELTA_DEFAULT_MAX_FILE_KB) * 1024;
	run->max_file_rows = int_option(delta, NULL, "MaxFileRows", 0);
	run->fetch_rows = (int) int_option(delta, NULL, "FetchRows", DELTA_DEFAULT_FETCH_ROWS);
	run->part_bytes = int_option(delta, NULL, "UploadPartSizeMB", S3_DEFAULT_PART_BYTES / (1024 * 1024)) * 1024 * 1024;

	/* [BucketFolder/][prefix/]schema/table/, from checked segments only */
	s3_check_key_segments("output_s3_prefix", run->prefix, 0);
	s3_check_key_segments("source_schema", run->schema, 0);
	s3_check_key_segments("target_table_name", run->target, 0);
	prefix = pstrdup(run->prefix);
	len = strlen(prefix);
	while (len > 0 && prefix[len - 1] == '/')
		prefix[--len] = '\0';
	initStringInfo(&rel);
	if (len > 0)
		appendStringInfo(&rel, "%s/", prefix);
	appendStringInfo(&rel, "%s/%s/", run->schema, run->target);
	s3_check_key_segments("the delta load folder", rel.data, 0);
	run->folder = s3_folder_key(run->ep, rel.data);
	if (bool_option(delta, eps, "DatePartitionEnabled", false))
		run->file_folder = psprintf("%s%s/", run->folder,
									date_folder(started,
												str_option(delta, eps, "DatePartitionSequence", "YYYYMMDD"),
												str_option(delta, eps, "DatePartitionDelimiter", "SLASH")));
	else
		run->file_folder = run->folder;
}

/* ---------------------------------------------------------------- steps */

#define CONTROLLER_FINGERPRINT \
	"(source_schema, source_table, filter_column, filter_operator, start_value, end_value," \
	" output_s3_prefix, target_endpoint, watermark, next_file_number, late_row_snapshot)::text"

/*
 * step_claim
 *		Lock the target, read its controller row, start the history row.
 */
static void
step_claim(DeltaRun *run)
{
	Oid			types[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum		values[3];
	LOCKTAG		tag;
	MemoryContext old;
	TimestampTz started = GetCurrentTimestamp();

	values[0] = CStringGetTextDatum(run->target);
	spi_exec("SELECT run_lock_key FROM dms_stream.delta_load_controller WHERE target_table_name = $1",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("delta load \"%s\" does not exist", run->target),
				 errhint("See SELECT target_table_name FROM dms_stream.delta_load_controller.")));
	run->lock_key = pg_strtoint32(spi_value(0, 1));

	delta_lock_tag(&tag, run->lock_key);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		Oid			t2[2] = {INT8OID, INT8OID};
		Datum		v2[2] = {Int64GetDatum(DELTA_LOCK_CLASSID), Int64GetDatum(run->lock_key)};

		spi_exec("SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted"
				 " AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())"
				 " AND classid = $1::pg_catalog.oid AND objid = $2::pg_catalog.oid AND objsubid = 2",
				 2, t2, v2, NULL, SPI_OK_SELECT);
		run->busy = true;
		run->busy_pid = SPI_processed > 0 ? pg_strtoint32(spi_value(0, 1)) : 0;
		return;
	}
	run->locked = true;

	/* Read the row under the lock: a run that just finished has committed. */
	spi_exec("SELECT source_schema, source_table, filter_column, filter_operator, start_value, end_value,"
			 "       output_s3_prefix, target_endpoint, watermark, next_file_number,"
			 "       late_row_snapshot::text, replication_task_settings::text, last_status, "
			 CONTROLLER_FINGERPRINT
			 "  FROM dms_stream.delta_load_controller WHERE target_table_name = $1",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("delta load \"%s\" does not exist", run->target)));
	old = MemoryContextSwitchTo(run->cxt);
	run->schema = spi_value(0, 1);
	run->table = spi_value(0, 2);
	run->filter_column = spi_value(0, 3);
	run->op = spi_value(0, 4);
	run->start_value = spi_value(0, 5);
	run->end_value = spi_value(0, 6);
	run->prefix = spi_value(0, 7);
	run->endpoint_name = spi_value(0, 8);
	run->watermark = spi_value(0, 9);
	run->next_file_number = pg_strtoint64(spi_value(0, 10));
	run->late_snapshot = spi_value(0, 11);
	run->task_settings = spi_value(0, 12);
	run->prev_status = spi_value(0, 13);
	run->fingerprint = spi_value(0, 14);
	MemoryContextSwitchTo(old);

	/* A run that left 'running' behind ended with its session. */
	if (run->prev_status && strcmp(run->prev_status, "running") == 0)
		spi_exec("UPDATE dms_stream.run_history SET status = 'failed', finished_at = pg_catalog.now(),"
				 "       message = 'abandoned: the session running it ended before it finished'"
				 " WHERE run_kind = 'delta' AND target_table_name = $1 AND status = 'running'",
				 1, types, values, NULL, SPI_OK_UPDATE);

	values[1] = Int64GetDatum(run->next_file_number);
	values[2] = text_datum(run->watermark);
	spi_exec("INSERT INTO dms_stream.run_history (run_kind, target_table_name, details)"
			 " VALUES ('delta', $1, pg_catalog.jsonb_build_object('first_file_number', $2,"
			 "         'watermark_before', $3, 'backend_pid', pg_catalog.pg_backend_pid()))"
			 " RETURNING run_id",
			 3, types, values, run->watermark ? "   " : "  n", SPI_OK_INSERT_RETURNING);
	run->run_id = pg_strtoint64(spi_value(0, 1));
	{
		Oid			t2[2] = {TEXTOID, INT8OID};
		Datum		v2[2] = {values[0], Int64GetDatum(run->run_id)};

		spi_exec("UPDATE dms_stream.delta_load_controller"
				 "   SET last_status = 'running', last_run_at = pg_catalog.now(), last_error = NULL, last_run_id = $2"
				 " WHERE target_table_name = $1",
				 2, t2, v2, NULL, SPI_OK_UPDATE);
	}
	run->started = started;
}

/*
 * spool_sink
 *		ParquetSink of a delta file: append the bytes to the file's
 *		temporary BufFile and count them.
 */
static void
spool_sink(void *arg, const void *data, size_t len)
{
	DeltaFile  *f = (DeltaFile *) arg;

	BufFileWrite(f->buf, (void *) data, len);
	f->bytes += len;
}

/*
 * new_spool_file
 *		Start the run's next file: a temporary BufFile, its file number
 *		(next_file_number plus the files so far) and its S3 key
 *		LOAD<8 hex digits>.parquet, allocated in the run's context and appended to
 *		run->files.  An ERROR once the numbers pass LOADFFFFFFFF.
 */
static DeltaFile *
new_spool_file(DeltaRun *run)
{
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	DeltaFile  *f = palloc0(sizeof(DeltaFile));

	f->buf = BufFileCreateTemp(true);
	f->number = run->next_file_number + list_length(run->files);
	if (f->number > (int64) PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("delta load \"%s\" reached the last file number LOADFFFFFFFF", run->target)));
	f->key = psprintf("%sLOAD%08X.parquet", run->file_folder, (uint32) f->number);
	run->files = lappend(run->files, f);
	MemoryContextSwitchTo(old);
	return f;
}

/*
 * The receiver of the extract's cursor: each row goes straight from the
 * executor's slot to the Parquet writer (no copy into a tuple table), and
 * files roll over between rows.
 */
typedef struct DeltaReceiver
{
	DestReceiver pub;
	DeltaRun   *run;
	int			filter_index;
	MemoryContext writer_cxt;	/* the current writer's parent */
	MemoryContext last_cxt;		/* the last row's filter value */
	ParquetWriter *writer;
	DeltaFile  *file;
	TupleDesc	desc;
	Datum		last;
	bool		have_last;
} DeltaReceiver;

/*
 * delta_file_finish
 *		Finish the receiver's open Parquet file, if any: write its footer,
 *		destroy the writer and reset its memory context, so that the next
 *		row starts a new file.
 */
static void
delta_file_finish(DeltaReceiver *r)
{
	if (r->writer == NULL)
		return;
	parquet_writer_finish(r->writer);
	parquet_writer_destroy(r->writer);
	MemoryContextReset(r->writer_cxt);
	r->writer = NULL;
}

/*
 * delta_receive
 *		receiveSlot of the extract: add the slot's row to the current
 *		Parquet writer (starting a spool file and writer when none is open),
 *		keep a copy of the row's filter value as the new watermark
 *		candidate, and finish the file when it reaches the row limit or
 *		(checked every 128 rows) the byte limit.
 */
static bool
delta_receive(TupleTableSlot *slot, DestReceiver *self)
{
	DeltaReceiver *r = (DeltaReceiver *) self;
	DeltaRun   *run = r->run;
	Form_pg_attribute fatt;

	slot_getallattrs(slot);
	if (r->writer == NULL)
	{
		MemoryContext old;

		if (r->desc == NULL)
		{
			old = MemoryContextSwitchTo(run->cxt);
			r->desc = CreateTupleDescCopy(slot->tts_tupleDescriptor);
			MemoryContextSwitchTo(old);
		}
		r->file = new_spool_file(run);
		old = MemoryContextSwitchTo(r->writer_cxt);
		r->writer = parquet_writer_create(r->desc, &run->parquet, spool_sink, r->file);
		MemoryContextSwitchTo(old);
	}
	parquet_writer_add_row(r->writer, slot->tts_values, slot->tts_isnull);
	r->file->rows++;
	run->rows++;

	/* keep the last row's filter value: rows come in filter order */
	fatt = TupleDescAttr(r->desc, r->filter_index);
	r->have_last = !slot->tts_isnull[r->filter_index];
	if (r->have_last)
	{
		if (fatt->attbyval)
			r->last = slot->tts_values[r->filter_index];
		else
		{
			MemoryContext old;

			MemoryContextReset(r->last_cxt);
			old = MemoryContextSwitchTo(r->last_cxt);
			r->last = datumCopy(slot->tts_values[r->filter_index], false, fatt->attlen);
			MemoryContextSwitchTo(old);
		}
	}

	/* the size estimate sums over columns: look every 128 rows */
	if ((run->max_file_rows > 0 && r->file->rows >= run->max_file_rows) ||
		((r->file->rows & 127) == 0 &&
		 parquet_writer_estimated_bytes(r->writer) >= run->max_file_bytes))
		delta_file_finish(r);
	return true;
}

/*
 * delta_receiver_startup
 *		rStartup of the extract's receiver: nothing to do, the writer starts
 *		with the first row.
 */
static void
delta_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

/*
 * delta_receiver_noop
 *		rShutdown and rDestroy of the extract's receiver: nothing to do, the
 *		run finishes and frees the files itself.
 */
static void
delta_receiver_noop(DestReceiver *self)
{
}

/*
 * step_extract
 *		One snapshot: the query through a cursor into spool files.
 */
static void
step_extract(DeltaRun *run)
{
	DeltaSource src = {run->schema, run->table, run->filter_column, run->op,
	run->start_value, run->end_value, run->watermark, run->late_snapshot};
	DeltaQuery *q;
	Portal		portal;
	DeltaReceiver *r;
	MemoryContext old;

	old = MemoryContextSwitchTo(run->cxt);
	run->ep = dms_endpoint_load(run->endpoint_name);
	run->bucket = s3_endpoint_bucket(run->ep);
	resolve_options(run, run->started);
	MemoryContextSwitchTo(old);

	/* The snapshot first: the late-row parameters are relative to it. */
	PushActiveSnapshot(GetTransactionSnapshot());
	q = delta_query_build(&src);
	old = MemoryContextSwitchTo(run->cxt);
	run->late_branch = q->late_branch;
	run->late_note = q->late_note ? pstrdup(q->late_note) : NULL;
	run->new_late_snapshot = delta_late_snapshot(GetActiveSnapshot(), strcmp(run->op, "null") == 0);
	r = palloc0(sizeof(DeltaReceiver));
	r->pub.receiveSlot = delta_receive;
	r->pub.rStartup = delta_receiver_startup;
	r->pub.rShutdown = delta_receiver_noop;
	r->pub.rDestroy = delta_receiver_noop;
	r->pub.mydest = DestNone;
	r->run = run;
	r->filter_index = q->filter_index;
	r->writer_cxt = AllocSetContextCreate(run->cxt, "delta load writer", ALLOCSET_DEFAULT_SIZES);
	r->last_cxt = AllocSetContextCreate(run->cxt, "delta load last value", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(old);
	if (q->late_note)
		ereport(WARNING,
				(errmsg("delta load \"%s\": late rows cannot be checked", run->target),
				 errdetail("%s", q->late_note)));

	/*
	 * A cursor on the active snapshot (read only), fetched FetchRows rows at
	 * a time into the receiver.
	 */
	portal = SPI_cursor_open_with_args(NULL, q->sql, q->nparams, q->param_types,
									   q->param_values, q->param_nulls, true,
									   CURSOR_OPT_NO_SCROLL);
	while (PortalRunFetch(portal, FETCH_FORWARD, run->fetch_rows, (DestReceiver *) r) > 0)
		CHECK_FOR_INTERRUPTS();
	SPI_cursor_close(portal);
	delta_file_finish(r);

	/* The new watermark: the last row's filter value if above the old one. */
	run->new_watermark = run->watermark;
	if (r->have_last && strcmp(run->op, "null") != 0)
	{
		bool		above = true;

		if (run->watermark)
		{
			Oid			typinput;
			Oid			typioparam;
			Datum		w;

			getTypeInputInfo(q->filter_type, &typinput, &typioparam);
			w = OidInputFunctionCall(typinput, run->watermark, typioparam,
									 TupleDescAttr(r->desc, q->filter_index)->atttypmod);
			above = DatumGetInt32(OidFunctionCall2Coll(q->order_proc, q->filter_collation,
													   r->last, w)) > 0;
		}
		if (above)
		{
			Oid			typout;
			bool		varlena;

			getTypeOutputInfo(q->filter_type, &typout, &varlena);
			run->new_watermark = MemoryContextStrdup(run->cxt, OidOutputFunctionCall(typout, r->last));
		}
	}
	{
		ListCell   *lc;

		run->bytes = 0;
		foreach(lc, run->files)
			run->bytes += ((DeltaFile *) lfirst(lc))->bytes;
	}
	MemoryContextDelete(r->writer_cxt);
	MemoryContextDelete(r->last_cxt);
	PopActiveSnapshot();
}

/*
 * is_stale_key
 *		True if key names a file of this table (LOAD, 8 hex digits, .parquet)
 *		numbered at or above next_file_number: no committed run wrote it.
 */
static bool
is_stale_key(DeltaRun *run, const char *key)
{
	const char *base = strrchr(key, '/');
	unsigned int n;
	char		tail;

	base = base ? base + 1 : key;
	return sscanf(base, "LOAD%8X.parque%c", &n, &tail) == 2 && tail == 't' &&
		strlen(base) == strlen("LOAD00000000.parquet") &&
		(int64) n >= run->next_file_number;
}

/*
 * cleanup_request
 *		Delete key (upload_id NULL) or abort its incomplete multipart upload
 *		upload_id, as part of cleaning up after a failed run.  A failure is a
 *		WARNING with hint (what removes the leftover later); a cancel is
 *		re-raised.  True if the request succeeded.
 */
static bool
cleanup_request(DeltaRun *run, const char *key, const char *upload_id, const char *hint)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		if (upload_id)
			s3_abort_multipart_upload(run->ep, run->bucket, key, upload_id);
		else
			s3_delete_object(run->ep, run->bucket, key);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		if (e->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		FlushErrorState();
		ereport(WARNING,
				(errcode(e->sqlerrcode),
				 upload_id ?
				 errmsg("delta load \"%s\" could not abort the incomplete upload %s of s3://%s/%s",
						run->target, upload_id, run->bucket, key) :
				 errmsg("delta load \"%s\" could not remove s3://%s/%s of its failed run",
						run->target, run->bucket, key),
				 errdetail("%s", e->message),
				 errhint("%s", hint)));
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * abort_stale_upload
 *		AbortMultipartUpload of a failed run's leftover upload (an incomplete
 *		upload is not visible as an object).  True if it was aborted.
 */
static bool
abort_stale_upload(DeltaRun *run, S3MultipartUpload *u)
{
	return cleanup_request(run, u->key, u->upload_id,
						   "A bucket lifecycle rule with AbortIncompleteMultipartUpload removes such uploads.");
}

/*
 * delete_stale_objects
 *		Objects of this table numbered at or above next_file_number, and
 *		incomplete multipart uploads of such keys, were left by a failed or
 *		crashed run (only one run of a target is ever under way): remove
 *		them before uploading.  A server without ListMultipartUploads only
 *		has its objects swept.
 */
static void
delete_stale_objects(DeltaRun *run)
{
	List	   *objects = s3_list_objects(run->ep, run->bucket, run->folder, NULL, 0, 0);
	List	   *uploads;
	bool		supported;
	ListCell   *lc;

	foreach(lc, objects)
	{
		S3Object   *o = (S3Object *) lfirst(lc);

		if (is_stale_key(run, o->key))
		{
			s3_delete_object(run->ep, run->bucket, o->key);
			run->stale_deleted++;
		}
	}
	uploads = s3_list_multipart_uploads(run->ep, run->bucket, run->folder, &supported);
	if (!supported)
		elog(DEBUG1, "dms_stream: delta load \"%s\": the server does not list multipart uploads",
			 run->target);
	foreach(lc, uploads)
	{
		S3MultipartUpload *u = (S3MultipartUpload *) lfirst(lc);

		if (is_stale_key(run, u->key) && abort_stale_upload(run, u))
			run->stale_uploads_aborted++;
	}
}

/*
 * step_upload
 *		The spool files to S3, with no snapshot held.
 */
static void
step_upload(DeltaRun *run)
{
	char	   *buf = MemoryContextAlloc(run->cxt, DELTA_COPY_BUFFER);
	ListCell   *lc;

	InvalidateCatalogSnapshot();
	if (run->prev_status && strcmp(run->prev_status, "succeeded") != 0)
		delete_stale_objects(run);

	foreach(lc, run->files)
	{
		DeltaFile  *f = (DeltaFile *) lfirst(lc);
		S3WriterOptions opts = {0};
		S3Writer   *w;
		size_t		n;
		MemoryContext old;

		opts.part_bytes = run->part_bytes;
		opts.size_hint = f->bytes;
		opts.content_type = DELTA_PARQUET_CONTENT_TYPE;
		if (BufFileSeek(f->buf, 0, 0, SEEK_SET) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not rewind delta load spool file: %m")));
		/*
		 * Listed before the first request: a PutObject or
		 * CompleteMultipartUpload whose answer is lost (a reset or timeout
		 * after the server stored the object) may have written it, so a
		 * failed run deletes it as well.
		 */
		old = MemoryContextSwitchTo(run->cxt);
		run->uploaded = lappend(run->uploaded, pstrdup(f->key));
		MemoryContextSwitchTo(old);
		w = s3_writer_open(run->ep, run->bucket, f->key, &opts);
		while ((n = BufFileRead(f->buf, buf, DELTA_COPY_BUFFER)) > 0)
		{
			s3_writer_write(w, buf, n);
			CHECK_FOR_INTERRUPTS();
		}
		(void) s3_writer_close(w);
	}
}

/*
 * json_str
 *		Append "key": value to the JSON object being built in s, with a
 *		separating comma unless it is the first member; a NULL value is
 *		written as null.
 */
static void
json_str(StringInfo s, const char *key, const char *value)
{
	appendStringInfo(s, "%s\"%s\": ", s->len > 1 ? ", " : "", key);
	if (value)
		escape_json(s, value);
	else
		appendStringInfoString(s, "null");
}

/*
 * run_payload
 *		The NOTIFY payload and history details of a finished run.
 */
static char *
run_payload(DeltaRun *run, const char *status, const char *error)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	json_str(&s, "target_table_name", run->target);
	appendStringInfo(&s, ", \"run_id\": " INT64_FORMAT, run->run_id);
	json_str(&s, "status", status);
	appendStringInfo(&s, ", \"rows\": " INT64_FORMAT ", \"bytes\": " INT64_FORMAT ", \"files\": %d",
					 run->rows, run->bytes, list_length(run->files));
	json_str(&s, "watermark_before", run->watermark);
	json_str(&s, "watermark", strcmp(status, "succeeded") == 0 ? run->new_watermark : run->watermark);
	if (run->files)
	{
		json_str(&s, "bucket", run->bucket);
		json_str(&s, "first_key", ((DeltaFile *) linitial(run->files))->key);
		json_str(&s, "last_key", ((DeltaFile *) llast(run->files))->key);
	}
	if (error)
	{
		json_str(&s, "phase", run->phase);
		/* keep NOTIFY payloads well under their 8000-byte limit */
		json_str(&s, "error", strlen(error) > 2000 ? psprintf("%.2000s...", error) : error);
	}
	appendStringInfoString(&s, "}");
	return s.data;
}

/*
 * run_details
 *		The details JSON of a run for dms_stream.run_history: first file
 *		number, watermarks before and after, late-row snapshots, stale
 *		objects deleted, step durations, the bucket and every file with its
 *		key, rows and bytes.  palloc'd.
 */
static char *
run_details(DeltaRun *run)
{
	StringInfoData s;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	appendStringInfo(&s, "\"first_file_number\": " INT64_FORMAT, run->next_file_number);
	json_str(&s, "watermark_before", run->watermark);
	json_str(&s, "watermark_after", run->new_watermark);
	json_str(&s, "late_row_snapshot_used", run->late_branch ? run->late_snapshot : NULL);
	json_str(&s, "late_row_snapshot_kept", run->new_late_snapshot);
	if (run->late_note)
		json_str(&s, "late_row_note", run->late_note);
	appendStringInfo(&s, ", \"stale_objects_deleted\": " INT64_FORMAT, run->stale_deleted);
	appendStringInfo(&s, ", \"stale_uploads_aborted\": " INT64_FORMAT, run->stale_uploads_aborted);
	appendStringInfo(&s, ", \"extract_ms\": " INT64_FORMAT ", \"upload_ms\": " INT64_FORMAT,
					 run->extract_ms, run->upload_ms);
	json_str(&s, "bucket", run->bucket);
	appendStringInfoString(&s, ", \"files\": [");
	foreach(lc, run->files)
	{
		DeltaFile  *f = (DeltaFile *) lfirst(lc);

		appendStringInfo(&s, "%s{\"key\": ", first ? "" : ", ");
		escape_json(&s, f->key);
		appendStringInfo(&s, ", \"rows\": " INT64_FORMAT ", \"bytes\": " INT64_FORMAT "}", f->rows, f->bytes);
		first = false;
	}
	appendStringInfoString(&s, "]}");
	return s.data;
}

/*
 * notify
 *		Send payload with pg_notify on DELTA_NOTIFY_CHANNEL (delivered when
 *		the transaction commits).
 */
static void
notify(const char *payload)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(DELTA_NOTIFY_CHANNEL), CStringGetTextDatum(payload)};

	spi_exec("SELECT pg_catalog.pg_notify($1, $2)", 2, types, values, NULL, SPI_OK_SELECT);
}

/*
 * step_finish
 *		Watermark, file numbers, statistics, history and NOTIFY in one
 *		transaction, if the controller row is as the run found it.
 */
static void
step_finish(DeltaRun *run)
{
	Oid			types[9] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, INT8OID, INT8OID, INT4OID, INT8OID, TEXTOID};
	Datum		values[9];
	char		nulls[10] = "         ";

	values[0] = CStringGetTextDatum(run->target);
	spi_exec("SELECT " CONTROLLER_FINGERPRINT " FROM dms_stream.delta_load_controller"
			 " WHERE target_table_name = $1 FOR UPDATE",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("delta load \"%s\" was deleted during the run", run->target)));
	if (strcmp(spi_value(0, 1), run->fingerprint) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the controller row of delta load \"%s\" changed during the run", run->target),
				 errdetail("Found %s, the run started with %s.", spi_value(0, 1), run->fingerprint),
				 errhint("Run it again: the files of this run are removed and the watermark is unchanged.")));

	values[1] = text_datum(run->new_watermark);
	nulls[1] = run->new_watermark ? ' ' : 'n';
	values[2] = Int64GetDatum(list_length(run->files));
	values[3] = text_datum(run->new_late_snapshot);
	nulls[3] = run->new_late_snapshot ? ' ' : 'n';
	values[4] = Int64GetDatum(run->rows);
	values[5] = Int64GetDatum(run->bytes);
	values[6] = Int32GetDatum(list_length(run->files));
	values[7] = Int64GetDatum(run->run_id);
	values[8] = CStringGetTextDatum(run_details(run));
	spi_exec("UPDATE dms_stream.delta_load_controller"
			 "   SET watermark = $2, next_file_number = next_file_number + $3,"
			 "       late_row_snapshot = $4::pg_catalog.pg_snapshot, last_status = 'succeeded', last_error = NULL,"
			 "       last_rows = $5, last_bytes = $6, last_files = $7"
			 " WHERE target_table_name = $1",
			 8, types, values, nulls, SPI_OK_UPDATE);
	spi_exec("UPDATE dms_stream.run_history"
			 "   SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(),"
			 "       rows_processed = $5, bytes_written = $6, files_written = $7, details = $9::pg_catalog.jsonb,"
			 "       message = pg_catalog.format('%s rows in %s files', $5, $7)"
			 " WHERE run_id = $8",
			 9, types, values, nulls, SPI_OK_UPDATE);
	notify(run_payload(run, "succeeded", NULL));
}

/*
 * step_abort_deferred
 *		AbortMultipartUpload for the uploads the failed step's rollback left
 *		(transaction callbacks only queue them: no network I/O there).
 */
static void
step_abort_deferred(DeltaRun *run)
{
	InvalidateCatalogSnapshot();
	(void) s3_abort_deferred_uploads();
}

/*
 * step_remove_uploaded
 *		Delete every object this run may have written (after a failure),
 *		including the one whose upload failed with an unknown outcome.  A
 *		key that cannot be deleted is a WARNING and the others are still
 *		tried; the next run's sweep (delete_stale_objects) removes it.
 */
static void
step_remove_uploaded(DeltaRun *run)
{
	ListCell   *lc;

	InvalidateCatalogSnapshot();
	foreach(lc, run->uploaded)
		(void) cleanup_request(run, (const char *) lfirst(lc), NULL,
							   "The next run of this target deletes it before uploading.");
	run->uploaded = NIL;
}

/*
 * step_record_failure
 *		Status, error, history and NOTIFY of a failed run.  Those are
 *		readable by every role: an error quoting values is stored there
 *		without them, and in full in apply_exceptions (error_public.h).
 */
static void
step_record_failure(DeltaRun *run)
{
	Oid			types[4] = {TEXTOID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[4];
	char	   *msg = error_public_text(run->error);

	values[0] = CStringGetTextDatum(run->target);
	values[1] = CStringGetTextDatum(psprintf("%s: %s", run->phase, msg));
	values[2] = Int64GetDatum(run->run_id);
	values[3] = CStringGetTextDatum(run_details(run));
	spi_exec("UPDATE dms_stream.delta_load_controller SET last_status = 'failed', last_error = $2"
			 " WHERE target_table_name = $1 AND last_run_id = $3",
			 3, types, values, NULL, SPI_OK_UPDATE);
	spi_exec("UPDATE dms_stream.run_history"
			 "   SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), message = $2,"
			 "       details = $4::pg_catalog.jsonb"
			 " WHERE run_id = $3",
			 4, types, values, NULL, SPI_OK_UPDATE);
	if (error_quotes_values(run->error))
	{
		values[1] = CStringGetTextDatum(psprintf("%s: [SQLSTATE %s] %s", run->phase,
												 unpack_sql_state(run->error->sqlerrcode),
												 error_full_text(run->error)));
		spi_exec("INSERT INTO dms_stream.apply_exceptions (target_table_name, error_code, error)"
				 " VALUES ($1, 'delta_failed', $2)",
				 2, types, values, NULL, SPI_OK_INSERT);
	}
	notify(run_payload(run, "failed", msg));
}

/* ---------------------------------------------------------------- driver */

/*
 * catch_error
 *		In a PG_CATCH block: take the error off the stack, keeping the first
 *		of a run (with its step) in run->error.
 */
static void
catch_error(DeltaRun *run, const char *phase)
{
	MemoryContext old = MemoryContextSwitchTo(run->errcxt);
	ErrorData  *e = CopyErrorData();

	FlushErrorState();
	MemoryContextSwitchTo(old);
	if (run->error == NULL)
	{
		run->error = e;
		run->phase = phase;
	}
}

/*
 * run_step
 *		Run one step in an internal subtransaction; false (with run->error)
 *		if it raised an error, which is then rolled back.
 */
static bool
run_step(DeltaRun *run, DeltaStep step, const char *phase)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		step(run);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		catch_error(run, phase);
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * run_commit
 *		SPI_commit; an error while committing is caught like a step's (the
 *		transaction is then rolled back and a new one started).
 */
static bool
run_commit(DeltaRun *run, const char *phase)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		SPI_commit();
	}
	PG_CATCH();
	{
		catch_error(run, phase);
		MemoryContextSwitchTo(oldcxt);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * run_rollback
 *		SPI_rollback (a new transaction starts), errors caught like a step's.
 */
static bool
run_rollback(DeltaRun *run)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		SPI_rollback();
	}
	PG_CATCH();
	{
		catch_error(run, "rollback");
		MemoryContextSwitchTo(oldcxt);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * close_spool_files
 *		Close the temporary BufFile of each of the run's spool files, which
 *		deletes it, and clear the handle so that it is not closed twice.
 */
static void
close_spool_files(DeltaRun *run)
{
	ListCell   *lc;

	foreach(lc, run->files)
	{
		DeltaFile  *f = (DeltaFile *) lfirst(lc);

		if (f->buf)
			BufFileClose(f->buf);
		f->buf = NULL;
	}
}

typedef enum DeltaOutcome
{
	DELTA_SUCCEEDED,
	DELTA_FAILED,
	DELTA_BUSY
} DeltaOutcome;

/*
 * delta_run
 *		One run of one target.  On failure *error is the error (allocated in
 *		the caller's context).  Leaves a fresh transaction behind.
 */
static DeltaOutcome
delta_run(const char *target, ErrorData **error, const char **phase, int *busy_pid)
{
	MemoryContext caller = CurrentMemoryContext;
	DeltaRun   *run;
	volatile DeltaOutcome outcome = DELTA_FAILED;

	run = MemoryContextAllocZero(PortalContext, sizeof(DeltaRun));
	run->cxt = AllocSetContextCreate(PortalContext, "dms_stream delta load", ALLOCSET_DEFAULT_SIZES);
	run->errcxt = PortalContext;
	run->target = MemoryContextStrdup(run->cxt, target);

	PG_TRY();
	{
		volatile bool ok;

		ok = run_step(run, step_claim, "claim");
		if (run->busy)
		{
			*busy_pid = run->busy_pid;
			outcome = DELTA_BUSY;
			(void) run_commit(run, "claim");
		}
		else if (!ok)
		{
			/* rolled back: no history row, nothing uploaded */
			(void) run_commit(run, "claim");
		}
		else
		{
			TimestampTz t0;

			ok = run_commit(run, "claim");
			t0 = GetCurrentTimestamp();
			ok = ok && run_step(run, step_extract, "extract") && run_commit(run, "extract");
			run->extract_ms = (GetCurrentTimestamp() - t0) / 1000;
			t0 = GetCurrentTimestamp();
			ok = ok && run_step(run, step_upload, "upload") && run_commit(run, "upload");
			run->upload_ms = (GetCurrentTimestamp() - t0) / 1000;
			ok = ok && run_step(run, step_finish, "finish") && run_commit(run, "finish");
			if (!ok)
			{
				/*
				 * Start afresh: the failed step may have left this
				 * transaction with an xid or a snapshot, and deleting the
				 * uploaded files is network I/O.
				 */
				(void) run_rollback(run);
				if (s3_deferred_uploads() > 0)
					(void) run_step(run, step_abort_deferred, "abort incomplete uploads");
				if (run->uploaded)
					(void) run_step(run, step_remove_uploaded, "remove uploaded files");
				if (run_step(run, step_record_failure, "record failure"))
					(void) run_commit(run, "record failure");
			}
			outcome = ok ? DELTA_SUCCEEDED : DELTA_FAILED;
		}
	}
	PG_FINALLY();
	{
		close_spool_files(run);
		delta_unlock(run);
	}
	PG_END_TRY();

	*error = run->error;
	*phase = run->phase;
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(run->cxt);
	pfree(run);
	return outcome;
}

/*
 * check_nonatomic
 *		The run procedures commit: refuse an atomic context clearly.
 */
static void
check_nonatomic(FunctionCallInfo fcinfo, const char *name)
{
	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("%s cannot run inside a transaction block", name),
				 errdetail("A delta load commits between its steps, so that no snapshot, transaction id or lock is held while files are uploaded."),
				 errhint("CALL it on its own in autocommit mode, not inside BEGIN ... COMMIT or from a function; pg_cron can schedule it.")));
}

/*
 * raise_run_error
 *		Re-raise the error e of a failed run of target.  An error of the
 *		claim step is rethrown as it is; otherwise an ERROR with the same
 *		code that names the step and says the watermark did not move.
 */
static void
raise_run_error(const char *target, ErrorData *e, const char *phase)
{
	/* a run that could not start has nothing to say beyond its error */
	if (strcmp(phase, "claim") == 0)
		ReThrowError(e);
	ereport(ERROR,
			(errcode(e->sqlerrcode),
			 errmsg("delta load \"%s\" failed in step %s: %s", target, phase, e->message),
			 e->detail ? errdetail("%s", e->detail) : 0,
			 errhint("The watermark did not move and the files of this run were removed; see dms_stream.run_history. CALL it again to retry.")));
}

/*
 * dms_run_delta_load
 *		CALL dms_stream.run_delta_load(target_table_name)
 */
Datum
dms_run_delta_load(PG_FUNCTION_ARGS)
{
	char	   *target;
	ErrorData  *error = NULL;
	const char *phase = NULL;
	int			busy_pid = 0;
	DeltaOutcome outcome;

	check_nonatomic(fcinfo, "run_delta_load");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target_table_name must not be NULL")));
	target = text_to_cstring(PG_GETARG_TEXT_PP(0));

	SPI_connect_ext(SPI_OPT_NONATOMIC);
	outcome = delta_run(target, &error, &phase, &busy_pid);
	SPI_finish();

	if (outcome == DELTA_BUSY)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("delta load \"%s\" is already running", target),
				 busy_pid ? errdetail("Backend %d is running it.", busy_pid) : 0,
				 errhint("Two runs of one target never overlap: wait for that run to finish.")));
	if (outcome == DELTA_FAILED)
		raise_run_error(target, error, phase);
	PG_RETURN_VOID();
}

/*
 * dms_run_delta_loads
 *		CALL dms_stream.run_delta_loads(): every active target in name order;
 *		one failing does not stop the others, a running one is skipped.
 */
Datum
dms_run_delta_loads(PG_FUNCTION_ARGS)
{
	List	   *targets = NIL;
	StringInfoData failed;
	int			nfailed = 0;
	uint64		i;
	ListCell   *lc;
	MemoryContext cxt = CurrentMemoryContext;

	check_nonatomic(fcinfo, "run_delta_loads");
	SPI_connect_ext(SPI_OPT_NONATOMIC);
	spi_exec("SELECT target_table_name FROM dms_stream.delta_load_controller"
			 " WHERE active_flag ORDER BY target_table_name",
			 0, NULL, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
		targets = lappend(targets, MemoryContextStrdup(PortalContext, spi_value(i, 1)));
	SPI_freetuptable(SPI_tuptable);

	initStringInfo(&failed);
	foreach(lc, targets)
	{
		const char *target = (const char *) lfirst(lc);
		ErrorData  *error = NULL;
		const char *phase = NULL;
		int			busy_pid = 0;

		MemoryContextSwitchTo(cxt);
		switch (delta_run(target, &error, &phase, &busy_pid))
		{
			case DELTA_SUCCEEDED:
				break;
			case DELTA_BUSY:
				ereport(NOTICE,
						(errmsg("delta load \"%s\" skipped: it is already running%s", target,
								busy_pid ? psprintf(" in backend %d", busy_pid) : "")));
				break;
			case DELTA_FAILED:
				ereport(WARNING,
						(errmsg("delta load \"%s\" failed in step %s: %s", target, phase, error->message),
						 error->detail ? errdetail("%s", error->detail) : 0));
				appendStringInfo(&failed, "%s%s", nfailed ? ", " : "", target);
				nfailed++;
				break;
		}
	}
	SPI_finish();
	if (nfailed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("%d of %d delta loads failed: %s", nfailed, list_length(targets), failed.data),
				 errhint("Their watermarks did not move; see dms_stream.run_history. The others completed.")));
	PG_RETURN_VOID();
}

/*
 * dms_delta_load_query
 *		delta_load_query(target_table_name): the query and parameters the
 *		next run would execute (for DBAs and tests).
 */
Datum
dms_delta_load_query(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	DeltaSource src;
	DeltaQuery *q;
	Datum		out[3];
	bool		outnull[3] = {false, false, false};
	Datum	   *tnames;
	Datum	   *tvalues;
	bool	   *tnulls;
	int			dims[1];
	int			lbs[1] = {1};
	int			i;
	MemoryContext cxt = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target_table_name must not be NULL")));
	values[0] = PG_GETARG_DATUM(0);
	SPI_connect();
	spi_exec("SELECT source_schema, source_table, filter_column, filter_operator, start_value, end_value,"
			 "       watermark, late_row_snapshot::text"
			 "  FROM dms_stream.delta_load_controller WHERE target_table_name = $1",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("delta load \"%s\" does not exist", TextDatumGetCString(values[0]))));
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		src.schema = spi_value(0, 1);
		src.table = spi_value(0, 2);
		src.filter_column = spi_value(0, 3);
		src.op = spi_value(0, 4);
		src.start_value = spi_value(0, 5);
		src.end_value = spi_value(0, 6);
		src.watermark = spi_value(0, 7);
		src.late_snapshot = spi_value(0, 8);
		q = delta_query_build(&src);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	tnames = palloc(sizeof(Datum) * Max(q->nparams, 1));
	tvalues = palloc(sizeof(Datum) * Max(q->nparams, 1));
	tnulls = palloc(sizeof(bool) * Max(q->nparams, 1));
	for (i = 0; i < q->nparams; i++)
	{
		tnames[i] = CStringGetTextDatum(format_type_be(q->param_types[i]));
		tvalues[i] = q->param_text[i] ? CStringGetTextDatum(q->param_text[i]) : (Datum) 0;
		tnulls[i] = q->param_text[i] == NULL;
	}
	dims[0] = q->nparams;
	out[0] = CStringGetTextDatum(q->sql);
	out[1] = PointerGetDatum(construct_md_array(tnames, NULL, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	out[2] = PointerGetDatum(construct_md_array(tvalues, tnulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), out, outnull)));
}
