/*-------------------------------------------------------------------------
 *
 * csv.h
 *	  Streaming CSV reader for DMS S3 source files, with bounded memory.
 *
 * The reader is fed a file in chunks of any size (csv_reader_feed, then
 * csv_reader_finish at the end of the file) and hands back one record at a
 * time (csv_reader_next).  It keeps only the record being read plus the
 * last chunk, so memory is bounded by max_record_bytes + the chunk size
 * whatever the size of the file.
 *
 * Rules (S3Settings of the source endpoint):
 *
 *	CsvDelimiter	column delimiter, one or more bytes; default ",".
 *	CsvRowDelimiter row delimiter, one or more bytes; default "\n" (which
 *					also takes "\r\n", so that files written with CR LF
 *					read the same, unless CsvDelimiter has a CR).  Both
 *					accept the escapes \n, \r and \t written literally
 *					(backslash, letter), as DMS CLI users write them:
 *					"\\r\\n" in JSON is CR LF.  Any other backslash is a
 *					literal backslash.
 *	IgnoreHeaderRows 1: the first record of each file is skipped (a file
 *					read from offset 0 only; a resumed reader never skips).
 *	Rfc4180			true/y (default): a field whose first byte is '"' is
 *					quoted; it runs to the matching '"', "" inside is one
 *					'"', and delimiters and row delimiters inside are data.
 *					The closing quote must be followed by a delimiter, a
 *					row delimiter or the end of the file.  A '"' elsewhere
 *					in an unquoted field is literal.  false/n: quotes are
 *					always literal and a delimiter always ends a field.
 *
 *	A UTF-8 byte order mark at the start of a file is skipped.  An empty
 *	line (a row delimiter right after another one) is not a record and is
 *	skipped.  The last record may end without a row delimiter.  A record
 *	ending with a delimiter has an empty last field.  Each field carries a
 *	"quoted" flag, so that the caller can tell "" (an empty string) from an
 *	empty field (NULL).
 *
 * Positions: every record carries the 1-based line where it starts, the
 * file offset of its first byte and the offset just past its row delimiter
 * (where the next record starts), and the line there.  A reader created
 * with that position (csv_reader_create's start), and fed the file from
 * that offset, resumes exactly where the first one stopped.  Lines count
 * '\n' bytes (also inside quoted fields), as an editor does, when the row
 * delimiter contains '\n'; with a row delimiter without '\n' (e.g. "|")
 * they count rows instead.
 *
 * Errors are per record (CSV_BAD_RECORD), never thrown: each names the
 * line, the field number (column, 1-based) and the reason:
 *	- unterminated quoted field at the end of the file;
 *	- text after the closing quote of a quoted field;
 *	- invalid UTF-8 (or a NUL byte), with the file offset of the bad byte;
 *	- record longer than max_record_bytes (row delimiter excluded): the
 *	  reader drops the record's bytes and resynchronises at the next row
 *	  delimiter outside quotes.  When that record is inside a quoted field
 *	  that is never closed, no resynchronisation is possible: the error is
 *	  then fatal (error.fatal), it says how much of the file was lost, and
 *	  the reader ends;
 *	- more than max_fields fields.
 * A bad record's fields are not returned; its raw text (as for good
 * records: the bytes from its start up to its row delimiter, capped at
 * max_raw_bytes) is, for the exceptions table.
 *
 * Usage:
 *		reader = csv_reader_create(&settings, NULL);
 *		for each chunk:
 *			csv_reader_feed(reader, chunk, len);
 *			while ((res = csv_reader_next(reader, &rec)) != CSV_NEED_MORE)
 *				handle rec (CSV_RECORD or CSV_BAD_RECORD);
 *		csv_reader_finish(reader);
 *		while ((res = csv_reader_next(reader, &rec)) != CSV_END)
 *			handle rec;
 *		csv_reader_free(reader);
 * A record (its fields and raw text) stays valid until the next call of
 * csv_reader_next or csv_reader_feed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_CSV_H
#define DMS_CSV_H

#include "lib/stringinfo.h"

struct json_t;

/* Longest CsvDelimiter / CsvRowDelimiter, in bytes. */
#define CSV_MAX_DELIMITER_BYTES		16

/* Defaults of the limits. */
#define CSV_DEFAULT_MAX_RECORD_BYTES	(64 * 1024 * 1024)
#define CSV_MIN_MAX_RECORD_BYTES		16
#define CSV_MAX_MAX_RECORD_BYTES		(512 * 1024 * 1024)
#define CSV_DEFAULT_MAX_FIELDS			4096
#define CSV_DEFAULT_MAX_RAW_BYTES		(64 * 1024)

/* Length of a CsvError message buffer. */
#define CSV_ERROR_MESSAGE_SIZE		256

typedef struct CsvSettings
{
	char		delimiter[CSV_MAX_DELIMITER_BYTES + 1];
	int			delimiter_len;
	char		row_delimiter[CSV_MAX_DELIMITER_BYTES + 1];
	int			row_delimiter_len;
	bool		rfc4180;		/* Rfc4180 */
	bool		ignore_header;	/* IgnoreHeaderRows = 1 */
	bool		validate_utf8;	/* check every record is UTF-8 (default) */
	size_t		max_record_bytes;	/* longest record, row delimiter excluded */
	int			max_fields;		/* most fields in a record */
	size_t		max_raw_bytes;	/* cap of CsvRecord.raw */
} CsvSettings;

/* A place in a file: byte offset and the 1-based line there. */
typedef struct CsvPosition
{
	int64		offset;
	int64		line;
} CsvPosition;

typedef struct CsvField
{
	const char *data;			/* not NUL-terminated; "" unescaped */
	size_t		len;
	bool		quoted;			/* was enclosed in quotes (Rfc4180) */
} CsvField;

typedef enum CsvErrorCode
{
	CSV_ERR_NONE = 0,
	CSV_ERR_UNTERMINATED_QUOTE,
	CSV_ERR_TEXT_AFTER_QUOTE,
	CSV_ERR_INVALID_UTF8,
	CSV_ERR_RECORD_TOO_LONG,
	CSV_ERR_TOO_MANY_FIELDS
} CsvErrorCode;

typedef struct CsvError
{
	CsvErrorCode code;
	int			column;			/* 1-based field number, 0 if none */
	int64		offset;			/* file offset of the problem */
	bool		fatal;			/* the reader cannot go on */
	char		message[CSV_ERROR_MESSAGE_SIZE];	/* reason, without line */
} CsvError;

typedef struct CsvRecord
{
	int			nfields;
	CsvField   *fields;			/* NULL for a bad record */
	CsvPosition start;			/* first byte of the record, its line */
	CsvPosition end;			/* just past the row delimiter: next record */
	const char *raw;			/* record text, row delimiter excluded */
	size_t		raw_len;		/* at most max_raw_bytes */
	bool		raw_truncated;	/* raw is a prefix of the record */
	CsvError	error;			/* code CSV_ERR_NONE unless CSV_BAD_RECORD */
} CsvRecord;

typedef enum CsvResult
{
	CSV_RECORD,					/* rec holds a record */
	CSV_BAD_RECORD,				/* rec holds a bad record and its error */
	CSV_NEED_MORE,				/* feed the next chunk (or finish) */
	CSV_END						/* no more records */
} CsvResult;

typedef struct CsvReader CsvReader;

/* The setting dms_stream.csv_max_record_size, in bytes. */
extern int	csv_max_record_size;

/* Define dms_stream.csv_* settings (from _PG_init). */
extern void csv_define_settings(void);

/* DMS defaults: ",", "\n", Rfc4180 on, no header, limits as above. */
extern void csv_settings_init(CsvSettings *settings);

/*
 * Fill settings from an S3 source endpoint's S3Settings object (CsvDelimiter,
 * CsvRowDelimiter, IgnoreHeaderRows, Rfc4180), starting from the defaults and
 * dms_stream.csv_max_record_size.  Errors (ereport) on a bad value.
 */
extern void csv_settings_from_s3(CsvSettings *settings,
								 const struct json_t *s3_settings);

/*
 * Decode a delimiter setting (escapes \n, \r, \t) into out (at least
 * CSV_MAX_DELIMITER_BYTES + 1 bytes); returns its length, or -1 if it is
 * empty or longer than CSV_MAX_DELIMITER_BYTES.
 */
extern int	csv_decode_delimiter(const char *setting, char *out);

/*
 * A reader of one file.  start is where reading begins (NULL: offset 0,
 * line 1); the first byte fed must be the byte at start->offset.  The reader
 * allocates in a memory context of its own under CurrentMemoryContext.
 */
extern CsvReader *csv_reader_create(const CsvSettings *settings,
									const CsvPosition *start);
extern void csv_reader_feed(CsvReader *reader, const char *data, size_t len);
extern void csv_reader_finish(CsvReader *reader);
extern CsvResult csv_reader_next(CsvReader *reader, CsvRecord *rec);

/* Where the record after the last one returned starts (the resume point). */
extern CsvPosition csv_reader_position(const CsvReader *reader);

/* Bytes allocated for the reader's buffers now (for diagnostics). */
extern size_t csv_reader_memory(const CsvReader *reader);

extern void csv_reader_free(CsvReader *reader);

/*
 * Append s to out with every byte that is not part of valid UTF-8 (and NUL)
 * written as \xNN, so that raw text of a bad record can be stored as text.
 */
extern void csv_append_escaped_invalid(StringInfo out, const char *s, size_t len);

/*
 * Length of the longest valid UTF-8 prefix of s (no NUL bytes); len if all
 * of s is valid.
 */
extern size_t csv_utf8_valid_prefix(const char *s, size_t len);

#endif							/* DMS_CSV_H */
