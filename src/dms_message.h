/*-------------------------------------------------------------------------
 *
 * dms_message.h
 *	  The Kinesis record (data bytes and partition key) for one change, in
 *	  AWS DMS's message format.
 *
 * A job makes one DmsMessageWriter per table (from the table's mapping plan
 * and the task's settings) and then calls dms_message_build() per change;
 * the writer keeps the table's JSON keys and names escaped in advance and
 * writes straight into StringInfo buffers.
 *
 * Message (DMS user guide, Kinesis target; field order of its example):
 *
 *	data record		{"data": {...}, <before image>, "metadata": {...}}
 *	control record	{"control": {...}, "metadata": {...}}, "control" only
 *					with IncludeControlDetails
 *	metadata		timestamp, record-type, operation, partition-key-type,
 *					partition-key-value, schema-name, table-name,
 *					transaction-id, transaction-record-id,
 *					prev-transaction-id, prev-transaction-record-id,
 *					commit-timestamp, stream-position, event-id
 *
 * Rules decided here (DMS leaves them open):
 *
 *	Whitespace	MessageFormat json: one member per line, indented with one
 *				tab per level, "key": value with one space, no trailing
 *				newline; an empty object is {}.  json-unformatted: the same
 *				without any whitespace, on one line, followed by one "\n"
 *				(records concatenated by Firehose stay one JSON document
 *				per line).  Column values are written as dms_value renders
 *				them, in both formats.
 *	Timestamps	UTC, "2019-10-31T22:53:59.721201Z" (microseconds, Z), for
 *				timestamp and commit-timestamp.
 *	event-id	The caller's stable event id (the same for a change sent
 *				again after a restart) is the last metadata field,
 *				"event-id": "<id>", only when given: consumers drop
 *				duplicates on it, DMS consumers ignore a field they do not
 *				know.
 *	Before image
 *				With EnableBeforeImage, update records carry the field
 *				named FieldName between "data" and "metadata": an object of
 *				the before values the source gave (missing ones are left
 *				out, so a PostgreSQL update that keeps its key gives {}),
 *				per ColumnFilter: pk-only the primary key columns, non-lob
 *				and all every column; BLOB and CLOB columns never (DMS:
 *				"the before image doesn't support LOB columns").  Output
 *				column names; IncludeNullAndEmpty applies as to data.
 *	Transaction metadata
 *				Only for insert, update and delete records whose
 *				transaction is known.  transaction-id is then always
 *				written (as DMS does even without IncludeTransactionDetails);
 *				transaction-record-id, prev-transaction-id and
 *				prev-transaction-record-id (when a previous transaction is
 *				known), commit-timestamp and stream-position (when known)
 *				only with IncludeTransactionDetails.  Ids are JSON numbers.
 *	Partition keys
 *				schema-table	"schema.table" (target names)
 *				primary-key		the primary key values' text joined with
 *								"."; with PartitionIncludeSchemaTable
 *								prefixed "schema.table."
 *				attribute-name	the text of the mapped attribute (a document
 *								as compact JSON) or of the column
 *				constant		the rule's value
 *				transaction-id	the transaction id in decimal
 *				control records	"TaskId.schema.table", partition-key-type
 *								task-id, partition-key-value TaskId
 *				A NULL key column counts as an empty string ("eu..17").  A
 *				key that would be empty (every key column NULL, no primary
 *				key, no transaction in a full load, an unknown or empty
 *				attribute) falls back to schema-table, and the metadata
 *				says schema-table.
 *				Keys are cut to Kinesis's 256 characters.
 *				partition-key-value is the key, written with
 *				IncludePartitionValue unless the type is schema-table.
 *	Null and empty
 *				Without IncludeNullAndEmpty, NULL and empty columns are
 *				left out of data, _doc and before images; mapped
 *				attributes are always written.  A ${column} of a NULL
 *				column is replaced by nothing.
 *	NoHexPrefix	Drops the 0x of BYTE and BLOB values (idempotent if
 *				dms_value already did).
 *	Control operations
 *				create-table is always sent; rename-table, drop-table,
 *				change-columns, add-column, drop-column, rename-column and
 *				column-type-change only with IncludeTableAlterOperations
 *				(dms_message_build returns false otherwise).
 *				truncate-table (a PostgreSQL TRUNCATE) is always sent.
 *	Transaction end and unchanged columns (PostgreSQL sources)
 *				A change with transaction_last gets "transaction-last":
 *				true in its metadata (after stream-position); one whose
 *				source left column values out (unchanged TOASTed values)
 *				lists their output names in "unchanged-columns" (before
 *				event-id): consumers keep the values they have.  With
 *				IncludeControlDetails, "control" holds the caller's object,
 *				or for create-table without one the table definition
 *				(dms_message_append_table_def), or {}.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_MESSAGE_H
#define DMS_MESSAGE_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "mapping.h"

struct json_t;

/* Longest partition key Kinesis accepts, in characters. */
#define DMS_MESSAGE_MAX_KEY_CHARS 256

/* Length of a formatted timestamp with its NUL. */
#define DMS_MESSAGE_TIMESTAMP_SIZE 40

typedef enum DmsOperation
{
	DMS_OP_LOAD,
	DMS_OP_INSERT,
	DMS_OP_UPDATE,
	DMS_OP_DELETE,
	/* control operations */
	DMS_OP_CREATE_TABLE,
	DMS_OP_RENAME_TABLE,
	DMS_OP_DROP_TABLE,
	DMS_OP_CHANGE_COLUMNS,
	DMS_OP_ADD_COLUMN,
	DMS_OP_DROP_COLUMN,
	DMS_OP_RENAME_COLUMN,
	DMS_OP_COLUMN_TYPE_CHANGE,
	DMS_OP_TRUNCATE_TABLE		/* always sent, like create-table */
} DmsOperation;

#define DMS_OPERATION_IS_CONTROL(op)	((op) >= DMS_OP_CREATE_TABLE)

typedef enum DmsBeforeImageFilter
{
	DMS_BEFORE_IMAGE_PK_ONLY,
	DMS_BEFORE_IMAGE_NON_LOB,
	DMS_BEFORE_IMAGE_ALL
} DmsBeforeImageFilter;

/* KinesisSettings and task settings that shape messages. */
typedef struct DmsMessageSettings
{
	bool		unformatted;	/* MessageFormat json-unformatted */
	bool		include_transaction_details;
	bool		include_partition_value;
	bool		partition_include_schema_table;
	bool		include_table_alter_operations;
	bool		include_control_details;
	bool		include_null_and_empty;
	bool		no_hex_prefix;
	bool		before_image;	/* BeforeImageSettings.EnableBeforeImage */
	const char *before_image_field; /* FieldName */
	DmsBeforeImageFilter before_image_filter;	/* ColumnFilter */
	bool		parallel_apply; /* TargetMetadata.ParallelApplyThreads > 0 */
	const char *task_id;		/* for control records' partition keys */
} DmsMessageSettings;

/* What is known of a change's transaction. */
typedef struct DmsTransaction
{
	bool		has_id;
	uint64		id;
	bool		has_record_id;
	int64		record_id;		/* position in the transaction, from 1 */
	bool		has_prev;
	uint64		prev_id;
	int64		prev_record_id;
	bool		has_commit_timestamp;
	TimestampTz commit_timestamp;
	const char *stream_position;	/* NULL if unknown */
} DmsTransaction;

/* One change to write. */
typedef struct DmsChange
{
	DmsOperation operation;
	const DmsColumnValue *values;	/* per source column (plan order); data
									 * records */
	const DmsColumnValue *before;	/* per source column, NULL if none */
	const DmsTransaction *transaction;	/* NULL if none */
	const char *event_id;		/* NULL: no event-id */
	TimestampTz timestamp;		/* when the message is made */
	const struct json_t *control;	/* control object, NULL: default */
	bool		transaction_last;	/* last record of its transaction: adds
									 * "transaction-last": true */
	const bool *unchanged;		/* per source column, NULL if none: values
								 * the source did not send (unchanged TOAST),
								 * listed in "unchanged-columns" */
} DmsChange;

typedef struct DmsMessageWriter DmsMessageWriter;

/* Names DMS writes: "load", "insert", ..., "create-table", ... */
extern const char *dms_operation_name(DmsOperation op);
extern bool dms_operation_parse(const char *name, DmsOperation *op);

/* DMS defaults: json, every flag off, no before image. */
extern void dms_message_settings_init(DmsMessageSettings *settings);

/*
 * Settings from a KinesisSettings object and a task settings object (either
 * may be NULL), after validation; errors are ereport(ERROR).  Strings point
 * into the JSON objects, which must outlive the settings.
 */
extern void dms_message_settings_from_json(DmsMessageSettings *settings,
										   const struct json_t *kinesis_settings,
										   const struct json_t *task_settings,
										   const char *task_id);

/*
 * A writer for one table; plan and settings (with its strings) must
 * outlive it.  Allocated in CurrentMemoryContext.
 */
extern DmsMessageWriter *dms_message_writer_create(const MappingTablePlan *plan,
												   const DmsMessageSettings *settings);

/*
 * Write the record for a change: data (reset first) gets the message bytes,
 * partition_key (reset first) the Kinesis partition key.  Returns false,
 * writing nothing, when the settings leave the change out (a table alter
 * operation without IncludeTableAlterOperations).
 */
extern bool dms_message_build(DmsMessageWriter *writer, const DmsChange *change,
							  StringInfo data, StringInfo partition_key);

/*
 * The "table-def" member DMS sends with create-table: {"table-def":
 * {"columns": {name: {"type", "length", "precision", "scale", "nullable"}},
 * "primary-key": [...]}} for the plan's output columns, compact.
 */
extern void dms_message_append_table_def(StringInfo out, const MappingTablePlan *plan);

/*
 * Flag a data record built by dms_message_build as the last of its
 * transaction, as transaction_last would have: "transaction-last": true
 * added at the end of its metadata.
 */
extern void dms_message_mark_last(StringInfo data, bool unformatted);

/* The type name control records use: INT32, STRING, TIMESTAMP, ... */
extern const char *dms_control_type_name(DmsColumnType type);

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC) into buf. */
extern void dms_message_format_timestamp(TimestampTz ts, char *buf);

/* Append s as a JSON string, quotes included. */
extern void dms_message_append_json_string(StringInfo out, const char *s, size_t len);

#endif							/* DMS_MESSAGE_H */
