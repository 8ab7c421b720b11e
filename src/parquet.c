/*-------------------------------------------------------------------------
 *
 * parquet.c
 *	  The Apache Parquet file writer of dms_stream (see parquet.h).
 *
 * File layout written:
 *
 *	 "PAR1"
 *	 row group 1: column chunk 1 .. column chunk N
 *	   column chunk: [dictionary page] data page ...
 *	 ...
 *	 FileMetaData (Thrift compact), its length (4 bytes LE), "PAR1"
 *
 * Data pages are DataPage V1: repetition levels (list columns only) and
 * definition levels, each RLE/bit-packed hybrid with a 4-byte length
 * prefix, then the values: PLAIN, or RLE_DICTIONARY (a bit-width byte and
 * RLE/bit-packed dictionary indexes).  A column chunk starts with a PLAIN
 * dictionary page when any of its data pages is dictionary-encoded.  Pages
 * are compressed whole (none, snappy, gzip or zstd).  Every column is
 * OPTIONAL (a query's result says nothing reliable about NULLs).
 *
 * Dictionary: while a chunk's dictionary stays under dictionary_bytes (and
 * 131072 entries; both shrink for tables of more than 10 columns so that
 * all dictionaries stay near 32 MB), every value is looked up in a hash
 * table and its index stored; when it grows past that, the current page is
 * finished and the rest of the chunk is PLAIN (the dictionary page still
 * serves the earlier pages).  When the dictionary with the indexes of the
 * chunk's first page (checked at its end or after 20000 values, whichever
 * comes first) is not smaller than those values PLAIN (values mostly
 * unique), they are rewritten PLAIN and the chunk gives up its dictionary
 * (parquet-mr's rule, decided early).
 * Booleans are always PLAIN.  A page holds at most page_bytes (shrunk for
 * tables of more than 16 columns so that all pages stay near 16 MB) and 1M
 * level entries (fewer for wide tables).
 *
 * Statistics per column chunk: null_count (leaf slots without a value, so
 * NULL lists and empty lists count), min_value and max_value in the type's
 * sort order (signed integers, IEEE floats without NaN with -0/+0 as the
 * spec asks, unsigned bytes for strings, binary and UUID, signed
 * two's-complement for FIXED_LEN_BYTE_ARRAY decimals), and the deprecated
 * min/max only for the types whose legacy order is the same (BOOLEAN,
 * INT32, INT64, FLOAT, DOUBLE).  With dictionary encoding, statistics are
 * updated only when a new dictionary entry is added.  A byte-array min or
 * max longer than PQ_MAX_STAT_BYTES is not written (null_count still is).
 *
 * Type mapping (README.md, "Parquet type mapping"; a domain maps as its
 * base type, an array of a mapped type as a 3-level LIST of it):
 *
 *	 boolean						BOOLEAN
 *	 smallint						INT32, INTEGER(16, signed)
 *	 integer						INT32, INTEGER(32, signed)
 *	 bigint							INT64, INTEGER(64, signed)
 *	 real / double precision		FLOAT / DOUBLE (NaN, +-Infinity and -0 kept)
 *	 numeric(p,s), p <= 9			INT32 DECIMAL(p,s)
 *	 numeric(p,s), p <= 18			INT64 DECIMAL(p,s)
 *	 numeric(p,s), p <= 38			FIXED_LEN_BYTE_ARRAY(n) DECIMAL(p,s)
 *	 numeric(p,s), p > 38, numeric	BYTE_ARRAY STRING: the exact text
 *	 text, varchar, char(n), name	BYTE_ARRAY STRING
 *	 enum							BYTE_ARRAY STRING (the label)
 *	 json, jsonb					BYTE_ARRAY JSON (jsonb as its text)
 *	 bytea							BYTE_ARRAY
 *	 uuid							FIXED_LEN_BYTE_ARRAY(16) UUID
 *	 date							INT32 DATE (+-infinity: INT32 max / -max)
 *	 time							INT64 TIME(MICROS, not UTC-adjusted)
 *	 timestamp						INT64 TIMESTAMP(MICROS, not UTC-adjusted)
 *	 timestamptz					INT64 TIMESTAMP(MICROS, UTC-adjusted)
 *									(+-infinity: INT64 max / -max)
 *
 * numeric(p,s) with a negative scale is DECIMAL(p-s, 0), and with s > p it
 * is DECIMAL(s, s).  A numeric NaN or infinity in a DECIMAL column, or a
 * timestamp past 294247-01-10 (Unix microseconds overflow int64), is an
 * error naming the column and row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/arrayaccess.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "parquet.h"
#include "parquet_thrift.h"

#ifdef WORDS_BIGENDIAN
#error "the Parquet writer assumes a little-endian machine"
#endif

#ifndef DMS_STREAM_VERSION
#define DMS_STREAM_VERSION "dev"
#endif

/* Parquet enums (parquet.thrift). */
#define PT_BOOLEAN	0
#define PT_INT32	1
#define PT_INT64	2
#define PT_FLOAT	4
#define PT_DOUBLE	5
#define PT_BYTE_ARRAY 6
#define PT_FLBA		7

#define REP_REQUIRED 0
#define REP_OPTIONAL 1
#define REP_REPEATED 2

#define CT_UTF8		0
#define CT_LIST		3
#define CT_DECIMAL	5
#define CT_DATE		6
#define CT_TIME_MICROS 8
#define CT_TIMESTAMP_MICROS 10
#define CT_INT_16	16
#define CT_INT_32	17
#define CT_INT_64	18
#define CT_JSON		19

#define ENC_PLAIN	0
#define ENC_RLE		3
#define ENC_RLE_DICTIONARY 8

#define PAGE_DATA	0
#define PAGE_DICTIONARY 2

/* Days and microseconds between 1970-01-01 and 2000-01-01. */
#define PQ_EPOCH_DAYS 10957
#define PQ_EPOCH_MICROS INT64CONST(946684800000000)

/* Longest byte-array min/max written in statistics. */
#define PQ_MAX_STAT_BYTES 4096

/*
 * Most level entries in one page: 1M, fewer for tables of more than 2
 * columns so that the pages' level and index arrays (6 bytes an entry)
 * together stay near PQ_PAGE_LEVELS_BUDGET, but not under 8K.  Large pages
 * matter: the compressors only see one page at a time.
 */
#define PQ_PAGE_LEVELS_BUDGET (16 * 1024 * 1024)

/* What the writer aims to stay under, for the row group's size. */
#define PQ_MEMORY_TARGET (INT64CONST(100) * 1024 * 1024)

/* page_bytes shrinks for wide tables so that all pages stay near this. */
#define PQ_PAGE_BYTES_BUDGET (16 * 1024 * 1024)

/*
 * Dictionary limits per column: dictionary_bytes and PQ_DICT_MAX_ENTRIES,
 * both shrunk for wide tables so that all dictionaries and their hash tables
 * together stay near PQ_DICT_BUDGET bytes.
 */
#define PQ_DICT_MAX_ENTRIES 131072

/* Values after which a chunk's first page decides whether its dictionary pays. */
#define PQ_DICT_PROBE 20000
#define PQ_DICT_BUDGET (32 * 1024 * 1024)

/* How a PostgreSQL value becomes a Parquet value. */
typedef enum PqKind
{
	PK_BOOL,
	PK_INT2,
	PK_INT4,
	PK_INT8,
	PK_FLOAT4,
	PK_FLOAT8,
	PK_DECIMAL,					/* numeric(p,s) as INT32/INT64/FLBA */
	PK_NUMERIC_TEXT,			/* numeric as its text */
	PK_VARLENA,					/* text, varchar, bpchar, json, bytea */
	PK_NAME,
	PK_JSONB,
	PK_ENUM,
	PK_DATE,
	PK_TIME,
	PK_TIMESTAMP,				/* timestamp and timestamptz */
	PK_UUID
} PqKind;

/* Logical type annotation. */
typedef enum PqLogical
{
	LT_NONE,
	LT_STRING,
	LT_JSON,
	LT_INT16,
	LT_INT32,
	LT_INT64,
	LT_DECIMAL,
	LT_DATE,
	LT_TIME,
	LT_TIMESTAMP,
	LT_TIMESTAMPTZ,
	LT_UUID
} PqLogical;

/* Sort order of statistics. */
typedef enum PqStatOrder
{
	SO_BOOL,
	SO_INT32,
	SO_INT64,
	SO_FLOAT,
	SO_DOUBLE,
	SO_UNSIGNED,				/* bytes, unsigned lexicographic */
	SO_SIGNED_BE				/* two's-complement big-endian (decimal) */
} PqStatOrder;

/*
 * A column chunk's pages: a list of blocks rather than one growing buffer,
 * so that a row group costs its size in memory, not up to twice that, and
 * nothing is copied as it grows.
 */
#define PQ_BLOCK_SIZE (64 * 1024)

typedef struct PqBlock
{
	struct PqBlock *next;
	size_t		len;
	size_t		cap;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} PqBlock;

typedef struct PqBlocks
{
	PqBlock    *head;
	PqBlock    *tail;
	size_t		len;			/* bytes in all blocks */
	MemoryContext cxt;
} PqBlocks;

typedef struct PqEnumEntry
{
	Oid			oid;			/* InvalidOid: empty slot */
	uint32		off;			/* label in enum_labels */
	uint32		len;
} PqEnumEntry;

typedef struct PqColumn
{
	/* schema */
	char	   *name;
	int			attnum;			/* index into the row's values */
	PqKind		kind;
	PqLogical	logical;
	PqStatOrder order;
	int			phys;
	int			type_length;	/* FLBA width, else 0 */
	int			precision;
	int			scale;
	bool		is_list;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	int			max_def;
	int			max_rep;

	/* current page */
	uint8	   *def;
	uint8	   *rep;
	int			nlevels;
	int			levels_cap;
	uint32	   *idx;			/* dictionary indexes */
	int			nidx;
	int			idx_cap;
	PqBuf		plain;			/* PLAIN values */
	int64		nbits;			/* booleans in plain */
	int64		page_plain_bytes;	/* PLAIN size of the page's indexed values */

	/* dictionary of the current chunk */
	bool		dict_active;	/* values still go to the dictionary */
	bool		dict_pages;		/* some page of the chunk uses it */
	PqBuf		dict;			/* PLAIN-encoded entries */
	uint32		dict_count;
	uint32		dict_cap;
	uint32	   *dict_off;		/* per entry: offset in dict (byte arrays) */
	uint64	   *slots;			/* hash table: SLOT(hash, entry), 0 = free */
	uint32		nslots;

	/* current chunk */
	PqBlocks	chunk;			/* data pages, headers and bodies */
	int64		chunk_values;
	int64		chunk_uncompressed;
	int64		chunk_compressed;
	bool		chunk_plain;	/* some page is PLAIN */

	/* statistics of the current chunk */
	int64		null_count;
	bool		has_minmax;
	union
	{
		int32		i32;
		int64		i64;
		float4		f4;
		float8		f8;
	}			min, max;
	PqBuf		min_bytes;
	PqBuf		max_bytes;

	/* enum label cache */
	PqEnumEntry *enum_slots;
	int			enum_nslots;
	int			enum_count;
	PqBuf		enum_labels;
} PqColumn;

typedef struct PqChunkMeta
{
	int64		dict_offset;	/* -1: no dictionary page */
	int64		data_offset;
	int64		num_values;
	int64		uncompressed;
	int64		compressed;
	bool		enc_plain;
	bool		enc_dict;
	int64		null_count;
	bool		has_minmax;
	char	   *min;
	int			min_len;
	char	   *max;
	int			max_len;
} PqChunkMeta;

typedef struct PqRowGroupMeta
{
	int64		num_rows;
	int64		file_offset;
	int64		uncompressed;
	int64		compressed;
	PqChunkMeta *chunks;
} PqRowGroupMeta;

struct ParquetWriter
{
	MemoryContext cxt;
	MemoryContext row_cxt;		/* detoasted values; reset after each row */
	ParquetWriterOptions opts;
	ParquetSink sink;
	void	   *sink_arg;

	int			ncols;
	PqColumn   *cols;

	int64		rows;
	int64		rg_rows;
	int64		offset;			/* bytes given to the sink */
	int64		dict_max_bytes; /* per column */
	uint32		dict_max_entries;	/* per column */
	int			page_max_levels;	/* per column */
	int64		page_max_bytes; /* per column */
	int64		rg_max_bytes;	/* row_group_bytes, lowered for wide tables */
	bool		convert_utf8;	/* the database encoding is not UTF-8 */
	bool		finished;

	PqBuf		page;			/* page body being assembled */
	PqBuf		cbuf;			/* compressed page body */
	PqBuf		hdr;			/* page header */
	StringInfoData text;		/* jsonb text */

	PqRowGroupMeta *rgs;
	int			nrgs;
	int			rgs_cap;

	ZSTD_CCtx  *zstd;
	z_stream	zs;
	bool		zs_ready;
};

/* ---------------------------------------------------------------- options */

/*
 * parquet_writer_default_options
 *		Fill opts with the defaults: Snappy at the codec's default level,
 *		row groups of at most 1,000,000 rows and 64 MB, 1 MB pages,
 *		dictionary encoding with 1 MB dictionaries, the default created_by.
 */
void
parquet_writer_default_options(ParquetWriterOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->codec = PARQUET_CODEC_SNAPPY;
	opts->compression_level = 0;
	opts->row_group_rows = 1000000;
	opts->row_group_bytes = INT64CONST(64) * 1024 * 1024;
	opts->page_bytes = 1024 * 1024;
	opts->dictionary = true;
	opts->dictionary_bytes = 1024 * 1024;
	opts->created_by = NULL;
}

/*
 * parquet_codec_parse
 *		Set *codec from its name (none or uncompressed, snappy, gzip, zstd;
 *		any case); false for an unknown name.
 */
bool
parquet_codec_parse(const char *name, ParquetCodec *codec)
{
	if (pg_strcasecmp(name, "none") == 0 || pg_strcasecmp(name, "uncompressed") == 0)
		*codec = PARQUET_CODEC_NONE;
	else if (pg_strcasecmp(name, "snappy") == 0)
		*codec = PARQUET_CODEC_SNAPPY;
	else if (pg_strcasecmp(name, "gzip") == 0)
		*codec = PARQUET_CODEC_GZIP;
	else if (pg_strcasecmp(name, "zstd") == 0)
		*codec = PARQUET_CODEC_ZSTD;
	else
		return false;
	return true;
}

/*
 * codec_id
 *		Parquet's CompressionCodec value of codec (UNCOMPRESSED 0, SNAPPY 1,
 *		GZIP 2, ZSTD 6).
 */
static int
codec_id(ParquetCodec codec)
{
	switch (codec)
	{
		case PARQUET_CODEC_NONE:
			return 0;
		case PARQUET_CODEC_SNAPPY:
			return 1;
		case PARQUET_CODEC_GZIP:
			return 2;
		case PARQUET_CODEC_ZSTD:
			return 6;
	}
	return 0;
}

/* ---------------------------------------------------------------- type mapping */

/*
 * decimal_bytes
 *		Bytes of a FIXED_LEN_BYTE_ARRAY that holds any unscaled value of
 *		precision digits: the smallest n with 2^(8n-1) > 10^precision.
 */
static int
decimal_bytes(int precision)
{
	/* smallest n with 2^(8n-1) > 10^p */
	int			n = 1;
	double		limit = pow(10.0, precision);

	while (ldexp(1.0, 8 * n - 1) <= limit)
		n++;
	return n;
}

/*
 * map_scalar
 *		Set the writer kind, physical and logical type and statistics order
 *		of column c from the scalar type typid (the column's, or its arrays'
 *		element type, with domains resolved): numerics with a precision up
 *		to 38 become DECIMAL in INT32, INT64 or a fixed-length array, other
 *		numerics strings, enums strings.  An unsupported type is an ERROR
 *		that names the column's type coltype/coltypmod.
 */
static void
map_scalar(PqColumn *c, Oid typid, int32 typmod, Oid coltype, int32 coltypmod)
{
	c->type_length = 0;
	c->logical = LT_NONE;

	switch (typid)
	{
		case BOOLOID:
			c->kind = PK_BOOL;
			c->phys = PT_BOOLEAN;
			c->order = SO_BOOL;
			return;
		case INT2OID:
			c->kind = PK_INT2;
			c->phys = PT_INT32;
			c->logical = LT_INT16;
			c->order = SO_INT32;
			return;
		case INT4OID:
			c->kind = PK_INT4;
			c->phys = PT_INT32;
			c->logical = LT_INT32;
			c->order = SO_INT32;
			return;
		case INT8OID:
			c->kind = PK_INT8;
			c->phys = PT_INT64;
			c->logical = LT_INT64;
			c->order = SO_INT64;
			return;
		case FLOAT4OID:
			c->kind = PK_FLOAT4;
			c->phys = PT_FLOAT;
			c->order = SO_FLOAT;
			return;
		case FLOAT8OID:
			c->kind = PK_FLOAT8;
			c->phys = PT_DOUBLE;
			c->order = SO_DOUBLE;
			return;
		case NUMERICOID:
			if (typmod >= (int32) VARHDRSZ)
			{
				int			p = ((typmod - VARHDRSZ) >> 16) & 0xffff;
				int			s = (((typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;
				int			pp = s < 0 ? p - s : Max(p, s);
				int			ss = Max(s, 0);

				if (pp <= 38)
				{
					c->kind = PK_DECIMAL;
					c->logical = LT_DECIMAL;
					c->precision = pp;
					c->scale = ss;
					if (pp <= 9)
					{
						c->phys = PT_INT32;
						c->order = SO_INT32;
					}
					else if (pp <= 18)
					{
						c->phys = PT_INT64;
						c->order = SO_INT64;
					}
					else
					{
						c->phys = PT_FLBA;
						c->type_length = decimal_bytes(pp);
						c->order = SO_SIGNED_BE;
					}
					return;
				}
			}
			c->kind = PK_NUMERIC_TEXT;
			c->phys = PT_BYTE_ARRAY;
			c->logical = LT_STRING;
			c->order = SO_UNSIGNED;
			return;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			c->kind = PK_VARLENA;
			c->phys = PT_BYTE_ARRAY;
			c->logical = LT_STRING;
			c->order = SO_UNSIGNED;
			return;
		case NAMEOID:
			c->kind = PK_NAME;
			c->phys = PT_BYTE_ARRAY;
			c->logical = LT_STRING;
			c->order = SO_UNSIGNED;
			return;
		case JSONOID:
			c->kind = PK_VARLENA;
			c->phys = PT_BYTE_ARRAY;
			c->logical = LT_JSON;
			c->order = SO_UNSIGNED;
			return;
		case JSONBOID:
			c->kind = PK_JSONB;
			c->phys = PT_BYTE_ARRAY;
			c->logical = LT_JSON;
			c->order = SO_UNSIGNED;
			return;
		case BYTEAOID:
			c->kind = PK_VARLENA;
			c->phys = PT_BYTE_ARRAY;
			c->order = SO_UNSIGNED;
			return;
		case UUIDOID:
			c->kind = PK_UUID;
			c->phys = PT_FLBA;
			c->type_length = UUID_LEN;
			c->logical = LT_UUID;
			c->order = SO_UNSIGNED;
			return;
		case DATEOID:
			c->kind = PK_DATE;
			c->phys = PT_INT32;
			c->logical = LT_DATE;
			c->order = SO_INT32;
			return;
		case TIMEOID:
			c->kind = PK_TIME;
			c->phys = PT_INT64;
			c->logical = LT_TIME;
			c->order = SO_INT64;
			return;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			c->kind = PK_TIMESTAMP;
			c->phys = PT_INT64;
			c->logical = typid == TIMESTAMPOID ? LT_TIMESTAMP : LT_TIMESTAMPTZ;
			c->order = SO_INT64;
			return;
		default:
			break;
	}
	if (type_is_enum(typid))
	{
		c->kind = PK_ENUM;
		c->phys = PT_BYTE_ARRAY;
		c->logical = LT_STRING;
		c->order = SO_UNSIGNED;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("column \"%s\" has type %s, which has no Parquet mapping",
					c->name, format_type_with_typemod(coltype, coltypmod)),
			 errhint("Cast the column in the query to a supported type (e.g. text); "
					 "README.md lists the mapping (\"Parquet type mapping\").")));
}

/*
 * map_column
 *		Map column c of type coltype (domains resolved) to Parquet: a
 *		one-dimensional array type becomes a LIST of its element type
 *		(definition levels 0-3, repetition level 1), any other type an
 *		optional scalar; an array of arrays is an ERROR.
 */
static void
map_column(PqColumn *c, Oid coltype, int32 coltypmod)
{
	int32		typmod = coltypmod;
	Oid			base = getBaseTypeAndTypmod(coltype, &typmod);
	Oid			elem = get_element_type(base);

	c->is_list = false;
	c->max_def = 1;
	c->max_rep = 0;
	if (OidIsValid(elem))
	{
		int32		elmtypmod = typmod;
		Oid			elembase = getBaseTypeAndTypmod(elem, &elmtypmod);

		if (OidIsValid(get_element_type(elembase)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" has type %s, which has no Parquet mapping",
							c->name, format_type_with_typemod(coltype, coltypmod))));
		c->is_list = true;
		c->max_def = 3;
		c->max_rep = 1;
		get_typlenbyvalalign(elem, &c->elmlen, &c->elmbyval, &c->elmalign);
		map_scalar(c, elembase, elmtypmod, coltype, coltypmod);
	}
	else
		map_scalar(c, base, typmod, coltype, coltypmod);
}

/* ---------------------------------------------------------------- compression */

/*
 * pq_zalloc
 *		zlib's allocator: memory of the writer's context, passed as opaque.
 */
static void *
pq_zalloc(void *opaque, uInt items, uInt size)
{
	return MemoryContextAlloc((MemoryContext) opaque, (Size) items * size);
}

/*
 * pq_zfree
 *		zlib's deallocator: pfree.
 */
static void
pq_zfree(void *opaque, void *address)
{
	pfree(address);
}

/*
 * writer_cxt_reset
 *		Reset callback of the writer's memory context: free the zstd
 *		context, which libzstd allocated with malloc.
 */
static void
writer_cxt_reset(void *arg)
{
	ParquetWriter *w = (ParquetWriter *) arg;

	if (w->zstd)
	{
		ZSTD_freeCCtx(w->zstd);
		w->zstd = NULL;
	}
}

/*
 * compress_body
 *		Compress the len bytes at src with the writer's codec into w->cbuf
 *		and return them with their length in *out_len; with no codec, src
 *		itself.  The gzip stream and zstd context are created by the first
 *		call and reused; a codec failure is an ERROR.
 */
static const char *
compress_body(ParquetWriter *w, const char *src, size_t len, size_t *out_len)
{
	switch (w->opts.codec)
	{
		case PARQUET_CODEC_NONE:
			*out_len = len;
			return src;
		case PARQUET_CODEC_SNAPPY:
			{
				size_t		cap = snappy_max_compressed_length(len);

				w->cbuf.len = 0;
				pq_buf_reserve(&w->cbuf, cap);
				if (snappy_compress(src, len, w->cbuf.data, &cap) != SNAPPY_OK)
					elog(ERROR, "snappy compression failed");
				*out_len = cap;
				return w->cbuf.data;
			}
		case PARQUET_CODEC_GZIP:
			{
				size_t		cap;
				int			rc;

				if (!w->zs_ready)
				{
					int			level = w->opts.compression_level > 0 ?
						Min(w->opts.compression_level, 9) : Z_DEFAULT_COMPRESSION;

					memset(&w->zs, 0, sizeof(w->zs));
					w->zs.zalloc = pq_zalloc;
					w->zs.zfree = pq_zfree;
					w->zs.opaque = w->cxt;
					if (deflateInit2(&w->zs, level, Z_DEFLATED, 15 + 16, 8,
									 Z_DEFAULT_STRATEGY) != Z_OK)
						elog(ERROR, "could not initialise gzip compression");
					w->zs_ready = true;
				}
				else
					deflateReset(&w->zs);
				cap = deflateBound(&w->zs, len) + 64;
				w->cbuf.len = 0;
				pq_buf_reserve(&w->cbuf, cap);
				w->zs.next_in = (Bytef *) src;
				w->zs.avail_in = len;
				w->zs.next_out = (Bytef *) w->cbuf.data;
				w->zs.avail_out = cap;
				rc = deflate(&w->zs, Z_FINISH);
				if (rc != Z_STREAM_END)
					elog(ERROR, "gzip compression failed: %d", rc);
				*out_len = cap - w->zs.avail_out;
				return w->cbuf.data;
			}
		case PARQUET_CODEC_ZSTD:
			{
				size_t		cap = ZSTD_compressBound(len);
				size_t		rc;
				/*
				 * Level 2 by default: on the benchmark's rows, 10 % smaller
				 * files than level 1 for 15 % more CPU, and smaller than
				 * level 3 (which takes twice as long).
				 */
				int			level = w->opts.compression_level > 0 ?
					Min(w->opts.compression_level, ZSTD_maxCLevel()) : 2;

				if (w->zstd == NULL)
				{
					w->zstd = ZSTD_createCCtx();
					if (w->zstd == NULL)
						ereport(ERROR,
								(errcode(ERRCODE_OUT_OF_MEMORY),
								 errmsg("out of memory creating a zstd context")));
				}
				w->cbuf.len = 0;
				pq_buf_reserve(&w->cbuf, cap);
				rc = ZSTD_compressCCtx(w->zstd, w->cbuf.data, cap, src, len, level);
				if (ZSTD_isError(rc))
					elog(ERROR, "zstd compression failed: %s", ZSTD_getErrorName(rc));
				*out_len = rc;
				return w->cbuf.data;
			}
	}
	*out_len = len;
	return src;
}

/* ---------------------------------------------------------------- RLE / bit-packing */

/*
 * bit_width
 *		Bits needed for values up to max_value (0 for 0).
 */
static inline int
bit_width(uint32 max_value)
{
	return max_value == 0 ? 0 : 32 - __builtin_clz(max_value);
}

/*
 * put_rle_run
 *		Append an RLE run of the hybrid encoding to out: the header (count
 *		<< 1) as a varint, then value in (bw + 7) / 8 little-endian bytes.
 */
static void
put_rle_run(PqBuf *out, uint32 value, int count, int bw)
{
	int			nbytes = (bw + 7) / 8;

	pq_buf_uvarint(out, (uint64) count << 1);
	pq_buf_reserve(out, 4);
	for (int i = 0; i < nbytes; i++)
		out->data[out->len++] = (char) ((value >> (8 * i)) & 0xFF);
}

/*
 * rle_encode_u8 / rle_encode_u32
 *		Append the RLE/bit-packed hybrid of the n values v of bit width bw
 *		to out: runs of 8 or more equal values as RLE runs, the rest
 *		bit-packed in groups of 8 (the last group padded with zeros; readers
 *		know the value count).
 */
#define DEFINE_RLE_ENCODER(fname, T) \
static void \
fname(PqBuf *out, const T *v, int n, int bw) \
{ \
	int			i = 0; \
	while (i < n) \
	{ \
		int			r = 1; \
		while (i + r < n && v[i + r] == v[i]) \
			r++; \
		if (r >= 8) \
		{ \
			put_rle_run(out, v[i], r, bw); \
			i += r; \
			continue; \
		} \
		{ \
			int			j = i + r; \
			int			take, groups; \
			uint64		acc = 0; \
			int			accbits = 0; \
			while (j < n) \
			{ \
				int			r2 = 1; \
				while (j + r2 < n && v[j + r2] == v[j]) \
					r2++; \
				if (r2 >= 8) \
					break; \
				j += r2; \
			} \
			groups = (j - i + 7) / 8; \
			take = Min(groups * 8, n - i); \
			pq_buf_uvarint(out, ((uint64) groups << 1) | 1); \
			pq_buf_reserve(out, (size_t) groups * bw + 8); \
			for (int k = 0; k < groups * 8; k++) \
			{ \
				uint64		x = k < take ? (uint64) v[i + k] : 0; \
				acc |= x << accbits; \
				accbits += bw; \
				while (accbits >= 8) \
				{ \
					out->data[out->len++] = (char) (acc & 0xFF); \
					acc >>= 8; \
					accbits -= 8; \
				} \
			} \
			i += take; \
		} \
	} \
}

DEFINE_RLE_ENCODER(rle_encode_u8, uint8)
DEFINE_RLE_ENCODER(rle_encode_u32, uint32)

/*
 * put_levels
 *		Append n repetition or definition levels to out as the
 *		RLE/bit-packed hybrid of the bit width of max_level, with the 4-byte
 *		little-endian length prefix of DataPage V1.
 */
static void
put_levels(PqBuf *out, const uint8 *levels, int n, int max_level)
{
	size_t		at;
	uint32		len;

	pq_buf_reserve(out, 4);
	at = out->len;
	out->len += 4;
	rle_encode_u8(out, levels, n, bit_width(max_level));
	len = (uint32) (out->len - at - 4);
	memcpy(out->data + at, &len, 4);
}

/* ---------------------------------------------------------------- statistics */

/*
 * cmp_unsigned
 *		Compare two byte strings as unsigned bytes, a prefix sorting first
 *		(Parquet's order of BYTE_ARRAY and UUID): <0, 0 or >0.
 */
static inline int
cmp_unsigned(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/*
 * cmp_signed_be
 *		Compare two big-endian two's complement numbers of len bytes
 *		(DECIMAL in a fixed-length array): <0, 0 or >0.
 */
static inline int
cmp_signed_be(const char *a, const char *b, int len)
{
	if ((int8) a[0] != (int8) b[0])
		return (int8) a[0] < (int8) b[0] ? -1 : 1;
	return memcmp(a + 1, b + 1, len - 1);
}

/*
 * set_bytes
 *		Replace the contents of buf with the len bytes at p.
 */
static inline void
set_bytes(PqBuf *buf, const char *p, int len)
{
	buf->len = 0;
	pq_buf_append(buf, p, len);
}

/*
 * stats_update
 *		Update the chunk's minimum and maximum in c's sort order with one
 *		value given as its PLAIN bytes; NaN is left out of float statistics.
 */
static void
stats_update(PqColumn *c, const char *p, int len)
{
	switch (c->order)
	{
		case SO_BOOL:
		case SO_INT32:
			{
				int32		v;

				if (c->order == SO_BOOL)
					v = p[0];
				else
					memcpy(&v, p, 4);
				if (!c->has_minmax)
				{
					c->min.i32 = c->max.i32 = v;
					c->has_minmax = true;
				}
				else if (v < c->min.i32)
					c->min.i32 = v;
				else if (v > c->max.i32)
					c->max.i32 = v;
				return;
			}
		case SO_INT64:
			{
				int64		v;

				memcpy(&v, p, 8);
				if (!c->has_minmax)
				{
					c->min.i64 = c->max.i64 = v;
					c->has_minmax = true;
				}
				else if (v < c->min.i64)
					c->min.i64 = v;
				else if (v > c->max.i64)
					c->max.i64 = v;
				return;
			}
		case SO_FLOAT:
			{
				float4		v;

				memcpy(&v, p, 4);
				if (isnan(v))
					return;
				if (!c->has_minmax)
				{
					c->min.f4 = c->max.f4 = v;
					c->has_minmax = true;
				}
				else
				{
					if (v < c->min.f4)
						c->min.f4 = v;
					if (v > c->max.f4)
						c->max.f4 = v;
				}
				return;
			}
		case SO_DOUBLE:
			{
				float8		v;

				memcpy(&v, p, 8);
				if (isnan(v))
					return;
				if (!c->has_minmax)
				{
					c->min.f8 = c->max.f8 = v;
					c->has_minmax = true;
				}
				else
				{
					if (v < c->min.f8)
						c->min.f8 = v;
					if (v > c->max.f8)
						c->max.f8 = v;
				}
				return;
			}
		case SO_UNSIGNED:
			if (!c->has_minmax)
			{
				set_bytes(&c->min_bytes, p, len);
				set_bytes(&c->max_bytes, p, len);
				c->has_minmax = true;
			}
			else if (cmp_unsigned(p, len, c->min_bytes.data, c->min_bytes.len) < 0)
				set_bytes(&c->min_bytes, p, len);
			else if (cmp_unsigned(p, len, c->max_bytes.data, c->max_bytes.len) > 0)
				set_bytes(&c->max_bytes, p, len);
			return;
		case SO_SIGNED_BE:
			if (!c->has_minmax)
			{
				set_bytes(&c->min_bytes, p, len);
				set_bytes(&c->max_bytes, p, len);
				c->has_minmax = true;
			}
			else if (cmp_signed_be(p, c->min_bytes.data, len) < 0)
				set_bytes(&c->min_bytes, p, len);
			else if (cmp_signed_be(p, c->max_bytes.data, len) > 0)
				set_bytes(&c->max_bytes, p, len);
			return;
	}
}

/* ---------------------------------------------------------------- dictionary */

/*
 * hash_fixed
 *		Hash of a fixed-length value: 4- and 8-byte values through the
 *		murmur3 finaliser, other lengths with hash_bytes.
 */
static inline uint32
hash_fixed(const char *p, int len)
{
	uint64		h;

	if (len == 4)
	{
		uint32		v;

		memcpy(&v, p, 4);
		h = v;
	}
	else if (len == 8)
		memcpy(&h, p, 8);
	else
		return hash_bytes((const unsigned char *) p, len);
	/* murmur3 finaliser */
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

/*
 * dict_reset
 *		Start the column's dictionary for a new chunk: dictionary encoding
 *		on if the options allow it (never for BOOLEAN), no dictionary page
 *		yet, no entries, the hash table cleared.
 */
static void
dict_reset(ParquetWriter *w, PqColumn *c)
{
	c->dict_active = w->opts.dictionary && c->phys != PT_BOOLEAN;
	c->dict_pages = false;
	c->dict.len = 0;
	c->dict_count = 0;
	if (c->slots)
		memset(c->slots, 0, sizeof(uint64) * c->nslots);
}

/* A slot: the value's hash in the high half, its entry + 1 in the low one. */
#define SLOT(h, e)		(((uint64) (h) << 32) | ((uint64) (e) + 1))
#define SLOT_HASH(v)	((uint32) ((v) >> 32))
#define SLOT_ENTRY(v)	((uint32) (v) - 1)

/*
 * dict_rehash
 *		Resize the dictionary's open-addressing hash table to nslots (a
 *		power of two) and reinsert the old slots; the old table is freed.
 */
static void
dict_rehash(PqColumn *c, uint32 nslots)
{
	uint32		mask = nslots - 1;
	uint64	   *old = c->slots;
	uint32		oldn = c->nslots;

	c->slots = MemoryContextAllocHuge(c->plain.cxt, sizeof(uint64) * nslots);
	memset(c->slots, 0, sizeof(uint64) * nslots);
	c->nslots = nslots;
	for (uint32 i = 0; old && i < oldn; i++)
	{
		uint32		s;

		if (old[i] == 0)
			continue;
		s = SLOT_HASH(old[i]) & mask;
		while (c->slots[s] != 0)
			s = (s + 1) & mask;
		c->slots[s] = old[i];
	}
	if (old)
		pfree(old);
}

/*
 * dict_entry_equals
 *		Whether dictionary entry e of the chunk is the value p of len bytes
 *		(BYTE_ARRAY entries are stored with their 4-byte length).
 */
static inline bool
dict_entry_equals(const PqColumn *c, uint32 e, const char *p, int len)
{
	if (c->phys == PT_BYTE_ARRAY)
	{
		uint32		off = c->dict_off[e];
		uint32		elen;

		memcpy(&elen, c->dict.data + off, 4);
		return elen == (uint32) len && memcmp(c->dict.data + off + 4, p, len) == 0;
	}
	if (len == 4)
	{
		uint32		a,
					b;

		memcpy(&a, c->dict.data + (size_t) e * 4, 4);
		memcpy(&b, p, 4);
		return a == b;
	}
	if (len == 8)
	{
		uint64		a,
					b;

		memcpy(&a, c->dict.data + (size_t) e * 8, 8);
		memcpy(&b, p, 8);
		return a == b;
	}
	return memcmp(c->dict.data + (size_t) e * len, p, len) == 0;
}

/*
 * dict_lookup
 *		Index of the value p of len bytes in the chunk's dictionary, adding
 *		it (and setting *is_new) if it is not there yet; the hash table and
 *		dictionary buffer are created on first use and the table doubles
 *		when half full.
 */
static inline uint32
dict_lookup(PqColumn *c, const char *p, int len, bool *is_new)
{
	bool		fixed = c->phys != PT_BYTE_ARRAY;
	uint32		h = fixed ? hash_fixed(p, len) : hash_bytes((const unsigned char *) p, len);
	uint32		mask,
				s,
				e;
	uint64		v;

	if (unlikely(c->slots == NULL))
	{
		dict_rehash(c, 1024);
		if (c->dict.data == NULL)
			pq_buf_init(&c->dict, c->plain.cxt, 8192);
	}
	mask = c->nslots - 1;
	s = h & mask;
	while ((v = c->slots[s]) != 0)
	{
		if (SLOT_HASH(v) == h && dict_entry_equals(c, SLOT_ENTRY(v), p, len))
		{
			*is_new = false;
			return SLOT_ENTRY(v);
		}
		s = (s + 1) & mask;
	}

	e = c->dict_count;
	if (fixed)
		pq_buf_append(&c->dict, p, len);
	else
	{
		uint32		l = len;

		if (e >= c->dict_cap)
		{
			uint32		cap = c->dict_cap ? c->dict_cap * 2 : 1024;

			c->dict_off = c->dict_off ? repalloc_huge(c->dict_off, sizeof(uint32) * cap)
				: MemoryContextAllocHuge(c->plain.cxt, sizeof(uint32) * cap);
			c->dict_cap = cap;
		}
		c->dict_off[e] = (uint32) c->dict.len;
		pq_buf_append(&c->dict, &l, 4);
		pq_buf_append(&c->dict, p, len);
	}
	c->slots[s] = SLOT(h, e);
	c->dict_count++;
	if (unlikely(c->dict_count * 2 > c->nslots))
		dict_rehash(c, c->nslots * 2);
	*is_new = true;
	return e;
}

/* ---------------------------------------------------------------- chunk blocks */

/*
 * blocks_append
 *		Append len bytes to the chunk's list of fixed-size blocks,
 *		allocating blocks in its context as needed.
 */
static void
blocks_append(PqBlocks *b, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0)
	{
		size_t		n;

		if (b->tail == NULL || b->tail->len == b->tail->cap)
		{
			PqBlock    *blk = MemoryContextAlloc(b->cxt, offsetof(PqBlock, data) + PQ_BLOCK_SIZE);

			blk->next = NULL;
			blk->len = 0;
			blk->cap = PQ_BLOCK_SIZE;
			if (b->tail)
				b->tail->next = blk;
			else
				b->head = blk;
			b->tail = blk;
		}
		n = Min(len, b->tail->cap - b->tail->len);
		memcpy(b->tail->data + b->tail->len, p, n);
		b->tail->len += n;
		b->len += n;
		p += n;
		len -= n;
	}
}

/*
 * blocks_reset
 *		Free all blocks of the list and make it empty.
 */
static void
blocks_reset(PqBlocks *b)
{
	PqBlock    *blk = b->head;

	while (blk)
	{
		PqBlock    *next = blk->next;

		pfree(blk);
		blk = next;
	}
	b->head = b->tail = NULL;
	b->len = 0;
}

/* ---------------------------------------------------------------- pages */

/*
 * emit
 *		Pass len bytes to the writer's sink and advance the file offset.
 */
static void
emit(ParquetWriter *w, const void *data, size_t len)
{
	if (len == 0)
		return;
	w->sink(w->sink_arg, data, len);
	w->offset += len;
}

/*
 * page_header
 *		Encode the Thrift PageHeader of a data page (with its encoding and
 *		RLE levels) or a dictionary page (PLAIN) into w->hdr; a page over 2
 *		GB is an ERROR.
 */
static void
page_header(ParquetWriter *w, int type, size_t uncompressed, size_t compressed,
			int num_values, int encoding)
{
	PqThrift	t;

	if (uncompressed > PG_INT32_MAX || compressed > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Parquet page of %zu bytes is too large", uncompressed)));
	w->hdr.len = 0;
	pq_thrift_init(&t, &w->hdr);
	pq_thrift_i32(&t, 1, type);
	pq_thrift_i32(&t, 2, (int32) uncompressed);
	pq_thrift_i32(&t, 3, (int32) compressed);
	if (type == PAGE_DATA)
	{
		pq_thrift_struct_begin(&t, 5);
		pq_thrift_i32(&t, 1, num_values);
		pq_thrift_i32(&t, 2, encoding);
		pq_thrift_i32(&t, 3, ENC_RLE);
		pq_thrift_i32(&t, 4, ENC_RLE);
		pq_thrift_struct_end(&t);
	}
	else
	{
		pq_thrift_struct_begin(&t, 7);
		pq_thrift_i32(&t, 1, num_values);
		pq_thrift_i32(&t, 2, ENC_PLAIN);
		pq_thrift_struct_end(&t);
	}
	pq_thrift_end(&t);
}

/*
 * dict_pays
 *		Whether the dictionary plus the current page's bit-packed indexes
 *		are smaller than the page's values PLAIN (asked while no page of the
 *		chunk uses the dictionary yet).
 */
static inline bool
dict_pays(const PqColumn *c)
{
	return (int64) c->dict.len + ((int64) c->nidx * Max(bit_width(c->dict_count - 1), 1) + 7) / 8 <
		c->page_plain_bytes;
}

/*
 * page_dict_to_plain
 *		Turn the dictionary-encoded values of the current page into PLAIN
 *		ones and give up the chunk's dictionary (no page uses it yet): the
 *		dictionary, hash table and offsets are freed until the next chunk
 *		tries again.
 */
static void
page_dict_to_plain(PqColumn *c)
{
	int			width = c->type_length ? c->type_length : c->phys == PT_INT32 || c->phys == PT_FLOAT ? 4 : 8;

	Assert(!c->dict_pages);
	c->plain.len = 0;
	pq_buf_reserve(&c->plain, c->page_plain_bytes);
	for (int i = 0; i < c->nidx; i++)
	{
		uint32		e = c->idx[i];

		if (c->phys == PT_BYTE_ARRAY)
		{
			uint32		off = c->dict_off[e];
			uint32		len;

			memcpy(&len, c->dict.data + off, 4);
			pq_buf_append(&c->plain, c->dict.data + off, 4 + len);
		}
		else
			pq_buf_append(&c->plain, c->dict.data + (size_t) e * width, width);
	}
	c->nidx = 0;
	c->dict_active = false;
	c->dict_count = 0;

	/* free the dictionary until the next chunk tries again (wide tables) */
	pfree(c->dict.data);
	c->dict.data = NULL;
	c->dict.len = c->dict.cap = 0;
	pfree(c->slots);
	c->slots = NULL;
	c->nslots = 0;
	if (c->dict_off)
		pfree(c->dict_off);
	c->dict_off = NULL;
	c->dict_cap = 0;
}

/*
 * flush_page
 *		Finish the column's current page into its chunk blocks: levels, then
 *		dictionary indexes or PLAIN values, compressed, behind a page
 *		header.  The chunk's first dictionary page falls back to PLAIN when
 *		the dictionary does not pay; does nothing for an empty page.
 */
static void
flush_page(ParquetWriter *w, PqColumn *c)
{
	PqBuf	   *body = &w->page;
	const char *comp;
	size_t		comp_len;
	bool		dict_page;

	if (c->nlevels == 0)
		return;

	/*
	 * The chunk's first dictionary page decides (as parquet-mr does): when
	 * the dictionary and the indexes are not smaller than the PLAIN values,
	 * the values are unique or nearly so and the chunk is written PLAIN.
	 */
	if (c->dict_active && !c->dict_pages && c->nidx > 0 && !dict_pays(c))
		page_dict_to_plain(c);
	/* a page of NULLs only is PLAIN: no empty dictionary for it */
	dict_page = c->dict_active && c->nidx > 0;
	c->page_plain_bytes = 0;

	body->len = 0;
	if (c->max_rep > 0)
		put_levels(body, c->rep, c->nlevels, c->max_rep);
	put_levels(body, c->def, c->nlevels, c->max_def);
	if (dict_page)
	{
		int			bw = Max(bit_width(c->dict_count > 0 ? c->dict_count - 1 : 0), 1);

		pq_buf_byte(body, (uint8) bw);
		rle_encode_u32(body, c->idx, c->nidx, bw);
		c->dict_pages = true;
	}
	else
	{
		pq_buf_append(body, c->plain.data, c->plain.len);
		c->chunk_plain = true;
	}

	comp = compress_body(w, body->data, body->len, &comp_len);
	page_header(w, PAGE_DATA, body->len, comp_len, c->nlevels,
				dict_page ? ENC_RLE_DICTIONARY : ENC_PLAIN);
	blocks_append(&c->chunk, w->hdr.data, w->hdr.len);
	blocks_append(&c->chunk, comp, comp_len);
	c->chunk_values += c->nlevels;
	c->chunk_uncompressed += w->hdr.len + body->len;
	c->chunk_compressed += w->hdr.len + comp_len;

	c->nlevels = 0;
	c->nidx = 0;
	c->plain.len = 0;
	c->nbits = 0;
}

/*
 * page_estimate
 *		Roughly the bytes the column's current page takes uncompressed:
 *		levels at two bits each, plus the bit-packed indexes or the PLAIN
 *		values.
 */
static inline int64
page_estimate(const PqColumn *c)
{
	int64		n = c->nlevels / 4;

	if (c->dict_active)
		n += ((int64) c->nidx * Max(bit_width(c->dict_count), 1)) / 8;
	else
		n += c->plain.len;
	return n;
}

/* ---------------------------------------------------------------- values */

/*
 * push_level
 *		Append one definition and repetition level to the column's current
 *		page, growing the level arrays as needed.
 */
static inline void
push_level(PqColumn *c, uint8 def, uint8 rep)
{
	if (unlikely(c->nlevels >= c->levels_cap))
	{
		int			cap = c->levels_cap * 2;

		c->def = repalloc(c->def, cap);
		c->rep = repalloc(c->rep, cap);
		c->levels_cap = cap;
	}
	c->def[c->nlevels] = def;
	c->rep[c->nlevels] = rep;
	c->nlevels++;
}

/*
 * put_bytes
 *		Add one non-null value, given as its PLAIN bytes without length
 *		prefix, to the column's current page: as a dictionary index while
 *		the dictionary is active (giving it up after PQ_DICT_PROBE values if
 *		it does not pay), else as PLAIN bytes; updates the statistics.
 */
static inline void
put_bytes(PqColumn *c, const char *p, int len)
{
	if (c->dict_active)
	{
		bool		is_new;
		uint32		e = dict_lookup(c, p, len, &is_new);

		if (is_new)
			stats_update(c, p, len);
		c->page_plain_bytes += len + (c->phys == PT_BYTE_ARRAY ? 4 : 0);
		if (unlikely(c->nidx >= c->idx_cap))
		{
			c->idx_cap *= 2;
			c->idx = repalloc(c->idx, sizeof(uint32) * c->idx_cap);
		}
		c->idx[c->nidx++] = e;

		/*
		 * The chunk's first PQ_DICT_PROBE values decide early, by the rule
		 * of flush_page, so that columns of unique values do not fill a
		 * dictionary (and its hash table) only to give it up.
		 */
		if (unlikely(c->nidx == PQ_DICT_PROBE) && !c->dict_pages && !dict_pays(c))
			page_dict_to_plain(c);
	}
	else
	{
		pq_buf_reserve(&c->plain, len + 4);
		if (c->phys == PT_BYTE_ARRAY)
		{
			uint32		l = len;

			memcpy(c->plain.data + c->plain.len, &l, 4);
			c->plain.len += 4;
		}
		if (len == 8)
			memcpy(c->plain.data + c->plain.len, p, 8);
		else if (len == 4)
			memcpy(c->plain.data + c->plain.len, p, 4);
		else
			memcpy(c->plain.data + c->plain.len, p, len);
		c->plain.len += len;
		stats_update(c, p, len);
	}
}

/*
 * put_bool
 *		Add one non-null boolean to the column's current page, bit-packed
 *		PLAIN, and update the statistics.
 */
static inline void
put_bool(PqColumn *c, bool v)
{
	char		b = v ? 1 : 0;

	if ((c->nbits & 7) == 0)
		pq_buf_byte(&c->plain, 0);
	if (v)
		c->plain.data[c->plain.len - 1] |= (char) (1 << (c->nbits & 7));
	c->nbits++;
	stats_update(c, &b, 1);
}

/*
 * value_error
 *		Raise an ERROR (numeric value out of range) naming column c and the
 *		row being written, with what as the reason.
 */
static void
value_error(ParquetWriter *w, PqColumn *c, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("value of column \"%s\" in row " INT64_FORMAT " %s",
					c->name, w->rows + 1, what)));
}

/* NumericData's layout (utils/adt/numeric.c; the on-disk format). */
#define PQ_NUMERIC_SIGN_MASK	0xC000
#define PQ_NUMERIC_NEG			0x4000
#define PQ_NUMERIC_SHORT		0x8000
#define PQ_NUMERIC_SPECIAL		0xC000
#define PQ_NUMERIC_SHORT_SIGN_MASK 0x2000
#define PQ_NUMERIC_SHORT_WEIGHT_SIGN_MASK 0x0040
#define PQ_NUMERIC_SHORT_WEIGHT_MASK 0x003F

static const int128 pow10_128[] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
	1000000000, INT64CONST(10000000000), INT64CONST(100000000000),
	INT64CONST(1000000000000), INT64CONST(10000000000000),
	INT64CONST(100000000000000), INT64CONST(1000000000000000),
	INT64CONST(10000000000000000), INT64CONST(100000000000000000),
	INT64CONST(1000000000000000000),
	(int128) INT64CONST(1000000000000000000) * 10,
	(int128) INT64CONST(1000000000000000000) * 100,
	(int128) INT64CONST(1000000000000000000) * 1000,
	(int128) INT64CONST(1000000000000000000) * 10000,
	(int128) INT64CONST(1000000000000000000) * 100000,
	(int128) INT64CONST(1000000000000000000) * 1000000,
	(int128) INT64CONST(1000000000000000000) * 10000000,
	(int128) INT64CONST(1000000000000000000) * 100000000,
	(int128) INT64CONST(1000000000000000000) * 1000000000,
	(int128) INT64CONST(1000000000000000000) * INT64CONST(10000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(100000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(1000000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(10000000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(100000000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(1000000000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(10000000000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(100000000000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(1000000000000000000),
	(int128) INT64CONST(1000000000000000000) * INT64CONST(1000000000000000000) * 10,
	(int128) INT64CONST(1000000000000000000) * INT64CONST(1000000000000000000) * 100
};

/*
 * numeric_unscaled
 *		The unscaled value of numeric d at the column's scale, rounded half
 *		away from zero like numeric's own rounding; reads the numeric's
 *		base-10000 digits directly, without allocating.  NaN, infinity and
 *		values beyond the precision are an ERROR (value_error).
 */
static int128
numeric_unscaled(ParquetWriter *w, PqColumn *c, Datum d)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
	const char *p = VARDATA_ANY(v);
	int			size = VARSIZE_ANY_EXHDR(v);
	uint16		header;
	int			weight;
	bool		neg;
	int			ndigits;
	const char *digits;
	int128		acc = 0;
	int			dropped = -1;	/* first decimal digit after the scale */

	memcpy(&header, p, 2);
	if ((header & PQ_NUMERIC_SIGN_MASK) == PQ_NUMERIC_SPECIAL)
	{
		value_error(w, c, psprintf("is %s, which Parquet DECIMAL(%d,%d) cannot hold",
								   (header & 0xF000) == 0xC000 ? "NaN" :
								   (header & 0xF000) == 0xD000 ? "Infinity" : "-Infinity",
								   c->precision, c->scale));
	}
	if (header & PQ_NUMERIC_SHORT)
	{
		neg = (header & PQ_NUMERIC_SHORT_SIGN_MASK) != 0;
		weight = (header & PQ_NUMERIC_SHORT_WEIGHT_SIGN_MASK) ?
			(int) (~PQ_NUMERIC_SHORT_WEIGHT_MASK | (header & PQ_NUMERIC_SHORT_WEIGHT_MASK)) :
			(int) (header & PQ_NUMERIC_SHORT_WEIGHT_MASK);
		digits = p + 2;
		ndigits = (size - 2) / 2;
	}
	else
	{
		int16		w16;

		neg = (header & PQ_NUMERIC_SIGN_MASK) == PQ_NUMERIC_NEG;
		memcpy(&w16, p + 2, 2);
		weight = w16;
		digits = p + 4;
		ndigits = (size - 4) / 2;
	}

	for (int i = 0; i < ndigits; i++)
	{
		int16		dg;
		int			k;			/* decimal exponent of the digit's last position */

		memcpy(&dg, digits + 2 * i, 2);
		k = 4 * (weight - i) + c->scale;
		if (k >= 0)
		{
			if (dg == 0)
				continue;
			if (k > 38)
				goto overflow;
			acc += (int128) dg * pow10_128[k];
			if (acc >= pow10_128[c->precision])
				goto overflow;
		}
		else if (k > -4)
		{
			acc += dg / (int) pow10_128[-k];
			if (dropped < 0)
				dropped = (dg / (int) pow10_128[-k - 1]) % 10;
			if (acc >= pow10_128[c->precision])
				goto overflow;
		}
		else
		{
			if (dropped < 0)
				dropped = k == -4 ? dg / 1000 : 0;
			break;
		}
	}
	if (dropped >= 5)
	{
		acc++;
		if (acc >= pow10_128[c->precision])
			goto overflow;
	}
	if (v != (struct varlena *) DatumGetPointer(d))
		pfree(v);
	return neg ? -acc : acc;

overflow:
	value_error(w, c, psprintf("does not fit Parquet DECIMAL(%d,%d)", c->precision, c->scale));
	return 0;
}

/*
 * put_enum
 *		Add the label of enum value oid to the column's page as a string:
 *		labels are looked up in the syscache once per value and kept,
 *		converted to UTF-8 when needed, in an open-addressing cache of the
 *		column.
 */
static void
put_enum(ParquetWriter *w, PqColumn *c, Oid oid)
{
	int			mask;
	int			s;
	PqEnumEntry *e;

	if (c->enum_slots == NULL || c->enum_count * 2 >= c->enum_nslots)
	{
		/* grow (or create) the cache */
		int			n = c->enum_nslots ? c->enum_nslots * 2 : 64;
		PqEnumEntry *old = c->enum_slots;
		int			oldn = c->enum_nslots;

		c->enum_slots = MemoryContextAllocZero(w->cxt, sizeof(PqEnumEntry) * n);
		c->enum_nslots = n;
		if (old)
		{
			for (int i = 0; i < oldn; i++)
			{
				if (OidIsValid(old[i].oid))
				{
					int			t = hash_fixed((const char *) &old[i].oid, 4) & (n - 1);

					while (OidIsValid(c->enum_slots[t].oid))
						t = (t + 1) & (n - 1);
					c->enum_slots[t] = old[i];
				}
			}
			pfree(old);
		}
		if (c->enum_labels.data == NULL)
			pq_buf_init(&c->enum_labels, w->cxt, 256);
	}
	mask = c->enum_nslots - 1;
	s = hash_fixed((const char *) &oid, 4) & mask;
	while (OidIsValid(c->enum_slots[s].oid) && c->enum_slots[s].oid != oid)
		s = (s + 1) & mask;
	e = &c->enum_slots[s];
	if (!OidIsValid(e->oid))
	{
		HeapTuple	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(oid));
		const char *label;

		if (!HeapTupleIsValid(tup))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid internal value for enum: %u", oid)));
		label = NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel);
		if (w->convert_utf8)
			label = pg_server_to_any(label, strlen(label), PG_UTF8);
		e->oid = oid;
		e->off = (uint32) c->enum_labels.len;
		e->len = (uint32) strlen(label);
		pq_buf_append(&c->enum_labels, label, e->len);
		ReleaseSysCache(tup);
		c->enum_count++;
	}
	put_bytes(c, c->enum_labels.data + e->off, e->len);
}

/*
 * put_text
 *		Add text of len bytes to the column's page in UTF-8, as Parquet's
 *		STRING and JSON require: converted from the database encoding when
 *		that is neither UTF-8 nor SQL_ASCII (whose bytes have no known
 *		encoding and go as they are).
 */
static inline void
put_text(ParquetWriter *w, PqColumn *c, const char *s, int len)
{
	if (unlikely(w->convert_utf8))
	{
		const char *u = pg_server_to_any(s, len, PG_UTF8);

		if (u != s)
			len = strlen(u);
		s = u;
	}
	put_bytes(c, s, len);
}

/*
 * put_value
 *		Add one non-null scalar value (a column's value or an array element)
 *		to the column's page in its Parquet representation.
 */
static void
put_value(ParquetWriter *w, PqColumn *c, Datum d)
{
	switch (c->kind)
	{
		case PK_BOOL:
			put_bool(c, DatumGetBool(d));
			return;
		case PK_INT2:
			{
				int32		v = DatumGetInt16(d);

				put_bytes(c, (const char *) &v, 4);
				return;
			}
		case PK_INT4:
			{
				int32		v = DatumGetInt32(d);

				put_bytes(c, (const char *) &v, 4);
				return;
			}
		case PK_INT8:
			{
				int64		v = DatumGetInt64(d);

				put_bytes(c, (const char *) &v, 8);
				return;
			}
		case PK_FLOAT4:
			{
				float4		v = DatumGetFloat4(d);

				put_bytes(c, (const char *) &v, 4);
				return;
			}
		case PK_FLOAT8:
			{
				float8		v = DatumGetFloat8(d);

				put_bytes(c, (const char *) &v, 8);
				return;
			}
		case PK_DATE:
			{
				DateADT		dt = DatumGetDateADT(d);
				int32		v;

				if (DATE_IS_NOBEGIN(dt))
					v = -PG_INT32_MAX;
				else if (DATE_IS_NOEND(dt))
					v = PG_INT32_MAX;
				else
					v = dt + PQ_EPOCH_DAYS;
				put_bytes(c, (const char *) &v, 4);
				return;
			}
		case PK_TIME:
			{
				int64		v = DatumGetTimeADT(d);

				put_bytes(c, (const char *) &v, 8);
				return;
			}
		case PK_TIMESTAMP:
			{
				Timestamp	ts = DatumGetTimestamp(d);
				int64		v;

				if (TIMESTAMP_IS_NOBEGIN(ts))
					v = -PG_INT64_MAX;
				else if (TIMESTAMP_IS_NOEND(ts))
					v = PG_INT64_MAX;
				else if (pg_add_s64_overflow(ts, PQ_EPOCH_MICROS, &v) || v == PG_INT64_MAX)
					value_error(w, c, "is past the largest Parquet timestamp (294247-01-10)");
				put_bytes(c, (const char *) &v, 8);
				return;
			}
		case PK_UUID:
			put_bytes(c, (const char *) DatumGetUUIDP(d)->data, UUID_LEN);
			return;
		case PK_DECIMAL:
			{
				int128		u = numeric_unscaled(w, c, d);

				if (c->phys == PT_INT32)
				{
					int32		v = (int32) u;

					put_bytes(c, (const char *) &v, 4);
				}
				else if (c->phys == PT_INT64)
				{
					int64		v = (int64) u;

					put_bytes(c, (const char *) &v, 8);
				}
				else
				{
					char		be[16];
					int			n = c->type_length;

					/* big-endian two's complement, the low n bytes */
					for (int i = 0; i < n; i++)
						be[n - 1 - i] = (char) ((uint128) u >> (8 * i));
					put_bytes(c, be, n);
				}
				return;
			}
		case PK_NUMERIC_TEXT:
			{
				char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, d));

				put_bytes(c, s, strlen(s));
				return;
			}
		case PK_VARLENA:
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

				if (c->logical == LT_NONE)
					put_bytes(c, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));	/* bytea */
				else
					put_text(w, c, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
				return;
			}
		case PK_NAME:
			{
				const char *s = NameStr(*DatumGetName(d));

				put_text(w, c, s, strlen(s));
				return;
			}
		case PK_JSONB:
			{
				Jsonb	   *jb = DatumGetJsonbP(d);

				resetStringInfo(&w->text);
				JsonbToCString(&w->text, &jb->root, VARSIZE(jb));
				put_text(w, c, w->text.data, w->text.len);
				return;
			}
		case PK_ENUM:
			put_enum(w, c, DatumGetObjectId(d));
			return;
	}
}

/*
 * put_array
 *		Add one non-null array as a LIST record: its elements flattened in
 *		storage order with their levels (an empty array as an empty list,
 *		null elements as nulls).
 */
static void
put_array(ParquetWriter *w, PqColumn *c, Datum d)
{
	AnyArrayType *arr = DatumGetAnyArrayP(d);
	int			n = ArrayGetNItems(AARR_NDIM(arr), AARR_DIMS(arr));
	array_iter	it;

	if (n == 0)
	{
		push_level(c, 1, 0);
		c->null_count++;
		return;
	}
	array_iter_setup(&it, arr);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		e = array_iter_next(&it, &isnull, i, c->elmlen, c->elmbyval, c->elmalign);

		if (isnull)
		{
			push_level(c, 2, i == 0 ? 0 : 1);
			c->null_count++;
		}
		else
		{
			push_level(c, 3, i == 0 ? 0 : 1);
			put_value(w, c, e);
		}
	}
}

/* ---------------------------------------------------------------- row groups */

/*
 * row_group_bytes
 *		Estimated bytes of the row group so far: the columns' finished chunk
 *		pages, current pages and dictionaries.
 */
static int64
row_group_bytes(const ParquetWriter *w)
{
	int64		n = 0;

	for (int i = 0; i < w->ncols; i++)
	{
		const PqColumn *c = &w->cols[i];

		n += c->chunk.len + page_estimate(c);
		if (c->dict_pages || c->dict_active)
			n += c->dict.len;
	}
	return n;
}

/*
 * stat_copy
 *		Copy of the len bytes at p in the writer's context (for the footer's
 *		statistics).
 */
static char *
stat_copy(ParquetWriter *w, const void *p, int len)
{
	char	   *r = MemoryContextAlloc(w->cxt, Max(len, 1));

	memcpy(r, p, len);
	return r;
}

/*
 * chunk_stats
 *		Statistics of the column's chunk into m: null count and, as PLAIN
 *		bytes, min and max (zero as -0.0 for min and +0.0 for max, as the
 *		format asks; none when a byte string is over PQ_MAX_STAT_BYTES).
 */
static void
chunk_stats(ParquetWriter *w, PqColumn *c, PqChunkMeta *m)
{
	m->null_count = c->null_count;
	m->has_minmax = c->has_minmax;
	if (!c->has_minmax)
		return;
	switch (c->order)
	{
		case SO_BOOL:
			{
				char		lo = (char) c->min.i32,
							hi = (char) c->max.i32;

				m->min = stat_copy(w, &lo, 1);
				m->max = stat_copy(w, &hi, 1);
				m->min_len = m->max_len = 1;
				break;
			}
		case SO_INT32:
			m->min = stat_copy(w, &c->min.i32, 4);
			m->max = stat_copy(w, &c->max.i32, 4);
			m->min_len = m->max_len = 4;
			break;
		case SO_INT64:
			m->min = stat_copy(w, &c->min.i64, 8);
			m->max = stat_copy(w, &c->max.i64, 8);
			m->min_len = m->max_len = 8;
			break;
		case SO_FLOAT:
			{
				float4		lo = c->min.f4,
							hi = c->max.f4;

				if (lo == 0)
					lo = -0.0f;
				if (hi == 0)
					hi = 0.0f;
				m->min = stat_copy(w, &lo, 4);
				m->max = stat_copy(w, &hi, 4);
				m->min_len = m->max_len = 4;
				break;
			}
		case SO_DOUBLE:
			{
				float8		lo = c->min.f8,
							hi = c->max.f8;

				if (lo == 0)
					lo = -0.0;
				if (hi == 0)
					hi = 0.0;
				m->min = stat_copy(w, &lo, 8);
				m->max = stat_copy(w, &hi, 8);
				m->min_len = m->max_len = 8;
				break;
			}
		case SO_UNSIGNED:
		case SO_SIGNED_BE:
			if (c->min_bytes.len > PQ_MAX_STAT_BYTES || c->max_bytes.len > PQ_MAX_STAT_BYTES)
			{
				m->has_minmax = false;
				break;
			}
			m->min = stat_copy(w, c->min_bytes.data, c->min_bytes.len);
			m->max = stat_copy(w, c->max_bytes.data, c->max_bytes.len);
			m->min_len = c->min_bytes.len;
			m->max_len = c->max_bytes.len;
			break;
	}
}

/*
 * flush_row_group
 *		Write the current row group to the sink: for each column its last
 *		page, dictionary page if used and chunk pages, recording the chunk's
 *		offsets, sizes, encodings and statistics for the footer; then reset
 *		the columns for the next chunk.  Does nothing when the row group is
 *		empty.
 */
static void
flush_row_group(ParquetWriter *w)
{
	PqRowGroupMeta *rg;

	if (w->rg_rows == 0)
		return;
	if (w->nrgs >= w->rgs_cap)
	{
		w->rgs_cap = w->rgs_cap ? w->rgs_cap * 2 : 16;
		w->rgs = w->rgs ? repalloc(w->rgs, sizeof(PqRowGroupMeta) * w->rgs_cap)
			: MemoryContextAlloc(w->cxt, sizeof(PqRowGroupMeta) * w->rgs_cap);
	}
	rg = &w->rgs[w->nrgs++];
	rg->num_rows = w->rg_rows;
	rg->file_offset = w->offset;
	rg->uncompressed = 0;
	rg->compressed = 0;
	rg->chunks = MemoryContextAllocZero(w->cxt, sizeof(PqChunkMeta) * w->ncols);

	for (int i = 0; i < w->ncols; i++)
	{
		PqColumn   *c = &w->cols[i];
		PqChunkMeta *m = &rg->chunks[i];

		flush_page(w, c);
		m->dict_offset = -1;
		m->uncompressed = c->chunk_uncompressed;
		m->compressed = c->chunk_compressed;
		if (c->dict_pages)
		{
			size_t		comp_len;
			const char *comp = compress_body(w, c->dict.data, c->dict.len, &comp_len);

			page_header(w, PAGE_DICTIONARY, c->dict.len, comp_len, c->dict_count, ENC_PLAIN);
			m->dict_offset = w->offset;
			emit(w, w->hdr.data, w->hdr.len);
			emit(w, comp, comp_len);
			m->uncompressed += w->hdr.len + c->dict.len;
			m->compressed += w->hdr.len + comp_len;
		}
		m->data_offset = w->offset;
		for (PqBlock *blk = c->chunk.head; blk; blk = blk->next)
			emit(w, blk->data, blk->len);
		m->num_values = c->chunk_values;
		m->enc_dict = c->dict_pages;
		m->enc_plain = c->chunk_plain || c->dict_pages;
		chunk_stats(w, c, m);
		rg->uncompressed += m->uncompressed;
		rg->compressed += m->compressed;

		/* reset the column for the next chunk */
		blocks_reset(&c->chunk);
		c->chunk_values = 0;
		c->chunk_uncompressed = 0;
		c->chunk_compressed = 0;
		c->chunk_plain = false;
		c->null_count = 0;
		c->has_minmax = false;
		dict_reset(w, c);
	}
	w->rg_rows = 0;
}

/* ---------------------------------------------------------------- footer */

/*
 * write_logical
 *		Write the LogicalType field (10) of a schema element for c, if it
 *		has one.
 */
static void
write_logical(PqThrift *t, const PqColumn *c)
{
	if (c->logical == LT_NONE)
		return;
	pq_thrift_struct_begin(t, 10);
	switch (c->logical)
	{
		case LT_NONE:
			break;
		case LT_STRING:
			pq_thrift_struct_begin(t, 1);
			pq_thrift_struct_end(t);
			break;
		case LT_JSON:
			pq_thrift_struct_begin(t, 12);
			pq_thrift_struct_end(t);
			break;
		case LT_INT16:
		case LT_INT32:
		case LT_INT64:
			pq_thrift_struct_begin(t, 10);
			pq_thrift_i8(t, 1, c->logical == LT_INT16 ? 16 : c->logical == LT_INT32 ? 32 : 64);
			pq_thrift_bool(t, 2, true);
			pq_thrift_struct_end(t);
			break;
		case LT_DECIMAL:
			pq_thrift_struct_begin(t, 5);
			pq_thrift_i32(t, 1, c->scale);
			pq_thrift_i32(t, 2, c->precision);
			pq_thrift_struct_end(t);
			break;
		case LT_DATE:
			pq_thrift_struct_begin(t, 6);
			pq_thrift_struct_end(t);
			break;
		case LT_TIME:
		case LT_TIMESTAMP:
		case LT_TIMESTAMPTZ:
			pq_thrift_struct_begin(t, c->logical == LT_TIME ? 7 : 8);
			pq_thrift_bool(t, 1, c->logical == LT_TIMESTAMPTZ);
			pq_thrift_struct_begin(t, 2);	/* unit */
			pq_thrift_struct_begin(t, 2);	/* MICROS */
			pq_thrift_struct_end(t);
			pq_thrift_struct_end(t);
			pq_thrift_struct_end(t);
			break;
		case LT_UUID:
			pq_thrift_struct_begin(t, 14);
			pq_thrift_struct_end(t);
			break;
	}
	pq_thrift_struct_end(t);
}

/*
 * converted_type
 *		The legacy ConvertedType of c's logical type; -1 for none.
 */
static int
converted_type(const PqColumn *c)
{
	switch (c->logical)
	{
		case LT_STRING:
			return CT_UTF8;
		case LT_JSON:
			return CT_JSON;
		case LT_INT16:
			return CT_INT_16;
		case LT_INT32:
			return CT_INT_32;
		case LT_INT64:
			return CT_INT_64;
		case LT_DECIMAL:
			return CT_DECIMAL;
		case LT_DATE:
			return CT_DATE;
		case LT_TIME:
			return CT_TIME_MICROS;
		case LT_TIMESTAMP:
		case LT_TIMESTAMPTZ:
			return CT_TIMESTAMP_MICROS;
		default:
			return -1;
	}
}

/*
 * write_leaf_schema
 *		Write the schema element of a leaf column named name: an optional
 *		field with its physical, converted and logical types (and decimal
 *		scale and precision).
 */
static void
write_leaf_schema(PqThrift *t, const PqColumn *c, const char *name)
{
	int			ct = converted_type(c);

	pq_thrift_elem_struct_begin(t);
	pq_thrift_i32(t, 1, c->phys);
	if (c->phys == PT_FLBA)
		pq_thrift_i32(t, 2, c->type_length);
	pq_thrift_i32(t, 3, REP_OPTIONAL);
	pq_thrift_string(t, 4, name);
	if (ct >= 0)
		pq_thrift_i32(t, 6, ct);
	if (c->logical == LT_DECIMAL)
	{
		pq_thrift_i32(t, 7, c->scale);
		pq_thrift_i32(t, 8, c->precision);
	}
	write_logical(t, c);
	pq_thrift_struct_end(t);
}

/*
 * write_footer
 *		Write the file footer: the Thrift FileMetaData (schema, with 3-level
 *		LISTs for arrays, row count, row groups with their column chunks and
 *		statistics, created_by, column orders), its length and the closing
 *		magic PAR1.
 */
static void
write_footer(ParquetWriter *w)
{
	PqBuf		out;
	PqThrift	t;
	int			nschema = 1;
	int64		num_rows = 0;
	uint32		len;
	char	   *created_by;

	for (int i = 0; i < w->ncols; i++)
		nschema += w->cols[i].is_list ? 3 : 1;
	for (int r = 0; r < w->nrgs; r++)
		num_rows += w->rgs[r].num_rows;

	pq_buf_init(&out, w->cxt, 4096);
	pq_thrift_init(&t, &out);
	pq_thrift_i32(&t, 1, 1);	/* version */

	/* schema: root, then the columns depth first */
	pq_thrift_list_begin(&t, 2, PQ_T_STRUCT, nschema);
	pq_thrift_elem_struct_begin(&t);
	pq_thrift_string(&t, 4, "schema");
	pq_thrift_i32(&t, 5, w->ncols);
	pq_thrift_struct_end(&t);
	for (int i = 0; i < w->ncols; i++)
	{
		PqColumn   *c = &w->cols[i];

		if (!c->is_list)
		{
			write_leaf_schema(&t, c, c->name);
			continue;
		}
		/* optional group name (LIST) { repeated group list { optional element } } */
		pq_thrift_elem_struct_begin(&t);
		pq_thrift_i32(&t, 3, REP_OPTIONAL);
		pq_thrift_string(&t, 4, c->name);
		pq_thrift_i32(&t, 5, 1);
		pq_thrift_i32(&t, 6, CT_LIST);
		pq_thrift_struct_begin(&t, 10);
		pq_thrift_struct_begin(&t, 3);
		pq_thrift_struct_end(&t);
		pq_thrift_struct_end(&t);
		pq_thrift_struct_end(&t);
		pq_thrift_elem_struct_begin(&t);
		pq_thrift_i32(&t, 3, REP_REPEATED);
		pq_thrift_string(&t, 4, "list");
		pq_thrift_i32(&t, 5, 1);
		pq_thrift_struct_end(&t);
		write_leaf_schema(&t, c, "element");
	}

	pq_thrift_i64(&t, 3, num_rows);

	pq_thrift_list_begin(&t, 4, PQ_T_STRUCT, w->nrgs);
	for (int r = 0; r < w->nrgs; r++)
	{
		PqRowGroupMeta *rg = &w->rgs[r];

		pq_thrift_elem_struct_begin(&t);
		pq_thrift_list_begin(&t, 1, PQ_T_STRUCT, w->ncols);
		for (int i = 0; i < w->ncols; i++)
		{
			PqColumn   *c = &w->cols[i];
			PqChunkMeta *m = &rg->chunks[i];
			int			nenc = 1 + (m->enc_plain ? 1 : 0) + (m->enc_dict ? 1 : 0);
			bool		legacy = c->order != SO_UNSIGNED && c->order != SO_SIGNED_BE;

			pq_thrift_elem_struct_begin(&t);	/* ColumnChunk */
			pq_thrift_i64(&t, 2, m->dict_offset >= 0 ? m->dict_offset : m->data_offset);
			pq_thrift_struct_begin(&t, 3);	/* ColumnMetaData */
			pq_thrift_i32(&t, 1, c->phys);
			pq_thrift_list_begin(&t, 2, PQ_T_I32, nenc);
			if (m->enc_plain)
				pq_thrift_elem_i32(&t, ENC_PLAIN);
			pq_thrift_elem_i32(&t, ENC_RLE);
			if (m->enc_dict)
				pq_thrift_elem_i32(&t, ENC_RLE_DICTIONARY);
			pq_thrift_list_begin(&t, 3, PQ_T_BINARY, c->is_list ? 3 : 1);
			pq_thrift_elem_string(&t, c->name);
			if (c->is_list)
			{
				pq_thrift_elem_string(&t, "list");
				pq_thrift_elem_string(&t, "element");
			}
			pq_thrift_i32(&t, 4, codec_id(w->opts.codec));
			pq_thrift_i64(&t, 5, m->num_values);
			pq_thrift_i64(&t, 6, m->uncompressed);
			pq_thrift_i64(&t, 7, m->compressed);
			pq_thrift_i64(&t, 9, m->data_offset);
			if (m->dict_offset >= 0)
				pq_thrift_i64(&t, 11, m->dict_offset);
			pq_thrift_struct_begin(&t, 12);	/* Statistics */
			if (m->has_minmax && legacy)
			{
				pq_thrift_binary(&t, 1, m->max, m->max_len);
				pq_thrift_binary(&t, 2, m->min, m->min_len);
			}
			pq_thrift_i64(&t, 3, m->null_count);
			if (m->has_minmax)
			{
				pq_thrift_binary(&t, 5, m->max, m->max_len);
				pq_thrift_binary(&t, 6, m->min, m->min_len);
			}
			pq_thrift_struct_end(&t);
			pq_thrift_struct_end(&t);	/* ColumnMetaData */
			pq_thrift_struct_end(&t);	/* ColumnChunk */
		}
		pq_thrift_i64(&t, 2, rg->uncompressed);
		pq_thrift_i64(&t, 3, rg->num_rows);
		pq_thrift_i64(&t, 5, rg->file_offset);
		pq_thrift_i64(&t, 6, rg->compressed);
		pq_thrift_struct_end(&t);
	}

	created_by = w->opts.created_by ? pstrdup(w->opts.created_by) :
		psprintf("dms_stream version %s", DMS_STREAM_VERSION);
	pq_thrift_string(&t, 6, created_by);

	/* column_orders: TYPE_ORDER for every leaf */
	pq_thrift_list_begin(&t, 7, PQ_T_STRUCT, w->ncols);
	for (int i = 0; i < w->ncols; i++)
	{
		pq_thrift_elem_struct_begin(&t);
		pq_thrift_struct_begin(&t, 1);
		pq_thrift_struct_end(&t);
		pq_thrift_struct_end(&t);
	}
	pq_thrift_end(&t);

	emit(w, out.data, out.len);
	len = (uint32) out.len;
	emit(w, &len, 4);
	emit(w, "PAR1", 4);
}

/* ---------------------------------------------------------------- API */

/*
 * parquet_writer_create
 *		Start a Parquet file with the columns of tupdesc (dropped columns
 *		left out) that writes through sink: creates the writer's memory
 *		context under CurrentMemoryContext, maps the column types (an ERROR
 *		for a type without a mapping or no columns), sizes the per-column
 *		buffers so that wide tables stay within the memory budget, and emits
 *		the magic PAR1.  opts NULL means the defaults.
 */
ParquetWriter *
parquet_writer_create(TupleDesc tupdesc, const ParquetWriterOptions *opts,
					  ParquetSink sink, void *sink_arg)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "Parquet writer",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ParquetWriter *w = palloc0(sizeof(ParquetWriter));
	MemoryContextCallback *cb;
	int			n = 0;

	w->cxt = cxt;
	w->row_cxt = AllocSetContextCreate(cxt, "Parquet writer row", ALLOCSET_DEFAULT_SIZES);
	if (opts)
		w->opts = *opts;
	else
		parquet_writer_default_options(&w->opts);
	if (w->opts.created_by)
		w->opts.created_by = pstrdup(w->opts.created_by);
	if (w->opts.row_group_rows <= 0)
		w->opts.row_group_rows = 1000000;
	if (w->opts.row_group_bytes <= 0)
		w->opts.row_group_bytes = INT64CONST(64) * 1024 * 1024;
	if (w->opts.page_bytes <= 0)
		w->opts.page_bytes = 1024 * 1024;
	if (w->opts.dictionary_bytes <= 0)
		w->opts.dictionary_bytes = 1024 * 1024;
	w->sink = sink;
	w->sink_arg = sink_arg;
	w->convert_utf8 = GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII;

	cb = palloc0(sizeof(MemoryContextCallback));
	cb->func = writer_cxt_reset;
	cb->arg = w;
	MemoryContextRegisterResetCallback(cxt, cb);

	w->cols = palloc0(sizeof(PqColumn) * Max(tupdesc->natts, 1));
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		PqColumn   *c;

		if (att->attisdropped)
			continue;
		c = &w->cols[n++];
		c->name = pstrdup(NameStr(att->attname));
		if (w->convert_utf8)
			c->name = pg_server_to_any(c->name, strlen(c->name), PG_UTF8);
		c->attnum = i;
		map_column(c, att->atttypid, att->atttypmod);

		c->levels_cap = 4096;
		c->def = palloc(c->levels_cap);
		c->rep = palloc(c->levels_cap);
		c->idx_cap = 4096;
		c->idx = palloc(sizeof(uint32) * c->idx_cap);
		pq_buf_init(&c->plain, cxt, 8192);
		c->dict.cxt = cxt;		/* allocated by the first lookup */
		c->chunk.cxt = cxt;
		pq_buf_init(&c->min_bytes, cxt, 64);
		pq_buf_init(&c->max_bytes, cxt, 64);
		dict_reset(w, c);
	}
	w->ncols = n;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a Parquet file needs at least one column")));
	/* an entry costs its bytes plus about 24 of hash table and offset */
	w->dict_max_bytes = Min(w->opts.dictionary_bytes, Max(64 * 1024, PQ_DICT_BUDGET / 2 / n));
	w->dict_max_entries = Min(PQ_DICT_MAX_ENTRIES, Max(4096, PQ_DICT_BUDGET / 24 / n));
	w->page_max_levels = Min(1 << 20, Max(8192, PQ_PAGE_LEVELS_BUDGET / 6 / n));
	w->page_max_bytes = Min(w->opts.page_bytes, Max(32 * 1024, PQ_PAGE_BYTES_BUDGET / n));

	/*
	 * Each column costs about half a megabyte besides its chunk (page, levels,
	 * dictionary, buffers): wide tables get smaller row groups so that the
	 * writer stays near PQ_MEMORY_TARGET, but not under 16 MB.
	 */
	w->rg_max_bytes = Min(w->opts.row_group_bytes,
						  Max(INT64CONST(16) * 1024 * 1024,
							  PQ_MEMORY_TARGET - (int64) n * 512 * 1024));

	pq_buf_init(&w->page, cxt, 64 * 1024);
	pq_buf_init(&w->cbuf, cxt, 64 * 1024);
	pq_buf_init(&w->hdr, cxt, 256);
	initStringInfo(&w->text);

	MemoryContextSwitchTo(old);
	emit(w, "PAR1", 4);
	return w;
}

/*
 * parquet_writer_add_row
 *		Add one row (values and isnull indexed like the TupleDesc given to
 *		parquet_writer_create): per column its levels and value; flushes
 *		pages when they are full, gives up a dictionary that grew too big,
 *		and writes out the row group when it reaches its row or byte limit.
 *		Temporary memory of the row is reset after it.
 */
void
parquet_writer_add_row(ParquetWriter *w, const Datum *values, const bool *isnull)
{
	MemoryContext old;

	if (w->finished)
		elog(ERROR, "Parquet writer already finished");
	old = MemoryContextSwitchTo(w->row_cxt);
	for (int i = 0; i < w->ncols; i++)
	{
		PqColumn   *c = &w->cols[i];

		if (isnull[c->attnum])
		{
			push_level(c, 0, 0);
			c->null_count++;
		}
		else if (c->is_list)
			put_array(w, c, values[c->attnum]);
		else
		{
			push_level(c, 1, 0);
			put_value(w, c, values[c->attnum]);
		}

		if (c->dict_active && (c->dict.len > (size_t) w->dict_max_bytes ||
							   c->dict_count >= w->dict_max_entries))
		{
			/* dictionary too big: its pages stay, the rest is PLAIN */
			flush_page(w, c);
			c->dict_active = false;
		}
		else if (page_estimate(c) >= w->page_max_bytes || c->nlevels >= w->page_max_levels)
			flush_page(w, c);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(w->row_cxt);

	w->rows++;
	w->rg_rows++;
	if (w->rg_rows >= w->opts.row_group_rows ||
		((w->rg_rows & 255) == 0 && row_group_bytes(w) >= w->rg_max_bytes))
	{
		old = MemoryContextSwitchTo(w->cxt);
		flush_row_group(w);
		MemoryContextSwitchTo(old);
	}
}

/*
 * parquet_writer_rows
 *		Rows added so far.
 */
int64
parquet_writer_rows(const ParquetWriter *w)
{
	return w->rows;
}

/*
 * parquet_writer_estimated_bytes
 *		Estimated size of the file if it were finished now: bytes emitted,
 *		the row group being built and about 100 bytes of footer per column
 *		chunk.
 */
int64
parquet_writer_estimated_bytes(const ParquetWriter *w)
{
	/* a footer is about 100 bytes per column chunk */
	return w->offset + row_group_bytes(w) + (int64) (w->nrgs + 1) * w->ncols * 100 + 8;
}

/*
 * parquet_writer_finish
 *		Write the last row group and the footer; returns the file's size in
 *		bytes.  An ERROR if the writer is already finished; it must still be
 *		destroyed.
 */
int64
parquet_writer_finish(ParquetWriter *w)
{
	MemoryContext old;

	if (w->finished)
		elog(ERROR, "Parquet writer already finished");
	old = MemoryContextSwitchTo(w->cxt);
	flush_row_group(w);
	write_footer(w);
	MemoryContextSwitchTo(old);
	w->finished = true;
	return w->offset;
}

/*
 * parquet_writer_destroy
 *		Free the writer: ends the gzip stream and deletes its memory context
 *		(whose callback frees the zstd context).
 */
void
parquet_writer_destroy(ParquetWriter *w)
{
	if (w->zs_ready)
	{
		deflateEnd(&w->zs);
		w->zs_ready = false;
	}
	MemoryContextDelete(w->cxt);
}
