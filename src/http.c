/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP client of dms_stream: libcurl multi interface driven from the
 *	  backend's wait loop.  See http.h for the contract.
 *
 * How the waiting works.  curl tells us, through CURLMOPT_SOCKETFUNCTION,
 * which sockets it wants watched and for what, and through
 * CURLMOPT_TIMERFUNCTION when it next needs a timeout call.  Both callbacks
 * only record that in static variables: they run inside curl, where an
 * ereport would longjmp over curl's stack, so they never allocate or raise.
 * The loop in dms_http_perform builds a WaitEventSet with the process latch,
 * postmaster death and those sockets, sleeps in WaitEventSetWait (at most a
 * second), runs CHECK_FOR_INTERRUPTS, hands the ready sockets or the expired
 * timer to curl_multi_socket_action and collects finished transfers.
 *
 * Response bodies and headers are collected by curl's write and header
 * callbacks into buffers allocated with MCXT_ALLOC_NO_OOM (no ereport from
 * inside curl); running out of memory aborts the transfer and is raised
 * once control is back in our code.
 *
 * curl may start a helper thread for DNS resolution.  Every call into curl
 * that can start a transfer runs with all signals blocked, so such threads
 * inherit a full signal mask and PostgreSQL's signals (cancel, SIGTERM,
 * latch wake-ups) always reach the backend's own thread.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <poll.h>
#include <signal.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "http.h"

/*
 * CURLOPT_PROTOCOLS_STR (7.85.0) restricts transfers to http and https; the
 * older CURLOPT_PROTOCOLS bitmask is deprecated.
 */
#if LIBCURL_VERSION_NUM < 0x075500
#error "dms_stream needs libcurl 7.85.0 or later"
#endif

/*
 * Every libcurl call's return code is checked: a failed option would leave a
 * transfer without its timeouts, TLS checks or callbacks.  These raise an
 * ERROR naming the call; the handles are released by the callers' cleanup
 * (PG_FINALLY of dms_http_perform, http_queue_release).
 */
#define HTTP_EASY_SETOPT(easy, opt, val) \
	do { \
		CURLcode	setopt_rc_ = curl_easy_setopt((easy), (opt), (val)); \
		if (setopt_rc_ != CURLE_OK) \
			http_curl_failed("curl_easy_setopt(" #opt ")", curl_easy_strerror(setopt_rc_)); \
	} while (0)

#define HTTP_MULTI_SETOPT(multi, opt, val) \
	do { \
		CURLMcode	setopt_rc_ = curl_multi_setopt((multi), (opt), (val)); \
		if (setopt_rc_ != CURLM_OK) \
			http_curl_failed("curl_multi_setopt(" #opt ")", curl_multi_strerror(setopt_rc_)); \
	} while (0)

#define HTTP_EASY_GETINFO(easy, info, ptr) \
	do { \
		CURLcode	getinfo_rc_ = curl_easy_getinfo((easy), (info), (ptr)); \
		if (getinfo_rc_ != CURLE_OK) \
			http_curl_failed("curl_easy_getinfo(" #info ")", curl_easy_strerror(getinfo_rc_)); \
	} while (0)

/* Settings; the C defaults apply until dms_http_define_settings runs. */
int			dms_http_connect_timeout_ms = 5000;
int			dms_http_request_timeout_ms = 60000;
int			dms_http_max_retries = 5;
int			dms_http_total_timeout_ms = 300000;
char	   *dms_http_ca_bundle = NULL;

/* Backoff: full jitter over min(cap, base * 2^retry). */
#define HTTP_BACKOFF_BASE_MS		100
#define HTTP_BACKOFF_THROTTLE_MS	500
#define HTTP_BACKOFF_CAP_MS			20000

/* Longest sleep of the wait loop, so that nothing can wedge it. */
#define HTTP_MAX_SLEEP_MS			1000
/*
 * curl sends a body larger than HTTP_SMALL_BODY_BYTES through its upload
 * buffer, one buffer per turn of the wait loop: 64 kB by default, which makes
 * a 300 kB PutRecords body cost five waits.  Such requests get a buffer of
 * HTTP_UPLOAD_BUFFER_BYTES (allocated by curl once per transfer handle).
 */
#define HTTP_SMALL_BODY_BYTES		(64 * 1024)
#define HTTP_UPLOAD_BUFFER_BYTES	(512 * 1024)

/* Error bodies larger than this are not parsed for an AWS error. */
#define HTTP_MAX_ERROR_BODY			(256 * 1024)

#define HTTP_DEFAULT_MAX_RESPONSE	((size_t) MaxAllocSize - 1)

/* Sockets curl asked us to watch (filled by http_socket_cb). */
#define HTTP_MAX_SOCKETS (DMS_HTTP_MAX_PARALLEL * 4 + 16)

typedef struct HttpSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / _OUT / _INOUT */
} HttpSocket;

static HttpSocket http_sockets[HTTP_MAX_SOCKETS];
static int	http_nsockets = 0;
static bool http_socket_overflow = false;

/* curl's timer (filled by http_timer_cb). */
static bool http_timer_set = false;
static TimestampTz http_timer_deadline = 0;

/* The per-process multi handle; its connection cache outlives calls. */
static CURLM *http_multi = NULL;
static bool http_curl_initialized = false;
static bool http_exit_registered = false;

/* A growable buffer filled from inside curl callbacks. */
typedef struct HttpBuf
{
	MemoryContext cxt;
	char	   *data;
	size_t		len;
	size_t		cap;
} HttpBuf;

typedef enum HttpState
{
	HTTP_PENDING,				/* not started */
	HTTP_RUNNING,				/* an attempt is in curl */
	HTTP_BACKOFF,				/* waiting to retry */
	HTTP_DONE
} HttpState;

/* One request of a batch, across its attempts. */
typedef struct HttpTransfer
{
	const DmsHttpRequest *req;
	DmsHttpResponse *resp;
	MemoryContext resp_cxt;		/* where the response is built */
	HttpState	state;
	int			attempt;		/* attempts started */
	int			max_retries;
	size_t		max_bytes;
	TimestampTz started;		/* first attempt */
	TimestampTz deadline;		/* started + dms_stream.http_total_timeout */
	TimestampTz retry_at;		/* HTTP_BACKOFF: when to start again */

	CURL	   *easy;			/* current attempt, NULL between attempts */
	struct curl_slist *slist;	/* its request headers (malloc'd by curl) */
	HttpBuf		body;
	HttpBuf		rawhdr;
	bool		oversize;
	bool		oom;
	char		errbuf[CURL_ERROR_SIZE];
} HttpTransfer;

/* AWS error codes worth retrying: throttling and transient faults. */
static const char *const http_retryable_codes[] = {
	"Throttling",
	"ThrottlingException",
	"ThrottledException",
	"RequestThrottledException",
	"RequestThrottled",
	"TooManyRequestsException",
	"ProvisionedThroughputExceededException",
	"TransactionInProgressException",
	"RequestLimitExceeded",
	"BandwidthLimitExceeded",
	"LimitExceededException",
	"SlowDown",
	"PriorRequestNotComplete",
	"EC2ThrottledException",
	"KMSThrottlingException",
	"InternalError",
	"InternalFailure",
	"InternalServerError",
	"ServiceUnavailable",
	"ServiceUnavailableException",
	"RequestTimeout",
	"RequestTimeoutException",
	"IDPCommunicationError",
	NULL
};

/* Codes that are throttling (longer backoff) rather than server faults. */
static const char *const http_throttling_codes[] = {
	"Throttling",
	"ThrottlingException",
	"ThrottledException",
	"RequestThrottledException",
	"RequestThrottled",
	"TooManyRequestsException",
	"ProvisionedThroughputExceededException",
	"RequestLimitExceeded",
	"BandwidthLimitExceeded",
	"LimitExceededException",
	"SlowDown",
	"EC2ThrottledException",
	"KMSThrottlingException",
	NULL
};

/*
 * http_curl_failed
 *		Raise the failure of a libcurl call (see HTTP_EASY_SETOPT).
 */
static void
http_curl_failed(const char *call, const char *message)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("libcurl call %s failed: %s", call, message),
			 errhint("dms_stream needs libcurl 7.85.0 or later built with HTTP and TLS support; "
					 "this one is %s.", curl_version())));
}

/*
 * http_code_in
 *		True if code is one of the NULL-terminated list.
 */
static bool
http_code_in(const char *code, const char *const *list)
{
	int			i;

	if (code == NULL)
		return false;
	for (i = 0; list[i] != NULL; i++)
		if (strcmp(code, list[i]) == 0)
			return true;
	return false;
}

/*
 * dms_http_is_retryable_code
 *		True if an AWS error code means throttling or a transient fault.
 */
bool
dms_http_is_retryable_code(const char *code)
{
	return http_code_in(code, http_retryable_codes);
}

/*
 * dms_http_define_settings
 *		Define the dms_stream.http_* settings.  Called from _PG_init.
 */
void
dms_http_define_settings(void)
{
	DefineCustomIntVariable("dms_stream.http_connect_timeout",
							"Time allowed to open a connection to an AWS endpoint.",
							"Covers DNS, TCP and TLS set-up; a timed-out attempt is retried.",
							&dms_http_connect_timeout_ms,
							5000, 100, 600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("dms_stream.http_request_timeout",
							"Time allowed for one attempt of an HTTP request to an AWS endpoint.",
							"Includes connecting, sending the body and reading the answer; "
							"a timed-out attempt is retried.",
							&dms_http_request_timeout_ms,
							60000, 1000, 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("dms_stream.http_max_retries",
							"Retries of an AWS request after a throttling, server or network error.",
							"Retries wait with exponential backoff and full jitter; "
							"client errors (4xx other than throttling) are never retried.",
							&dms_http_max_retries,
							5, 0, 100,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("dms_stream.http_total_timeout",
							"Total time allowed for one HTTP request to an AWS endpoint, retries included.",
							"Bounds every attempt and every wait between attempts: an attempt's timeouts "
							"are cut to the time left, and no retry starts once it would run out.",
							&dms_http_total_timeout_ms,
							300000, 100, 24 * 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("dms_stream.http_ca_bundle",
							   "File of CA certificates used to verify AWS endpoints (PEM).",
							   "Empty means the system's default CA store.  "
							   "TLS certificates and host names are always verified.",
							   &dms_http_ca_bundle,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}

/*
 * http_socket_cb
 *		CURLMOPT_SOCKETFUNCTION: remember which sockets to watch.  Runs inside
 *		curl: no allocation, no ereport.
 */
static int
http_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < http_nsockets; i++)
		if (http_sockets[i].fd == s)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < http_nsockets)
			http_sockets[i] = http_sockets[--http_nsockets];
		return 0;
	}

	if (i == http_nsockets)
	{
		if (http_nsockets >= HTTP_MAX_SOCKETS)
		{
			http_socket_overflow = true;
			return -1;
		}
		http_sockets[i].fd = s;
		http_nsockets++;
	}
	http_sockets[i].what = what;
	return 0;
}

/*
 * http_timer_cb
 *		CURLMOPT_TIMERFUNCTION: remember when curl wants a timeout call.
 */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		http_timer_set = false;
	else
	{
		http_timer_set = true;
		http_timer_deadline = GetCurrentTimestamp() +
			(TimestampTz) timeout_ms * 1000;
	}
	return 0;
}

/*
 * http_buf_append
 *		Append to a buffer without ever raising an error; false if memory
 *		ran out.  The buffer stays NUL-terminated.  Growth doubles but never
 *		goes past limit bytes of content (plus the NUL), so a response read
 *		into a buffer capped at its expected size costs that size, not twice.
 */
static bool
http_buf_append(HttpBuf *b, const char *data, size_t len, size_t limit)
{
	if (b->len + len + 1 > b->cap)
	{
		size_t		need = b->len + len + 1;
		size_t		newcap = Max(Max(b->cap * 2, need), 1024);
		char	   *n;

		if (newcap > limit + 1 && need <= limit + 1)
			newcap = limit + 1;
		if (newcap > MaxAllocHugeSize)
			return false;
		n = MemoryContextAllocExtended(b->cxt, newcap,
									   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
		if (n == NULL)
			return false;
		if (b->len > 0)
			memcpy(n, b->data, b->len);
		if (b->data != NULL)
			pfree(b->data);
		b->data = n;
		b->cap = newcap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

/*
 * http_buf_reset
 *		Empty a buffer and release its memory.
 */
static void
http_buf_reset(HttpBuf *b)
{
	if (b->data != NULL)
		pfree(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/*
 * http_write_cb
 *		CURLOPT_WRITEFUNCTION: collect the response body.  Returning less
 *		than given makes curl fail the transfer with CURLE_WRITE_ERROR.
 */
static size_t
http_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpTransfer *t = (HttpTransfer *) userdata;
	size_t		n = size * nmemb;

	if (t->body.len + n > t->max_bytes)
	{
		t->oversize = true;
		return 0;
	}
	if (!http_buf_append(&t->body, ptr, n, t->max_bytes))
	{
		t->oom = true;
		return 0;
	}
	return n;
}

/*
 * http_header_cb
 *		CURLOPT_HEADERFUNCTION: collect the raw response headers.  A new
 *		status line (after "100 Continue") starts over.
 */
static size_t
http_header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpTransfer *t = (HttpTransfer *) userdata;
	size_t		n = size * nmemb;

	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
		t->rawhdr.len = 0;
	if (t->rawhdr.len + n > 1024 * 1024)
	{
		t->oversize = true;
		return 0;
	}
	if (!http_buf_append(&t->rawhdr, ptr, n, 1024 * 1024))
	{
		t->oom = true;
		return 0;
	}
	return n;
}

/*
 * http_block_signals / http_restore_signals
 *		Block every signal around calls that may make curl start a thread,
 *		so the thread inherits a full mask.
 */
static void
http_block_signals(sigset_t *saved)
{
	sigset_t	all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, saved);
}

static void
http_restore_signals(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/*
 * http_socket_action
 *		curl_multi_socket_action with signals blocked.
 */
static void
http_socket_action(curl_socket_t s, int mask)
{
	sigset_t	saved;
	int			running;
	CURLMcode	rc;

	http_block_signals(&saved);
	rc = curl_multi_socket_action(http_multi, s, mask, &running);
	http_restore_signals(&saved);

	if (rc != CURLM_OK && rc != CURLM_BAD_SOCKET)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("libcurl multi interface failed: %s",
						curl_multi_strerror(rc))));
}

/*
 * http_at_exit
 *		Close the cached connections at process exit.
 */
static void
http_at_exit(int code, Datum arg)
{
	if (http_multi != NULL)
	{
		curl_multi_cleanup(http_multi);
		http_multi = NULL;
	}
}

/*
 * http_init
 *		Initialise libcurl and the per-process multi handle on first use.
 */
static void
http_init(void)
{
	CURLM	   *multi;

	if (http_multi != NULL)
		return;

	if (!http_curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialize libcurl")));
		http_curl_initialized = true;
	}

	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not create a libcurl multi handle.")));
	/* (a handle whose options failed is not kept: it would be unusable) */
	HTTP_MULTI_SETOPT(multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	HTTP_MULTI_SETOPT(multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	HTTP_MULTI_SETOPT(multi, CURLMOPT_MAXCONNECTS, (long) DMS_HTTP_MAX_PARALLEL);
	http_multi = multi;
	http_nsockets = 0;
	http_timer_set = false;

	if (!http_exit_registered)
	{
		on_proc_exit(http_at_exit, (Datum) 0);
		http_exit_registered = true;
	}
}

/*
 * http_check_header
 *		Refuse header names and values that would corrupt the request.
 */
static void
http_check_header(const char *name, const char *value)
{
	const char *c;

	if (name == NULL || *name == '\0' || value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("HTTP header without a name or value")));
	for (c = name; *c; c++)
		if (*c <= ' ' || *c == ':' || (unsigned char) *c >= 0x7F)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid HTTP header name \"%s\"", name),
					 errhint("Header names are ASCII without spaces or colons.")));
	if (strpbrk(value, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for HTTP header \"%s\"", name),
				 errdetail("Header values cannot contain line breaks.")));
}

/*
 * http_add_header
 *		Append "name: value" to the transfer's curl header list.
 */
static void
http_add_header(HttpTransfer *t, const char *name, const char *value)
{
	char	   *line = psprintf("%s: %s", name, value);
	struct curl_slist *l = curl_slist_append(t->slist, line);

	pfree(line);
	if (l == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	t->slist = l;
}

/*
 * http_add_raw_header
 *		Append a raw curl header directive ("Expect:" removes a header).
 */
static void
http_add_raw_header(HttpTransfer *t, const char *line)
{
	struct curl_slist *l = curl_slist_append(t->slist, line);

	if (l == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	t->slist = l;
}

/*
 * http_start_attempt
 *		Sign the request (if it has credentials), set up a curl easy handle
 *		and add it to the multi handle.
 */
static void
http_start_attempt(HttpTransfer *t)
{
	const DmsHttpRequest *req = t->req;
	CURL	   *easy;
	bool		has_ctype = false;
	int			i;
	sigset_t	saved;
	CURLMcode	mrc;
	long		connect_ms = req->connect_timeout_ms > 0 ?
		req->connect_timeout_ms : dms_http_connect_timeout_ms;
	long		timeout_ms = req->timeout_ms > 0 ?
		req->timeout_ms : dms_http_request_timeout_ms;
	long		left_ms;

	Assert(t->easy == NULL && t->slist == NULL);
	http_buf_reset(&t->body);
	http_buf_reset(&t->rawhdr);
	t->oversize = false;
	t->oom = false;
	t->errbuf[0] = '\0';
	t->attempt++;
	if (t->attempt == 1)
	{
		t->started = GetCurrentTimestamp();
		t->deadline = TimestampTzPlusMilliseconds(t->started, dms_http_total_timeout_ms);
	}
	/* an attempt gets at most the time left of dms_stream.http_total_timeout */
	left_ms = Max((long) ((t->deadline - GetCurrentTimestamp()) / 1000), 1L);
	timeout_ms = Min(timeout_ms, left_ms);
	connect_ms = Min(connect_ms, left_ms);

	for (i = 0; i < req->nheaders; i++)
	{
		http_check_header(req->headers[i].name, req->headers[i].value);
		if (pg_strcasecmp(req->headers[i].name, "Content-Type") == 0)
			has_ctype = true;
		http_add_header(t, req->headers[i].name, req->headers[i].value);
	}

	if (req->credentials != NULL)
	{
		AwsSigV4Request sreq;
		AwsSigV4Signature sig;

		memset(&sreq, 0, sizeof(sreq));
		sreq.method = req->method;
		sreq.url = req->url;
		sreq.headers = req->headers;
		sreq.nheaders = req->nheaders;
		sreq.payload = req->body;
		sreq.payload_len = req->body_len;
		sreq.payload_hash = req->payload_hash;
		sreq.service = req->service;
		sreq.region = req->region;
		sreq.signing_time = GetCurrentTimestamp();
		sreq.credentials = req->credentials;
		aws_sigv4_sign(&sreq, &sig);
		for (i = 0; i < sig.nheaders; i++)
			http_add_header(t, sig.headers[i].name, sig.headers[i].value);
	}

	/* no "Expect: 100-continue" round trip; no form Content-Type by default */
	http_add_raw_header(t, "Expect:");
	if (!has_ctype)
		http_add_raw_header(t, "Content-Type:");

	easy = curl_easy_init();
	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not create a libcurl handle.")));
	t->easy = easy;

	HTTP_EASY_SETOPT(easy, CURLOPT_PRIVATE, t);
	HTTP_EASY_SETOPT(easy, CURLOPT_URL, req->url);
	HTTP_EASY_SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	HTTP_EASY_SETOPT(easy, CURLOPT_PATH_AS_IS, 1L);
	HTTP_EASY_SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	HTTP_EASY_SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
	HTTP_EASY_SETOPT(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	HTTP_EASY_SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	HTTP_EASY_SETOPT(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	HTTP_EASY_SETOPT(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	HTTP_EASY_SETOPT(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (dms_http_ca_bundle != NULL && dms_http_ca_bundle[0] != '\0')
		HTTP_EASY_SETOPT(easy, CURLOPT_CAINFO, dms_http_ca_bundle);
	HTTP_EASY_SETOPT(easy, CURLOPT_USERAGENT,
					 "dms_stream/" DMS_STREAM_VERSION " libcurl/" LIBCURL_VERSION);
	HTTP_EASY_SETOPT(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	HTTP_EASY_SETOPT(easy, CURLOPT_WRITEFUNCTION, http_write_cb);
	HTTP_EASY_SETOPT(easy, CURLOPT_WRITEDATA, t);
	HTTP_EASY_SETOPT(easy, CURLOPT_HEADERFUNCTION, http_header_cb);
	HTTP_EASY_SETOPT(easy, CURLOPT_HEADERDATA, t);
	HTTP_EASY_SETOPT(easy, CURLOPT_HTTPHEADER, t->slist);

	if (pg_strcasecmp(req->method, "GET") == 0 && req->body_len == 0)
		HTTP_EASY_SETOPT(easy, CURLOPT_HTTPGET, 1L);
	else if (pg_strcasecmp(req->method, "HEAD") == 0)
		HTTP_EASY_SETOPT(easy, CURLOPT_NOBODY, 1L);
	else
	{
		if (pg_strcasecmp(req->method, "POST") == 0)
			HTTP_EASY_SETOPT(easy, CURLOPT_POST, 1L);
		else
			HTTP_EASY_SETOPT(easy, CURLOPT_CUSTOMREQUEST, req->method);
		if (req->body_len > 0 || pg_strcasecmp(req->method, "POST") == 0 ||
			pg_strcasecmp(req->method, "PUT") == 0)
		{
			HTTP_EASY_SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE,
							 (curl_off_t) req->body_len);
			if (req->body_len > HTTP_SMALL_BODY_BYTES)
				HTTP_EASY_SETOPT(easy, CURLOPT_UPLOAD_BUFFERSIZE,
								 (long) HTTP_UPLOAD_BUFFER_BYTES);
			HTTP_EASY_SETOPT(easy, CURLOPT_POSTFIELDS,
							 req->body != NULL ? req->body : "");
		}
	}

	http_block_signals(&saved);
	mrc = curl_multi_add_handle(http_multi, easy);
	http_restore_signals(&saved);
	if (mrc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start HTTP request: %s",
						curl_multi_strerror(mrc))));
	t->state = HTTP_RUNNING;
}

/*
 * http_release_easy
 *		Take the transfer's easy handle out of the multi handle and free it
 *		and its header list.  Safe to call when there is none.
 */
static void
http_release_easy(HttpTransfer *t)
{
	if (t->easy != NULL)
	{
		CURLMcode	rc = curl_multi_remove_handle(http_multi, t->easy);

		/* runs in cleanup paths: report, never raise */
		if (rc != CURLM_OK)
			elog(WARNING, "dms_stream: curl_multi_remove_handle failed: %s",
				 curl_multi_strerror(rc));
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
	}
	if (t->slist != NULL)
	{
		curl_slist_free_all(t->slist);
		t->slist = NULL;
	}
}

/*
 * http_parse_headers
 *		Split the raw response headers into name/value pairs.
 */
static void
http_parse_headers(HttpTransfer *t)
{
	DmsHttpResponse *resp = t->resp;
	char	   *p;
	int			max = 1;
	int			n = 0;

	resp->headers = NULL;
	resp->nheaders = 0;
	if (t->rawhdr.len == 0)
		return;

	for (p = t->rawhdr.data; *p; p++)
		if (*p == '\n')
			max++;
	resp->headers = palloc0(sizeof(AwsHeader) * max);

	p = t->rawhdr.data;
	while (*p)
	{
		char	   *eol = strchr(p, '\n');
		char	   *end = eol ? eol : p + strlen(p);
		char	   *colon;

		while (end > p && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			end--;
		colon = memchr(p, ':', end - p);
		if (colon != NULL && strncmp(p, "HTTP/", 5) != 0)
		{
			char	   *v = colon + 1;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			resp->headers[n].name = pnstrdup(p, colon - p);
			resp->headers[n].value = pnstrdup(v, end - v);
			n++;
		}
		if (eol == NULL)
			break;
		p = eol + 1;
	}
	resp->nheaders = n;
}

/*
 * dms_http_response_header
 *		Value of a response header (case-insensitive), or NULL.
 */
const char *
dms_http_response_header(const DmsHttpResponse *resp, const char *name)
{
	int			i;

	for (i = 0; i < resp->nheaders; i++)
		if (pg_strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

/*
 * http_copy_text
 *		Copy at most size - 1 bytes of a string into a fixed buffer; used
 *		while a libxml2 or jansson document is alive, where nothing may
 *		raise an error (the document would leak).
 */
static void
http_copy_text(char *dst, size_t size, const char *src)
{
	if (src != NULL && dst[0] == '\0')
		strlcpy(dst, src, size);
}

/*
 * http_xml_find
 *		Copy the text of the first element called name under node (depth
 *		first) into dst; leaves dst empty if there is none.
 */
static void
http_xml_find(xmlNodePtr node, const char *name, char *dst, size_t size)
{
	for (; node != NULL && dst[0] == '\0'; node = node->next)
	{
		if (node->type != XML_ELEMENT_NODE)
			continue;
		if (xmlStrcmp(node->name, (const xmlChar *) name) == 0)
		{
			xmlChar    *content = xmlNodeGetContent(node);

			if (content != NULL)
			{
				http_copy_text(dst, size, (const char *) content);
				xmlFree(content);
			}
			return;
		}
		http_xml_find(node->children, name, dst, size);
	}
}

/*
 * http_json_find
 *		Copy the first of the given members of a JSON object that is a
 *		string into dst.
 */
static void
http_json_find(json_t *obj, const char *const *names, char *dst, size_t size)
{
	int			i;

	for (i = 0; names[i] != NULL && dst[0] == '\0'; i++)
		http_copy_text(dst, size, json_string_value(json_object_get(obj, names[i])));
}

/*
 * http_parse_aws_error
 *		Fill error_code and error_message from an AWS error answer: S3 and
 *		query-protocol XML (<Error><Code>..</Code><Message>..</Message>),
 *		JSON ({"__type": "...#Code", "message": ...}) or, failing both, the
 *		x-amzn-ErrorType header.
 */
static void
http_parse_aws_error(DmsHttpResponse *resp)
{
	const char *b = resp->body;
	size_t		len = resp->body_len;
	const char *etype;
	char		code[256] = "";
	char		message[2048] = "";
	char		request_id[256] = "";

	while (len > 0 && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n'))
	{
		b++;
		len--;
	}

	if (len > 0 && len <= HTTP_MAX_ERROR_BODY && *b == '<')
	{
		xmlDocPtr	doc = xmlReadMemory(b, (int) len, "error.xml", NULL,
										XML_PARSE_NONET | XML_PARSE_NOERROR |
										XML_PARSE_NOWARNING);

		if (doc != NULL)
		{
			xmlNodePtr	root = xmlDocGetRootElement(doc);

			http_xml_find(root, "Code", code, sizeof(code));
			http_xml_find(root, "Message", message, sizeof(message));
			http_xml_find(root, "RequestId", request_id, sizeof(request_id));
			xmlFreeDoc(doc);
		}
	}
	else if (len > 0 && len <= HTTP_MAX_ERROR_BODY && *b == '{')
	{
		static const char *const code_names[] = {"__type", "code", "Code", NULL};
		static const char *const msg_names[] = {"message", "Message", "errorMessage", NULL};
		json_error_t jerr;
		json_t	   *root = json_loadb(b, len, 0, &jerr);

		if (root != NULL)
		{
			if (json_is_object(root))
			{
				http_json_find(root, code_names, code, sizeof(code));
				http_json_find(root, msg_names, message, sizeof(message));
			}
			json_decref(root);
		}
	}

	/* "com.amazonaws.kinesis#ResourceNotFoundException" -> the last part */
	if (code[0] != '\0')
		resp->error_code = pstrdup(strchr(code, '#') ? strrchr(code, '#') + 1 : code);
	if (message[0] != '\0')
		resp->error_message = pstrdup(message);
	if (request_id[0] != '\0' && resp->request_id == NULL)
		resp->request_id = pstrdup(request_id);

	/* "ValidationException:http://internal.amazon.com/..." */
	etype = dms_http_response_header(resp, "x-amzn-ErrorType");
	if (resp->error_code == NULL && etype != NULL && *etype != '\0')
		resp->error_code = pnstrdup(etype, strcspn(etype, ":"));
}

/*
 * http_failure_retryable
 *		Decide whether a failed attempt is worth retrying.
 */
static bool
http_failure_retryable(const DmsHttpResponse *resp)
{
	if (resp->curl_code != CURLE_OK)
	{
		switch ((CURLcode) resp->curl_code)
		{
			case CURLE_COULDNT_RESOLVE_HOST:
			case CURLE_COULDNT_RESOLVE_PROXY:
			case CURLE_COULDNT_CONNECT:
			case CURLE_OPERATION_TIMEDOUT:
			case CURLE_SEND_ERROR:
			case CURLE_RECV_ERROR:
			case CURLE_GOT_NOTHING:
			case CURLE_PARTIAL_FILE:
			case CURLE_SSL_CONNECT_ERROR:
			case CURLE_HTTP2:
			case CURLE_HTTP2_STREAM:
				return true;
			default:
				return false;
		}
	}
	if (dms_http_is_retryable_code(resp->error_code))
		return true;
	if (resp->status == 429)
		return true;
	if (resp->status >= 500 && resp->status != 501)
		return true;
	return false;
}

/*
 * http_backoff_ms
 *		Full-jitter exponential backoff before retry number "retry" (1-based);
 *		a Retry-After header in seconds is honoured up to the cap.
 */
static long
http_backoff_ms(const DmsHttpResponse *resp, int retry)
{
	double		base = http_code_in(resp->error_code, http_throttling_codes) ||
		resp->status == 429 ? HTTP_BACKOFF_THROTTLE_MS : HTTP_BACKOFF_BASE_MS;
	double		ceiling = base * (double) (1L << Min(retry - 1, 20));
	long		delay;
	const char *retry_after = dms_http_response_header(resp, "Retry-After");

	if (ceiling > HTTP_BACKOFF_CAP_MS)
		ceiling = HTTP_BACKOFF_CAP_MS;
	delay = (long) (pg_prng_double(&pg_global_prng_state) * ceiling);

	if (retry_after != NULL && strspn(retry_after, "0123456789") == strlen(retry_after) &&
		strlen(retry_after) > 0 && strlen(retry_after) < 6)
	{
		long		ra = atol(retry_after) * 1000;

		delay = Max(delay, Min(ra, HTTP_BACKOFF_CAP_MS));
	}
	return delay;
}

/*
 * http_finish_attempt
 *		Record the outcome of an attempt curl reports as done, then either
 *		schedule a retry or mark the request finished.
 */
static void
http_finish_attempt(HttpTransfer *t, CURLcode result)
{
	DmsHttpResponse *resp = t->resp;
	long		status = 0;
	long		nconnects = 0;
	long		delay;
	TimestampTz now;

	HTTP_EASY_GETINFO(t->easy, CURLINFO_RESPONSE_CODE, &status);
	HTTP_EASY_GETINFO(t->easy, CURLINFO_NUM_CONNECTS, &nconnects);
	http_release_easy(t);

	if (t->oom)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not store the answer to %s %s.",
						   t->req->method, t->req->url)));

	/* a retried attempt replaces the previous answer */
	if (resp->body != NULL)
		pfree(resp->body);
	memset(resp, 0, sizeof(*resp));
	resp->attempts = t->attempt;
	resp->curl_code = (int) result;
	resp->status = status;
	resp->reused_connection = (result == CURLE_OK && nconnects == 0);
	if (result != CURLE_OK)
		resp->transport_error = t->oversize ?
			psprintf("the answer is larger than %zu bytes", t->max_bytes) :
			pstrdup(t->errbuf[0] ? t->errbuf : curl_easy_strerror(result));

	http_parse_headers(t);
	if (t->body.data != NULL)
	{
		resp->body = t->body.data;
		resp->body_len = t->body.len;
		/* the buffer now belongs to the response */
		t->body.data = NULL;
		t->body.len = t->body.cap = 0;
	}
	else
	{
		resp->body = pstrdup("");
		resp->body_len = 0;
	}

	resp->request_id = (char *) dms_http_response_header(resp, "x-amzn-RequestId");
	if (resp->request_id == NULL)
		resp->request_id = (char *) dms_http_response_header(resp, "x-amz-request-id");

	resp->ok = (result == CURLE_OK && status >= 200 && status < 300);
	if (!resp->ok && result == CURLE_OK)
		http_parse_aws_error(resp);
	resp->retryable = !resp->ok && !t->oversize && http_failure_retryable(resp);

	now = GetCurrentTimestamp();
	resp->elapsed_ms = (double) (now - t->started) / 1000.0;

	delay = resp->retryable && t->attempt <= t->max_retries ?
		http_backoff_ms(resp, t->attempt) : -1;
	if (resp->retryable &&
		(now >= t->deadline ||
		 (delay >= 0 && now + (TimestampTz) delay * 1000 >= t->deadline)))
	{
		/* dms_stream.http_total_timeout leaves no time for another attempt */
		resp->total_timeout = true;
		t->state = HTTP_DONE;
	}
	else if (delay >= 0)
	{
		elog(DEBUG1, "dms_stream: %s %s failed (%s), retry %d of %d in %ld ms",
			 t->req->method, t->req->url,
			 resp->error_code ? resp->error_code :
			 resp->transport_error ? resp->transport_error : "HTTP error",
			 t->attempt, t->max_retries, delay);
		t->state = HTTP_BACKOFF;
		t->retry_at = now + (TimestampTz) delay * 1000;
	}
	else
		t->state = HTTP_DONE;
}

/*
 * http_collect_done
 *		Handle every transfer curl reports as finished.
 */
static void
http_collect_done(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(http_multi, &left)) != NULL)
	{
		HttpTransfer *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		HTTP_EASY_GETINFO(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		if (t == NULL || t->easy != msg->easy_handle)
			continue;
		{
			MemoryContext old = MemoryContextSwitchTo(t->resp_cxt);

			http_finish_attempt(t, msg->data.result);
			MemoryContextSwitchTo(old);
		}
	}
}

/*
 * http_wait
 *		Sleep until a watched socket is ready, curl's timer or a retry is
 *		due, or the latch is set (at most HTTP_MAX_SLEEP_MS), then service
 *		interrupts and drive curl.  *wes is where the wait set lives while
 *		it exists, so that the caller can free it after an error.
 */
static void
http_wait(HttpTransfer *ts, int n, WaitEventSet *volatile *wes)
{
	TimestampTz now = GetCurrentTimestamp();
	long		timeout = HTTP_MAX_SLEEP_MS;
	WaitEvent	events[HTTP_MAX_SOCKETS + 2];
	int			nevents;
	int			i;
	int			nready;

	if (http_timer_set)
	{
		long		ms = (long) ((http_timer_deadline - now + 999) / 1000);

		timeout = Min(timeout, Max(ms, 0));
	}
	for (i = 0; i < n; i++)
	{
		if (ts[i].state == HTTP_BACKOFF)
		{
			long		ms = (long) ((ts[i].retry_at - now + 999) / 1000);

			timeout = Min(timeout, Max(ms, 0));
		}
	}

	*wes = CreateWaitEventSet(CurrentMemoryContext, http_nsockets + 2);
	AddWaitEventToSet(*wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	if (IsUnderPostmaster)
		AddWaitEventToSet(*wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < http_nsockets; i++)
	{
		uint32		ev = 0;

		if (http_sockets[i].what & CURL_POLL_IN)
			ev |= WL_SOCKET_READABLE;
		if (http_sockets[i].what & CURL_POLL_OUT)
			ev |= WL_SOCKET_WRITEABLE;
		if (ev != 0)
			AddWaitEventToSet(*wes, ev, http_sockets[i].fd, NULL, NULL);
	}
	nevents = http_nsockets + 2;

	nready = WaitEventSetWait(*wes, timeout, events, nevents, PG_WAIT_EXTENSION);
	FreeWaitEventSet(*wes);
	*wes = NULL;

	for (i = 0; i < nready; i++)
		if (events[i].events & WL_LATCH_SET)
			ResetLatch(MyLatch);

	CHECK_FOR_INTERRUPTS();

	for (i = 0; i < nready; i++)
	{
		int			mask = 0;

		if (events[i].events & WL_LATCH_SET)
			continue;
		if (events[i].events & WL_SOCKET_READABLE)
			mask |= CURL_CSELECT_IN;
		if (events[i].events & WL_SOCKET_WRITEABLE)
			mask |= CURL_CSELECT_OUT;
		if (mask != 0)
			http_socket_action(events[i].fd, mask);
	}

	if (http_timer_set && GetCurrentTimestamp() >= http_timer_deadline)
	{
		http_timer_set = false;
		http_socket_action(CURL_SOCKET_TIMEOUT, 0);
	}

	if (http_socket_overflow)
	{
		http_socket_overflow = false;
		elog(WARNING, "dms_stream: more than %d sockets in flight", HTTP_MAX_SOCKETS);
	}
}

/*
 * http_drive_nowait
 *		Let curl do what it can at once on the sockets that are ready (and
 *		on its timer if due), without sleeping: one poll(2), no wait set.
 */
static void
http_drive_nowait(void)
{
	struct pollfd fds[HTTP_MAX_SOCKETS];
	int			n = 0;
	int			nready;
	int			i;

	for (i = 0; i < http_nsockets; i++)
	{
		short		ev = 0;

		if (http_sockets[i].what & CURL_POLL_IN)
			ev |= POLLIN;
		if (http_sockets[i].what & CURL_POLL_OUT)
			ev |= POLLOUT;
		if (ev == 0)
			continue;
		fds[n].fd = http_sockets[i].fd;
		fds[n].events = ev;
		fds[n].revents = 0;
		n++;
	}
	nready = n > 0 ? poll(fds, n, 0) : 0;
	for (i = 0; i < n && nready > 0; i++)
	{
		int			mask = 0;

		if (fds[i].revents == 0)
			continue;
		if (fds[i].revents & (POLLIN | POLLHUP))
			mask |= CURL_CSELECT_IN;
		if (fds[i].revents & POLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (fds[i].revents & (POLLERR | POLLNVAL))
			mask |= CURL_CSELECT_ERR;
		http_socket_action(fds[i].fd, mask);
	}
	if (http_timer_set && GetCurrentTimestamp() >= http_timer_deadline)
	{
		http_timer_set = false;
		http_socket_action(CURL_SOCKET_TIMEOUT, 0);
	}
}

/*
 * dms_http_sleep
 *		Wait ms milliseconds on the latch, servicing interrupts; see http.h.
 */
void
dms_http_sleep(long ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left = (long) ((until - GetCurrentTimestamp() + 999) / 1000);
		int			events = WL_LATCH_SET | WL_TIMEOUT;

		CHECK_FOR_INTERRUPTS();
		if (left <= 0)
			break;
		if (IsUnderPostmaster)
			events |= WL_EXIT_ON_PM_DEATH;
		(void) WaitLatch(MyLatch, events, Min(left, (long) HTTP_MAX_SLEEP_MS),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * dms_http_perform
 *		Run n requests concurrently until each is finished; see http.h.
 */
void
dms_http_perform(const DmsHttpRequest *reqs, DmsHttpResponse *resps, int n)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	MemoryContext work_cxt;
	HttpTransfer *volatile ts;
	WaitEventSet *volatile wes = NULL;
	int			i;

	if (n <= 0)
		return;
	http_init();

	work_cxt = AllocSetContextCreate(CurrentMemoryContext,
									 "dms_stream HTTP",
									 ALLOCSET_DEFAULT_SIZES);
	ts = MemoryContextAllocZero(work_cxt, sizeof(HttpTransfer) * n);
	for (i = 0; i < n; i++)
	{
		ts[i].req = &reqs[i];
		ts[i].resp = &resps[i];
		ts[i].resp_cxt = caller_cxt;
		ts[i].state = HTTP_PENDING;
		ts[i].max_retries = reqs[i].max_retries >= 0 ?
			reqs[i].max_retries : dms_http_max_retries;
		ts[i].max_bytes = reqs[i].max_response_bytes > 0 ?
			Min(reqs[i].max_response_bytes, HTTP_DEFAULT_MAX_RESPONSE) :
			HTTP_DEFAULT_MAX_RESPONSE;
		ts[i].body.cxt = caller_cxt;
		ts[i].rawhdr.cxt = work_cxt;
		memset(&resps[i], 0, sizeof(DmsHttpResponse));
		if (reqs[i].method == NULL || reqs[i].url == NULL)
			elog(ERROR, "dms_stream HTTP request %d has no method or URL", i);
	}

	PG_TRY();
	{
		for (;;)
		{
			TimestampTz now = GetCurrentTimestamp();
			int			running = 0;
			bool		all_done = true;

			for (i = 0; i < n; i++)
			{
				if (ts[i].state == HTTP_RUNNING)
					running++;
				if (ts[i].state != HTTP_DONE)
					all_done = false;
			}
			if (all_done)
				break;

			/* set-up garbage (signatures, header lines) goes to work_cxt */
			MemoryContextSwitchTo(work_cxt);
			for (i = 0; i < n && running < DMS_HTTP_MAX_PARALLEL; i++)
			{
				if (ts[i].state == HTTP_PENDING ||
					(ts[i].state == HTTP_BACKOFF && now >= ts[i].retry_at))
				{
					http_start_attempt(&ts[i]);
					running++;
				}
			}
			http_wait(ts, n, &wes);

			/* responses are built in the caller's context */
			MemoryContextSwitchTo(caller_cxt);
			http_collect_done();
		}
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(caller_cxt);
		if (wes != NULL)
			FreeWaitEventSet(wes);
		for (i = 0; i < n; i++)
			http_release_easy(&ts[i]);
	}
	PG_END_TRY();

	MemoryContextDelete(work_cxt);
}

/*
 * The request queue: up to DMS_HTTP_MAX_PARALLEL transfers that start when
 * submitted and are collected one by one as they finish, so that a caller
 * can prepare its next request while others are on the wire.  Each slot
 * has a memory context for the set-up garbage of its attempts (signatures,
 * header lines), reset when the slot starts an attempt.  A reset callback
 * on the queue's context releases the curl handles of transfers still in
 * flight when that context goes away (after an ERROR, with the memory of
 * the requests), so that curl never calls back into freed memory.
 */
struct DmsHttpQueue
{
	MemoryContext cxt;
	HttpTransfer slots[DMS_HTTP_MAX_PARALLEL];
	MemoryContext work[DMS_HTTP_MAX_PARALLEL];
	void	   *args[DMS_HTTP_MAX_PARALLEL];
	bool		used[DMS_HTTP_MAX_PARALLEL];
	int			nused;
	MemoryContextCallback release;
};

/*
 * http_queue_release
 *		Take every transfer of the queue out of curl.
 */
static void
http_queue_release(void *arg)
{
	DmsHttpQueue *q = (DmsHttpQueue *) arg;
	int			i;

	for (i = 0; i < DMS_HTTP_MAX_PARALLEL; i++)
	{
		HttpTransfer *t = &q->slots[i];

		if (http_multi != NULL)
			http_release_easy(t);
		t->state = HTTP_DONE;
		q->used[i] = false;
	}
	q->nused = 0;
}

/*
 * dms_http_queue_create
 *		An empty queue in CurrentMemoryContext; see http.h.
 */
DmsHttpQueue *
dms_http_queue_create(void)
{
	DmsHttpQueue *q = palloc0(sizeof(DmsHttpQueue));
	int			i;

	http_init();
	q->cxt = CurrentMemoryContext;
	for (i = 0; i < DMS_HTTP_MAX_PARALLEL; i++)
		q->slots[i].state = HTTP_DONE;
	q->release.func = http_queue_release;
	q->release.arg = q;
	MemoryContextRegisterResetCallback(q->cxt, &q->release);
	return q;
}

/*
 * http_queue_start
 *		Start an attempt of slot i (the first one, or a retry).
 */
static void
http_queue_start(DmsHttpQueue *q, int i)
{
	HttpTransfer *t = &q->slots[i];
	MemoryContext old;

	if (q->work[i] == NULL)
		q->work[i] = AllocSetContextCreate(q->cxt, "dms_stream HTTP request",
										   ALLOCSET_SMALL_SIZES);
	/* the header buffer lives in the work context: forget it first */
	t->rawhdr.data = NULL;
	t->rawhdr.len = t->rawhdr.cap = 0;
	MemoryContextReset(q->work[i]);
	t->rawhdr.cxt = q->work[i];
	old = MemoryContextSwitchTo(q->work[i]);
	http_start_attempt(t);
	MemoryContextSwitchTo(old);
}

/*
 * dms_http_queue_submit
 *		Start a request in a free slot; see http.h.
 */
void
dms_http_queue_submit(DmsHttpQueue *q, const DmsHttpRequest *req,
					  DmsHttpResponse *resp, void *arg)
{
	HttpTransfer *t = NULL;
	int			i;

	for (i = 0; i < DMS_HTTP_MAX_PARALLEL; i++)
		if (!q->used[i])
			break;
	if (i == DMS_HTTP_MAX_PARALLEL)
		elog(ERROR, "dms_stream HTTP queue already has %d requests in flight",
			 DMS_HTTP_MAX_PARALLEL);
	if (req->method == NULL || req->url == NULL)
		elog(ERROR, "dms_stream HTTP request has no method or URL");

	t = &q->slots[i];
	memset(t, 0, sizeof(HttpTransfer));
	t->req = req;
	t->resp = resp;
	t->resp_cxt = CurrentMemoryContext;
	t->state = HTTP_PENDING;
	t->max_retries = req->max_retries >= 0 ? req->max_retries : dms_http_max_retries;
	t->max_bytes = req->max_response_bytes > 0 ?
		Min(req->max_response_bytes, HTTP_DEFAULT_MAX_RESPONSE) :
		HTTP_DEFAULT_MAX_RESPONSE;
	t->body.cxt = CurrentMemoryContext;
	memset(resp, 0, sizeof(DmsHttpResponse));
	q->args[i] = arg;
	q->used[i] = true;
	q->nused++;
	PG_TRY();
	{
		http_queue_start(q, i);
	}
	PG_CATCH();
	{
		http_queue_release(q);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * http_queue_start_due
 *		Start again the transfers whose retry backoff is over.
 */
static void
http_queue_start_due(DmsHttpQueue *q)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < DMS_HTTP_MAX_PARALLEL; i++)
		if (q->used[i] && q->slots[i].state == HTTP_BACKOFF &&
			now >= q->slots[i].retry_at)
			http_queue_start(q, i);
}

/*
 * dms_http_queue_in_flight
 *		Requests submitted and not yet returned.
 */
int
dms_http_queue_in_flight(DmsHttpQueue *q)
{
	return q->nused;
}

/*
 * dms_http_queue_poll
 *		Drive the transfers, return the finished ones; see http.h.
 */
int
dms_http_queue_poll(DmsHttpQueue *q, bool wait, void **done, int max)
{
	WaitEventSet *volatile wes = NULL;
	int			ndone = 0;
	bool		waited = false;
	int			i;

	PG_TRY();
	{
		for (;;)
		{
			for (i = 0; i < DMS_HTTP_MAX_PARALLEL && ndone < max; i++)
			{
				if (q->used[i] && q->slots[i].state == HTTP_DONE)
				{
					done[ndone++] = q->args[i];
					q->used[i] = false;
					q->nused--;
				}
			}
			if (ndone > 0 || q->nused == 0 || (waited && !wait))
				break;

			http_queue_start_due(q);
			if (wait)
				http_wait(q->slots, DMS_HTTP_MAX_PARALLEL, &wes);
			else
			{
				CHECK_FOR_INTERRUPTS();
				http_drive_nowait();
			}
			http_collect_done();
			waited = true;
		}
	}
	PG_CATCH();
	{
		if (wes != NULL)
			FreeWaitEventSet(wes);
		http_queue_release(q);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return ndone;
}

/*
 * dms_http_queue_sleep
 *		Sleep once on the queue's transfers and the latch; see http.h.
 */
void
dms_http_queue_sleep(DmsHttpQueue *q)
{
	WaitEventSet *volatile wes = NULL;
	int			i;

	if (q->nused == 0)
		return;
	for (i = 0; i < DMS_HTTP_MAX_PARALLEL; i++)
		if (q->used[i] && q->slots[i].state == HTTP_DONE)
			return;				/* one is ready to be returned */

	PG_TRY();
	{
		http_queue_start_due(q);
		http_wait(q->slots, DMS_HTTP_MAX_PARALLEL, &wes);
		http_collect_done();
	}
	PG_CATCH();
	{
		if (wes != NULL)
			FreeWaitEventSet(wes);
		http_queue_release(q);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * dms_http_request
 *		Run one request; the response is palloc'd in the caller's context.
 */
DmsHttpResponse *
dms_http_request(const DmsHttpRequest *req)
{
	DmsHttpResponse *resp = palloc0(sizeof(DmsHttpResponse));

	dms_http_perform(req, resp, 1);
	return resp;
}

/*
 * http_error_hint
 *		A likely cause for an AWS error code or a transport failure.
 */
static const char *
http_error_hint(const DmsHttpResponse *resp)
{
	const char *code = resp->error_code;

	if (resp->status == 0 || (resp->curl_code != 0 && !resp->ok && code == NULL && resp->status < 400))
	{
		switch ((CURLcode) resp->curl_code)
		{
			case CURLE_OPERATION_TIMEDOUT:
				return "The endpoint did not answer in time; check that it is reachable, "
					"or raise dms_stream.http_connect_timeout or dms_stream.http_request_timeout.";
			case CURLE_COULDNT_RESOLVE_HOST:
				return "Check the endpoint's host name and the server's DNS settings.";
			case CURLE_COULDNT_CONNECT:
				return "Check the endpoint URL and port and that the service is reachable from the database server.";
			case CURLE_PEER_FAILED_VERIFICATION:
			case CURLE_SSL_CACERT_BADFILE:
			case CURLE_SSL_CERTPROBLEM:
				return "The TLS certificate could not be verified; check the endpoint's host name "
					"or point dms_stream.http_ca_bundle at the right CA certificates.";
			default:
				return "Check the endpoint URL and the network between the database server and the endpoint.";
		}
	}
	if (code == NULL)
		return NULL;
	if (strcmp(code, "SignatureDoesNotMatch") == 0 ||
		strcmp(code, "InvalidSignatureException") == 0 ||
		strcmp(code, "IncompleteSignature") == 0 ||
		strcmp(code, "IncompleteSignatureException") == 0)
		return "Check the secret access key and the server clock; "
			"dms_stream.aws_sigv4_explain shows the canonical request to compare "
			"with the one the service expected.";
	if (strcmp(code, "InvalidAccessKeyId") == 0 ||
		strcmp(code, "UnrecognizedClientException") == 0 ||
		strcmp(code, "InvalidClientTokenId") == 0)
		return "Check the access key id of the endpoint's credentials.";
	if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "ExpiredTokenException") == 0 ||
		strcmp(code, "RequestExpired") == 0 || strcmp(code, "RequestTimeTooSkewed") == 0)
		return "Check the server clock and refresh the session credentials.";
	if (strcmp(code, "AccessDenied") == 0 || strcmp(code, "AccessDeniedException") == 0)
		return "Grant the IAM principal of the endpoint's credentials the permission this operation needs.";
	if (strcmp(code, "NoSuchBucket") == 0 || strcmp(code, "ResourceNotFoundException") == 0)
		return "Check the bucket or stream name and the region of the endpoint.";
	if (http_code_in(code, http_throttling_codes))
		return "The service kept throttling after every retry; reduce the load "
			"or raise dms_stream.http_max_retries.";
	if (dms_http_is_retryable_code(code))
		return "The service kept failing after every retry; try again later "
			"or raise dms_stream.http_max_retries.";
	return NULL;
}

/*
 * http_error_sqlstate
 *		SQLSTATE for a failed request.
 */
static int
http_error_sqlstate(const DmsHttpResponse *resp)
{
	const char *code = resp->error_code;

	if (resp->status == 0)
		return ERRCODE_CONNECTION_FAILURE;
	if (code != NULL)
	{
		if (strcmp(code, "SignatureDoesNotMatch") == 0 ||
			strcmp(code, "InvalidSignatureException") == 0 ||
			strcmp(code, "InvalidAccessKeyId") == 0 ||
			strcmp(code, "UnrecognizedClientException") == 0 ||
			strcmp(code, "InvalidClientTokenId") == 0 ||
			strcmp(code, "ExpiredToken") == 0 ||
			strcmp(code, "ExpiredTokenException") == 0)
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		if (strcmp(code, "AccessDenied") == 0 || strcmp(code, "AccessDeniedException") == 0)
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		if (strcmp(code, "NoSuchBucket") == 0 || strcmp(code, "NoSuchKey") == 0 ||
			strcmp(code, "ResourceNotFoundException") == 0)
			return ERRCODE_UNDEFINED_OBJECT;
		if (http_code_in(code, http_throttling_codes))
			return ERRCODE_INSUFFICIENT_RESOURCES;
	}
	return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
}

/*
 * dms_http_raise_error
 *		Report a failed request; see http.h.
 */
void
dms_http_raise_error(int elevel, const char *what, const DmsHttpRequest *req,
					 const DmsHttpResponse *resp)
{
	StringInfoData detail;
	const char *summary;
	const char *hint = http_error_hint(resp);

	initStringInfo(&detail);
	if (resp->status == 0)
	{
		summary = resp->curl_code != 0 ?
			curl_easy_strerror((CURLcode) resp->curl_code) : "no answer";
		appendStringInfo(&detail, "%s %s: %s (curl error %d)",
						 req->method, req->url,
						 resp->transport_error ? resp->transport_error : summary,
						 resp->curl_code);
	}
	else
	{
		summary = resp->error_code ? resp->error_code :
			psprintf("HTTP status %ld", resp->status);
		appendStringInfo(&detail, "%s %s answered HTTP status %ld",
						 req->method, req->url, resp->status);
		if (resp->error_code != NULL)
			appendStringInfo(&detail, ", AWS error %s", resp->error_code);
		if (resp->error_message != NULL)
			appendStringInfo(&detail, ": %.1000s", resp->error_message);
		if (resp->curl_code != 0 && resp->transport_error != NULL)
			appendStringInfo(&detail, " (then: %s)", resp->transport_error);
	}
	if (resp->request_id != NULL)
		appendStringInfo(&detail, "; request id %s", resp->request_id);
	appendStringInfo(&detail, "; %d attempt%s in %.0f ms", resp->attempts,
					 resp->attempts == 1 ? "" : "s", resp->elapsed_ms);
	if (resp->total_timeout)
		appendStringInfo(&detail, ", no time left for a retry within dms_stream.http_total_timeout (%d ms)",
						 dms_http_total_timeout_ms);
	appendStringInfoChar(&detail, '.');
	if (resp->total_timeout && hint == NULL)
		hint = "Raise dms_stream.http_total_timeout to allow more time for the retries.";

	ereport(elevel,
			(errcode(http_error_sqlstate(resp)),
			 errmsg("%s failed: %s", what, summary),
			 errdetail_internal("%s", detail.data),
			 hint ? errhint("%s", hint) : 0));
}
