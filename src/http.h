/*-------------------------------------------------------------------------
 *
 * http.h
 *	  HTTP client of dms_stream: libcurl multi driven from a backend's own
 *	  wait loop, with SigV4 signing, retries and AWS error parsing.
 *
 * dms_http_perform runs a batch of requests concurrently and returns when
 * every one of them has finished (succeeded, failed for good, or run out of
 * retries).  While waiting it sleeps in WaitEventSetWait on curl's sockets
 * and the process latch, and runs CHECK_FOR_INTERRUPTS at every wake-up, so
 * a query cancel or SIGTERM interrupts it at once and postmaster death ends
 * the process (WL_EXIT_ON_PM_DEATH).  On such an ERROR every transfer of
 * the batch is aborted and its curl resources released.
 *
 * Connections are kept in one curl multi handle per process (created on
 * first use, destroyed at process exit) and reused by later calls.
 *
 * A request that carries credentials is signed with SigV4 before every
 * attempt, so a retry gets a fresh X-Amz-Date.  Retryable failures (HTTP
 * 5xx except 501, 429, AWS throttling and transient error codes, connection
 * failures and resets, timeouts) are retried up to max_retries times after
 * an exponential backoff with full jitter; other 4xx answers are not.
 * The attempts of a request and the waits between them together take at
 * most dms_stream.http_total_timeout: an attempt's timeouts are cut to the
 * time left, and no retry starts that could not begin before it runs out.
 *
 * HTTP failures are not raised: the caller looks at the response (status,
 * parsed AWS error code, message and request id) and may call
 * dms_http_raise_error to report it.  Errors in the request itself (bad
 * URL, bad signing input) and out-of-memory are raised with ereport(ERROR).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_HTTP_H
#define DMS_HTTP_H

#include "aws_sigv4.h"

/* Settings (GUCs), defined by dms_http_define_settings. */
extern int	dms_http_connect_timeout_ms;	/* dms_stream.http_connect_timeout */
extern int	dms_http_request_timeout_ms;	/* dms_stream.http_request_timeout */
extern int	dms_http_max_retries;	/* dms_stream.http_max_retries */
extern int	dms_http_total_timeout_ms;	/* dms_stream.http_total_timeout */
extern char *dms_http_ca_bundle;	/* dms_stream.http_ca_bundle */

/* Most transfers a batch keeps in flight at once; the rest wait their turn. */
#define DMS_HTTP_MAX_PARALLEL 64

/* A request.  Strings are not copied and must live until the call returns. */
typedef struct DmsHttpRequest
{
	const char *method;			/* GET, HEAD, PUT, POST, DELETE */
	const char *url;			/* as sent: path and query percent-encoded */
	const AwsHeader *headers;	/* extra headers (Content-Type, X-Amz-Target) */
	int			nheaders;
	const char *body;			/* may be NULL when body_len is 0 */
	size_t		body_len;

	/* SigV4: sign when credentials is not NULL */
	const AwsCredentials *credentials;
	const char *service;		/* "s3", "kinesis", ... */
	const char *region;
	const char *payload_hash;	/* NULL: hash the body; or UNSIGNED-PAYLOAD */

	/* per-request overrides; 0 (timeouts) or -1 (retries) use the settings */
	int			connect_timeout_ms;
	int			timeout_ms;
	int			max_retries;
	size_t		max_response_bytes; /* 0: 1 GB */
} DmsHttpRequest;

/* Outcome of a request, after the last attempt. */
typedef struct DmsHttpResponse
{
	long		status;			/* HTTP status, 0 if no response */
	char	   *body;			/* NUL-terminated, body_len bytes */
	size_t		body_len;
	AwsHeader  *headers;		/* response headers of the final answer */
	int			nheaders;

	bool		ok;				/* transport OK and status 200-299 */
	bool		retryable;		/* the last failure was a retryable one */
	int			attempts;		/* 1 + retries made */
	bool		total_timeout;	/* retries stopped by dms_stream.http_total_timeout */
	bool		reused_connection;	/* last attempt used a cached connection */
	double		elapsed_ms;		/* whole request, retries and waits included */

	int			curl_code;		/* CURLcode of the last attempt (0 = OK) */
	char	   *transport_error;	/* curl's message when curl_code != 0 */
	char	   *error_code;		/* AWS error code (S3 <Code>, JSON __type) */
	char	   *error_message;	/* AWS error message */
	char	   *request_id;		/* x-amzn-RequestId / x-amz-request-id */
} DmsHttpResponse;

/* Define the dms_stream.http_* settings; call from _PG_init. */
extern void dms_http_define_settings(void);

/*
 * Run n requests concurrently; fills resps[0..n-1] (palloc'd in the
 * caller's memory context).  Returns when all are finished.
 */
extern void dms_http_perform(const DmsHttpRequest *reqs, DmsHttpResponse *resps,
							 int n);

/*
 * A queue of requests kept in flight together: each starts when submitted
 * and is returned by dms_http_queue_poll once finished (retries included),
 * in whatever order they finish, so the caller can prepare the next request
 * while others are on the wire.  The request (and the strings it points to)
 * must live until it is returned; its response is built in the memory
 * context current at submit.  The queue lives in the memory context current
 * at create; when that context is reset or deleted, transfers still in
 * flight are abandoned.  After an ERROR raised by submit or poll (such as a
 * query cancel while waiting), every transfer of the queue has been
 * abandoned.
 */
typedef struct DmsHttpQueue DmsHttpQueue;

extern DmsHttpQueue *dms_http_queue_create(void);

/* Start a request (at most DMS_HTTP_MAX_PARALLEL in flight); arg names it. */
extern void dms_http_queue_submit(DmsHttpQueue *q, const DmsHttpRequest *req,
								  DmsHttpResponse *resp, void *arg);

/*
 * Drive the transfers and return up to max finished ones (their args in
 * done[]).  With wait, sleep until at least one has finished, unless none
 * is in flight; without, only do what can be done at once.
 */
extern int	dms_http_queue_poll(DmsHttpQueue *q, bool wait, void **done, int max);

/*
 * Sleep once until a transfer of the queue can make progress, a retry is
 * due or the process latch is set (at most a second), and drive curl;
 * finished transfers are then returned by dms_http_queue_poll.
 */
extern void dms_http_queue_sleep(DmsHttpQueue *q);

/* Requests submitted and not yet returned by dms_http_queue_poll. */
extern int	dms_http_queue_in_flight(DmsHttpQueue *q);

/* One request; returns a palloc'd response. */
extern DmsHttpResponse *dms_http_request(const DmsHttpRequest *req);

/* A response header's value (case-insensitive name), or NULL. */
extern const char *dms_http_response_header(const DmsHttpResponse *resp,
											const char *name);

/*
 * Report a failed request with ereport(elevel): errmsg names "what" (for
 * example "Kinesis PutRecords"), errdetail carries the HTTP status, AWS
 * error code, message, request id and attempts, errhint a likely cause.
 */
extern void dms_http_raise_error(int elevel, const char *what,
								 const DmsHttpRequest *req,
								 const DmsHttpResponse *resp);

/*
 * Wait ms milliseconds (a retry's backoff) on the process latch: interrupts
 * (cancel, statement_timeout, SIGTERM) are serviced at once and postmaster
 * death ends the process.
 */
extern void dms_http_sleep(long ms);

/* True if an AWS error code means throttling or a transient server fault. */
extern bool dms_http_is_retryable_code(const char *code);

#endif							/* DMS_HTTP_H */
