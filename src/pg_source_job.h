/*-------------------------------------------------------------------------
 *
 * pg_source_job.h
 *	  Tasks whose source is this database: full load and change data
 *	  capture by logical decoding, to Kinesis.
 *
 * Slot.  A task with CDC (cdc, full-load-and-cdc) has one logical
 * replication slot, named by dms_stream.task_slot_name(task), using this
 * library's output plugin (decoding_plugin.h): its own (dms_ + the task name
 * folded to [a-z0-9_] + a hash), which the worker creates at the task's
 * first start (and again after reload-target) and drop_task drops, or, for a
 * cdc task whose source endpoint has SlotName, that slot, created
 * beforehand, checked and decoded from its confirmed position, never
 * created or dropped (pg_slot.h).
 *
 * No gap, no overlap.  The slot is created in the worker, inside a
 * REPEATABLE READ transaction whose snapshot becomes the slot's initial
 * snapshot (SnapBuildInitialSnapshot, as CREATE_REPLICATION_SLOT ...
 * USE_SNAPSHOT does).  In that same transaction the selected tables are
 * read into a spool file under the data directory (pg_dms_stream/), which
 * is fsync'd before the transaction commits together with the task's
 * checkpoint rows: the full load holds exactly the transactions committed
 * before the slot's consistent point, decoding sends exactly those after.
 * No network I/O happens while the transaction is open; the spool is then
 * shipped with acknowledged checkpoints (byte offset in the spool), so a
 * crash in the middle of the full load resumes from the spool.  A crash
 * before the commit leaves no checkpoint: the next start drops the slot
 * and begins again.
 *
 * CDC.  The worker decodes in-process (CreateDecodingContext and
 * LogicalDecodingProcessRecord over the local WAL, like
 * pg_logical_slot_get_changes, with one decoding context kept for the
 * life of the worker), and shipping overlaps decoding: the plugin renders
 * records into the spool (held in memory up to 2 MB, in the file beyond),
 * and between WAL records, whenever the spool holds 512 kB, the worker
 * hands its records to the PutRecords batcher, which sends requests as
 * they fill and takes answers while the next WAL records are decoded (it
 * is also polled every 64 WAL records).  This happens only where no
 * transaction is open (IsTransactionOrTransactionBlock() is checked): the
 * reorder buffer replays a committed transaction inside its own
 * transaction, within the one LogicalDecodingProcessRecord call of the
 * commit record, and no network I/O happens there.  After each feed the
 * worker notes a mark (the last record added, the WAL position reached);
 * the slot is confirmed (LogicalConfirmReceivedLocation) up to the newest
 * mark whose records are all acknowledged, and saved at most once a
 * second.  Once decoding has caught up with the flushed WAL, everything
 * queued is sent and acknowledged (kinesis_batcher_flush).  The position
 * of the newest acknowledged record is committed to
 * dms_stream.task_checkpoint ('(pg)', '(cdc)': commit LSN in file_key and
 * position key in next_offset, see PG_SPOOL_SUBS) at most once a second
 * and when caught up.  After a crash, decoding resumes from the slot and
 * records at or before the committed position are skipped: duplicates
 * come only from records acknowledged after the last checkpoint commit,
 * and carry the same event id (commit LSN:ordinal).
 *
 * Slot safety: the slot is confirmed only past acknowledged records; WAL
 * without relevant changes still confirms (heartbeat), and with the
 * endpoint's HeartbeatEnable a heartbeat is written when streaming starts
 * and every HeartbeatFrequency minutes so that quiet databases move too (a
 * logical message, or with HeartbeatSchema a row of
 * HeartbeatSchema.awsdms_heartbeat, as DMS does);
 * dms_stream.replication_slot_lag shows each task's slot;
 * dms_stream.max_slot_lag caps the WAL the slot retains: past it the task
 * fails with an error saying so (the launcher applies the same cap to the
 * slots of tasks that do not run, pg_slot.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_PG_SOURCE_JOB_H
#define DMS_PG_SOURCE_JOB_H

#include "s3_source_job.h"

/* WAL a task's slot may retain before the task fails (MB, 0: no cap). */
extern int	dms_stream_max_slot_lag_mb;

/* Define the GUCs of this module (from _PG_init). */
extern void pg_source_define_settings(void);

/*
 * Run or resume a task with a postgres source; same contract as
 * s3_source_job_run.
 */
extern void pg_source_job_run(const char *task_name, int64 run_id,
							  S3SourceJobResult *result);

#endif							/* DMS_PG_SOURCE_JOB_H */
