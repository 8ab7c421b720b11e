/*-------------------------------------------------------------------------
 *
 * mapping.h
 *	  DMS table mappings compiled for use: which tables are replicated,
 *	  under which names, with which columns, rows and partition keys.
 *
 * A table-mapping document ({"rules": [...]}, checked by
 * table_mappings_validate) is compiled once per task into a MappingSet.
 * For each source table the set gives a MappingTablePlan, built once per
 * table, that a job then applies to every row: the selection decision, the
 * target schema and table names, the output columns, the object mapping
 * (attributes, partition key) and the source filters.
 *
 * Rules decided here (DMS leaves them open or documents them loosely):
 *
 *	Names	Schema, table and column names in rules are case-sensitive.
 *			Wildcards in selection, transformation and object-mapping
 *			locators: % any run of characters, _ one character, [abc] one
 *			of a set, [a-d] a range, so [_] and [%] are literal; characters
 *			are UTF-8 code points.  "explicit" rules and table-settings
 *			name one table exactly (no wildcards at all).
 *	Selection
 *			A table is selected when an include or explicit rule matches it
 *			and no exclude rule does: exclude wins over include and over
 *			explicit.  Rules with table-type "view" match views only,
 *			"all" both, "table" (the default) tables only.  The load-order
 *			of a table is the highest load-order of the rules selecting it
 *			(default 0; higher loads first).
 *	Filters
 *			Filters of an include rule apply to the tables it matches: the
 *			filters of one rule are AND-ed, the conditions of one filter
 *			OR-ed.  When several include rules match a table, a row is
 *			replicated if any of them accepts it (a rule without filters
 *			accepts every row; an explicit rule has none).  A filter on a
 *			column the table lacks makes the table's plan fail.
 *			Comparison depends on the column's DMS type:
 *			  INT1-8, UINT1-8, NUMERIC, REAL4, REAL8: exact decimal
 *				comparison of numbers (filter "10" equals value 10.0 and
 *				1e1; up to 80 significant digits);
 *			  DATE, DATETIME: as points in time; a filter value is
 *				YYYY-MM-DD or YYYY-MM-DD HH:MM:SS[.fraction] (T also
 *				accepted, a trailing Z ignored), a date alone is midnight;
 *			  TIME: HH:MM:SS[.fraction] (a leading date is ignored);
 *			  BOOLEAN: false < true (filter values true/false, t/f, 1/0,
 *				yes/no, y/n in any case);
 *			  everything else: the value's text, byte by byte (UTF-8 code
 *				point order, SQLite's BINARY collation).
 *			A filter value that is not valid for the column's type makes
 *			the plan fail.  NULL (or a value not available) matches only
 *			"null"; every other operator is false for it, noteq and
 *			notbetween included, as in SQL.  between is inclusive.
 *	Transformations
 *			Each schema, table and column takes the action of one rule: of
 *			the rules of that target whose locator matches it, the one with
 *			the lowest rule-id (DMS's documented rule).  Locators match
 *			source names.  convert-lowercase/-uppercase change ASCII
 *			letters only.  remove-prefix/-suffix and replace-prefix/-suffix
 *			leave a name that does not carry the (old) prefix/suffix alone.
 *			A name made empty, or two output columns with the same name,
 *			make the plan fail.
 *	Object mapping
 *			Of the object-mapping rules matching a table (wildcards
 *			allowed), the lowest rule-id applies.  target-table-name wins
 *			over a table transformation.  Column names in exclude-columns,
 *			${column} templates and partition-key-name are looked up among
 *			source names, then target names, exactly, then the same ignoring
 *			ASCII case (the DMS guide's Kinesis example writes lower-case
 *			names of mixed-case columns).  Templates read excluded and
 *			removed columns too.  ${x} with an unknown column is replaced by
 *			nothing, with a warning in the plan.  A mapped attribute whose
 *			name equals an output column replaces that column.
 *	Partition key types
 *			From the object mapping's partition-key-type; without one, DMS's
 *			observed default: primary-key for full load, and for changes
 *			schema-table, or primary-key when TargetMetadata
 *			ParallelApplyThreads > 0 (see dms_message.h for the keys).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_MAPPING_H
#define DMS_MAPPING_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "external_table.h"

/*
 * One column value of a row: the JSON text dms_value renders for it (a
 * number, a string with its quotes, true/false).  The text need not be
 * NUL-terminated.
 */
typedef struct DmsColumnValue
{
	const char *json;			/* JSON text; ignored when is_null/is_missing */
	int			len;			/* bytes of json */
	bool		is_null;		/* NULL: renders as null */
	bool		is_empty;		/* empty string, or zero bytes */
	bool		is_missing;		/* not known (e.g. a column the source did
								 * not log): left out of the message */
} DmsColumnValue;

/* A column of a source table. */
typedef struct MappingSourceColumn
{
	const char *name;
	DmsColumnType type;
	int64		length;			/* 0 if not known */
	int			precision;		/* NUMERIC */
	int			scale;			/* NUMERIC, DATETIME */
	bool		nullable;
	bool		is_pk;
} MappingSourceColumn;

/* A source table: schema (owner), name, columns in order. */
typedef struct MappingSourceTable
{
	const char *schema;
	const char *table;
	bool		is_view;
	int			ncolumns;
	const MappingSourceColumn *columns;
} MappingSourceTable;

/* Opaque compiled document. */
typedef struct MappingSet MappingSet;

typedef enum MappingSelectAction
{
	MAPPING_SELECT_NONE,		/* no selection rule matches */
	MAPPING_SELECT_INCLUDE,
	MAPPING_SELECT_EXPLICIT,
	MAPPING_SELECT_EXCLUDE
} MappingSelectAction;

/* The selection decision for one table. */
typedef struct MappingSelection
{
	bool		selected;
	MappingSelectAction action; /* action of the deciding rule */
	int64		rule_id;		/* deciding rule (the excluding one, or the
								 * lowest-id selecting one); 0 if none */
	const char *rule_name;		/* NULL if none */
	int64		load_order;		/* highest load-order of selecting rules */
	char	   *reason;			/* one sentence for people */
} MappingSelection;

typedef enum MappingFilterOp
{
	MAPPING_FILTER_LTE,			/* lte and its alias ste */
	MAPPING_FILTER_GTE,
	MAPPING_FILTER_EQ,
	MAPPING_FILTER_NOTEQ,
	MAPPING_FILTER_BETWEEN,
	MAPPING_FILTER_NOTBETWEEN,
	MAPPING_FILTER_NULL,
	MAPPING_FILTER_NOTNULL
} MappingFilterOp;

typedef enum MappingCompareKind
{
	MAPPING_COMPARE_NUMBER,
	MAPPING_COMPARE_TIMESTAMP,
	MAPPING_COMPARE_TIME,
	MAPPING_COMPARE_BOOLEAN,
	MAPPING_COMPARE_STRING
} MappingCompareKind;

/* Significant digits kept for numeric comparison. */
#define MAPPING_MAX_DIGITS 80

/* A number normalised as sign * 0.digits * 10^exponent, no trailing 0. */
typedef struct MappingNumber
{
	int			sign;			/* -1, 0 (the number zero) or 1 */
	int			exponent;
	int			ndigits;
	char		digits[MAPPING_MAX_DIGITS];
} MappingNumber;

/* Normalised date/time text: "YYYY-MM-DD HH:MM:SS.fffffffff" or the time. */
#define MAPPING_TIME_KEY_SIZE 32

/* A filter value ready for comparison. */
typedef struct MappingFilterValue
{
	const char *text;			/* as written in the rule */
	MappingNumber number;		/* MAPPING_COMPARE_NUMBER */
	char		time[MAPPING_TIME_KEY_SIZE];	/* TIMESTAMP, TIME */
	bool		boolean;		/* BOOLEAN */
} MappingFilterValue;

typedef struct MappingCondition
{
	MappingFilterOp op;
	const char *op_name;		/* as written: lte, ste, ... */
	MappingFilterValue value;	/* value, or start-value */
	MappingFilterValue end;		/* end-value */
} MappingCondition;

/* One filter: a column and its conditions (OR-ed). */
typedef struct MappingFilter
{
	int			column;			/* source column ordinal, 0-based */
	const char *column_name;
	MappingCompareKind kind;
	int			nconditions;
	MappingCondition *conditions;
} MappingFilter;

/* The filters of one include rule (AND-ed). */
typedef struct MappingFilterSet
{
	int64		rule_id;
	int			nfilters;
	MappingFilter *filters;
} MappingFilterSet;

/* An output column: target name and where the value comes from. */
typedef struct MappingOutputColumn
{
	const char *name;			/* target name */
	int			source;			/* source column ordinal, 0-based */
	int64		rule_id;		/* transformation naming it, 0 if none */
	const char *action;			/* that rule's action, NULL if none */
} MappingOutputColumn;

/* What became of each source column (for previews). */
typedef struct MappingColumnFate
{
	const char *target;			/* target name, NULL if left out */
	int64		rule_id;		/* transformation or object mapping deciding
								 * it, 0 if none */
	const char *action;			/* e.g. "rename", "remove-column",
								 * "exclude-columns"; NULL if none */
} MappingColumnFate;

/* ${column} templates: literal parts and column references. */
typedef struct MappingTemplatePart
{
	const char *text;			/* literal text as written */
	int			len;
	int			column;			/* source ordinal, -1 for a literal or an
								 * unknown column */
} MappingTemplatePart;

typedef struct MappingTemplate
{
	const char *source;			/* as written */
	int			nparts;
	MappingTemplatePart *parts;
} MappingTemplate;

/* A document attribute value: an object of templates, or a template. */
typedef struct MappingDocNode
{
	const char *key;			/* member name, NULL at the top */
	bool		is_object;
	MappingTemplate value;		/* when !is_object */
	int			nmembers;		/* when is_object */
	struct MappingDocNode *members;
} MappingDocNode;

typedef enum MappingAttributeSubType
{
	MAPPING_SUBTYPE_STRING,
	MAPPING_SUBTYPE_NUMBER,
	MAPPING_SUBTYPE_JSON
} MappingAttributeSubType;

typedef struct MappingAttribute
{
	const char *name;			/* target-attribute-name */
	bool		is_document;	/* attribute-type document */
	MappingAttributeSubType sub_type;
	MappingTemplate scalar;		/* scalar */
	MappingDocNode doc;			/* document */
} MappingAttribute;

typedef enum MappingPartitionKeyType
{
	MAPPING_PKT_DEFAULT,		/* no partition-key-type: DMS's default */
	MAPPING_PKT_SCHEMA_TABLE,
	MAPPING_PKT_TRANSACTION_ID,
	MAPPING_PKT_PRIMARY_KEY,
	MAPPING_PKT_CONSTANT,
	MAPPING_PKT_ATTRIBUTE_NAME
} MappingPartitionKeyType;

/* Everything the mappings say about one source table. */
typedef struct MappingTablePlan
{
	/* the source table (copied) */
	char	   *source_schema;
	char	   *source_table;
	int			nsource;
	MappingSourceColumn *source;

	MappingSelection selection;

	/* target names */
	char	   *target_schema;
	int64		schema_rule_id; /* 0: source name kept */
	const char *schema_action;
	char	   *target_table;
	int64		table_rule_id;	/* transformation or object mapping; 0: kept */
	const char *table_action;	/* e.g. "rename", "target-table-name" */

	/* output columns, in source order */
	int			noutput;
	MappingOutputColumn *output;
	MappingColumnFate *fates;	/* per source column */

	/* primary key: source ordinals in column order */
	int			npk;
	int		   *pk;

	/* object mapping */
	int64		object_rule_id; /* 0: none */
	const char *object_rule_name;
	bool		to_document;	/* map-record-to-document */
	MappingPartitionKeyType pk_type;
	const char *pk_name;		/* partition-key-name */
	int			pk_attribute;	/* attribute index for pk_name, -1 */
	int			pk_column;		/* source ordinal for pk_name, -1 */
	const char *pk_constant;	/* partition-key value */
	int			nattributes;
	MappingAttribute *attributes;

	/* source filters: rows pass if any set passes (none: every row) */
	int			nfiltersets;
	MappingFilterSet *filtersets;

	/* table-settings rule for this table, 0 if none */
	int64		table_settings_rule_id;
	const char *lob_mode;		/* lob-settings mode, NULL if not given */

	List	   *warnings;		/* char *: things that work, but oddly */
	char	   *error;			/* why the table cannot be replicated, or
								 * NULL */
} MappingTablePlan;

/*
 * Validate (table_mappings_validate) and compile a table-mapping document.
 * Allocated in CurrentMemoryContext; errors are ereport(ERROR).
 */
extern MappingSet *mapping_compile(Jsonb *mappings);

/* The selection decision for schema.table (a view when is_view). */
extern void mapping_select(const MappingSet *set, const char *schema,
						   const char *table, bool is_view,
						   MappingSelection *result);

/* Shorthand: is schema.table (a table, not a view) selected? */
extern bool mapping_table_selected(const MappingSet *set, const char *schema,
								   const char *table);

/*
 * The plan for a source table, allocated in CurrentMemoryContext.  It is
 * built also for tables that are not selected (for previews).  Problems
 * that prevent replication are in plan->error (the job treats the table as
 * failed); odd but workable things in plan->warnings.
 */
extern MappingTablePlan *mapping_plan_table(const MappingSet *set,
											const MappingSourceTable *source);

/* The plan for a table of an external table definition. */
extern MappingTablePlan *mapping_plan_external_table(const MappingSet *set,
													 const ExternalTable *table);

/*
 * Whether a row passes the plan's source filters.  values holds one value
 * per source column (plan->nsource), in source order.  No allocation.
 */
extern bool mapping_row_passes(const MappingTablePlan *plan,
							   const DmsColumnValue *values);

/* Whether one condition holds for a value (as mapping_row_passes does). */
extern bool mapping_condition_holds(const MappingCondition *cond,
									MappingCompareKind kind,
									const DmsColumnValue *value);

/* The comparison kind for a DMS column type. */
extern MappingCompareKind mapping_compare_kind(DmsColumnType type);
extern const char *mapping_compare_kind_name(MappingCompareKind kind);

/*
 * The partition-key-type name DMS writes ("schema-table", "primary-key",
 * ...); MAPPING_PKT_DEFAULT gives NULL.
 */
extern const char *mapping_partition_key_type_name(MappingPartitionKeyType type);

/*
 * Append a value's text as a template or a partition key uses it: a JSON
 * string's characters unescaped, other JSON text as it is, NULL as
 * nothing.
 */
extern void mapping_append_value_text(StringInfo out, const DmsColumnValue *value);

#endif							/* DMS_MAPPING_H */
