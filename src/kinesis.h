/*-------------------------------------------------------------------------
 *
 * kinesis.h
 *	  Kinesis Data Streams client of dms_stream: the JSON 1.1 API calls the
 *	  replication jobs and the SQL utilities need, and the PutRecords
 *	  batcher that delivers records at least once.
 *
 * The client speaks the awsJson1.1 protocol (POST /, X-Amz-Target
 * Kinesis_20131202.<Operation>, Content-Type application/x-amz-json-1.1)
 * to the endpoint's endpoint_url, or to https://kinesis.<region>.amazonaws.com
 * when it has none.  A stream named by StreamArn is sent as StreamARN, with
 * StreamName (the ARN's last part) next to it, as the API allows; a stream
 * named by StreamName is sent as StreamName.  Requests are signed with the
 * endpoint's credentials (aws_credentials_resolve) and run through the HTTP
 * layer (http.h), which retries throttling, 5xx and connection failures.
 * Any other failure is raised as an ERROR naming the operation, the stream
 * and the endpoint.
 *
 * The batcher
 * -----------
 * kinesis_batcher_add validates a record and queues it; it never sends a
 * record Kinesis would refuse and never drops one silently: a record over
 * the record size limit (data + partition key, 1 MiB by default), an empty
 * partition key or one over 256 characters, a key that is not UTF-8, or a
 * malformed ExplicitHashKey is refused with a status and a message, and the
 * caller decides what to do with it (raise, or log it as an apply exception).
 *
 * Queued records are sent in PutRecords requests of at most 500 records,
 * max_request_bytes of data and partition keys (5 MiB) and max_body_bytes
 * of JSON (Data is base64, 4/3 of its size; the default keeps under
 * kinesalite's 7 MiB body cap), up to max_in_flight of them on the wire at
 * once (an HTTP request queue, http.h).  A request is formed and sent as
 * soon as the queued records fill one and a slot is free; answers are taken
 * as they come back, between records added, so that encoding the next
 * records overlaps the requests on the wire.  When the memory bounds
 * (max_buffered_bytes, max_buffered_records) are reached, and in
 * kinesis_batcher_flush, requests are sent with whatever is queued and the
 * batcher waits for answers.  Memory therefore depends on the settings, not
 * on how many records are added.
 *
 * A PutRecords answer may fail some entries (ProvisionedThroughputExceeded-
 * Exception, InternalFailure).  Exactly those entries, matched by their
 * index in the answer's Records array, are queued again in their original
 * place, ahead of every newer record, and become due again after a backoff
 * (full jitter, doubling with each failure of the record); a record that
 * fails max_record_retries times raises an ERROR.  A whole request that
 * still fails after the HTTP layer's retries with a retryable error (its
 * attempts bounded by dms_stream.http_max_retries and
 * dms_stream.http_total_timeout) raises an ERROR at once unless
 * requeue_failed_requests is set (the default, for tasks, which so ride out
 * an outage of minutes): then all of its records are queued again the same
 * way, and the ERROR raised when one has failed too often counts every
 * attempt made since the last answered request; a non-retryable answer
 * (ValidationException, ResourceNotFoundException, AccessDenied, a bad
 * signature...) raises an ERROR.
 *
 * Order.  Kinesis keeps the order of records per shard as they arrive, but
 * inside one PutRecords request it may reject an entry and accept a later
 * entry of the same shard.  With strict_key_order (the default) the batcher
 * keeps the records of one partition key in order in the stream whatever
 * Kinesis accepts or rejects: a record of a key is sent only once every
 * older record of the key is acknowledged.  So
 *	- a request holds at most one record of a key, and other keys fill it
 *	  (the oldest records first);
 *	- while a record of a key is on the wire, newer records of the key wait
 *	  for its answer, so concurrent requests never race for one key;
 *	- while a record waits to be retried, newer records of its key are held
 *	  back, so they cannot overtake it in a later request.
 * A key's records therefore travel one round trip after another: a task
 * whose records all have one key (schema.table of a single table, a
 * constant) sends one record per round trip.  Without strict_key_order a
 * request takes many records of a key (in the order they were added; the
 * other two rules hold), and a later one of them that Kinesis accepts is
 * stored before an earlier one it rejected and that is retried.  The batcher
 * counts the records so overtaken (stats.entries_reordered, known exactly
 * for records of the same partition key; for other keys on the same shard
 * the shard of a failed entry is not reported, so they are not counted).
 * Duplicates remain possible, as with every Kinesis producer: a request that
 * Kinesis stored but whose answer was lost (connection reset, timeout) is
 * sent again.
 *
 * Acknowledgement.  Each record carries a caller tag (an event id, an LSN,
 * a checkpoint token).  on_ack, when set, is called for every record Kinesis
 * accepted (not necessarily in tag order); kinesis_batcher_acked_through
 * gives the tag of the newest record such that it and every record added
 * before it are acknowledged, which is what a caller may commit as its
 * progress; kinesis_batcher_flush returns once every record added so far is
 * acknowledged.
 *
 * Memory: the client and the batcher live in the memory context current
 * when they are created; the client must outlive its batchers.  The answer
 * to a request lives in a context of the batcher that is reset once the
 * answer is applied.  After an ERROR raised by the batcher (including a
 * query cancel while it waits) it must not be used again, other than to be
 * destroyed; records it had not acknowledged must be sent again by the
 * caller, from its last committed progress.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_KINESIS_H
#define DMS_KINESIS_H

#include "datatype/timestamp.h"

#include "dms_json.h"
#include "endpoint.h"

/* Kinesis limits (classic generation; see dms_reference.md 7.2). */
#define KINESIS_MAX_REQUEST_RECORDS		500
#define KINESIS_MAX_REQUEST_BYTES		(5 * 1024 * 1024)
#define KINESIS_MAX_RECORD_BYTES		(1024 * 1024)
#define KINESIS_MAX_PARTITION_KEY_CHARS 256
#define KINESIS_DEFAULT_MAX_BODY_BYTES	7000000
#define KINESIS_MAX_GET_RECORDS			10000

/* A Kinesis stream reached through a dms_stream endpoint. */
typedef struct KinesisClient
{
	DmsEndpoint *endpoint;
	char	   *endpoint_name;
	char	   *url;			/* https://kinesis.REGION.amazonaws.com/ or custom */
	char	   *region;
	char	   *stream_name;	/* StreamName, or the last part of StreamArn */
	char	   *stream_arn;		/* StreamArn, or NULL */
	char	   *stream_members; /* "StreamName":"..."[,"StreamARN":"..."] */
} KinesisClient;

/*
 * Open the stream of a kinesis endpoint (reads dms_stream.endpoint through
 * SPI).  Errors if the endpoint does not exist or is not a Kinesis one.
 */
extern KinesisClient *kinesis_client_open(const char *endpoint_name);

/*
 * One API call: operation is e.g. "DescribeStreamSummary", request a JSON
 * object (NULL for {}); with add_stream the stream members are added to it.
 * Returns the parsed answer; raises an ERROR on any failure.
 */
extern json_t *kinesis_call(KinesisClient *client, const char *operation,
							json_t *request, bool add_stream);

/* DescribeStreamSummary: the StreamDescriptionSummary object. */
extern json_t *kinesis_describe_stream_summary(KinesisClient *client);

/* ListShards, every page: an array of Shard objects. */
extern json_t *kinesis_list_shards(KinesisClient *client);

/*
 * GetShardIterator.  iterator_type is TRIM_HORIZON, LATEST,
 * AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER (the last two need
 * starting_sequence_number).
 */
extern char *kinesis_get_shard_iterator(KinesisClient *client,
										const char *shard_id,
										const char *iterator_type,
										const char *starting_sequence_number);

/*
 * GetRecords: the whole answer (Records, NextShardIterator,
 * MillisBehindLatest).  limit is 1..10000.
 */
extern json_t *kinesis_get_records(KinesisClient *client,
								   const char *shard_iterator, int limit);

/* Why a record was refused. */
typedef enum KinesisRecordStatus
{
	KINESIS_RECORD_OK = 0,
	KINESIS_RECORD_NO_KEY,		/* partition key NULL or empty */
	KINESIS_RECORD_KEY_TOO_LONG,	/* more than 256 characters */
	KINESIS_RECORD_KEY_NOT_UTF8,	/* partition key is not valid UTF-8 */
	KINESIS_RECORD_TOO_LARGE,	/* data + partition key over the limit */
	KINESIS_RECORD_BAD_HASH_KEY /* ExplicitHashKey not 0..2^128-1 */
} KinesisRecordStatus;

/*
 * Acknowledgement of one record; shard and sequence number as Kinesis gave
 * (valid during the call only).  It runs in a memory context that is reset
 * once the request's answer is applied: switch to a context of your own to
 * keep anything.
 */
typedef void (*KinesisAckCallback) (void *arg, uint64 tag,
									const char *shard_id,
									const char *sequence_number);

typedef struct KinesisBatcherOptions
{
	int			max_in_flight;	/* concurrent requests, 1..64 (default 4) */
	int			max_request_records;	/* 1..500 (default 500) */
	int64		max_request_bytes;	/* data + keys per request (5 MiB) */
	int64		max_body_bytes; /* JSON body per request (7,000,000) */
	int64		max_record_bytes;	/* data + key per record (1 MiB) */
	int64		max_buffered_bytes; /* memory for unacknowledged records (64 MiB) */
	int			max_buffered_records;	/* records kept (default 100,000) */
	int			max_record_retries; /* failures of one record before ERROR (30) */
	bool		requeue_failed_requests;	/* send again the records of a
											 * request the HTTP layer gave
											 * up on (default true) */
	bool		strict_key_order;	/* one unacknowledged record of a key on
									 * the wire at a time (default true) */
	bool		records_checked;	/* the caller checked every record with
									 * kinesis_record_check: add trusts them */
	KinesisAckCallback on_ack;	/* may be NULL */
	void	   *ack_arg;
} KinesisBatcherOptions;

/* Counters of a batcher, since it was created. */
typedef struct KinesisBatcherStats
{
	int64		records_added;	/* accepted by kinesis_batcher_add */
	int64		records_rejected;	/* refused by kinesis_batcher_add */
	int64		records_acked;	/* accepted by Kinesis */
	int64		bytes_acked;	/* their data + partition key bytes */
	int64		rounds;			/* waits for an answer */
	int64		requests;		/* PutRecords requests sent (not attempts) */
	int64		requests_ok;	/* answered 200 */
	int64		request_attempts;	/* HTTP attempts, retries included */
	int64		requests_requeued;	/* failed after retries, records queued again */
	int64		requests_throttled; /* of those, because of throttling */
	int64		entries_failed; /* entries an answer reported as failed */
	int64		entries_throttled;	/* ... with ProvisionedThroughputExceeded */
	int64		entries_retried;	/* records sent again after a failure */
	int64		entries_reordered;	/* overtaken inside a request (see above) */
	int			max_in_flight;	/* most requests on the wire at once */
	int			largest_request_records;	/* most records in one request */
	int64		largest_request_bytes;	/* most data + key bytes in one */
	int64		largest_request_body;	/* longest JSON body */
	int64		max_buffered_bytes; /* peak memory of queued records */
	int64		max_buffered_records;	/* peak records kept */
	double		http_ms;		/* time spent driving and waiting for requests */
	double		backoff_ms;		/* time spent waiting for due retries */
	TimestampTz first_add;		/* 0 before the first record */
	TimestampTz last_ack;
} KinesisBatcherStats;

typedef struct KinesisBatcher KinesisBatcher;

/* Fill opts with the defaults. */
extern void kinesis_batcher_default_options(KinesisBatcherOptions *opts);

/* A batcher sending to client's stream; opts are checked and copied. */
extern KinesisBatcher *kinesis_batcher_create(KinesisClient *client,
											  const KinesisBatcherOptions *opts);

/*
 * Check a record against the limits without queueing it.  data_len counts
 * the raw bytes; partition_key (UTF-8) may be NULL, explicit_hash_key may be
 * NULL.  On a refusal, *problem (if not NULL) gets a palloc'd sentence.
 */
extern KinesisRecordStatus kinesis_record_check(const char *data, size_t data_len,
												const char *partition_key,
												const char *explicit_hash_key,
												int64 max_record_bytes,
												char **problem);

/*
 * Queue a record (the data and keys are copied).  Returns KINESIS_RECORD_OK,
 * or the reason the record was refused (nothing queued, *problem set as in
 * kinesis_record_check).  May send requests first, waiting for room when the
 * memory bounds are reached.
 */
extern KinesisRecordStatus kinesis_batcher_add(KinesisBatcher *b,
											   const char *data, size_t data_len,
											   const char *partition_key,
											   const char *explicit_hash_key,
											   uint64 tag, char **problem);

/*
 * Without waiting: take the answers that came back and send the requests the
 * queued records fill (for callers that do other work between records added,
 * so that transfers keep going and acknowledgements are noticed).
 */
extern void kinesis_batcher_poll(KinesisBatcher *b);

/*
 * Sleep until an answer comes back (with no request on the wire: until the
 * first held-back record is due) or the process latch is set, at most a
 * second, then poll: for a loop that also waits for other work signalled by
 * the latch.
 */
extern void kinesis_batcher_wait(KinesisBatcher *b);

/* Send until every record added so far is acknowledged. */
extern void kinesis_batcher_flush(KinesisBatcher *b);

/*
 * The tag of the newest record that, with every record added before it, is
 * acknowledged; false if there is none yet.
 */
extern bool kinesis_batcher_acked_through(KinesisBatcher *b, uint64 *tag);

/* Records added and not yet acknowledged. */
extern int64 kinesis_batcher_unacked(KinesisBatcher *b);

extern const KinesisBatcherStats *kinesis_batcher_stats(KinesisBatcher *b);

/* The stats as a JSON object (for SQL functions and logs). */
extern json_t *kinesis_batcher_stats_json(KinesisBatcher *b);

/* The same from counters and the batcher's state given separately. */
extern json_t *kinesis_stats_json(const KinesisBatcherStats *st, int64 unacked,
								  bool have_acked_through, uint64 acked_through,
								  bool strict_key_order);

/* Release the batcher's memory (queued records are dropped). */
extern void kinesis_batcher_destroy(KinesisBatcher *b);

#endif							/* DMS_KINESIS_H */
