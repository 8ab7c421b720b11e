/*-------------------------------------------------------------------------
 *
 * mapping.c
 *	  Compile DMS table mappings and apply them to source tables and rows.
 *
 * mapping_compile() turns a validated {"rules": [...]} document into arrays
 * of rules per kind, sorted by rule-id, so that "the lowest rule-id wins" is
 * "the first match wins".  mapping_plan_table() then resolves everything
 * about one source table once: selection, names, columns, object mapping,
 * filters with their values already parsed for the column types.  Only
 * mapping_row_passes() runs per row; it allocates nothing.
 *
 * The rules decided for what DMS leaves open are listed in mapping.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"
#include "mapping.h"
#include "settings_spec.h"

/* Actions of transformation rules, in table_mapping.c's order. */
typedef enum TransformAction
{
	TA_RENAME,
	TA_REMOVE_COLUMN,
	TA_LOWERCASE,
	TA_UPPERCASE,
	TA_ADD_PREFIX,
	TA_REMOVE_PREFIX,
	TA_REPLACE_PREFIX,
	TA_ADD_SUFFIX,
	TA_REMOVE_SUFFIX,
	TA_REPLACE_SUFFIX
} TransformAction;

static const char *const transform_action_names[] = {
	"rename", "remove-column", "convert-lowercase", "convert-uppercase",
	"add-prefix", "remove-prefix", "replace-prefix",
	"add-suffix", "remove-suffix", "replace-suffix", NULL
};

typedef enum TransformTarget
{
	TT_SCHEMA,
	TT_TABLE,
	TT_COLUMN
} TransformTarget;

static const char *const transform_target_names[] = {"schema", "table", "column", NULL};

static const char *const filter_op_names[] = {
	"lte", "ste", "gte", "eq", "noteq", "between", "notbetween", "null", "notnull", NULL
};

static const char *const partition_key_type_names[] = {
	"schema-table", "transaction-id", "primary-key", "constant", "attribute-name", NULL
};

/* A filter condition as written in a selection rule. */
typedef struct RawCondition
{
	MappingFilterOp op;
	const char *op_name;
	const char *value;			/* value or start-value */
	const char *end;			/* end-value */
} RawCondition;

typedef struct RawFilter
{
	const char *column;
	int			nconditions;
	RawCondition *conditions;
} RawFilter;

typedef struct SelectionRule
{
	int64		id;
	const char *name;
	MappingSelectAction action;
	const char *schema;
	const char *table;
	int			table_type;		/* 0 table, 1 view, 2 all */
	int64		load_order;
	int			nfilters;
	RawFilter  *filters;
} SelectionRule;

typedef struct TransformRule
{
	int64		id;
	const char *name;
	TransformTarget target;
	TransformAction action;
	const char *schema;
	const char *table;			/* NULL: any */
	const char *column;			/* NULL: any */
	const char *data_type;		/* NULL: any */
	const char *value;
	const char *old_value;
} TransformRule;

typedef struct RawAttribute
{
	const char *name;
	bool		is_document;
	MappingAttributeSubType sub_type;
	json_t	   *value;
} RawAttribute;

typedef struct ObjectRule
{
	int64		id;
	const char *name;
	bool		to_document;
	const char *schema;
	const char *table;
	const char *target_table;
	MappingPartitionKeyType pk_type;
	const char *pk_name;
	const char *pk_constant;
	int			nexclude;
	const char **exclude;
	int			nattributes;
	RawAttribute *attributes;
} ObjectRule;

typedef struct TableSettingsRule
{
	int64		id;
	const char *schema;
	const char *table;
	const char *lob_mode;
} TableSettingsRule;

struct MappingSet
{
	int			nselection;
	SelectionRule *selection;
	int			ntransform;
	TransformRule *transform;
	int			nobject;
	ObjectRule *object;
	int			nsettings;
	TableSettingsRule *settings;
};

/* ----------------------------------------------------------------
 * Compiling
 * ----------------------------------------------------------------
 */

/*
 * str_member
 *		A string member of a validated rule, copied; NULL when absent.
 */
static const char *
str_member(const json_t *obj, const char *key)
{
	json_t	   *v = obj ? json_object_get(obj, key) : NULL;

	if (v == NULL || !json_is_string(v))
		return NULL;
	return pstrdup(json_string_value(v));
}

/*
 * enum_index
 *		Index of name in a NULL-terminated list, -1 if absent.
 */
static int
enum_index(const char *const *names, const char *name)
{
	int			i;

	if (name == NULL)
		return -1;
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/*
 * rule_name_of
 *		rule-name as text (validated: a string or an integer).
 */
static const char *
rule_name_of(const json_t *rule)
{
	json_t	   *name = json_object_get(rule, "rule-name");

	if (json_is_integer(name))
		return psprintf("%lld", (long long) json_integer_value(name));
	return pstrdup(json_string_value(name));
}

/*
 * compile_selection
 *		A selection rule with its filters.
 */
static void
compile_selection(const DmsJsonDoc *doc, json_t *rule, const char *path, SelectionRule *r)
{
	json_t	   *loc = json_object_get(rule, "object-locator");
	const char *action = json_string_value(json_object_get(rule, "rule-action"));
	const char *table_type = str_member(loc, "table-type");
	json_t	   *filters = json_object_get(rule, "filters");

	r->action = strcmp(action, "include") == 0 ? MAPPING_SELECT_INCLUDE :
		strcmp(action, "explicit") == 0 ? MAPPING_SELECT_EXPLICIT : MAPPING_SELECT_EXCLUDE;
	r->schema = str_member(loc, "schema-name");
	r->table = str_member(loc, "table-name");
	r->table_type = table_type == NULL ? 0 :
		strcmp(table_type, "view") == 0 ? 1 :
		strcmp(table_type, "all") == 0 ? 2 : 0;
	r->load_order = 0;
	dms_json_get_int(doc, rule, path, "load-order", false, PG_INT32_MIN, PG_INT32_MAX,
					 &r->load_order);

	if (filters != NULL && json_is_array(filters))
	{
		size_t		i,
					j;

		r->nfilters = json_array_size(filters);
		r->filters = palloc0(sizeof(RawFilter) * Max(r->nfilters, 1));
		for (i = 0; i < json_array_size(filters); i++)
		{
			json_t	   *f = json_array_get(filters, i);
			json_t	   *conds = json_object_get(f, "filter-conditions");
			RawFilter  *rf = &r->filters[i];

			rf->column = str_member(f, "column-name");
			rf->nconditions = json_array_size(conds);
			rf->conditions = palloc0(sizeof(RawCondition) * Max(rf->nconditions, 1));
			for (j = 0; j < json_array_size(conds); j++)
			{
				json_t	   *c = json_array_get(conds, j);
				RawCondition *rc = &rf->conditions[j];
				static const MappingFilterOp ops[] = {
					MAPPING_FILTER_LTE, MAPPING_FILTER_LTE, MAPPING_FILTER_GTE,
					MAPPING_FILTER_EQ, MAPPING_FILTER_NOTEQ, MAPPING_FILTER_BETWEEN,
					MAPPING_FILTER_NOTBETWEEN, MAPPING_FILTER_NULL, MAPPING_FILTER_NOTNULL
				};
				int			op;

				rc->op_name = str_member(c, "filter-operator");
				op = enum_index(filter_op_names, rc->op_name);
				if (op < 0)
					elog(ERROR, "unexpected filter-operator in a validated table mapping");
				rc->op = ops[op];
				rc->value = str_member(c, "value");
				if (rc->value == NULL)
					rc->value = str_member(c, "start-value");
				rc->end = str_member(c, "end-value");
			}
		}
	}
}

/*
 * compile_transformation
 *		A transformation rule (validated: supported action and target).
 */
static void
compile_transformation(json_t *rule, TransformRule *r)
{
	json_t	   *loc = json_object_get(rule, "object-locator");

	r->target = (TransformTarget) enum_index(transform_target_names,
											 json_string_value(json_object_get(rule, "rule-target")));
	r->action = (TransformAction) enum_index(transform_action_names,
											 json_string_value(json_object_get(rule, "rule-action")));
	r->schema = str_member(loc, "schema-name");
	r->table = str_member(loc, "table-name");
	r->column = str_member(loc, "column-name");
	r->data_type = str_member(loc, "data-type");
	r->value = str_member(rule, "value");
	r->old_value = str_member(rule, "old-value");
}

/*
 * compile_object_mapping
 *		An object-mapping rule and its mapping-parameters.
 */
static void
compile_object_mapping(json_t *rule, ObjectRule *r)
{
	json_t	   *loc = json_object_get(rule, "object-locator");
	json_t	   *params = json_object_get(rule, "mapping-parameters");
	const char *pkt;

	r->to_document = strcmp(json_string_value(json_object_get(rule, "rule-action")),
							"map-record-to-document") == 0;
	r->schema = str_member(loc, "schema-name");
	r->table = str_member(loc, "table-name");
	r->target_table = str_member(rule, "target-table-name");
	r->pk_type = MAPPING_PKT_DEFAULT;

	if (params == NULL || !json_is_object(params))
		return;

	pkt = json_string_value(json_object_get(params, "partition-key-type"));
	if (pkt != NULL)
		r->pk_type = (MappingPartitionKeyType) (enum_index(partition_key_type_names, pkt) + 1);
	r->pk_name = str_member(params, "partition-key-name");
	r->pk_constant = str_member(json_object_get(params, "partition-key"), "value");

	{
		json_t	   *excl = json_object_get(params, "exclude-columns");
		size_t		i;

		if (excl != NULL && json_is_array(excl))
		{
			r->nexclude = json_array_size(excl);
			r->exclude = palloc(sizeof(char *) * Max(r->nexclude, 1));
			for (i = 0; i < json_array_size(excl); i++)
				r->exclude[i] = pstrdup(json_string_value(json_array_get(excl, i)));
		}
	}

	{
		json_t	   *attrs = json_object_get(params, "attribute-mappings");
		size_t		i;

		if (attrs != NULL && json_is_array(attrs))
		{
			r->nattributes = json_array_size(attrs);
			r->attributes = palloc0(sizeof(RawAttribute) * Max(r->nattributes, 1));
			for (i = 0; i < json_array_size(attrs); i++)
			{
				json_t	   *a = json_array_get(attrs, i);
				RawAttribute *ra = &r->attributes[i];
				const char *sub = json_string_value(json_object_get(a, "attribute-sub-type"));

				ra->name = str_member(a, "target-attribute-name");
				if (ra->name == NULL)
					ra->name = str_member(a, "attribute-name");
				ra->is_document = strcmp(json_string_value(json_object_get(a, "attribute-type")),
										 "document") == 0;
				ra->sub_type = sub == NULL ? (ra->is_document ? MAPPING_SUBTYPE_JSON : MAPPING_SUBTYPE_STRING) :
					strcmp(sub, "number") == 0 ? MAPPING_SUBTYPE_NUMBER :
					strcmp(sub, "json") == 0 ? MAPPING_SUBTYPE_JSON : MAPPING_SUBTYPE_STRING;
				ra->value = json_object_get(a, "value");
			}
		}
	}
}

/*
 * cmp_selection / cmp_transform / cmp_object / cmp_settings
 *		qsort comparators of the rule arrays: by rule-id, ascending.
 */
#define DEFINE_ID_CMP(fn, type) \
static int \
fn(const void *a, const void *b) \
{ \
	int64		ia = ((const type *) a)->id; \
	int64		ib = ((const type *) b)->id; \
	return ia < ib ? -1 : ia > ib ? 1 : 0; \
}
DEFINE_ID_CMP(cmp_selection, SelectionRule)
DEFINE_ID_CMP(cmp_transform, TransformRule)
DEFINE_ID_CMP(cmp_object, ObjectRule)
DEFINE_ID_CMP(cmp_settings, TableSettingsRule)

/*
 * mapping_compile
 *		Validate a table-mapping document and compile it.
 */
MappingSet *
mapping_compile(Jsonb *mappings)
{
	DmsJsonDoc	doc = {"table mapping"};
	json_t	   *root;
	json_t	   *rules;
	MappingSet *set;
	size_t		n,
				i;

	table_mappings_validate(mappings);
	root = dms_json_from_jsonb(&doc, mappings);
	dms_json_strip_nulls(root);
	rules = json_object_get(root, "rules");
	n = json_array_size(rules);

	set = palloc0(sizeof(MappingSet));
	set->selection = palloc0(sizeof(SelectionRule) * n);
	set->transform = palloc0(sizeof(TransformRule) * n);
	set->object = palloc0(sizeof(ObjectRule) * n);
	set->settings = palloc0(sizeof(TableSettingsRule) * n);

	for (i = 0; i < n; i++)
	{
		json_t	   *rule = json_array_get(rules, i);
		char	   *path = dms_json_path_index("rules", i);
		const char *type = json_string_value(json_object_get(rule, "rule-type"));
		int64		id = 0;

		dms_json_get_int(&doc, rule, path, "rule-id", true, 1, PG_INT64_MAX, &id);

		if (strcmp(type, "selection") == 0)
		{
			SelectionRule *r = &set->selection[set->nselection++];

			r->id = id;
			r->name = rule_name_of(rule);
			compile_selection(&doc, rule, path, r);
		}
		else if (strcmp(type, "transformation") == 0)
		{
			TransformRule *r = &set->transform[set->ntransform++];

			r->id = id;
			r->name = rule_name_of(rule);
			compile_transformation(rule, r);
		}
		else if (strcmp(type, "object-mapping") == 0)
		{
			ObjectRule *r = &set->object[set->nobject++];

			r->id = id;
			r->name = rule_name_of(rule);
			compile_object_mapping(rule, r);
		}
		else if (strcmp(type, "table-settings") == 0)
		{
			TableSettingsRule *r = &set->settings[set->nsettings++];
			json_t	   *loc = json_object_get(rule, "object-locator");

			r->id = id;
			r->schema = str_member(loc, "schema-name");
			r->table = str_member(loc, "table-name");
			r->lob_mode = str_member(json_object_get(rule, "lob-settings"), "mode");
		}
	}

	qsort(set->selection, set->nselection, sizeof(SelectionRule), cmp_selection);
	qsort(set->transform, set->ntransform, sizeof(TransformRule), cmp_transform);
	qsort(set->object, set->nobject, sizeof(ObjectRule), cmp_object);
	qsort(set->settings, set->nsettings, sizeof(TableSettingsRule), cmp_settings);
	return set;
}

/* ----------------------------------------------------------------
 * Name patterns
 * ----------------------------------------------------------------
 */

/*
 * char_len
 *		Bytes of the UTF-8 character at s, never stepping over the NUL.
 */
static inline int
char_len(const char *s)
{
	int			n = 1;

	while (s[n] != '\0' && (((unsigned char) s[n]) & 0xC0) == 0x80 && n < 4)
		n++;
	return n;
}

/*
 * code_point
 *		The code point of the UTF-8 character of n bytes at s (bytes as
 *		they are when the sequence is not valid UTF-8).
 */
static uint32
code_point(const char *s, int n)
{
	const unsigned char *u = (const unsigned char *) s;

	if (n == 2 && (u[0] & 0xE0) == 0xC0)
		return ((u[0] & 0x1F) << 6) | (u[1] & 0x3F);
	if (n == 3 && (u[0] & 0xF0) == 0xE0)
		return ((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
	if (n == 4 && (u[0] & 0xF8) == 0xF0)
		return ((u[0] & 0x07) << 18) | ((u[1] & 0x3F) << 12) | ((u[2] & 0x3F) << 6) | (u[3] & 0x3F);
	return u[0];
}

/*
 * set_contains
 *		Whether the bracket expression between start and end (the text
 *		inside [ ]) holds code point c: single characters and ranges a-d.
 */
static bool
set_contains(const char *start, const char *end, uint32 c)
{
	const char *p = start;

	while (p < end)
	{
		int			n = char_len(p);
		uint32		lo = code_point(p, n);

		p += n;
		if (p + 1 < end && *p == '-')
		{
			int			m = char_len(p + 1);
			uint32		hi = code_point(p + 1, m);

			p += 1 + m;
			if (c >= lo && c <= hi)
				return true;
		}
		else if (c == lo)
			return true;
	}
	return false;
}

/*
 * pattern_match
 *		Match name s against DMS pattern p: % (any run), _ (one character),
 *		[set] and [a-z] (one character of the set), anything else literal.
 */
static bool
pattern_match(const char *p, const char *s)
{
	while (*p != '\0')
	{
		if (*p == '%')
		{
			while (*p == '%')
				p++;
			if (*p == '\0')
				return true;
			for (;;)
			{
				if (pattern_match(p, s))
					return true;
				if (*s == '\0')
					return false;
				s += char_len(s);
			}
		}
		if (*s == '\0')
			return false;
		if (*p == '_')
		{
			p++;
			s += char_len(s);
			continue;
		}
		if (*p == '[')
		{
			const char *close = strchr(p + 1, ']');

			if (close != NULL && close > p + 1)
			{
				int			n = char_len(s);

				if (!set_contains(p + 1, close, code_point(s, n)))
					return false;
				p = close + 1;
				s += n;
				continue;
			}
		}
		{
			int			n = char_len(p);

			if (strncmp(p, s, n) != 0)
				return false;
			p += n;
			s += n;
		}
	}
	return *s == '\0';
}

/* ----------------------------------------------------------------
 * Selection
 * ----------------------------------------------------------------
 */

/*
 * selection_rule_matches
 *		Whether a selection rule's locator matches schema.table.
 */
static bool
selection_rule_matches(const SelectionRule *r, const char *schema, const char *table,
					   bool is_view)
{
	if (r->table_type == 0 && is_view)
		return false;
	if (r->table_type == 1 && !is_view)
		return false;
	if (r->action == MAPPING_SELECT_EXPLICIT)
		return strcmp(r->schema, schema) == 0 && strcmp(r->table, table) == 0;
	return pattern_match(r->schema, schema) && pattern_match(r->table, table);
}

/*
 * mapping_select
 *		Include/explicit select, exclude wins; the reason in words.
 */
void
mapping_select(const MappingSet *set, const char *schema, const char *table, bool is_view,
			   MappingSelection *result)
{
	const SelectionRule *selecting = NULL;
	const SelectionRule *excluding = NULL;
	int64		load_order = PG_INT64_MIN;
	int			i;

	for (i = 0; i < set->nselection; i++)
	{
		const SelectionRule *r = &set->selection[i];

		if (!selection_rule_matches(r, schema, table, is_view))
			continue;
		if (r->action == MAPPING_SELECT_EXCLUDE)
		{
			if (excluding == NULL)
				excluding = r;
		}
		else
		{
			if (selecting == NULL)
				selecting = r;
			load_order = Max(load_order, r->load_order);
		}
	}

	memset(result, 0, sizeof(*result));
	if (excluding != NULL)
	{
		result->selected = false;
		result->action = MAPPING_SELECT_EXCLUDE;
		result->rule_id = excluding->id;
		result->rule_name = excluding->name;
		if (selecting != NULL)
			result->reason = psprintf("excluded by selection rule " INT64_FORMAT " (\"%s\"), which wins over %s rule " INT64_FORMAT,
									  excluding->id, excluding->name,
									  selecting->action == MAPPING_SELECT_EXPLICIT ? "explicit" : "include",
									  selecting->id);
		else
			result->reason = psprintf("excluded by selection rule " INT64_FORMAT " (\"%s\")",
									  excluding->id, excluding->name);
	}
	else if (selecting != NULL)
	{
		result->selected = true;
		result->action = selecting->action;
		result->rule_id = selecting->id;
		result->rule_name = selecting->name;
		result->load_order = load_order;
		result->reason = psprintf("%s by selection rule " INT64_FORMAT " (\"%s\")",
								  selecting->action == MAPPING_SELECT_EXPLICIT ? "selected explicitly" : "included",
								  selecting->id, selecting->name);
	}
	else
	{
		result->selected = false;
		result->action = MAPPING_SELECT_NONE;
		result->reason = psprintf("no selection rule matches %s \"%s\".\"%s\"",
								  is_view ? "view" : "table", schema, table);
	}
}

/*
 * mapping_table_selected
 *		Whether the table schema.table is replicated.
 */
bool
mapping_table_selected(const MappingSet *set, const char *schema, const char *table)
{
	MappingSelection sel;

	mapping_select(set, schema, table, false, &sel);
	return sel.selected;
}

/* ----------------------------------------------------------------
 * Transformations
 * ----------------------------------------------------------------
 */

/*
 * ascii_case
 *		A copy of name with ASCII letters in lower or upper case.
 */
static char *
ascii_case(const char *name, bool upper)
{
	char	   *s = pstrdup(name);
	char	   *p;

	for (p = s; *p; p++)
	{
		if (upper && *p >= 'a' && *p <= 'z')
			*p -= 'a' - 'A';
		else if (!upper && *p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	}
	return s;
}

/*
 * has_prefix / has_suffix
 *		Whether name starts with prefix / ends with suffix.
 */
static bool
has_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

static bool
has_suffix(const char *name, const char *suffix)
{
	size_t		n = strlen(name);
	size_t		m = strlen(suffix);

	return n >= m && strcmp(name + n - m, suffix) == 0;
}

/*
 * apply_action
 *		The name a transformation gives name; NULL for remove-column.
 */
static char *
apply_action(const TransformRule *r, const char *name)
{
	size_t		n = strlen(name);

	switch (r->action)
	{
		case TA_RENAME:
			return pstrdup(r->value);
		case TA_REMOVE_COLUMN:
			return NULL;
		case TA_LOWERCASE:
			return ascii_case(name, false);
		case TA_UPPERCASE:
			return ascii_case(name, true);
		case TA_ADD_PREFIX:
			return psprintf("%s%s", r->value, name);
		case TA_REMOVE_PREFIX:
			if (has_prefix(name, r->value))
				return pstrdup(name + strlen(r->value));
			return pstrdup(name);
		case TA_REPLACE_PREFIX:
			if (has_prefix(name, r->old_value))
				return psprintf("%s%s", r->value, name + strlen(r->old_value));
			return pstrdup(name);
		case TA_ADD_SUFFIX:
			return psprintf("%s%s", name, r->value);
		case TA_REMOVE_SUFFIX:
			if (has_suffix(name, r->value))
				return pnstrdup(name, n - strlen(r->value));
			return pstrdup(name);
		case TA_REPLACE_SUFFIX:
			if (has_suffix(name, r->old_value))
				return psprintf("%.*s%s", (int) (n - strlen(r->old_value)), name, r->value);
			return pstrdup(name);
	}
	return pstrdup(name);
}

/*
 * transform_matches
 *		Whether a transformation rule applies to the object: its target and
 *		the locator's schema, table, column (and column data-type).
 */
static bool
transform_matches(const TransformRule *r, TransformTarget target, const char *schema,
				  const char *table, const MappingSourceColumn *col)
{
	if (r->target != target)
		return false;
	if (!pattern_match(r->schema, schema))
		return false;
	if (target >= TT_TABLE || r->table != NULL)
		if (r->table == NULL || !pattern_match(r->table, table))
			return false;
	if (target == TT_COLUMN)
	{
		if (r->column == NULL || !pattern_match(r->column, col->name))
			return false;
		if (r->data_type != NULL &&
			pg_strcasecmp(r->data_type, dms_column_type_name(col->type)) != 0)
			return false;
	}
	return true;
}

/*
 * first_transform
 *		The lowest-id transformation rule for an object, or NULL.
 */
static const TransformRule *
first_transform(const MappingSet *set, TransformTarget target, const char *schema,
				const char *table, const MappingSourceColumn *col)
{
	int			i;

	for (i = 0; i < set->ntransform; i++)
		if (transform_matches(&set->transform[i], target, schema, table, col))
			return &set->transform[i];
	return NULL;
}

/* ----------------------------------------------------------------
 * Filter values
 * ----------------------------------------------------------------
 */

/*
 * mapping_compare_kind
 *		How values of a DMS type compare in filters.
 */
MappingCompareKind
mapping_compare_kind(DmsColumnType type)
{
	switch (type)
	{
		case DMS_TYPE_INT1:
		case DMS_TYPE_INT2:
		case DMS_TYPE_INT4:
		case DMS_TYPE_INT8:
		case DMS_TYPE_UINT1:
		case DMS_TYPE_UINT2:
		case DMS_TYPE_UINT4:
		case DMS_TYPE_UINT8:
		case DMS_TYPE_NUMERIC:
		case DMS_TYPE_REAL4:
		case DMS_TYPE_REAL8:
			return MAPPING_COMPARE_NUMBER;
		case DMS_TYPE_DATE:
		case DMS_TYPE_DATETIME:
			return MAPPING_COMPARE_TIMESTAMP;
		case DMS_TYPE_TIME:
			return MAPPING_COMPARE_TIME;
		case DMS_TYPE_BOOLEAN:
			return MAPPING_COMPARE_BOOLEAN;
		default:
			return MAPPING_COMPARE_STRING;
	}
}

/*
 * mapping_compare_kind_name
 *		"number", "timestamp", "time", "boolean", "string".
 */
const char *
mapping_compare_kind_name(MappingCompareKind kind)
{
	static const char *const names[] = {"number", "timestamp", "time", "boolean", "string"};

	return names[kind];
}

/*
 * parse_number
 *		Parse a decimal number ([sign] digits [. digits] [e [sign] digits],
 *		digits on at least one side of the point) of len bytes into num.
 */
static bool
parse_number(const char *s, int len, MappingNumber *num)
{
	const char *p = s;
	const char *end = s + len;
	int			sign = 1;
	int			int_digits = 0;
	bool		any = false;
	bool		leading = true;
	int64		exponent = 0;

	num->ndigits = 0;
	if (p < end && (*p == '-' || *p == '+'))
		sign = (*p++ == '-') ? -1 : 1;

	/* integer part */
	for (; p < end && *p >= '0' && *p <= '9'; p++)
	{
		any = true;
		if (leading && *p == '0')
			continue;
		leading = false;
		int_digits++;
		if (num->ndigits < MAPPING_MAX_DIGITS)
			num->digits[num->ndigits++] = *p;
	}
	/* fraction */
	if (p < end && *p == '.')
	{
		p++;
		for (; p < end && *p >= '0' && *p <= '9'; p++)
		{
			any = true;
			if (leading && *p == '0')
			{
				int_digits--;	/* 0.00x: exponent goes down */
				continue;
			}
			leading = false;
			if (num->ndigits < MAPPING_MAX_DIGITS)
				num->digits[num->ndigits++] = *p;
		}
	}
	if (!any)
		return false;
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		int			esign = 1;
		bool		edigits = false;

		p++;
		if (p < end && (*p == '-' || *p == '+'))
			esign = (*p++ == '-') ? -1 : 1;
		for (; p < end && *p >= '0' && *p <= '9'; p++)
		{
			edigits = true;
			if (exponent < 100000000)
				exponent = exponent * 10 + (*p - '0');
		}
		if (!edigits)
			return false;
		exponent *= esign;
	}
	if (p != end)
		return false;

	while (num->ndigits > 0 && num->digits[num->ndigits - 1] == '0')
		num->ndigits--;
	if (num->ndigits == 0)
	{
		num->sign = 0;
		num->exponent = 0;
		return true;
	}
	num->sign = sign;
	num->exponent = (int) Max(Min(int_digits + exponent, PG_INT32_MAX / 2), PG_INT32_MIN / 2);
	return true;
}

/*
 * compare_numbers
 *		-1, 0 or 1 as a is less than, equal to or greater than b.
 */
static int
compare_numbers(const MappingNumber *a, const MappingNumber *b)
{
	int			c;
	int			n;

	if (a->sign != b->sign)
		return a->sign < b->sign ? -1 : 1;
	if (a->sign == 0)
		return 0;
	if (a->exponent != b->exponent)
		c = a->exponent < b->exponent ? -1 : 1;
	else
	{
		n = Min(a->ndigits, b->ndigits);
		c = memcmp(a->digits, b->digits, n);
		if (c == 0)
			c = a->ndigits == b->ndigits ? 0 : (a->ndigits < b->ndigits ? -1 : 1);
		else
			c = c < 0 ? -1 : 1;
	}
	return a->sign < 0 ? -c : c;
}

/*
 * digits_at
 *		Read exactly n digits at *p (within end) into *value.
 */
static bool
digits_at(const char **p, const char *end, int n, int *value)
{
	int			v = 0;
	int			i;

	if (end - *p < n)
		return false;
	for (i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*value = v;
	return true;
}

/*
 * parse_time_of_day
 *		HH:MM:SS[.fraction] at *p into out ("HH:MM:SS.fffffffff", 18 bytes).
 */
static bool
parse_time_of_day(const char **p, const char *end, char *out)
{
	int			h,
				m,
				s;
	int			nfrac = 0;
	char		frac[10] = "000000000";

	if (!digits_at(p, end, 2, &h) || *p >= end || **p != ':' ||
		(++(*p), !digits_at(p, end, 2, &m)) || *p >= end || **p != ':' ||
		(++(*p), !digits_at(p, end, 2, &s)))
		return false;
	if (h > 23 || m > 59 || s > 60)
		return false;
	if (*p < end && **p == '.')
	{
		(*p)++;
		while (*p < end && **p >= '0' && **p <= '9')
		{
			if (nfrac < 9)
				frac[nfrac] = **p;
			nfrac++;
			(*p)++;
		}
		if (nfrac == 0)
			return false;
	}
	snprintf(out, 19, "%02d:%02d:%02d.%s", h, m, s, frac);
	return true;
}

/*
 * parse_timestamp
 *		Normalise a date or date-time (YYYY-MM-DD[( |T)HH:MM:SS[.f]][Z])
 *		into "YYYY-MM-DD HH:MM:SS.fffffffff"; with time_only, the time of
 *		day of either a time (HH:MM:SS[.f]) or a date-time.
 */
static bool
parse_timestamp(const char *s, int len, bool time_only, char *out)
{
	const char *p = s;
	const char *end = s + len;
	int			y,
				mo,
				d;
	char		tod[20] = "00:00:00.000000000";
	static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	while (p < end && *p == ' ')
		p++;
	while (end > p && end[-1] == ' ')
		end--;
	if (end > p && end[-1] == 'Z')
		end--;

	if (time_only && end - p >= 3 && p[2] == ':')
	{
		if (!parse_time_of_day(&p, end, tod) || p != end)
			return false;
		memcpy(out, tod, 19);
		return true;
	}

	if (!digits_at(&p, end, 4, &y) || p >= end || *p != '-' ||
		(++p, !digits_at(&p, end, 2, &mo)) || p >= end || *p != '-' ||
		(++p, !digits_at(&p, end, 2, &d)))
		return false;
	if (mo < 1 || mo > 12 || d < 1 ||
		d > month_days[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return false;
	if (p < end)
	{
		if (*p != ' ' && *p != 'T')
			return false;
		p++;
		if (!parse_time_of_day(&p, end, tod) || p != end)
			return false;
	}
	if (time_only)
		memcpy(out, tod, 19);
	else
		snprintf(out, MAPPING_TIME_KEY_SIZE, "%04d-%02d-%02d %s", y, mo, d, tod);
	return true;
}

/*
 * parse_boolean
 *		true/false, t/f, 1/0, yes/no, y/n, on/off in any case.
 */
static bool
parse_boolean(const char *s, int len, bool *b)
{
	static const char *const yes[] = {"true", "t", "1", "yes", "y", "on", NULL};
	static const char *const no[] = {"false", "f", "0", "no", "n", "off", NULL};
	int			i;

	for (i = 0; yes[i] != NULL; i++)
		if ((int) strlen(yes[i]) == len && pg_strncasecmp(s, yes[i], len) == 0)
		{
			*b = true;
			return true;
		}
	for (i = 0; no[i] != NULL; i++)
		if ((int) strlen(no[i]) == len && pg_strncasecmp(s, no[i], len) == 0)
		{
			*b = false;
			return true;
		}
	return false;
}

/*
 * compare_kind_expects
 *		What a filter value of a kind looks like, for error messages.
 */
static const char *
compare_kind_expects(MappingCompareKind kind)
{
	switch (kind)
	{
		case MAPPING_COMPARE_NUMBER:
			return "a number";
		case MAPPING_COMPARE_TIMESTAMP:
			return "a date (YYYY-MM-DD) or date and time (YYYY-MM-DD HH:MM:SS)";
		case MAPPING_COMPARE_TIME:
			return "a time (HH:MM:SS)";
		case MAPPING_COMPARE_BOOLEAN:
			return "a boolean";
		default:
			return "a string";
	}
}

/*
 * prepare_filter_value
 *		Parse a filter value for comparisons of kind; false if it is not a
 *		value of that kind.
 */
static bool
prepare_filter_value(const char *text, MappingCompareKind kind, MappingFilterValue *fv)
{
	int			len = strlen(text);
	const char *s = text;

	fv->text = text;
	while (len > 0 && *s == ' ')
		s++, len--;
	while (len > 0 && s[len - 1] == ' ')
		len--;
	switch (kind)
	{
		case MAPPING_COMPARE_NUMBER:
			return parse_number(s, len, &fv->number);
		case MAPPING_COMPARE_TIMESTAMP:
			return parse_timestamp(s, len, false, fv->time);
		case MAPPING_COMPARE_TIME:
			return parse_timestamp(s, len, true, fv->time);
		case MAPPING_COMPARE_BOOLEAN:
			return parse_boolean(s, len, &fv->boolean);
		case MAPPING_COMPARE_STRING:
			return true;
	}
	return false;
}

/* ----------------------------------------------------------------
 * JSON value text
 * ----------------------------------------------------------------
 */

/*
 * hex4
 *		Four hex digits at s (before end); -1 if they are not.
 */
static int
hex4(const char *s, const char *end)
{
	return end - s < 4 ? -1 : dms_json_hex4(s);
}

/*
 * next_json_char
 *		Decode the next character of the inside of a JSON string at *p
 *		(before end) into buf as UTF-8; returns its byte count (0 at the
 *		end).  Invalid escapes are taken literally.
 */
static int
next_json_char(const char **p, const char *end, char *buf)
{
	const char *s = *p;
	uint32		cp;

	if (s >= end)
		return 0;
	if (*s != '\\' || s + 1 >= end)
	{
		*buf = *s;
		*p = s + 1;
		return 1;
	}
	switch (s[1])
	{
		case 'b':
			*buf = '\b';
			break;
		case 'f':
			*buf = '\f';
			break;
		case 'n':
			*buf = '\n';
			break;
		case 'r':
			*buf = '\r';
			break;
		case 't':
			*buf = '\t';
			break;
		case 'u':
			{
				int			hi = hex4(s + 2, end);

				if (hi < 0)
				{
					*buf = 'u';
					break;
				}
				cp = hi;
				*p = s + 6;
				if (hi >= 0xD800 && hi <= 0xDBFF && end - *p >= 6 && (*p)[0] == '\\' && (*p)[1] == 'u')
				{
					int			lo = hex4(*p + 2, end);

					if (lo >= 0xDC00 && lo <= 0xDFFF)
					{
						cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
						*p += 6;
					}
				}
				if (cp < 0x80)
				{
					buf[0] = cp;
					return 1;
				}
				if (cp < 0x800)
				{
					buf[0] = 0xC0 | (cp >> 6);
					buf[1] = 0x80 | (cp & 0x3F);
					return 2;
				}
				if (cp < 0x10000)
				{
					buf[0] = 0xE0 | (cp >> 12);
					buf[1] = 0x80 | ((cp >> 6) & 0x3F);
					buf[2] = 0x80 | (cp & 0x3F);
					return 3;
				}
				buf[0] = 0xF0 | (cp >> 18);
				buf[1] = 0x80 | ((cp >> 12) & 0x3F);
				buf[2] = 0x80 | ((cp >> 6) & 0x3F);
				buf[3] = 0x80 | (cp & 0x3F);
				return 4;
			}
		default:
			*buf = s[1];		/* \" \\ \/ */
			break;
	}
	*p = s + 2;
	return 1;
}

/*
 * value_is_string
 *		Whether a value's JSON text is a string.
 */
static inline bool
value_is_string(const DmsColumnValue *v)
{
	return v->len >= 2 && v->json[0] == '"';
}

/*
 * mapping_append_value_text
 *		Append the text of a value: a JSON string unescaped, other JSON as
 *		written, NULL (or a missing value) as nothing.
 */
void
mapping_append_value_text(StringInfo out, const DmsColumnValue *value)
{
	const char *p;
	const char *end;
	char		buf[4];
	int			n;

	if (value->is_null || value->is_missing || value->json == NULL)
		return;
	if (!value_is_string(value))
	{
		appendBinaryStringInfo(out, value->json, value->len);
		return;
	}
	p = value->json + 1;
	end = value->json + value->len - 1;
	/* the common case: nothing escaped */
	if (memchr(p, '\\', end - p) == NULL)
	{
		appendBinaryStringInfo(out, p, end - p);
		return;
	}
	while ((n = next_json_char(&p, end, buf)) > 0)
		appendBinaryStringInfo(out, buf, n);
}

/*
 * value_text_small
 *		A value's text into buf (size bytes); false if longer.
 */
static bool
value_text_small(const DmsColumnValue *value, char *buf, int size, int *len)
{
	const char *p;
	const char *end;
	char		c[4];
	int			n;

	*len = 0;
	if (!value_is_string(value))
	{
		if (value->len >= size)
			return false;
		memcpy(buf, value->json, value->len);
		*len = value->len;
		return true;
	}
	p = value->json + 1;
	end = value->json + value->len - 1;
	while ((n = next_json_char(&p, end, c)) > 0)
	{
		if (*len + n >= size)
			return false;
		memcpy(buf + *len, c, n);
		*len += n;
	}
	return true;
}

/*
 * compare_value_text
 *		Compare a value's text with text, byte by byte, without copying.
 */
static int
compare_value_text(const DmsColumnValue *value, const char *text)
{
	const unsigned char *t = (const unsigned char *) text;

	if (!value_is_string(value))
	{
		size_t		tlen = strlen(text);
		int			c = memcmp(value->json, text, Min((size_t) value->len, tlen));

		if (c != 0)
			return c < 0 ? -1 : 1;
		return (size_t) value->len == tlen ? 0 : ((size_t) value->len < tlen ? -1 : 1);
	}
	else
	{
		const char *p = value->json + 1;
		const char *end = value->json + value->len - 1;
		char		buf[4];
		int			n;
		int			i;

		while ((n = next_json_char(&p, end, buf)) > 0)
		{
			for (i = 0; i < n; i++, t++)
			{
				if (*t == '\0')
					return 1;
				if ((unsigned char) buf[i] != *t)
					return (unsigned char) buf[i] < *t ? -1 : 1;
			}
		}
		return *t == '\0' ? 0 : -1;
	}
}

/* ----------------------------------------------------------------
 * Row filters
 * ----------------------------------------------------------------
 */

/* A row value converted for comparisons of one kind. */
typedef struct ConvertedValue
{
	MappingNumber number;
	char		time[MAPPING_TIME_KEY_SIZE];
	bool		boolean;
} ConvertedValue;

/*
 * convert_value
 *		Convert a value for comparisons of kind; false if it is not a value
 *		of that kind (no comparison then holds).
 */
static bool
convert_value(const DmsColumnValue *value, MappingCompareKind kind, ConvertedValue *cv)
{
	char		buf[MAPPING_MAX_DIGITS + 48];
	int			len;

	if (kind == MAPPING_COMPARE_STRING)
		return true;
	if (!value_text_small(value, buf, sizeof(buf), &len))
		return false;
	switch (kind)
	{
		case MAPPING_COMPARE_NUMBER:
			return parse_number(buf, len, &cv->number);
		case MAPPING_COMPARE_TIMESTAMP:
			return parse_timestamp(buf, len, false, cv->time);
		case MAPPING_COMPARE_TIME:
			return parse_timestamp(buf, len, true, cv->time);
		case MAPPING_COMPARE_BOOLEAN:
			return parse_boolean(buf, len, &cv->boolean);
		default:
			return true;
	}
}

/*
 * compare_converted
 *		Compare a converted value with a filter value.
 */
static int
compare_converted(const DmsColumnValue *value, const ConvertedValue *cv,
				  MappingCompareKind kind, const MappingFilterValue *fv)
{
	int			c;

	switch (kind)
	{
		case MAPPING_COMPARE_NUMBER:
			return compare_numbers(&cv->number, &fv->number);
		case MAPPING_COMPARE_TIMESTAMP:
		case MAPPING_COMPARE_TIME:
			c = strcmp(cv->time, fv->time);
			return c < 0 ? -1 : c > 0 ? 1 : 0;
		case MAPPING_COMPARE_BOOLEAN:
			return (int) cv->boolean - (int) fv->boolean;
		case MAPPING_COMPARE_STRING:
			return compare_value_text(value, fv->text);
	}
	return 0;
}

/*
 * mapping_condition_holds
 *		One filter condition on one value.
 */
bool
mapping_condition_holds(const MappingCondition *cond, MappingCompareKind kind,
						const DmsColumnValue *value)
{
	bool		isnull = value->is_null || value->is_missing || value->json == NULL;
	ConvertedValue cv;
	int			c1,
				c2;

	if (cond->op == MAPPING_FILTER_NULL)
		return isnull;
	if (cond->op == MAPPING_FILTER_NOTNULL)
		return !isnull;
	if (isnull || !convert_value(value, kind, &cv))
		return false;

	c1 = compare_converted(value, &cv, kind, &cond->value);
	switch (cond->op)
	{
		case MAPPING_FILTER_LTE:
			return c1 <= 0;
		case MAPPING_FILTER_GTE:
			return c1 >= 0;
		case MAPPING_FILTER_EQ:
			return c1 == 0;
		case MAPPING_FILTER_NOTEQ:
			return c1 != 0;
		case MAPPING_FILTER_BETWEEN:
		case MAPPING_FILTER_NOTBETWEEN:
			c2 = compare_converted(value, &cv, kind, &cond->end);
			return (c1 >= 0 && c2 <= 0) == (cond->op == MAPPING_FILTER_BETWEEN);
		default:
			return false;
	}
}

/*
 * mapping_row_passes
 *		Whether any filter set accepts the row (every filter of the set has
 *		a condition that holds).
 */
bool
mapping_row_passes(const MappingTablePlan *plan, const DmsColumnValue *values)
{
	int			s,
				f,
				c;

	if (plan->nfiltersets == 0)
		return true;
	for (s = 0; s < plan->nfiltersets; s++)
	{
		const MappingFilterSet *set = &plan->filtersets[s];
		bool		all = true;

		for (f = 0; f < set->nfilters && all; f++)
		{
			const MappingFilter *filter = &set->filters[f];
			bool		any = false;

			for (c = 0; c < filter->nconditions && !any; c++)
				any = mapping_condition_holds(&filter->conditions[c], filter->kind,
											  &values[filter->column]);
			all = any;
		}
		if (all)
			return true;
	}
	return false;
}

/* ----------------------------------------------------------------
 * Plans
 * ----------------------------------------------------------------
 */

/*
 * plan_warning / plan_error
 *		Record a problem; the first error is kept.
 */
static void
plan_warning(MappingTablePlan *plan, const char *fmt,...) pg_attribute_printf(2, 3);
static void
plan_error(MappingTablePlan *plan, const char *fmt,...) pg_attribute_printf(2, 3);

static void
plan_warning(MappingTablePlan *plan, const char *fmt,...)
{
	StringInfoData s;
	va_list		args;
	int			needed;

	initStringInfo(&s);
	for (;;)
	{
		va_start(args, fmt);
		needed = appendStringInfoVA(&s, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&s, needed);
	}
	plan->warnings = lappend(plan->warnings, s.data);
}

static void
plan_error(MappingTablePlan *plan, const char *fmt,...)
{
	StringInfoData s;
	va_list		args;
	int			needed;

	if (plan->error != NULL)
		return;
	initStringInfo(&s);
	for (;;)
	{
		va_start(args, fmt);
		needed = appendStringInfoVA(&s, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&s, needed);
	}
	plan->error = s.data;
}

/*
 * lookup_column
 *		Source ordinal of a column named in an object mapping: source names,
 *		then target names, exactly, then ignoring ASCII case; -1 if none.
 */
static int
lookup_column(const MappingTablePlan *plan, const char *name)
{
	int			pass,
				i;

	for (pass = 0; pass < 4; pass++)
		for (i = 0; i < plan->nsource; i++)
		{
			const char *cand = (pass % 2 == 0) ? plan->source[i].name : plan->fates[i].target;

			if (cand == NULL)
				continue;
			if (pass < 2 ? strcmp(cand, name) == 0 : pg_strcasecmp(cand, name) == 0)
				return i;
		}
	return -1;
}

/*
 * compile_template
 *		Split a ${column} template into literal and column parts.
 */
static void
compile_template(MappingTablePlan *plan, const char *text, const char *attr, MappingTemplate *t)
{
	const char *p = text;
	int			cap = 4;

	t->source = text;
	t->nparts = 0;
	t->parts = palloc(sizeof(MappingTemplatePart) * cap);
	while (*p != '\0')
	{
		const char *open = strstr(p, "${");
		const char *close = open ? strchr(open + 2, '}') : NULL;
		MappingTemplatePart *part;

		if (t->nparts + 2 > cap)
		{
			cap *= 2;
			t->parts = repalloc(t->parts, sizeof(MappingTemplatePart) * cap);
		}
		if (open == NULL || close == NULL)
		{
			part = &t->parts[t->nparts++];
			part->text = p;
			part->len = strlen(p);
			part->column = -1;
			break;
		}
		if (open > p)
		{
			part = &t->parts[t->nparts++];
			part->text = p;
			part->len = open - p;
			part->column = -1;
		}
		{
			char	   *name = pnstrdup(open + 2, close - open - 2);
			int			col = lookup_column(plan, name);

			if (col < 0)
				plan_warning(plan, "attribute \"%s\" of object-mapping rule " INT64_FORMAT " refers to ${%s}, which is not a column of the table; it is replaced by nothing",
							 attr, plan->object_rule_id, name);
			else
			{
				part = &t->parts[t->nparts++];
				part->text = NULL;
				part->len = 0;
				part->column = col;
			}
		}
		p = close + 1;
	}
}

/*
 * compile_doc_node
 *		A document attribute value: an object of templates (nested).
 */
static void
compile_doc_node(MappingTablePlan *plan, json_t *value, const char *key, const char *attr,
				 MappingDocNode *node)
{
	node->key = key;
	if (json_is_object(value))
	{
		const char *k;
		json_t	   *member;
		int			i = 0;

		node->is_object = true;
		node->nmembers = json_object_size(value);
		node->members = palloc0(sizeof(MappingDocNode) * Max(node->nmembers, 1));
		json_object_foreach(value, k, member)
			compile_doc_node(plan, member, pstrdup(k), attr, &node->members[i++]);
	}
	else
	{
		node->is_object = false;
		compile_template(plan, pstrdup(json_string_value(value)), attr, &node->value);
	}
}

/*
 * plan_object_mapping
 *		Exclusions, attributes and the partition key of the object mapping.
 */
static void
plan_object_mapping(MappingTablePlan *plan, const ObjectRule *om)
{
	int			i;

	plan->object_rule_id = om->id;
	plan->object_rule_name = om->name;
	plan->to_document = om->to_document;
	plan->pk_type = om->pk_type;
	plan->pk_name = om->pk_name;
	plan->pk_constant = om->pk_constant;

	for (i = 0; i < om->nexclude; i++)
	{
		int			col = lookup_column(plan, om->exclude[i]);

		if (col < 0)
			plan_warning(plan, "exclude-columns of object-mapping rule " INT64_FORMAT " names \"%s\", which is not a column of the table",
						 om->id, om->exclude[i]);
		else if (plan->fates[col].target != NULL)
		{
			plan->fates[col].target = NULL;
			plan->fates[col].rule_id = om->id;
			plan->fates[col].action = "exclude-columns";
		}
	}

	plan->nattributes = om->nattributes;
	plan->attributes = palloc0(sizeof(MappingAttribute) * Max(om->nattributes, 1));
	for (i = 0; i < om->nattributes; i++)
	{
		const RawAttribute *ra = &om->attributes[i];
		MappingAttribute *a = &plan->attributes[i];
		int			j;

		a->name = ra->name;
		a->is_document = ra->is_document;
		a->sub_type = ra->sub_type;
		if (ra->is_document)
			compile_doc_node(plan, ra->value, NULL, ra->name, &a->doc);
		else
			compile_template(plan, pstrdup(json_string_value(ra->value)), ra->name, &a->scalar);
		for (j = 0; j < i; j++)
			if (strcmp(plan->attributes[j].name, a->name) == 0)
				plan_error(plan, "object-mapping rule " INT64_FORMAT " maps two attributes named \"%s\"",
						   om->id, a->name);
	}

	plan->pk_attribute = -1;
	plan->pk_column = -1;
	if (om->pk_type == MAPPING_PKT_ATTRIBUTE_NAME && om->pk_name != NULL)
	{
		for (i = 0; i < plan->nattributes; i++)
			if (strcmp(plan->attributes[i].name, om->pk_name) == 0)
			{
				plan->pk_attribute = i;
				break;
			}
		if (plan->pk_attribute < 0)
		{
			plan->pk_column = lookup_column(plan, om->pk_name);
			if (plan->pk_column < 0)
				plan_warning(plan, "partition-key-name \"%s\" of object-mapping rule " INT64_FORMAT " is neither a mapped attribute nor a column; records are keyed by schema and table",
							 om->pk_name, om->id);
		}
	}
}

/*
 * plan_filters
 *		The filter sets of the include rules matching the table, with their
 *		values parsed for the columns' types.
 */
static void
plan_filters(const MappingSet *set, MappingTablePlan *plan, bool is_view)
{
	int			i,
				f,
				c,
				n = 0;

	if (!plan->selection.selected)
		return;

	/* a matching selecting rule without filters lets every row through */
	for (i = 0; i < set->nselection; i++)
	{
		const SelectionRule *r = &set->selection[i];

		if (r->action == MAPPING_SELECT_EXCLUDE ||
			!selection_rule_matches(r, plan->source_schema, plan->source_table, is_view))
			continue;
		if (r->nfilters == 0)
			return;
		n++;
	}

	plan->filtersets = palloc0(sizeof(MappingFilterSet) * Max(n, 1));
	for (i = 0; i < set->nselection; i++)
	{
		const SelectionRule *r = &set->selection[i];
		MappingFilterSet *fs;

		if (r->action == MAPPING_SELECT_EXCLUDE ||
			!selection_rule_matches(r, plan->source_schema, plan->source_table, is_view))
			continue;
		fs = &plan->filtersets[plan->nfiltersets++];
		fs->rule_id = r->id;
		fs->nfilters = r->nfilters;
		fs->filters = palloc0(sizeof(MappingFilter) * r->nfilters);
		for (f = 0; f < r->nfilters; f++)
		{
			const RawFilter *rf = &r->filters[f];
			MappingFilter *mf = &fs->filters[f];
			int			col = -1;

			for (c = 0; c < plan->nsource; c++)
				if (strcmp(plan->source[c].name, rf->column) == 0)
				{
					col = c;
					break;
				}
			mf->column_name = rf->column;
			if (col < 0)
			{
				plan_error(plan, "selection rule " INT64_FORMAT " filters on column \"%s\", which table \"%s\".\"%s\" does not have",
						   r->id, rf->column, plan->source_schema, plan->source_table);
				mf->column = 0;
				mf->kind = MAPPING_COMPARE_STRING;
				mf->nconditions = 0;
				continue;
			}
			mf->column = col;
			mf->kind = mapping_compare_kind(plan->source[col].type);
			if (plan->source[col].type == DMS_TYPE_BLOB || plan->source[col].type == DMS_TYPE_CLOB)
				plan_warning(plan, "selection rule " INT64_FORMAT " filters on LOB column \"%s\"; DMS advises against filtering LOB columns",
							 r->id, rf->column);
			mf->nconditions = rf->nconditions;
			mf->conditions = palloc0(sizeof(MappingCondition) * Max(rf->nconditions, 1));
			for (c = 0; c < rf->nconditions; c++)
			{
				const RawCondition *rc = &rf->conditions[c];
				MappingCondition *mc = &mf->conditions[c];

				mc->op = rc->op;
				mc->op_name = rc->op_name;
				if (rc->value != NULL && !prepare_filter_value(rc->value, mf->kind, &mc->value))
					plan_error(plan, "selection rule " INT64_FORMAT " compares column \"%s\" (%s) with \"%s\", which is not %s",
							   r->id, rf->column, dms_column_type_name(plan->source[col].type),
							   rc->value, compare_kind_expects(mf->kind));
				if (rc->end != NULL && !prepare_filter_value(rc->end, mf->kind, &mc->end))
					plan_error(plan, "selection rule " INT64_FORMAT " compares column \"%s\" (%s) with \"%s\", which is not %s",
							   r->id, rf->column, dms_column_type_name(plan->source[col].type),
							   rc->end, compare_kind_expects(mf->kind));
			}
		}
	}
}

/*
 * mapping_plan_table
 *		Resolve everything the mappings say about one source table.
 */
MappingTablePlan *
mapping_plan_table(const MappingSet *set, const MappingSourceTable *src)
{
	MappingTablePlan *plan = palloc0(sizeof(MappingTablePlan));
	const TransformRule *tr;
	const ObjectRule *om = NULL;
	int			i,
				j;

	/* the source, copied */
	plan->source_schema = pstrdup(src->schema);
	plan->source_table = pstrdup(src->table);
	plan->nsource = src->ncolumns;
	plan->source = palloc0(sizeof(MappingSourceColumn) * Max(src->ncolumns, 1));
	for (i = 0; i < src->ncolumns; i++)
	{
		plan->source[i] = src->columns[i];
		plan->source[i].name = pstrdup(src->columns[i].name);
		for (j = 0; j < i; j++)
			if (strcmp(plan->source[j].name, plan->source[i].name) == 0)
				plan_error(plan, "table \"%s\".\"%s\" has two columns named \"%s\"",
						   src->schema, src->table, src->columns[i].name);
	}

	mapping_select(set, src->schema, src->table, src->is_view, &plan->selection);

	/* schema and table names */
	tr = first_transform(set, TT_SCHEMA, src->schema, src->table, NULL);
	plan->target_schema = tr ? apply_action(tr, src->schema) : pstrdup(src->schema);
	if (tr)
	{
		plan->schema_rule_id = tr->id;
		plan->schema_action = transform_action_names[tr->action];
	}
	tr = first_transform(set, TT_TABLE, src->schema, src->table, NULL);
	plan->target_table = tr ? apply_action(tr, src->table) : pstrdup(src->table);
	if (tr)
	{
		plan->table_rule_id = tr->id;
		plan->table_action = transform_action_names[tr->action];
	}

	for (i = 0; i < set->nobject; i++)
		if (pattern_match(set->object[i].schema, src->schema) &&
			pattern_match(set->object[i].table, src->table))
		{
			om = &set->object[i];
			break;
		}
	if (om != NULL && om->target_table != NULL)
	{
		plan->target_table = pstrdup(om->target_table);
		plan->table_rule_id = om->id;
		plan->table_action = "target-table-name";
	}
	if (plan->target_schema[0] == '\0' && src->schema[0] != '\0')
		plan_error(plan, "transformation rule " INT64_FORMAT " leaves schema \"%s\" without a name",
				   plan->schema_rule_id, src->schema);
	if (plan->target_table[0] == '\0')
		plan_error(plan, "transformation rule " INT64_FORMAT " leaves table \"%s\" without a name",
				   plan->table_rule_id, src->table);

	/* columns */
	plan->fates = palloc0(sizeof(MappingColumnFate) * Max(src->ncolumns, 1));
	for (i = 0; i < plan->nsource; i++)
	{
		MappingColumnFate *fate = &plan->fates[i];

		tr = first_transform(set, TT_COLUMN, src->schema, src->table, &plan->source[i]);
		fate->target = tr ? apply_action(tr, plan->source[i].name) : plan->source[i].name;
		if (tr)
		{
			fate->rule_id = tr->id;
			fate->action = transform_action_names[tr->action];
			if (fate->target != NULL && fate->target[0] == '\0')
				plan_error(plan, "transformation rule " INT64_FORMAT " leaves column \"%s\" without a name",
						   tr->id, plan->source[i].name);
		}
	}

	/* object mapping (exclude-columns changes fates) */
	plan->pk_attribute = -1;
	plan->pk_column = -1;
	if (om != NULL)
		plan_object_mapping(plan, om);

	/* output columns */
	plan->output = palloc0(sizeof(MappingOutputColumn) * Max(plan->nsource, 1));
	for (i = 0; i < plan->nsource; i++)
	{
		MappingColumnFate *fate = &plan->fates[i];
		MappingOutputColumn *out;

		if (fate->target == NULL)
			continue;
		for (j = 0; j < plan->noutput; j++)
			if (strcmp(plan->output[j].name, fate->target) == 0)
				plan_error(plan, "columns \"%s\" and \"%s\" would both be named \"%s\"",
						   plan->source[plan->output[j].source].name, plan->source[i].name,
						   fate->target);
		out = &plan->output[plan->noutput++];
		out->name = fate->target;
		out->source = i;
		out->rule_id = fate->rule_id;
		out->action = fate->action;
	}

	/* primary key */
	plan->pk = palloc(sizeof(int) * Max(plan->nsource, 1));
	for (i = 0; i < plan->nsource; i++)
		if (plan->source[i].is_pk)
			plan->pk[plan->npk++] = i;
	if (plan->pk_type == MAPPING_PKT_PRIMARY_KEY && plan->npk == 0)
		plan_warning(plan, "partition-key-type primary-key, but table \"%s\".\"%s\" has no primary key; records are keyed by schema and table",
					 src->schema, src->table);

	/* filters */
	plan_filters(set, plan, src->is_view);

	/* table settings: exact names */
	for (i = 0; i < set->nsettings; i++)
		if (strcmp(set->settings[i].schema, src->schema) == 0 &&
			strcmp(set->settings[i].table, src->table) == 0)
		{
			plan->table_settings_rule_id = set->settings[i].id;
			plan->lob_mode = set->settings[i].lob_mode;
			break;
		}

	return plan;
}

/*
 * mapping_plan_external_table
 *		The plan for a table of an external table definition.
 */
MappingTablePlan *
mapping_plan_external_table(const MappingSet *set, const ExternalTable *table)
{
	MappingSourceTable src;
	MappingSourceColumn *cols = palloc0(sizeof(MappingSourceColumn) * Max(table->ncolumns, 1));
	int			i;

	for (i = 0; i < table->ncolumns; i++)
	{
		const ExternalColumn *ec = &table->columns[i];

		cols[i].name = ec->name;
		cols[i].type = ec->type;
		cols[i].length = ec->length;
		cols[i].precision = ec->precision;
		cols[i].scale = ec->scale;
		cols[i].nullable = ec->nullable;
		cols[i].is_pk = ec->is_pk;
	}
	src.schema = table->owner;
	src.table = table->name;
	src.is_view = false;
	src.ncolumns = table->ncolumns;
	src.columns = cols;
	return mapping_plan_table(set, &src);
}

/*
 * mapping_partition_key_type_name
 *		DMS's name of a partition-key-type.
 */
const char *
mapping_partition_key_type_name(MappingPartitionKeyType type)
{
	if (type == MAPPING_PKT_DEFAULT)
		return NULL;
	return partition_key_type_names[type - 1];
}
