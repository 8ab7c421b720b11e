/*-------------------------------------------------------------------------
 *
 * mapping_sql.c
 *	  SQL-callable diagnostics of table mappings and DMS messages
 *	  (declared in sql/install/55_mapping.sql).
 *
 *	mapping_preview	what a table-mapping document does to one source table:
 *					selected or not and by which rule, target names, output
 *					columns, object mapping, partition key, filters.
 *	render_message	the Kinesis record (partition key and data) a task
 *					would send for one change, from KinesisSettings, task
 *					settings, table mappings and the row as jsonb; the test
 *					surface of mapping.c and dms_message.c.
 *
 * Neither touches endpoints or credentials: both are open to everybody.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "dms_message.h"
#include "external_table.h"
#include "mapping.h"
#include "settings_spec.h"

PG_FUNCTION_INFO_V1(dms_mapping_preview);
PG_FUNCTION_INFO_V1(dms_render_message);

/* A mapping document selecting every table, for a NULL table_mappings. */
static const char *const select_all_mappings =
"{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": \"1\", \"rule-name\": \"1\", "
"\"object-locator\": {\"schema-name\": \"%\", \"table-name\": \"%\"}, \"rule-action\": \"include\"}]}";

/*
 * required_text
 *		A text argument that must not be NULL.
 */
static char *
required_text(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * text_array
 *		The non-NULL elements of a text[] argument; NULL array gives 0.
 */
static int
text_array(FunctionCallInfo fcinfo, int argno, const char *name, char ***result)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	*result = NULL;
	if (PG_ARGISNULL(argno))
		return 0;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	*result = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", name)));
		(*result)[i] = TextDatumGetCString(elems[i]);
	}
	return n;
}

/*
 * parse_column_type
 *		A DMS ColumnType name (any case); error listing the names otherwise.
 */
static DmsColumnType
parse_column_type(const char *name, const char *what)
{
	StringInfoData list;
	int			t;

	for (t = DMS_TYPE_BYTE; t <= DMS_TYPE_BOOLEAN; t++)
		if (pg_strcasecmp(dms_column_type_name((DmsColumnType) t), name) == 0)
			return (DmsColumnType) t;

	initStringInfo(&list);
	for (t = DMS_TYPE_BYTE; t <= DMS_TYPE_BOOLEAN; t++)
		appendStringInfo(&list, "%s%s", t > 0 ? ", " : "", dms_column_type_name((DmsColumnType) t));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown DMS column type \"%s\" in %s", name, what),
			 errhint("Valid types are: %s.", list.data)));
	return DMS_TYPE_STRING;		/* keep compiler quiet */
}

/*
 * mark_primary_key
 *		Set is_pk from a list of column names (replacing other flags).
 */
static void
mark_primary_key(MappingSourceColumn *cols, int ncols, char **pk, int npk, const char *what)
{
	int			i,
				j;

	for (j = 0; j < ncols; j++)
		cols[j].is_pk = false;
	for (i = 0; i < npk; i++)
	{
		for (j = 0; j < ncols; j++)
			if (strcmp(cols[j].name, pk[i]) == 0)
				break;
		if (j == ncols)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("%s names \"%s\", which is not a column", what, pk[i]),
					 errhint("Primary key columns must be among the table's columns.")));
		cols[j].is_pk = true;
	}
}

/* ----------------------------------------------------------------
 * mapping_preview
 * ----------------------------------------------------------------
 */

/*
 * jint / jstr
 *		jansson values for the preview (NULL strings become null).
 */
static json_t *
jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *
jint(int64 n)
{
	return json_integer((json_int_t) n);
}

/*
 * template_json
 *		A template for the preview: its text and the columns it reads.
 */
static json_t *
template_json(const MappingTablePlan *plan, const MappingTemplate *t)
{
	json_t	   *o = json_object();
	json_t	   *cols = json_array();
	int			i;

	for (i = 0; i < t->nparts; i++)
		if (t->parts[i].column >= 0)
			json_array_append_new(cols, json_string(plan->source[t->parts[i].column].name));
	json_object_set_new(o, "template", json_string(t->source));
	json_object_set_new(o, "columns", cols);
	return o;
}

/*
 * doc_json
 *		A document attribute's shape for the preview: the object with the
 *		templates at its leaves.
 */
static json_t *
doc_json(const MappingDocNode *node)
{
	json_t	   *o;
	int			i;

	if (!node->is_object)
		return json_string(node->value.source);
	o = json_object();
	for (i = 0; i < node->nmembers; i++)
		json_object_set_new(o, node->members[i].key, doc_json(&node->members[i]));
	return o;
}

/*
 * effective_pk_type
 *		The partition-key-type a data record gets without row-level
 *		fallbacks: for a full load (load) or changes (with or without
 *		parallel apply).
 */
static const char *
effective_pk_type(const MappingTablePlan *plan, bool load, bool parallel)
{
	MappingPartitionKeyType t = plan->pk_type;

	if (t == MAPPING_PKT_DEFAULT)
		t = (load || parallel) ? MAPPING_PKT_PRIMARY_KEY : MAPPING_PKT_SCHEMA_TABLE;
	if (t == MAPPING_PKT_PRIMARY_KEY && plan->npk == 0)
		t = MAPPING_PKT_SCHEMA_TABLE;
	if (t == MAPPING_PKT_ATTRIBUTE_NAME && plan->pk_attribute < 0 && plan->pk_column < 0)
		t = MAPPING_PKT_SCHEMA_TABLE;
	if (t == MAPPING_PKT_TRANSACTION_ID && load)
		t = MAPPING_PKT_SCHEMA_TABLE;
	return mapping_partition_key_type_name(t);
}

/*
 * preview_json
 *		The whole preview object.
 */
static json_t *
preview_json(const MappingTablePlan *plan)
{
	json_t	   *root = json_object();
	json_t	   *sel = json_object();
	json_t	   *target = json_object();
	json_t	   *cols = json_array();
	json_t	   *pk = json_array();
	json_t	   *pkey = json_object();
	json_t	   *filters = json_array();
	json_t	   *warnings = json_array();
	static const char *const actions[] = {NULL, "include", "explicit", "exclude"};
	ListCell   *lc;
	int			i,
				f,
				c;

	json_object_set_new(root, "selected", json_boolean(plan->selection.selected));
	json_object_set_new(sel, "reason", json_string(plan->selection.reason));
	json_object_set_new(sel, "rule-action", jstr(actions[plan->selection.action]));
	json_object_set_new(sel, "rule-id", plan->selection.rule_id ? jint(plan->selection.rule_id) : json_null());
	json_object_set_new(sel, "rule-name", jstr(plan->selection.rule_name));
	json_object_set_new(sel, "load-order", jint(plan->selection.load_order));
	json_object_set_new(root, "selection", sel);

	json_object_set_new(target, "schema-name", json_string(plan->target_schema));
	if (plan->schema_rule_id)
		json_object_set_new(target, "schema-rule", json_pack("{s:I,s:s}", "rule-id", (json_int_t) plan->schema_rule_id,
															 "rule-action", plan->schema_action));
	json_object_set_new(target, "table-name", json_string(plan->target_table));
	if (plan->table_rule_id)
		json_object_set_new(target, "table-rule", json_pack("{s:I,s:s}", "rule-id", (json_int_t) plan->table_rule_id,
															"rule-action", plan->table_action));
	json_object_set_new(root, "target", target);

	for (i = 0; i < plan->nsource; i++)
	{
		json_t	   *col = json_object();

		json_object_set_new(col, "source", json_string(plan->source[i].name));
		json_object_set_new(col, "target", jstr(plan->fates[i].target));
		if (plan->fates[i].rule_id)
		{
			json_object_set_new(col, "rule-id", jint(plan->fates[i].rule_id));
			json_object_set_new(col, "rule-action", json_string(plan->fates[i].action));
		}
		json_array_append_new(cols, col);
		if (plan->source[i].is_pk)
			json_array_append_new(pk, json_string(plan->source[i].name));
	}
	json_object_set_new(root, "columns", cols);
	json_object_set_new(root, "primary-key", pk);

	if (plan->object_rule_id)
	{
		json_t	   *om = json_object();
		json_t	   *attrs = json_array();

		json_object_set_new(om, "rule-id", jint(plan->object_rule_id));
		json_object_set_new(om, "rule-name", json_string(plan->object_rule_name));
		json_object_set_new(om, "rule-action", json_string(plan->to_document ?
															"map-record-to-document" : "map-record-to-record"));
		for (i = 0; i < plan->nattributes; i++)
		{
			const MappingAttribute *a = &plan->attributes[i];
			json_t	   *aj = json_object();
			static const char *const subs[] = {"string", "number", "json"};

			json_object_set_new(aj, "target-attribute-name", json_string(a->name));
			json_object_set_new(aj, "attribute-type", json_string(a->is_document ? "document" : "scalar"));
			json_object_set_new(aj, "attribute-sub-type", json_string(subs[a->sub_type]));
			if (a->is_document)
				json_object_set_new(aj, "value", doc_json(&a->doc));
			else
				json_object_set_new(aj, "value", template_json(plan, &a->scalar));
			json_array_append_new(attrs, aj);
		}
		json_object_set_new(om, "attribute-mappings", attrs);
		json_object_set_new(root, "object-mapping", om);
	}
	else
		json_object_set_new(root, "object-mapping", json_null());

	json_object_set_new(pkey, "partition-key-type",
						json_string(plan->pk_type == MAPPING_PKT_DEFAULT ? "default" :
									mapping_partition_key_type_name(plan->pk_type)));
	if (plan->pk_type == MAPPING_PKT_ATTRIBUTE_NAME)
		json_object_set_new(pkey, "partition-key-name", jstr(plan->pk_name));
	if (plan->pk_type == MAPPING_PKT_CONSTANT)
		json_object_set_new(pkey, "value", jstr(plan->pk_constant));
	json_object_set_new(pkey, "full-load", json_string(effective_pk_type(plan, true, false)));
	json_object_set_new(pkey, "cdc", json_string(effective_pk_type(plan, false, false)));
	json_object_set_new(pkey, "cdc-parallel-apply", json_string(effective_pk_type(plan, false, true)));
	json_object_set_new(root, "partition-key", pkey);

	for (i = 0; i < plan->nfiltersets; i++)
	{
		const MappingFilterSet *fs = &plan->filtersets[i];
		json_t	   *fsj = json_object();
		json_t	   *fl = json_array();

		for (f = 0; f < fs->nfilters; f++)
		{
			const MappingFilter *mf = &fs->filters[f];
			json_t	   *fj = json_object();
			json_t	   *cl = json_array();

			json_object_set_new(fj, "column-name", json_string(mf->column_name));
			json_object_set_new(fj, "compare-as", json_string(mapping_compare_kind_name(mf->kind)));
			for (c = 0; c < mf->nconditions; c++)
			{
				const MappingCondition *mc = &mf->conditions[c];
				json_t	   *cj = json_object();

				json_object_set_new(cj, "filter-operator", json_string(mc->op_name));
				if (mc->op == MAPPING_FILTER_BETWEEN || mc->op == MAPPING_FILTER_NOTBETWEEN)
				{
					json_object_set_new(cj, "start-value", jstr(mc->value.text));
					json_object_set_new(cj, "end-value", jstr(mc->end.text));
				}
				else if (mc->op != MAPPING_FILTER_NULL && mc->op != MAPPING_FILTER_NOTNULL)
					json_object_set_new(cj, "value", jstr(mc->value.text));
				json_array_append_new(cl, cj);
			}
			json_object_set_new(fj, "filter-conditions", cl);
			json_array_append_new(fl, fj);
		}
		json_object_set_new(fsj, "rule-id", jint(fs->rule_id));
		json_object_set_new(fsj, "filters", fl);
		json_array_append_new(filters, fsj);
	}
	json_object_set_new(root, "filters", filters);
	json_object_set_new(root, "table-settings-rule-id",
						plan->table_settings_rule_id ? jint(plan->table_settings_rule_id) : json_null());

	foreach(lc, plan->warnings)
		json_array_append_new(warnings, json_string((char *) lfirst(lc)));
	json_object_set_new(root, "warnings", warnings);
	json_object_set_new(root, "error", jstr(plan->error));
	return root;
}

/*
 * dms_mapping_preview
 *		mapping_preview(table_mappings, schema_name, table_name, columns,
 *		column_types, pk_columns) -> jsonb
 */
Datum
dms_mapping_preview(PG_FUNCTION_ARGS)
{
	Jsonb	   *mappings;
	MappingSet *set;
	MappingSourceTable src;
	MappingSourceColumn *cols;
	MappingTablePlan *plan;
	char	  **names;
	char	  **types;
	char	  **pk;
	int			ncols,
				ntypes,
				npk,
				i;
	char	   *text;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table_mappings must not be NULL")));
	mappings = PG_GETARG_JSONB_P(0);
	src.schema = required_text(fcinfo, 1, "schema_name");
	src.table = required_text(fcinfo, 2, "table_name");
	src.is_view = false;
	ncols = text_array(fcinfo, 3, "columns", &names);
	ntypes = text_array(fcinfo, 4, "column_types", &types);
	npk = text_array(fcinfo, 5, "pk_columns", &pk);

	if (ntypes > 0 && ntypes != ncols)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column_types has %d elements but columns has %d", ntypes, ncols),
				 errhint("Give one DMS type per column, or none (STRING).")));

	cols = palloc0(sizeof(MappingSourceColumn) * Max(ncols, 1));
	for (i = 0; i < ncols; i++)
	{
		cols[i].name = names[i];
		cols[i].type = ntypes > 0 ? parse_column_type(types[i], "column_types") : DMS_TYPE_STRING;
		cols[i].nullable = true;
	}
	mark_primary_key(cols, ncols, pk, npk, "pk_columns");
	src.ncolumns = ncols;
	src.columns = cols;

	set = mapping_compile(mappings);
	plan = mapping_plan_table(set, &src);

	text = dms_json_dumps(preview_json(plan), JSON_COMPACT | JSON_PRESERVE_ORDER,
						  "the mapping preview");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/* ----------------------------------------------------------------
 * render_message
 * ----------------------------------------------------------------
 */

/* Values of a row read from jsonb; pointers are set once the text is complete. */
typedef struct RowValues
{
	DmsColumnValue *values;
	int		   *offsets;
	StringInfoData text;
} RowValues;

/*
 * jsonb_value_text
 *		Append the JSON text of a jsonb value (numbers exactly as stored).
 */
static void
jsonb_value_text(StringInfo out, JsonbValue *v, bool *is_null, bool *is_empty)
{
	*is_null = false;
	*is_empty = false;
	switch (v->type)
	{
		case jbvNull:
			*is_null = true;
			break;
		case jbvString:
			dms_message_append_json_string(out, v->val.string.val, v->val.string.len);
			*is_empty = (v->val.string.len == 0);
			break;
		case jbvNumeric:
			appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			(void) JsonbToCString(out, v->val.binary.data, v->val.binary.len);
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

/*
 * expect_jsonb_object
 *		Error unless jb is a JSON object.
 */
static void
expect_jsonb_object(Jsonb *jb, const char *what)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what),
				 errhint("Give column name -> value, e.g. {\"id\": 42, \"name\": \"John\"}.")));
}

/*
 * row_values
 *		Values per source column from a jsonb object; columns it lacks are
 *		missing.
 */
static DmsColumnValue *
row_values(Jsonb *jb, const MappingSourceColumn *cols, int ncols)
{
	RowValues	rv;
	int			i;

	rv.values = palloc0(sizeof(DmsColumnValue) * Max(ncols, 1));
	rv.offsets = palloc0(sizeof(int) * Max(ncols, 1));
	initStringInfo(&rv.text);
	for (i = 0; i < ncols; i++)
	{
		JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, cols[i].name,
													 strlen(cols[i].name), NULL);
		DmsColumnValue *cv = &rv.values[i];

		if (v == NULL)
		{
			cv->is_missing = true;
			continue;
		}
		rv.offsets[i] = rv.text.len;
		jsonb_value_text(&rv.text, v, &cv->is_null, &cv->is_empty);
		cv->len = rv.text.len - rv.offsets[i];
	}
	for (i = 0; i < ncols; i++)
		if (!rv.values[i].is_missing && !rv.values[i].is_null)
			rv.values[i].json = rv.text.data + rv.offsets[i];
	return rv.values;
}

/*
 * add_inferred_columns
 *		Columns from the keys of a row object (jsonb order), typed by their
 *		values: numbers NUMERIC, booleans BOOLEAN, anything else STRING.
 */
static void
add_inferred_columns(Jsonb *jb, List **cols)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			MappingSourceColumn *col;
			ListCell   *lc;
			bool		found = false;

			foreach(lc, *cols)
				if (strcmp(((MappingSourceColumn *) lfirst(lc))->name, key) == 0)
					found = true;
			if (found)
				continue;
			col = palloc0(sizeof(MappingSourceColumn));
			col->name = key;
			col->type = v.type == jbvNumeric ? DMS_TYPE_NUMERIC :
				v.type == jbvBool ? DMS_TYPE_BOOLEAN : DMS_TYPE_STRING;
			col->nullable = true;
			*cols = lappend(*cols, col);
		}
	}
}

/*
 * parse_columns
 *		The columns argument: an array of DMS TableColumns elements
 *		({"ColumnName", "ColumnType", "ColumnLength", "ColumnPrecision",
 *		"ColumnScale", "ColumnNullable", "ColumnIsPk"}).
 */
static MappingSourceColumn *
parse_columns(Jsonb *jb, int *ncols)
{
	static const char *const keys[] = {
		"ColumnName", "ColumnType", "ColumnLength", "ColumnPrecision", "ColumnScale",
		"ColumnNullable", "ColumnIsPk", "ColumnDateFormat", NULL
	};
	DmsJsonDoc	doc = {"columns"};
	json_t	   *arr = dms_json_from_jsonb(&doc, jb);
	MappingSourceColumn *cols;
	size_t		i;

	if (!json_is_array(arr))
		dms_json_fail(&doc, "",
					  "Give an array of DMS TableColumns elements, e.g. [{\"ColumnName\": \"id\", \"ColumnType\": \"INT4\", \"ColumnIsPk\": true}].",
					  "Expected an array but found %s.", dms_json_kind(arr));
	*ncols = json_array_size(arr);
	cols = palloc0(sizeof(MappingSourceColumn) * Max(*ncols, 1));
	for (i = 0; i < json_array_size(arr); i++)
	{
		json_t	   *c = json_array_get(arr, i);
		char	   *path = dms_json_path_index("", i);
		MappingSourceColumn *col = &cols[i];
		int64		n;

		dms_json_expect_object(&doc, c, path);
		dms_json_check_keys(&doc, c, path, keys);
		col->name = pstrdup(dms_json_get_string(&doc, c, path, "ColumnName", true, false));
		col->type = parse_column_type(dms_json_get_string(&doc, c, path, "ColumnType", true, false),
									  "columns");
		if (dms_json_get_int(&doc, c, path, "ColumnLength", false, 0, PG_INT32_MAX, &n))
			col->length = n;
		if (dms_json_get_int(&doc, c, path, "ColumnPrecision", false, 1, 38, &n))
			col->precision = n;
		if (dms_json_get_int(&doc, c, path, "ColumnScale", false, 0, 31, &n))
			col->scale = n;
		dms_json_get_bool(&doc, c, path, "ColumnNullable", false, false, &col->nullable);
		dms_json_get_bool(&doc, c, path, "ColumnIsPk", false, false, &col->is_pk);
	}
	return cols;
}

/*
 * parse_transaction
 *		The transaction argument, in DMS metadata names.
 */
static void
parse_transaction(Jsonb *jb, DmsTransaction *tx)
{
	static const char *const keys[] = {
		"transaction-id", "transaction-record-id", "prev-transaction-id",
		"prev-transaction-record-id", "commit-timestamp", "stream-position", NULL
	};
	DmsJsonDoc	doc = {"transaction"};
	json_t	   *obj = dms_json_from_jsonb(&doc, jb);
	int64		n;
	const char *s;
	bool		has_prev_record;

	memset(tx, 0, sizeof(*tx));
	dms_json_expect_object(&doc, obj, "");
	dms_json_check_keys(&doc, obj, "", keys);
	if (dms_json_get_int(&doc, obj, "", "transaction-id", false, 0, PG_INT64_MAX, &n))
	{
		tx->has_id = true;
		tx->id = (uint64) n;
	}
	if (dms_json_get_int(&doc, obj, "", "transaction-record-id", false, 0, PG_INT64_MAX, &n))
	{
		tx->has_record_id = true;
		tx->record_id = n;
	}
	if (dms_json_get_int(&doc, obj, "", "prev-transaction-id", false, 0, PG_INT64_MAX, &n))
	{
		tx->has_prev = true;
		tx->prev_id = (uint64) n;
	}
	has_prev_record = dms_json_get_int(&doc, obj, "", "prev-transaction-record-id", false, 0,
									   PG_INT64_MAX, &tx->prev_record_id);
	if (tx->has_prev != has_prev_record)
		dms_json_fail(&doc, tx->has_prev ? "prev-transaction-record-id" : "prev-transaction-id",
					  "Give prev-transaction-id and prev-transaction-record-id together.",
					  "Only one of the previous transaction's fields is given.");
	s = dms_json_get_string(&doc, obj, "", "commit-timestamp", false, false);
	if (s != NULL)
	{
		tx->has_commit_timestamp = true;
		tx->commit_timestamp = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																	   CStringGetDatum(s),
																	   ObjectIdGetDatum(InvalidOid),
																	   Int32GetDatum(-1)));
	}
	s = dms_json_get_string(&doc, obj, "", "stream-position", false, true);
	if (s != NULL)
		tx->stream_position = pstrdup(s);
}

/*
 * validated_kinesis_settings
 *		Validate KinesisSettings as for a Kinesis target endpoint; a stream
 *		is not needed to render messages, so a stand-in StreamName is
 *		added for the check when neither StreamArn nor StreamName is given.
 */
static json_t *
validated_kinesis_settings(Jsonb *jb)
{
	DmsJsonDoc	doc = {"KinesisSettings"};
	Jsonb	   *check = jb;

	if (JB_ROOT_IS_OBJECT(jb) && !JB_ROOT_IS_SCALAR(jb) &&
		getKeyJsonValueFromContainer(&jb->root, "StreamArn", 9, NULL) == NULL &&
		getKeyJsonValueFromContainer(&jb->root, "StreamName", 10, NULL) == NULL)
	{
		Datum		extra = DirectFunctionCall1(jsonb_in, CStringGetDatum("{\"StreamName\": \"render-message\"}"));

		check = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(jb), extra));
	}
	endpoint_settings_validate("kinesis", "target", check);
	return dms_json_from_jsonb(&doc, jb);
}

/*
 * dms_render_message
 *		render_message(kinesis_settings, task_settings, table_mappings,
 *		schema_name, table_name, operation, data, pk_columns, before_image,
 *		transaction, event_id, at, columns, task_id)
 *		-> TABLE(partition_key text, data text)
 */
Datum
dms_render_message(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	json_t	   *kinesis = NULL;
	json_t	   *task = NULL;
	Jsonb	   *mappings;
	Jsonb	   *data = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6);
	Jsonb	   *before = PG_ARGISNULL(8) ? NULL : PG_GETARG_JSONB_P(8);
	char	   *op_name;
	char	  **pk;
	int			npk;
	DmsMessageSettings settings;
	DmsTransaction tx;
	DmsChange	change;
	MappingSourceTable src;
	MappingSourceColumn *cols;
	int			ncols = 0;
	MappingSet *set;
	MappingTablePlan *plan;
	DmsMessageWriter *writer;
	StringInfoData out;
	StringInfoData key;
	ListCell   *lc;
	char	   *task_id = PG_ARGISNULL(13) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(13));

	InitMaterializedSRF(fcinfo, 0);

	/* settings, validated as the catalog validates them */
	if (!PG_ARGISNULL(0))
		kinesis = validated_kinesis_settings(PG_GETARG_JSONB_P(0));
	if (!PG_ARGISNULL(1))
	{
		DmsJsonDoc	doc = {"task settings"};

		task_settings_validate(PG_GETARG_JSONB_P(1));
		task = dms_json_from_jsonb(&doc, PG_GETARG_JSONB_P(1));
	}
	mappings = PG_ARGISNULL(2) ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(select_all_mappings))) :
		PG_GETARG_JSONB_P(2);

	memset(&change, 0, sizeof(change));
	src.schema = required_text(fcinfo, 3, "schema_name");
	src.table = required_text(fcinfo, 4, "table_name");
	src.is_view = false;
	op_name = required_text(fcinfo, 5, "operation");
	if (!dms_operation_parse(op_name, &change.operation))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown operation \"%s\"", op_name),
				 errhint("Data operations are load, insert, update and delete; control operations are create-table, rename-table, drop-table, change-columns, add-column, drop-column, rename-column and column-type-change.")));
	if (DMS_OPERATION_IS_CONTROL(change.operation) && task_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task_id is required for control records"),
				 errhint("Control records are keyed by TaskId.schema.table; give the task's id.")));
	if (!DMS_OPERATION_IS_CONTROL(change.operation) && data == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("data must not be NULL for a %s record", op_name),
				 errhint("Give the row as column name -> value, e.g. {\"id\": 42}.")));
	if (data != NULL && !DMS_OPERATION_IS_CONTROL(change.operation))
		expect_jsonb_object(data, "data");
	if (before != NULL)
		expect_jsonb_object(before, "before_image");

	dms_message_settings_from_json(&settings, kinesis, task, task_id);

	/* the source table: given columns, or the keys of the row */
	if (!PG_ARGISNULL(12))
		cols = parse_columns(PG_GETARG_JSONB_P(12), &ncols);
	else
	{
		List	   *inferred = NIL;
		int			i = 0;

		if (data != NULL && !DMS_OPERATION_IS_CONTROL(change.operation))
			add_inferred_columns(data, &inferred);
		if (before != NULL)
			add_inferred_columns(before, &inferred);
		ncols = list_length(inferred);
		cols = palloc0(sizeof(MappingSourceColumn) * Max(ncols, 1));
		foreach(lc, inferred)
			cols[i++] = *(MappingSourceColumn *) lfirst(lc);
	}
	npk = text_array(fcinfo, 7, "pk_columns", &pk);
	if (!PG_ARGISNULL(7))
		mark_primary_key(cols, ncols, pk, npk, "pk_columns");
	src.ncolumns = ncols;
	src.columns = cols;

	set = mapping_compile(mappings);
	plan = mapping_plan_table(set, &src);
	if (plan->error != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\".\"%s\" cannot be replicated with these mappings",
						src.schema, src.table),
				 errdetail("%s.", plan->error)));
	foreach(lc, plan->warnings)
		ereport(NOTICE,
				(errmsg("table mapping: %s", (char *) lfirst(lc))));
	if (!plan->selection.selected)
	{
		ereport(NOTICE,
				(errmsg("table \"%s\".\"%s\" is not replicated: %s",
						src.schema, src.table, plan->selection.reason)));
		return (Datum) 0;
	}

	if (!DMS_OPERATION_IS_CONTROL(change.operation))
	{
		change.values = row_values(data, cols, ncols);
		if (before != NULL)
			change.before = row_values(before, cols, ncols);
		if (!mapping_row_passes(plan, change.values))
		{
			ereport(NOTICE,
					(errmsg("the row is not replicated: the source filters of the selection rules reject it")));
			return (Datum) 0;
		}
	}
	else if (data != NULL)
	{
		DmsJsonDoc	doc = {"control"};

		expect_jsonb_object(data, "data (the control object)");
		change.control = dms_json_from_jsonb(&doc, data);
	}

	if (!PG_ARGISNULL(9))
	{
		parse_transaction(PG_GETARG_JSONB_P(9), &tx);
		change.transaction = &tx;
	}
	change.event_id = PG_ARGISNULL(10) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(10));
	change.timestamp = PG_ARGISNULL(11) ? GetCurrentTimestamp() : PG_GETARG_TIMESTAMPTZ(11);

	writer = dms_message_writer_create(plan, &settings);
	initStringInfo(&out);
	initStringInfo(&key);
	if (!dms_message_build(writer, &change, &out, &key))
	{
		ereport(NOTICE,
				(errmsg("%s records are sent only with IncludeTableAlterOperations", op_name)));
		return (Datum) 0;
	}

	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = PointerGetDatum(cstring_to_text_with_len(key.data, key.len));
		values[1] = PointerGetDatum(cstring_to_text_with_len(out.data, out.len));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
