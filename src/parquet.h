/*-------------------------------------------------------------------------
 *
 * parquet.h
 *	  Apache Parquet file writer of dms_stream: rows of a TupleDesc in,
 *	  a complete Parquet file out through a byte sink.
 *
 * The writer buffers one row group in memory, column by column, encodes
 * each column chunk as data pages (PLAIN, or dictionary with RLE indexes
 * while the dictionary stays small, falling back to PLAIN), with definition
 * levels for NULLs and column statistics (min, max, null count), compresses
 * pages (none, snappy, gzip or zstd) and hands finished bytes to the sink.
 * A row group is closed when it reaches row_group_rows rows or about
 * row_group_bytes of encoded data, so memory is bounded by the options, not
 * by the number of rows: about row_group_bytes for the compressed chunks,
 * plus each column's current page (page_bytes, shrunk for wide tables to
 * keep all pages near 16 MB) and dictionary (dictionary_bytes, likewise
 * near 32 MB in all), about 0.5 MB a column in all; for tables of more than
 * 72 columns row_group_bytes is lowered (to 100 MB - 0.5 MB a column, at
 * least 16 MB) to stay near 128 MB.  parquet_writer_finish writes the footer
 * (FileMetaData, Thrift compact protocol) and the closing magic.  The sink
 * receives the magic at create, each row group when it is complete (page
 * data in pieces of up to 64 KiB, a dictionary page whole) and the footer
 * at finish.
 *
 * The type mapping from PostgreSQL types to Parquet physical and logical
 * types is documented in README.md ("Parquet type mapping") and in
 * parquet.c.  A column whose type has no mapping raises an ERROR at
 * parquet_writer_create naming the column and type.
 *
 * Memory: everything is allocated in a memory context of the writer's own,
 * a child of the context current at create; parquet_writer_destroy (or the
 * parent context's reset) frees it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_PARQUET_H
#define DMS_PARQUET_H

#include "access/tupdesc.h"

typedef enum ParquetCodec
{
	PARQUET_CODEC_NONE,
	PARQUET_CODEC_SNAPPY,
	PARQUET_CODEC_GZIP,
	PARQUET_CODEC_ZSTD
} ParquetCodec;

typedef struct ParquetWriterOptions
{
	ParquetCodec codec;			/* default snappy */
	int			compression_level;	/* 0 = default: gzip 6, zstd 2 */
	int64		row_group_rows; /* default 1,000,000 */
	int64		row_group_bytes;	/* encoded bytes, default 64 MiB */
	int64		page_bytes;		/* target data page size, default 1 MiB */
	bool		dictionary;		/* try dictionary encoding (default true) */
	int64		dictionary_bytes;	/* fall back to PLAIN past this (1 MiB) */
	const char *created_by;		/* FileMetaData.created_by, NULL: default */
} ParquetWriterOptions;

/* Receives the file's bytes in order; may raise an ERROR. */
typedef void (*ParquetSink) (void *arg, const void *data, size_t len);

typedef struct ParquetWriter ParquetWriter;

/* Fill opts with the defaults above. */
extern void parquet_writer_default_options(ParquetWriterOptions *opts);

/* Parse a codec name (none/uncompressed, snappy, gzip, zstd); false if unknown. */
extern bool parquet_codec_parse(const char *name, ParquetCodec *codec);

/*
 * Fill opts from a JSON object of options in parquet_encode's vocabulary
 * (codec, compressionLevel, rowGroupRows, rowGroupBytes, pageBytes,
 * dictionary, dictionaryBytes, createdBy; README.md, "Functions"), over the
 * defaults; NULL gives the defaults.  A bad option is an ERROR naming it
 * ("invalid <what> at codec"); what names the document, e.g. "Parquet
 * options".  (jsonb is a Jsonb *, from utils/jsonb.h.)
 */
extern void parquet_options_from_jsonb(const char *what, void *jsonb,
									   ParquetWriterOptions *opts);

/* Start a file whose columns are tupdesc's non-dropped attributes. */
extern ParquetWriter *parquet_writer_create(TupleDesc tupdesc,
											const ParquetWriterOptions *opts,
											ParquetSink sink, void *sink_arg);

/* Add one row (values/isnull indexed like tupdesc's attributes). */
extern void parquet_writer_add_row(ParquetWriter *writer,
								   const Datum *values, const bool *isnull);

/* Rows added so far. */
extern int64 parquet_writer_rows(const ParquetWriter *writer);

/* Bytes given to the sink so far plus an estimate of what is buffered:
 * what the file would about weigh if finished now (for rolling files). */
extern int64 parquet_writer_estimated_bytes(const ParquetWriter *writer);

/* Flush the last row group, write the footer; returns the file's size. */
extern int64 parquet_writer_finish(ParquetWriter *writer);

/* Free the writer's memory (after finish, or to give up a file). */
extern void parquet_writer_destroy(ParquetWriter *writer);

#endif							/* DMS_PARQUET_H */
