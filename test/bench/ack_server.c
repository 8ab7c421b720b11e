/*
 * ack_server.c
 *		Minimal acknowledging server in C: the same Kinesis-compatible
 *		PutRecords sink as test/bench/ack_server.mjs (read its header comment
 *		for the contract), with less CPU taken from the process a benchmark
 *		measures (on 2 cores it shares the machine with the task worker).
 *
 * It answers every PutRecords with success for every entry (FailedRecordCount
 * 0, one SequenceNumber/ShardId per entry, in order), counts requests,
 * records and body bytes, and the most requests it had in flight at once. It
 * checks no signature, stores nothing and validates no record. The answer for
 * n entries (status line, headers, body) is built once per n up to 500 and
 * re-sent; entry i always gets the sequence number 10^55 + i.
 * DescribeStreamSummary and ListShards get a one-shard answer; other targets
 * a 400 UnknownOperationException.
 *
 * Records are counted by the "PartitionKey": member names in the body (a key
 * cannot hold a raw quote, so the text only occurs as a member name), scanned
 * in the read buffer as the body arrives, never kept: every ':' ends at most
 * one name, so each ':' is checked against the 14 bytes before it, taken
 * from the current read and, for a name cut by a read boundary, from the last
 * 14 bytes of the body seen before it (each name is counted once, at its ':').
 *
 * HTTP/1.1 on one single-threaded epoll loop: a request is a head (request
 * line and headers up to an empty line, at most 64 kB) and a body of
 * Content-Length bytes or in chunks; keep-alive and pipelined requests are
 * answered in order; "Expect: 100-continue" gets its interim answer;
 * "Connection: close" and HTTP/1.0 close after the answer. A head it cannot
 * read gets 400 and the connection is closed. Memory is bounded: one read
 * buffer for all connections; per connection a head buffer (only when a head
 * or chunk-size line is cut by a read boundary) and the queue of answers not
 * yet written (reading from a connection pauses while its queue is not
 * empty).
 *
 * Differences from ack_server.mjs: no --parse mode (bodies are never kept);
 * Content-Length must be decimal digits; after a "Connection: close" answer
 * further pipelined requests are ignored; other /__ paths get 404; at most
 * 256 distinct targets are counted by name in by_target, further ones under
 * "(other)".
 *
 *	 cc -O2 -Wall -Wextra -Werror -o ack_server test/bench/ack_server.c
 *	 ./ack_server [--port 0] [--host 127.0.0.1]
 * prints "listening http://HOST:PORT" on stdout once ready.
 *	 GET  /__stats	{requests, records, bytes, max_in_flight, by_target}
 *	 POST /__reset	zero the counters
 * SIGTERM exits 0. test/bench/ack_server_cpu.mjs checks this contract and
 * measures the CPU the server needs per request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_SIZE		(256 * 1024)	/* one read of a socket */
#define MAX_HEAD		(64 * 1024) /* longest head or chunk-size/trailer line */
#define MAX_CACHED		500 		/* answers kept for 0..500 entries */
#define MAX_TARGETS		256 		/* distinct names in by_target */
#define MAX_SAFE		9007199254740991ULL /* 2^53 - 1, as the Node server */

static const char MARK[] = "\"PartitionKey\":";
#define MARK_LEN		(sizeof(MARK) - 1)
#define KEEP			(MARK_LEN - 1)	/* bytes before a name's ':' */

/* What a connection is reading. */
typedef enum ReadState
{
	RS_HEAD,					/* request line and headers */
	RS_BODY,					/* Content-Length body: left bytes to go */
	RS_CHUNK_SIZE,				/* a chunk-size line */
	RS_CHUNK_DATA,				/* chunk data: left bytes to go */
	RS_CHUNK_CRLF,				/* the CRLF after chunk data: left to go */
	RS_TRAILER					/* trailer lines up to an empty one */
} ReadState;

/* What a request asks for. */
typedef enum Kind
{
	K_STATS,					/* /__stats */
	K_RESET,					/* /__reset */
	K_INTERNAL,					/* another /__ path: 404 */
	K_PUT_RECORDS,
	K_DESCRIBE,
	K_LIST_SHARDS,
	K_UNKNOWN					/* another target: 400 (answer built at the head) */
} Kind;

/* A buffer to write: static (cached answers) or owned (freed once written). */
typedef struct OutItem
{
	const char *data;
	size_t		len;
	char	   *owned;
} OutItem;

/* One client connection and the request it is reading. */
typedef struct Conn
{
	int			fd;
	uint32_t	events;			/* current epoll interest */
	ReadState	state;
	uint64_t	left;
	char	   *pending;		/* a cut head or line (MAX_HEAD), or NULL */
	size_t		plen;
	Kind		kind;
	char	   *unknown;		/* the K_UNKNOWN answer (owned) */
	size_t		unknown_len;
	bool		close_after;	/* Connection: close / HTTP/1.0 */
	bool		closing;		/* answered the last request: read and drop */
	bool		peer_eof;
	bool		in_flight;		/* counted in in_flight */
	/* the body counter */
	uint64_t	records;
	uint64_t	bytes;
	char		tail[KEEP];		/* the body's last bytes so far */
	size_t		tlen;
	/* answers not yet written: a ring of out_cap items */
	OutItem    *out;
	size_t		out_head;
	size_t		out_count;
	size_t		out_cap;
	size_t		out_off;		/* bytes of out[out_head] already written */
} Conn;

/* The counters of /__stats. */
static struct
{
	uint64_t	requests;
	uint64_t	records;
	uint64_t	bytes;
	uint64_t	max_in_flight;
	int			ntargets;
	char	   *target[MAX_TARGETS + 1];
	size_t		target_len[MAX_TARGETS + 1];
	uint64_t	target_count[MAX_TARGETS + 1];
}			stats;
static uint64_t in_flight;

static char *read_buf;
static int	epfd;

static char *answers[MAX_CACHED + 1];
static size_t answer_len[MAX_CACHED + 1];

static char *describe_answer, *list_shards_answer, *reset_answer, *not_found_answer;
static size_t describe_len, list_shards_len, reset_len, not_found_len;
static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

static bool conn_flush(Conn *c);

/*
 * die: print a message and exit 1 (start-up errors and out of memory).
 */
static void
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fputs("ack_server: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/*
 * xmalloc / xrealloc: malloc and realloc that exit when out of memory.
 */
static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n);

	if (p == NULL)
		die("out of memory (%zu bytes)", n);
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* A growing string (answers that are built). */
typedef struct Str
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Str;

/*
 * str_add: append n bytes to s.
 */
static void
str_add(Str *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap)
	{
		s->cap = (s->len + n + 1) * 2;
		s->data = xrealloc(s->data, s->cap);
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
}

/*
 * str_addf: append printf-formatted text to s.
 */
static void
str_addf(Str *s, const char *fmt,...)
{
	char		buf[256];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	str_add(s, buf, (size_t) n < sizeof(buf) ? (size_t) n : sizeof(buf) - 1);
}

/*
 * str_add_json: append the latin1 bytes p[0, n) as the inside of a JSON
 * string (quotes, backslashes and control characters escaped, bytes >= 0x80
 * as UTF-8, as JSON.stringify does with the Node server's latin1 text).
 */
static void
str_add_json(Str *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		unsigned char ch = (unsigned char) p[i];
		char		esc[8];

		if (ch == '"' || ch == '\\')
		{
			esc[0] = '\\';
			esc[1] = (char) ch;
			str_add(s, esc, 2);
		}
		else if (ch < 0x20)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			str_add(s, esc, 6);
		}
		else if (ch >= 0x80)
		{
			esc[0] = (char) (0xC0 | (ch >> 6));
			esc[1] = (char) (0x80 | (ch & 0x3F));
			str_add(s, esc, 2);
		}
		else
			str_add(s, (const char *) &ch, 1);
	}
}

/*
 * response: a whole HTTP answer (status line, headers, body) in one malloc'd
 * buffer, as the Node server's response(); *len gets its length.
 */
static char *
response(int status, const char *body, size_t body_len, const char *type, size_t *len)
{
	const char *reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : "Not Found";
	Str			s = {0};

	str_addf(&s, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\nx-amzn-RequestId: ack\r\n"
			 "content-length: %zu\r\n\r\n", status, reason, type, body_len);
	str_add(&s, body, body_len);
	*len = s.len;
	return s.data;
}

/*
 * error_response: a 400 answer {"__type": type, "message": prefix + detail}
 * with the given content type.
 */
static char *
error_response(const char *type, const char *prefix, const char *detail, size_t detail_len,
			   const char *ctype, size_t *len)
{
	Str			body = {0};
	char	   *out;

	str_add(&body, "{\"__type\":\"", 11);
	str_add_json(&body, type, strlen(type));
	str_add(&body, "\",\"message\":\"", 13);
	str_add_json(&body, prefix, strlen(prefix));
	str_add_json(&body, detail, detail_len);
	str_add(&body, "\"}", 2);
	out = response(400, body.data, body.len, ctype, len);
	free(body.data);
	return out;
}

/*
 * build_answer: the success answer for n entries (a malloc'd buffer).
 */
static char *
build_answer(uint64_t n, size_t *len)
{
	Str			body = {0};
	char	   *out;

	str_add(&body, "{\"FailedRecordCount\":0,\"Records\":[", 34);
	for (uint64_t i = 0; i < n; i++)
		str_addf(&body, "%s{\"SequenceNumber\":\"1%055llu\",\"ShardId\":\"shardId-000000000000\"}",
				 i > 0 ? "," : "", (unsigned long long) i);
	str_add(&body, "]}", 2);
	out = response(200, body.data, body.len, "application/x-amz-json-1.1", len);
	free(body.data);
	return out;
}

/*
 * stats_reset: zero the counters (the names of by_target too).
 */
static void
stats_reset(void)
{
	for (int i = 0; i < stats.ntargets; i++)
		free(stats.target[i]);
	memset(&stats, 0, sizeof(stats));
}

/*
 * stats_target: count one request for target name p[0, n).
 */
static void
stats_target(const char *p, size_t n)
{
	int			i;

	for (i = 0; i < stats.ntargets; i++)
		if (stats.target_len[i] == n && memcmp(stats.target[i], p, n) == 0)
			break;
	if (i == stats.ntargets)
	{
		if (stats.ntargets == MAX_TARGETS)
		{
			p = "(other)";
			n = 7;
			for (i = 0; i < stats.ntargets; i++)
				if (stats.target_len[i] == n && memcmp(stats.target[i], p, n) == 0)
					break;
		}
		if (i == stats.ntargets)
		{
			stats.target[i] = xmalloc(n + 1);
			memcpy(stats.target[i], p, n);
			stats.target_len[i] = n;
			stats.target_count[i] = 0;
			stats.ntargets++;
		}
	}
	stats.target_count[i]++;
}

/*
 * stats_answer: the answer to GET /__stats (malloc'd).
 */
static char *
stats_answer(size_t *len)
{
	Str			body = {0};
	char	   *out;

	str_addf(&body, "{\"requests\":%llu,\"records\":%llu,\"bytes\":%llu,\"max_in_flight\":%llu,\"by_target\":{",
			 (unsigned long long) stats.requests, (unsigned long long) stats.records,
			 (unsigned long long) stats.bytes, (unsigned long long) stats.max_in_flight);
	for (int i = 0; i < stats.ntargets; i++)
	{
		str_add(&body, i > 0 ? ",\"" : "\"", i > 0 ? 2 : 1);
		str_add_json(&body, stats.target[i], stats.target_len[i]);
		str_addf(&body, "\":%llu", (unsigned long long) stats.target_count[i]);
	}
	str_add(&body, "}}", 2);
	out = response(200, body.data, body.len, "application/json", len);
	free(body.data);
	return out;
}

/*
 * out_push: queue a buffer to write on c (owned is freed once written).
 */
static void
out_push(Conn *c, const char *data, size_t len, char *owned)
{
	OutItem    *it;

	if (c->out_count == c->out_cap)
	{
		size_t		cap = c->out_cap ? c->out_cap * 2 : 8;
		OutItem    *items = xmalloc(cap * sizeof(OutItem));

		for (size_t i = 0; i < c->out_count; i++)
			items[i] = c->out[(c->out_head + i) % c->out_cap];
		free(c->out);
		c->out = items;
		c->out_cap = cap;
		c->out_head = 0;
	}
	it = &c->out[(c->out_head + c->out_count) % c->out_cap];
	it->data = data;
	it->len = len;
	it->owned = owned;
	c->out_count++;
}

/*
 * conn_set_events: change c's epoll interest to events (if it differs).
 */
static void
conn_set_events(Conn *c, uint32_t events)
{
	struct epoll_event ev;

	if (c->events == events)
		return;
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->events = events;
}

/*
 * conn_close: close c and free it; a request cut off mid-way leaves in_flight.
 */
static void
conn_close(Conn *c)
{
	if (c->in_flight)
		in_flight--;
	close(c->fd);
	for (size_t i = 0; i < c->out_count; i++)
		free(c->out[(c->out_head + i) % c->out_cap].owned);
	free(c->out);
	free(c->pending);
	free(c->unknown);
	free(c);
}

/*
 * conn_fail: answer 400 with why and close the connection after it.
 */
static void
conn_fail(Conn *c, const char *why, const char *detail, size_t detail_len)
{
	size_t		len;
	char	   *r = error_response("BadRequest", why, detail, detail_len, "application/json", &len);

	out_push(c, r, len, r);
	c->closing = true;
}

/*
 * count_add: feed body bytes p[0, n) to c's record counter: every ':' that
 * ends "PartitionKey": counts, its 14 bytes before taken from p or, when p
 * starts less than 14 bytes before it, partly from the tail of the body so
 * far; then keep the body's last 14 bytes as the tail.
 */
static void
count_add(Conn *c, const char *p, size_t n)
{
	const char *end = p + n;
	const char *q = p;

	c->bytes += n;
	while ((q = memchr(q, ':', (size_t) (end - q))) != NULL)
	{
		size_t		at = (size_t) (q - p);

		if (at >= KEEP)
		{
			if (memcmp(q - KEEP, MARK, KEEP) == 0)
				c->records++;
		}
		else
		{
			size_t		from_tail = KEEP - at;

			if (c->tlen >= from_tail
				&& memcmp(c->tail + c->tlen - from_tail, MARK, from_tail) == 0
				&& memcmp(p, MARK + from_tail, at) == 0)
				c->records++;
		}
		q++;
	}
	if (n >= KEEP)
	{
		memcpy(c->tail, end - KEEP, KEEP);
		c->tlen = KEEP;
	}
	else
	{
		size_t		keep_old = c->tlen < KEEP - n ? c->tlen : KEEP - n;

		memmove(c->tail, c->tail + c->tlen - keep_old, keep_old);
		memcpy(c->tail + keep_old, p, n);
		c->tlen = keep_old + n;
	}
}

/*
 * is_space: JavaScript's trim() white space within latin1.
 */
static bool
is_space(unsigned char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r') || ch == 0xA0;
}

/*
 * ieq: p[0, n) equals the lower-case ASCII word w, ignoring ASCII case.
 */
static bool
ieq(const char *p, size_t n, const char *w)
{
	size_t		wn = strlen(w);

	if (n != wn)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		ch = p[i];

		if (ch >= 'A' && ch <= 'Z')
			ch += 'a' - 'A';
		if (ch != w[i])
			return false;
	}
	return true;
}

/*
 * icontains: p[0, n) contains the lower-case ASCII word w, ignoring case.
 */
static bool
icontains(const char *p, size_t n, const char *w)
{
	size_t		wn = strlen(w);

	for (size_t i = 0; i + wn <= n; i++)
		if (ieq(p + i, wn, w))
			return true;
	return false;
}

/*
 * conn_finish: the request is complete: queue its answer.
 */
static void
conn_finish(Conn *c)
{
	c->state = RS_HEAD;
	switch (c->kind)
	{
		case K_STATS:
			{
				size_t		len;
				char	   *r = stats_answer(&len);

				out_push(c, r, len, r);
				break;
			}
		case K_RESET:
			stats_reset();
			out_push(c, reset_answer, reset_len, NULL);
			break;
		case K_INTERNAL:
			out_push(c, not_found_answer, not_found_len, NULL);
			break;
		case K_PUT_RECORDS:
			stats.requests++;
			stats.records += c->records;
			stats.bytes += c->bytes;
			if (c->records <= MAX_CACHED)
			{
				if (answers[c->records] == NULL)
					answers[c->records] = build_answer(c->records, &answer_len[c->records]);
				out_push(c, answers[c->records], answer_len[c->records], NULL);
			}
			else
			{
				size_t		len;
				char	   *r = build_answer(c->records, &len);

				out_push(c, r, len, r);
			}
			break;
		case K_DESCRIBE:
			out_push(c, describe_answer, describe_len, NULL);
			break;
		case K_LIST_SHARDS:
			out_push(c, list_shards_answer, list_shards_len, NULL);
			break;
		case K_UNKNOWN:
			out_push(c, c->unknown, c->unknown_len, c->unknown);
			c->unknown = NULL;
			break;
	}
	if (c->in_flight)
	{
		in_flight--;
		c->in_flight = false;
	}
	if (c->close_after)
		c->closing = true;
}

/*
 * parse_decimal: p[0, n) as a decimal number up to 2^53 - 1 (empty: 0);
 * false if it is not one.
 */
static bool
parse_decimal(const char *p, size_t n, uint64_t *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++)
	{
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t) (p[i] - '0');
		if (*v > MAX_SAFE)
			return false;
	}
	return true;
}

/*
 * conn_head: a request's line and headers p[0, n) (without the empty line);
 * sets up reading its body, or answers 400 and closes.
 */
static void
conn_head(Conn *c, const char *p, size_t n)
{
	const char *end = p + n;
	const char *eol = memmem(p, n, "\r\n", 2);
	const char *line_end = eol ? eol : end;
	const char *q = p;
	const char *url,
			   *url_end;
	const char *target = "";
	size_t		target_len = 0;
	uint64_t	length = 0;
	bool		chunked = false;

	/* request line: ^[A-Z]+ \S+ HTTP/1\.[01]$ */
	while (q < line_end && *q >= 'A' && *q <= 'Z')
		q++;
	if (q == p || q >= line_end || *q != ' ')
		goto bad_line;
	url = ++q;
	while (q < line_end && !is_space((unsigned char) *q))
		q++;
	url_end = q;
	if (url_end == url || line_end - q != 9 || memcmp(q, " HTTP/1.", 8) != 0
		|| (q[8] != '0' && q[8] != '1'))
		goto bad_line;
	c->close_after = q[8] == '0';

	/* headers */
	for (const char *h = eol ? eol + 2 : end; h < end;)
	{
		const char *he = memmem(h, (size_t) (end - h), "\r\n", 2);
		const char *colon,
				   *v,
				   *ve;
		size_t		name_len;

		if (he == NULL)
			he = end;
		colon = memchr(h, ':', (size_t) (he - h));
		if (colon == NULL || colon == h)
		{
			conn_fail(c, "bad header line: ", h, (size_t) (he - h) < 80 ? (size_t) (he - h) : 80);
			return;
		}
		name_len = (size_t) (colon - h);
		v = colon + 1;
		ve = he;
		while (v < ve && is_space((unsigned char) *v))
			v++;
		while (ve > v && is_space((unsigned char) ve[-1]))
			ve--;
		if (ieq(h, name_len, "content-length"))
		{
			if (!parse_decimal(v, (size_t) (ve - v), &length))
			{
				conn_fail(c, "bad content-length", "", 0);
				return;
			}
		}
		else if (ieq(h, name_len, "transfer-encoding"))
			chunked = icontains(v, (size_t) (ve - v), "chunked");
		else if (ieq(h, name_len, "x-amz-target"))
		{
			target = v;
			target_len = (size_t) (ve - v);
		}
		else if (ieq(h, name_len, "connection"))
		{
			bool		is_close = ieq(v, (size_t) (ve - v), "close");

			c->close_after = is_close || (c->close_after && !ieq(v, (size_t) (ve - v), "keep-alive"));
		}
		else if (ieq(h, name_len, "expect") && ieq(v, (size_t) (ve - v), "100-continue"))
			out_push(c, CONTINUE, sizeof(CONTINUE) - 1, NULL);
		h = he + 2;
	}

	/* what it asks for */
	if (url_end - url >= 3 && memcmp(url, "/__", 3) == 0)
	{
		size_t		ulen = (size_t) (url_end - url);

		if (ulen >= 8 && memcmp(url, "/__stats", 8) == 0)
			c->kind = K_STATS;
		else if (ulen >= 8 && memcmp(url, "/__reset", 8) == 0)
			c->kind = K_RESET;
		else
			c->kind = K_INTERNAL;
	}
	else
	{
		const char *op = target;
		size_t		op_len;

		for (const char *t = target; t < target + target_len; t++)
			if (*t == '.')
				op = t + 1;
		op_len = (size_t) (target + target_len - op);
		in_flight++;
		c->in_flight = true;
		if (in_flight > stats.max_in_flight)
			stats.max_in_flight = in_flight;
		stats_target(op, op_len);
		if (op_len == 10 && memcmp(op, "PutRecords", 10) == 0)
		{
			c->kind = K_PUT_RECORDS;
			c->records = 0;
			c->bytes = 0;
			c->tlen = 0;
		}
		else if (op_len == 21 && memcmp(op, "DescribeStreamSummary", 21) == 0)
			c->kind = K_DESCRIBE;
		else if (op_len == 10 && memcmp(op, "ListShards", 10) == 0)
			c->kind = K_LIST_SHARDS;
		else
		{
			c->kind = K_UNKNOWN;
			free(c->unknown);
			c->unknown = error_response("UnknownOperationException", "not supported by the ack server: ",
										op, op_len, "application/x-amz-json-1.1", &c->unknown_len);
		}
	}

	if (chunked)
		c->state = RS_CHUNK_SIZE;
	else if (length > 0)
	{
		c->state = RS_BODY;
		c->left = length;
	}
	else
		conn_finish(c);
	return;

bad_line:
	conn_fail(c, "not an HTTP/1.x request line: ", p,
			  (size_t) (line_end - p) < 80 ? (size_t) (line_end - p) : 80);
}

/*
 * conn_chunk_size: a chunk-size line p[0, n) (hexadecimal, extensions
 * ignored); size 0 ends the body (a trailer follows).
 */
static void
conn_chunk_size(Conn *c, const char *p, size_t n)
{
	size_t		i = 0;
	size_t		digits = 0;
	uint64_t	size = 0;

	while (i < n && is_space((unsigned char) p[i]))
		i++;
	for (; i < n; i++, digits++)
	{
		char		ch = p[i];
		int			d;

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			break;
		size = size * 16 + (uint64_t) d;
		if (size > MAX_SAFE)
			break;
	}
	if (digits == 0 || size > MAX_SAFE)
	{
		conn_fail(c, "bad chunk size line: ", p, n < 40 ? n : 40);
		return;
	}
	if (size == 0)
		c->state = RS_TRAILER;
	else
	{
		c->state = RS_CHUNK_DATA;
		c->left = size;
	}
}

/*
 * take_line: find the end of the head ("\r\n\r\n") or of a line ('\n') at
 * buf[*off, n), joined to what c->pending holds from earlier reads. Returns
 * 1 with the text in *text and *len (the head without its empty line; a line
 * with its '\n') and *off after it, 0 if it is not complete yet (all of it
 * kept in c->pending), -1 if it is longer than MAX_HEAD.
 */
static int
take_line(Conn *c, const char *buf, size_t n, size_t *off, const char **text, size_t *len)
{
	bool		head = c->state == RS_HEAD;
	const char *term = head ? "\r\n\r\n" : "\n";
	size_t		tl = head ? 4 : 1;
	size_t		avail = n - *off;
	const char *at;

	if (c->plen == 0)
	{
		at = memmem(buf + *off, avail, term, tl);
		if (at != NULL)
		{
			*text = buf + *off;
			*len = (size_t) (at - *text) + (head ? 0 : 1);
			*off = (size_t) (at - buf) + tl;
			return 1;
		}
		if (avail > MAX_HEAD)
			return -1;
		if (c->pending == NULL)
			c->pending = xmalloc(MAX_HEAD);
		memcpy(c->pending, buf + *off, avail);
		c->plen = avail;
		*off = n;
		return 0;
	}
	else
	{
		size_t		take = MAX_HEAD - c->plen < avail ? MAX_HEAD - c->plen : avail;
		size_t		from = c->plen >= tl - 1 ? c->plen - (tl - 1) : 0;
		size_t		found;

		memcpy(c->pending + c->plen, buf + *off, take);
		at = memmem(c->pending + from, c->plen + take - from, term, tl);
		if (at == NULL)
		{
			c->plen += take;
			*off += take;
			return c->plen >= MAX_HEAD ? -1 : 0;
		}
		found = (size_t) (at - c->pending);
		*off += found + tl - c->plen;
		*text = c->pending;
		*len = found + (head ? 0 : 1);
		c->plen = 0;			/* the text stays valid until the next read */
		return 1;
	}
}

/*
 * conn_consume: consume one read buf[0, n) of c's socket.
 */
static void
conn_consume(Conn *c, const char *buf, size_t n)
{
	size_t		off = 0;

	while (off < n && !c->closing)
	{
		if (c->state == RS_HEAD || c->state == RS_CHUNK_SIZE || c->state == RS_TRAILER)
		{
			const char *text;
			size_t		len;
			int			r = take_line(c, buf, n, &off, &text, &len);

			if (r == 0)
				return;
			if (r < 0)
			{
				conn_fail(c, "head or line too long", "", 0);
				return;
			}
			if (c->state == RS_HEAD)
				conn_head(c, text, len);
			else if (c->state == RS_CHUNK_SIZE)
				conn_chunk_size(c, text, len);
			else
			{
				size_t		i = 0;

				while (i < len && is_space((unsigned char) text[i]))
					i++;
				if (i == len)
					conn_finish(c);
			}
		}
		else
		{
			size_t		k = c->left < n - off ? (size_t) c->left : n - off;

			if (c->state != RS_CHUNK_CRLF && c->kind == K_PUT_RECORDS)
				count_add(c, buf + off, k);
			off += k;
			c->left -= k;
			if (c->left == 0)
			{
				if (c->state == RS_BODY)
					conn_finish(c);
				else if (c->state == RS_CHUNK_DATA)
				{
					c->state = RS_CHUNK_CRLF;
					c->left = 2;
				}
				else
					c->state = RS_CHUNK_SIZE;
			}
		}
	}
}

/*
 * conn_flush: write what c has queued; then read again, or wait until it can
 * write more (reads pause meanwhile), or end the connection. Returns false if
 * c was closed (and freed).
 */
static bool
conn_flush(Conn *c)
{
	while (c->out_count > 0)
	{
		struct iovec iov[64];
		int			niov = 0;
		ssize_t		w;

		for (size_t i = 0; i < c->out_count && niov < 64; i++, niov++)
		{
			OutItem    *it = &c->out[(c->out_head + i) % c->out_cap];
			size_t		skip = i == 0 ? c->out_off : 0;

			iov[niov].iov_base = (void *) (it->data + skip);
			iov[niov].iov_len = it->len - skip;
		}
		w = writev(c->fd, iov, niov);
		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
			{
				conn_set_events(c, EPOLLOUT);
				return true;
			}
			conn_close(c);
			return false;
		}
		while (w > 0)
		{
			OutItem    *it = &c->out[c->out_head];
			size_t		rest = it->len - c->out_off;

			if ((size_t) w < rest)
			{
				c->out_off += (size_t) w;
				break;
			}
			w -= (ssize_t) rest;
			free(it->owned);
			c->out_off = 0;
			c->out_head = (c->out_head + 1) % c->out_cap;
			c->out_count--;
		}
	}
	if (c->peer_eof)
	{
		conn_close(c);
		return false;
	}
	if (c->closing)
		shutdown(c->fd, SHUT_WR);	/* then read and drop until the peer closes */
	conn_set_events(c, EPOLLIN);
	return true;
}

/*
 * conn_readable: read from c once and answer what is complete.
 */
static void
conn_readable(Conn *c)
{
	ssize_t		n = read(c->fd, read_buf, READ_SIZE);

	if (n < 0)
	{
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c);
		return;
	}
	if (n == 0)
	{
		c->peer_eof = true;
		conn_flush(c);
		return;
	}
	if (!c->closing)
		conn_consume(c, read_buf, (size_t) n);
	if (c->out_count > 0)
		conn_flush(c);
}

/*
 * accept_all: accept the waiting connections on listener lfd.
 */
static void
accept_all(int lfd)
{
	for (;;)
	{
		int			fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int			one = 1;
		Conn	   *c;
		struct epoll_event ev;

		if (fd < 0)
		{
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;				/* EAGAIN, or out of descriptors: later */
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xmalloc(sizeof(Conn));
		memset(c, 0, sizeof(Conn));
		c->fd = fd;
		c->state = RS_HEAD;
		c->events = EPOLLIN;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}
}

/*
 * on_term: SIGTERM ends the server with status 0.
 */
static void
on_term(int sig)
{
	(void) sig;
	_exit(0);
}

/*
 * main: parse --port/--host, listen, print the URL, serve.
 */
int
main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	const char *port = "0";
	struct addrinfo hints = {0},
			   *ai;
	struct sockaddr_storage addr;
	socklen_t	alen = sizeof(addr);
	struct sigaction sa = {0};
	struct epoll_event ev;
	int			lfd,
				one = 1,
				rc;
	const char *body;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = argv[++i];
		else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
			host = argv[++i];
		else if (strcmp(argv[i], "--parse") == 0)
			die("--parse is not supported by the C server (bodies are never kept): use ack_server.mjs --parse");
		else
			die("usage: ack_server [--port N] [--host ADDRESS]");
	}

	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0)
		die("%s port %s: %s", host, port, gai_strerror(rc));
	lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, 511) < 0)
		die("listen on %s port %s: %s", host, port, strerror(errno));
	freeaddrinfo(ai);
	if (getsockname(lfd, (struct sockaddr *) &addr, &alen) < 0)
		die("getsockname: %s", strerror(errno));

	read_buf = xmalloc(READ_SIZE);
	body = "{\"StreamDescriptionSummary\":{\"StreamName\":\"ack\",\"StreamStatus\":\"ACTIVE\",\"OpenShardCount\":1}}";
	describe_answer = response(200, body, strlen(body), "application/x-amz-json-1.1", &describe_len);
	body = "{\"Shards\":[{\"ShardId\":\"shardId-000000000000\"}]}";
	list_shards_answer = response(200, body, strlen(body), "application/x-amz-json-1.1", &list_shards_len);
	reset_answer = response(200, "{}", 2, "application/json", &reset_len);
	body = "{\"__type\":\"NotFound\",\"message\":\"the ack server has /__stats and /__reset\"}";
	not_found_answer = response(404, body, strlen(body), "application/json", &not_found_len);

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;			/* the listener */
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));

	printf("listening http://%s%s%s:%d\n", strchr(host, ':') ? "[" : "", host,
		   strchr(host, ':') ? "]" : "",
		   ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
				 : ((struct sockaddr_in *) &addr)->sin_port));
	fflush(stdout);

	for (;;)
	{
		struct epoll_event events[64];
		int			n = epoll_wait(epfd, events, 64, -1);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
		{
			Conn	   *c = events[i].data.ptr;

			if (c == NULL)
				accept_all(lfd);
			else if (c->events & EPOLLOUT)
				conn_flush(c);
			else
				conn_readable(c);
		}
	}
}
