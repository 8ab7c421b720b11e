/*-------------------------------------------------------------------------
 *
 * dms_json.h
 *	  Reading DMS JSON documents with errors that name the offending place.
 *
 * AWS DMS documents (external table definitions, table mappings, endpoint
 * and task settings) write numbers and booleans either as JSON values or as
 * strings ("5", "true").  These helpers accept both, and every failure is an
 * ereport(ERROR) whose message names the JSON path, e.g.
 *     invalid external table definition at Tables[0].TableColumns[3].ColumnPrecision
 * with a detail saying what is wrong and a hint saying how to fix it.
 *
 * Include this header instead of utils/builtins.h in files that use jansson:
 * both declare json_object(), and the wrapper below keeps them apart.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_JSON_H
#define DMS_JSON_H

#define json_object pg_fmgr_json_object
#include "utils/builtins.h"
#undef json_object
#include "utils/jsonb.h"

#include <jansson.h>

/*
 * jansson's json_object() must never be called from the extension: the
 * server exports a function of the same name (the SQL json_object), and the
 * dynamic linker binds our calls to it.  Any json_object() written in
 * dms_stream code is redirected here; json_pack reaches jansson's own
 * json_object from inside the library.
 */
extern json_t *dms_json_new_object(void);
#define json_object() dms_json_new_object()

/* What is being read: names the document in every error message. */
typedef struct DmsJsonDoc
{
	const char *what;			/* e.g. "external table definition" */
} DmsJsonDoc;

/* Parse JSON text; a syntax error is reported with line and column. */
extern json_t *dms_json_parse(const DmsJsonDoc *doc, const char *text, size_t len);

/* Convert a jsonb datum into a jansson value; a JSON string holding a document is unwrapped. */
extern json_t *dms_json_from_jsonb(const DmsJsonDoc *doc, Jsonb *jb);

/* A JSON string holding a JSON object or array: the value it holds. */
extern json_t *dms_json_unwrap_held(const DmsJsonDoc *doc, json_t *value);

/* Remove null-valued members from every object in value. */
extern void dms_json_strip_nulls(json_t *value);

/* Paths: "parent.key" (or parent["odd key"]) and "parent[i]". */
extern char *dms_json_path_key(const char *parent, const char *key);
extern char *dms_json_path_index(const char *parent, size_t index);

/* Report an error at path; detail is a printf format. Never returns. */
extern void dms_json_fail(const DmsJsonDoc *doc, const char *path,
						  const char *hint, const char *detail_fmt,...)
			pg_attribute_printf(4, 5) pg_attribute_noreturn();

/* Short description of a JSON value for messages: "a string", "an array"... */
extern const char *dms_json_kind(const json_t *value);

/* Value rendered for messages, truncated to a sensible length. */
extern char *dms_json_show(const json_t *value);

/*
 * json_dumps that never returns NULL: raises an ERROR naming what was being
 * encoded when jansson cannot encode value (NULL, a scalar without
 * JSON_ENCODE_ANY, a cycle).  The text is palloc'd.
 */
extern char *dms_json_dumps(const json_t *value, size_t flags, const char *what);

/*
 * Require obj to be an object whose keys are all in the NULL-terminated list
 * allowed.  An unknown key is reported with the list of valid keys, and a
 * suggestion when it differs from a valid key only in letter case.
 */
extern void dms_json_expect_object(const DmsJsonDoc *doc, const json_t *value,
								   const char *path);
extern void dms_json_check_keys(const DmsJsonDoc *doc, const json_t *obj,
								const char *path, const char *const *allowed);

/*
 * Typed member getters.  Each returns false when the member is absent (or
 * JSON null) and required is false; an absent required member, or a member
 * of the wrong type or out of range, is an error naming its path.
 */
extern bool dms_json_get_int(const DmsJsonDoc *doc, const json_t *obj,
							 const char *path, const char *key, bool required,
							 int64 min, int64 max, int64 *result);
extern bool dms_json_get_bool(const DmsJsonDoc *doc, const json_t *obj,
							  const char *path, const char *key, bool required,
							  bool allow_yn, bool *result);
extern const char *dms_json_get_string(const DmsJsonDoc *doc, const json_t *obj,
									   const char *path, const char *key,
									   bool required, bool allow_empty);

/*
 * Match value against a NULL-terminated list of allowed spellings and return
 * its index; anything else is an error listing them.  With ignore_case,
 * "JSON_UNFORMATTED" matches "json-unformatted" as DMS's guide spells it.
 */
/* Equal ignoring case, '_' and '-' alike (enum spellings). */
extern bool dms_json_enum_equal(const char *a, const char *b);

extern int	dms_json_match_enum(const DmsJsonDoc *doc, const char *path,
								const char *value, const char *const *allowed,
								bool ignore_case);
extern int	dms_json_get_enum(const DmsJsonDoc *doc, const json_t *obj,
							  const char *path, const char *key, bool required,
							  const char *const *allowed, bool ignore_case);

/* Make jansson allocate with palloc in CurrentMemoryContext (from _PG_init). */
extern void dms_json_use_palloc(void);

/* "a, b, c" from a NULL-terminated list, for hints. */
extern char *dms_json_list(const char *const *items);

/* The value of the four hex digits at p (a JSON \u escape), -1 if they are not. */
extern int	dms_json_hex4(const char *p);

#endif							/* DMS_JSON_H */
