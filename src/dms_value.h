/*-------------------------------------------------------------------------
 *
 * dms_value.h
 *	  Typing CSV fields per DMS ColumnType and rendering them as DMS JSON;
 *	  routing CSV records to tables and rendering rows.
 *
 * Value rules (one CSV field of an external table column):
 *
 *	NULL	An unquoted field equal to CsvNullValue, when that setting is
 *			given, is NULL (a quoted "NULL" is the string NULL; with Rfc4180
 *			off nothing is quoted).  An unquoted empty field is NULL when
 *			CsvNullValue is not set; when it is set (DMS's way to tell NULL
 *			from an empty string), it is an empty string for STRING, CLOB,
 *			BYTE and BLOB and NULL for the other types.  A quoted empty
 *			field "" is an empty string for STRING, CLOB, BYTE and BLOB, and
 *			NULL for every other type (an empty number or date means no
 *			value).  NULL in a column with ColumnNullable false (the DMS
 *			default) is a data error.  NULL renders as JSON null; is_null
 *			and is_empty (an empty string or zero bytes) let the message
 *			writer apply IncludeNullAndEmpty.
 *	Spaces	Leading and trailing blanks (space, tab) are ignored for every
 *			type except STRING and CLOB, whose bytes are kept as they are.
 *	INT1/2/4/8, UINT1/2/4/8
 *			An optional sign and decimal digits (leading zeros allowed); no
 *			point, no exponent.  Range-checked per type (INT1 -128..127,
 *			UINT8 0..18446744073709551615, ...).  Rendered as an exact JSON
 *			integer without leading zeros.  DMS itself prints integers of
 *			more than 16 digits in scientific notation (a documented
 *			limitation of its Kinesis target); we do not copy that: every
 *			digit is kept.
 *	NUMERIC(p,s)
 *			[sign] digits [. digits] [e|E [sign] digits], or with the point
 *			first (".5").  Parsed exactly in decimal; more fractional digits
 *			than s are rounded half away from zero to s digits; more than
 *			p - s integer digits (after rounding) is a data error.
 *			Rendered as a JSON number with exactly s fractional digits
 *			("12.50"; s = 0 gives an integer).  NaN and Infinity are errors.
 *	REAL4/REAL8
 *			A decimal number as above (no hex floats, no NaN or Infinity:
 *			JSON has no such numbers, so they are data errors; so is a value
 *			beyond the type's range).  Rendered in the shortest form that
 *			reads back as the same float4/float8 value (0.1, 1e+20).
 *	BOOLEAN true/false, t/f, 1/0, yes/no, y/n in any case -> true/false.
 *	STRING/CLOB
 *			A JSON string with the field's bytes (which must be valid UTF-8),
 *			escaped as JSON requires.  A value longer than ColumnLength bytes
 *			(when given), or a CLOB/BLOB longer than the lob_max_bytes option
 *			(the task's LobMaxSize), is a truncation error: the value is
 *			still rendered, cut to the limit at a character boundary, and
 *			the caller applies DataTruncationErrorPolicy.
 *	BYTE/BLOB
 *			Hex digits, optionally after 0x or 0X, an even number of them.
 *			Rendered as "0x" + upper-case hex, or without 0x when the target
 *			sets NoHexPrefix.  ColumnLength counts bytes (two digits each).
 *	DATE	Rendered "YYYY-MM-DD".
 *	TIME	Rendered "HH:MM:SS", or "HH:MM:SS.ffffff" (microseconds,
 *			extra digits truncated) when the value has a fraction (TIME
 *			takes no ColumnScale).
 *	DATETIME
 *			Rendered as DMS writes timestamps to Kinesis,
 *			"YYYY-MM-DDTHH:MM:SSZ", with ColumnScale fractional digits
 *			(0-9) before the Z; extra input digits are truncated (ColumnScale
 *			0 drops fractions, as DMS documents), missing ones are zeros.
 *			The time is written as read: no time zone conversion.
 *	Date/time input
 *			With ColumnDateFormat, the value follows that format: the date
 *			part in its order and separators (YYYY-MM-dd, YYYY/MM/dd,
 *			MM/dd/YYYY, YYYYMMdd), a space (or T), then HH:mm:ss; ".F"
 *			formats take an optional fraction (a point and digits, those
 *			beyond the 9th ignored), others none.  Without it, ISO-like:
 *			YYYY-MM-DD[( |T)HH:MM:SS[.fraction]][Z].  A DATETIME may omit
 *			the time (midnight); a DATE may carry a time (checked, then
 *			dropped); a TIME may be written alone (HH:MM:SS with the
 *			format's fraction rule) or with a date (checked, then dropped).
 *			Month, day, hour, minute and second may have one digit, except
 *			in YYYYMMdd dates.  Years are 0001-9999; impossible dates
 *			(February 30, April 31, February 29 of a common year) and times
 *			(24:00, :60) are data errors; no time zones.
 *
 * Row rules (one CSV record):
 *	Full load: the record has the table's columns in TableColumns order.
 *	A record with one more field whose first field is I or INSERT (any
 *	case) is accepted too, that field being the operation column DMS S3
 *	targets write with IncludeOpForFullLoad.  Operation "load".
 *	CDC: operation, table name, schema name, then the table's columns.
 *	The operation is INSERT/I, UPDATE/U or DELETE/D in any case (insert,
 *	update, delete); the table is found by schema (TableOwner) and name
 *	(TableName), compared exactly.
 *	A wrong number of fields, an unknown operation or table, or any value
 *	error makes the row fail with the first error; truncations do not stop
 *	rendering (the row fails with class truncation unless a data error
 *	follows).  The data object has the columns in TableColumns order;
 *	NULL and empty values are left out unless include_null_and_empty.
 *
 * Errors are returned, never thrown (no palloc or PG_TRY per field): each
 * has a class (data error or truncation) and a message naming the value;
 * row errors also give the 1-based field number in the CSV record (CDC
 * records count the operation, table and schema fields) and the column.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_VALUE_H
#define DMS_VALUE_H

#include "lib/stringinfo.h"

#include "csv.h"
#include "external_table.h"

struct json_t;

#define DMS_VALUE_MESSAGE_SIZE	256

typedef enum DmsValueErrorClass
{
	DMS_VALUE_OK = 0,
	DMS_VALUE_DATA_ERROR,		/* the value (or row) cannot be used */
	DMS_VALUE_TRUNCATED			/* rendered, but cut to the column's limit */
} DmsValueErrorClass;

typedef struct DmsValueOptions
{
	const char *null_value;		/* CsvNullValue, NULL if not set */
	size_t		null_value_len;
	bool		no_hex_prefix;	/* KinesisSettings NoHexPrefix */
	bool		include_null_and_empty; /* KinesisSettings IncludeNullAndEmpty */
	int64		lob_max_bytes;	/* CLOB/BLOB limit in bytes, 0: none */
} DmsValueOptions;

typedef struct DmsValueResult
{
	bool		is_null;
	bool		is_empty;		/* empty string, or zero bytes */
	DmsValueErrorClass error_class;
	char		message[DMS_VALUE_MESSAGE_SIZE];	/* when error_class != OK */
} DmsValueResult;

typedef enum DmsRowOperation
{
	DMS_ROW_LOAD,
	DMS_ROW_INSERT,
	DMS_ROW_UPDATE,
	DMS_ROW_DELETE
} DmsRowOperation;

/* A record routed to its table. */
typedef struct DmsRow
{
	DmsRowOperation operation;
	int			table_index;	/* in the definition, -1 if unknown */
	const ExternalTable *table; /* NULL if unknown */
	const CsvField *columns;	/* the table's ncolumns values */
	int			first_field;	/* 1-based field number of columns[0] */
} DmsRow;

typedef struct DmsRowError
{
	DmsValueErrorClass error_class;
	int			field;			/* 1-based field of the record, 0 if none */
	const char *column_name;	/* NULL if not about a column */
	char		message[DMS_VALUE_MESSAGE_SIZE];
} DmsRowError;

typedef struct DmsRowRenderer DmsRowRenderer;

/* Defaults: no CsvNullValue, hex prefix, no NULL/empty, no LOB limit. */
extern void dms_value_options_init(DmsValueOptions *opts);

/*
 * Options from an S3 source's S3Settings (CsvNullValue) and, when not NULL,
 * a Kinesis target's KinesisSettings (NoHexPrefix, IncludeNullAndEmpty).
 * Strings point into the JSON objects, which must outlive the options.
 */
extern void dms_value_options_from_settings(DmsValueOptions *opts,
											const struct json_t *s3_settings,
											const struct json_t *kinesis_settings);

/*
 * Type one field for col and append its JSON rendering to out.  Returns true
 * when the value is good.  On a data error nothing is appended; on a
 * truncation the truncated value is appended.  Either way res says why.
 */
extern bool dms_value_render(const ExternalColumn *col, const char *field,
							 size_t len, bool quoted,
							 const DmsValueOptions *opts, StringInfo out,
							 DmsValueResult *res);

/* Append s as a JSON string (valid UTF-8 assumed; escapes as JSON needs). */
extern void dms_value_json_string(StringInfo out, const char *s, size_t len);

/* "load", "insert", "update", "delete" (DMS metadata operation names). */
extern const char *dms_row_operation_name(DmsRowOperation op);

/* Parse a CDC operation field (I/INSERT/U/UPDATE/D/DELETE, any case). */
extern bool dms_row_operation_parse(const char *s, size_t len, DmsRowOperation *op);

/*
 * A renderer for the tables of a definition: holds the JSON keys ready.
 * Allocated in CurrentMemoryContext; def and opts must outlive it.
 */
extern DmsRowRenderer *dms_row_renderer_create(const ExternalTableDefinition *def,
											   const DmsValueOptions *opts);

/* Index of the table owner.name in the definition, or -1. */
extern int	dms_row_find_table(const ExternalTableDefinition *def,
							   const char *owner, size_t owner_len,
							   const char *name, size_t name_len);

/*
 * Route a record: for a full-load file of the table at load_table (index in
 * the definition), or for a CDC file when load_table is -1.  Fills row
 * (operation and table as far as known, also on failure); false with err
 * filled when the record does not fit.
 */
extern bool dms_row_route(const DmsRowRenderer *rr, int load_table,
						  const CsvField *fields, int nfields,
						  DmsRow *row, DmsRowError *err);

/*
 * Append the row's data object, {"col": value, ...} in column order, to out.
 * False with err filled on the first data error (out is then left as it
 * was) or, when there is no data error, on the first truncation (out then
 * holds the object with truncated values).
 */
extern bool dms_row_render(const DmsRowRenderer *rr, const DmsRow *row,
						   StringInfo out, DmsRowError *err);

#endif							/* DMS_VALUE_H */
