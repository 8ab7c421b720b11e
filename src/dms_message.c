/*-------------------------------------------------------------------------
 *
 * dms_message.c
 *	  Write Kinesis records in AWS DMS's message format.
 *
 * Everything that depends only on the table (escaped keys, names, the
 * schema.table key, which columns are binary or LOBs, which are replaced by
 * mapped attributes) is prepared once in dms_message_writer_create; per
 * change, dms_message_build appends to StringInfo buffers through a small
 * JSON writer that produces the pretty (json) or compact (json-unformatted)
 * form.  The rules are described in dms_message.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/datetime.h"

#include "dms_json.h"
#include "dms_message.h"

static const char *const operation_names[] = {
	"load", "insert", "update", "delete",
	"create-table", "rename-table", "drop-table", "change-columns",
	"add-column", "drop-column", "rename-column", "column-type-change",
	"truncate-table", NULL
};

/* A JSON key, escaped with its quotes. */
typedef struct JsonKey
{
	char	   *text;
	int			len;
} JsonKey;

struct DmsMessageWriter
{
	const MappingTablePlan *plan;
	DmsMessageSettings settings;
	JsonKey    *columns;		/* per output column */
	bool	   *shadowed;		/* per output column: an attribute has its
								 * name */
	bool	   *binary;			/* per output column: BYTE/BLOB */
	bool	   *in_before_image;	/* per output column */
	JsonKey    *attributes;		/* per mapped attribute */
	JsonKey		schema_value;	/* target schema as a JSON string */
	JsonKey		table_value;	/* target table as a JSON string */
	JsonKey		before_key;		/* FieldName */
	char	   *schema_table;	/* "schema.table" */
	StringInfoData scratch;

	/*
	 * The metadata from "record-type" to "table-name" as last written, for
	 * messages without a partition-key-value (the same for every message of
	 * an operation and partition key type): one copy instead of ten pieces.
	 */
	StringInfoData meta_mid;
	int			meta_mid_operation; /* -1: none */
	const char *meta_mid_pk_type;
	int			meta_mid_depth;
};

/* The JSON writer: pretty (tabs) or compact, into one StringInfo. */
typedef struct JsonWriter
{
	StringInfo	out;
	bool		pretty;
	int			depth;
	bool		comma;			/* the current container has a member */
} JsonWriter;

static const char tabs[] = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";

/*
 * out_bytes / out_char / out_str
 *		appendBinaryStringInfo, appendStringInfoChar and
 *		appendStringInfoString, inline: a message is written in many small
 *		pieces, and a call into the server for each one is most of the cost.
 */
static inline void
out_bytes(StringInfo out, const char *s, int n)
{
	if (unlikely(out->len + n >= out->maxlen))
		enlargeStringInfo(out, n);
	memcpy(out->data + out->len, s, n);
	out->len += n;
	out->data[out->len] = '\0';
}

static inline void
out_char(StringInfo out, char c)
{
	if (unlikely(out->len + 1 >= out->maxlen))
		enlargeStringInfo(out, 1);
	out->data[out->len++] = c;
	out->data[out->len] = '\0';
}

static inline void
out_str(StringInfo out, const char *s)
{
	out_bytes(out, s, strlen(s));
}

/* ----------------------------------------------------------------
 * JSON text
 * ----------------------------------------------------------------
 */

/*
 * append_escaped
 *		Append s as the inside of a JSON string (no quotes).
 */
static void
append_escaped(StringInfo out, const char *s, size_t len)
{
	const char *run = s;
	const char *end = s + len;
	const char *p;

	for (p = s; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;
		const char *esc;
		char		buf[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (p > run)
			out_bytes(out, run, p - run);
		switch (c)
		{
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			default:
				snprintf(buf, sizeof(buf), "\\u%04x", c);
				esc = buf;
				break;
		}
		out_str(out, esc);
		run = p + 1;
	}
	if (end > run)
		out_bytes(out, run, end - run);
}

/*
 * dms_message_append_json_string
 *		Append s as a JSON string, quotes included.
 */
void
dms_message_append_json_string(StringInfo out, const char *s, size_t len)
{
	out_char(out, '"');
	append_escaped(out, s, len);
	out_char(out, '"');
}

/*
 * make_key
 *		A string escaped with its quotes, kept for reuse.
 */
static JsonKey
make_key(const char *s)
{
	StringInfoData buf;
	JsonKey		key;

	initStringInfo(&buf);
	dms_message_append_json_string(&buf, s, strlen(s));
	key.text = buf.data;
	key.len = buf.len;
	return key;
}

/*
 * jw_newline
 *		In pretty mode, a line break and the indentation of the depth.
 */
static inline void
jw_newline(JsonWriter *w)
{
	int			d = w->depth;

	if (!w->pretty)
		return;
	out_char(w->out, '\n');
	while (d > 0)
	{
		int			n = Min(d, (int) sizeof(tabs) - 1);

		out_bytes(w->out, tabs, n);
		d -= n;
	}
}

/*
 * jw_begin / jw_end
 *		Open and close an object ('{', '}') or array ('[', ']').
 */
static inline void
jw_begin(JsonWriter *w, char open)
{
	out_char(w->out, open);
	w->depth++;
	w->comma = false;
}

static inline void
jw_end(JsonWriter *w, char close)
{
	w->depth--;
	if (w->comma)
		jw_newline(w);
	out_char(w->out, close);
	w->comma = true;
}

/*
 * jw_key
 *		Start a member: separator, line, the escaped key and the colon.
 */
static inline void
jw_key(JsonWriter *w, const char *key, int len)
{
	StringInfo	out = w->out;
	int			depth = w->pretty ? Min(w->depth, (int) sizeof(tabs) - 1) : 0;
	int			need = 1 + 1 + depth + len + 2;
	char	   *p;

	if (w->pretty && w->depth >= (int) sizeof(tabs))
	{
		/* deeper than the tabs at hand: the general way */
		if (w->comma)
			out_char(out, ',');
		jw_newline(w);
		out_bytes(out, key, len);
		out_bytes(out, ": ", 2);
		w->comma = true;
		return;
	}
	if (unlikely(out->len + need >= out->maxlen))
		enlargeStringInfo(out, need);
	p = out->data + out->len;
	if (w->comma)
		*p++ = ',';
	if (w->pretty)
	{
		*p++ = '\n';
		memcpy(p, tabs, depth);
		p += depth;
	}
	memcpy(p, key, len);
	p += len;
	*p++ = ':';
	if (w->pretty)
		*p++ = ' ';
	*p = '\0';
	out->len = p - out->data;
	w->comma = true;
}

/* jw_key with a literal key such as "\"metadata\"". */
#define jw_lkey(w, lit)		jw_key((w), (lit), sizeof(lit) - 1)

/*
 * jw_key_str
 *		Start a member whose key is not escaped yet.
 */
static void
jw_key_str(JsonWriter *w, const char *key)
{
	if (w->comma)
		out_char(w->out, ',');
	jw_newline(w);
	dms_message_append_json_string(w->out, key, strlen(key));
	out_str(w->out, w->pretty ? ": " : ":");
	w->comma = true;
}

/*
 * jw_element
 *		Start an array element.
 */
static inline void
jw_element(JsonWriter *w)
{
	if (w->comma)
		out_char(w->out, ',');
	jw_newline(w);
	w->comma = true;
}

/*
 * jw_string
 *		A string value.
 */
static inline void
jw_string(JsonWriter *w, const char *s)
{
	dms_message_append_json_string(w->out, s, strlen(s));
}

/*
 * append_minified
 *		Append valid JSON text without the whitespace outside strings.
 */
static void
append_minified(StringInfo out, const char *s, size_t len)
{
	bool		in_string = false;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			out_char(out, c);
			if (c == '\\' && i + 1 < len)
				out_char(out, s[++i]);
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
		{
			in_string = true;
			out_char(out, c);
		}
		else if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			out_char(out, c);
	}
}

/*
 * jw_json_t
 *		Write a jansson value (a control object) in the writer's format.
 */
static void
jw_json_t(JsonWriter *w, const json_t *v)
{
	if (json_is_object(v))
	{
		const char *key;
		json_t	   *member;

		jw_begin(w, '{');
		json_object_foreach((json_t *) v, key, member)
		{
			jw_key_str(w, key);
			jw_json_t(w, member);
		}
		jw_end(w, '}');
	}
	else if (json_is_array(v))
	{
		size_t		i;

		jw_begin(w, '[');
		for (i = 0; i < json_array_size(v); i++)
		{
			jw_element(w);
			jw_json_t(w, json_array_get(v, i));
		}
		jw_end(w, ']');
	}
	else if (json_is_string(v))
		dms_message_append_json_string(w->out, json_string_value(v), json_string_length(v));
	else if (json_is_integer(v))
		appendStringInfo(w->out, "%lld", (long long) json_integer_value(v));
	else if (json_is_true(v))
		out_str(w->out, "true");
	else if (json_is_false(v))
		out_str(w->out, "false");
	else if (json_is_null(v))
		out_str(w->out, "null");
	else
	{
		char	   *text = dms_json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT,
										  "a value of the message");

		out_str(w->out, text);
	}
}

/* ----------------------------------------------------------------
 * Names and settings
 * ----------------------------------------------------------------
 */

/*
 * dms_operation_name
 *		DMS's name of an operation.
 */
const char *
dms_operation_name(DmsOperation op)
{
	return operation_names[op];
}

/*
 * dms_operation_parse
 *		An operation from its DMS name (exact, lower case).
 */
bool
dms_operation_parse(const char *name, DmsOperation *op)
{
	int			i;

	for (i = 0; operation_names[i] != NULL; i++)
		if (strcmp(operation_names[i], name) == 0)
		{
			*op = (DmsOperation) i;
			return true;
		}
	return false;
}

/*
 * dms_control_type_name
 *		Type names of control records' table definitions: the observed
 *		INT32/STRING/TIMESTAMP family, by size in bits for integers.
 */
const char *
dms_control_type_name(DmsColumnType type)
{
	switch (type)
	{
		case DMS_TYPE_BYTE:
			return "BYTES";
		case DMS_TYPE_DATE:
			return "DATE";
		case DMS_TYPE_TIME:
			return "TIME";
		case DMS_TYPE_DATETIME:
			return "TIMESTAMP";
		case DMS_TYPE_INT1:
			return "INT8";
		case DMS_TYPE_INT2:
			return "INT16";
		case DMS_TYPE_INT4:
			return "INT32";
		case DMS_TYPE_INT8:
			return "INT64";
		case DMS_TYPE_NUMERIC:
			return "NUMERIC";
		case DMS_TYPE_REAL4:
			return "REAL4";
		case DMS_TYPE_REAL8:
			return "REAL8";
		case DMS_TYPE_STRING:
			return "STRING";
		case DMS_TYPE_UINT1:
			return "UINT8";
		case DMS_TYPE_UINT2:
			return "UINT16";
		case DMS_TYPE_UINT4:
			return "UINT32";
		case DMS_TYPE_UINT8:
			return "UINT64";
		case DMS_TYPE_BLOB:
			return "BLOB";
		case DMS_TYPE_CLOB:
			return "CLOB";
		case DMS_TYPE_BOOLEAN:
			return "BOOLEAN";
	}
	return "STRING";
}

/*
 * dms_message_settings_init
 *		DMS's defaults.
 */
void
dms_message_settings_init(DmsMessageSettings *settings)
{
	memset(settings, 0, sizeof(*settings));
	settings->before_image_filter = DMS_BEFORE_IMAGE_PK_ONLY;
}

/*
 * dms_message_settings_from_json
 *		Read the KinesisSettings flags and BeforeImageSettings.
 */
void
dms_message_settings_from_json(DmsMessageSettings *settings, const json_t *kinesis,
							   const json_t *task, const char *task_id)
{
	static const char *const formats[] = {"json", "json-unformatted", NULL};
	static const char *const filters[] = {"pk-only", "non-lob", "all", NULL};
	DmsJsonDoc	kdoc = {"KinesisSettings"};
	DmsJsonDoc	tdoc = {"task settings"};

	dms_message_settings_init(settings);
	settings->task_id = task_id;

	if (kinesis != NULL)
	{
		dms_json_expect_object(&kdoc, kinesis, "");
		settings->unformatted =
			dms_json_get_enum(&kdoc, kinesis, "", "MessageFormat", false, formats, true) == 1;
		dms_json_get_bool(&kdoc, kinesis, "", "IncludeTransactionDetails", false, false,
						  &settings->include_transaction_details);
		dms_json_get_bool(&kdoc, kinesis, "", "IncludePartitionValue", false, false,
						  &settings->include_partition_value);
		dms_json_get_bool(&kdoc, kinesis, "", "PartitionIncludeSchemaTable", false, false,
						  &settings->partition_include_schema_table);
		dms_json_get_bool(&kdoc, kinesis, "", "IncludeTableAlterOperations", false, false,
						  &settings->include_table_alter_operations);
		dms_json_get_bool(&kdoc, kinesis, "", "IncludeControlDetails", false, false,
						  &settings->include_control_details);
		dms_json_get_bool(&kdoc, kinesis, "", "IncludeNullAndEmpty", false, false,
						  &settings->include_null_and_empty);
		dms_json_get_bool(&kdoc, kinesis, "", "NoHexPrefix", false, false,
						  &settings->no_hex_prefix);
	}

	if (task != NULL)
	{
		json_t	   *bi;
		json_t	   *tm;

		dms_json_expect_object(&tdoc, task, "");
		bi = json_object_get(task, "BeforeImageSettings");
		if (bi != NULL && json_is_object(bi))
		{
			int			f;

			dms_json_get_bool(&tdoc, bi, "BeforeImageSettings", "EnableBeforeImage", false, false,
							  &settings->before_image);
			f = dms_json_get_enum(&tdoc, bi, "BeforeImageSettings", "ColumnFilter", false,
								  filters, false);
			if (f >= 0)
				settings->before_image_filter = (DmsBeforeImageFilter) f;
			if (settings->before_image)
			{
				settings->before_image_field =
					dms_json_get_string(&tdoc, bi, "BeforeImageSettings", "FieldName", true, false);
				if (strcmp(settings->before_image_field, "data") == 0 ||
					strcmp(settings->before_image_field, "metadata") == 0 ||
					strcmp(settings->before_image_field, "control") == 0)
					dms_json_fail(&tdoc, "BeforeImageSettings.FieldName",
								  "Choose another name, e.g. \"before-image\".",
								  "\"%s\" is a member of every DMS message already.",
								  settings->before_image_field);
			}
		}
		tm = json_object_get(task, "TargetMetadata");
		if (tm != NULL && json_is_object(tm))
		{
			int64		threads = 0;

			dms_json_get_int(&tdoc, tm, "TargetMetadata", "ParallelApplyThreads", false,
							 0, PG_INT32_MAX, &threads);
			settings->parallel_apply = threads > 0;
		}
	}
}

/* ----------------------------------------------------------------
 * Writer
 * ----------------------------------------------------------------
 */

/*
 * dms_message_writer_create
 *		Prepare the table's keys and names.
 */
DmsMessageWriter *
dms_message_writer_create(const MappingTablePlan *plan, const DmsMessageSettings *settings)
{
	DmsMessageWriter *w = palloc0(sizeof(DmsMessageWriter));
	int			n = Max(plan->noutput, 1);
	int			i,
				j;

	w->plan = plan;
	w->settings = *settings;
	w->columns = palloc(sizeof(JsonKey) * n);
	w->shadowed = palloc0(sizeof(bool) * n);
	w->binary = palloc0(sizeof(bool) * n);
	w->in_before_image = palloc0(sizeof(bool) * n);
	w->attributes = palloc(sizeof(JsonKey) * Max(plan->nattributes, 1));

	for (i = 0; i < plan->nattributes; i++)
		w->attributes[i] = make_key(plan->attributes[i].name);

	for (i = 0; i < plan->noutput; i++)
	{
		const MappingOutputColumn *oc = &plan->output[i];
		const MappingSourceColumn *sc = &plan->source[oc->source];

		w->columns[i] = make_key(oc->name);
		w->binary[i] = (sc->type == DMS_TYPE_BYTE || sc->type == DMS_TYPE_BLOB);
		if (sc->type == DMS_TYPE_BLOB || sc->type == DMS_TYPE_CLOB)
			w->in_before_image[i] = false;
		else if (settings->before_image_filter == DMS_BEFORE_IMAGE_PK_ONLY)
			w->in_before_image[i] = sc->is_pk;
		else
			w->in_before_image[i] = true;
		if (!plan->to_document)
			for (j = 0; j < plan->nattributes; j++)
				if (strcmp(plan->attributes[j].name, oc->name) == 0)
					w->shadowed[i] = true;
	}

	w->schema_value = make_key(plan->target_schema);
	w->table_value = make_key(plan->target_table);
	if (settings->before_image && settings->before_image_field != NULL)
		w->before_key = make_key(settings->before_image_field);
	w->schema_table = psprintf("%s.%s", plan->target_schema, plan->target_table);
	initStringInfo(&w->scratch);
	initStringInfo(&w->meta_mid);
	w->meta_mid_operation = -1;
	return w;
}

/*
 * dms_message_format_timestamp
 *		UTC with microseconds and Z.
 */
void
dms_message_format_timestamp(TimestampTz ts, char *buf)
{
	/*
	 * The text up to the seconds of the last two seconds formatted (a CDC
	 * message has two timestamps, the message's and the commit's).
	 */
	static TimestampTz cached_second[2] = {-1, -1};
	static char cached[2][32];
	static int	cached_len[2];
	static int	victim = 0;
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz second;
	int			us;
	int			i;
	int			c;

	if (TIMESTAMP_NOT_FINITE(ts) || ts < 0)
	{
		if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		{
			strlcpy(buf, TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity", DMS_MESSAGE_TIMESTAMP_SIZE);
			return;
		}
		snprintf(buf, DMS_MESSAGE_TIMESTAMP_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
				 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
		return;
	}

	/* Messages of one second share everything but the microseconds. */
	second = ts / USECS_PER_SEC;
	us = (int) (ts % USECS_PER_SEC);
	if (second == cached_second[0])
		c = 0;
	else if (second == cached_second[1])
		c = 1;
	else
	{
		if (timestamp2tm(second * USECS_PER_SEC, NULL, &tm, &fsec, NULL, NULL) != 0)
		{
			strlcpy(buf, "infinity", DMS_MESSAGE_TIMESTAMP_SIZE);
			return;
		}
		c = victim;
		victim = 1 - victim;
		cached_len[c] = snprintf(cached[c], sizeof(cached[c]), "%04d-%02d-%02dT%02d:%02d:%02d.",
								 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
								 tm.tm_sec);
		cached_second[c] = second;
	}
	i = cached_len[c];
	memcpy(buf, cached[c], i);
	buf[i + 5] = '0' + us % 10;
	buf[i + 4] = '0' + (us / 10) % 10;
	buf[i + 3] = '0' + (us / 100) % 10;
	buf[i + 2] = '0' + (us / 1000) % 10;
	buf[i + 1] = '0' + (us / 10000) % 10;
	buf[i] = '0' + us / 100000;
	buf[i + 6] = 'Z';
	buf[i + 7] = '\0';
}

/*
 * append_template
 *		A template's result: escaped for the inside of a JSON string, or
 *		as plain text (partition keys).
 */
static void
append_template(StringInfo out, const MappingTemplate *t, const DmsColumnValue *values,
				bool escaped)
{
	int			i;

	for (i = 0; i < t->nparts; i++)
	{
		const MappingTemplatePart *part = &t->parts[i];
		const DmsColumnValue *v;

		if (part->column < 0)
		{
			if (escaped)
				append_escaped(out, part->text, part->len);
			else
				out_bytes(out, part->text, part->len);
			continue;
		}
		v = &values[part->column];
		if (v->is_null || v->is_missing || v->json == NULL)
			continue;
		if (!escaped)
			mapping_append_value_text(out, v);
		else if (v->len >= 2 && v->json[0] == '"')
			out_bytes(out, v->json + 1, v->len - 2);	/* already escaped */
		else
			append_escaped(out, v->json, v->len);
	}
}

/*
 * is_json_number
 *		Whether s is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 */
static bool
is_json_number(const char *s, int len)
{
	const char *p = s;
	const char *end = s + len;

	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return false;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return false;
	if (p < end && *p == '.')
	{
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return p == end;
}

/*
 * write_doc_node
 *		A document attribute: objects of template strings.
 */
static void
write_doc_node(JsonWriter *w, const MappingDocNode *node, const DmsColumnValue *values)
{
	int			i;

	if (!node->is_object)
	{
		out_char(w->out, '"');
		append_template(w->out, &node->value, values, true);
		out_char(w->out, '"');
		return;
	}
	jw_begin(w, '{');
	for (i = 0; i < node->nmembers; i++)
	{
		jw_key_str(w, node->members[i].key);
		write_doc_node(w, &node->members[i], values);
	}
	jw_end(w, '}');
}

/*
 * write_attribute_value
 *		A mapped attribute's value.  Scalars are strings; sub-type number
 *		gives a JSON number when the result is one, sub-type json embeds the
 *		result when it is JSON text.
 */
static void
write_attribute_value(DmsMessageWriter *mw, JsonWriter *w, const MappingAttribute *a,
					  const DmsColumnValue *values)
{
	StringInfo	scratch = &mw->scratch;

	if (a->is_document)
	{
		write_doc_node(w, &a->doc, values);
		return;
	}
	resetStringInfo(scratch);
	if (a->sub_type == MAPPING_SUBTYPE_NUMBER)
	{
		append_template(scratch, &a->scalar, values, true);
		if (is_json_number(scratch->data, scratch->len))
		{
			out_bytes(w->out, scratch->data, scratch->len);
			return;
		}
	}
	else if (a->sub_type == MAPPING_SUBTYPE_JSON)
	{
		json_error_t err;
		json_t	   *parsed;

		append_template(scratch, &a->scalar, values, false);
		parsed = json_loadb(scratch->data, scratch->len, JSON_DECODE_ANY, &err);
		if (parsed != NULL)
		{
			json_decref(parsed);
			append_minified(w->out, scratch->data, scratch->len);
			return;
		}
		resetStringInfo(scratch);
		append_template(scratch, &a->scalar, values, true);
	}
	else
		append_template(scratch, &a->scalar, values, true);
	out_char(w->out, '"');
	out_bytes(w->out, scratch->data, scratch->len);
	out_char(w->out, '"');
}

/*
 * write_columns
 *		The members for the output columns (all, or those of the before
 *		image), honouring IncludeNullAndEmpty and NoHexPrefix.
 */
static void
write_columns(DmsMessageWriter *mw, JsonWriter *w, const DmsColumnValue *values,
			  bool before_image)
{
	const MappingTablePlan *plan = mw->plan;
	int			i;

	for (i = 0; i < plan->noutput; i++)
	{
		const DmsColumnValue *v = &values[plan->output[i].source];

		if (before_image ? !mw->in_before_image[i] : mw->shadowed[i])
			continue;
		if (v->is_missing)
			continue;
		if ((v->is_null || v->is_empty || v->json == NULL) && !mw->settings.include_null_and_empty)
			continue;
		jw_key(w, mw->columns[i].text, mw->columns[i].len);
		if (v->is_null || v->json == NULL)
			out_str(w->out, "null");
		else if (mw->binary[i] && mw->settings.no_hex_prefix && v->len >= 3 &&
				 v->json[0] == '"' && v->json[1] == '0' && (v->json[2] == 'x' || v->json[2] == 'X'))
		{
			out_char(w->out, '"');
			out_bytes(w->out, v->json + 3, v->len - 3);
		}
		else
			out_bytes(w->out, v->json, v->len);
	}
}

/*
 * write_data
 *		The data object: columns (under _doc for map-record-to-document),
 *		then the mapped attributes.
 */
static void
write_data(DmsMessageWriter *mw, JsonWriter *w, const DmsColumnValue *values)
{
	const MappingTablePlan *plan = mw->plan;
	int			i;

	jw_begin(w, '{');
	if (plan->to_document)
	{
		jw_lkey(w, "\"_doc\"");
		jw_begin(w, '{');
		write_columns(mw, w, values, false);
		jw_end(w, '}');
	}
	else
		write_columns(mw, w, values, false);
	for (i = 0; i < plan->nattributes; i++)
	{
		jw_key(w, mw->attributes[i].text, mw->attributes[i].len);
		write_attribute_value(mw, w, &plan->attributes[i], values);
	}
	jw_end(w, '}');
}

/*
 * cut_key
 *		Cut a key to Kinesis's limit in characters.
 */
static void
cut_key(StringInfo key)
{
	int			chars = 0;
	int			i;

	for (i = 0; i < key->len; i++)
	{
		if ((((unsigned char) key->data[i]) & 0xC0) == 0x80)
			continue;
		if (chars == DMS_MESSAGE_MAX_KEY_CHARS)
		{
			key->len = i;
			key->data[i] = '\0';
			return;
		}
		chars++;
	}
}

/*
 * partition_key
 *		The data record's partition key into key; returns the type used.
 */
static MappingPartitionKeyType
partition_key(DmsMessageWriter *mw, const DmsChange *ch, StringInfo key)
{
	const MappingTablePlan *plan = mw->plan;
	MappingPartitionKeyType type = plan->pk_type;
	int			i;

	if (type == MAPPING_PKT_DEFAULT)
		type = (ch->operation == DMS_OP_LOAD || mw->settings.parallel_apply) ?
			MAPPING_PKT_PRIMARY_KEY : MAPPING_PKT_SCHEMA_TABLE;

	switch (type)
	{
		case MAPPING_PKT_PRIMARY_KEY:
			{
				int			start;

				if (plan->npk == 0)
					break;
				if (mw->settings.partition_include_schema_table)
				{
					out_str(key, mw->schema_table);
					out_char(key, '.');
				}
				start = key->len;
				for (i = 0; i < plan->npk; i++)
				{
					if (i > 0)
						out_char(key, '.');
					mapping_append_value_text(key, &ch->values[plan->pk[i]]);
				}
				if (key->len - start > plan->npk - 1)
					return type;
				resetStringInfo(key);
				break;
			}
		case MAPPING_PKT_ATTRIBUTE_NAME:
			if (plan->pk_attribute >= 0)
			{
				const MappingAttribute *a = &plan->attributes[plan->pk_attribute];

				if (a->is_document)
				{
					JsonWriter	jw = {key, false, 0, false};

					write_doc_node(&jw, &a->doc, ch->values);
				}
				else
					append_template(key, &a->scalar, ch->values, false);
			}
			else if (plan->pk_column >= 0)
				mapping_append_value_text(key, &ch->values[plan->pk_column]);
			if (key->len > 0)
				return type;
			break;
		case MAPPING_PKT_CONSTANT:
			if (plan->pk_constant != NULL && plan->pk_constant[0] != '\0')
			{
				out_str(key, plan->pk_constant);
				return type;
			}
			break;
		case MAPPING_PKT_TRANSACTION_ID:
			if (ch->transaction != NULL && ch->transaction->has_id)
			{
				appendStringInfo(key, UINT64_FORMAT, ch->transaction->id);
				return type;
			}
			break;
		default:
			break;
	}
	out_str(key, mw->schema_table);
	return MAPPING_PKT_SCHEMA_TABLE;
}

/* Integers without the printf machinery. */
static void
append_uint64(StringInfo out, uint64 v)
{
	char		buf[MAXINT8LEN + 1];
	int			len = pg_ulltoa_n(v, buf);

	appendBinaryStringInfo(out, buf, len);
}

static void
append_int64(StringInfo out, int64 v)
{
	char		buf[MAXINT8LEN + 1];
	int			len = pg_lltoa(v, buf);

	appendBinaryStringInfo(out, buf, len);
}

/*
 * write_metadata
 *		The metadata object in DMS's field order.
 */
static void
write_metadata(DmsMessageWriter *mw, JsonWriter *w, const DmsChange *ch,
			   const char *pk_type, const char *pk_value)
{
	const DmsMessageSettings *s = &mw->settings;
	const DmsTransaction *tx = ch->transaction;
	bool		control = DMS_OPERATION_IS_CONTROL(ch->operation);
	char		ts[DMS_MESSAGE_TIMESTAMP_SIZE];

	jw_lkey(w, "\"metadata\"");
	jw_begin(w, '{');

	dms_message_format_timestamp(ch->timestamp, ts);
	jw_lkey(w, "\"timestamp\"");
	out_char(w->out, '"');
	out_str(w->out, ts);
	out_char(w->out, '"');

	if (pk_value == NULL && mw->meta_mid_operation == (int) ch->operation &&
		mw->meta_mid_pk_type == pk_type && mw->meta_mid_depth == w->depth)
		out_bytes(w->out, mw->meta_mid.data, mw->meta_mid.len);
	else
	{
		int			start = w->out->len;

		jw_lkey(w, "\"record-type\"");
		out_str(w->out, control ? "\"control\"" : "\"data\"");
		jw_lkey(w, "\"operation\"");
		jw_string(w, operation_names[ch->operation]);
		jw_lkey(w, "\"partition-key-type\"");
		jw_string(w, pk_type);
		if (pk_value != NULL)
		{
			jw_lkey(w, "\"partition-key-value\"");
			jw_string(w, pk_value);
		}
		jw_lkey(w, "\"schema-name\"");
		out_bytes(w->out, mw->schema_value.text, mw->schema_value.len);
		jw_lkey(w, "\"table-name\"");
		out_bytes(w->out, mw->table_value.text, mw->table_value.len);
		if (pk_value == NULL)
		{
			/* pk_type is one of the constant names: its address is its key */
			resetStringInfo(&mw->meta_mid);
			appendBinaryStringInfo(&mw->meta_mid, w->out->data + start, w->out->len - start);
			mw->meta_mid_operation = (int) ch->operation;
			mw->meta_mid_pk_type = pk_type;
			mw->meta_mid_depth = w->depth;
		}
	}

	if (!control && ch->operation != DMS_OP_LOAD && tx != NULL && tx->has_id)
	{
		jw_lkey(w, "\"transaction-id\"");
		append_uint64(w->out, tx->id);
		if (s->include_transaction_details)
		{
			if (tx->has_record_id)
			{
				jw_lkey(w, "\"transaction-record-id\"");
				append_int64(w->out, tx->record_id);
			}
			if (tx->has_prev)
			{
				jw_lkey(w, "\"prev-transaction-id\"");
				append_uint64(w->out, tx->prev_id);
				jw_lkey(w, "\"prev-transaction-record-id\"");
				append_int64(w->out, tx->prev_record_id);
			}
			if (tx->has_commit_timestamp)
			{
				dms_message_format_timestamp(tx->commit_timestamp, ts);
				jw_lkey(w, "\"commit-timestamp\"");
				out_char(w->out, '"');
				out_str(w->out, ts);
				out_char(w->out, '"');
			}
			if (tx->stream_position != NULL)
			{
				jw_lkey(w, "\"stream-position\"");
				jw_string(w, tx->stream_position);
			}
		}
	}
	if (!control && ch->unchanged != NULL)
	{
		const MappingTablePlan *plan = mw->plan;
		bool		any = false;
		int			i;

		for (i = 0; i < plan->noutput; i++)
		{
			if (!ch->unchanged[plan->output[i].source])
				continue;
			if (!any)
			{
				jw_lkey(w, "\"unchanged-columns\"");
				jw_begin(w, '[');
				any = true;
			}
			jw_element(w);
			jw_string(w, plan->output[i].name);
		}
		if (any)
			jw_end(w, ']');
	}
	if (ch->event_id != NULL)
	{
		jw_lkey(w, "\"event-id\"");
		jw_string(w, ch->event_id);
	}
	if (!control && ch->transaction_last)
	{
		jw_lkey(w, "\"transaction-last\"");
		appendStringInfoString(w->out, "true");
	}
	jw_end(w, '}');
}

/*
 * dms_message_mark_last
 *		Add "transaction-last": true as the last metadata member of a data
 *		record built by dms_message_build (metadata is the record's last
 *		member, so the place is fixed from the end).
 */
void
dms_message_mark_last(StringInfo data, bool unformatted)
{
	static const char pretty_tail[] = "\n\t}\n}";
	static const char compact_tail[] = "}}\n";
	const char *tail = unformatted ? compact_tail : pretty_tail;
	const char *member = unformatted ? ",\"transaction-last\":true" :
		",\n\t\t\"transaction-last\": true";
	int			tlen = strlen(tail);
	int			mlen = strlen(member);
	int			at = data->len - tlen;

	if (at < 0 || memcmp(data->data + at, tail, tlen) != 0)
		elog(ERROR, "dms_message_mark_last: not a record built by dms_message_build");
	enlargeStringInfo(data, mlen);
	memmove(data->data + at + mlen, data->data + at, tlen + 1);
	memcpy(data->data + at, member, mlen);
	data->len += mlen;
}

/*
 * write_table_def
 *		{"table-def": {"columns": {...}, "primary-key": [...]}}
 */
static void
write_table_def(JsonWriter *w, const MappingTablePlan *plan)
{
	int			i;
	bool		any_pk = false;

	jw_begin(w, '{');
	jw_lkey(w, "\"table-def\"");
	jw_begin(w, '{');
	jw_lkey(w, "\"columns\"");
	jw_begin(w, '{');
	for (i = 0; i < plan->noutput; i++)
	{
		const MappingSourceColumn *sc = &plan->source[plan->output[i].source];

		jw_key_str(w, plan->output[i].name);
		jw_begin(w, '{');
		jw_lkey(w, "\"type\"");
		jw_string(w, dms_control_type_name(sc->type));
		if (sc->length > 0)
		{
			jw_lkey(w, "\"length\"");
			appendStringInfo(w->out, INT64_FORMAT, sc->length);
		}
		if (sc->type == DMS_TYPE_NUMERIC)
		{
			jw_lkey(w, "\"precision\"");
			appendStringInfo(w->out, "%d", sc->precision);
			jw_lkey(w, "\"scale\"");
			appendStringInfo(w->out, "%d", sc->scale);
		}
		jw_lkey(w, "\"nullable\"");
		out_str(w->out, sc->nullable ? "true" : "false");
		jw_end(w, '}');
		any_pk |= sc->is_pk;
	}
	jw_end(w, '}');
	if (any_pk)
	{
		jw_lkey(w, "\"primary-key\"");
		jw_begin(w, '[');
		for (i = 0; i < plan->noutput; i++)
			if (plan->source[plan->output[i].source].is_pk)
			{
				jw_element(w);
				jw_string(w, plan->output[i].name);
			}
		jw_end(w, ']');
	}
	jw_end(w, '}');
	jw_end(w, '}');
}

/*
 * dms_message_append_table_def
 *		The create-table control object, compact.
 */
void
dms_message_append_table_def(StringInfo out, const MappingTablePlan *plan)
{
	JsonWriter	w = {out, false, 0, false};

	write_table_def(&w, plan);
}

/*
 * dms_message_build
 *		The record for one change.
 */
bool
dms_message_build(DmsMessageWriter *mw, const DmsChange *ch, StringInfo data,
				  StringInfo key)
{
	const DmsMessageSettings *s = &mw->settings;
	JsonWriter	w;
	const char *pk_type;
	const char *pk_value = NULL;

	resetStringInfo(data);
	resetStringInfo(key);

	if (DMS_OPERATION_IS_CONTROL(ch->operation) && ch->operation != DMS_OP_CREATE_TABLE &&
		ch->operation != DMS_OP_TRUNCATE_TABLE && !s->include_table_alter_operations)
		return false;

	w.out = data;
	w.pretty = !s->unformatted;
	w.depth = 0;
	w.comma = false;

	jw_begin(&w, '{');
	if (DMS_OPERATION_IS_CONTROL(ch->operation))
	{
		const char *task_id = s->task_id ? s->task_id : "";

		appendStringInfo(key, "%s.%s", task_id, mw->schema_table);
		cut_key(key);
		pk_type = "task-id";
		if (s->include_partition_value)
			pk_value = task_id;
		if (s->include_control_details)
		{
			jw_lkey(&w, "\"control\"");
			if (ch->control != NULL)
				jw_json_t(&w, ch->control);
			else if (ch->operation == DMS_OP_CREATE_TABLE)
				write_table_def(&w, mw->plan);
			else
			{
				jw_begin(&w, '{');
				jw_end(&w, '}');
			}
		}
	}
	else
	{
		MappingPartitionKeyType type = partition_key(mw, ch, key);

		cut_key(key);
		pk_type = mapping_partition_key_type_name(type);
		if (s->include_partition_value && type != MAPPING_PKT_SCHEMA_TABLE)
			pk_value = key->data;

		jw_lkey(&w, "\"data\"");
		write_data(mw, &w, ch->values);

		if (ch->operation == DMS_OP_UPDATE && s->before_image && mw->before_key.text != NULL)
		{
			jw_key(&w, mw->before_key.text, mw->before_key.len);
			jw_begin(&w, '{');
			if (ch->before != NULL)
				write_columns(mw, &w, ch->before, true);
			jw_end(&w, '}');
		}
	}
	write_metadata(mw, &w, ch, pk_type, pk_value);
	jw_end(&w, '}');
	if (s->unformatted)
		out_char(data, '\n');
	return true;
}
