/*-------------------------------------------------------------------------
 *
 * delta_load.h
 *	  Delta loads: one row of dms_stream.delta_load_controller extracted
 *	  to S3 as Parquet files, the watermark advanced in one transaction
 *	  with the statistics (README "Delta loads").
 *
 * The SQL entry points are procedures (CALL dms_stream.run_delta_load(t),
 * CALL dms_stream.run_delta_loads()) because a run commits several times:
 *
 *	1. claim     a short transaction takes the target's session advisory
 *				 lock, reads the controller row, inserts the history row and
 *				 sets last_status 'running';
 *	2. extract	 one transaction with one snapshot runs the query built by
 *				 delta_query_build through a cursor in batches and writes
 *				 Parquet into temporary spool files (rolled by rows/bytes);
 *	3. upload	 with no snapshot, xid or relation lock held, the spool files
 *				 are uploaded (multipart when larger than a part);
 *	4. finish	 one transaction advances watermark and next_file_number,
 *				 records statistics and history, and sends the NOTIFY.
 *
 * A failure in any step aborts the step's subtransaction (which aborts a
 * multipart upload in progress), deletes the objects this run uploaded,
 * and records the failure (status, error, history, NOTIFY) without moving
 * the watermark.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_DELTA_LOAD_H
#define DMS_DELTA_LOAD_H

#include "utils/snapshot.h"

/* Channel of the per-run NOTIFY (payload: JSON, README "Delta loads"). */
#define DELTA_NOTIFY_CHANNEL	"dms_stream_delta_load"

/* First key of the two-key session advisory lock of a run ('dlta'). */
#define DELTA_LOCK_CLASSID		0x646C7461

/* The most parameters a delta query has. */
#define DELTA_MAX_PARAMS		6

/* What delta_query_build needs from the controller row. */
typedef struct DeltaSource
{
	const char *schema;
	const char *table;
	const char *filter_column;
	const char *op;				/* lte, ste, gte, eq, noteq, null, notnull,
								 * between, notbetween */
	const char *start_value;
	const char *end_value;
	const char *watermark;		/* NULL before the first rows are loaded */
	const char *late_snapshot;	/* pg_snapshot text of the previous extract,
								 * or NULL */
} DeltaSource;

/* The query of one run: SQL text and typed parameters. */
typedef struct DeltaQuery
{
	char	   *sql;
	int			nparams;
	Oid			param_types[DELTA_MAX_PARAMS];
	char	   *param_text[DELTA_MAX_PARAMS];	/* as given, for display */
	Datum		param_values[DELTA_MAX_PARAMS];
	char		param_nulls[DELTA_MAX_PARAMS];	/* SPI style: ' ' or 'n' */
	int			filter_index;	/* 0-based position of the filter column */
	Oid			filter_type;
	Oid			filter_collation;
	Oid			order_proc;		/* btree comparison of the filter type */
	bool		late_branch;	/* the query also selects late rows */
	char	   *late_note;		/* why there is no late branch, or NULL */
} DeltaQuery;

/*
 * Build the query for a source in the current transaction: identifiers are
 * quoted, comparison operators are the filter type's default btree
 * operators named with their schema, and every value (start, end,
 * watermark, the late-row snapshot) is a typed parameter.
 */
extern DeltaQuery *delta_query_build(const DeltaSource *src);

/*
 * The late-row snapshot to keep after an extract with snapshot snap (the
 * pg_snapshot text: xmin, xmax, transactions and subtransactions then in
 * progress), or NULL when no other transaction could still commit rows the
 * extract did not see.  always: keep it anyway (operator null).
 */
extern char *delta_late_snapshot(Snapshot snap, bool always);

#endif							/* DMS_DELTA_LOAD_H */
