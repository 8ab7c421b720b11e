/*-------------------------------------------------------------------------
 *
 * dms_value.c
 *	  Typing CSV fields per DMS ColumnType and rendering them as DMS JSON
 *	  (rules in dms_value.h).
 *
 * Everything here runs once per field of every row, so nothing allocates
 * except the output StringInfo, nothing throws, and every parser is a
 * single pass over the field's bytes.  Errors are formatted into the
 * caller's result struct only when they happen.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "common/shortest_dec.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "dms_json.h"
#include "dms_value.h"

/* Longest value shown in an error message, in bytes. */
#define SHOW_MAX	48

/* Significant digits kept when parsing a NUMERIC (38 + 31 + 1 needed). */
#define NUMERIC_MAX_DIGITS	80

/* Longest REAL4/REAL8 text accepted. */
#define REAL_MAX_CHARS	1000

typedef struct RenderKey
{
	char	   *text;			/* "name": */
	int			len;
} RenderKey;

struct DmsRowRenderer
{
	const ExternalTableDefinition *def;
	const DmsValueOptions *opts;
	RenderKey **keys;			/* [table][column] */
};

typedef enum DateOrder
{
	DATE_YMD_DASH,				/* YYYY-MM-dd, and the ISO default */
	DATE_YMD_SLASH,				/* YYYY/MM/dd */
	DATE_MDY_SLASH,				/* MM/dd/YYYY */
	DATE_YMD_NOSEP				/* YYYYMMdd */
} DateOrder;

typedef struct DateTimeParts
{
	int			year;
	int			month;
	int			day;
	int			hour;
	int			minute;
	int			second;
	int			nfrac;			/* fractional digits kept in frac */
	char		frac[9];
} DateTimeParts;

static const char *const month_names[] = {
	"January", "February", "March", "April", "May", "June", "July",
	"August", "September", "October", "November", "December"
};

/*
 * JSON string escaping: 0 = copy as is, 1 = escape, 2 = start of a
 * multi-byte UTF-8 sequence (or an invalid byte).
 */
static const unsigned char json_class[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2
};

static bool fail(DmsValueResult *res, DmsValueErrorClass cls, const char *fmt,...)
			pg_attribute_printf(3, 4);
static void row_fail(DmsRowError *err, DmsValueErrorClass cls, int field,
					 const char *column_name, const char *fmt,...)
			pg_attribute_printf(5, 6);

/*
 * out_append
 *		appendBinaryStringInfo without a function call when it fits (most
 *		appends here are a few bytes).
 */
static inline void
out_append(StringInfo out, const char *s, int n)
{
	if (likely(out->len + n < out->maxlen))
	{
		memcpy(out->data + out->len, s, n);
		out->len += n;
		out->data[out->len] = '\0';
	}
	else
		appendBinaryStringInfo(out, s, n);
}

/*
 * fail
 *		Fill res with an error; returns false for the caller to return.
 */
static bool
fail(DmsValueResult *res, DmsValueErrorClass cls, const char *fmt,...)
{
	va_list		args;

	res->error_class = cls;
	va_start(args, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, args);
	va_end(args);
	return false;
}

/*
 * row_fail
 *		Fill a row error.
 */
static void
row_fail(DmsRowError *err, DmsValueErrorClass cls, int field,
		 const char *column_name, const char *fmt,...)
{
	va_list		args;

	err->error_class = cls;
	err->field = field;
	err->column_name = column_name;
	va_start(args, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, args);
	va_end(args);
}

/*
 * show
 *		A value for an error message: at most SHOW_MAX bytes, cut at a
 *		character boundary, control characters and bytes that are not UTF-8
 *		written as \n, \t, \xNN; "..." when cut.
 */
static const char *
show(char *buf, size_t size, const char *s, size_t len)
{
	size_t		o = 0;
	size_t		i = 0;

	while (i < len && o + 8 < size)
	{
		unsigned char c = (unsigned char) s[i];

		if (i >= SHOW_MAX)
			break;
		if (c >= 0x80)
		{
			int			l = pg_utf_mblen((const unsigned char *) s + i);

			if (l <= (int) (len - i) && pg_utf8_islegal((const unsigned char *) s + i, l))
			{
				if (o + l + 4 >= size)
					break;
				memcpy(buf + o, s + i, l);
				o += l;
				i += l;
				continue;
			}
			o += snprintf(buf + o, size - o, "\\x%02X", c);
		}
		else if (c == '\n')
		{
			buf[o++] = '\\';
			buf[o++] = 'n';
		}
		else if (c == '\r')
		{
			buf[o++] = '\\';
			buf[o++] = 'r';
		}
		else if (c == '\t')
		{
			buf[o++] = '\\';
			buf[o++] = 't';
		}
		else if (c < 0x20)
			o += snprintf(buf + o, size - o, "\\x%02X", c);
		else
			buf[o++] = c;
		i++;
	}
	if (i < len && o + 4 <= size)
	{
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/*
 * append_json_string
 *		Append s as a JSON string.  With check, bytes that are not valid
 *		UTF-8 (or NUL) stop it: out is restored and false returned with the
 *		offset of the bad byte in *bad.
 */
static bool
append_json_string(StringInfo out, const char *s, size_t len, bool check, size_t *bad)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;
	const unsigned char *run = p;
	int			start_len = out->len;

	if (out->len + len + 2 >= (size_t) out->maxlen)
		enlargeStringInfo(out, (int) Min(len + 2, (size_t) (MaxAllocSize / 2)));
	appendStringInfoCharMacro(out, '"');
	while (p < end)
	{
		unsigned char c = *p;
		unsigned char cls = json_class[c];

		if (likely(cls == 0))
		{
			p++;
			continue;
		}
		if (cls == 2)
		{
			if (check)
			{
				int			l = pg_utf_mblen(p);

				if (l > end - p || !pg_utf8_islegal(p, l))
				{
					*bad = (const char *) p - s;
					out->len = start_len;
					out->data[start_len] = '\0';
					return false;
				}
				p += l;
			}
			else
				p++;
			continue;
		}
		/* a character to escape */
		if (check && c == 0)
		{
			*bad = (const char *) p - s;
			out->len = start_len;
			out->data[start_len] = '\0';
			return false;
		}
		if (p > run)
			out_append(out, (const char *) run, p - run);
		switch (c)
		{
			case '"':
				out_append(out, "\\\"", 2);
				break;
			case '\\':
				out_append(out, "\\\\", 2);
				break;
			case '\n':
				out_append(out, "\\n", 2);
				break;
			case '\r':
				out_append(out, "\\r", 2);
				break;
			case '\t':
				out_append(out, "\\t", 2);
				break;
			case '\b':
				out_append(out, "\\b", 2);
				break;
			case '\f':
				out_append(out, "\\f", 2);
				break;
			default:
				appendStringInfo(out, "\\u%04x", c);
				break;
		}
		p++;
		run = p;
	}
	if (p > run)
		out_append(out, (const char *) run, p - run);
	appendStringInfoCharMacro(out, '"');
	return true;
}

/*
 * dms_value_json_string
 *		Append s (valid UTF-8) as a JSON string.
 */
void
dms_value_json_string(StringInfo out, const char *s, size_t len)
{
	size_t		bad;

	(void) append_json_string(out, s, len, false, &bad);
}

/*
 * utf8_cut
 *		Largest length <= limit that does not split a UTF-8 character of s.
 */
static size_t
utf8_cut(const char *s, size_t len, size_t limit)
{
	size_t		n = Min(len, limit);

	/* step back over continuation bytes */
	while (n > 0 && n < len && (((unsigned char) s[n]) & 0xC0) == 0x80)
		n--;
	return n;
}

/*
 * is_blank
 *		Blanks trimmed from non-string values.
 */
static inline bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * append_uint64
 *		Decimal digits of v.
 */
static void
append_uint64(StringInfo out, uint64 v)
{
	char		buf[24];
	int			i = sizeof(buf);

	do
	{
		buf[--i] = '0' + (char) (v % 10);
		v /= 10;
	} while (v != 0);
	out_append(out, buf + i, sizeof(buf) - i);
}

/*
 * render_integer
 *		INT1..INT8, UINT1..UINT8.
 */
static bool
render_integer(const ExternalColumn *col, const char *s, size_t len,
			   StringInfo out, DmsValueResult *res)
{
	const char *p = s;
	const char *end = s + len;
	bool		neg = false;
	uint64		v = 0;
	uint64		max_pos;
	uint64		max_neg;
	char		sbuf[SHOW_MAX * 4 + 8];
	const char *tname = dms_column_type_name(col->type);

	switch (col->type)
	{
		case DMS_TYPE_INT1:
			max_pos = PG_INT8_MAX;
			max_neg = (uint64) PG_INT8_MAX + 1;
			break;
		case DMS_TYPE_INT2:
			max_pos = PG_INT16_MAX;
			max_neg = (uint64) PG_INT16_MAX + 1;
			break;
		case DMS_TYPE_INT4:
			max_pos = PG_INT32_MAX;
			max_neg = (uint64) PG_INT32_MAX + 1;
			break;
		case DMS_TYPE_INT8:
			max_pos = PG_INT64_MAX;
			max_neg = (uint64) PG_INT64_MAX + 1;
			break;
		case DMS_TYPE_UINT1:
			max_pos = PG_UINT8_MAX;
			max_neg = 0;
			break;
		case DMS_TYPE_UINT2:
			max_pos = PG_UINT16_MAX;
			max_neg = 0;
			break;
		case DMS_TYPE_UINT4:
			max_pos = PG_UINT32_MAX;
			max_neg = 0;
			break;
		default:
			max_pos = PG_UINT64_MAX;
			max_neg = 0;
			break;
	}
	if (*p == '+' || *p == '-')
		neg = (*p++ == '-');
	if (p == end)
		return fail(res, DMS_VALUE_DATA_ERROR, "invalid %s value \"%s\": not an integer",
					tname, show(sbuf, sizeof(sbuf), s, len));
	for (; p < end; p++)
	{
		unsigned	d = (unsigned char) *p - '0';

		if (d > 9)
			return fail(res, DMS_VALUE_DATA_ERROR, "invalid %s value \"%s\": not an integer",
						tname, show(sbuf, sizeof(sbuf), s, len));
		if (v > (PG_UINT64_MAX - d) / 10)
			goto out_of_range;
		v = v * 10 + d;
	}

	if (neg ? v > max_neg : v > max_pos)
		goto out_of_range;

	if (neg && v != 0)
		appendStringInfoCharMacro(out, '-');
	append_uint64(out, v);
	return true;

out_of_range:
	if (max_neg == 0 && (col->type >= DMS_TYPE_UINT1 && col->type <= DMS_TYPE_UINT8))
		return fail(res, DMS_VALUE_DATA_ERROR, "%s value \"%s\" is out of range (0 to " UINT64_FORMAT ")",
					tname, show(sbuf, sizeof(sbuf), s, len),
					col->type == DMS_TYPE_UINT1 ? (uint64) PG_UINT8_MAX :
					col->type == DMS_TYPE_UINT2 ? (uint64) PG_UINT16_MAX :
					col->type == DMS_TYPE_UINT4 ? (uint64) PG_UINT32_MAX : PG_UINT64_MAX);
	return fail(res, DMS_VALUE_DATA_ERROR, "%s value \"%s\" is out of range (" INT64_FORMAT " to " INT64_FORMAT ")",
				tname, show(sbuf, sizeof(sbuf), s, len),
				col->type == DMS_TYPE_INT1 ? (int64) PG_INT8_MIN :
				col->type == DMS_TYPE_INT2 ? (int64) PG_INT16_MIN :
				col->type == DMS_TYPE_INT4 ? (int64) PG_INT32_MIN : PG_INT64_MIN,
				col->type == DMS_TYPE_INT1 ? (int64) PG_INT8_MAX :
				col->type == DMS_TYPE_INT2 ? (int64) PG_INT16_MAX :
				col->type == DMS_TYPE_INT4 ? (int64) PG_INT32_MAX : PG_INT64_MAX);
}

/*
 * is_nonfinite
 *		NaN, Inf, Infinity with an optional sign, any case.
 */
static bool
is_nonfinite(const char *s, size_t len)
{
	if (len > 0 && (*s == '+' || *s == '-'))
	{
		s++;
		len--;
	}
	return (len == 3 && (pg_strncasecmp(s, "nan", 3) == 0 || pg_strncasecmp(s, "inf", 3) == 0)) ||
		(len == 8 && pg_strncasecmp(s, "infinity", 8) == 0);
}

/*
 * render_numeric
 *		NUMERIC(p,s): exact decimal, rounded half away from zero to s digits.
 */
static bool
render_numeric(const ExternalColumn *col, const char *s, size_t len,
			   StringInfo out, DmsValueResult *res)
{
	const char *p = s;
	const char *end = s + len;
	bool		neg = false;
	char		digits[NUMERIC_MAX_DIGITS];
	int			ndig = 0;		/* significant digits kept */
	int			dp = 0;			/* value = 0.digits x 10^dp */
	bool		any_digit = false;
	int			scale = col->scale;
	int			max_int = col->precision - col->scale;
	char		result[NUMERIC_MAX_DIGITS + 2];
	int			nint;
	int			total;
	int			k;
	int			round_idx;
	bool		carry;
	bool		zero;
	char		sbuf[SHOW_MAX * 4 + 8];

	if (*p == '+' || *p == '-')
		neg = (*p++ == '-');
	for (; p < end && *p >= '0' && *p <= '9'; p++)
	{
		any_digit = true;
		if (ndig == 0 && *p == '0')
			continue;
		if (ndig < NUMERIC_MAX_DIGITS)
			digits[ndig++] = *p;
		if (dp < 1000000)
			dp++;
	}
	if (p < end && *p == '.')
	{
		for (p++; p < end && *p >= '0' && *p <= '9'; p++)
		{
			any_digit = true;
			if (ndig == 0 && *p == '0')
			{
				if (dp > -1000000)
					dp--;
				continue;
			}
			if (ndig < NUMERIC_MAX_DIGITS)
				digits[ndig++] = *p;
		}
	}
	if (!any_digit)
		goto syntax;
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		bool		eneg = false;
		int			e = 0;

		p++;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = (*p++ == '-');
		if (p == end || *p < '0' || *p > '9')
			goto syntax;
		for (; p < end && *p >= '0' && *p <= '9'; p++)
			if (e < 1000000)
				e = e * 10 + (*p - '0');
		dp += eneg ? -e : e;
	}
	if (p != end)
		goto syntax;

	if (ndig == 0)
		dp = 0;
	nint = Max(dp, 0);
	if (ndig > 0 && nint > max_int)
		goto overflow;

	/* Digits of the result: nint integer digits, then scale fractional. */
	total = nint + scale;
	for (k = 0; k < total; k++)
	{
		int			idx = k + Min(dp, 0);

		result[k + 1] = (idx >= 0 && idx < ndig) ? digits[idx] : '0';
	}
	round_idx = total + Min(dp, 0);
	carry = (round_idx >= 0 && round_idx < ndig && digits[round_idx] >= '5');
	for (k = total; carry && k > 0; k--)
	{
		if (result[k] == '9')
			result[k] = '0';
		else
		{
			result[k]++;
			carry = false;
		}
	}
	result[0] = '1';
	if (carry)
	{
		/* 9.99 rounded up to 10.0: one more integer digit */
		nint++;
		if (nint > max_int)
			goto overflow;
	}

	zero = !carry;
	for (k = 1; zero && k <= total; k++)
		if (result[k] != '0')
			zero = false;

	if (neg && !zero)
		appendStringInfoCharMacro(out, '-');
	if (carry)
		out_append(out, result, nint);
	else if (nint > 0)
		out_append(out, result + 1, nint);
	else
		appendStringInfoCharMacro(out, '0');
	if (scale > 0)
	{
		appendStringInfoCharMacro(out, '.');
		out_append(out, result + 1 + (carry ? nint - 1 : nint), scale);
	}
	return true;

syntax:
	if (is_nonfinite(s, len))
		return fail(res, DMS_VALUE_DATA_ERROR, "NUMERIC value \"%s\" is not a finite number",
					show(sbuf, sizeof(sbuf), s, len));
	return fail(res, DMS_VALUE_DATA_ERROR, "invalid NUMERIC value \"%s\": not a number",
				show(sbuf, sizeof(sbuf), s, len));
overflow:
	return fail(res, DMS_VALUE_DATA_ERROR,
				"NUMERIC(%d,%d) value \"%s\" is out of range: at most %d digit%s before the point",
				col->precision, col->scale, show(sbuf, sizeof(sbuf), s, len),
				max_int, max_int == 1 ? "" : "s");
}

/*
 * is_decimal_syntax
 *		[sign] digits [. digits] [e [sign] digits], at least one digit.
 */
static bool
is_decimal_syntax(const char *p, const char *end)
{
	bool		any = false;

	if (p < end && (*p == '+' || *p == '-'))
		p++;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		any = true;
	if (p < end && *p == '.')
		for (p++; p < end && *p >= '0' && *p <= '9'; p++)
			any = true;
	if (!any)
		return false;
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return p == end;
}

/*
 * render_real
 *		REAL4/REAL8: shortest round-trip text of the float.
 */
static bool
render_real(const ExternalColumn *col, const char *s, size_t len,
			StringInfo out, DmsValueResult *res)
{
	char		text[REAL_MAX_CHARS + 1];
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN + 1];
	char		sbuf[SHOW_MAX * 4 + 8];
	const char *tname = dms_column_type_name(col->type);
	int			n;

	if (is_nonfinite(s, len))
		return fail(res, DMS_VALUE_DATA_ERROR,
					"%s value \"%s\" is not a finite number (JSON has no NaN or Infinity)",
					tname, show(sbuf, sizeof(sbuf), s, len));
	if (len > REAL_MAX_CHARS || !is_decimal_syntax(s, s + len))
		return fail(res, DMS_VALUE_DATA_ERROR, "invalid %s value \"%s\": not a number",
					tname, show(sbuf, sizeof(sbuf), s, len));
	memcpy(text, s, len);
	text[len] = '\0';
	errno = 0;
	if (col->type == DMS_TYPE_REAL4)
	{
		float		f = strtof(text, NULL);

		if (isinf(f))
			return fail(res, DMS_VALUE_DATA_ERROR, "REAL4 value \"%s\" is out of range",
						show(sbuf, sizeof(sbuf), s, len));
		n = float_to_shortest_decimal_buf(f, buf);
	}
	else
	{
		double		d = strtod(text, NULL);

		if (isinf(d))
			return fail(res, DMS_VALUE_DATA_ERROR, "REAL8 value \"%s\" is out of range",
						show(sbuf, sizeof(sbuf), s, len));
		n = double_to_shortest_decimal_buf(d, buf);
	}
	out_append(out, buf, n);
	return true;
}

/*
 * render_boolean
 *		true/false, t/f, 1/0, yes/no, y/n.
 */
static bool
render_boolean(const char *s, size_t len, StringInfo out, DmsValueResult *res)
{
	char		sbuf[SHOW_MAX * 4 + 8];
	int			v = -1;

	switch (len)
	{
		case 1:
			if (*s == '1' || *s == 't' || *s == 'T' || *s == 'y' || *s == 'Y')
				v = 1;
			else if (*s == '0' || *s == 'f' || *s == 'F' || *s == 'n' || *s == 'N')
				v = 0;
			break;
		case 2:
			if (pg_strncasecmp(s, "no", 2) == 0)
				v = 0;
			break;
		case 3:
			if (pg_strncasecmp(s, "yes", 3) == 0)
				v = 1;
			break;
		case 4:
			if (pg_strncasecmp(s, "true", 4) == 0)
				v = 1;
			break;
		case 5:
			if (pg_strncasecmp(s, "false", 5) == 0)
				v = 0;
			break;
	}
	if (v < 0)
		return fail(res, DMS_VALUE_DATA_ERROR,
					"invalid BOOLEAN value \"%s\" (expected true/false, t/f, 1/0, yes/no or y/n)",
					show(sbuf, sizeof(sbuf), s, len));
	if (v)
		out_append(out, "true", 4);
	else
		out_append(out, "false", 5);
	return true;
}

/*
 * render_string
 *		STRING/CLOB as a JSON string, checking UTF-8 and the length limit.
 */
static bool
render_string(const ExternalColumn *col, const char *s, size_t len,
			  const DmsValueOptions *opts, StringInfo out, DmsValueResult *res)
{
	int64		limit = col->length;
	size_t		bad;
	size_t		use = len;
	const char *limit_name = "ColumnLength";

	if (col->type == DMS_TYPE_CLOB && opts->lob_max_bytes > 0 &&
		(limit <= 0 || opts->lob_max_bytes < limit))
	{
		limit = opts->lob_max_bytes;
		limit_name = "the LOB size limit";
	}
	if (limit > 0 && len > (size_t) limit)
		use = utf8_cut(s, len, (size_t) limit);

	if (!append_json_string(out, s, use, true, &bad))
	{
		if (s[bad] == '\0')
			return fail(res, DMS_VALUE_DATA_ERROR, "%s value has a NUL byte at byte %zu",
						dms_column_type_name(col->type), bad + 1);
		return fail(res, DMS_VALUE_DATA_ERROR, "%s value is not valid UTF-8: byte 0x%02X at byte %zu",
					dms_column_type_name(col->type), (unsigned char) s[bad], bad + 1);
	}
	res->is_empty = (len == 0);
	if (use < len)
		return fail(res, DMS_VALUE_TRUNCATED,
					"%s value of %zu bytes is longer than %s " INT64_FORMAT "; truncated to %zu bytes",
					dms_column_type_name(col->type), len, limit_name, limit, use);
	return true;
}

/*
 * hex_value
 *		Value of a hex digit, -1 if it is not one.
 */
static inline int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * render_bytes
 *		BYTE/BLOB: validate hex digits and render "0x" + upper-case hex.
 */
static bool
render_bytes(const ExternalColumn *col, const char *s, size_t len,
			 const DmsValueOptions *opts, StringInfo out, DmsValueResult *res)
{
	static const char hex[] = "0123456789ABCDEF";
	char		sbuf[SHOW_MAX * 4 + 8];
	const char *p;
	size_t		ndigits;
	size_t		nbytes;
	size_t		use;
	int64		limit = col->length;
	const char *limit_name = "ColumnLength";
	size_t		i;
	char	   *dst;

	while (len > 0 && is_blank(*s))
	{
		s++;
		len--;
	}
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	p = s;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		p += 2;
	ndigits = len - (p - s);
	for (i = 0; i < ndigits; i++)
		if (hex_value(p[i]) < 0)
			return fail(res, DMS_VALUE_DATA_ERROR,
						"invalid %s value \"%s\": \"%c\" at character %zu is not a hex digit",
						dms_column_type_name(col->type), show(sbuf, sizeof(sbuf), s, len),
						p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?', (size_t) (p - s) + i + 1);
	if (ndigits % 2 != 0)
		return fail(res, DMS_VALUE_DATA_ERROR,
					"invalid %s value \"%s\": odd number of hex digits",
					dms_column_type_name(col->type), show(sbuf, sizeof(sbuf), s, len));
	nbytes = ndigits / 2;
	if (col->type == DMS_TYPE_BLOB && opts->lob_max_bytes > 0 &&
		(limit <= 0 || opts->lob_max_bytes < limit))
	{
		limit = opts->lob_max_bytes;
		limit_name = "the LOB size limit";
	}
	use = (limit > 0 && nbytes > (size_t) limit) ? (size_t) limit : nbytes;

	enlargeStringInfo(out, (int) (use * 2 + 4));
	dst = out->data + out->len;
	*dst++ = '"';
	if (!opts->no_hex_prefix)
	{
		*dst++ = '0';
		*dst++ = 'x';
	}
	for (i = 0; i < use * 2; i++)
		*dst++ = hex[hex_value(p[i])];
	*dst++ = '"';
	*dst = '\0';
	out->len = dst - out->data;

	res->is_empty = (nbytes == 0);
	if (use < nbytes)
		return fail(res, DMS_VALUE_TRUNCATED,
					"%s value of %zu bytes is longer than %s " INT64_FORMAT "; truncated",
					dms_column_type_name(col->type), nbytes, limit_name, limit);
	return true;
}

/*
 * read_digits
 *		Read min..max digits at *p into *val.
 */
static bool
read_digits(const char **p, const char *end, int min, int max, int *val)
{
	int			n = 0;
	int			v = 0;

	while (*p < end && n < max && **p >= '0' && **p <= '9')
	{
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	*val = v;
	return n >= min;
}

/*
 * expect_char
 *		Consume c at *p.
 */
static inline bool
expect_char(const char **p, const char *end, char c)
{
	if (*p < end && **p == c)
	{
		(*p)++;
		return true;
	}
	return false;
}

/*
 * read_date
 *		The date part in the given order.
 */
static bool
read_date(const char **p, const char *end, DateOrder order, DateTimeParts *dt)
{
	switch (order)
	{
		case DATE_YMD_DASH:
		case DATE_YMD_SLASH:
			{
				char		sep = (order == DATE_YMD_DASH) ? '-' : '/';

				return read_digits(p, end, 4, 4, &dt->year) && expect_char(p, end, sep) &&
					read_digits(p, end, 1, 2, &dt->month) && expect_char(p, end, sep) &&
					read_digits(p, end, 1, 2, &dt->day);
			}
		case DATE_MDY_SLASH:
			return read_digits(p, end, 1, 2, &dt->month) && expect_char(p, end, '/') &&
				read_digits(p, end, 1, 2, &dt->day) && expect_char(p, end, '/') &&
				read_digits(p, end, 4, 4, &dt->year);
		case DATE_YMD_NOSEP:
			return read_digits(p, end, 4, 4, &dt->year) &&
				read_digits(p, end, 2, 2, &dt->month) &&
				read_digits(p, end, 2, 2, &dt->day);
	}
	return false;
}

/*
 * read_time
 *		HH:MM:SS with an optional fraction when allowed.  *fraction_refused
 *		tells a fraction that the format does not allow.
 */
static bool
read_time(const char **p, const char *end, bool fraction_allowed,
		  DateTimeParts *dt, bool *fraction_refused)
{
	if (!(read_digits(p, end, 1, 2, &dt->hour) && expect_char(p, end, ':') &&
		  read_digits(p, end, 1, 2, &dt->minute) && expect_char(p, end, ':') &&
		  read_digits(p, end, 1, 2, &dt->second)))
		return false;
	dt->nfrac = 0;
	if (*p < end && **p == '.')
	{
		const char *start;

		if (!fraction_allowed)
		{
			*fraction_refused = true;
			return false;
		}
		(*p)++;
		start = *p;
		while (*p < end && **p >= '0' && **p <= '9')
		{
			if (dt->nfrac < 9)
				dt->frac[dt->nfrac++] = **p;
			(*p)++;
		}
		if (*p == start)
			return false;
	}
	return true;
}

/*
 * days_in_month
 *		Days of month (1-12) in year, Gregorian.
 */
static int
days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return 29;
	return days[month - 1];
}

/*
 * append_2
 *		Two digits.
 */
static inline void
append_2(char *dst, int v)
{
	dst[0] = '0' + v / 10;
	dst[1] = '0' + v % 10;
}

/*
 * render_datetime
 *		DATE, TIME and DATETIME.
 */
static bool
render_datetime(const ExternalColumn *col, const char *s, size_t len,
				StringInfo out, DmsValueResult *res)
{
	const char *p = s;
	const char *end = s + len;
	const char *fmt = col->date_format;
	DateOrder	order = DATE_YMD_DASH;
	bool		fraction_allowed = true;
	bool		fraction_refused = false;
	bool		has_date = false;
	bool		has_time = false;
	DateTimeParts dt;
	char		sbuf[SHOW_MAX * 4 + 8];
	char		buf[48];
	char	   *o = buf;
	int			scale;
	int			i;
	const char *tname = dms_column_type_name(col->type);

	memset(&dt, 0, sizeof(dt));
	if (fmt)
	{
		if (fmt[0] == 'M')
			order = DATE_MDY_SLASH;
		else if (fmt[4] == '-')
			order = DATE_YMD_DASH;
		else if (fmt[4] == '/')
			order = DATE_YMD_SLASH;
		else
			order = DATE_YMD_NOSEP;
		fraction_allowed = (strchr(fmt, '.') != NULL);
	}

	/* A TIME may come alone: digits then ':' within the first 3 bytes. */
	if (col->type == DMS_TYPE_TIME && len >= 3 && (s[1] == ':' || s[2] == ':'))
	{
		if (!read_time(&p, end, fraction_allowed, &dt, &fraction_refused))
			goto mismatch;
		has_time = true;
	}
	else
	{
		if (!read_date(&p, end, order, &dt))
			goto mismatch;
		has_date = true;
		if (p < end && (*p == ' ' || *p == 'T'))
		{
			p++;
			if (!read_time(&p, end, fraction_allowed, &dt, &fraction_refused))
				goto mismatch;
			has_time = true;
		}
	}
	if (fmt == NULL && has_time && p < end && *p == 'Z')
		p++;
	if (p != end)
		goto mismatch;
	if (col->type == DMS_TYPE_TIME && !has_time)
		goto mismatch;

	/* Ranges. */
	if (has_date)
	{
		if (dt.year < 1)
			return fail(res, DMS_VALUE_DATA_ERROR, "invalid %s value \"%s\": year 0000 does not exist",
						tname, show(sbuf, sizeof(sbuf), s, len));
		if (dt.month < 1 || dt.month > 12)
			return fail(res, DMS_VALUE_DATA_ERROR, "invalid %s value \"%s\": month %d does not exist",
						tname, show(sbuf, sizeof(sbuf), s, len), dt.month);
		if (dt.day < 1 || dt.day > days_in_month(dt.year, dt.month))
			return fail(res, DMS_VALUE_DATA_ERROR, "invalid %s value \"%s\": %s %04d has %d days",
						tname, show(sbuf, sizeof(sbuf), s, len), month_names[dt.month - 1],
						dt.year, days_in_month(dt.year, dt.month));
	}
	if (has_time && (dt.hour > 23 || dt.minute > 59 || dt.second > 59))
		return fail(res, DMS_VALUE_DATA_ERROR,
					"invalid %s value \"%s\": time out of range (00:00:00 to 23:59:59)",
					tname, show(sbuf, sizeof(sbuf), s, len));

	*o++ = '"';
	if (col->type != DMS_TYPE_TIME)
	{
		append_2(o, dt.year / 100);
		append_2(o + 2, dt.year % 100);
		o[4] = '-';
		append_2(o + 5, dt.month);
		o[7] = '-';
		append_2(o + 8, dt.day);
		o += 10;
	}
	if (col->type != DMS_TYPE_DATE)
	{
		if (col->type == DMS_TYPE_DATETIME)
			*o++ = 'T';
		append_2(o, dt.hour);
		o[2] = ':';
		append_2(o + 3, dt.minute);
		o[5] = ':';
		append_2(o + 6, dt.second);
		o += 8;
		/* TIME has no ColumnScale: microseconds when a fraction is given */
		if (col->type == DMS_TYPE_TIME)
			scale = (dt.nfrac > 0) ? 6 : 0;
		else
			scale = Min(col->scale, 9);
		if (scale > 0)
		{
			*o++ = '.';
			for (i = 0; i < scale; i++)
				*o++ = (i < dt.nfrac) ? dt.frac[i] : '0';
		}
		if (col->type == DMS_TYPE_DATETIME)
			*o++ = 'Z';
	}
	*o++ = '"';
	out_append(out, buf, o - buf);
	return true;

mismatch:
	if (fraction_refused)
		return fail(res, DMS_VALUE_DATA_ERROR,
					"invalid %s value \"%s\": ColumnDateFormat \"%s\" has no fractional seconds (use \"%s.F\")",
					tname, show(sbuf, sizeof(sbuf), s, len), fmt, fmt);
	if (fmt)
		return fail(res, DMS_VALUE_DATA_ERROR,
					"invalid %s value \"%s\": does not match ColumnDateFormat \"%s\"",
					tname, show(sbuf, sizeof(sbuf), s, len), fmt);
	return fail(res, DMS_VALUE_DATA_ERROR,
				"invalid %s value \"%s\": expected %s",
				tname, show(sbuf, sizeof(sbuf), s, len),
				col->type == DMS_TYPE_DATE ? "YYYY-MM-DD" :
				col->type == DMS_TYPE_TIME ? "HH:MM:SS[.fraction]" :
				"YYYY-MM-DD[ HH:MM:SS[.fraction]]");
}

/*
 * dms_value_render
 *		Type one field and append its JSON.
 */
bool
dms_value_render(const ExternalColumn *col, const char *field, size_t len,
				 bool quoted, const DmsValueOptions *opts, StringInfo out,
				 DmsValueResult *res)
{
	const char *s = field;

	res->is_null = false;
	res->is_empty = false;
	res->error_class = DMS_VALUE_OK;

	if (!quoted && opts->null_value != NULL && len == opts->null_value_len &&
		memcmp(field, opts->null_value, len) == 0)
		goto null_value;

	/*
	 * An unquoted empty field: NULL, unless CsvNullValue is set, which is
	 * how DMS tells NULL from an empty string; then it is an empty string
	 * (or zero bytes), and NULL only for the other types.
	 */
	if (!quoted && len == 0 && opts->null_value == NULL)
		goto null_value;

	switch (col->type)
	{
		case DMS_TYPE_STRING:
		case DMS_TYPE_CLOB:
			return render_string(col, field, len, opts, out, res);
		case DMS_TYPE_BYTE:
		case DMS_TYPE_BLOB:
			return render_bytes(col, field, len, opts, out, res);
		default:
			break;
	}

	/* Other types: blanks around the value do not count. */
	while (len > 0 && is_blank(*s))
	{
		s++;
		len--;
	}
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	if (len == 0)
		goto null_value;

	switch (col->type)
	{
		case DMS_TYPE_INT1:
		case DMS_TYPE_INT2:
		case DMS_TYPE_INT4:
		case DMS_TYPE_INT8:
		case DMS_TYPE_UINT1:
		case DMS_TYPE_UINT2:
		case DMS_TYPE_UINT4:
		case DMS_TYPE_UINT8:
			return render_integer(col, s, len, out, res);
		case DMS_TYPE_NUMERIC:
			return render_numeric(col, s, len, out, res);
		case DMS_TYPE_REAL4:
		case DMS_TYPE_REAL8:
			return render_real(col, s, len, out, res);
		case DMS_TYPE_BOOLEAN:
			return render_boolean(s, len, out, res);
		case DMS_TYPE_DATE:
		case DMS_TYPE_TIME:
		case DMS_TYPE_DATETIME:
			return render_datetime(col, s, len, out, res);
		default:
			return fail(res, DMS_VALUE_DATA_ERROR, "unsupported column type %s",
						dms_column_type_name(col->type));
	}

null_value:
	res->is_null = true;
	if (!col->nullable)
		return fail(res, DMS_VALUE_DATA_ERROR,
					"NULL in a column that is not nullable (ColumnNullable false, the default when absent): "
					"add \"ColumnNullable\": \"true\" to the column in the external table definition%s",
					(col->type == DMS_TYPE_STRING || col->type == DMS_TYPE_CLOB ||
					 col->type == DMS_TYPE_BYTE || col->type == DMS_TYPE_BLOB) && opts->null_value == NULL
					? ", or set CsvNullValue so that an empty field is an empty string" : "");
	out_append(out, "null", 4);
	return true;
}

/*
 * dms_value_options_init
 *		Defaults.
 */
void
dms_value_options_init(DmsValueOptions *opts)
{
	memset(opts, 0, sizeof(DmsValueOptions));
}

/*
 * dms_value_options_from_settings
 *		CsvNullValue from S3Settings; NoHexPrefix and IncludeNullAndEmpty
 *		from KinesisSettings.
 */
void
dms_value_options_from_settings(DmsValueOptions *opts,
								const struct json_t *s3_settings,
								const struct json_t *kinesis_settings)
{
	const json_t *s3 = (const json_t *) s3_settings;
	const json_t *kin = (const json_t *) kinesis_settings;
	bool		b;

	dms_value_options_init(opts);
	if (s3 && json_is_object(s3))
	{
		json_t	   *v = json_object_get(s3, "CsvNullValue");

		if (v && json_is_string(v))
		{
			opts->null_value = json_string_value(v);
			opts->null_value_len = json_string_length(v);
		}
	}
	if (kin && json_is_object(kin))
	{
		DmsJsonDoc	doc = {"KinesisSettings"};

		if (dms_json_get_bool(&doc, kin, "", "NoHexPrefix", false, false, &b))
			opts->no_hex_prefix = b;
		if (dms_json_get_bool(&doc, kin, "", "IncludeNullAndEmpty", false, false, &b))
			opts->include_null_and_empty = b;
	}
}

/*
 * dms_row_operation_name
 *		DMS metadata name of an operation.
 */
const char *
dms_row_operation_name(DmsRowOperation op)
{
	switch (op)
	{
		case DMS_ROW_LOAD:
			return "load";
		case DMS_ROW_INSERT:
			return "insert";
		case DMS_ROW_UPDATE:
			return "update";
		case DMS_ROW_DELETE:
			return "delete";
	}
	return "?";
}

/*
 * dms_row_operation_parse
 *		I/INSERT, U/UPDATE, D/DELETE in any case.
 */
bool
dms_row_operation_parse(const char *s, size_t len, DmsRowOperation *op)
{
	char		c;

	if (len != 1 && len != 6)
		return false;
	c = s[0] & ~0x20;			/* upper case of a letter */
	if (c == 'I' && (len == 1 || pg_strncasecmp(s, "insert", 6) == 0))
		*op = DMS_ROW_INSERT;
	else if (c == 'U' && (len == 1 || pg_strncasecmp(s, "update", 6) == 0))
		*op = DMS_ROW_UPDATE;
	else if (c == 'D' && (len == 1 || pg_strncasecmp(s, "delete", 6) == 0))
		*op = DMS_ROW_DELETE;
	else
		return false;
	return true;
}

/*
 * dms_row_renderer_create
 *		Prepare the JSON keys of every column of every table.
 */
DmsRowRenderer *
dms_row_renderer_create(const ExternalTableDefinition *def, const DmsValueOptions *opts)
{
	DmsRowRenderer *rr = palloc0(sizeof(DmsRowRenderer));
	int			t;
	int			c;

	rr->def = def;
	rr->opts = opts;
	rr->keys = palloc0(sizeof(RenderKey *) * Max(def->ntables, 1));
	for (t = 0; t < def->ntables; t++)
	{
		const ExternalTable *table = &def->tables[t];

		rr->keys[t] = palloc0(sizeof(RenderKey) * Max(table->ncolumns, 1));
		for (c = 0; c < table->ncolumns; c++)
		{
			StringInfoData key;

			initStringInfo(&key);
			dms_value_json_string(&key, table->columns[c].name,
								   strlen(table->columns[c].name));
			appendStringInfoChar(&key, ':');
			rr->keys[t][c].text = key.data;
			rr->keys[t][c].len = key.len;
		}
	}
	return rr;
}

/*
 * dms_row_find_table
 *		Table owner.name, compared exactly.
 */
int
dms_row_find_table(const ExternalTableDefinition *def,
				   const char *owner, size_t owner_len,
				   const char *name, size_t name_len)
{
	int			t;

	for (t = 0; t < def->ntables; t++)
	{
		const ExternalTable *table = &def->tables[t];

		if (strlen(table->name) == name_len && memcmp(table->name, name, name_len) == 0 &&
			strlen(table->owner) == owner_len && memcmp(table->owner, owner, owner_len) == 0)
			return t;
	}
	return -1;
}

/*
 * dms_row_route
 *		Find the operation, table and columns of a record.
 */
bool
dms_row_route(const DmsRowRenderer *rr, int load_table,
			  const CsvField *fields, int nfields,
			  DmsRow *row, DmsRowError *err)
{
	const ExternalTableDefinition *def = rr->def;
	const ExternalTable *table;
	char		sbuf[SHOW_MAX * 4 + 8];
	char		sbuf2[SHOW_MAX * 4 + 8];
	int			idx;

	row->operation = DMS_ROW_LOAD;
	row->table_index = -1;
	row->table = NULL;
	row->columns = NULL;
	row->first_field = 1;
	err->error_class = DMS_VALUE_OK;
	err->field = 0;
	err->column_name = NULL;
	err->message[0] = '\0';

	if (load_table >= 0)
	{
		DmsRowOperation op;

		table = &def->tables[load_table];
		row->table_index = load_table;
		row->table = table;
		if (nfields == table->ncolumns + 1 &&
			dms_row_operation_parse(fields[0].data, fields[0].len, &op) &&
			op == DMS_ROW_INSERT)
		{
			row->columns = fields + 1;
			row->first_field = 2;
			return true;
		}
		if (nfields != table->ncolumns)
		{
			row_fail(err, DMS_VALUE_DATA_ERROR, 0, NULL,
					 "expected %d field%s (the columns of %s.%s), found %d",
					 table->ncolumns, table->ncolumns == 1 ? "" : "s",
					 table->owner, table->name, nfields);
			return false;
		}
		row->columns = fields;
		return true;
	}

	if (nfields < 3)
	{
		row_fail(err, DMS_VALUE_DATA_ERROR, 0, NULL,
				 "a CDC record starts with the operation, the table name and the schema name; found %d field%s",
				 nfields, nfields == 1 ? "" : "s");
		return false;
	}
	if (!dms_row_operation_parse(fields[0].data, fields[0].len, &row->operation))
	{
		row_fail(err, DMS_VALUE_DATA_ERROR, 1, NULL,
				 "unknown operation \"%s\" (expected INSERT, UPDATE, DELETE or I, U, D)",
				 show(sbuf, sizeof(sbuf), fields[0].data, fields[0].len));
		return false;
	}
	idx = dms_row_find_table(def, fields[2].data, fields[2].len, fields[1].data, fields[1].len);
	if (idx < 0)
	{
		row_fail(err, DMS_VALUE_DATA_ERROR, 2, NULL,
				 "table \"%s\".\"%s\" is not in the external table definition (fields 2 and 3 are the table name, then the schema name)",
				 show(sbuf, sizeof(sbuf), fields[2].data, fields[2].len),
				 show(sbuf2, sizeof(sbuf2), fields[1].data, fields[1].len));
		return false;
	}
	table = &def->tables[idx];
	row->table_index = idx;
	row->table = table;
	if (nfields - 3 != table->ncolumns)
	{
		row_fail(err, DMS_VALUE_DATA_ERROR, 0, NULL,
				 "expected %d field%s (operation, table, schema and the %d columns of %s.%s), found %d",
				 table->ncolumns + 3, table->ncolumns + 3 == 1 ? "" : "s",
				 table->ncolumns, table->owner, table->name, nfields);
		return false;
	}
	row->columns = fields + 3;
	row->first_field = 4;
	return true;
}

/*
 * dms_row_render
 *		Append the data object of a routed row.
 */
bool
dms_row_render(const DmsRowRenderer *rr, const DmsRow *row, StringInfo out,
			   DmsRowError *err)
{
	const ExternalTable *table = row->table;
	const RenderKey *keys = rr->keys[row->table_index];
	const DmsValueOptions *opts = rr->opts;
	int			start_len = out->len;
	bool		first = true;
	bool		truncated = false;
	int			c;

	err->error_class = DMS_VALUE_OK;
	err->field = 0;
	err->column_name = NULL;
	err->message[0] = '\0';

	appendStringInfoCharMacro(out, '{');
	for (c = 0; c < table->ncolumns; c++)
	{
		const ExternalColumn *col = &table->columns[c];
		const CsvField *f = &row->columns[c];
		int			mark = out->len;
		DmsValueResult vr;

		if (!first)
			appendStringInfoCharMacro(out, ',');
		out_append(out, keys[c].text, keys[c].len);
		if (!dms_value_render(col, f->data, f->len, f->quoted, opts, out, &vr))
		{
			if (vr.error_class == DMS_VALUE_DATA_ERROR)
			{
				out->len = start_len;
				out->data[start_len] = '\0';
				err->error_class = DMS_VALUE_DATA_ERROR;
				err->field = row->first_field + c;
				err->column_name = col->name;
				memcpy(err->message, vr.message, sizeof(err->message));
				return false;
			}
			if (!truncated)
			{
				truncated = true;
				err->error_class = DMS_VALUE_TRUNCATED;
				err->field = row->first_field + c;
				err->column_name = col->name;
				memcpy(err->message, vr.message, sizeof(err->message));
			}
		}
		if (!opts->include_null_and_empty && (vr.is_null || vr.is_empty))
		{
			out->len = mark;
			out->data[mark] = '\0';
			continue;
		}
		first = false;
	}
	appendStringInfoCharMacro(out, '}');
	return !truncated;
}
