/*-------------------------------------------------------------------------
 *
 * kinesis_shipper.h
 *	  The shipping process of a replication task: a dynamic background
 *	  worker that takes the task's Kinesis records from a shared-memory
 *	  queue and delivers them with a PutRecords batcher (kinesis.h), so that
 *	  producing records (reading and parsing CSV, decoding WAL, rendering
 *	  DMS messages) and shipping them (request bodies, base64, SigV4
 *	  hashing, HTTP) run on two cores.
 *
 * The job process (the producer) calls the kinesis_shipper_* functions
 * exactly as it would call the batcher's: add a record with a tag, poll,
 * flush, ask how far the records are acknowledged.  Behind them:
 *
 *	- kinesis_shipper_start registers a dynamic background worker ("dms_stream
 *	  shipper", application_name the task) attached to a dynamic shared
 *	  memory segment that holds a shm_mq of KINESIS_SHIPPER_QUEUE_BYTES and
 *	  the state the shipper publishes; it waits until the shipper has opened
 *	  the endpoint (an error in doing so is raised in the producer);
 *	- kinesis_shipper_add checks the record against the Kinesis limits in
 *	  the producer (a refused record is returned to the caller, as by
 *	  kinesis_batcher_add) and queues it; with max_buffered_records records
 *	  added and not yet acknowledged it waits (interruptibly) until some
 *	  are, so the producer runs as far ahead of Kinesis as with a local
 *	  batcher and its checkpoints keep moving;
 *	- the shipper adds the records to its batcher in queue order, keeps
 *	  requests in flight, and publishes after every round the batcher's
 *	  acknowledged prefix (kinesis_batcher_acked_through of the producer's
 *	  tags) and counters, waking the producer;
 *	- kinesis_shipper_flush queues a flush mark and waits until the shipper
 *	  has flushed its batcher past it: every record added before is then
 *	  acknowledged.
 *
 * Progress therefore means what it means with a local batcher: a tag is
 * reported acknowledged only after Kinesis accepted that record and every
 * record added before it.  Failure: an ERROR in the shipper (a refused
 * request, retries exhausted, a bad endpoint) is copied into the segment
 * with its SQLSTATE, message, detail and hint, and raised again in the
 * producer by its next call; a shipper that exits otherwise raises "the
 * shipping process exited" (saying so when it was terminated by SIGTERM),
 * after waiting a moment for the producer's own signal: at a server
 * shutdown both processes are told to exit at once, and the stop, not the
 * shipper's exit, ends the task's run.  The producer stops its shipper when it exits
 * or fails (kinesis_shipper_stop, kinesis_shipper_abort_all and an exit
 * callback); the shipper exits when the producer detaches.  Records the
 * shipper held are then sent again by the producer from its last committed
 * progress, as after any failure.
 *
 * dms_stream.shipping_process (on by default) chooses this mode; with it off,
 * or when no background worker slot is free (max_worker_processes; a
 * WARNING says so), the records are shipped by a batcher in the producer
 * itself, with the same results.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_KINESIS_SHIPPER_H
#define DMS_KINESIS_SHIPPER_H

#include "kinesis.h"

/* Size of the record queue between producer and shipper. */
#define KINESIS_SHIPPER_QUEUE_BYTES (2 * 1024 * 1024)

extern bool dms_stream_shipping_process;	/* dms_stream.shipping_process */
extern bool dms_stream_strict_key_order;	/* dms_stream.strict_key_order */

typedef struct KinesisShipper KinesisShipper;

/* Define dms_stream.shipping_process (from _PG_init). */
extern void kinesis_shipper_define_settings(void);

/*
 * Start shipping to client's stream with the batcher options opts (on_ack
 * is not supported).  task_name names the shipping process.
 */
extern KinesisShipper *kinesis_shipper_start(KinesisClient *client,
											 const char *task_name,
											 const KinesisBatcherOptions *opts);

/* True when the records go to a separate shipping process. */
extern bool kinesis_shipper_is_separate(KinesisShipper *s);

/* As kinesis_batcher_add. */
extern KinesisRecordStatus kinesis_shipper_add(KinesisShipper *s,
											   const char *data, size_t data_len,
											   const char *partition_key,
											   const char *explicit_hash_key,
											   uint64 tag, char **problem);

/* As kinesis_batcher_poll: take what the shipper has published. */
extern void kinesis_shipper_poll(KinesisShipper *s);

/* As kinesis_batcher_flush. */
extern void kinesis_shipper_flush(KinesisShipper *s);

/*
 * A flush in two steps, so that the caller can do other work (write its
 * progress) while it waits: kinesis_shipper_flush_start queues the flush
 * mark (with a local batcher it flushes at once); kinesis_shipper_flush_done
 * waits at most timeout_ms and tells whether every record added before the
 * mark is acknowledged.
 */
extern void kinesis_shipper_flush_start(KinesisShipper *s);
extern bool kinesis_shipper_flush_done(KinesisShipper *s, long timeout_ms);

/* As kinesis_batcher_acked_through. */
extern bool kinesis_shipper_acked_through(KinesisShipper *s, uint64 *tag);

/* As kinesis_batcher_unacked. */
extern int64 kinesis_shipper_unacked(KinesisShipper *s);

/* The batcher's counters (as last published by the shipper). */
extern const KinesisBatcherStats *kinesis_shipper_stats(KinesisShipper *s);

/* The counters as a JSON object (kinesis_batcher_stats_json). */
extern json_t *kinesis_shipper_stats_json(KinesisShipper *s);

/* Stop the shipper (records not yet acknowledged are abandoned). */
extern void kinesis_shipper_stop(KinesisShipper *s);

/* Stop every shipper this process started (after an ERROR). */
extern void kinesis_shipper_abort_all(void);

/* Entry point of the shipping process. */
extern PGDLLEXPORT void kinesis_shipper_main(Datum main_arg);

#endif							/* DMS_KINESIS_SHIPPER_H */
