/*-------------------------------------------------------------------------
 *
 * dms_json.c
 *	  Reading DMS JSON documents with errors that name the offending place.
 *
 * jansson allocates through dms_json_use_palloc() (called from _PG_init), so
 * every json_t lives in the memory context that was current when it was made
 * and is released with it, also when an error unwinds the stack.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "dms_json.h"

/* Longest value quoted back in an error message. */
#define SHOW_MAX 60

/*
 * dms_json_palloc
 *		jansson's allocator: palloc in CurrentMemoryContext (one byte for a
 *		zero-size request).
 */
static void *
dms_json_palloc(size_t size)
{
	return palloc(size == 0 ? 1 : size);
}

/*
 * dms_json_pfree
 *		jansson's deallocator: pfree, ignoring NULL.
 */
static void
dms_json_pfree(void *ptr)
{
	if (ptr != NULL)
		pfree(ptr);
}

/*
 * dms_json_dumps
 *		json_dumps, raising an ERROR instead of returning NULL; see
 *		dms_json.h.
 */
char *
dms_json_dumps(const json_t *value, size_t flags, const char *what)
{
	char	   *text = value != NULL ? json_dumps(value, flags) : NULL;

	if (text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encode %s as JSON", what),
				 value == NULL ?
				 errdetail("The value could not be built (a string that is not valid UTF-8?).") :
				 errdetail("jansson refused to encode a value of type %s.", dms_json_kind(value))));
	return text;
}

/*
 * dms_json_use_palloc
 *		Make jansson allocate in CurrentMemoryContext.
 */
void
dms_json_use_palloc(void)
{
	json_set_alloc_funcs(dms_json_palloc, dms_json_pfree);
}

/*
 * dms_json_new_object
 *		An empty JSON object (see the note in dms_json.h on json_object).
 */
json_t *
dms_json_new_object(void)
{
	json_t	   *o = json_pack("{}");

	if (o == NULL)
		elog(ERROR, "could not create a JSON object");
	return o;
}

/*
 * dms_json_parse
 *		Parse text as JSON, reporting syntax errors with line and column.
 *
 * Duplicate keys are rejected: DMS would silently keep one of them.
 */
json_t *
dms_json_parse(const DmsJsonDoc *doc, const char *text, size_t len)
{
	json_error_t err;
	json_t	   *root;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL && (memmem(text, len, "\xE2\x80\x9C", 3) || memmem(text, len, "\xE2\x80\x9D", 3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_JSON_TEXT),
				 errmsg("invalid %s: malformed JSON at line %d, column %d",
						doc->what, err.line, err.column),
				 errdetail("%s.", err.text),
				 errhint("The %s contains typographic quotes (\u201C \u201D), as copied from a web page or word processor; JSON needs straight double quotes (\").",
						 doc->what)));
	if (root == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_JSON_TEXT),
				 errmsg("invalid %s: malformed JSON at line %d, column %d",
						doc->what, err.line, err.column),
				 errdetail("%s.", err.text),
				 errhint("The %s must be one JSON document; check quotes, commas and brackets near that place.",
						 doc->what)));
	return root;
}

/*
 * dms_json_from_jsonb
 *		Convert a jsonb value to jansson by way of its text form.
 */
json_t *
dms_json_from_jsonb(const DmsJsonDoc *doc, Jsonb *jb)
{
	char	   *text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	json_error_t err;
	json_t	   *root;

	/* jsonb text is valid JSON without duplicate keys; it may be a scalar. */
	root = json_loadb(text, strlen(text), JSON_DECODE_ANY, &err);
	if (root == NULL)
		elog(ERROR, "dms_stream: could not read jsonb text as JSON: %s", err.text);
	return dms_json_unwrap_held(doc, root);
}

/*
 * held_text
 *		The text of a JSON string that holds a JSON object or array (its
 *		first non-blank character is '{' or '['), else NULL.
 */
static const char *
held_text(const json_t *value)
{
	const char *p;

	if (!json_is_string(value))
		return NULL;
	for (p = json_string_value(value); *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
		;
	return (*p == '{' || *p == '[') ? json_string_value(value) : NULL;
}

/*
 * dms_json_unwrap_held
 *		A document given as a JSON string holding JSON (as DMS's API returns
 *		TableMappings, ReplicationTaskSettings and ExternalTableDefinition)
 *		is the document it holds; anything else is returned as is.
 */
json_t *
dms_json_unwrap_held(const DmsJsonDoc *doc, json_t *value)
{
	const char *text = held_text(value);
	json_error_t err;
	json_t	   *root;

	if (text == NULL)
		return value;
	root = json_loadb(text, json_string_length(value), JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_JSON_TEXT),
				 errmsg("invalid %s: the JSON string holds malformed JSON at line %d, column %d",
						doc->what, err.line, err.column),
				 errdetail("The %s was given as a JSON string (as the DMS API returns it); the text inside it: %s.",
						   doc->what, err.text),
				 errhint("Check the text inside the string: quotes inside it must be escaped as \\\", or give the document as a JSON object instead of a string.")));
	return root;
}

/*
 * dms_json_strip_nulls
 *		Remove the members whose value is null from every object in value
 *		(DMS treats an optional field set to null as absent).
 */
void
dms_json_strip_nulls(json_t *value)
{
	const char *key;
	json_t	   *member;
	void	   *tmp;
	size_t		i;

	if (json_is_object(value))
	{
		json_object_foreach_safe(value, tmp, key, member)
		{
			if (json_is_null(member))
				json_object_del(value, key);
			else
				dms_json_strip_nulls(member);
		}
	}
	else if (json_is_array(value))
		json_array_foreach(value, i, member)
			dms_json_strip_nulls(member);
}

/*
 * dms_json_path_key
 *		Path of member key under parent.
 *
 * Plain keys (letters, digits, '-', '_') are joined with a dot; anything else
 * is written in brackets and quotes so the path stays unambiguous.
 */
char *
dms_json_path_key(const char *parent, const char *key)
{
	bool		plain = (*key != '\0');
	const char *p;

	for (p = key; *p; p++)
		if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '_'))
			plain = false;

	if (plain)
		return (parent == NULL || *parent == '\0') ? pstrdup(key) : psprintf("%s.%s", parent, key);
	return psprintf("%s[\"%s\"]", parent ? parent : "", key);
}

/*
 * dms_json_path_index
 *		Path of array element index under parent.
 */
char *
dms_json_path_index(const char *parent, size_t index)
{
	return psprintf("%s[%zu]", parent ? parent : "", index);
}

/*
 * dms_json_fail
 *		Raise the error for a bad value at path.
 */
void
dms_json_fail(const DmsJsonDoc *doc, const char *path, const char *hint,
			  const char *detail_fmt,...)
{
	StringInfoData detail;

	initStringInfo(&detail);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, detail_fmt);
		needed = appendStringInfoVA(&detail, detail_fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&detail, needed);
	}

	if (path == NULL || *path == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s", doc->what),
				 errdetail_internal("%s", detail.data),
				 hint ? errhint("%s", hint) : 0));
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s at %s", doc->what, path),
				 errdetail_internal("%s", detail.data),
				 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

/*
 * dms_json_kind
 *		"a string", "an object"... for messages.
 */
const char *
dms_json_kind(const json_t *value)
{
	switch (json_typeof(value))
	{
		case JSON_OBJECT:
			return "an object";
		case JSON_ARRAY:
			return "an array";
		case JSON_STRING:
			return "a string";
		case JSON_INTEGER:
		case JSON_REAL:
			return "a number";
		case JSON_TRUE:
		case JSON_FALSE:
			return "a boolean";
		case JSON_NULL:
			return "null";
	}
	return "a value";
}

/*
 * dms_json_show
 *		A value as JSON text for messages, shortened when long.
 */
char *
dms_json_show(const json_t *value)
{
	char	   *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
	char	   *result;

	if (text == NULL)
		return pstrdup("?");
	if (strlen(text) > SHOW_MAX)
	{
		int			cut = pg_mbcliplen(text, strlen(text), SHOW_MAX);

		result = psprintf("%.*s...", cut, text);
	}
	else
		result = pstrdup(text);
	return result;
}

/*
 * dms_json_list
 *		Join a NULL-terminated list with ", ".
 */
char *
dms_json_list(const char *const *items)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; items[i] != NULL; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", items[i]);
	return buf.data;
}

/*
 * dms_json_expect_object
 *		Error unless value is a JSON object.
 */
void
dms_json_expect_object(const DmsJsonDoc *doc, const json_t *value, const char *path)
{
	if (!json_is_object(value))
		dms_json_fail(doc, path, NULL,
					  "Expected a JSON object but found %s.", dms_json_kind(value));
}

/*
 * dms_json_check_keys
 *		Error on any member of obj that is not in allowed.
 */
void
dms_json_check_keys(const DmsJsonDoc *doc, const json_t *obj, const char *path,
					const char *const *allowed)
{
	const char *key;
	json_t	   *value;

	dms_json_expect_object(doc, obj, path);

	json_object_foreach((json_t *) obj, key, value)
	{
		int			i;
		const char *case_match = NULL;

		for (i = 0; allowed[i] != NULL; i++)
		{
			if (strcmp(key, allowed[i]) == 0)
				break;
			if (pg_strcasecmp(key, allowed[i]) == 0)
				case_match = allowed[i];
		}
		if (allowed[i] != NULL)
			continue;

		if (case_match)
			dms_json_fail(doc, dms_json_path_key(path, key),
						  psprintf("Keys are case-sensitive: write \"%s\".", case_match),
						  "Unknown key \"%s\".", key);
		dms_json_fail(doc, dms_json_path_key(path, key),
					  psprintf("Valid keys here are: %s.", dms_json_list(allowed)),
					  "Unknown key \"%s\".", key);
	}
}

/*
 * get_member
 *		Member key of obj, treating JSON null as absent: NULL when absent
 *		and not required; when absent and required, an error at path.key
 *		with hint (default: add the key here).
 */
static json_t *
get_member(const DmsJsonDoc *doc, const json_t *obj, const char *path,
		   const char *key, bool required, const char *hint)
{
	json_t	   *value = json_object_get(obj, key);

	if (value == NULL || json_is_null(value))
	{
		if (required)
			dms_json_fail(doc, dms_json_path_key(path, key),
						  hint ? hint : psprintf("Add \"%s\" here.", key),
						  "Required key \"%s\" is missing.", key);
		return NULL;
	}
	return value;
}

/*
 * dms_json_get_int
 *		Read an integer written as a JSON number or a string of digits.
 */
bool
dms_json_get_int(const DmsJsonDoc *doc, const json_t *obj, const char *path,
				 const char *key, bool required, int64 min, int64 max,
				 int64 *result)
{
	json_t	   *value = get_member(doc, obj, path, key, required, NULL);
	char	   *here;
	int64		n = 0;
	const char *range_hint;

	if (value == NULL)
		return false;

	here = dms_json_path_key(path, key);
	range_hint = psprintf("Write a whole number from " INT64_FORMAT " to " INT64_FORMAT
						  ", as a JSON number or a string such as \"" INT64_FORMAT "\".",
						  min, max, min);

	if (json_is_integer(value))
		n = json_integer_value(value);
	else if (json_is_string(value))
	{
		const char *s = json_string_value(value);
		const char *p = s;
		bool		overflow = false;

		if (*p == '-')
			p++;
		if (*p == '\0')
			dms_json_fail(doc, here, range_hint, "Expected a whole number but found %s.",
						  dms_json_show(value));
		for (; *p; p++)
		{
			if (!isdigit((unsigned char) *p))
				dms_json_fail(doc, here, range_hint,
							  "Expected a whole number but found %s.", dms_json_show(value));
			if (n > (PG_INT64_MAX - (*p - '0')) / 10)
				overflow = true;
			else
				n = n * 10 + (*p - '0');
		}
		if (overflow)
			dms_json_fail(doc, here, range_hint, "%s is out of range.", dms_json_show(value));
		if (*s == '-')
			n = -n;
	}
	else
		dms_json_fail(doc, here, range_hint, "Expected a whole number but found %s %s.",
					  dms_json_kind(value), dms_json_show(value));

	if (n < min || n > max)
		dms_json_fail(doc, here, range_hint,
					  "%s must be between " INT64_FORMAT " and " INT64_FORMAT "; found " INT64_FORMAT ".",
					  key, min, max, n);
	*result = n;
	return true;
}

/*
 * dms_json_get_bool
 *		Read a boolean written as true/false or "true"/"false" (any case);
 *		with allow_yn also "y"/"n" (DMS's Rfc4180 spelling).
 */
bool
dms_json_get_bool(const DmsJsonDoc *doc, const json_t *obj, const char *path,
				  const char *key, bool required, bool allow_yn, bool *result)
{
	json_t	   *value = get_member(doc, obj, path, key, required, NULL);
	const char *hint = allow_yn ?
		"Write true or false (a JSON boolean or the string \"true\", \"false\", \"y\" or \"n\")." :
		"Write true or false (a JSON boolean or the string \"true\" or \"false\").";

	if (value == NULL)
		return false;

	if (json_is_boolean(value))
		*result = json_is_true(value);
	else if (json_is_string(value))
	{
		const char *s = json_string_value(value);

		if (pg_strcasecmp(s, "true") == 0 || (allow_yn && pg_strcasecmp(s, "y") == 0))
			*result = true;
		else if (pg_strcasecmp(s, "false") == 0 || (allow_yn && pg_strcasecmp(s, "n") == 0))
			*result = false;
		else
			dms_json_fail(doc, dms_json_path_key(path, key), hint,
						  "Expected a boolean but found %s.", dms_json_show(value));
	}
	else
		dms_json_fail(doc, dms_json_path_key(path, key), hint,
					  "Expected a boolean but found %s %s.", dms_json_kind(value),
					  dms_json_show(value));
	return true;
}

/*
 * dms_json_get_string
 *		Read a string member.
 */
const char *
dms_json_get_string(const DmsJsonDoc *doc, const json_t *obj, const char *path,
					const char *key, bool required, bool allow_empty)
{
	json_t	   *value = get_member(doc, obj, path, key, required, NULL);

	if (value == NULL)
		return NULL;
	if (!json_is_string(value))
		dms_json_fail(doc, dms_json_path_key(path, key), NULL,
					  "Expected a string but found %s %s.", dms_json_kind(value),
					  dms_json_show(value));
	if (!allow_empty && json_string_length(value) == 0)
		dms_json_fail(doc, dms_json_path_key(path, key), NULL,
					  "%s must not be empty.", key);
	return json_string_value(value);
}

/*
 * dms_json_enum_equal
 *		Whether a and b are equal ignoring case and treating '_' and '-'
 *		alike (DMS spells enum values both ways: sse-s3, SSE_S3).
 */
bool
dms_json_enum_equal(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
	{
		char		ca = (*a == '_') ? '-' : pg_tolower((unsigned char) *a);
		char		cb = (*b == '_') ? '-' : pg_tolower((unsigned char) *b);

		if (ca != cb)
			return false;
	}
	return *a == '\0' && *b == '\0';
}

/*
 * dms_json_match_enum
 *		Index of value in allowed, or an error listing the valid values.
 */
int
dms_json_match_enum(const DmsJsonDoc *doc, const char *path, const char *value,
					const char *const *allowed, bool ignore_case)
{
	int			i;

	for (i = 0; allowed[i] != NULL; i++)
		if (strcmp(value, allowed[i]) == 0 ||
			(ignore_case && dms_json_enum_equal(value, allowed[i])))
			return i;

	dms_json_fail(doc, path, psprintf("Valid values are: %s.", dms_json_list(allowed)),
				  "Unknown value \"%s\".", value);
	return -1;					/* keep compiler quiet */
}

/*
 * dms_json_get_enum
 *		Read a string member that must be one of allowed; -1 if absent.
 */
int
dms_json_get_enum(const DmsJsonDoc *doc, const json_t *obj, const char *path,
				  const char *key, bool required, const char *const *allowed,
				  bool ignore_case)
{
	const char *value = dms_json_get_string(doc, obj, path, key, required, true);

	if (value == NULL)
		return -1;
	return dms_json_match_enum(doc, dms_json_path_key(path, key), value, allowed,
							   ignore_case);
}

/*
 * dms_json_hex4
 *		The value of the four hex digits at p (the digits of a JSON \u
 *		escape), or -1 if they are not four hex digits.  The caller makes
 *		sure four bytes are there.
 */
int
dms_json_hex4(const char *p)
{
	int			v = 0;
	int			i;

	for (i = 0; i < 4; i++)
	{
		char		c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}
