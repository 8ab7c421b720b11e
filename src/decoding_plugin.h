/*-------------------------------------------------------------------------
 *
 * decoding_plugin.h
 *	  The dms_stream logical decoding output plugin, and what it shares with
 *	  the job that streams this database's tables (pg_source_job.h): the
 *	  per-relation plans, the rendering of PostgreSQL values as DMS values
 *	  and the spool file the rendered records go to.
 *
 * The plugin ("dms_stream", loaded from this library like any output plugin;
 * Debian's output_plugin_libraries must name it) renders each change of a
 * selected table straight into a DMS Kinesis record (dms_message.h) and
 * appends it to the job's spool file, so that decoding never waits for the
 * network and memory stays bounded however large a transaction is: the
 * reorder buffer spills big transactions to disk past
 * logical_decoding_work_mem, and the rendered records go to the spool
 * file, one record at a time.  It serves only dms_stream task workers:
 * reading changes through it elsewhere (pg_logical_slot_get_changes) gets
 * an error; creating a slot with it (pg_create_logical_replication_slot,
 * for an endpoint's SlotName) works.
 *
 * Spool entries: a PgSpoolEntry header, then the record data and the
 * partition key.  Data records of a transaction come in commit order,
 * followed by one PG_SPOOL_COMMIT entry when the transaction sent at least
 * one record (the shipper flags the last data record as the last one).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_DECODING_PLUGIN_H
#define DMS_DECODING_PLUGIN_H

#include <stdio.h>

#include "access/htup.h"
#include "access/tupdesc.h"
#include "access/xlogdefs.h"
#include "fmgr.h"
#include "utils/hsearch.h"
#include "utils/rel.h"

#include "dms_message.h"
#include "mapping.h"

/* Spool entry kinds. */
#define PG_SPOOL_RECORD		1	/* a data or control record */
#define PG_SPOOL_COMMIT		2	/* end of a transaction's records */

/*
 * Position of a record in its transaction: data records are numbered 1..n
 * (their transaction-record-id); control records (TRUNCATE, column changes)
 * take sub-positions after the data record before them, so data record ids
 * do not depend on whether a column change was noticed (after a restart the
 * relation cache starts empty).  Key = record id * PG_SPOOL_SUBS + sub.
 */
#define PG_SPOOL_SUBS		65536

/* Statistics class of a record (table_statistics columns). */
typedef enum PgStatKind
{
	PG_STAT_LOAD,
	PG_STAT_INSERT,
	PG_STAT_UPDATE,
	PG_STAT_DELETE,
	PG_STAT_DDL,
	PG_STAT_NONE,
	PG_STAT_KINDS
} PgStatKind;

typedef struct PgSpoolEntry
{
	uint32		kind;
	uint32		data_len;
	uint32		key_len;
	int32		table;			/* statistics table index, -1 if none */
	uint32		stat;			/* PgStatKind */
	uint32		xid;
	XLogRecPtr	commit_lsn;		/* CDC: the commit record's position */
	XLogRecPtr	end_lsn;		/* CDC: the end of the commit record */
	TimestampTz commit_time;	/* CDC: the transaction's commit time */
	int64		ordinal;		/* CDC: position key in the transaction
								 * (record id * PG_SPOOL_SUBS + sub); load:
								 * the row number */
} PgSpoolEntry;

/*
 * A spool file: written sequentially, then read back sequentially.  With
 * pg_spool_memory, entries stay in memory until they exceed its size.
 */
typedef struct PgSpool
{
	char	   *path;
	FILE	   *file;
	char	   *buffer;			/* stdio buffer */
	char	   *mem;			/* pg_spool_memory: entries held in memory */
	int64		mem_size;
	bool		in_memory;		/* every entry since the reset is in mem */
	bool		file_used;		/* the file was written since the reset */
	int64		read_pos;		/* in memory: next entry to read */
	int64		bytes;			/* written */
	int64		records;		/* data entries written */
	int64		transactions;	/* commit entries written */
} PgSpool;

/* A column of a source table. */
typedef struct PgSourceColumn
{
	AttrNumber	attnum;			/* in the table the records name */
	AttrNumber	tuple_attnum;	/* in the tuples (a partition's own) */
	Oid			typid;
	int32		typmod;
	int16		typlen;
	DmsColumnType type;
	FmgrInfo	output;
	bool		in_identity;	/* part of the replica identity */
} PgSourceColumn;

/* A table as the stream sees it; entry of the relation cache. */
typedef struct PgSourceRel
{
	Oid			relid;			/* hash key */
	bool		valid;
	bool		selected;
	char	   *schema;
	char	   *table;
	MappingTablePlan *plan;
	DmsMessageWriter *writer;
	int			natts;			/* attributes of the tuple descriptor */
	int			nsource;
	PgSourceColumn *columns;
	bool		identity_full;	/* REPLICA IDENTITY FULL */
	bool		no_key;			/* no replica identity key (no primary key,
								 * not FULL): updates and deletes are not
								 * replicated, as in DMS */
	Oid			target_relid;	/* the table whose name the records carry:
								 * relid, or the partition root */
	int			stat_index;		/* statistics table index */
	MemoryContext cxt;
} PgSourceRel;

/* Per table statistics kept by the job. */
typedef struct PgStatTable
{
	char	   *schema;
	char	   *table;
	int64		pending[PG_STAT_KINDS]; /* acknowledged, not yet written */
	bool		warned_no_key;	/* the no-key WARNING was given */
} PgStatTable;

/* Everything rendering needs; one per job. */
typedef struct PgSourceContext
{
	const char *task_name;
	MappingSet *mappings;
	DmsMessageSettings settings;
	bool		via_root;		/* partitions of a selected partitioned table
								 * go under its name (PublishViaPartitionRoot) */
	HTAB	   *rels;			/* Oid -> PgSourceRel */
	MemoryContext cxt;			/* lives as long as the job */
	MemoryContext row_cxt;		/* reset per change */

	PgStatTable *stats;
	int			nstats;
	int			stats_size;

	/* rendering buffers */
	StringInfoData values;
	StringInfoData before_values;
	StringInfoData message;
	StringInfoData key;
	DmsColumnValue *cur;
	DmsColumnValue *before;
	bool	   *unchanged;
	bool		stored_tuples;	/* rendering heap tuples (full load): an
								 * external value is fetched, not unchanged */
	int			max_columns;

	/* decoding */
	PgSpool    *spool;			/* where records go; NULL: nowhere */
	XLogRecPtr	skip_lsn;		/* records up to (skip_lsn, skip_ordinal), a */
	int64		skip_ordinal;	/* position key, were acknowledged before */
	int64		skipped;		/* records so skipped */

	/* the transaction being decoded */
	TransactionId xid;
	XLogRecPtr	commit_lsn;
	XLogRecPtr	end_lsn;
	TimestampTz commit_time;
	int64		ordinal;		/* data records so far */
	int			controls;		/* control records since the last one */
	int64		emitted;
	char		position[32];
	bool		has_prev;
	TransactionId prev_xid;
	int64		prev_records;
} PgSourceContext;

/* The job being decoded for, set by the job around decoding. */
extern PgSourceContext *pg_source_current;

/* Set up a context (in CurrentMemoryContext). */
extern PgSourceContext *pg_source_context_create(const char *task_name,
												 MappingSet *mappings,
												 const DmsMessageSettings *settings);

/* The cache entry of a relation, built or rebuilt as needed. */
extern PgSourceRel *pg_source_rel(PgSourceContext *pc, Relation rel);

/*
 * Render a heap tuple's values into pc->cur (or pc->before when before):
 * values whose source column is in the tuple; unchanged TOAST values are
 * taken from fill (when given and it has them), else marked is_missing and
 * in pc->unchanged.  key_only: only replica identity columns are known
 * (an old key tuple), the others are missing.
 */
extern void pg_source_render_tuple(PgSourceContext *pc, PgSourceRel *r, TupleDesc desc,
								   HeapTuple tuple, HeapTuple fill, bool before,
								   bool key_only);

/*
 * The table whose name the rows of relid (schema.table, a partition when
 * relispartition) go under: the topmost partitioned ancestor selected by
 * the rules when pc->via_root, else relid itself.  *tschema and *ttable
 * get its names (palloc'd).  Needs catalog access.
 */
extern Oid	pg_source_target(PgSourceContext *pc, Oid relid, bool relispartition,
							 const char *schema, const char *table,
							 char **tschema, char **ttable);

/* Spools. */
extern PgSpool *pg_spool_open(const char *path, bool truncate);
extern void pg_spool_memory(PgSpool *spool, int64 size);
extern void pg_spool_write(PgSpool *spool, const PgSpoolEntry *e,
						   const char *data, const char *key);
extern void pg_spool_sync(PgSpool *spool);
extern void pg_spool_rewind(PgSpool *spool, int64 offset);
/* Read the next entry: false at the end.  data and key get the payload. */
extern bool pg_spool_read(PgSpool *spool, PgSpoolEntry *e, StringInfo data,
						  StringInfo key);
extern void pg_spool_reset(PgSpool *spool);
extern void pg_spool_close(PgSpool *spool, bool remove);

/* The statistics index of schema.table (added when new). */
extern int	pg_source_stat_index(PgSourceContext *pc, const char *schema, const char *table);

/* Output plugin entry point (loaded by the decoding machinery). */
extern PGDLLEXPORT void _PG_output_plugin_init(struct OutputPluginCallbacks *cb);

#endif							/* DMS_DECODING_PLUGIN_H */
