/*-------------------------------------------------------------------------
 *
 * catalog_sql.c
 *	  SQL-callable validators behind the catalog's constraints.
 *
 * Each check_* function returns true or raises an error naming the
 * offending place; the catalog tables use them in CHECK constraints, so the
 * same validation applies to the registration functions and to plain
 * INSERT/UPDATE by an administrator.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "funcapi.h"
#include "nodes/pg_list.h"

#include "dms_json.h"
#include "external_table.h"
#include "s3.h"
#include "settings_spec.h"

PG_FUNCTION_INFO_V1(dms_check_identifier);
PG_FUNCTION_INFO_V1(dms_check_endpoint_settings);
PG_FUNCTION_INFO_V1(dms_check_s3_key_part);
PG_FUNCTION_INFO_V1(dms_check_task_settings);
PG_FUNCTION_INFO_V1(dms_check_table_mappings);
PG_FUNCTION_INFO_V1(dms_parse_external_table_definition);

/*
 * dms_check_identifier
 *		DMS identifier rules for endpoint and task names: 1 to 255 ASCII
 *		letters, digits and hyphens, starting with a letter, not ending with
 *		a hyphen and without two hyphens in a row.
 */
Datum
dms_check_identifier(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	size_t		len = strlen(name);
	const char *p;
	const char *problem = NULL;

	if (len == 0 || len > 255)
		problem = "it must have 1 to 255 characters";
	else if (!isalpha((unsigned char) name[0]) || (unsigned char) name[0] > 127)
		problem = "it must start with a letter";
	else if (name[len - 1] == '-')
		problem = "it must not end with a hyphen";
	else if (strstr(name, "--") != NULL)
		problem = "it must not contain two hyphens in a row";
	else
		for (p = name; *p; p++)
			if ((unsigned char) *p > 127 || !(isalnum((unsigned char) *p) || *p == '-'))
			{
				problem = "it may contain only ASCII letters, digits and hyphens";
				break;
			}

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid %s name \"%s\"", kind, name),
				 errdetail("The name breaks the AWS DMS identifier rules: %s.", problem),
				 errhint("Use 1 to 255 ASCII letters, digits and hyphens, starting with a letter, e.g. \"s3-source-1\".")));
	PG_RETURN_BOOL(true);
}

/*
 * dms_check_endpoint_settings
 *		check_endpoint_settings(engine, endpoint_type, settings)
 */
Datum
dms_check_endpoint_settings(PG_FUNCTION_ARGS)
{
	endpoint_settings_validate(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							   text_to_cstring(PG_GETARG_TEXT_PP(1)),
							   PG_GETARG_JSONB_P(2));
	PG_RETURN_BOOL(true);
}

/*
 * dms_check_s3_key_part
 *		check_s3_key_part(setting, value): value may be part of an S3 key
 *		(s3_check_key_segments); the error names setting.
 */
Datum
dms_check_s3_key_part(PG_FUNCTION_ARGS)
{
	s3_check_key_segments(text_to_cstring(PG_GETARG_TEXT_PP(0)),
						  text_to_cstring(PG_GETARG_TEXT_PP(1)), 0);
	PG_RETURN_BOOL(true);
}

/*
 * dms_check_task_settings
 *		check_task_settings(settings)
 */
Datum
dms_check_task_settings(PG_FUNCTION_ARGS)
{
	task_settings_validate(PG_GETARG_JSONB_P(0));
	PG_RETURN_BOOL(true);
}

/*
 * dms_check_table_mappings
 *		check_table_mappings(mappings)
 */
Datum
dms_check_table_mappings(PG_FUNCTION_ARGS)
{
	table_mappings_validate(PG_GETARG_JSONB_P(0));
	PG_RETURN_BOOL(true);
}

/*
 * dms_parse_external_table_definition
 *		parse_external_table_definition(definition text): one row per column
 *		of every table, in definition order, after full validation.
 */
Datum
dms_parse_external_table_definition(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *definition = PG_GETARG_TEXT_PP(0);
	ExternalTableDefinition *def;
	int			t,
				c;

	InitMaterializedSRF(fcinfo, 0);

	def = external_table_definition_parse(VARDATA_ANY(definition),
										  VARSIZE_ANY_EXHDR(definition),
										  "external table definition");

	for (t = 0; t < def->ntables; t++)
	{
		ExternalTable *table = &def->tables[t];

		for (c = 0; c < table->ncolumns; c++)
		{
			ExternalColumn *col = &table->columns[c];
			Datum		values[13];
			bool		nulls[13] = {0};

			values[0] = Int32GetDatum(t + 1);
			values[1] = CStringGetTextDatum(table->owner);
			values[2] = CStringGetTextDatum(table->name);
			values[3] = CStringGetTextDatum(table->path);
			values[4] = Int32GetDatum(c + 1);
			values[5] = CStringGetTextDatum(col->name);
			values[6] = CStringGetTextDatum(dms_column_type_name(col->type));
			values[7] = Int64GetDatum(col->length);
			nulls[7] = (col->length == 0);
			values[8] = Int32GetDatum(col->precision);
			nulls[8] = (col->type != DMS_TYPE_NUMERIC);
			values[9] = Int32GetDatum(col->scale);
			nulls[9] = (col->type != DMS_TYPE_NUMERIC && col->type != DMS_TYPE_DATETIME);
			values[10] = BoolGetDatum(col->nullable);
			values[11] = BoolGetDatum(col->is_pk);
			if (col->date_format)
				values[12] = CStringGetTextDatum(col->date_format);
			else
				nulls[12] = true;

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(dms_json_document);
PG_FUNCTION_INFO_V1(dms_settings_without_effect);

/*
 * dms_json_document
 *		json_document(doc jsonb, what text): a JSON string holding a JSON
 *		object or array (as the DMS API returns TableMappings and
 *		ReplicationTaskSettings) becomes the document it holds; any other
 *		value is returned unchanged.  what names the document in errors.
 */
Datum
dms_json_document(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	DmsJsonDoc	doc;
	json_t	   *value;
	char	   *out;

	if (!JB_ROOT_IS_SCALAR(jb))
		PG_RETURN_JSONB_P(jb);
	doc.what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	value = dms_json_from_jsonb(&doc, jb);
	if (!json_is_object(value) && !json_is_array(value))
		PG_RETURN_JSONB_P(jb);
	out = dms_json_dumps(value, JSON_COMPACT, doc.what);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out)));
}

/*
 * dms_settings_without_effect
 *		settings_without_effect(engine, endpoint_type, settings): the keys of
 *		valid endpoint settings that are accepted without effect, and why;
 *		settings_without_effect(task_settings): the same for task settings.
 */
Datum
dms_settings_without_effect(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *list;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_NARGS() == 1)
		list = task_settings_no_effect(PG_GETARG_JSONB_P(0));
	else
		list = endpoint_settings_no_effect(text_to_cstring(PG_GETARG_TEXT_PP(0)),
										   text_to_cstring(PG_GETARG_TEXT_PP(1)),
										   PG_GETARG_JSONB_P(2));
	foreach(lc, list)
	{
		SettingNoEffect *item = lfirst(lc);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(item->key);
		values[1] = CStringGetTextDatum(item->reason);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
