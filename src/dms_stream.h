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

/*
 * Threshold of dms_stream's own progress messages (dms_stream.log_min_messages),
 * with the meaning of PostgreSQL's log_min_messages: a message is written when
 * its level is at or above the threshold in the order debug5 .. debug1, info,
 * notice, warning, error, log, fatal, panic.  The setting is never the level a
 * message is sent at: `error` does not turn a progress line into an ERROR.
 */
extern int	dms_stream_log_min_messages;

/* Whether a progress message of level elevel passes dms_stream.log_min_messages. */
extern bool dms_stream_log_enabled(int elevel);

/*
 * dms_stream_log(LOG, (errmsg(...), ...)): ereport a progress message at
 * elevel (DEBUG5..LOG, never ERROR or above) when it passes the threshold.
 */
#define dms_stream_log(elevel, rest) \
	do { \
		StaticAssertStmt((elevel) < ERROR, "dms_stream_log is for progress messages"); \
		if (dms_stream_log_enabled(elevel)) \
			ereport((elevel), rest); \
	} while (0)

#endif							/* DMS_STREAM_H */
