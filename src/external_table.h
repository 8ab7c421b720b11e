/*-------------------------------------------------------------------------
 *
 * external_table.h
 *	  DMS external table definitions: how S3 CSV files map to typed tables.
 *
 * The JSON document is accepted exactly as AWS DMS documents it ("Using
 * Amazon S3 as a source"), with numbers and booleans written either as JSON
 * values or as strings.  Parsing validates every field and raises an error
 * naming the JSON path of the first problem.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXTERNAL_TABLE_H
#define EXTERNAL_TABLE_H

/* Largest definition DMS accepts. */
#define EXTERNAL_TABLE_DEFINITION_MAX_BYTES (2 * 1024 * 1024)

typedef enum DmsColumnType
{
	DMS_TYPE_BYTE,
	DMS_TYPE_DATE,
	DMS_TYPE_TIME,
	DMS_TYPE_DATETIME,
	DMS_TYPE_INT1,
	DMS_TYPE_INT2,
	DMS_TYPE_INT4,
	DMS_TYPE_INT8,
	DMS_TYPE_NUMERIC,
	DMS_TYPE_REAL4,
	DMS_TYPE_REAL8,
	DMS_TYPE_STRING,
	DMS_TYPE_UINT1,
	DMS_TYPE_UINT2,
	DMS_TYPE_UINT4,
	DMS_TYPE_UINT8,
	DMS_TYPE_BLOB,
	DMS_TYPE_CLOB,
	DMS_TYPE_BOOLEAN
} DmsColumnType;

typedef struct ExternalColumn
{
	char	   *name;
	DmsColumnType type;
	int64		length;			/* ColumnLength, 0 if not given */
	int			precision;		/* ColumnPrecision (NUMERIC), 0 if not given */
	int			scale;			/* ColumnScale (NUMERIC digits, DATETIME
								 * fractional digits), 0 by default */
	bool		nullable;		/* ColumnNullable, default false */
	bool		is_pk;			/* ColumnIsPk, default false */
	char	   *date_format;	/* ColumnDateFormat or NULL */
} ExternalColumn;

typedef struct ExternalTable
{
	char	   *owner;			/* TableOwner (schema) */
	char	   *name;			/* TableName */
	char	   *path;			/* TablePath */
	int			ncolumns;
	ExternalColumn *columns;
} ExternalTable;

typedef struct ExternalTableDefinition
{
	int			ntables;
	ExternalTable *tables;
} ExternalTableDefinition;

/*
 * Parse and validate a definition.  "what" names the document in error
 * messages (e.g. "external table definition").
 */
extern ExternalTableDefinition *external_table_definition_parse(const char *text,
																size_t len,
																const char *what);

/* Upper-case DMS name of a column type, e.g. "NUMERIC". */
extern const char *dms_column_type_name(DmsColumnType type);

#endif							/* EXTERNAL_TABLE_H */
