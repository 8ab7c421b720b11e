/*-------------------------------------------------------------------------
 *
 * dms_stream.h
 *	  Module-wide settings (GUCs) of the dms_stream extension.
 *
 * Every setting is documented in README.md, section "Settings".
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_STREAM_H
#define DMS_STREAM_H

/* Database the background launcher connects to (dms_stream.database). */
extern char *dms_stream_database;

/* Launcher sleep between catalog scans, in milliseconds (dms_stream.naptime). */
extern int	dms_stream_naptime_ms;

/* Most task workers running at once (dms_stream.max_task_workers). */
extern int	dms_stream_max_task_workers;

/* Interval between S3 CDC folder listings, in milliseconds (dms_stream.poll_interval). */
extern int	dms_stream_poll_interval_ms;

/* Lowest level of dms_stream's own progress messages (dms_stream.log_min_messages). */
extern int	dms_stream_log_min_messages;

#endif							/* DMS_STREAM_H */
