/*-------------------------------------------------------------------------
 *
 * external_table.c
 *	  Parse and validate DMS external table definitions.
 *
 * Rules follow the DMS user guide ("Using Amazon S3 as a source"): the
 * document is at most 2 MB; TableCount and TableColumnsTotal must match the
 * arrays they count; BYTE and STRING need ColumnLength; NUMERIC needs
 * ColumnPrecision (1-38) and takes ColumnScale (0-31, not above the
 * precision); DATETIME takes ColumnScale as fractional-second digits (0-9);
 * ColumnDateFormat is one of the documented formats and only for DATE, TIME
 * and DATETIME.  Duplicate tables and columns are rejected.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dms_json.h"
#include "external_table.h"
#include "s3.h"

static const char *const column_type_names[] = {
	"BYTE", "DATE", "TIME", "DATETIME", "INT1", "INT2", "INT4", "INT8",
	"NUMERIC", "REAL4", "REAL8", "STRING", "UINT1", "UINT2", "UINT4", "UINT8",
	"BLOB", "CLOB", "BOOLEAN", NULL
};

static const char *const date_formats[] = {
	"YYYY-MM-dd HH:mm:ss",
	"YYYY-MM-dd HH:mm:ss.F",
	"YYYY/MM/dd HH:mm:ss",
	"YYYY/MM/dd HH:mm:ss.F",
	"MM/dd/YYYY HH:mm:ss",
	"MM/dd/YYYY HH:mm:ss.F",
	"YYYYMMdd HH:mm:ss",
	"YYYYMMdd HH:mm:ss.F",
	NULL
};

static const char *const root_keys[] = {"TableCount", "Tables", NULL};
static const char *const table_keys[] = {
	"TableName", "TablePath", "TableOwner", "TableColumns", "TableColumnsTotal", NULL
};
static const char *const column_keys[] = {
	"ColumnName", "ColumnType", "ColumnLength", "ColumnPrecision", "ColumnScale",
	"ColumnNullable", "ColumnIsPk", "ColumnDateFormat", NULL
};

/*
 * dms_column_type_name
 *		DMS spelling of a column type.
 */
const char *
dms_column_type_name(DmsColumnType type)
{
	return column_type_names[type];
}

/*
 * column_type_alias
 *		Column types DMS accepts beyond its documented list, as the type they
 *		stand for: TIMESTAMP (the AWS blog's own definition) is DATETIME.
 *		-1 for anything else.
 */
static int
column_type_alias(const json_t *value)
{
	if (json_is_string(value) && pg_strcasecmp(json_string_value(value), "TIMESTAMP") == 0)
		return DMS_TYPE_DATETIME;
	return -1;
}

/*
 * parse_column
 *		Validate one element of TableColumns.
 */
static void
parse_column(const DmsJsonDoc *doc, json_t *obj, const char *path, ExternalColumn *col)
{
	int64		n;
	int			type;
	bool		has_length,
				has_precision,
				has_scale;

	dms_json_check_keys(doc, obj, path, column_keys);

	col->name = pstrdup(dms_json_get_string(doc, obj, path, "ColumnName", true, false));
	type = column_type_alias(json_object_get(obj, "ColumnType"));
	if (type < 0)
		type = dms_json_get_enum(doc, obj, path, "ColumnType", true, column_type_names, true);
	col->type = (DmsColumnType) type;

	has_length = dms_json_get_int(doc, obj, path, "ColumnLength", false, 1, PG_INT32_MAX, &n);
	col->length = has_length ? n : 0;

	has_precision = dms_json_get_int(doc, obj, path, "ColumnPrecision", false, 1, 38, &n);
	col->precision = has_precision ? (int) n : 0;

	has_scale = dms_json_get_int(doc, obj, path, "ColumnScale", false, 0,
								 col->type == DMS_TYPE_DATETIME ? 9 : 31, &n);
	col->scale = has_scale ? (int) n : 0;

	if (!dms_json_get_bool(doc, obj, path, "ColumnNullable", false, false, &col->nullable))
		col->nullable = false;
	if (!dms_json_get_bool(doc, obj, path, "ColumnIsPk", false, false, &col->is_pk))
		col->is_pk = false;

	col->date_format = NULL;
	if (json_object_get(obj, "ColumnDateFormat") != NULL &&
		!json_is_null(json_object_get(obj, "ColumnDateFormat")))
	{
		const char *fmt = dms_json_get_string(doc, obj, path, "ColumnDateFormat", true, false);

		if (col->type != DMS_TYPE_DATE && col->type != DMS_TYPE_TIME &&
			col->type != DMS_TYPE_DATETIME)
			dms_json_fail(doc, dms_json_path_key(path, "ColumnDateFormat"),
						  "Remove ColumnDateFormat, or change ColumnType to DATE, TIME or DATETIME.",
						  "ColumnDateFormat applies only to DATE, TIME and DATETIME columns; column \"%s\" is %s.",
						  col->name, column_type_names[type]);
		dms_json_match_enum(doc, dms_json_path_key(path, "ColumnDateFormat"), fmt,
							date_formats, false);
		col->date_format = pstrdup(fmt);
	}

	/* Per-type requirements. */
	switch (col->type)
	{
		case DMS_TYPE_BYTE:
		case DMS_TYPE_STRING:
			if (!has_length)
				dms_json_fail(doc, dms_json_path_key(path, "ColumnLength"),
							  "Add \"ColumnLength\": the largest value in bytes, from 1 to 2147483647.",
							  "%s column \"%s\" requires ColumnLength.",
							  column_type_names[type], col->name);
			break;
		case DMS_TYPE_NUMERIC:
			if (!has_precision)
				dms_json_fail(doc, dms_json_path_key(path, "ColumnPrecision"),
							  "Add \"ColumnPrecision\" (total digits, 1 to 38) and \"ColumnScale\" (digits after the point, 0 to 31).",
							  "NUMERIC column \"%s\" requires ColumnPrecision.", col->name);
			if (col->scale > col->precision)
				dms_json_fail(doc, dms_json_path_key(path, "ColumnScale"),
							  "ColumnScale counts the digits after the point and cannot exceed ColumnPrecision.",
							  "ColumnScale %d is greater than ColumnPrecision %d.",
							  col->scale, col->precision);
			break;
		default:
			break;
	}

	if (has_length && col->type != DMS_TYPE_BYTE && col->type != DMS_TYPE_STRING &&
		col->type != DMS_TYPE_BLOB && col->type != DMS_TYPE_CLOB)
		dms_json_fail(doc, dms_json_path_key(path, "ColumnLength"),
					  "Remove ColumnLength from this column.",
					  "ColumnLength applies only to BYTE, STRING, BLOB and CLOB columns; column \"%s\" is %s.",
					  col->name, column_type_names[type]);
	if (has_precision && col->type != DMS_TYPE_NUMERIC)
		dms_json_fail(doc, dms_json_path_key(path, "ColumnPrecision"),
					  "Remove ColumnPrecision from this column.",
					  "ColumnPrecision applies only to NUMERIC columns; column \"%s\" is %s.",
					  col->name, column_type_names[type]);
	if (has_scale && col->type != DMS_TYPE_NUMERIC && col->type != DMS_TYPE_DATETIME)
		dms_json_fail(doc, dms_json_path_key(path, "ColumnScale"),
					  "Remove ColumnScale from this column.",
					  "ColumnScale applies only to NUMERIC and DATETIME columns; column \"%s\" is %s.",
					  col->name, column_type_names[type]);
}

/*
 * parse_table
 *		Validate one element of Tables.
 */
static void
parse_table(const DmsJsonDoc *doc, json_t *obj, const char *path, ExternalTable *table)
{
	json_t	   *columns;
	char	   *columns_path = dms_json_path_key(path, "TableColumns");
	int64		total;
	size_t		i;

	dms_json_check_keys(doc, obj, path, table_keys);

	table->name = pstrdup(dms_json_get_string(doc, obj, path, "TableName", true, false));
	table->owner = pstrdup(dms_json_get_string(doc, obj, path, "TableOwner", true, false));
	table->path = pstrdup(dms_json_get_string(doc, obj, path, "TablePath", true, false));
	if (table->path[0] == '/')
		dms_json_fail(doc, dms_json_path_key(path, "TablePath"),
					  "Write the path relative to the bucket (and BucketFolder), e.g. \"hr/employee/\".",
					  "TablePath must not start with \"/\"; found \"%s\".", table->path);
	s3_check_key_segments(psprintf("%s %s.TablePath", doc->what, path), table->path, 0);

	columns = json_object_get(obj, "TableColumns");
	if (columns == NULL || json_is_null(columns))
		dms_json_fail(doc, columns_path, "List the table's columns in CSV column order.",
					  "Required key \"TableColumns\" is missing.");
	if (!json_is_array(columns))
		dms_json_fail(doc, columns_path, NULL, "Expected an array but found %s.",
					  dms_json_kind(columns));
	if (json_array_size(columns) == 0)
		dms_json_fail(doc, columns_path, "List the table's columns in CSV column order.",
					  "Table %s.%s has no columns.", table->owner, table->name);

	dms_json_get_int(doc, obj, path, "TableColumnsTotal", true, 1, PG_INT32_MAX, &total);
	if ((size_t) total != json_array_size(columns))
		dms_json_fail(doc, dms_json_path_key(path, "TableColumnsTotal"),
					  "Set TableColumnsTotal to the number of entries in TableColumns.",
					  "TableColumnsTotal is " INT64_FORMAT " but TableColumns has %zu entries.",
					  total, json_array_size(columns));

	table->ncolumns = (int) json_array_size(columns);
	table->columns = palloc0(sizeof(ExternalColumn) * table->ncolumns);
	for (i = 0; i < json_array_size(columns); i++)
	{
		char	   *col_path = dms_json_path_index(columns_path, i);
		size_t		j;

		parse_column(doc, json_array_get(columns, i), col_path, &table->columns[i]);
		for (j = 0; j < i; j++)
			if (strcmp(table->columns[j].name, table->columns[i].name) == 0)
				dms_json_fail(doc, dms_json_path_key(col_path, "ColumnName"),
							  "Give every column of a table a different name.",
							  "Column \"%s\" is already defined at %s.",
							  table->columns[i].name, dms_json_path_index(columns_path, j));
	}
}

/*
 * external_table_definition_parse
 *		Validate a whole definition and return its tables and columns.
 */
ExternalTableDefinition *
external_table_definition_parse(const char *text, size_t len, const char *what)
{
	DmsJsonDoc	doc = {what};
	ExternalTableDefinition *def;
	json_t	   *root;
	json_t	   *tables;
	int64		count;
	size_t		i;

	if (len > EXTERNAL_TABLE_DEFINITION_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", what),
				 errdetail("The definition has %zu bytes; DMS accepts at most %d bytes (2 MB).",
						   len, EXTERNAL_TABLE_DEFINITION_MAX_BYTES),
				 errhint("Split the tables over several S3 source endpoints.")));

	root = dms_json_parse(&doc, text, len);
	dms_json_check_keys(&doc, root, "", root_keys);

	tables = json_object_get(root, "Tables");
	if (tables == NULL || json_is_null(tables))
		dms_json_fail(&doc, "Tables", "Add \"Tables\": an array with one object per source table.",
					  "Required key \"Tables\" is missing.");
	if (!json_is_array(tables))
		dms_json_fail(&doc, "Tables", NULL, "Expected an array but found %s.",
					  dms_json_kind(tables));
	if (json_array_size(tables) == 0)
		dms_json_fail(&doc, "Tables", "Describe at least one table.", "Tables is empty.");

	dms_json_get_int(&doc, root, "", "TableCount", true, 1, PG_INT32_MAX, &count);
	if ((size_t) count != json_array_size(tables))
		dms_json_fail(&doc, "TableCount", "Set TableCount to the number of entries in Tables.",
					  "TableCount is " INT64_FORMAT " but Tables has %zu entries.",
					  count, json_array_size(tables));

	def = palloc0(sizeof(ExternalTableDefinition));
	def->ntables = (int) json_array_size(tables);
	def->tables = palloc0(sizeof(ExternalTable) * def->ntables);

	for (i = 0; i < json_array_size(tables); i++)
	{
		char	   *table_path = dms_json_path_index("Tables", i);
		size_t		j;

		parse_table(&doc, json_array_get(tables, i), table_path, &def->tables[i]);
		for (j = 0; j < i; j++)
			if (strcmp(def->tables[j].owner, def->tables[i].owner) == 0 &&
				strcmp(def->tables[j].name, def->tables[i].name) == 0)
				dms_json_fail(&doc, dms_json_path_key(table_path, "TableName"),
							  "Describe each table once.",
							  "Table %s.%s is already defined at %s.",
							  def->tables[i].owner, def->tables[i].name,
							  dms_json_path_index("Tables", j));
	}
	return def;
}
