/*-------------------------------------------------------------------------
 *
 * csv_sql.c
 *	  SQL-callable CSV tools (declared in sql/install/50_csv.sql, executable
 *	  by dms_stream_admin only).
 *
 * They read CSV with an S3 source endpoint's settings and external table
 * definition exactly as the replication job does: the streaming reader of
 * csv.c with the endpoint's CsvDelimiter, CsvRowDelimiter,
 * IgnoreHeaderRows and Rfc4180, then routing and typing by dms_value.c
 * with its CsvNullValue.
 *
 *	csv_preview		rows of a CSV text (or bytea) as DMS data objects or
 *					errors: the DBA's check of files and settings.
 *	csv_parse_records
 *					the raw records: fields, quoting, positions; resumable
 *					from any record end (start_offset, start_line).
 *	csv_scan_file	a server file read in chunks, parsed and rendered,
 *					returning counts and timing (throughput and memory
 *					checks on big files).
 *	csv_render_value
 *					one value typed for a column given as its DMS JSON
 *					(TableColumns element): the exact JSON text a message
 *					would carry, or the error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "csv.h"
#include "dms_json.h"
#include "dms_value.h"
#include "endpoint.h"
#include "external_table.h"

PG_FUNCTION_INFO_V1(dms_csv_preview);
PG_FUNCTION_INFO_V1(dms_csv_preview_bytea);
PG_FUNCTION_INFO_V1(dms_csv_parse_records);
PG_FUNCTION_INFO_V1(dms_csv_scan_file);
PG_FUNCTION_INFO_V1(dms_csv_render_value);

/* Size of the pieces csv_preview feeds the reader. */
#define PREVIEW_CHUNK_BYTES		(64 * 1024)

/* An S3 source endpoint ready to read CSV. */
typedef struct CsvSource
{
	DmsEndpoint *ep;
	CsvSettings csv;
	DmsValueOptions opts;
	ExternalTableDefinition *def;
	DmsRowRenderer *rr;
	int			load_table;		/* table of a full-load file, -1 for CDC */
} CsvSource;

/*
 * text_arg
 *		A text argument as a C string, NULL when SQL NULL.
 */
static char *
text_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * required_text_arg
 *		A text argument that must not be NULL.
 */
static char *
required_text_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * table_list
 *		"owner.name, ..." of a definition, for hints (first 10 tables).
 */
static char *
table_list(const ExternalTableDefinition *def)
{
	StringInfoData s;
	int			t;

	initStringInfo(&s);
	for (t = 0; t < def->ntables && t < 10; t++)
		appendStringInfo(&s, "%s%s.%s", t > 0 ? ", " : "",
						 def->tables[t].owner, def->tables[t].name);
	if (def->ntables > 10)
		appendStringInfo(&s, " and %d more", def->ntables - 10);
	return s.data;
}

/*
 * csv_source_open
 *		Load an S3 source endpoint: CSV settings, value options, external
 *		table definition, and the table of a full-load file (owner/name, or
 *		the only table) unless cdc.
 */
static void
csv_source_open(CsvSource *src, const char *endpoint_name, const char *owner,
				const char *name, bool cdc)
{
	json_t	   *etd;
	const char *what = "external table definition in S3Settings.ExternalTableDefinition";

	memset(src, 0, sizeof(CsvSource));
	src->ep = dms_endpoint_load(endpoint_name);
	if (src->ep->engine == NULL || strcmp(src->ep->engine, "s3") != 0 ||
		src->ep->endpoint_type == NULL || strcmp(src->ep->endpoint_type, "source") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("endpoint \"%s\" is not an S3 source endpoint", endpoint_name),
				 errdetail("It is a %s %s endpoint.",
						   src->ep->engine ? src->ep->engine : "?",
						   src->ep->endpoint_type ? src->ep->endpoint_type : "?"),
				 errhint("CSV files are read with the settings of an endpoint of engine s3 and type source.")));

	csv_settings_from_s3(&src->csv, src->ep->settings);
	dms_value_options_from_settings(&src->opts, src->ep->settings, NULL);
	/* A preview shows every column, NULL and empty ones included. */
	src->opts.include_null_and_empty = true;

	etd = json_object_get(src->ep->settings, "ExternalTableDefinition");
	if (etd && json_is_string(etd))
		src->def = external_table_definition_parse(json_string_value(etd),
												   json_string_length(etd), what);
	else if (etd && json_is_object(etd))
	{
		char	   *text = dms_json_dumps(etd, JSON_COMPACT, "the external table definition");

		src->def = external_table_definition_parse(text, strlen(text), what);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("endpoint \"%s\" has no external table definition", endpoint_name),
				 errhint("Set S3Settings.ExternalTableDefinition with dms_stream.register_external_table_definition().")));
	src->rr = dms_row_renderer_create(src->def, &src->opts);

	src->load_table = -1;
	if (cdc)
	{
		if (owner || name)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("table_owner and table_name apply to full-load files only"),
					 errdetail("Each CDC record names its table and schema in its second and third fields."),
					 errhint("Leave table_owner and table_name NULL when cdc is true.")));
		return;
	}
	if (owner == NULL && name == NULL)
	{
		if (src->def->ntables != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the external table definition of endpoint \"%s\" has %d tables",
							endpoint_name, src->def->ntables),
					 errhint("Give table_owner and table_name of the file's table: %s.",
							 table_list(src->def))));
		src->load_table = 0;
		return;
	}
	if (owner && name)
		src->load_table = dms_row_find_table(src->def, owner, strlen(owner), name, strlen(name));
	else if (name)
	{
		int			t;

		for (t = 0; t < src->def->ntables; t++)
			if (strcmp(src->def->tables[t].name, name) == 0)
			{
				if (src->load_table >= 0)
					ereport(ERROR,
							(errcode(ERRCODE_AMBIGUOUS_PARAMETER),
							 errmsg("table name \"%s\" is in more than one schema", name),
							 errhint("Give table_owner as well: %s.", table_list(src->def))));
				src->load_table = t;
			}
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table_owner needs table_name")));
	if (src->load_table < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table %s%s%s is not in the external table definition of endpoint \"%s\"",
						owner ? owner : "", owner ? "." : "", name, endpoint_name),
				 errhint("Its tables: %s.", table_list(src->def))));
}

/*
 * max_record_bytes_arg
 *		Check a max_record_bytes argument.
 */
static size_t
max_record_bytes_arg(int32 max)
{
	if (max < CSV_MIN_MAX_RECORD_BYTES || max > CSV_MAX_MAX_RECORD_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_record_bytes must be between %d and %d",
						CSV_MIN_MAX_RECORD_BYTES, CSV_MAX_MAX_RECORD_BYTES)));
	return (size_t) max;
}

/*
 * utf8_text_datum
 *		UTF-8 text as a text datum in the database encoding.
 */
static Datum
utf8_text_datum(const char *s, size_t len)
{
	char	   *conv = pg_any_to_server(s, (int) len, PG_UTF8);

	return PointerGetDatum(cstring_to_text_with_len(conv, conv == s ? (int) len : (int) strlen(conv)));
}

/*
 * record_error_text
 *		"column N: reason" for a reader error.
 */
static char *
record_error_text(const CsvError *e)
{
	if (e->column > 0)
		return psprintf("column %d: %s", e->column, e->message);
	return pstrdup(e->message);
}

/*
 * row_error_text
 *		"column N (name): reason" for a routing or typing error.
 */
static char *
row_error_text(const DmsRowError *e)
{
	if (e->field > 0 && e->column_name)
		return psprintf("column %d (%s): %s", e->field, e->column_name, e->message);
	if (e->field > 0)
		return psprintf("column %d: %s", e->field, e->message);
	return pstrdup(e->message);
}

/*
 * preview_run
 *		Read data through the reader and emit csv_preview rows.
 */
static void
preview_run(FunctionCallInfo fcinfo, const char *data, size_t len)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *endpoint_name = required_text_arg(fcinfo, 0, "endpoint_name");
	char	   *owner = text_arg(fcinfo, 2);
	char	   *name = text_arg(fcinfo, 3);
	bool		cdc = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	int64		max_rows = PG_ARGISNULL(5) ? -1 : PG_GETARG_INT32(5);
	CsvSource	src;
	CsvReader  *reader;
	MemoryContext rowcxt;
	MemoryContext old;
	StringInfoData json;
	size_t		fed = 0;
	int64		rows = 0;
	bool		done = false;

	if (!PG_ARGISNULL(5) && max_rows < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must not be negative")));

	InitMaterializedSRF(fcinfo, 0);
	csv_source_open(&src, endpoint_name, owner, name, cdc);

	reader = csv_reader_create(&src.csv, NULL);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "csv_preview row",
								   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&json);

	while (!done)
	{
		CsvRecord	rec;
		CsvResult	res;

		CHECK_FOR_INTERRUPTS();
		if (max_rows >= 0 && rows >= max_rows)
			break;
		res = csv_reader_next(reader, &rec);
		if (res == CSV_END)
			break;
		if (res == CSV_NEED_MORE)
		{
			size_t		n = Min(len - fed, (size_t) PREVIEW_CHUNK_BYTES);

			if (n == 0)
				csv_reader_finish(reader);
			else
			{
				csv_reader_feed(reader, data + fed, n);
				fed += n;
			}
			continue;
		}

		/* a record: one row of output */
		{
			Datum		values[6];
			bool		nulls[6] = {false, true, true, true, true, true};
			DmsRow		row;
			DmsRowError rerr;

			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			values[0] = Int64GetDatum(rec.start.line);
			rows++;

			if (res == CSV_BAD_RECORD)
			{
				/* a full-load file's table is known even if the record is bad */
				if (src.load_table >= 0)
				{
					const ExternalTable *t = &src.def->tables[src.load_table];

					values[1] = CStringGetTextDatum(dms_row_operation_name(DMS_ROW_LOAD));
					values[2] = CStringGetTextDatum(t->owner);
					values[3] = CStringGetTextDatum(t->name);
					nulls[1] = nulls[2] = nulls[3] = false;
				}
				values[5] = CStringGetTextDatum(record_error_text(&rec.error));
				nulls[5] = false;
				if (rec.error.fatal)
					done = true;
			}
			else
			{
				bool		routed = dms_row_route(src.rr, src.load_table, rec.fields,
												   rec.nfields, &row, &rerr);
				bool		op_known = (src.load_table >= 0 ||
										(rec.nfields >= 1 &&
										 dms_row_operation_parse(rec.fields[0].data,
																 rec.fields[0].len,
																 &row.operation)));

				if (op_known)
				{
					values[1] = CStringGetTextDatum(dms_row_operation_name(row.operation));
					nulls[1] = false;
				}
				if (row.table)
				{
					values[2] = CStringGetTextDatum(row.table->owner);
					values[3] = CStringGetTextDatum(row.table->name);
					nulls[2] = nulls[3] = false;
				}
				else if (src.load_table < 0 && rec.nfields >= 3)
				{
					values[2] = utf8_text_datum(rec.fields[2].data, rec.fields[2].len);
					values[3] = utf8_text_datum(rec.fields[1].data, rec.fields[1].len);
					nulls[2] = nulls[3] = false;
				}

				resetStringInfo(&json);
				if (routed && !dms_row_render(src.rr, &row, &json, &rerr) &&
					rerr.error_class == DMS_VALUE_DATA_ERROR)
					routed = false;
				if (routed)
				{
					char	   *conv = pg_any_to_server(json.data, json.len, PG_UTF8);

					values[4] = DirectFunctionCall1(jsonb_in, CStringGetDatum(conv));
					nulls[4] = false;
				}
				if (rerr.error_class != DMS_VALUE_OK)
				{
					values[5] = CStringGetTextDatum(row_error_text(&rerr));
					nulls[5] = false;
				}
			}
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(old);
		}
	}
	csv_reader_free(reader);
	MemoryContextDelete(rowcxt);
}

/*
 * dms_csv_preview
 *		csv_preview(endpoint_name, csv text, table_owner, table_name, cdc,
 *		max_rows): each row's data object or error.
 */
Datum
dms_csv_preview(PG_FUNCTION_ARGS)
{
	text	   *csv;
	char	   *data;
	size_t		len;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csv must not be NULL")));
	csv = PG_GETARG_TEXT_PP(1);
	data = VARDATA_ANY(csv);
	len = VARSIZE_ANY_EXHDR(csv);
	/* The reader works on UTF-8; text is in the database encoding. */
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		data = pg_server_to_any(data, (int) len, PG_UTF8);
		len = strlen(data);
	}
	preview_run(fcinfo, data, len);
	return (Datum) 0;
}

/*
 * dms_csv_preview_bytea
 *		csv_preview with the file's bytes as they are (any byte may appear,
 *		so invalid UTF-8 can be checked).
 */
Datum
dms_csv_preview_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *csv;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("csv must not be NULL")));
	csv = PG_GETARG_BYTEA_PP(1);
	preview_run(fcinfo, VARDATA_ANY(csv), VARSIZE_ANY_EXHDR(csv));
	return (Datum) 0;
}

/*
 * dms_csv_parse_records
 *		csv_parse_records(endpoint_name, data bytea, chunk_bytes,
 *		max_record_bytes, start_offset, start_line): the records as the
 *		reader splits them, data being the file from start_offset.
 */
Datum
dms_csv_parse_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *endpoint_name = required_text_arg(fcinfo, 0, "endpoint_name");
	bytea	   *data;
	const char *bytes;
	size_t		len;
	int64		chunk = PG_ARGISNULL(2) ? 65536 : PG_GETARG_INT32(2);
	CsvPosition start;
	DmsEndpoint *ep;
	CsvSettings settings;
	CsvReader  *reader;
	MemoryContext rowcxt;
	size_t		fed = 0;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("data must not be NULL")));
	data = PG_GETARG_BYTEA_PP(1);
	bytes = VARDATA_ANY(data);
	len = VARSIZE_ANY_EXHDR(data);
	if (chunk < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk_bytes must be at least 1")));
	start.offset = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT64(4);
	start.line = PG_ARGISNULL(5) ? 1 : PG_GETARG_INT64(5);
	if (start.offset < 0 || start.line < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("start_offset must not be negative and start_line must be at least 1")));

	InitMaterializedSRF(fcinfo, 0);
	ep = dms_endpoint_load(endpoint_name);
	if (ep->engine == NULL || strcmp(ep->engine, "s3") != 0 ||
		ep->endpoint_type == NULL || strcmp(ep->endpoint_type, "source") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("endpoint \"%s\" is not an S3 source endpoint", endpoint_name)));
	csv_settings_from_s3(&settings, ep->settings);
	if (!PG_ARGISNULL(3))
		settings.max_record_bytes = max_record_bytes_arg(PG_GETARG_INT32(3));

	reader = csv_reader_create(&settings, &start);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "csv_parse_records row",
								   ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		CsvRecord	rec;
		CsvResult	res;
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, true, true, true, false};
		MemoryContext old;
		StringInfoData raw;

		CHECK_FOR_INTERRUPTS();
		res = csv_reader_next(reader, &rec);
		if (res == CSV_END)
			break;
		if (res == CSV_NEED_MORE)
		{
			size_t		n = Min(len - fed, (size_t) chunk);

			if (n == 0)
				csv_reader_finish(reader);
			else
			{
				csv_reader_feed(reader, bytes + fed, n);
				fed += n;
			}
			continue;
		}

		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		values[0] = Int64GetDatum(rec.start.line);
		values[1] = Int64GetDatum(rec.start.offset);
		values[2] = Int64GetDatum(rec.end.offset);
		values[3] = Int64GetDatum(rec.end.line);
		if (res == CSV_RECORD)
		{
			Datum	   *texts = palloc(sizeof(Datum) * Max(rec.nfields, 1));
			Datum	   *flags = palloc(sizeof(Datum) * Max(rec.nfields, 1));
			int			i;

			for (i = 0; i < rec.nfields; i++)
			{
				texts[i] = utf8_text_datum(rec.fields[i].data, rec.fields[i].len);
				flags[i] = BoolGetDatum(rec.fields[i].quoted);
			}
			values[4] = PointerGetDatum(construct_array(texts, rec.nfields, TEXTOID, -1, false, TYPALIGN_INT));
			values[5] = PointerGetDatum(construct_array(flags, rec.nfields, BOOLOID, 1, true, TYPALIGN_CHAR));
			nulls[4] = nulls[5] = false;
		}
		else
		{
			values[6] = CStringGetTextDatum(record_error_text(&rec.error));
			nulls[6] = false;
		}
		initStringInfo(&raw);
		csv_append_escaped_invalid(&raw, rec.raw, rec.raw_len);
		if (rec.raw_truncated)
			appendStringInfoString(&raw, "...");
		values[7] = utf8_text_datum(raw.data, raw.len);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
		if (res == CSV_BAD_RECORD && rec.error.fatal)
			break;
	}
	csv_reader_free(reader);
	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}

/*
 * dms_csv_scan_file
 *		csv_scan_file(endpoint_name, path, table_owner, table_name, cdc,
 *		render, chunk_bytes, max_record_bytes): read a server file in chunks
 *		through the reader (and the routing and rendering when render),
 *		return counts.
 */
Datum
dms_csv_scan_file(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *endpoint_name = required_text_arg(fcinfo, 0, "endpoint_name");
	char	   *path = required_text_arg(fcinfo, 1, "path");
	char	   *owner = text_arg(fcinfo, 2);
	char	   *name = text_arg(fcinfo, 3);
	bool		cdc = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	bool		render = PG_ARGISNULL(5) ? true : PG_GETARG_BOOL(5);
	int64		chunk = PG_ARGISNULL(6) ? 1024 * 1024 : PG_GETARG_INT32(6);
	CsvSource	src;
	CsvReader  *reader;
	char	   *buf;
	int			fd;
	bool		eof = false;
	int64		bytes = 0;
	int64		records = 0;
	int64		rows_ok = 0;
	int64		rows_failed = 0;
	int64		json_bytes = 0;
	size_t		max_memory = 0;
	char	   *first_error = NULL;
	int64		first_error_line = 0;
	CsvPosition end;
	StringInfoData json;
	instr_time	t0;
	instr_time	t1;
	Datum		values[10];
	bool		nulls[10] = {false};

	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read server files"),
				 errhint("Only superusers and members of pg_read_server_files may use csv_scan_file.")));
	if (chunk < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk_bytes must be at least 1")));

	InitMaterializedSRF(fcinfo, 0);
	csv_source_open(&src, endpoint_name, owner, name, cdc);
	if (!PG_ARGISNULL(7))
		src.csv.max_record_bytes = max_record_bytes_arg(PG_GETARG_INT32(7));

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));

	buf = palloc(chunk);
	reader = csv_reader_create(&src.csv, NULL);
	initStringInfo(&json);
	INSTR_TIME_SET_CURRENT(t0);
	for (;;)
	{
		CsvRecord	rec;
		CsvResult	res = csv_reader_next(reader, &rec);

		if (res == CSV_END)
			break;
		if (res == CSV_NEED_MORE)
		{
			ssize_t		n;

			CHECK_FOR_INTERRUPTS();
			if (eof)
				elog(ERROR, "CSV reader asked for more after the end of the file");
			n = read(fd, buf, chunk);
			if (n < 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read file \"%s\": %m", path)));
			if (n == 0)
			{
				eof = true;
				csv_reader_finish(reader);
			}
			else
			{
				csv_reader_feed(reader, buf, n);
				bytes += n;
				max_memory = Max(max_memory, csv_reader_memory(reader));
			}
			continue;
		}

		records++;
		if (res == CSV_BAD_RECORD)
		{
			rows_failed++;
			if (first_error == NULL)
			{
				first_error = record_error_text(&rec.error);
				first_error_line = rec.start.line;
			}
			if (rec.error.fatal)
				break;
			continue;
		}
		if (render)
		{
			DmsRow		row;
			DmsRowError rerr;

			resetStringInfo(&json);
			if (dms_row_route(src.rr, src.load_table, rec.fields, rec.nfields, &row, &rerr) &&
				dms_row_render(src.rr, &row, &json, &rerr))
			{
				rows_ok++;
				json_bytes += json.len;
			}
			else
			{
				rows_failed++;
				if (first_error == NULL)
				{
					first_error = row_error_text(&rerr);
					first_error_line = rec.start.line;
				}
			}
		}
		else
			rows_ok++;
	}
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	end = csv_reader_position(reader);
	csv_reader_free(reader);
	CloseTransientFile(fd);

	values[0] = Int64GetDatum(bytes);
	values[1] = Int64GetDatum(records);
	values[2] = Int64GetDatum(rows_ok);
	values[3] = Int64GetDatum(rows_failed);
	values[4] = Int64GetDatum(json_bytes);
	values[5] = Int64GetDatum((int64) max_memory);
	values[6] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(t1));
	values[7] = Int64GetDatum(end.offset);
	if (first_error)
	{
		values[8] = Int64GetDatum(first_error_line);
		values[9] = CStringGetTextDatum(first_error);
	}
	else
		nulls[8] = nulls[9] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * dms_csv_render_value
 *		csv_render_value(column jsonb, value text, quoted, csv_null_value,
 *		no_hex_prefix): the JSON rendering of one value, or its error.
 */
Datum
dms_csv_render_value(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *column;
	char	   *value;
	size_t		value_len;
	bool		quoted = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	StringInfoData def_text;
	ExternalTableDefinition *def;
	DmsValueOptions opts;
	DmsValueResult res;
	StringInfoData out;
	bool		ok;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("column and value must not be NULL"),
				 errhint("An SQL NULL is not a CSV field: pass '' for an empty field.")));
	column = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(0)));
	value = text_to_cstring(PG_GETARG_TEXT_PP(1));
	value_len = strlen(value);
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		value = pg_server_to_any(value, (int) value_len, PG_UTF8);
		value_len = strlen(value);
	}

	InitMaterializedSRF(fcinfo, 0);

	/* The column inside a one-table definition, validated as usual. */
	initStringInfo(&def_text);
	appendStringInfo(&def_text,
					 "{\"TableCount\": 1, \"Tables\": [{\"TableName\": \"t\", \"TablePath\": \"s/t/\", "
					 "\"TableOwner\": \"s\", \"TableColumnsTotal\": 1, \"TableColumns\": [%s]}]}",
					 column);
	def = external_table_definition_parse(def_text.data, def_text.len, "column definition");

	dms_value_options_init(&opts);
	if (!PG_ARGISNULL(3))
	{
		char	   *nv = text_to_cstring(PG_GETARG_TEXT_PP(3));

		opts.null_value = nv;
		opts.null_value_len = strlen(nv);
	}
	opts.no_hex_prefix = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);

	initStringInfo(&out);
	ok = dms_value_render(&def->tables[0].columns[0], value, value_len, quoted, &opts, &out, &res);
	if (ok || res.error_class == DMS_VALUE_TRUNCATED)
		values[0] = utf8_text_datum(out.data, out.len);
	else
		nulls[0] = true;
	values[1] = BoolGetDatum(res.is_null);
	values[2] = BoolGetDatum(res.is_empty);
	if (ok)
		nulls[3] = nulls[4] = true;
	else
	{
		values[3] = CStringGetTextDatum(res.error_class == DMS_VALUE_TRUNCATED ? "truncation" : "data");
		values[4] = utf8_text_datum(res.message, strlen(res.message));
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
