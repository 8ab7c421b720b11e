/*-------------------------------------------------------------------------
 *
 * s3_source_job.h
 *	  Full load of a task with an S3 source and a Kinesis target.
 *
 * For each table of the source endpoint's external table definition that
 * the task's selection rules include (higher load-order first, then
 * definition order), the files under BucketFolder/TablePath are read in key
 * order with ranged GETs of bounded size, parsed as CSV per the endpoint's
 * settings (csv.h), typed and rendered per the definition (dms_value.h),
 * mapped (mapping.h) and sent as DMS Kinesis messages with metadata
 * operation "load" (dms_message.h) through the PutRecords batcher:
 * ParallelLoadThreads requests in flight (at least one), and
 * ParallelLoadBufferSize records per request and per thread in the
 * batcher's buffer.  MaxFullLoadSubTasks tables (default 8) are loaded at
 * once, one chunk of each in turn, through the one batcher.
 *
 * No loss: a checkpoint per table (file key, byte offset and line of the
 * next record) is committed in a short transaction, together with the
 * table's statistics, the rows rejected so far and the task's progress,
 * only for records Kinesis has acknowledged (kinesis_batcher_acked_through):
 * never with a transaction open across network I/O.  A task resumed after
 * a crash starts from the checkpoint and sends again at most the records
 * that were not acknowledged.  Every message carries, as metadata
 * "event-id", a 64-bit hash of the file's key in hex, ":" and the line where
 * the record starts, the same on every attempt, so consumers can drop
 * duplicates.
 *
 * Bad rows (CSV errors, wrong column count, values that do not parse, too
 * long values) follow ErrorBehavior DataErrorPolicy (truncations:
 * DataTruncationErrorPolicy): LOG_ERROR (the default) writes the row to
 * dms_stream.apply_exceptions and goes on; IGNORE_RECORD skips it (still
 * counted in FullLoadErrorRows); SUSPEND_TABLE ends the table in state
 * "Table error" and goes on with the next; STOP_TASK raises an ERROR naming
 * the file and line (the worker then marks the task failed).
 *
 * CDC (migration types cdc and full-load-and-cdc, after the full load of
 * the latter): the files directly under BucketFolder/CdcPath/ are read in
 * key order, every dms_stream.poll_interval, and each row is sent as a DMS
 * insert, update (data: the after image) or delete (data: the row as given)
 * of the table it names, with the same event ids, acknowledged checkpoints
 * and error policies as the full load; the CDC position (high-water mark)
 * is the task_checkpoint row of schema and table "(cdc)"; a file whose key
 * sorts before the mark and that appears later is not replicated, as in
 * AWS DMS, and is reported (WARNING, apply_exceptions "late_cdc_file").
 * The rules are described in s3_source_job.c above job_cdc_render.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_S3_SOURCE_JOB_H
#define DMS_S3_SOURCE_JOB_H

/* What a run did. */
typedef struct S3SourceJobResult
{
	int64		rows_sent;		/* records acknowledged by Kinesis (this run) */
	int64		error_rows;		/* rows rejected (this run) */
	int			tables_loaded;	/* tables completed (this run) */
	int			tables_failed;	/* tables left in "Table error" */
} S3SourceJobResult;

/*
 * Run (or resume) the full load and/or CDC of task_name, recorded in
 * run_history row run_id.  Must be called outside a transaction, in a memory
 * context that lives as long as the call; raises an ERROR when the task must
 * fail.  With CDC it returns only by an ERROR (or the process exits on
 * SIGTERM at an interrupt check).
 */
extern void s3_source_job_run(const char *task_name, int64 run_id,
							  S3SourceJobResult *result);

#endif							/* DMS_S3_SOURCE_JOB_H */
