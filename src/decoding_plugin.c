/*-------------------------------------------------------------------------
 *
 * decoding_plugin.c
 *	  The dms_stream output plugin: changes of the selected tables rendered
 *	  as DMS Kinesis records into the job's spool file (see
 *	  decoding_plugin.h).
 *
 * Values (PostgreSQL type -> DMS type, JSON rendering):
 *	int2/int4/int8 -> INT2/INT4/INT8, oid -> UINT4: JSON integers.
 *	numeric(p,s) -> NUMERIC (p, s; without a typmod precision 38, scale 0):
 *		the value's text as a JSON number; NaN and infinities as strings.
 *	real/double precision -> REAL4/REAL8: shortest exact text; NaN and
 *		infinities as strings (JSON has no such numbers).
 *	boolean -> BOOLEAN: true/false.
 *	date -> DATE "YYYY-MM-DD"; time -> TIME "HH:MM:SS[.ffffff]".
 *	timestamp, timestamptz -> DATETIME "YYYY-MM-DDTHH:MM:SS[.f...]Z" in UTC
 *		with the column's fractional precision (6 without a typmod), as DMS
 *		writes timestamps to Kinesis; infinities and BC dates as their
 *		PostgreSQL text.
 *	bytea -> BLOB: "0x" + upper-case hex (NoHexPrefix drops the 0x).
 *	text, json, jsonb, xml, varchar without length -> CLOB: JSON string.
 *	varchar(n), char(n) -> STRING (length n): JSON string.
 *	anything else -> STRING: its output function's text as a JSON string.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"		/* before utils/builtins.h: json_object */

#include <sys/stat.h>
#include <unistd.h>

#include "access/detoast.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"

#include "decoding_plugin.h"
#include "task_worker.h"
#include "dms_value.h"

PgSourceContext *pg_source_current = NULL;

static bool relcache_callback_registered = false;

/* ----------------------------------------------------------------
 * Spool files
 * ----------------------------------------------------------------
 */

#define PG_SPOOL_BUFFER (256 * 1024)

static void
spool_error(PgSpool *spool, const char *what)
{
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s dms_stream spool file \"%s\": %m", what, spool->path)));
}

PgSpool *
pg_spool_open(const char *path, bool truncate)
{
	PgSpool    *spool = palloc0(sizeof(PgSpool));
	char	   *dir = pstrdup(path);
	char	   *slash = strrchr(dir, '/');

	if (slash != NULL)
	{
		*slash = '\0';
		if (MakePGDirectory(dir) < 0 && errno != EEXIST)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", dir)));
	}
	spool->path = pstrdup(path);
	spool->file = fopen(path, truncate ? "w+b" : "r+b");
	if (spool->file == NULL && !truncate && errno == ENOENT)
		spool->file = fopen(path, "w+b");
	if (spool->file == NULL)
		spool_error(spool, "open");
	spool->buffer = palloc(PG_SPOOL_BUFFER);
	setvbuf(spool->file, spool->buffer, _IOFBF, PG_SPOOL_BUFFER);
	if (!truncate)
	{
		if (fseeko(spool->file, 0, SEEK_END) != 0)
			spool_error(spool, "seek in");
		spool->bytes = ftello(spool->file);
	}
	return spool;
}

/*
 * pg_spool_memory
 *		Keep up to size bytes of entries in memory before the file is
 *		written: a spool emptied (pg_spool_reset) before it holds more never
 *		touches the file.  Entries past size go to the file (the memory
 *		first, in order), until the next reset.
 */
void
pg_spool_memory(PgSpool *spool, int64 size)
{
	Assert(spool->bytes == 0);
	spool->mem = palloc(size);
	spool->mem_size = size;
	spool->in_memory = true;
}

/*
 * spool_spill
 *		Move the entries held in memory to the file; later entries go there
 *		too.
 */
static void
spool_spill(PgSpool *spool)
{
	if (spool->bytes > 0 && fwrite(spool->mem, spool->bytes, 1, spool->file) != 1)
		spool_error(spool, "write");
	spool->in_memory = false;
	spool->file_used = true;
}

/*
 * pg_spool_write
 *		Append an entry and its payload.
 */
void
pg_spool_write(PgSpool *spool, const PgSpoolEntry *e, const char *data, const char *key)
{
	int64		len = sizeof(*e) + e->data_len + e->key_len;

	if (spool->in_memory && spool->bytes + len > spool->mem_size)
		spool_spill(spool);
	if (spool->in_memory)
	{
		char	   *p = spool->mem + spool->bytes;

		memcpy(p, e, sizeof(*e));
		p += sizeof(*e);
		if (e->data_len > 0)
			memcpy(p, data, e->data_len);
		p += e->data_len;
		if (e->key_len > 0)
			memcpy(p, key, e->key_len);
	}
	else if (fwrite(e, sizeof(*e), 1, spool->file) != 1 ||
			 (e->data_len > 0 && fwrite(data, e->data_len, 1, spool->file) != 1) ||
			 (e->key_len > 0 && fwrite(key, e->key_len, 1, spool->file) != 1))
		spool_error(spool, "write");
	spool->bytes += len;
	if (e->kind == PG_SPOOL_RECORD)
		spool->records++;
	else
		spool->transactions++;
}

void
pg_spool_sync(PgSpool *spool)
{
	if (fflush(spool->file) != 0 || pg_fsync(fileno(spool->file)) != 0)
		spool_error(spool, "sync");
}

/*
 * pg_spool_rewind
 *		Read from offset on.
 */
void
pg_spool_rewind(PgSpool *spool, int64 offset)
{
	if (spool->in_memory)
		spool->read_pos = offset;
	else if (fflush(spool->file) != 0 || fseeko(spool->file, offset, SEEK_SET) != 0)
		spool_error(spool, "seek in");
}

/*
 * pg_spool_read
 *		The next entry and its payload; false at the end.
 */
bool
pg_spool_read(PgSpool *spool, PgSpoolEntry *e, StringInfo data, StringInfo key)
{
	if (spool->in_memory)
	{
		const char *p = spool->mem + spool->read_pos;

		if (spool->read_pos >= spool->bytes)
			return false;
		memcpy(e, p, sizeof(*e));
		p += sizeof(*e);
		resetStringInfo(data);
		resetStringInfo(key);
		appendBinaryStringInfoNT(data, p, e->data_len);
		appendBinaryStringInfoNT(key, p + e->data_len, e->key_len);
		data->data[data->len] = '\0';
		key->data[key->len] = '\0';
		spool->read_pos += sizeof(*e) + e->data_len + e->key_len;
		return true;
	}
	else
	{
		size_t		n = fread(e, sizeof(*e), 1, spool->file);

		if (n != 1)
		{
			if (ferror(spool->file))
				spool_error(spool, "read");
			return false;
		}
		resetStringInfo(data);
		resetStringInfo(key);
		enlargeStringInfo(data, e->data_len);
		enlargeStringInfo(key, e->key_len);
		if ((e->data_len > 0 && fread(data->data, e->data_len, 1, spool->file) != 1) ||
			(e->key_len > 0 && fread(key->data, e->key_len, 1, spool->file) != 1))
			spool_error(spool, "read");
		data->len = e->data_len;
		data->data[data->len] = '\0';
		key->len = e->key_len;
		key->data[key->len] = '\0';
		return true;
	}
}

/*
 * pg_spool_reset
 *		Empty the spool (truncating the file if it was written).
 */
void
pg_spool_reset(PgSpool *spool)
{
	if (!spool->in_memory || spool->file_used)
	{
		if (fflush(spool->file) != 0 || fseeko(spool->file, 0, SEEK_SET) != 0 ||
			ftruncate(fileno(spool->file), 0) != 0)
			spool_error(spool, "truncate");
	}
	spool->file_used = false;
	spool->in_memory = spool->mem != NULL;
	spool->bytes = 0;
	spool->records = 0;
	spool->transactions = 0;
	spool->read_pos = 0;
}

void
pg_spool_close(PgSpool *spool, bool remove)
{
	if (spool->file != NULL)
		fclose(spool->file);
	spool->file = NULL;
	if (remove && unlink(spool->path) != 0 && errno != ENOENT)
		spool_error(spool, "remove");
}

/* ----------------------------------------------------------------
 * Types and values
 * ----------------------------------------------------------------
 */

static DmsColumnType
pg_dms_type(Oid typid, int32 typmod, int64 *length, int *precision, int *scale)
{
	*length = 0;
	*precision = 0;
	*scale = 0;
	switch (typid)
	{
		case INT2OID:
			return DMS_TYPE_INT2;
		case INT4OID:
			return DMS_TYPE_INT4;
		case INT8OID:
			return DMS_TYPE_INT8;
		case OIDOID:
			return DMS_TYPE_UINT4;
		case NUMERICOID:
			if (typmod >= (int32) VARHDRSZ)
			{
				*precision = ((typmod - VARHDRSZ) >> 16) & 0xffff;
				*scale = (((typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;
			}
			else
				*precision = 38;
			return DMS_TYPE_NUMERIC;
		case FLOAT4OID:
			return DMS_TYPE_REAL4;
		case FLOAT8OID:
			return DMS_TYPE_REAL8;
		case BOOLOID:
			return DMS_TYPE_BOOLEAN;
		case DATEOID:
			return DMS_TYPE_DATE;
		case TIMEOID:
			return DMS_TYPE_TIME;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			*scale = typmod >= 0 ? typmod : 6;
			return DMS_TYPE_DATETIME;
		case BYTEAOID:
			return DMS_TYPE_BLOB;
		case TEXTOID:
		case JSONOID:
		case JSONBOID:
		case XMLOID:
			return DMS_TYPE_CLOB;
		case VARCHAROID:
		case BPCHAROID:
			if (typmod >= (int32) VARHDRSZ)
			{
				*length = typmod - VARHDRSZ;
				return DMS_TYPE_STRING;
			}
			return typid == VARCHAROID ? DMS_TYPE_CLOB : DMS_TYPE_STRING;
		default:
			return DMS_TYPE_STRING;
	}
}

/* Append a JSON string of the output function's text. */
static void
render_output_string(StringInfo out, PgSourceColumn *c, Datum d, DmsColumnValue *v)
{
	char	   *s = OutputFunctionCall(&c->output, d);
	size_t		len = strlen(s);

	dms_value_json_string(out, s, len);
	v->is_empty = (len == 0);
	pfree(s);
}

/* A number from the output function, or a string when it is not finite. */
static void
render_output_number(StringInfo out, PgSourceColumn *c, Datum d)
{
	char	   *s = OutputFunctionCall(&c->output, d);

	if (strchr(s, 'N') != NULL || strchr(s, 'n') != NULL)	/* NaN, Infinity */
		dms_value_json_string(out, s, strlen(s));
	else
		appendStringInfoString(out, s);
	pfree(s);
}

static void
render_timestamp(StringInfo out, PgSourceColumn *c, Datum d, int scale)
{
	Timestamp	ts = DatumGetTimestamp(d);
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 || tm.tm_year <= 0 ||
		tm.tm_year > 9999)
	{
		DmsColumnValue dummy;

		render_output_string(out, c, d, &dummy);
		return;
	}
	{
		/* "YYYY-MM-DDTHH:MM:SS[.ffffff]Z", digits written directly */
		char		buf[32];
		char	   *p = buf;
		int			f = (int) fsec;
		int			i;

		*p++ = '"';
		*p++ = '0' + tm.tm_year / 1000;
		*p++ = '0' + tm.tm_year / 100 % 10;
		*p++ = '0' + tm.tm_year / 10 % 10;
		*p++ = '0' + tm.tm_year % 10;
		*p++ = '-';
		*p++ = '0' + tm.tm_mon / 10;
		*p++ = '0' + tm.tm_mon % 10;
		*p++ = '-';
		*p++ = '0' + tm.tm_mday / 10;
		*p++ = '0' + tm.tm_mday % 10;
		*p++ = 'T';
		*p++ = '0' + tm.tm_hour / 10;
		*p++ = '0' + tm.tm_hour % 10;
		*p++ = ':';
		*p++ = '0' + tm.tm_min / 10;
		*p++ = '0' + tm.tm_min % 10;
		*p++ = ':';
		*p++ = '0' + tm.tm_sec / 10;
		*p++ = '0' + tm.tm_sec % 10;
		if (scale > 0)
		{
			char		frac[6];

			for (i = 5; i >= 0; i--)
			{
				frac[i] = '0' + f % 10;
				f /= 10;
			}
			*p++ = '.';
			memcpy(p, frac, Min(scale, 6));
			p += Min(scale, 6);
		}
		*p++ = 'Z';
		*p++ = '"';
		appendBinaryStringInfo(out, buf, p - buf);
	}
}

static void
render_bytea(StringInfo out, Datum d, bool no_hex_prefix, DmsColumnValue *v)
{
	static const char hex[] = "0123456789ABCDEF";
	bytea	   *b = DatumGetByteaPP(d);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(b);
	int			len = VARSIZE_ANY_EXHDR(b);
	char	   *dst;
	int			i;

	enlargeStringInfo(out, len * 2 + 5);
	dst = out->data + out->len;
	*dst++ = '"';
	if (!no_hex_prefix)
	{
		*dst++ = '0';
		*dst++ = 'x';
	}
	for (i = 0; i < len; i++)
	{
		*dst++ = hex[p[i] >> 4];
		*dst++ = hex[p[i] & 15];
	}
	*dst++ = '"';
	out->len = dst - out->data;
	out->data[out->len] = '\0';
	v->is_empty = (len == 0);
}

/* Render one non-NULL value. */
static void
render_value(PgSourceContext *pc, StringInfo out, PgSourceColumn *c, Datum d,
			 DmsColumnValue *v)
{
	char		buf[32];

	v->is_empty = false;
	switch (c->typid)
	{
		case INT2OID:
			pg_ltoa(DatumGetInt16(d), buf);
			appendStringInfoString(out, buf);
			break;
		case INT4OID:
			pg_ltoa(DatumGetInt32(d), buf);
			appendStringInfoString(out, buf);
			break;
		case INT8OID:
			pg_lltoa(DatumGetInt64(d), buf);
			appendStringInfoString(out, buf);
			break;
		case OIDOID:
			appendStringInfo(out, "%u", DatumGetObjectId(d));
			break;
		case BOOLOID:
			appendStringInfoString(out, DatumGetBool(d) ? "true" : "false");
			break;
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			render_output_number(out, c, d);
			break;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			render_timestamp(out, c, d, c->typmod >= 0 ? c->typmod : 6);
			break;
		case BYTEAOID:
			render_bytea(out, d, pc->settings.no_hex_prefix, v);
			break;
		default:
			render_output_string(out, c, d, v);
			break;
	}
}

void
pg_source_render_tuple(PgSourceContext *pc, PgSourceRel *r, TupleDesc desc,
					   HeapTuple tuple, HeapTuple fill, bool before, bool key_only)
{
	StringInfo	out = before ? &pc->before_values : &pc->values;
	DmsColumnValue *vals = before ? pc->before : pc->cur;
	int		   *starts;
	int			natts = Min(desc->natts, r->natts);
	int			i;
	int			s;

	resetStringInfo(out);
	starts = palloc(sizeof(int) * (r->nsource + 1));
	for (i = 0; i < r->nsource; i++)
	{
		vals[i].is_null = false;
		vals[i].is_empty = false;
		vals[i].is_missing = true;
		vals[i].json = NULL;
		vals[i].len = 0;
		starts[i] = -1;
		if (!before)
			pc->unchanged[i] = false;
	}
	/* in source column order: each value's text follows the one before */
	for (s = 0; s < r->nsource; s++)
	{
		PgSourceColumn *c = &r->columns[s];
		int			a = c->tuple_attnum - 1;
		Datum		d;
		bool		isnull;

		if (a >= natts)
			continue;
		if (key_only && !c->in_identity)
			continue;
		d = heap_getattr(tuple, a + 1, desc, &isnull);
		if (!isnull && c->typlen == -1 && pc->stored_tuples &&
			VARATT_IS_EXTERNAL(DatumGetPointer(d)))
		{
			/* A stored value out of line: fetched under the active snapshot. */
			d = PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(d)));
		}
		else if (!isnull && c->typlen == -1 &&
				 VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d)))
		{
			/* An unchanged TOASTed value: not in the WAL. */
			bool		fisnull = true;
			Datum		fd = (Datum) 0;

			if (fill != NULL)
				fd = heap_getattr(fill, a + 1, desc, &fisnull);
			if (fill == NULL || (!fisnull && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(fd))))
			{
				if (!before)
					pc->unchanged[s] = true;
				continue;
			}
			d = fd;
			isnull = fisnull;
		}
		vals[s].is_missing = false;
		starts[s] = out->len;
		if (isnull)
		{
			vals[s].is_null = true;
			continue;
		}
		render_value(pc, out, c, d, &vals[s]);
	}
	for (i = 0; i < r->nsource; i++)
	{
		if (starts[i] < 0 || vals[i].is_null)
			continue;
		vals[i].json = out->data + starts[i];
	}
	/* lengths: each value ends where the next rendered one starts */
	{
		int			prev = -1;

		for (i = 0; i < r->nsource; i++)
		{
			if (starts[i] < 0 || vals[i].is_null)
				continue;
			if (prev >= 0)
				vals[prev].len = starts[i] - starts[prev];
			prev = i;
		}
		if (prev >= 0)
			vals[prev].len = out->len - starts[prev];
	}
	pfree(starts);
}

/* ----------------------------------------------------------------
 * Relations
 * ----------------------------------------------------------------
 */

static void
relcache_callback(Datum arg, Oid relid)
{
	PgSourceContext *pc = pg_source_current;
	HASH_SEQ_STATUS seq;
	PgSourceRel *r;

	if (pc == NULL || pc->rels == NULL)
		return;
	if (OidIsValid(relid))
	{
		r = hash_search(pc->rels, &relid, HASH_FIND, NULL);
		if (r != NULL)
			r->valid = false;
		return;
	}
	hash_seq_init(&seq, pc->rels);
	while ((r = hash_seq_search(&seq)) != NULL)
		r->valid = false;
}

PgSourceContext *
pg_source_context_create(const char *task_name, MappingSet *mappings,
						 const DmsMessageSettings *settings)
{
	PgSourceContext *pc = palloc0(sizeof(PgSourceContext));
	HASHCTL		ctl;

	pc->task_name = pstrdup(task_name);
	pc->mappings = mappings;
	pc->settings = *settings;
	pc->cxt = CurrentMemoryContext;
	pc->row_cxt = AllocSetContextCreate(pc->cxt, "dms_stream change", ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(PgSourceRel);
	ctl.hcxt = pc->cxt;
	pc->rels = hash_create("dms_stream source relations", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	initStringInfo(&pc->values);
	initStringInfo(&pc->before_values);
	initStringInfo(&pc->message);
	initStringInfo(&pc->key);
	pc->stats_size = 16;
	pc->stats = palloc0(sizeof(PgStatTable) * pc->stats_size);
	if (!relcache_callback_registered)
	{
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
		relcache_callback_registered = true;
	}
	return pc;
}

int
pg_source_stat_index(PgSourceContext *pc, const char *schema, const char *table)
{
	int			i;

	for (i = 0; i < pc->nstats; i++)
		if (strcmp(pc->stats[i].schema, schema) == 0 && strcmp(pc->stats[i].table, table) == 0)
			return i;
	if (pc->nstats == pc->stats_size)
	{
		pc->stats_size *= 2;
		pc->stats = repalloc(pc->stats, sizeof(PgStatTable) * pc->stats_size);
	}
	memset(&pc->stats[pc->nstats], 0, sizeof(PgStatTable));
	pc->stats[pc->nstats].schema = MemoryContextStrdup(pc->cxt, schema);
	pc->stats[pc->nstats].table = MemoryContextStrdup(pc->cxt, table);
	return pc->nstats++;
}

static bool
system_schema(const char *schema)
{
	return strcmp(schema, "dms_stream") == 0 || strcmp(schema, "pg_catalog") == 0 ||
		strcmp(schema, "information_schema") == 0 || strncmp(schema, "pg_toast", 8) == 0 ||
		strncmp(schema, "pg_temp", 7) == 0;
}

/*
 * pg_source_target
 *		The table a relation's rows go under (see decoding_plugin.h).
 */
Oid
pg_source_target(PgSourceContext *pc, Oid relid, bool relispartition,
				 const char *schema, const char *table, char **tschema, char **ttable)
{
	Oid			target = relid;
	List	   *ancestors;
	ListCell   *lc;

	*tschema = pstrdup(schema);
	*ttable = pstrdup(table);
	if (!relispartition || !pc->via_root)
		return relid;
	/* immediate parent first: the last selected one is the topmost */
	ancestors = get_partition_ancestors(relid);
	foreach(lc, ancestors)
	{
		Oid			a = lfirst_oid(lc);
		char	   *aname = get_rel_name(a);
		char	   *aschema = get_namespace_name(get_rel_namespace(a));

		if (aname != NULL && aschema != NULL && !system_schema(aschema) &&
			mapping_table_selected(pc->mappings, aschema, aname))
		{
			target = a;
			*tschema = aschema;
			*ttable = aname;
		}
	}
	list_free(ancestors);
	return target;
}

/*
 * rel_columns
 *		Fill r's columns from desc (the table whose name the records carry:
 *		the relation itself or its partition root), mapped by name onto the
 *		attributes of rel, the relation the tuples come from; cols gets the
 *		mapping's view of them.
 */
static void
rel_columns(PgSourceContext *pc, PgSourceRel *r, Relation rel, TupleDesc desc,
			MappingSourceColumn *cols)
{
	TupleDesc	tdesc = RelationGetDescr(rel);
	Bitmapset  *pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	Bitmapset  *ident = RelationGetIdentityKeyBitmap(rel);
	bool		same = RelationGetDescr(rel) == desc;
	int			i;

	r->no_key = !r->identity_full && bms_is_empty(ident);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		PgSourceColumn *c;
		MappingSourceColumn *mc;
		Oid			outfn;
		bool		varlena;
		int			t = i;			/* the attribute of rel */
		int			off;

		if (att->attisdropped)
			continue;
		if (!same)
		{
			for (t = 0; t < tdesc->natts; t++)
				if (!TupleDescAttr(tdesc, t)->attisdropped &&
					strcmp(NameStr(TupleDescAttr(tdesc, t)->attname), NameStr(att->attname)) == 0)
					break;
			if (t == tdesc->natts)
				continue;
		}
		off = TupleDescAttr(tdesc, t)->attnum - FirstLowInvalidHeapAttributeNumber;
		c = &r->columns[r->nsource];
		mc = &cols[r->nsource];
		c->attnum = att->attnum;
		c->tuple_attnum = TupleDescAttr(tdesc, t)->attnum;
		c->typid = att->atttypid;
		c->typmod = att->atttypmod;
		c->typlen = att->attlen;
		c->type = pg_dms_type(att->atttypid, att->atttypmod, &mc->length, &mc->precision,
							  &mc->scale);
		getTypeOutputInfo(att->atttypid, &outfn, &varlena);
		fmgr_info_cxt(outfn, &c->output, r->cxt);
		c->in_identity = r->identity_full || bms_is_member(off, ident);
		mc->name = pstrdup(NameStr(att->attname));
		mc->type = c->type;
		mc->nullable = !att->attnotnull;
		mc->is_pk = bms_is_member(off, pk);
		r->nsource++;
	}
}

/*
 * rel_build
 *		Build r's plan and columns from the relation (r->cxt current).
 *		Stored generated columns are columns like the others (their values
 *		are in the tuples).  A partition whose partitioned ancestor is
 *		selected takes the ancestor's name and columns.
 */
static void
rel_build(PgSourceContext *pc, PgSourceRel *r, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Relation	root = NULL;
	MappingSourceColumn *cols;
	MappingSourceTable src;
	char	   *schema = get_namespace_name(RelationGetNamespace(rel));

	r->schema = schema;
	r->table = pstrdup(RelationGetRelationName(rel));
	r->selected = false;
	r->valid = true;
	r->natts = desc->natts;
	r->target_relid = RelationGetRelid(rel);
	r->identity_full = rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	r->no_key = false;
	r->nsource = 0;
	/* without PublishViaPartitionRoot a partitioned table has no rows */
	if (schema == NULL || system_schema(schema) ||
		(rel->rd_rel->relkind != RELKIND_RELATION &&
		 (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE || !pc->via_root)))
		return;
	r->target_relid = pg_source_target(pc, RelationGetRelid(rel), rel->rd_rel->relispartition,
									   schema, r->table, &r->schema, &r->table);
	if (r->target_relid != RelationGetRelid(rel))
	{
		root = RelationIdGetRelation(r->target_relid);
		if (!RelationIsValid(root))
			return;
	}
	else if (!mapping_table_selected(pc->mappings, r->schema, r->table))
		return;

	{
		TupleDesc	cdesc = root ? RelationGetDescr(root) : desc;

		r->columns = palloc0(sizeof(PgSourceColumn) * Max(cdesc->natts, 1));
		cols = palloc0(sizeof(MappingSourceColumn) * Max(cdesc->natts, 1));
		rel_columns(pc, r, rel, cdesc, cols);
	}
	if (root)
		RelationClose(root);
	src.schema = r->schema;
	src.table = r->table;
	src.is_view = false;
	src.ncolumns = r->nsource;
	src.columns = cols;
	r->plan = mapping_plan_table(pc->mappings, &src);
	if (r->plan->error != NULL)
	{
		ereport(WARNING,
				(errmsg("dms_stream task \"%s\": table %s.%s cannot be replicated: %s",
						pc->task_name, r->schema, r->table, r->plan->error)));
		return;
	}
	r->writer = dms_message_writer_create(r->plan, &pc->settings);
	r->stat_index = pg_source_stat_index(pc, r->schema, r->table);
	r->selected = true;

	if (r->nsource > pc->max_columns)
	{
		MemoryContext old = MemoryContextSwitchTo(pc->cxt);

		pc->max_columns = Max(r->nsource, 16);
		pc->cur = palloc0(sizeof(DmsColumnValue) * pc->max_columns);
		pc->before = palloc0(sizeof(DmsColumnValue) * pc->max_columns);
		pc->unchanged = palloc0(sizeof(bool) * pc->max_columns);
		MemoryContextSwitchTo(old);
	}
}

/*
 * rel_lookup
 *		The entry of a relation; *old gets a copy of the entry as it was
 *		before a rebuild (plan NULL if none), to compare the columns; its
 *		memory (old->cxt) is the caller's to delete.
 */
static PgSourceRel *
rel_lookup(PgSourceContext *pc, Relation rel, PgSourceRel *old_rel)
{
	Oid			relid = RelationGetRelid(rel);
	bool		found;
	PgSourceRel *r;
	MemoryContext old;

	r = hash_search(pc->rels, &relid, HASH_ENTER, &found);
	if (old_rel)
	{
		old_rel->cxt = NULL;
		old_rel->plan = NULL;
	}
	if (found && r->valid)
		return r;
	if (found)
	{
		if (old_rel && r->selected)
			*old_rel = *r;
		else
			MemoryContextDelete(r->cxt);
	}
	r->relid = relid;
	r->cxt = AllocSetContextCreate(pc->cxt, "dms_stream source relation", ALLOCSET_SMALL_SIZES);
	r->plan = NULL;
	r->writer = NULL;
	r->columns = NULL;
	old = MemoryContextSwitchTo(r->cxt);
	rel_build(pc, r, rel);
	MemoryContextSwitchTo(old);
	return r;
}

PgSourceRel *
pg_source_rel(PgSourceContext *pc, Relation rel)
{
	return rel_lookup(pc, rel, NULL);
}

/* ----------------------------------------------------------------
 * The output plugin
 * ----------------------------------------------------------------
 */

static void
dp_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	opt->receive_rewrites = false;

	/*
	 * Creating a slot (pg_create_logical_replication_slot(name,
	 * 'dms_stream'), for an endpoint's SlotName) decodes nothing; reading
	 * changes is for task workers only.
	 */
	if (pg_source_current == NULL && !is_init)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the dms_stream output plugin serves dms_stream task workers only"),
				 errhint("Use the slot through a dms_stream task, or decode with pgoutput, test_decoding or wal2json.")));
}

static void
dp_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	PgSourceContext *pc = pg_source_current;

	if (pc == NULL)
		return;
	pc->xid = txn->xid;
	pc->commit_lsn = txn->final_lsn;
	pc->end_lsn = txn->end_lsn;
	pc->commit_time = txn->xact_time.commit_time;
	pc->ordinal = 0;
	pc->controls = 0;
	pc->emitted = 0;
	snprintf(pc->position, sizeof(pc->position), "%X/%08X", LSN_FORMAT_ARGS(txn->final_lsn));
}

/*
 * emit
 *		Build and spool one record of the current transaction.
 */
static void
emit(PgSourceContext *pc, PgSourceRel *r, DmsChange *ch, PgStatKind stat)
{
	DmsTransaction tx;
	char		event_id[64];
	PgSpoolEntry e;
	bool		control = DMS_OPERATION_IS_CONTROL(ch->operation);
	int64		ordinal = control ? pc->ordinal : pc->ordinal + 1;
	int			sub = control ? pc->controls + 1 : 0;
	int64		key = ordinal * PG_SPOOL_SUBS + sub;

	memset(&tx, 0, sizeof(tx));
	tx.has_id = true;
	tx.id = pc->xid;
	tx.has_record_id = true;
	tx.record_id = ordinal;
	if (pc->has_prev)
	{
		tx.has_prev = true;
		tx.prev_id = pc->prev_xid;
		tx.prev_record_id = pc->prev_records;
	}
	tx.has_commit_timestamp = true;
	tx.commit_timestamp = pc->commit_time;
	tx.stream_position = pc->position;
	{
		/* position:ordinal[.sub], without printf */
		size_t		plen = strlen(pc->position);
		char	   *p = event_id + plen;

		memcpy(event_id, pc->position, plen);
		*p++ = ':';
		p += pg_lltoa(ordinal, p);
		if (control)
		{
			*p++ = '.';
			p += pg_ltoa(sub, p);
		}
		*p = '\0';
	}
	ch->transaction = &tx;
	ch->event_id = event_id;
	ch->timestamp = GetCurrentTimestamp();	/* when this message is built */
	if (!dms_message_build(r->writer, ch, &pc->message, &pc->key))
		return;
	if (control)
		pc->controls = sub;
	else
	{
		pc->ordinal = ordinal;
		pc->controls = 0;
	}
	if (pc->commit_lsn < pc->skip_lsn ||
		(pc->commit_lsn == pc->skip_lsn && key <= pc->skip_ordinal))
	{
		pc->skipped++;
		return;
	}
	memset(&e, 0, sizeof(e));
	e.kind = PG_SPOOL_RECORD;
	e.data_len = pc->message.len;
	e.key_len = pc->key.len;
	e.table = r->stat_index;
	e.stat = stat;
	e.xid = pc->xid;
	e.commit_lsn = pc->commit_lsn;
	e.end_lsn = pc->end_lsn;
	e.commit_time = pc->commit_time;
	e.ordinal = key;
	pg_spool_write(pc->spool, &e, pc->message.data, pc->key.data);
	pc->emitted++;
}

/* A column control record (rename: old_name is the name before). */
static void
emit_column_control(PgSourceContext *pc, PgSourceRel *r, DmsOperation op,
					const MappingSourceColumn *col, const char *old_name)
{
	DmsChange	ch;
	json_t	   *ctl = json_object();

	json_object_set_new(ctl, "column-name", json_string(col->name));
	if (op == DMS_OP_ADD_COLUMN)
		json_object_set_new(ctl, "column-type", json_string(dms_control_type_name(col->type)));
	if (old_name != NULL)
		json_object_set_new(ctl, "old-column-name", json_string(old_name));
	memset(&ch, 0, sizeof(ch));
	ch.operation = op;
	ch.control = ctl;
	emit(pc, r, &ch, PG_STAT_DDL);
}

/* The source column of plan with that name, or -1. */
static int
plan_column(MappingTablePlan *plan, const char *name)
{
	int			i;

	for (i = 0; i < plan->nsource; i++)
		if (strcmp(plan->source[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * emit_column_changes
 *		Control records for the columns renamed, added and dropped since
 *		old (the entry before its rebuild): a column of the same attribute
 *		number under another name was renamed.
 */
static void
emit_column_changes(PgSourceContext *pc, PgSourceRel *r, PgSourceRel *old)
{
	MappingTablePlan *old_plan = old->plan;
	bool	   *renamed_old = palloc0(sizeof(bool) * Max(old_plan->nsource, 1));
	int			i;
	int			j;

	for (i = 0; i < r->plan->nsource; i++)
	{
		int			rename_from = -1;

		if (plan_column(old_plan, r->plan->source[i].name) >= 0)
			continue;
		for (j = 0; j < old_plan->nsource && j < old->nsource; j++)
			if (old->columns[j].attnum == r->columns[i].attnum &&
				plan_column(r->plan, old_plan->source[j].name) < 0)
				rename_from = j;
		if (rename_from >= 0)
		{
			renamed_old[rename_from] = true;
			emit_column_control(pc, r, DMS_OP_RENAME_COLUMN, &r->plan->source[i],
								old_plan->source[rename_from].name);
		}
		else
			emit_column_control(pc, r, DMS_OP_ADD_COLUMN, &r->plan->source[i], NULL);
	}
	for (j = 0; j < old_plan->nsource; j++)
		if (!renamed_old[j] && plan_column(r->plan, old_plan->source[j].name) < 0)
			emit_column_control(pc, r, DMS_OP_DROP_COLUMN, &old_plan->source[j], NULL);
}

/*
 * warn_no_key
 *		An update or delete of a table without a replica identity key is
 *		not replicated (DMS ignores updates and deletes of PostgreSQL tables
 *		without a primary key): say so once per table and run.
 */
static void
warn_no_key(PgSourceContext *pc, PgSourceRel *r)
{
	PgStatTable *st = &pc->stats[r->stat_index];

	if (st->warned_no_key)
		return;
	st->warned_no_key = true;
	ereport(WARNING,
			(errmsg("dms_stream task \"%s\": table %s.%s has no primary key or replica identity: its updates and deletes are not replicated",
					pc->task_name, r->schema, r->table),
			 errdetail("PostgreSQL logs no old key for them; as in AWS DMS, only its inserts (and TRUNCATE) are sent."),
			 errhint("Add a primary key, or ALTER TABLE %s.%s REPLICA IDENTITY FULL (or USING INDEX).",
					 quote_identifier(r->schema), quote_identifier(r->table))));
	task_worker_set_phase("cdc: table %s.%s has no primary key or replica identity: updates and deletes not replicated",
						  r->schema, r->table);
}

static void
dp_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation relation,
		  ReorderBufferChange *change)
{
	PgSourceContext *pc = pg_source_current;
	MemoryContext old;
	PgSourceRel old_rel;
	PgSourceRel *r;
	TupleDesc	desc = RelationGetDescr(relation);
	DmsChange	ch;
	HeapTuple	newtup;
	HeapTuple	oldtup;
	PgStatKind	stat;

	if (pc == NULL || pc->spool == NULL)
		return;
	if ((pc->ordinal & 1023) == 0)
		CHECK_FOR_INTERRUPTS();
	old = MemoryContextSwitchTo(pc->row_cxt);
	r = rel_lookup(pc, relation, &old_rel);
	if (!r->selected)
		goto done;
	if (old_rel.plan != NULL)
		emit_column_changes(pc, r, &old_rel);
	if (r->no_key && change->action != REORDER_BUFFER_CHANGE_INSERT)
	{
		warn_no_key(pc, r);
		goto done;
	}

	newtup = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
	oldtup = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : NULL;
	memset(&ch, 0, sizeof(ch));
	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			if (newtup == NULL)
				goto done;
			pg_source_render_tuple(pc, r, desc, newtup, NULL, false, false);
			ch.operation = DMS_OP_INSERT;
			stat = PG_STAT_INSERT;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (newtup == NULL)
				goto done;
			pg_source_render_tuple(pc, r, desc, newtup,
								   r->identity_full ? oldtup : NULL, false, false);
			if (oldtup != NULL)
			{
				pg_source_render_tuple(pc, r, desc, oldtup, NULL, true, !r->identity_full);
				ch.before = pc->before;
			}
			ch.operation = DMS_OP_UPDATE;
			stat = PG_STAT_UPDATE;
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			if (oldtup != NULL)
				pg_source_render_tuple(pc, r, desc, oldtup, NULL, false, !r->identity_full);
			else
			{
				int			i;

				for (i = 0; i < r->nsource; i++)
				{
					memset(&pc->cur[i], 0, sizeof(DmsColumnValue));
					pc->cur[i].is_missing = true;
					pc->unchanged[i] = false;
				}
			}
			ch.operation = DMS_OP_DELETE;
			stat = PG_STAT_DELETE;
			break;
		default:
			goto done;
	}
	if (!mapping_row_passes(r->plan, pc->cur))
		goto done;
	ch.values = pc->cur;
	if (ch.operation == DMS_OP_UPDATE)
	{
		int			i;

		for (i = 0; i < r->nsource; i++)
			if (pc->unchanged[i])
			{
				ch.unchanged = pc->unchanged;
				break;
			}
	}
	emit(pc, r, &ch, stat);

done:
	MemoryContextSwitchTo(old);
	MemoryContextReset(pc->row_cxt);
	if (old_rel.cxt != NULL)
		MemoryContextDelete(old_rel.cxt);
}

static void
dp_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, int nrelations,
			Relation relations[], ReorderBufferChange *change)
{
	PgSourceContext *pc = pg_source_current;
	MemoryContext old;
	Oid		   *sent;
	int			nsent = 0;
	int			i;

	if (pc == NULL || pc->spool == NULL)
		return;
	old = MemoryContextSwitchTo(pc->row_cxt);
	sent = palloc(sizeof(Oid) * Max(nrelations, 1));
	for (i = 0; i < nrelations; i++)
	{
		PgSourceRel *r = pg_source_rel(pc, relations[i]);
		DmsChange	ch;
		json_t	   *ctl;
		int			k;

		/*
		 * A partition sent under its root's name: as pgoutput with
		 * publish_via_partition_root, only a TRUNCATE of the root (which
		 * lists it) is sent, once.
		 */
		if (!r->selected || r->target_relid != r->relid)
			continue;
		for (k = 0; k < nsent && sent[k] != r->target_relid; k++)
			;
		if (k < nsent)
			continue;
		sent[nsent++] = r->target_relid;
		ctl = json_object();
		json_object_set_new(ctl, "operation", json_string("TRUNCATE"));
		json_object_set_new(ctl, "cascade",
							json_boolean(change->data.truncate.cascade));
		json_object_set_new(ctl, "restart-identity",
							json_boolean(change->data.truncate.restart_seqs));
		memset(&ch, 0, sizeof(ch));
		ch.operation = DMS_OP_TRUNCATE_TABLE;
		ch.control = ctl;
		emit(pc, r, &ch, PG_STAT_DDL);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(pc->row_cxt);
}

/*
 * dp_message
 *		A table dropped: the event trigger dms_stream_drop_table (sql_drop)
 *		writes a transactional logical message, prefix
 *		"dms_stream_drop_table", {"oid", "schema", "table"} per dropped
 *		table, decoded here in commit order after the transaction's changes
 *		before the DROP.  A table known to the cache goes by what it was (a
 *		partition sent under its root's name is no table of the stream);
 *		another one by its name and the selection rules.
 */
static void
dp_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn,
		   bool transactional, const char *prefix, Size sz, const char *message)
{
	PgSourceContext *pc = pg_source_current;
	MemoryContext old;
	json_t	   *doc;
	json_error_t err;
	Oid			relid;
	const char *schema;
	const char *table;
	PgSourceRel *r;
	PgSourceRel tmp;
	DmsChange	ch;

	if (pc == NULL || pc->spool == NULL || !transactional ||
		strcmp(prefix, "dms_stream_drop_table") != 0)
		return;
	doc = json_loadb(message, sz, 0, &err);
	if (doc == NULL)
		return;
	relid = (Oid) json_integer_value(json_object_get(doc, "oid"));
	schema = json_string_value(json_object_get(doc, "schema"));
	table = json_string_value(json_object_get(doc, "table"));
	old = MemoryContextSwitchTo(pc->row_cxt);
	r = hash_search(pc->rels, &relid, HASH_FIND, NULL);
	if (r != NULL)
	{
		if (!r->selected || r->target_relid != r->relid || r->writer == NULL)
			goto done;
	}
	else
	{
		MappingSourceTable src;

		if (schema == NULL || table == NULL || system_schema(schema) ||
			!mapping_table_selected(pc->mappings, schema, table))
			goto done;
		memset(&src, 0, sizeof(src));
		src.schema = pstrdup(schema);
		src.table = pstrdup(table);
		memset(&tmp, 0, sizeof(tmp));
		tmp.plan = mapping_plan_table(pc->mappings, &src);
		if (tmp.plan->error != NULL)
			goto done;
		tmp.writer = dms_message_writer_create(tmp.plan, &pc->settings);
		tmp.stat_index = pg_source_stat_index(pc, schema, table);
		r = &tmp;
	}
	memset(&ch, 0, sizeof(ch));
	ch.operation = DMS_OP_DROP_TABLE;
	ch.control = json_object();
	emit(pc, r, &ch, PG_STAT_DDL);
done:
	json_decref(doc);
	MemoryContextSwitchTo(old);
	MemoryContextReset(pc->row_cxt);
}

static void
dp_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	PgSourceContext *pc = pg_source_current;
	PgSpoolEntry e;

	if (pc == NULL || pc->spool == NULL)
		return;
	if (pc->emitted > 0)
	{
		memset(&e, 0, sizeof(e));
		e.kind = PG_SPOOL_COMMIT;
		e.table = -1;
		e.stat = PG_STAT_NONE;
		e.xid = pc->xid;
		e.commit_lsn = pc->commit_lsn;
		e.end_lsn = pc->end_lsn;
		e.commit_time = pc->commit_time;
		e.ordinal = pc->ordinal * PG_SPOOL_SUBS + pc->controls;
		pg_spool_write(pc->spool, &e, NULL, NULL);
	}
	if (pc->ordinal > 0)
	{
		pc->has_prev = true;
		pc->prev_xid = pc->xid;
		pc->prev_records = pc->ordinal;
	}
}

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	AssertVariableIsOfType(&_PG_output_plugin_init, LogicalOutputPluginInit);

	cb->startup_cb = dp_startup;
	cb->begin_cb = dp_begin;
	cb->change_cb = dp_change;
	cb->truncate_cb = dp_truncate;
	cb->message_cb = dp_message;
	cb->commit_cb = dp_commit;
}
