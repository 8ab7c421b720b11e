/*-------------------------------------------------------------------------
 *
 * csv.c
 *	  Streaming CSV reader for DMS S3 source files (rules in csv.h).
 *
 * The reader copies each chunk it is fed after the unread bytes of its
 * buffer, first moving the record in progress to the front; positions of
 * the record in progress are buffer indexes, and those of its finished
 * fields are relative to the record's first byte, so the move only shifts
 * a few indexes.  The scanner is a state machine that can stop at any byte
 * (CSV_NEED_MORE) and resume there after the next chunk, so no byte is
 * scanned twice.  A record that grows beyond max_record_bytes is dropped
 * as it is read (the state machine keeps running to find its end), so the
 * buffer never holds more than max_record_bytes plus one chunk.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "csv.h"
#include "dms_json.h"

int			csv_max_record_size = CSV_DEFAULT_MAX_RECORD_BYTES;

typedef enum ScanState
{
	ST_FIELD_START,				/* before the first byte of a field */
	ST_UNQUOTED,				/* in an unquoted field */
	ST_QUOTED,					/* in a quoted field */
	ST_QUOTE_SEEN,				/* after a '"' in a quoted field */
	ST_AFTER_QUOTE,				/* after the closing quote */
	ST_GARBAGE					/* text after a closing quote, to the delimiter */
} ScanState;

typedef enum MatchResult
{
	MATCH_NONE,
	MATCH_DELIMITER,
	MATCH_ROW,
	MATCH_PARTIAL				/* a delimiter may start here: need more bytes */
} MatchResult;

/* Internal result of scan_record: a header or blank line was skipped. */
#define SCAN_SKIPPED	((CsvResult) -1)

/* A finished field, positions relative to the record's first byte. */
typedef struct FieldPos
{
	size_t		raw_start;		/* first byte, opening quote included */
	size_t		start;			/* content */
	size_t		end;
	bool		quoted;
	bool		escaped;		/* content holds "" pairs */
} FieldPos;

struct CsvReader
{
	CsvSettings s;
	MemoryContext cxt;
	bool		count_newlines; /* lines count '\n' (row delimiter has one) */
	bool		plain_newline;	/* row delimiter is exactly "\n" */
	bool		crlf;			/* "\r\n" is a row delimiter too */
	int			match_len;		/* length of the delimiter matched */
	int			row_delimiter_newlines;
	const char *first;			/* the longer delimiter, tried first */
	int			first_len;
	MatchResult first_kind;
	const char *second;
	int			second_len;
	MatchResult second_kind;
	bool		stop_unquoted[256]; /* bytes that may start a delimiter */

	/* buffered input: buf[0] is the byte at file offset buf_offset */
	char	   *buf;
	size_t		cap;
	size_t		len;
	int64		buf_offset;
	bool		finished;		/* csv_reader_finish was called */
	bool		ended;			/* CSV_END was returned, or a fatal error */
	bool		bom_pending;	/* at offset 0: skip a UTF-8 BOM */
	bool		header_pending; /* skip the next record */

	/* the record in progress */
	bool		in_record;
	size_t		rec;			/* buffer index of its first retained byte */
	size_t		pos;			/* scan position (buffer index) */
	ScanState	state;
	size_t		fraw;			/* current field: first byte */
	size_t		fstart;			/* content start */
	size_t		fend;			/* content end (quoted field) */
	bool		fquoted;
	bool		fescaped;
	int64		quote_offset;	/* file offset of the open quote */
	int			nfields;		/* fields finished */
	bool		any_quoted;
	FieldPos   *fpos;
	int			fpos_cap;
	CsvError	err;
	CsvPosition cur;			/* where the record starts */
	bool		skipping;		/* too long: its bytes are dropped */
	int64		skipped_newlines;
	StringInfoData rawcopy;		/* raw prefix of a skipped record */

	/* output */
	CsvField   *out;
	int			out_cap;
	StringInfoData unesc;		/* unescaped quoted fields */
	CsvPosition next;			/* just after the last record returned */
};

/*
 * csv_define_settings
 *		Define dms_stream.csv_max_record_size.
 */
void
csv_define_settings(void)
{
	DefineCustomIntVariable("dms_stream.csv_max_record_size",
							"Longest CSV record read from an S3 source file.",
							"A longer record is an error for that record; the reader "
							"skips it and goes on at the next row delimiter. Reading "
							"a file needs about this much memory plus one chunk.",
							&csv_max_record_size,
							CSV_DEFAULT_MAX_RECORD_BYTES,
							CSV_MIN_MAX_RECORD_BYTES,
							CSV_MAX_MAX_RECORD_BYTES,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}

/*
 * csv_settings_init
 *		DMS defaults.
 */
void
csv_settings_init(CsvSettings *settings)
{
	memset(settings, 0, sizeof(CsvSettings));
	strcpy(settings->delimiter, ",");
	settings->delimiter_len = 1;
	strcpy(settings->row_delimiter, "\n");
	settings->row_delimiter_len = 1;
	settings->rfc4180 = true;
	settings->ignore_header = false;
	settings->validate_utf8 = true;
	settings->max_record_bytes = (size_t) csv_max_record_size;
	settings->max_fields = CSV_DEFAULT_MAX_FIELDS;
	settings->max_raw_bytes = CSV_DEFAULT_MAX_RAW_BYTES;
}

/*
 * csv_decode_delimiter
 *		Decode the escapes \n, \r and \t of a delimiter setting.
 */
int
csv_decode_delimiter(const char *setting, char *out)
{
	int			n = 0;
	const char *p;

	for (p = setting; *p; p++)
	{
		char		c = *p;

		if (c == '\\' && (p[1] == 'n' || p[1] == 'r' || p[1] == 't'))
		{
			p++;
			c = (*p == 'n') ? '\n' : (*p == 'r') ? '\r' : '\t';
		}
		if (n >= CSV_MAX_DELIMITER_BYTES)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0 ? n : -1;
}

/*
 * delimiter_setting
 *		Read and decode one delimiter setting, if present.
 */
static void
delimiter_setting(const DmsJsonDoc *doc, const json_t *obj, const char *key,
				  char *out, int *out_len)
{
	const char *value = dms_json_get_string(doc, obj, "", key, false, false);
	int			n;

	if (value == NULL)
		return;
	n = csv_decode_delimiter(value, out);
	if (n < 0)
		dms_json_fail(doc, key,
					  "Write the delimiter itself (e.g. \",\" or \"|\"), or the escapes \\n, \\r, \\t.",
					  "%s must be 1 to %d bytes long.", key, CSV_MAX_DELIMITER_BYTES);
	*out_len = n;
}

/*
 * csv_settings_from_s3
 *		CSV settings of an S3 source endpoint.
 */
void
csv_settings_from_s3(CsvSettings *settings, const struct json_t *s3_settings)
{
	DmsJsonDoc	doc = {"S3Settings"};
	const json_t *obj = (const json_t *) s3_settings;
	int64		n;
	bool		b;

	csv_settings_init(settings);
	if (obj == NULL || !json_is_object(obj))
		return;

	delimiter_setting(&doc, obj, "CsvDelimiter", settings->delimiter,
					  &settings->delimiter_len);
	delimiter_setting(&doc, obj, "CsvRowDelimiter", settings->row_delimiter,
					  &settings->row_delimiter_len);
	if (settings->delimiter_len == settings->row_delimiter_len &&
		memcmp(settings->delimiter, settings->row_delimiter, settings->delimiter_len) == 0)
		dms_json_fail(&doc, "CsvDelimiter",
					  "Use different column and row delimiters, e.g. \",\" and \"\\n\".",
					  "CsvDelimiter and CsvRowDelimiter are the same.");
	if (dms_json_get_int(&doc, obj, "", "IgnoreHeaderRows", false, 0, 1, &n))
		settings->ignore_header = (n == 1);
	if (dms_json_get_bool(&doc, obj, "", "Rfc4180", false, true, &b))
		settings->rfc4180 = b;
	if (settings->rfc4180 &&
		(memchr(settings->delimiter, '"', settings->delimiter_len) != NULL ||
		 memchr(settings->row_delimiter, '"', settings->row_delimiter_len) != NULL))
		dms_json_fail(&doc, "CsvDelimiter",
					  "The double quote is the RFC 4180 quote character; choose other delimiters or set Rfc4180 false.",
					  "A delimiter contains '\"'.");
}

/*
 * csv_utf8_valid_prefix
 *		Length of the valid UTF-8 prefix of s (PostgreSQL's verifier, which
 *		also rejects NUL bytes).
 */
size_t
csv_utf8_valid_prefix(const char *s, size_t len)
{
	size_t		done = 0;

	/* pg_encoding_verifymbstr takes an int length. */
	while (len - done > 0)
	{
		int			part = (int) Min(len - done, (size_t) 0x40000000);
		int			ok = pg_encoding_verifymbstr(PG_UTF8, s + done, part);

		if (ok < part)
		{
			/* a sequence cut by the 1 GB split is not an error */
			if (part < (int) (len - done) && part - ok < 4 && ok > 0)
			{
				done += ok;
				continue;
			}
			return done + ok;
		}
		done += part;
	}
	return len;
}

/*
 * csv_append_escaped_invalid
 *		Copy s, writing bytes that are not valid UTF-8 as \xNN.
 */
void
csv_append_escaped_invalid(StringInfo out, const char *s, size_t len)
{
	while (len > 0)
	{
		size_t		ok = csv_utf8_valid_prefix(s, len);

		appendBinaryStringInfo(out, s, ok);
		s += ok;
		len -= ok;
		if (len > 0)
		{
			appendStringInfo(out, "\\x%02X", (unsigned char) *s);
			s++;
			len--;
		}
	}
}

/*
 * csv_reader_create
 *		A reader starting at start (NULL: beginning of the file).
 */
CsvReader *
csv_reader_create(const CsvSettings *settings, const CsvPosition *start)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "dms_stream CSV reader",
											  ALLOCSET_DEFAULT_SIZES);
	CsvReader  *r = MemoryContextAllocZero(cxt, sizeof(CsvReader));
	MemoryContext old;
	int			i;

	r->s = *settings;
	r->cxt = cxt;
	if (r->s.max_record_bytes < CSV_MIN_MAX_RECORD_BYTES)
		r->s.max_record_bytes = CSV_MIN_MAX_RECORD_BYTES;
	if (r->s.max_record_bytes > CSV_MAX_MAX_RECORD_BYTES)
		r->s.max_record_bytes = CSV_MAX_MAX_RECORD_BYTES;
	if (r->s.max_fields < 1)
		r->s.max_fields = CSV_DEFAULT_MAX_FIELDS;
	if (r->s.delimiter_len < 1 || r->s.row_delimiter_len < 1)
		elog(ERROR, "CSV delimiters must not be empty");

	r->count_newlines = memchr(r->s.row_delimiter, '\n', r->s.row_delimiter_len) != NULL;
	r->plain_newline = (r->s.row_delimiter_len == 1 && r->s.row_delimiter[0] == '\n' &&
						memchr(r->s.delimiter, '\n', r->s.delimiter_len) == NULL);
	for (i = 0; i < r->s.row_delimiter_len; i++)
		if (r->s.row_delimiter[i] == '\n')
			r->row_delimiter_newlines++;
	if (!r->count_newlines)
		r->row_delimiter_newlines = 1;	/* lines are rows */

	/* Try the longer delimiter first: "\r" must not hide "\r\n". */
	if (r->s.row_delimiter_len > r->s.delimiter_len)
	{
		r->first = r->s.row_delimiter;
		r->first_len = r->s.row_delimiter_len;
		r->first_kind = MATCH_ROW;
		r->second = r->s.delimiter;
		r->second_len = r->s.delimiter_len;
		r->second_kind = MATCH_DELIMITER;
	}
	else
	{
		r->first = r->s.delimiter;
		r->first_len = r->s.delimiter_len;
		r->first_kind = MATCH_DELIMITER;
		r->second = r->s.row_delimiter;
		r->second_len = r->s.row_delimiter_len;
		r->second_kind = MATCH_ROW;
	}
	r->stop_unquoted[(unsigned char) r->s.delimiter[0]] = true;
	r->stop_unquoted[(unsigned char) r->s.row_delimiter[0]] = true;
	/* With "\n" rows, files written with CR LF read the same. */
	r->crlf = r->plain_newline && memchr(r->s.delimiter, '\r', r->s.delimiter_len) == NULL;
	if (r->crlf)
		r->stop_unquoted[(unsigned char) '\r'] = true;

	if (start)
		r->next = *start;
	else
	{
		r->next.offset = 0;
		r->next.line = 1;
	}
	r->buf_offset = r->next.offset;
	r->bom_pending = (r->next.offset == 0);
	r->header_pending = (r->s.ignore_header && r->next.offset == 0);

	old = MemoryContextSwitchTo(cxt);
	r->cap = 64 * 1024;
	r->buf = palloc(r->cap);
	r->fpos_cap = 64;
	r->fpos = palloc(sizeof(FieldPos) * r->fpos_cap);
	r->out_cap = 64;
	r->out = palloc(sizeof(CsvField) * r->out_cap);
	initStringInfo(&r->unesc);
	initStringInfo(&r->rawcopy);
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * csv_reader_feed
 *		Append the next chunk of the file.
 */
void
csv_reader_feed(CsvReader *r, const char *data, size_t len)
{
	size_t		keep_from;
	size_t		need;

	if (r->finished)
		elog(ERROR, "CSV reader fed after the end of its file");
	if (len == 0)
		return;

	/* Drop what the record in progress (or the next record) does not need. */
	keep_from = r->in_record ? r->rec : r->pos;
	if (keep_from > 0)
	{
		if (r->len > keep_from)
			memmove(r->buf, r->buf + keep_from, r->len - keep_from);
		r->len -= keep_from;
		r->buf_offset += keep_from;
		r->pos -= keep_from;
		if (r->in_record)
		{
			r->rec -= keep_from;
			r->fraw = (r->fraw >= keep_from) ? r->fraw - keep_from : 0;
			r->fstart = (r->fstart >= keep_from) ? r->fstart - keep_from : 0;
			r->fend = (r->fend >= keep_from) ? r->fend - keep_from : 0;
		}
	}

	need = r->len + len;
	if (need > r->cap)
	{
		size_t		newcap = Max(need, r->cap + r->cap / 2);

		r->buf = repalloc_huge(r->buf, newcap);
		r->cap = newcap;
	}
	memcpy(r->buf + r->len, data, len);
	r->len += len;
}

/*
 * csv_reader_finish
 *		No more input: the bytes buffered are the end of the file.
 */
void
csv_reader_finish(CsvReader *r)
{
	r->finished = true;
}

/*
 * csv_reader_position
 *		The resume point: just after the last record returned or skipped.
 */
CsvPosition
csv_reader_position(const CsvReader *r)
{
	return r->next;
}

/*
 * csv_reader_memory
 *		Bytes held by the reader's buffers.
 */
size_t
csv_reader_memory(const CsvReader *r)
{
	return r->cap + r->fpos_cap * sizeof(FieldPos) + r->out_cap * sizeof(CsvField) +
		r->unesc.maxlen + r->rawcopy.maxlen;
}

/*
 * csv_reader_free
 *		Release the reader and everything it allocated.
 */
void
csv_reader_free(CsvReader *r)
{
	MemoryContextDelete(r->cxt);
}

static void set_error(CsvReader *r, CsvErrorCode code, int column, int64 offset,
					  const char *fmt,...) pg_attribute_printf(5, 6);

/*
 * set_error
 *		Record the first error of the record in progress.
 */
static void
set_error(CsvReader *r, CsvErrorCode code, int column, int64 offset,
		  const char *fmt,...)
{
	va_list		args;

	if (r->err.code != CSV_ERR_NONE)
		return;
	r->err.code = code;
	r->err.column = column;
	r->err.offset = offset;
	r->err.fatal = false;
	va_start(args, fmt);
	vsnprintf(r->err.message, sizeof(r->err.message), fmt, args);
	va_end(args);
}

/*
 * begin_record
 *		Start a record at the scan position.
 */
static void
begin_record(CsvReader *r)
{
	r->in_record = true;
	r->rec = r->pos;
	r->state = ST_FIELD_START;
	r->nfields = 0;
	r->any_quoted = false;
	r->err.code = CSV_ERR_NONE;
	r->err.message[0] = '\0';
	r->skipping = false;
	r->skipped_newlines = 0;
	r->cur.offset = r->buf_offset + r->pos;
	r->cur.line = r->next.line;
}

/*
 * end_field
 *		A field of the record in progress ends; content is [start, end).
 */
static inline void
end_field(CsvReader *r, size_t start, size_t end)
{
	FieldPos   *f;

	r->nfields++;
	if (r->fquoted)
		r->any_quoted = true;
	if (r->skipping)
		return;
	if (r->nfields > r->s.max_fields)
	{
		set_error(r, CSV_ERR_TOO_MANY_FIELDS, r->nfields, r->buf_offset + r->fraw,
				  "record has more than %d fields", r->s.max_fields);
		return;
	}
	if (r->nfields > r->fpos_cap)
	{
		r->fpos_cap = Min(r->fpos_cap * 2, r->s.max_fields);
		r->fpos = repalloc(r->fpos, sizeof(FieldPos) * r->fpos_cap);
	}
	f = &r->fpos[r->nfields - 1];
	f->raw_start = r->fraw - r->rec;
	f->start = start - r->rec;
	f->end = end - r->rec;
	f->quoted = r->fquoted;
	f->escaped = r->fescaped;
}

/*
 * match_delimiter
 *		Does a delimiter start at buf[p]?
 */
static inline MatchResult
match_delimiter(CsvReader *r, size_t p)
{
	const char *b = r->buf + p;
	size_t		avail = r->len - p;

	if (r->crlf && *b == '\r')
	{
		if (avail >= 2)
		{
			if (b[1] == '\n')
			{
				r->match_len = 2;
				return MATCH_ROW;
			}
		}
		else if (!r->finished)
			return MATCH_PARTIAL;
	}
	if (*b == r->first[0])
	{
		if (r->first_len == 1 ||
			(avail >= (size_t) r->first_len && memcmp(b, r->first, r->first_len) == 0))
		{
			r->match_len = r->first_len;
			return r->first_kind;
		}
		if (avail < (size_t) r->first_len && !r->finished && memcmp(b, r->first, avail) == 0)
			return MATCH_PARTIAL;
	}
	if (*b == r->second[0])
	{
		if (r->second_len == 1 ||
			(avail >= (size_t) r->second_len && memcmp(b, r->second, r->second_len) == 0))
		{
			r->match_len = r->second_len;
			return r->second_kind;
		}
		if (avail < (size_t) r->second_len && !r->finished && memcmp(b, r->second, avail) == 0)
			return MATCH_PARTIAL;
	}
	return MATCH_NONE;
}

/*
 * count_newlines
 *		'\n' bytes in buf[from, to).
 */
static int64
count_newlines(const char *buf, size_t from, size_t to)
{
	int64		n = 0;
	const char *p = buf + from;
	const char *end = buf + to;

	while (p < end && (p = memchr(p, '\n', end - p)) != NULL)
	{
		n++;
		p++;
	}
	return n;
}

/*
 * field_at
 *		1-based number of the field holding byte rel (relative to the record).
 */
static int
field_at(const CsvReader *r, size_t rel)
{
	int			i;
	int			n = Min(r->nfields, r->s.max_fields);

	for (i = 1; i < n; i++)
		if (r->fpos[i].raw_start > rel)
			return i;
	return Max(n, 1);
}

/*
 * enter_skipping
 *		The record in progress is too long: keep a prefix of its raw text
 *		and drop its bytes from now on.
 */
static void
enter_skipping(CsvReader *r)
{
	size_t		limit = r->s.max_record_bytes;
	int			column;

	/* the field holding the first byte over the limit */
	if (r->nfields == 0 || limit >= r->fraw - r->rec)
		column = r->nfields + 1;
	else
		column = field_at(r, limit);
	set_error(r, CSV_ERR_RECORD_TOO_LONG, column,
			  r->cur.offset + r->s.max_record_bytes,
			  "record is longer than %zu bytes (dms_stream.csv_max_record_size); "
			  "it was skipped up to the next row delimiter",
			  r->s.max_record_bytes);
	r->skipping = true;
	resetStringInfo(&r->rawcopy);
	appendBinaryStringInfo(&r->rawcopy, r->buf + r->rec, Min(limit, r->s.max_raw_bytes));
}

/*
 * unescape_into
 *		Append a quoted field's content with each "" made ".
 */
static void
unescape_into(StringInfo out, const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end)
	{
		const char *q = memchr(s, '"', end - s);

		if (q == NULL)
		{
			appendBinaryStringInfoNT(out, s, end - s);
			return;
		}
		/* copy up to and including the first quote of the pair */
		appendBinaryStringInfoNT(out, s, q - s + 1);
		s = q + 2;
	}
}

/*
 * complete_record
 *		The record in progress ends: its content is buf[rec, content_end) and
 *		the next record starts at buf[next_start].  Fill rec_out.
 */
static CsvResult
complete_record(CsvReader *r, CsvRecord *out, size_t content_end, size_t next_start)
{
	size_t		content_len = content_end - r->rec;
	bool		has_row_delimiter = next_start > content_end;
	int64		lines;
	int			i;

	r->pos = next_start;
	r->in_record = false;

	/* Lines: '\n' bytes of the record, or one per row. */
	if (!r->count_newlines)
		lines = has_row_delimiter ? 1 : 0;
	else if (r->plain_newline && !r->any_quoted && !r->skipping)
		lines = has_row_delimiter ? 1 : 0;
	else
		lines = r->skipped_newlines + count_newlines(r->buf, r->rec, next_start);

	out->start = r->cur;
	out->end.offset = r->buf_offset + next_start;
	out->end.line = r->cur.line + lines;
	r->next = out->end;

	/* An empty line is not a record. */
	if (!r->skipping && content_len == 0 && r->nfields <= 1 && !r->any_quoted &&
		r->err.code == CSV_ERR_NONE)
		return SCAN_SKIPPED;

	/* The header, unless it runs to the end of the file in a quote. */
	if (r->header_pending && r->err.code != CSV_ERR_UNTERMINATED_QUOTE)
	{
		r->header_pending = false;
		return SCAN_SKIPPED;
	}

	/* Raw text, capped. */
	if (r->skipping)
	{
		out->raw = r->rawcopy.data;
		out->raw_len = r->rawcopy.len;
		out->raw_truncated = true;
	}
	else
	{
		out->raw = r->buf + r->rec;
		out->raw_len = Min(content_len, r->s.max_raw_bytes);
		out->raw_truncated = (out->raw_len < content_len);
	}

	if (!r->skipping && r->err.code == CSV_ERR_NONE)
	{
		if (content_len > r->s.max_record_bytes)
		{
			set_error(r, CSV_ERR_RECORD_TOO_LONG, field_at(r, r->s.max_record_bytes),
					  r->cur.offset + r->s.max_record_bytes,
					  "record is longer than %zu bytes (dms_stream.csv_max_record_size); "
					  "it was skipped up to the next row delimiter",
					  r->s.max_record_bytes);
			/* the same raw prefix as a record dropped while read */
			out->raw_len = Min(out->raw_len, r->s.max_record_bytes);
			out->raw_truncated = true;
		}
		else if (r->s.validate_utf8)
		{
			size_t		ok = csv_utf8_valid_prefix(r->buf + r->rec, content_len);

			if (ok < content_len)
			{
				unsigned char bad = (unsigned char) r->buf[r->rec + ok];

				if (bad == 0)
					set_error(r, CSV_ERR_INVALID_UTF8, field_at(r, ok), r->cur.offset + ok,
							  "NUL byte at offset " INT64_FORMAT, r->cur.offset + (int64) ok);
				else
					set_error(r, CSV_ERR_INVALID_UTF8, field_at(r, ok), r->cur.offset + ok,
							  "invalid UTF-8: byte 0x%02X at offset " INT64_FORMAT,
							  bad, r->cur.offset + (int64) ok);
			}
		}
	}

	if (r->err.code != CSV_ERR_NONE)
	{
		out->nfields = r->nfields;
		out->fields = NULL;
		out->error = r->err;
		if (out->error.fatal)
			r->ended = true;
		return CSV_BAD_RECORD;
	}

	/* Fields: pointers into the buffer, or into unesc for "" pairs. */
	if (r->nfields > r->out_cap)
	{
		r->out_cap = Max(r->nfields, r->out_cap * 2);
		r->out = repalloc(r->out, sizeof(CsvField) * r->out_cap);
	}
	resetStringInfo(&r->unesc);
	if (r->any_quoted)
	{
		size_t		total = 0;

		for (i = 0; i < r->nfields; i++)
			if (r->fpos[i].escaped)
				total += r->fpos[i].end - r->fpos[i].start;
		if (total > 0)
			enlargeStringInfo(&r->unesc, (int) total);
	}
	for (i = 0; i < r->nfields; i++)
	{
		const FieldPos *f = &r->fpos[i];
		CsvField   *o = &r->out[i];

		o->quoted = f->quoted;
		if (f->escaped)
		{
			size_t		at = r->unesc.len;

			unescape_into(&r->unesc, r->buf + r->rec + f->start, f->end - f->start);
			o->data = r->unesc.data + at;
			o->len = r->unesc.len - at;
		}
		else
		{
			o->data = r->buf + r->rec + f->start;
			o->len = f->end - f->start;
		}
	}
	out->nfields = r->nfields;
	out->fields = r->out;
	out->error.code = CSV_ERR_NONE;
	out->error.column = 0;
	out->error.offset = 0;
	out->error.fatal = false;
	out->error.message[0] = '\0';
	return CSV_RECORD;
}

/*
 * end_of_input
 *		The scanner ran out of bytes at r->pos: ask for more, or finish the
 *		record at the end of the file.
 */
static CsvResult
end_of_input(CsvReader *r, CsvRecord *out)
{
	size_t		p = r->pos;

	if (!r->finished)
	{
		/* Too long?  Then drop what was read of it so far. */
		if (!r->skipping && p - r->rec > r->s.max_record_bytes)
			enter_skipping(r);
		if (r->skipping)
		{
			if (r->count_newlines)
				r->skipped_newlines += count_newlines(r->buf, r->rec, p);
			r->rec = p;
			r->fraw = r->fstart = r->fend = p;
		}
		return CSV_NEED_MORE;
	}

	switch (r->state)
	{
		case ST_FIELD_START:
			if (r->nfields == 0 && !r->skipping && r->buf_offset + (int64) p == r->cur.offset)
			{
				/* no bytes: the file is done */
				r->in_record = false;
				r->ended = true;
				return CSV_END;
			}
			r->fraw = r->fstart = p;
			r->fquoted = r->fescaped = false;
			end_field(r, p, p);
			break;
		case ST_UNQUOTED:
		case ST_GARBAGE:
			end_field(r, r->fstart, p);
			break;
		case ST_QUOTED:
			if (r->skipping)
			{
				r->err.code = CSV_ERR_NONE;
				set_error(r, CSV_ERR_UNTERMINATED_QUOTE, r->nfields + 1, r->quote_offset,
						  "record is longer than %zu bytes and its quoted field opened at offset "
						  INT64_FORMAT " is never closed: the remaining " INT64_FORMAT
						  " bytes of the file could not be read",
						  r->s.max_record_bytes, r->quote_offset,
						  r->buf_offset + (int64) p - r->cur.offset);
				r->err.fatal = true;
			}
			else
				set_error(r, CSV_ERR_UNTERMINATED_QUOTE, r->nfields + 1, r->quote_offset,
						  "quoted field opened at offset " INT64_FORMAT
						  " is not closed before the end of the file",
						  r->quote_offset);
			r->nfields++;
			break;
		case ST_QUOTE_SEEN:
			end_field(r, r->fstart, p - 1);
			break;
		case ST_AFTER_QUOTE:
			end_field(r, r->fstart, r->fend);
			break;
	}
	return complete_record(r, out, p, p);
}

/*
 * scan_record
 *		Run the state machine from r->pos until a record ends or the bytes
 *		buffered run out.
 */
static CsvResult
scan_record(CsvReader *r, CsvRecord *out)
{
	const char *b;
	size_t		n;
	size_t		p;
	MatchResult m;

	if (r->ended)
		return CSV_END;

	if (!r->in_record)
	{
		/* A UTF-8 byte order mark at the very start of the file. */
		if (r->bom_pending)
		{
			if (r->len - r->pos < 3 && !r->finished)
				return CSV_NEED_MORE;
			r->bom_pending = false;
			if (r->len - r->pos >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0)
			{
				r->pos += 3;
				r->next.offset += 3;
			}
		}
		begin_record(r);
	}

	b = r->buf;
	n = r->len;
	p = r->pos;

	for (;;)
	{
		switch (r->state)
		{
			case ST_FIELD_START:
				if (p >= n)
					goto out_of_bytes;
				r->fraw = p;
				r->fescaped = false;
				if (r->s.rfc4180 && b[p] == '"')
				{
					r->fquoted = true;
					r->quote_offset = r->buf_offset + p;
					r->fstart = ++p;
					r->state = ST_QUOTED;
					break;
				}
				r->fquoted = false;
				r->fstart = p;
				r->state = ST_UNQUOTED;
				/* FALLTHROUGH */
			case ST_UNQUOTED:
			case ST_GARBAGE:
				{
					const bool *stop = r->stop_unquoted;

					while (p < n && !stop[(unsigned char) b[p]])
						p++;
					if (p >= n)
						goto out_of_bytes;
					r->pos = p;
					m = match_delimiter(r, p);
					if (m == MATCH_NONE)
					{
						p++;
						break;
					}
					if (m == MATCH_PARTIAL)
						goto out_of_bytes;
					end_field(r, r->fstart, p);
					if (m == MATCH_DELIMITER)
					{
						p += r->s.delimiter_len;
						r->state = ST_FIELD_START;
						break;
					}
					return complete_record(r, out, p, p + r->match_len);
				}
			case ST_QUOTED:
				{
					const char *q = memchr(b + p, '"', n - p);

					if (q == NULL)
					{
						p = n;
						goto out_of_bytes;
					}
					p = (q - b) + 1;
					r->state = ST_QUOTE_SEEN;
				}
				/* FALLTHROUGH */
			case ST_QUOTE_SEEN:
				if (p >= n)
					goto out_of_bytes;
				if (b[p] == '"')
				{
					r->fescaped = true;
					p++;
					r->state = ST_QUOTED;
					break;
				}
				r->fend = p - 1;
				r->state = ST_AFTER_QUOTE;
				/* FALLTHROUGH */
			case ST_AFTER_QUOTE:
				if (p >= n)
					goto out_of_bytes;
				r->pos = p;
				m = match_delimiter(r, p);
				if (m == MATCH_PARTIAL)
					goto out_of_bytes;
				if (m == MATCH_NONE)
				{
					set_error(r, CSV_ERR_TEXT_AFTER_QUOTE, r->nfields + 1, r->buf_offset + p,
							  "text after the closing quote of a quoted field (write a quote inside a quoted field as \"\")");
					r->state = ST_GARBAGE;
					break;
				}
				end_field(r, r->fstart, r->fend);
				if (m == MATCH_DELIMITER)
				{
					p += r->s.delimiter_len;
					r->state = ST_FIELD_START;
					break;
				}
				return complete_record(r, out, p, p + r->match_len);
		}
	}

out_of_bytes:
	r->pos = p;
	return end_of_input(r, out);
}

/*
 * csv_reader_next
 *		The next record, CSV_NEED_MORE or CSV_END.
 */
CsvResult
csv_reader_next(CsvReader *r, CsvRecord *rec)
{
	for (;;)
	{
		CsvResult	res = scan_record(r, rec);

		if (res != SCAN_SKIPPED)
			return res;
	}
}
