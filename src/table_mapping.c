/*-------------------------------------------------------------------------
 *
 * table_mapping.c
 *	  Validate DMS table-mapping JSON ({"rules": [...]}).
 *
 * Rule types: selection, transformation, table-settings and object-mapping,
 * with the fields and actions the DMS user guide documents for them.  DMS
 * actions that dms_stream does not carry out (add-column with SQLite
 * expressions, data masking, ...) are rejected rather than ignored, with a
 * hint listing what is supported.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "settings_spec.h"

static const char *const rule_types[] = {
	"selection", "transformation", "table-settings", "object-mapping", NULL
};
static const char *const selection_actions[] = {"include", "exclude", "explicit", NULL};
static const char *const table_types[] = {"table", "view", "all", NULL};
static const char *const filter_operators[] = {
	"lte", "ste", "gte", "eq", "noteq", "between", "notbetween", "null", "notnull", NULL
};
static const char *const transformation_targets[] = {"schema", "table", "column", NULL};
static const char *const transformation_actions[] = {
	"rename", "remove-column", "convert-lowercase", "convert-uppercase",
	"add-prefix", "remove-prefix", "replace-prefix",
	"add-suffix", "remove-suffix", "replace-suffix", NULL
};
static const char *const unsupported_transformation_actions[] = {
	"add-column", "include-column", "define-primary-key", "change-data-type",
	"add-before-image-columns", "data-masking-digits-mask",
	"data-masking-digits-randomize", "data-masking-hash-mask", NULL
};
static const char *const object_mapping_actions[] = {
	"map-record-to-record", "map-record-to-document", NULL
};
static const char *const partition_key_types[] = {
	"schema-table", "transaction-id", "primary-key", "constant", "attribute-name", NULL
};
static const char *const attribute_types[] = {"scalar", "document", NULL};
static const char *const attribute_sub_types[] = {"string", "number", "json", NULL};
static const char *const parallel_load_types[] = {"ranges", "none", NULL};
static const char *const lob_modes[] = {"limited", "unlimited", "none", NULL};

static const char *const selection_keys[] = {
	"rule-type", "rule-id", "rule-name", "rule-action", "object-locator",
	"load-order", "filters", NULL
};
static const char *const transformation_keys[] = {
	"rule-type", "rule-id", "rule-name", "rule-action", "object-locator",
	"rule-target", "value", "old-value", "data-type", "expression",
	"primary-key-def", "before-image-def", NULL
};
static const char *const table_settings_keys[] = {
	"rule-type", "rule-id", "rule-name", "object-locator", "parallel-load",
	"lob-settings", "rule-action", NULL
};
static const char *const object_mapping_keys[] = {
	"rule-type", "rule-id", "rule-name", "rule-action", "object-locator",
	"target-table-name", "mapping-parameters", NULL
};
static const char *const selection_locator_keys[] = {"schema-name", "table-name", "table-type", NULL};
static const char *const transformation_locator_keys[] = {
	"schema-name", "table-name", "column-name", "table-tablespace-name",
	"index-tablespace-name", "data-type", NULL
};
static const char *const table_locator_keys[] = {"schema-name", "table-name", NULL};
static const char *const filter_keys[] = {"filter-type", "column-name", "filter-conditions", NULL};
static const char *const condition_keys[] = {"filter-operator", "value", "start-value", "end-value", NULL};
static const char *const mapping_parameter_keys[] = {
	"partition-key-type", "partition-key-name", "partition-key", "exclude-columns",
	"attribute-mappings", NULL
};
static const char *const attribute_mapping_keys[] = {
	"target-attribute-name", "attribute-name", "attribute-type", "attribute-sub-type",
	"value", NULL
};
static const char *const parallel_load_keys[] = {"type", "columns", "boundaries", NULL};
static const char *const lob_settings_keys[] = {"mode", "bulk-max-size", NULL};

/*
 * check_name_pattern
 *		A DMS name pattern: % and _ wildcards, [set] and [a-z] ranges.
 *		With exact, no wildcard % is allowed.
 */
static void
check_name_pattern(const DmsJsonDoc *doc, const char *path, const char *pattern, bool exact,
				   const char *exact_hint)
{
	const char *p;

	for (p = pattern; *p; p++)
	{
		if (*p == '[')
		{
			const char *close = strchr(p + 1, ']');

			if (close == NULL || close == p + 1)
				dms_json_fail(doc, path,
							  "Close every '[' with ']' around at least one character, e.g. \"[_]\" for a literal underscore.",
							  "Unterminated character set in pattern \"%s\".", pattern);
			p = close;
		}
		else if (*p == '%' && exact)
			dms_json_fail(doc, path, exact_hint,
						  "Wildcard '%%' is not allowed here; found \"%s\".", pattern);
	}
}

/*
 * get_locator
 *		object-locator with its allowed keys; schema-name always required.
 */
static json_t *
get_locator(const DmsJsonDoc *doc, json_t *rule, const char *path, const char *const *keys)
{
	json_t	   *loc = json_object_get(rule, "object-locator");
	char	   *loc_path = dms_json_path_key(path, "object-locator");

	if (loc == NULL || json_is_null(loc))
		dms_json_fail(doc, loc_path,
					  "Add \"object-locator\": {\"schema-name\": ..., \"table-name\": ...}.",
					  "Required key \"object-locator\" is missing.");
	dms_json_check_keys(doc, loc, loc_path, keys);
	dms_json_get_string(doc, loc, loc_path, "schema-name", true, false);
	return loc;
}

/*
 * validate_filters
 *		Source filters of a selection rule.
 */
static void
validate_filters(const DmsJsonDoc *doc, json_t *filters, const char *path)
{
	size_t		i,
				j;

	if (!json_is_array(filters))
		dms_json_fail(doc, path, NULL, "Expected an array of filters but found %s.",
					  dms_json_kind(filters));
	for (i = 0; i < json_array_size(filters); i++)
	{
		char	   *fpath = dms_json_path_index(path, i);
		json_t	   *filter = json_array_get(filters, i);
		json_t	   *conds;
		char	   *cpath = dms_json_path_key(fpath, "filter-conditions");
		static const char *const filter_types[] = {"source", NULL};

		dms_json_check_keys(doc, filter, fpath, filter_keys);
		dms_json_get_enum(doc, filter, fpath, "filter-type", true, filter_types, false);
		dms_json_get_string(doc, filter, fpath, "column-name", true, false);
		conds = json_object_get(filter, "filter-conditions");
		if (conds == NULL || !json_is_array(conds) || json_array_size(conds) == 0)
			dms_json_fail(doc, cpath,
						  "Add at least one condition, e.g. {\"filter-operator\": \"gte\", \"value\": \"100\"}.",
						  "\"filter-conditions\" must be a non-empty array.");

		for (j = 0; j < json_array_size(conds); j++)
		{
			char	   *path_j = dms_json_path_index(cpath, j);
			json_t	   *cond = json_array_get(conds, j);
			int			op;
			bool		has_value,
						has_start,
						has_end;

			dms_json_check_keys(doc, cond, path_j, condition_keys);
			op = dms_json_get_enum(doc, cond, path_j, "filter-operator", true, filter_operators, false);
			has_value = dms_json_get_string(doc, cond, path_j, "value", false, true) != NULL;
			has_start = dms_json_get_string(doc, cond, path_j, "start-value", false, true) != NULL;
			has_end = dms_json_get_string(doc, cond, path_j, "end-value", false, true) != NULL;

			switch (op)
			{
				case 0:			/* lte */
				case 1:			/* ste */
				case 2:			/* gte */
				case 3:			/* eq */
				case 4:			/* noteq */
					if (!has_value || has_start || has_end)
						dms_json_fail(doc, path_j,
									  "Give \"value\" (and no start-value/end-value) for this operator.",
									  "Operator \"%s\" compares with one value.", filter_operators[op]);
					break;
				case 5:			/* between */
				case 6:			/* notbetween */
					if (has_value || !has_start || !has_end)
						dms_json_fail(doc, path_j,
									  "Give \"start-value\" and \"end-value\" (and no \"value\") for this operator.",
									  "Operator \"%s\" needs a start and an end value.", filter_operators[op]);
					break;
				default:		/* null, notnull */
					if (has_value || has_start || has_end)
						dms_json_fail(doc, path_j, "Remove the value parameters.",
									  "Operator \"%s\" takes no value.", filter_operators[op]);
					break;
			}
			if ((op == 4 || op == 6 || op == 8) && json_array_size(conds) > 1)
				dms_json_fail(doc, path_j,
							  "Put the negative condition in a filter of its own; several filters are AND-ed.",
							  "A filter with the negative operator \"%s\" may hold only that one condition.",
							  filter_operators[op]);
		}
	}
}

/*
 * validate_selection
 */
static void
validate_selection(const DmsJsonDoc *doc, json_t *rule, const char *path)
{
	json_t	   *loc;
	char	   *loc_path = dms_json_path_key(path, "object-locator");
	int			action;
	int64		n;
	json_t	   *filters;

	dms_json_check_keys(doc, rule, path, selection_keys);
	action = dms_json_get_enum(doc, rule, path, "rule-action", true, selection_actions, false);
	loc = get_locator(doc, rule, path, selection_locator_keys);
	dms_json_get_string(doc, loc, loc_path, "table-name", true, false);
	dms_json_get_enum(doc, loc, loc_path, "table-type", false, table_types, false);
	check_name_pattern(doc, dms_json_path_key(loc_path, "schema-name"),
					   json_string_value(json_object_get(loc, "schema-name")), action == 2,
					   "rule-action \"explicit\" selects one table by its exact schema and table name.");
	check_name_pattern(doc, dms_json_path_key(loc_path, "table-name"),
					   json_string_value(json_object_get(loc, "table-name")), action == 2,
					   "rule-action \"explicit\" selects one table by its exact schema and table name.");
	dms_json_get_int(doc, rule, path, "load-order", false, PG_INT32_MIN, PG_INT32_MAX, &n);

	filters = json_object_get(rule, "filters");
	if (filters != NULL && !json_is_null(filters))
	{
		if (action != 0)
			dms_json_fail(doc, dms_json_path_key(path, "filters"),
						  "Filters apply only to rules with rule-action \"include\".",
						  "rule-action \"%s\" cannot have filters.", selection_actions[action]);
		validate_filters(doc, filters, dms_json_path_key(path, "filters"));
	}
}

/*
 * validate_transformation
 */
static void
validate_transformation(const DmsJsonDoc *doc, json_t *rule, const char *path)
{
	const char *action_name;
	int			action;
	int			target;
	json_t	   *loc;
	char	   *loc_path = dms_json_path_key(path, "object-locator");
	int			i;

	dms_json_check_keys(doc, rule, path, transformation_keys);

	action_name = dms_json_get_string(doc, rule, path, "rule-action", true, false);
	for (i = 0; unsupported_transformation_actions[i] != NULL; i++)
		if (strcmp(action_name, unsupported_transformation_actions[i]) == 0)
			dms_json_fail(doc, dms_json_path_key(path, "rule-action"),
						  psprintf("Supported transformation actions are: %s.",
								   dms_json_list(transformation_actions)),
						  "DMS action \"%s\" is not supported by dms_stream.", action_name);
	action = dms_json_match_enum(doc, dms_json_path_key(path, "rule-action"), action_name,
								 transformation_actions, false);
	target = dms_json_get_enum(doc, rule, path, "rule-target", true, transformation_targets, false);

	loc = get_locator(doc, rule, path, transformation_locator_keys);
	if (target >= 1)
		dms_json_get_string(doc, loc, loc_path, "table-name", true, false);
	if (target == 2)
		dms_json_get_string(doc, loc, loc_path, "column-name", true, false);

	if (action == 1 && target != 2)	/* remove-column */
		dms_json_fail(doc, dms_json_path_key(path, "rule-target"),
					  "Use \"rule-target\": \"column\" with remove-column.",
					  "remove-column applies to columns, not to a %s.", transformation_targets[target]);

	switch (action)
	{
		case 0:				/* rename */
		case 4:				/* add-prefix */
		case 5:				/* remove-prefix */
		case 7:				/* add-suffix */
		case 8:				/* remove-suffix */
			dms_json_get_string(doc, rule, path, "value", true, action != 0);
			break;
		case 6:				/* replace-prefix */
		case 9:				/* replace-suffix */
			dms_json_get_string(doc, rule, path, "value", true, true);
			dms_json_get_string(doc, rule, path, "old-value", true, false);
			break;
		default:
			break;
	}
	if (action != 6 && action != 9 && json_object_get(rule, "old-value"))
		dms_json_fail(doc, dms_json_path_key(path, "old-value"),
					  "old-value goes with replace-prefix and replace-suffix only.",
					  "rule-action \"%s\" does not use old-value.", transformation_actions[action]);
}

/*
 * validate_table_settings
 */
static void
validate_table_settings(const DmsJsonDoc *doc, json_t *rule, const char *path)
{
	json_t	   *loc;
	char	   *loc_path = dms_json_path_key(path, "object-locator");
	json_t	   *pl;
	json_t	   *lob;
	const char *exact_hint = "Exact schema and table name required when using table settings rule.";

	dms_json_check_keys(doc, rule, path, table_settings_keys);
	loc = get_locator(doc, rule, path, table_locator_keys);
	dms_json_get_string(doc, loc, loc_path, "table-name", true, false);
	check_name_pattern(doc, dms_json_path_key(loc_path, "schema-name"),
					   json_string_value(json_object_get(loc, "schema-name")), true, exact_hint);
	check_name_pattern(doc, dms_json_path_key(loc_path, "table-name"),
					   json_string_value(json_object_get(loc, "table-name")), true, exact_hint);

	pl = json_object_get(rule, "parallel-load");
	if (pl && !json_is_null(pl))
	{
		char	   *pl_path = dms_json_path_key(path, "parallel-load");
		const char *type_name;
		int			type;

		dms_json_check_keys(doc, pl, pl_path, parallel_load_keys);
		type_name = dms_json_get_string(doc, pl, pl_path, "type", true, false);
		if (strcmp(type_name, "partitions-auto") == 0 || strcmp(type_name, "partitions-list") == 0 ||
			strcmp(type_name, "subpartitions-auto") == 0)
			dms_json_fail(doc, dms_json_path_key(pl_path, "type"),
						  "Use \"ranges\" with columns and boundaries; DMS documents only ranges for PostgreSQL sources.",
						  "parallel-load type \"%s\" is not supported by dms_stream.", type_name);
		type = dms_json_match_enum(doc, dms_json_path_key(pl_path, "type"), type_name,
								   parallel_load_types, false);
		if (type == 0)
		{
			json_t	   *cols = json_object_get(pl, "columns");
			json_t	   *bounds = json_object_get(pl, "boundaries");
			size_t		i,
						j;

			if (cols == NULL || !json_is_array(cols) || json_array_size(cols) == 0 ||
				json_array_size(cols) > 10)
				dms_json_fail(doc, dms_json_path_key(pl_path, "columns"),
							  "List 1 to 10 column names to segment the table by.",
							  "\"columns\" must be an array of 1 to 10 column names.");
			for (i = 0; i < json_array_size(cols); i++)
				if (!json_is_string(json_array_get(cols, i)) ||
					json_string_length(json_array_get(cols, i)) == 0)
					dms_json_fail(doc, dms_json_path_index(dms_json_path_key(pl_path, "columns"), i),
								  NULL, "Expected a column name but found %s.",
								  dms_json_show(json_array_get(cols, i)));
			if (bounds == NULL || !json_is_array(bounds) || json_array_size(bounds) == 0)
				dms_json_fail(doc, dms_json_path_key(pl_path, "boundaries"),
							  "List boundary rows, each with one value per column, e.g. [[\"1000\"], [\"3000\"]].",
							  "\"boundaries\" must be a non-empty array.");
			for (i = 0; i < json_array_size(bounds); i++)
			{
				json_t	   *row = json_array_get(bounds, i);
				char	   *bpath = dms_json_path_index(dms_json_path_key(pl_path, "boundaries"), i);

				if (!json_is_array(row) || json_array_size(row) != json_array_size(cols))
					dms_json_fail(doc, bpath,
								  "Give each boundary as an array with one value per column in \"columns\".",
								  "Expected an array of %zu values but found %s.",
								  json_array_size(cols), dms_json_show(row));
				for (j = 0; j < json_array_size(row); j++)
					if (!json_is_string(json_array_get(row, j)) && !json_is_number(json_array_get(row, j)))
						dms_json_fail(doc, dms_json_path_index(bpath, j), NULL,
									  "Expected a string or number but found %s.",
									  dms_json_kind(json_array_get(row, j)));
			}
		}
	}

	lob = json_object_get(rule, "lob-settings");
	if (lob && !json_is_null(lob))
	{
		char	   *lob_path = dms_json_path_key(path, "lob-settings");
		int64		n;

		dms_json_check_keys(doc, lob, lob_path, lob_settings_keys);
		dms_json_get_enum(doc, lob, lob_path, "mode", false, lob_modes, false);
		dms_json_get_int(doc, lob, lob_path, "bulk-max-size", false, 0, 102400, &n);
	}
}

/*
 * check_template
 *		${column} templates must be closed and name something.
 */
static void
check_template(const DmsJsonDoc *doc, const char *path, const char *s)
{
	const char *p = s;

	while ((p = strstr(p, "${")) != NULL)
	{
		const char *close = strchr(p + 2, '}');
		const char *next = strstr(p + 2, "${");

		if (close == NULL || (next != NULL && next < close))
			dms_json_fail(doc, path, "Write column references as ${column_name}.",
						  "Unterminated \"${\" in \"%s\".", s);
		if (close == p + 2)
			dms_json_fail(doc, path, "Write column references as ${column_name}.",
						  "Empty \"${}\" in \"%s\".", s);
		p = close + 1;
	}
}

/*
 * check_document_value
 *		A document attribute value: nested objects whose leaves are templates.
 */
static void
check_document_value(const DmsJsonDoc *doc, const char *path, json_t *value)
{
	const char *key;
	json_t	   *member;

	if (json_is_string(value))
		check_template(doc, path, json_string_value(value));
	else if (json_is_object(value))
	{
		json_object_foreach(value, key, member)
			check_document_value(doc, dms_json_path_key(path, key), member);
	}
	else
		dms_json_fail(doc, path,
					  "Write a string template such as \"${column}\" or an object of them.",
					  "Expected a string or an object but found %s.", dms_json_kind(value));
}

/*
 * validate_object_mapping
 */
static void
validate_object_mapping(const DmsJsonDoc *doc, json_t *rule, const char *path)
{
	json_t	   *loc;
	char	   *loc_path = dms_json_path_key(path, "object-locator");
	json_t	   *params;

	dms_json_check_keys(doc, rule, path, object_mapping_keys);
	dms_json_get_enum(doc, rule, path, "rule-action", true, object_mapping_actions, false);
	loc = get_locator(doc, rule, path, table_locator_keys);
	dms_json_get_string(doc, loc, loc_path, "table-name", true, false);
	dms_json_get_string(doc, rule, path, "target-table-name", false, false);

	params = json_object_get(rule, "mapping-parameters");
	if (params && !json_is_null(params))
	{
		char	   *ppath = dms_json_path_key(path, "mapping-parameters");
		int			pk_type;
		json_t	   *excl;
		json_t	   *attrs;
		size_t		i;

		if (json_object_get(params, "sort-key-name") || json_object_get(params, "condition-expression"))
			dms_json_fail(doc, dms_json_path_key(ppath, json_object_get(params, "sort-key-name") ? "sort-key-name" : "condition-expression"),
						  "Remove it: sort keys and condition expressions are DynamoDB-only.",
						  "This DynamoDB object-mapping parameter does not apply to Kinesis.");
		dms_json_check_keys(doc, params, ppath, mapping_parameter_keys);
		pk_type = dms_json_get_enum(doc, params, ppath, "partition-key-type", false,
									partition_key_types, false);
		if (pk_type == 4)
			dms_json_get_string(doc, params, ppath, "partition-key-name", true, false);
		if (pk_type == 3)
		{
			json_t	   *pk = json_object_get(params, "partition-key");
			static const char *const pk_keys[] = {"value", NULL};

			if (pk == NULL)
				dms_json_fail(doc, dms_json_path_key(ppath, "partition-key"),
							  "Add \"partition-key\": {\"value\": \"YourConstantKey\"}.",
							  "partition-key-type \"constant\" needs a partition-key value.");
			dms_json_check_keys(doc, pk, dms_json_path_key(ppath, "partition-key"), pk_keys);
			dms_json_get_string(doc, pk, dms_json_path_key(ppath, "partition-key"), "value", true, false);
		}

		excl = json_object_get(params, "exclude-columns");
		if (excl && !json_is_null(excl))
		{
			if (!json_is_array(excl))
				dms_json_fail(doc, dms_json_path_key(ppath, "exclude-columns"), NULL,
							  "Expected an array of column names but found %s.", dms_json_kind(excl));
			for (i = 0; i < json_array_size(excl); i++)
				if (!json_is_string(json_array_get(excl, i)) || json_string_length(json_array_get(excl, i)) == 0)
					dms_json_fail(doc, dms_json_path_index(dms_json_path_key(ppath, "exclude-columns"), i),
								  NULL, "Expected a column name but found %s.",
								  dms_json_show(json_array_get(excl, i)));
		}

		attrs = json_object_get(params, "attribute-mappings");
		if (attrs && !json_is_null(attrs))
		{
			char	   *apath = dms_json_path_key(ppath, "attribute-mappings");

			if (!json_is_array(attrs))
				dms_json_fail(doc, apath, NULL, "Expected an array but found %s.", dms_json_kind(attrs));
			for (i = 0; i < json_array_size(attrs); i++)
			{
				json_t	   *attr = json_array_get(attrs, i);
				char	   *path_i = dms_json_path_index(apath, i);
				int			atype;
				json_t	   *value;

				dms_json_check_keys(doc, attr, path_i, attribute_mapping_keys);
				if (!dms_json_get_string(doc, attr, path_i, "target-attribute-name", false, false) &&
					!dms_json_get_string(doc, attr, path_i, "attribute-name", false, false))
					dms_json_fail(doc, dms_json_path_key(path_i, "target-attribute-name"),
								  "Name the attribute the value is written to.",
								  "Required key \"target-attribute-name\" is missing.");
				atype = dms_json_get_enum(doc, attr, path_i, "attribute-type", true, attribute_types, false);
				dms_json_get_enum(doc, attr, path_i, "attribute-sub-type", false, attribute_sub_types, false);
				value = json_object_get(attr, "value");
				if (value == NULL || json_is_null(value))
					dms_json_fail(doc, dms_json_path_key(path_i, "value"),
								  "Give the value as a template such as \"${column}\".",
								  "Required key \"value\" is missing.");
				if (atype == 0)
				{
					if (!json_is_string(value))
						dms_json_fail(doc, dms_json_path_key(path_i, "value"),
									  "A scalar attribute takes a string template such as \"${lastname}, ${firstname}\".",
									  "Expected a string but found %s.", dms_json_kind(value));
					check_template(doc, dms_json_path_key(path_i, "value"), json_string_value(value));
				}
				else
					check_document_value(doc, dms_json_path_key(path_i, "value"), value);
			}
		}
	}
}

/*
 * table_mappings_validate
 *		Validate a whole table-mapping document.
 */
void
table_mappings_validate(Jsonb *mappings)
{
	DmsJsonDoc	doc = {"table mapping"};
	json_t	   *root = dms_json_from_jsonb(&doc, mappings);
	json_t	   *rules;
	static const char *const root_keys[] = {"rules", NULL};
	size_t		i;
	bool		has_selection = false;
	int64	   *ids;
	const char **names;

	/* An optional field set to null is absent, as for DMS. */
	dms_json_strip_nulls(root);
	dms_json_check_keys(&doc, root, "", root_keys);
	rules = json_object_get(root, "rules");
	if (rules == NULL || !json_is_array(rules) || json_array_size(rules) == 0)
		dms_json_fail(&doc, "rules",
					  "Add at least one selection rule, e.g. {\"rule-type\": \"selection\", \"rule-id\": \"1\", \"rule-name\": \"1\", \"object-locator\": {\"schema-name\": \"%\", \"table-name\": \"%\"}, \"rule-action\": \"include\"}.",
					  "\"rules\" must be a non-empty array.");

	ids = palloc(sizeof(int64) * json_array_size(rules));
	names = palloc(sizeof(char *) * json_array_size(rules));

	for (i = 0; i < json_array_size(rules); i++)
	{
		char	   *path = dms_json_path_index("rules", i);
		json_t	   *rule = json_array_get(rules, i);
		json_t	   *name;
		int			type;
		size_t		j;

		dms_json_expect_object(&doc, rule, path);
		type = dms_json_get_enum(&doc, rule, path, "rule-type", true, rule_types, false);
		dms_json_get_int(&doc, rule, path, "rule-id", true, 1, PG_INT64_MAX, &ids[i]);

		name = json_object_get(rule, "rule-name");
		if (name == NULL || json_is_null(name))
			dms_json_fail(&doc, dms_json_path_key(path, "rule-name"), "Give every rule a unique name.",
						  "Required key \"rule-name\" is missing.");
		if (json_is_string(name))
			names[i] = json_string_value(name);
		else if (json_is_integer(name))
			names[i] = psprintf("%lld", (long long) json_integer_value(name));
		else
			dms_json_fail(&doc, dms_json_path_key(path, "rule-name"), NULL,
						  "Expected a string but found %s.", dms_json_kind(name));

		for (j = 0; j < i; j++)
		{
			if (ids[j] == ids[i])
				dms_json_fail(&doc, dms_json_path_key(path, "rule-id"), "Give every rule a unique rule-id.",
							  "rule-id " INT64_FORMAT " is also used by rules[%zu].", ids[i], j);
			if (strcmp(names[j], names[i]) == 0)
				dms_json_fail(&doc, dms_json_path_key(path, "rule-name"), "Give every rule a unique rule-name.",
							  "rule-name \"%s\" is also used by rules[%zu].", names[i], j);
		}

		switch (type)
		{
			case 0:
				validate_selection(&doc, rule, path);
				if (strcmp(json_string_value(json_object_get(rule, "rule-action")), "exclude") != 0)
					has_selection = true;
				break;
			case 1:
				validate_transformation(&doc, rule, path);
				break;
			case 2:
				validate_table_settings(&doc, rule, path);
				break;
			case 3:
				validate_object_mapping(&doc, rule, path);
				break;
		}
	}

	if (!has_selection)
		dms_json_fail(&doc, "rules",
					  "Add a selection rule with rule-action \"include\" or \"explicit\"; exclude rules only narrow what includes select.",
					  "No selection rule includes any table.");
}
