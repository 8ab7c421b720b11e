/*-------------------------------------------------------------------------
 *
 * parquet_sql.c
 *	  dms_stream.parquet_encode(query text, options jsonb): a query's rows
 *	  as the bytes of a Parquet file, for tests and inspection of the writer
 *	  (src/parquet.c) that delta extracts use; parquet_write_file: the same
 *	  into a file of the server, for big results and benchmarks; and
 *	  parquet_options_from_jsonb, the options' vocabulary for other callers.
 *
 * The query runs through SPI with a DestReceiver that hands each row to the
 * writer as the executor produces it: no tuple store, so memory is bounded
 * by the writer's row group and the resulting bytea (at most 1 GB).
 *
 * Options (a JSON object, every key optional; numbers may be JSON numbers
 * or strings of digits, as in DMS settings):
 *	 codec				"none" (or "uncompressed"), "snappy", "gzip", "zstd"; default "snappy"
 *	 compressionLevel	the codec's level, 0 = the default (gzip 6, zstd 2)
 *	 rowGroupRows		rows per row group, default 1000000
 *	 rowGroupBytes		encoded bytes per row group, default 67108864
 *	 pageBytes			target data page size, default 1048576
 *	 dictionary			dictionary encoding, default true
 *	 dictionaryBytes	dictionary size past which a chunk falls back to PLAIN, default 1048576
 *	 createdBy			FileMetaData.created_by
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/fd.h"
#include "tcop/dest.h"
#include "utils/acl.h"
#include "utils/memutils.h"

#include "dms_json.h"
#include "parquet.h"
#include "parquet_thrift.h"

PG_FUNCTION_INFO_V1(dms_parquet_encode);

static const char *const option_keys[] = {
	"codec", "compressionLevel", "rowGroupRows", "rowGroupBytes", "pageBytes",
	"dictionary", "dictionaryBytes", "createdBy", NULL
};

static const char *const codec_names[] = {
	"none", "uncompressed", "snappy", "gzip", "zstd", NULL
};

/*
 * parquet_options_from_jsonb
 *		Fill opts from a jsonb object of writer options (codec,
 *		compressionLevel, rowGroupRows, rowGroupBytes, pageBytes,
 *		dictionary, dictionaryBytes, createdBy; see parquet.h), starting
 *		from the defaults; NULL jsonb means the defaults.  Unknown keys and
 *		out-of-range values are errors naming what.
 */
void
parquet_options_from_jsonb(const char *what, void *jsonb, ParquetWriterOptions *opts)
{
	DmsJsonDoc	doc = {what ? what : "Parquet options"};
	json_t	   *root;
	int64		n;
	int			codec;
	const char *s;

	parquet_writer_default_options(opts);
	if (jsonb == NULL)
		return;
	root = dms_json_from_jsonb(&doc, (Jsonb *) jsonb);
	dms_json_expect_object(&doc, root, "");
	dms_json_check_keys(&doc, root, "", option_keys);

	codec = dms_json_get_enum(&doc, root, "", "codec", false, codec_names, true);
	if (codec >= 0 && !parquet_codec_parse(codec_names[codec], &opts->codec))
		elog(ERROR, "unknown codec %s", codec_names[codec]);
	if (dms_json_get_int(&doc, root, "", "compressionLevel", false, 0, 22, &n))
		opts->compression_level = (int) n;
	if (dms_json_get_int(&doc, root, "", "rowGroupRows", false, 1, PG_INT64_MAX, &n))
		opts->row_group_rows = n;
	if (dms_json_get_int(&doc, root, "", "rowGroupBytes", false, 1024, PG_INT64_MAX, &n))
		opts->row_group_bytes = n;
	if (dms_json_get_int(&doc, root, "", "pageBytes", false, 64, 256 * 1024 * 1024, &n))
		opts->page_bytes = n;
	dms_json_get_bool(&doc, root, "", "dictionary", false, false, &opts->dictionary);
	if (dms_json_get_int(&doc, root, "", "dictionaryBytes", false, 64,
						 1024 * 1024 * 1024, &n))
		opts->dictionary_bytes = n;
	s = dms_json_get_string(&doc, root, "", "createdBy", false, false);
	if (s)
		opts->created_by = pstrdup(s);
}

typedef struct EncodeState
{
	DestReceiver pub;
	MemoryContext cxt;			/* the function's context: the writer's parent */
	ParquetWriterOptions opts;
	ParquetWriter *writer;
	ParquetSink sink;
	void	   *sink_arg;
} EncodeState;

/*
 * encode_startup
 *		rStartup of parquet_encode's receiver: create the writer for the
 *		query's columns in the function's memory context; a second query is
 *		an ERROR.
 */
static void
encode_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	EncodeState *st = (EncodeState *) self;
	MemoryContext old;

	if (st->writer)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parquet_encode takes one query")));
	old = MemoryContextSwitchTo(st->cxt);
	st->writer = parquet_writer_create(typeinfo, &st->opts, st->sink, st->sink_arg);
	MemoryContextSwitchTo(old);
}

/*
 * encode_receive
 *		receiveSlot of parquet_encode's receiver: add the row to the writer.
 */
static bool
encode_receive(TupleTableSlot *slot, DestReceiver *self)
{
	EncodeState *st = (EncodeState *) self;

	slot_getallattrs(slot);
	parquet_writer_add_row(st->writer, slot->tts_values, slot->tts_isnull);
	return true;
}

/*
 * encode_shutdown
 *		rShutdown of parquet_encode's receiver: nothing to do, run_query
 *		finishes the writer.
 */
static void
encode_shutdown(DestReceiver *self)
{
}

/*
 * encode_destroy
 *		rDestroy of parquet_encode's receiver: nothing to do, the state is
 *		palloc'd in the caller's context.
 */
static void
encode_destroy(DestReceiver *self)
{
}

/*
 * run_query
 *		Run query (one statement that returns rows) and write its rows as a
 *		Parquet file with the options to sink; returns the number of rows.
 *		The executor hands each row to the writer as it is produced (a
 *		DestReceiver, no tuple store).
 */
static int64
run_query(const char *query, Jsonb *options, ParquetSink sink, void *sink_arg)
{
	EncodeState *st = palloc0(sizeof(EncodeState));
	SPIPlanPtr	plan;
	SPIExecuteOptions eo;
	int			rc;
	int64		rows;

	parquet_options_from_jsonb("Parquet options", options, &st->opts);
	st->pub.receiveSlot = encode_receive;
	st->pub.rStartup = encode_startup;
	st->pub.rShutdown = encode_shutdown;
	st->pub.rDestroy = encode_destroy;
	st->pub.mydest = DestNone;
	st->cxt = CurrentMemoryContext;
	st->sink = sink;
	st->sink_arg = sink_arg;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (list_length(SPI_plan_get_plan_sources(plan)) != 1 || !SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parquet_encode needs one query that returns rows"),
				 errhint("Give a single SELECT, VALUES, TABLE or ... RETURNING statement.")));

	memset(&eo, 0, sizeof(eo));
	eo.read_only = false;
	eo.dest = &st->pub;
	rc = SPI_execute_plan_extended(plan, &eo);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan_extended failed: %s", SPI_result_code_string(rc));
	SPI_finish();

	if (st->writer == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parquet_encode needs one query that returns rows")));
	parquet_writer_finish(st->writer);
	rows = parquet_writer_rows(st->writer);
	parquet_writer_destroy(st->writer);
	return rows;
}

/*
 * bytea_sink
 *		ParquetSink of parquet_encode: append to the result buffer; an ERROR
 *		past 1 GB, the largest bytea.
 */
static void
bytea_sink(void *arg, const void *data, size_t len)
{
	PqBuf	   *out = (PqBuf *) arg;

	if (out->len + len > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Parquet file is larger than 1 GB, the largest bytea"),
				 errhint("Select fewer rows, or use parquet_write_file.")));
	pq_buf_append(out, data, len);
}

/*
 * dms_parquet_encode
 *		parquet_encode(query text, options jsonb DEFAULT '{}') RETURNS bytea
 */
Datum
dms_parquet_encode(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *options = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	PqBuf		out;
	bytea	   *result;

	/* the varlena header, then the file: no copy at the end */
	pq_buf_init(&out, CurrentMemoryContext, 1024 * 1024);
	out.len = VARHDRSZ;
	run_query(query, options, bytea_sink, &out);
	result = (bytea *) out.data;
	SET_VARSIZE(result, out.len);
	PG_RETURN_BYTEA_P(result);
}

typedef struct FileSink
{
	int			fd;
	const char *path;
	int64		bytes;
} FileSink;

/*
 * file_sink
 *		ParquetSink of parquet_write_file: write the bytes to the file,
 *		retrying on EINTR and counting them; a write failure is an ERROR.
 */
static void
file_sink(void *arg, const void *data, size_t len)
{
	FileSink   *fs = (FileSink *) arg;
	const char *p = data;

	while (len > 0)
	{
		ssize_t		n = write(fs->fd, p, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", fs->path)));
		}
		p += n;
		len -= n;
		fs->bytes += n;
	}
}

/*
 * dms_parquet_write_file
 *		parquet_write_file(query text, path text, options jsonb DEFAULT '{}')
 *		RETURNS TABLE (rows bigint, bytes bigint, seconds float8)
 *
 * The same file as parquet_encode, written to a file of the server (for big
 * results and benchmarks): superusers and pg_write_server_files only.  The
 * file is removed again when an error interrupts it.
 */
PG_FUNCTION_INFO_V1(dms_parquet_write_file);

Datum
dms_parquet_write_file(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Jsonb	   *options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	FileSink	fs;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	instr_time	start,
				end;
	int64		rows;

	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to write server files"),
				 errhint("Only superusers and members of pg_write_server_files may use parquet_write_file.")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	INSTR_TIME_SET_CURRENT(start);
	fs.path = path;
	fs.bytes = 0;
	fs.fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fs.fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for writing: %m", path)));
	/* no half-written file is left behind by an error */
	PG_TRY();
	{
		rows = run_query(query, options, file_sink, &fs);
	}
	PG_CATCH();
	{
		CloseTransientFile(fs.fd);
		unlink(path);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (CloseTransientFile(fs.fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", path)));
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, start);

	values[0] = Int64GetDatum(rows);
	values[1] = Int64GetDatum(fs.bytes);
	values[2] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(end));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
