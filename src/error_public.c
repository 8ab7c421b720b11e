/*-------------------------------------------------------------------------
 *
 * error_public.c
 *	  Value-free texts of errors for columns and NOTIFY payloads that every
 *	  role can read (see error_public.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "lib/stringinfo.h"
#include "utils/elog.h"

#include "error_public.h"

/* Texts PostgreSQL and dms_stream put before quoted row values. */
static const char *const value_markers[] = {
	"Failing row contains",
	"Key (",
	"invalid input syntax",
	"invalid input value",
	NULL
};

/*
 * text_has_marker
 *		Whether s contains one of value_markers.
 */
static bool
text_has_marker(const char *s)
{
	int			i;

	if (s == NULL)
		return false;
	for (i = 0; value_markers[i] != NULL; i++)
		if (strstr(s, value_markers[i]) != NULL)
			return true;
	return false;
}

/*
 * error_quotes_values
 *		Class 23 (integrity) and class 22 (data exception) errors are about
 *		values, except the parameter errors of class 22 (invalid or NULL
 *		parameter values: configuration, not rows); any error quoting a row
 *		in its message or detail is too.
 */
bool
error_quotes_values(const ErrorData *edata)
{
	int			code = edata->sqlerrcode;

	if (ERRCODE_TO_CATEGORY(code) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
		return true;
	if (ERRCODE_TO_CATEGORY(code) == ERRCODE_DATA_EXCEPTION &&
		code != ERRCODE_INVALID_PARAMETER_VALUE &&
		code != ERRCODE_NULL_VALUE_NOT_ALLOWED)
		return true;
	return text_has_marker(edata->message) || text_has_marker(edata->detail);
}

/*
 * error_full_text
 *		Message and detail.
 */
char *
error_full_text(const ErrorData *edata)
{
	const char *message = edata->message ? edata->message : "unknown error";

	if (edata->detail)
		return psprintf("%s (%s)", message, edata->detail);
	return pstrdup(message);
}

/*
 * error_mask_values
 *		Replace the inside of every "double-quoted string" with "..." and
 *		every 0x byte sequence with 0x..., and drop everything after a
 *		value marker ("Failing row contains", "Key (", ...).
 */
char *
error_mask_values(const char *s)
{
	StringInfoData out;
	const char *p;
	int			i;
	size_t		cut = strlen(s);

	for (i = 0; value_markers[i] != NULL; i++)
	{
		const char *m = strstr(s, value_markers[i]);

		/* "invalid input syntax for type integer: ..." keeps its head */
		if (m != NULL && (strncmp(value_markers[i], "Failing", 7) == 0 ||
						  strncmp(value_markers[i], "Key (", 5) == 0) &&
			(size_t) (m - s) < cut)
			cut = m - s;
	}
	initStringInfo(&out);
	for (p = s; (size_t) (p - s) < cut; p++)
	{
		if (*p == '"')
		{
			const char *end = strchr(p + 1, '"');

			appendStringInfoString(&out, "\"...\"");
			if (end == NULL || (size_t) (end - s) >= cut)
				break;
			p = end;
		}
		else if (p[0] == '0' && p[1] == 'x' && isxdigit((unsigned char) p[2]))
		{
			appendStringInfoString(&out, "0x...");
			p += 2;
			while (isxdigit((unsigned char) p[1]))
				p++;
		}
		else
			appendStringInfoChar(&out, *p);
	}
	if (cut < strlen(s))
		appendStringInfoString(&out, "...");
	return out.data;
}

/*
 * error_class_name
 *		What the SQLSTATE class of code is about, in words.
 */
static const char *
error_class_name(int code)
{
	if (ERRCODE_TO_CATEGORY(code) == ERRCODE_DATA_EXCEPTION)
		return "data exception";
	if (ERRCODE_TO_CATEGORY(code) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
		return "integrity constraint violation";
	return "error";
}

/*
 * error_public_text
 *		See error_public.h.
 */
char *
error_public_text(const ErrorData *edata)
{
	if (!error_quotes_values(edata))
		return error_full_text(edata);
	return psprintf("%s [SQLSTATE %s, %s; values withheld: the full error is in dms_stream.apply_exceptions]",
					error_mask_values(edata->message ? edata->message : "unknown error"),
					unpack_sql_state(edata->sqlerrcode),
					error_class_name(edata->sqlerrcode));
}
