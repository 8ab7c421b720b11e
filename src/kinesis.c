/*-------------------------------------------------------------------------
 *
 * kinesis.c
 *	  Kinesis Data Streams client and PutRecords batcher; see kinesis.h for
 *	  the contract.
 *
 * Batcher internals.  Records kept by the batcher sit in a ring, oldest
 * first, in the order they were added; a record leaves the ring once it and
 * every older record are acknowledged.  Each record holds its PutRecords
 * entry already encoded as JSON ({"Data":"<base64>","PartitionKey":...}), so
 * a retry costs no encoding and a request body is a concatenation.  The
 * encoded entries, each followed by its partition key, are written one after
 * the other into blocks of memory; as records leave the ring in the order
 * they came, a block is released (or kept as the spare for the next one) once
 * its last record has left.  So adding a record allocates nothing.
 * Partition keys are interned in a hash table that also carries what keeps
 * the records of one key in order: how many of its records are on the wire,
 * and, while a request is formed, whether the key is held back from it.  An
 * interned key's text is the copy in the block of its newest record, which
 * outlives every older record of the key.  Requests in flight name their
 * records by sequence number (records added before them), not ring index,
 * as the ring may grow while they are out.
 *
 * Forming a request walks the ring from the oldest record.  A key with
 * records on the wire is held back; so is a key whose record is not yet due
 * (waiting after a failure), and a key whose record does not fit in the
 * request (so that no later, smaller record of it slips in ahead).
 * Otherwise the record goes into the request, and with strict_key_order the
 * key is then held back from the rest of it.  The walk ends when the request
 * is full or every key with records waiting is held back (a count of such
 * keys is kept), so a hot key's backlog is not walked again for each request.

 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "aws_credentials.h"
#include "http.h"
#include "kinesis.h"

#define KINESIS_TARGET_PREFIX	"Kinesis_20131202."
#define KINESIS_CONTENT_TYPE	"application/x-amz-json-1.1"

/* Largest ExplicitHashKey: 2^128 - 1. */
#define KINESIS_MAX_HASH_KEY	"340282366920938463463374607431768211455"

/* Backoff of a failed record: equal jitter over min(cap, base * 2^n). */
#define KINESIS_RETRY_BASE_MS			50
#define KINESIS_RETRY_THROTTLE_BASE_MS	100
#define KINESIS_RETRY_CAP_MS			10000

/* Pages of ListShards before giving up (a loop guard). */
#define KINESIS_MAX_LIST_PAGES			10000

/* Records added between two looks at the answers, while requests are out. */
#define BATCHER_POLL_EVERY	128

/* Size of the blocks holding encoded entries (a larger entry gets its own). */
#define KINESIS_BLOCK_SIZE	(256 * 1024)

/* Fixed parts of an encoded PutRecords entry. */
#define ENTRY_DATA_OPEN		"{\"Data\":\""
#define ENTRY_KEY_OPEN		"\",\"PartitionKey\":\""
#define ENTRY_HASH_OPEN		"\",\"ExplicitHashKey\":\""
#define ENTRY_CLOSE			"\"}"

typedef enum KinesisEntryState
{
	ENTRY_PENDING,				/* waiting to be sent (again) */
	ENTRY_SENT,					/* in a request on the wire */
	ENTRY_ACKED					/* accepted by Kinesis */
} KinesisEntryState;

/* An interned partition key. */
typedef struct KinesisKey
{
	struct KinesisKey *next;	/* in its bucket, or in the free list */
	char	   *key;			/* in the block of the key's newest record */
	uint32		hash;
	uint16		len;
	int			refcount;		/* unacknowledged records with this key */
	int			pending;		/* of those, waiting to be sent (again) */
	int			inflight;		/* its records in requests on the wire */
	uint64		round;			/* the request being formed blocked refers to */
	bool		blocked;		/* no more records of the key in that request */
	uint64		ok_mark;		/* serial of a request where a later entry of
								 * the key was accepted */
} KinesisKey;

/* A record kept by the batcher. */
typedef struct KinesisEntry
{
	char	   *json;			/* encoded entry, in a block */
	uint32		json_len;
	uint32		size;			/* data + partition key bytes */
	KinesisKey *key;			/* NULL once acknowledged */
	uint64		tag;
	TimestampTz retry_at;		/* not to be sent before this */
	uint16		failures;
	uint16		key_len;		/* partition key bytes (at most 1024) */
	uint8		state;			/* KinesisEntryState */
	bool		overtaken;		/* counted in entries_reordered */
} KinesisEntry;

/* A block of encoded entries; last_seq is the sequence of its newest one. */
typedef struct KinesisBlock
{
	struct KinesisBlock *next;
	uint64		last_seq;
	size_t		size;
	size_t		used;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} KinesisBlock;

/* One PutRecords request: formed, then on the wire until answered. */
typedef struct KinesisSlot
{
	uint64	   *entries;		/* sequence numbers of its records, in order */
	int			nentries;
	int64		size;			/* data + key bytes */
	int64		body_len;		/* JSON body length */
	bool		busy;			/* on the wire */
	StringInfoData body;		/* reused from request to request */
	DmsHttpRequest req;
	DmsHttpResponse resp;
	MemoryContext cxt;			/* answer and credentials; reset after it */
} KinesisSlot;

struct KinesisBatcher
{
	KinesisClient *client;
	KinesisBatcherOptions opts;
	MemoryContext cxt;			/* the batcher and its records */
	KinesisKey **buckets;		/* the keys by hash (chained) */
	uint32		nbuckets;		/* a power of two */
	uint32		nkeys;
	KinesisKey *free_keys;		/* forgotten, for reuse */
	DmsHttpQueue *queue;		/* the requests on the wire */

	KinesisEntry *ring;
	int			ring_size;		/* a power of two */
	int			head;			/* ring index of the oldest record */
	int			count;			/* records kept, acknowledged ones included */
	uint64		popped;			/* records that left the ring: the sequence
								 * number of the one at head */
	KinesisBlock *first_block;	/* oldest block in use */
	KinesisBlock *last_block;	/* block being filled */
	KinesisBlock *spare_block;	/* an empty standard block, for reuse */
	int64		unacked;
	int64		pending;		/* records waiting to be sent */
	int64		pending_keys;	/* keys with such records */
	int64		pending_size;	/* their data + key bytes */
	int64		pending_json;	/* their encoded entries' bytes */
	int64		buffered_bytes; /* encoded entries of the records kept */

	uint64		round;			/* requests formed */
	uint64		request_serial;
	TimestampTz idle_until;		/* nothing was due before this */
	int			nbusy;			/* requests on the wire */
	bool		stalled;		/* the last request formed took nothing, and
								 * no answer came since */
	int64		stalled_pending;	/* pending then */
	int			adds_since_poll;	/* records added since curl was driven */
	bool		have_acked_through;
	uint64		acked_through;
	TimestampTz failing_since;	/* first failed request since the last
								 * answered one (0: none) */
	int64		failing_attempts;	/* HTTP attempts of the failed requests
									 * since then */

	KinesisSlot *slots;
	char	   *body_prefix;	/* {"StreamName":..,"Records":[ */
	size_t		body_prefix_len;
	char	   *what;			/* for error messages */
	AwsHeader	headers[2];

	KinesisBatcherStats stats;
};

/* A fatal problem found while applying answers, raised once all are applied. */
typedef struct KinesisRoundError
{
	int			slot;			/* request whose answer failed, or -1 */
	char	   *message;		/* otherwise: errmsg */
	char	   *detail;
	char	   *hint;
	int			sqlstate;
} KinesisRoundError;

static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


/* ---------------------------------------------------------------- JSON text */

/*
 * json_escaped_len
 *		Length of a UTF-8 string once written as the inside of a JSON string.
 */
static size_t
json_escaped_len(const char *s, size_t len)
{
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
			n += 2;
		else if (c < 0x20)
			n += 6;
		else
			n++;
	}
	return n;
}

/*
 * json_escape_into
 *		Write a UTF-8 string as the inside of a JSON string; returns the end.
 */
static char *
json_escape_into(char *dst, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
		{
			*dst++ = '\\';
			*dst++ = (char) c;
		}
		else if (c < 0x20)
		{
			*dst++ = '\\';
			*dst++ = 'u';
			*dst++ = '0';
			*dst++ = '0';
			*dst++ = hex[c >> 4];
			*dst++ = hex[c & 0xF];
		}
		else
			*dst++ = (char) c;
	}
	return dst;
}

/*
 * append_json_string
 *		Append a UTF-8 string to buf as a quoted JSON string.
 */
static void
append_json_string(StringInfo buf, const char *s)
{
	size_t		len = strlen(s);
	size_t		elen = json_escaped_len(s, len);

	enlargeStringInfo(buf, (int) elen + 2);
	buf->data[buf->len++] = '"';
	buf->len = json_escape_into(buf->data + buf->len, s, len) - buf->data;
	buf->data[buf->len++] = '"';
	buf->data[buf->len] = '\0';
}

/*
 * base64_encode_into
 *		Standard base64 (with padding) of len bytes; returns the end.
 */
static char *
base64_encode_into(char *dst, const unsigned char *src, size_t len)
{
	/* two output characters per 12 input bits */
	static char pairs[4096][2];
	static bool pairs_ready = false;
	size_t		i = 0;

	if (unlikely(!pairs_ready))
	{
		int			v;

		for (v = 0; v < 4096; v++)
		{
			pairs[v][0] = b64_alphabet[v >> 6];
			pairs[v][1] = b64_alphabet[v & 0x3F];
		}
		pairs_ready = true;
	}

	/* 6 bytes at a time, read as one big-endian word (8 bytes are there) */
	for (; i + 8 <= len; i += 6)
	{
		uint64		v;

		memcpy(&v, src + i, 8);
		v = pg_bswap64(v);
		memcpy(dst, pairs[(v >> 52) & 0xFFF], 2);
		memcpy(dst + 2, pairs[(v >> 40) & 0xFFF], 2);
		memcpy(dst + 4, pairs[(v >> 28) & 0xFFF], 2);
		memcpy(dst + 6, pairs[(v >> 16) & 0xFFF], 2);
		dst += 8;
	}
	for (; i + 3 <= len; i += 3)
	{
		uint32		v = ((uint32) src[i] << 16) | ((uint32) src[i + 1] << 8) | src[i + 2];

		memcpy(dst, pairs[v >> 12], 2);
		memcpy(dst + 2, pairs[v & 0xFFF], 2);
		dst += 4;
	}
	if (i < len)
	{
		uint32		v = (uint32) src[i] << 16;

		if (i + 1 < len)
			v |= (uint32) src[i + 1] << 8;
		dst[0] = b64_alphabet[(v >> 18) & 0x3F];
		dst[1] = b64_alphabet[(v >> 12) & 0x3F];
		dst[2] = (i + 1 < len) ? b64_alphabet[(v >> 6) & 0x3F] : '=';
		dst[3] = '=';
		dst += 4;
	}
	return dst;
}


/* ------------------------------------------------------- PutRecords answers */

/*
 * What a PutRecords answer says of one entry: pointers into the scanned
 * copy of the body (NUL-terminated, escapes decoded), NULL when absent.
 */
typedef struct KinesisAnswerEntry
{
	const char *error_code;
	const char *error_message;
	const char *shard_id;
	const char *sequence_number;
} KinesisAnswerEntry;

/*
 * A small JSON scanner for PutRecords answers.  Answers come once per
 * request of up to 500 records and are read on the hot path, so instead of
 * building a jansson tree the scanner walks the text once, in place: the
 * strings it keeps are decoded over their own bytes and NUL-terminated
 * (a decoded string is never longer than its JSON form).  Members other than
 * Records, and members of an entry other than the four above, are skipped
 * whatever their value; a value that is not a string (null) counts as
 * absent, as json_string_value would have it.  Any syntax error makes the
 * whole answer invalid.  Strings that are not kept are skipped by looking
 * for their closing quote only.
 */
typedef struct JsonScan
{
	char	   *p;
	char	   *end;
	bool		want_ids;		/* keep ShardId and SequenceNumber */
} JsonScan;

static inline void
scan_ws(JsonScan *s)
{
	while (s->p < s->end &&
		   (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static inline bool
scan_char(JsonScan *s, char c)
{
	scan_ws(s);
	if (s->p < s->end && *s->p == c)
	{
		s->p++;
		return true;
	}
	return false;
}

/*
 * scan_string
 *		At a '"': decode the string in place; *out gets it, NUL-terminated.
 */
static bool
scan_string(JsonScan *s, char **out)
{
	char	   *start;
	char	   *dst;
	char	   *p;

	scan_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return false;
	start = ++s->p;
	/* the common case: no escape */
	p = start;
	while (p < s->end && *p != '"' && *p != '\\')
	{
		if ((unsigned char) *p < 0x20)
			return false;
		p++;
	}
	if (p >= s->end)
		return false;
	if (*p == '"')
	{
		*p = '\0';
		s->p = p + 1;
		*out = start;
		return true;
	}
	dst = p;
	while (p < s->end && *p != '"')
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x20)
			return false;
		if (c != '\\')
		{
			*dst++ = *p++;
			continue;
		}
		if (p + 1 >= s->end)
			return false;
		switch (p[1])
		{
			case '"':
			case '\\':
			case '/':
				*dst++ = p[1];
				break;
			case 'b':
				*dst++ = '\b';
				break;
			case 'f':
				*dst++ = '\f';
				break;
			case 'n':
				*dst++ = '\n';
				break;
			case 'r':
				*dst++ = '\r';
				break;
			case 't':
				*dst++ = '\t';
				break;
			case 'u':
				{
					int			cp;

					if (p + 6 > s->end || (cp = dms_json_hex4(p + 2)) < 0)
						return false;
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						int			lo;

						if (p + 12 > s->end || p[6] != '\\' || p[7] != 'u' ||
							(lo = dms_json_hex4(p + 8)) < 0xDC00 || lo > 0xDFFF)
							return false;
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						p += 6;
					}
					else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0)
						return false;
					dst = (char *) unicode_to_utf8((pg_wchar) cp, (unsigned char *) dst) +
						pg_utf_mblen((unsigned char *) dst);
					p += 6;
					continue;
				}
			default:
				return false;
		}
		p += 2;
	}
	if (p >= s->end)
		return false;
	*dst = '\0';
	s->p = p + 1;
	*out = start;
	return true;
}

/*
 * scan_skip_string
 *		At a '"': skip a string not kept, finding its end with memchr.
 */
static bool
scan_skip_string(JsonScan *s)
{
	char	   *p = s->p + 1;

	for (;;)
	{
		char	   *q = memchr(p, '"', s->end - p);
		char	   *b;

		if (q == NULL)
			return false;
		/* escaped when preceded by an odd number of backslashes */
		for (b = q; b > p && b[-1] == '\\'; b--)
			;
		if ((q - b) % 2 == 0)
		{
			s->p = q + 1;
			return true;
		}
		p = q + 1;
	}
}

/*
 * scan_skip
 *		Skip one value of any kind (depth-limited).
 */
static bool
scan_skip(JsonScan *s, int depth)
{
	char	   *str;

	if (depth > 64)
		return false;
	scan_ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p)
	{
		case '"':
			return scan_string(s, &str);
		case '{':
			s->p++;
			if (scan_char(s, '}'))
				return true;
			do
			{
				if (!scan_string(s, &str) || !scan_char(s, ':') || !scan_skip(s, depth + 1))
					return false;
			} while (scan_char(s, ','));
			return scan_char(s, '}');
		case '[':
			s->p++;
			if (scan_char(s, ']'))
				return true;
			do
			{
				if (!scan_skip(s, depth + 1))
					return false;
			} while (scan_char(s, ','));
			return scan_char(s, ']');
		default:
			{
				/* number, true, false, null */
				char	   *start = s->p;

				while (s->p < s->end &&
					   (isalnum((unsigned char) *s->p) || *s->p == '-' ||
						*s->p == '+' || *s->p == '.'))
					s->p++;
				if (s->p == start)
					return false;
				if (isalpha((unsigned char) *start))
				{
					size_t		n = s->p - start;

					return (n == 4 && memcmp(start, "true", 4) == 0) ||
						(n == 5 && memcmp(start, "false", 5) == 0) ||
						(n == 4 && memcmp(start, "null", 4) == 0);
				}
				return true;
			}
	}
}

/*
 * scan_entry
 *		One element of Records: an object of strings we keep, or null.
 */
static bool
scan_entry(JsonScan *s, KinesisAnswerEntry *e)
{
	char	   *key;

	memset(e, 0, sizeof(*e));
	if (!scan_char(s, '{'))
		return false;
	if (scan_char(s, '}'))
		return true;
	do
	{
		const char **slot = NULL;

		if (!scan_string(s, &key) || !scan_char(s, ':'))
			return false;
		switch (key[0])
		{
			case 'E':
				if (strcmp(key, "ErrorCode") == 0)
					slot = &e->error_code;
				else if (strcmp(key, "ErrorMessage") == 0)
					slot = &e->error_message;
				break;
			case 'S':
				if (!s->want_ids)
					break;
				if (strcmp(key, "ShardId") == 0)
					slot = &e->shard_id;
				else if (strcmp(key, "SequenceNumber") == 0)
					slot = &e->sequence_number;
				break;
		}
		scan_ws(s);
		if (slot == NULL && s->p < s->end && *s->p == '"')
		{
			/* a string we do not keep (a sequence number, mostly) */
			if (!scan_skip_string(s))
				return false;
		}
		else if (slot != NULL && s->p < s->end && *s->p == '"')
		{
			char	   *v;

			if (!scan_string(s, &v))
				return false;
			*slot = v;
		}
		else
		{
			if (slot != NULL)
				*slot = NULL;	/* a later non-string member wins, as in jansson */
			if (!scan_skip(s, 1))
				return false;
		}
	} while (scan_char(s, ','));
	return scan_char(s, '}');
}

/*
 * scan_put_records_answer
 *		Scan a PutRecords answer (body, len bytes; modified in place) for its
 *		Records array, which must have exactly n entries, into entries[].
 *		False if the answer is not valid JSON or has no such array.
 */
static bool
scan_put_records_answer(char *body, size_t len, int n, bool want_ids,
						KinesisAnswerEntry *entries)
{
	JsonScan	s = {body, body + len, want_ids};
	bool		have_records = false;
	char	   *key;

	if (!scan_char(&s, '{'))
		return false;
	if (!scan_char(&s, '}'))
	{
		do
		{
			if (!scan_string(&s, &key) || !scan_char(&s, ':'))
				return false;
			if (strcmp(key, "Records") == 0)
			{
				int			count = 0;

				scan_ws(&s);
				if (s.p >= s.end || *s.p != '[')
				{
					/* not an array: the answer is unusable */
					have_records = false;
					if (!scan_skip(&s, 1))
						return false;
					continue;
				}
				s.p++;
				if (!scan_char(&s, ']'))
				{
					do
					{
						if (count >= n || !scan_entry(&s, &entries[count]))
							return false;
						count++;
					} while (scan_char(&s, ','));
					if (!scan_char(&s, ']'))
						return false;
				}
				have_records = (count == n);
			}
			else if (!scan_skip(&s, 1))
				return false;
		} while (scan_char(&s, ','));
		if (!scan_char(&s, '}'))
			return false;
	}
	scan_ws(&s);
	return have_records && s.p == s.end;
}


/* ---------------------------------------------------------------- client */

/*
 * kinesis_client_open
 *		Load a kinesis endpoint and work out the URL and stream members.
 */
KinesisClient *
kinesis_client_open(const char *endpoint_name)
{
	KinesisClient *c = palloc0(sizeof(KinesisClient));
	DmsEndpoint *ep = dms_endpoint_load(endpoint_name);
	const char *arn = dms_endpoint_setting(ep, "StreamArn");
	const char *name = dms_endpoint_setting(ep, "StreamName");
	StringInfoData buf;

	if (strcmp(ep->engine, "kinesis") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("endpoint \"%s\" is not a Kinesis endpoint", endpoint_name),
				 errdetail("Its engine is \"%s\".", ep->engine),
				 errhint("Use an endpoint created with engine 'kinesis'.")));

	c->endpoint = ep;
	c->endpoint_name = ep->name;
	c->region = ep->region;
	if (arn != NULL)
	{
		const char *slash = strrchr(arn, '/');

		c->stream_arn = pstrdup(arn);
		c->stream_name = pstrdup(slash ? slash + 1 : arn);
	}
	else if (name != NULL)
		c->stream_name = pstrdup(name);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("endpoint \"%s\" names no Kinesis stream", endpoint_name),
				 errhint("Set \"StreamArn\" or \"StreamName\" in the endpoint's settings.")));

	if (ep->endpoint_url != NULL)
		c->url = psprintf("%s/", ep->endpoint_url);
	else if (strncmp(ep->region, "cn-", 3) == 0)
		c->url = psprintf("https://kinesis.%s.amazonaws.com.cn/", ep->region);
	else
		c->url = psprintf("https://kinesis.%s.amazonaws.com/", ep->region);

	/* StreamARN is what AWS recommends; StreamName next to it is allowed */
	initStringInfo(&buf);
	appendStringInfoString(&buf, "\"StreamName\":");
	append_json_string(&buf, c->stream_name);
	if (c->stream_arn != NULL)
	{
		appendStringInfoString(&buf, ",\"StreamARN\":");
		append_json_string(&buf, c->stream_arn);
	}
	c->stream_members = buf.data;
	return c;
}

/*
 * kinesis_what
 *		"Kinesis OP on stream "S" of endpoint "E"", for error messages.
 */
static char *
kinesis_what(KinesisClient *c, const char *operation)
{
	return psprintf("Kinesis %s on stream \"%s\" of endpoint \"%s\"",
					operation, c->stream_arn ? c->stream_arn : c->stream_name,
					c->endpoint_name);
}

/*
 * kinesis_call
 *		Run one API call and return its parsed answer; raise on failure.
 */
json_t *
kinesis_call(KinesisClient *c, const char *operation, json_t *request,
			 bool add_stream)
{
	AwsResolvedCredentials *creds = aws_credentials_resolve(c->endpoint);
	DmsHttpRequest req;
	DmsHttpResponse *resp;
	AwsHeader	headers[2];
	char	   *body;
	json_t	   *answer;
	json_error_t jerr;

	memset(&jerr, 0, sizeof(jerr));
	if (request == NULL)
		request = dms_json_new_object();
	if (add_stream)
	{
		json_object_set_new(request, "StreamName", json_string(c->stream_name));
		if (c->stream_arn != NULL)
			json_object_set_new(request, "StreamARN", json_string(c->stream_arn));
	}
	body = dms_json_dumps(request, JSON_COMPACT, "a Kinesis request");

	headers[0].name = "Content-Type";
	headers[0].value = KINESIS_CONTENT_TYPE;
	headers[1].name = "X-Amz-Target";
	headers[1].value = psprintf(KINESIS_TARGET_PREFIX "%s", operation);

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = c->url;
	req.headers = headers;
	req.nheaders = 2;
	req.body = body;
	req.body_len = strlen(body);
	req.credentials = &creds->credentials;
	req.service = "kinesis";
	req.region = c->region;
	req.max_retries = -1;

	resp = dms_http_request(&req);
	if (!resp->ok)
		dms_http_raise_error(ERROR, kinesis_what(c, operation), &req, resp);

	answer = json_loadb(resp->body, resp->body_len, 0, &jerr);
	if (answer == NULL || !json_is_object(answer))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("%s returned an answer that is not a JSON object",
						kinesis_what(c, operation)),
				 errdetail("%s at line %d, column %d; the answer starts with \"%.100s\".",
						   answer ? "not an object" : jerr.text, jerr.line,
						   jerr.column, resp->body)));
	return answer;
}

/*
 * kinesis_describe_stream_summary
 *		The StreamDescriptionSummary of the stream.
 */
json_t *
kinesis_describe_stream_summary(KinesisClient *c)
{
	json_t	   *answer = kinesis_call(c, "DescribeStreamSummary", NULL, true);
	json_t	   *summary = json_object_get(answer, "StreamDescriptionSummary");

	if (!json_is_object(summary))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("%s returned no StreamDescriptionSummary",
						kinesis_what(c, "DescribeStreamSummary"))));
	return summary;
}

/*
 * kinesis_list_shards
 *		Every shard of the stream, following NextToken from page to page.
 */
json_t *
kinesis_list_shards(KinesisClient *c)
{
	json_t	   *shards = json_array();
	char	   *token = NULL;
	int			page;

	for (page = 0; page < KINESIS_MAX_LIST_PAGES; page++)
	{
		json_t	   *request = dms_json_new_object();
		json_t	   *answer;
		json_t	   *list;
		const char *next;

		CHECK_FOR_INTERRUPTS();
		/* with NextToken, the stream must not be named again */
		if (token != NULL)
			json_object_set_new(request, "NextToken", json_string(token));
		else
			json_object_set_new(request, "MaxResults", json_integer(1000));
		answer = kinesis_call(c, "ListShards", request, token == NULL);

		list = json_object_get(answer, "Shards");
		if (!json_is_array(list))
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("%s returned no Shards array", kinesis_what(c, "ListShards"))));
		json_array_extend(shards, list);

		next = json_string_value(json_object_get(answer, "NextToken"));
		if (next == NULL || *next == '\0')
			return shards;
		token = pstrdup(next);
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("%s returned more than %d pages", kinesis_what(c, "ListShards"),
					KINESIS_MAX_LIST_PAGES)));
	return NULL;				/* keep the compiler quiet */
}

/*
 * kinesis_get_shard_iterator
 *		A shard iterator of the given type.
 */
char *
kinesis_get_shard_iterator(KinesisClient *c, const char *shard_id,
						   const char *iterator_type,
						   const char *starting_sequence_number)
{
	json_t	   *request = dms_json_new_object();
	json_t	   *answer;
	const char *it;

	json_object_set_new(request, "ShardId", json_string(shard_id));
	json_object_set_new(request, "ShardIteratorType", json_string(iterator_type));
	if (starting_sequence_number != NULL)
		json_object_set_new(request, "StartingSequenceNumber",
							json_string(starting_sequence_number));
	answer = kinesis_call(c, "GetShardIterator", request, true);
	it = json_string_value(json_object_get(answer, "ShardIterator"));
	if (it == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("%s returned no ShardIterator for shard \"%s\"",
						kinesis_what(c, "GetShardIterator"), shard_id)));
	return pstrdup(it);
}

/*
 * kinesis_get_records
 *		One GetRecords call.
 */
json_t *
kinesis_get_records(KinesisClient *c, const char *shard_iterator, int limit)
{
	json_t	   *request = dms_json_new_object();
	json_t	   *answer;

	if (limit < 1 || limit > KINESIS_MAX_GET_RECORDS)
		elog(ERROR, "GetRecords limit %d is out of range", limit);
	json_object_set_new(request, "ShardIterator", json_string(shard_iterator));
	json_object_set_new(request, "Limit", json_integer(limit));
	answer = kinesis_call(c, "GetRecords", request, false);
	if (!json_is_array(json_object_get(answer, "Records")))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("%s returned no Records array", kinesis_what(c, "GetRecords"))));
	return answer;
}


/* ---------------------------------------------------------------- records */

/*
 * kinesis_record_check
 *		Check a record against Kinesis's limits; see kinesis.h.
 */
KinesisRecordStatus
kinesis_record_check(const char *data, size_t data_len,
					 const char *partition_key, const char *explicit_hash_key,
					 int64 max_record_bytes, char **problem)
{
	size_t		key_len;
	size_t		i;
	int			units = 0;

	if (problem)
		*problem = NULL;

	if (partition_key == NULL || partition_key[0] == '\0')
	{
		if (problem)
			*problem = pstrdup("the partition key is empty; Kinesis needs 1 to 256 characters");
		return KINESIS_RECORD_NO_KEY;
	}

	key_len = strlen(partition_key);
	if (pg_encoding_verifymbstr(PG_UTF8, partition_key, (int) key_len) != (int) key_len)
	{
		if (problem)
			*problem = pstrdup("the partition key is not valid UTF-8");
		return KINESIS_RECORD_KEY_NOT_UTF8;
	}

	/* Characters as AWS counts them: UTF-16 code units. */
	for (i = 0; i < key_len; i++)
	{
		unsigned char ch = (unsigned char) partition_key[i];

		if ((ch & 0xC0) != 0x80)
			units += (ch >= 0xF0) ? 2 : 1;
	}
	if (units > KINESIS_MAX_PARTITION_KEY_CHARS)
	{
		if (problem)
			*problem = psprintf("the partition key has %d characters; Kinesis allows at most %d",
								units, KINESIS_MAX_PARTITION_KEY_CHARS);
		return KINESIS_RECORD_KEY_TOO_LONG;
	}

	if ((int64) (data_len + key_len) > max_record_bytes)
	{
		if (problem)
			*problem = psprintf("the record has %zu bytes (data %zu + partition key %zu); "
								"a Kinesis record holds at most " INT64_FORMAT " bytes",
								data_len + key_len, data_len, key_len, max_record_bytes);
		return KINESIS_RECORD_TOO_LARGE;
	}

	if (explicit_hash_key != NULL)
	{
		size_t		hlen = strlen(explicit_hash_key);
		bool		ok = hlen >= 1 && hlen <= 39 &&
			strspn(explicit_hash_key, "0123456789") == hlen &&
			(explicit_hash_key[0] != '0' || hlen == 1) &&
			(hlen < 39 || strcmp(explicit_hash_key, KINESIS_MAX_HASH_KEY) <= 0);

		if (!ok)
		{
			if (problem)
				*problem = psprintf("the explicit hash key \"%.60s\" is not a decimal integer from 0 to 2^128-1",
									explicit_hash_key);
			return KINESIS_RECORD_BAD_HASH_KEY;
		}
	}
	return KINESIS_RECORD_OK;
}


/* ---------------------------------------------------------------- batcher */

/*
 * batcher_intern_key
 *		The interned key of a record's partition key (len bytes, hash),
 *		whose copy is at copy (in the record's block); made if new.  A plain
 *		chained table: one lookup and, for a new key, one insertion per
 *		record, with the key structs recycled.
 */
static KinesisKey *
batcher_intern_key(KinesisBatcher *b, const char *key, size_t len, uint32 hash,
				   char *copy)
{
	KinesisKey **bucket = &b->buckets[hash & (b->nbuckets - 1)];
	KinesisKey *k;

	for (k = *bucket; k != NULL; k = k->next)
	{
		if (k->hash == hash && k->len == len && memcmp(k->key, key, len) == 0)
		{
			/* the newest record's copy outlives the older ones */
			k->key = copy;
			return k;
		}
	}

	if (b->nkeys >= b->nbuckets)
	{
		/* grow: twice the buckets, chains rebuilt */
		uint32		n = b->nbuckets * 2;
		KinesisKey **nb = MemoryContextAllocZero(b->cxt, sizeof(KinesisKey *) * n);
		uint32		i;

		for (i = 0; i < b->nbuckets; i++)
		{
			KinesisKey *next;

			for (k = b->buckets[i]; k != NULL; k = next)
			{
				next = k->next;
				k->next = nb[k->hash & (n - 1)];
				nb[k->hash & (n - 1)] = k;
			}
		}
		pfree(b->buckets);
		b->buckets = nb;
		b->nbuckets = n;
		bucket = &b->buckets[hash & (n - 1)];
	}

	if (b->free_keys == NULL)
	{
		/* a batch of key structs */
		KinesisKey *batch = MemoryContextAlloc(b->cxt, sizeof(KinesisKey) * 256);
		int			i;

		for (i = 0; i < 256; i++)
		{
			batch[i].next = b->free_keys;
			b->free_keys = &batch[i];
		}
	}
	k = b->free_keys;
	b->free_keys = k->next;
	memset(k, 0, sizeof(*k));
	k->key = copy;
	k->hash = hash;
	k->len = (uint16) len;
	k->next = *bucket;
	*bucket = k;
	b->nkeys++;
	return k;
}

/*
 * kinesis_batcher_default_options
 *		Defaults close to Flink's and Debezium's Kinesis sinks.
 */
void
kinesis_batcher_default_options(KinesisBatcherOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->max_in_flight = 4;
	opts->max_request_records = KINESIS_MAX_REQUEST_RECORDS;
	opts->max_request_bytes = KINESIS_MAX_REQUEST_BYTES;
	opts->max_body_bytes = KINESIS_DEFAULT_MAX_BODY_BYTES;
	opts->max_record_bytes = KINESIS_MAX_RECORD_BYTES;
	opts->max_buffered_bytes = 64 * 1024 * 1024;
	opts->max_buffered_records = 100000;
	opts->max_record_retries = 30;
	opts->requeue_failed_requests = true;
	opts->strict_key_order = true;
}

/*
 * check_option
 *		Raise if an option is outside its range.
 */
static void
check_option(const char *name, int64 value, int64 min, int64 max)
{
	if (value < min || value > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Kinesis batcher option %s = " INT64_FORMAT " is out of range", name, value),
				 errdetail("Valid values are " INT64_FORMAT " to " INT64_FORMAT ".", min, max)));
}

/*
 * kinesis_batcher_create
 *		A batcher for client's stream.
 */
KinesisBatcher *
kinesis_batcher_create(KinesisClient *client, const KinesisBatcherOptions *opts)
{
	MemoryContext cxt;
	MemoryContext old;
	KinesisBatcher *b;
	StringInfoData buf;
	int			i;

	check_option("max_in_flight", opts->max_in_flight, 1, DMS_HTTP_MAX_PARALLEL);
	check_option("max_request_records", opts->max_request_records, 1, KINESIS_MAX_REQUEST_RECORDS);
	check_option("max_record_bytes", opts->max_record_bytes, 1, 10 * 1024 * 1024);
	check_option("max_request_bytes", opts->max_request_bytes, opts->max_record_bytes,
				 10 * 1024 * 1024);
	/* an entry of the largest record must fit a body on its own */
	check_option("max_body_bytes", opts->max_body_bytes,
				 opts->max_record_bytes / 3 * 4 + 64 * 1024, 64 * 1024 * 1024);
	check_option("max_buffered_bytes", opts->max_buffered_bytes, 1024 * 1024,
				 (int64) MaxAllocSize * 4);
	check_option("max_buffered_records", opts->max_buffered_records, 1, 100000000);
	check_option("max_record_retries", opts->max_record_retries, 0, 10000);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "dms_stream Kinesis batcher",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	b = palloc0(sizeof(KinesisBatcher));
	b->client = client;
	b->opts = *opts;
	b->cxt = cxt;

	b->nbuckets = 1024;
	b->buckets = palloc0(sizeof(KinesisKey *) * b->nbuckets);

	b->ring_size = 1024;
	b->ring = palloc0(sizeof(KinesisEntry) * b->ring_size);

	b->slots = palloc0(sizeof(KinesisSlot) * opts->max_in_flight);
	for (i = 0; i < opts->max_in_flight; i++)
	{
		b->slots[i].entries = palloc(sizeof(uint64) * opts->max_request_records);
		initStringInfo(&b->slots[i].body);
		b->slots[i].cxt = AllocSetContextCreate(cxt, "dms_stream Kinesis request",
												ALLOCSET_DEFAULT_SIZES);
	}
	b->queue = dms_http_queue_create();

	initStringInfo(&buf);
	appendStringInfo(&buf, "{%s,\"Records\":[", client->stream_members);
	b->body_prefix = buf.data;
	b->body_prefix_len = buf.len;
	b->what = kinesis_what(client, "PutRecords");
	b->headers[0].name = "Content-Type";
	b->headers[0].value = KINESIS_CONTENT_TYPE;
	b->headers[1].name = "X-Amz-Target";
	b->headers[1].value = KINESIS_TARGET_PREFIX "PutRecords";

	MemoryContextSwitchTo(old);
	return b;
}

/*
 * batcher_release_key
 *		Drop a record's reference to its partition key.
 */
static void
batcher_release_key(KinesisBatcher *b, KinesisKey *k)
{
	if (--k->refcount == 0)
	{
		KinesisKey **p = &b->buckets[k->hash & (b->nbuckets - 1)];

		while (*p != k)
			p = &(*p)->next;
		*p = k->next;
		k->next = b->free_keys;
		b->free_keys = k;
		b->nkeys--;
	}
}

/*
 * batcher_sleep_until
 *		Wait for a due time, servicing interrupts at least once a second.
 */
static void
batcher_sleep_until(TimestampTz until)
{
	for (;;)
	{
		long		ms = (long) ((until - GetCurrentTimestamp() + 999) / 1000);
		int			events = WL_LATCH_SET | WL_TIMEOUT;

		if (ms <= 0)
			break;
		if (IsUnderPostmaster)
			events |= WL_EXIT_ON_PM_DEATH;
		(void) WaitLatch(MyLatch, events, Min(ms, 1000L), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * batcher_entry
 *		The ring entry of the record of sequence number seq (kept).
 */
static inline KinesisEntry *
batcher_entry(KinesisBatcher *b, uint64 seq)
{
	Assert(seq >= b->popped && seq < b->popped + b->count);
	return &b->ring[(b->head + (int) (seq - b->popped)) & (b->ring_size - 1)];
}

/*
 * batcher_form_request
 *		Fill slot s with due records (see the file header).  Returns how
 *		many it took; *earliest gets the first due time of a record held
 *		back by its backoff (0 if none).
 */
static int
batcher_form_request(KinesisBatcher *b, KinesisSlot *s, TimestampTz now,
					 TimestampTz *earliest)
{
	int64		open_keys = b->pending_keys;	/* keys not yet held back */
	int			off;

	*earliest = 0;
	b->round++;
	s->nentries = 0;
	s->size = 0;
	s->body_len = b->body_prefix_len + 2;

	/* once every key with waiting records is held back, nothing is left */
	for (off = 0; off < b->count && open_keys > 0; off++)
	{
		int			idx = (b->head + off) & (b->ring_size - 1);
		KinesisEntry *e = &b->ring[idx];
		KinesisKey *k;

		if (e->state != ENTRY_PENDING)
			continue;
		k = e->key;
		if (k->round != b->round)
		{
			/* a key with records on the wire waits for their answer */
			k->round = b->round;
			k->blocked = k->inflight > 0;
			if (k->blocked)
				open_keys--;
		}
		if (k->blocked)
			continue;

		if (e->retry_at > now)
		{
			k->blocked = true;
			open_keys--;
			if (*earliest == 0 || e->retry_at < *earliest)
				*earliest = e->retry_at;
			continue;
		}

		/*
		 * Does not fit: the key is held back, so that no later (smaller)
		 * record of it slips in ahead; other keys may still fill the
		 * request.
		 */
		if (s->nentries > 0 &&
			(s->size + e->size > b->opts.max_request_bytes ||
			 s->body_len + e->json_len + 1 > b->opts.max_body_bytes))
		{
			k->blocked = true;
			open_keys--;
			continue;
		}

		if (s->nentries > 0)
			s->body_len++;		/* the comma */
		s->entries[s->nentries++] = b->popped + off;
		s->size += e->size;
		s->body_len += e->json_len;
		e->state = ENTRY_SENT;
		k->inflight++;
		if (--k->pending == 0)
			b->pending_keys--;
		b->pending--;
		b->pending_size -= e->size;
		b->pending_json -= e->json_len;

		/*
		 * Strict order: one record of a key per request, so that Kinesis
		 * cannot accept a later record of the key while failing this one.
		 */
		if (b->opts.strict_key_order || k->pending == 0)
		{
			k->blocked = true;
			open_keys--;
		}
		if (s->nentries >= b->opts.max_request_records)
			break;
	}
	return s->nentries;
}

/*
 * batcher_backoff
 *		When a record that failed for the n-th time is due again.
 */
static TimestampTz
batcher_backoff(TimestampTz now, int failures, bool throttled)
{
	double		ceiling = (throttled ? KINESIS_RETRY_THROTTLE_BASE_MS : KINESIS_RETRY_BASE_MS) *
		(double) (1L << Min(failures - 1, 20));
	double		ms;

	if (ceiling > KINESIS_RETRY_CAP_MS)
		ceiling = KINESIS_RETRY_CAP_MS;
	ms = ceiling / 2 + pg_prng_double(&pg_global_prng_state) * ceiling / 2;
	return now + (TimestampTz) (ms * 1000.0);
}

/*
 * batcher_requeue
 *		Put a record that was not accepted back in the queue, due after a
 *		backoff.  Returns false when it has failed too often.
 */
static bool
batcher_requeue(KinesisBatcher *b, KinesisEntry *e, TimestampTz now, bool throttled)
{
	e->state = ENTRY_PENDING;
	if (e->key->pending++ == 0)
		b->pending_keys++;
	b->pending++;
	b->pending_size += e->size;
	b->pending_json += e->json_len;
	if (e->failures < PG_UINT16_MAX)
		e->failures++;
	e->retry_at = batcher_backoff(now, e->failures, throttled);
	b->stats.entries_retried++;
	return e->failures <= b->opts.max_record_retries;
}

/*
 * batcher_ack
 *		A record was accepted: free its entry and tell the caller.
 */
static void
batcher_ack(KinesisBatcher *b, KinesisEntry *e, const char *shard_id,
			const char *sequence_number, TimestampTz now)
{
	e->state = ENTRY_ACKED;
	b->unacked--;
	batcher_release_key(b, e->key);
	e->key = NULL;
	b->stats.records_acked++;
	b->stats.bytes_acked += e->size;
	b->stats.last_ack = now;
	if (b->opts.on_ack)
		b->opts.on_ack(b->opts.ack_arg, e->tag, shard_id, sequence_number);
}

/*
 * batcher_pop_acked
 *		Drop the acknowledged records at the head of the ring.
 */
static void
batcher_pop_acked(KinesisBatcher *b)
{
	while (b->count > 0 && b->ring[b->head].state == ENTRY_ACKED)
	{
		KinesisEntry *e = &b->ring[b->head];

		b->acked_through = e->tag;
		b->have_acked_through = true;
		b->buffered_bytes -= e->json_len + e->key_len + 2;
		b->head = (b->head + 1) & (b->ring_size - 1);
		b->count--;
		b->popped++;
	}

	/* Release the blocks whose records have all left. */
	while (b->first_block != NULL && b->first_block->last_seq < b->popped)
	{
		KinesisBlock *blk = b->first_block;

		b->first_block = blk->next;
		if (b->first_block == NULL)
			b->last_block = NULL;
		if (blk->size == KINESIS_BLOCK_SIZE && b->spare_block == NULL)
			b->spare_block = blk;
		else
			pfree(blk);
	}
}

/*
 * batcher_reserve
 *		Room for len bytes at the end of the blocks, for the record of
 *		sequence seq.
 */
static char *
batcher_reserve(KinesisBatcher *b, size_t len, uint64 seq)
{
	KinesisBlock *blk = b->last_block;
	char	   *p;

	if (blk == NULL || blk->size - blk->used < len)
	{
		if (len <= KINESIS_BLOCK_SIZE && b->spare_block != NULL)
		{
			blk = b->spare_block;
			b->spare_block = NULL;
		}
		else
		{
			size_t		size = Max(len, KINESIS_BLOCK_SIZE);

			blk = MemoryContextAllocHuge(b->cxt, offsetof(KinesisBlock, data) + size);
			blk->size = size;
		}
		blk->next = NULL;
		blk->used = 0;
		if (b->last_block != NULL)
			b->last_block->next = blk;
		else
			b->first_block = blk;
		b->last_block = blk;
	}
	p = blk->data + blk->used;
	blk->used += len;
	blk->last_seq = seq;
	return p;
}

/*
 * is_throttling_code
 *		True for the codes Kinesis uses when a shard or account is over its
 *		limits.
 */
static bool
is_throttling_code(const char *code)
{
	return code != NULL &&
		(strcmp(code, "ProvisionedThroughputExceededException") == 0 ||
		 strcmp(code, "ThrottlingException") == 0 ||
		 strcmp(code, "LimitExceededException") == 0 ||
		 strcmp(code, "KMSThrottlingException") == 0);
}

/*
 * round_error
 *		Remember the first fatal problem among the answers applied.
 */
static void
round_error(KinesisRoundError *err, int sqlstate, char *message, char *detail,
			char *hint)
{
	if (err->slot >= 0 || err->message != NULL)
		return;
	err->sqlstate = sqlstate;
	err->message = message;
	err->detail = detail;
	err->hint = hint;
}

/*
 * batcher_process_answer
 *		Apply a 200 answer to PutRecords: acknowledge the accepted entries,
 *		queue the failed ones again (matched by index).
 */
static void
batcher_process_answer(KinesisBatcher *b, KinesisSlot *s, DmsHttpResponse *resp,
					   TimestampTz now, KinesisRoundError *err)
{
	KinesisAnswerEntry *answers = palloc(sizeof(KinesisAnswerEntry) * s->nentries);
	char	   *text = palloc(resp->body_len + 1);
	uint64		serial = ++b->request_serial;
	int			i;

	memcpy(text, resp->body, resp->body_len);
	text[resp->body_len] = '\0';
	/* shard and sequence number only matter to an on_ack callback */
	if (!scan_put_records_answer(text, resp->body_len, s->nentries,
								 b->opts.on_ack != NULL, answers))
	{
		/* nothing can be matched: treat like a failed request */
		for (i = 0; i < s->nentries; i++)
			batcher_requeue(b, batcher_entry(b, s->entries[i]), now, false);
		round_error(err, ERRCODE_PROTOCOL_VIOLATION,
					psprintf("%s returned an invalid answer", b->what),
					psprintf("Expected a Records array of %d entries; the answer starts with \"%.200s\".",
							 s->nentries, resp->body),
					NULL);
		return;
	}

	/* Entries overtaken by a later accepted entry of the same key. */
	for (i = s->nentries - 1; i >= 0; i--)
	{
		KinesisEntry *e = batcher_entry(b, s->entries[i]);

		if (answers[i].error_code == NULL)
			e->key->ok_mark = serial;
		else if (e->key->ok_mark == serial && !e->overtaken)
		{
			e->overtaken = true;
			b->stats.entries_reordered++;
		}
	}

	for (i = 0; i < s->nentries; i++)
	{
		KinesisEntry *e = batcher_entry(b, s->entries[i]);
		const char *code = answers[i].error_code;
		const char *message;
		bool		throttled;

		if (code == NULL)
		{
			batcher_ack(b, e, answers[i].shard_id, answers[i].sequence_number, now);
			continue;
		}

		message = answers[i].error_message;
		throttled = is_throttling_code(code);
		b->stats.entries_failed++;
		if (throttled)
			b->stats.entries_throttled++;

		if (!throttled && !dms_http_is_retryable_code(code))
		{
			batcher_requeue(b, e, now, false);
			round_error(err, ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
						psprintf("%s refused a record: %s", b->what, code),
						psprintf("Record with tag " UINT64_FORMAT ": %s.", e->tag,
								 message ? message : "no message"),
						pstrdup("Kinesis reports only throttling and internal failures per record; "
								"this code means the record itself cannot be stored."));
			continue;
		}
		if (!batcher_requeue(b, e, now, throttled))
			round_error(err, throttled ? ERRCODE_INSUFFICIENT_RESOURCES :
						ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
						psprintf("%s failed: a record was refused %d times", b->what,
								 (int) e->failures),
						psprintf("Record with tag " UINT64_FORMAT ", last error %s: %s.",
								 e->tag, code, message ? message : "no message"),
						throttled ?
						pstrdup("The stream kept throttling; add shards, spread the partition keys, "
								"or allow more retries (max_record_retries).") :
						pstrdup("Kinesis kept failing; try again later."));
	}
}

/*
 * batcher_submit
 *		Build the body of the request formed in slot s and put it on the
 *		wire.
 */
static void
batcher_submit(KinesisBatcher *b, KinesisSlot *s)
{
	MemoryContext old;
	AwsResolvedCredentials *creds;
	char	   *p;
	int			j;

	resetStringInfo(&s->body);
	enlargeStringInfo(&s->body, (int) s->body_len);
	p = s->body.data;
	memcpy(p, b->body_prefix, b->body_prefix_len);
	p += b->body_prefix_len;
	for (j = 0; j < s->nentries; j++)
	{
		KinesisEntry *e = batcher_entry(b, s->entries[j]);

		if (j > 0)
			*p++ = ',';
		memcpy(p, e->json, e->json_len);
		p += e->json_len;
	}
	*p++ = ']';
	*p++ = '}';
	*p = '\0';
	s->body.len = p - s->body.data;
	Assert(s->body.len == s->body_len);

	old = MemoryContextSwitchTo(s->cxt);
	creds = aws_credentials_resolve(b->client->endpoint);
	memset(&s->req, 0, sizeof(s->req));
	s->req.method = "POST";
	s->req.url = b->client->url;
	s->req.headers = b->headers;
	s->req.nheaders = 2;
	s->req.body = s->body.data;
	s->req.body_len = s->body.len;
	s->req.credentials = &creds->credentials;
	s->req.service = "kinesis";
	s->req.region = b->client->region;
	s->req.max_retries = -1;
	dms_http_queue_submit(b->queue, &s->req, &s->resp, s);
	MemoryContextSwitchTo(old);

	s->busy = true;
	b->nbusy++;
	b->stats.requests++;
	b->stats.max_in_flight = Max(b->stats.max_in_flight, b->nbusy);
	b->stats.largest_request_records = Max(b->stats.largest_request_records, s->nentries);
	b->stats.largest_request_bytes = Max(b->stats.largest_request_bytes, s->size);
	b->stats.largest_request_body = Max(b->stats.largest_request_body, s->body_len);
}

/*
 * batcher_finish
 *		Apply the outcome of a request that came back: acknowledge, queue
 *		again, or note the first fatal problem in *err (raised by the
 *		caller once every answer at hand is applied).
 */
static void
batcher_finish(KinesisBatcher *b, KinesisSlot *s, TimestampTz now, KinesisRoundError *err)
{
	DmsHttpResponse *resp = &s->resp;
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	int			j;

	s->busy = false;
	b->nbusy--;
	b->stalled = false;
	for (j = 0; j < s->nentries; j++)
		batcher_entry(b, s->entries[j])->key->inflight--;

	b->stats.request_attempts += resp->attempts;
	if (resp->ok)
	{
		b->failing_since = 0;
		b->failing_attempts = 0;
	}
	else
	{
		if (b->failing_since == 0)
			b->failing_since = now - (TimestampTz) (resp->elapsed_ms * 1000.0);
		b->failing_attempts += resp->attempts;
	}

	if (resp->ok)
	{
		b->stats.requests_ok++;
		batcher_process_answer(b, s, resp, now, err);
	}
	else if (resp->retryable && b->opts.requeue_failed_requests)
	{
		bool		throttled = is_throttling_code(resp->error_code) || resp->status == 429;
		bool		exhausted = false;

		b->stats.requests_requeued++;
		if (throttled)
			b->stats.requests_throttled++;
		for (j = 0; j < s->nentries; j++)
			if (!batcher_requeue(b, batcher_entry(b, s->entries[j]), now, throttled))
				exhausted = true;
		if (exhausted && err->slot < 0 && err->message == NULL)
			err->slot = s - b->slots;
	}
	else
	{
		/*
		 * Not retryable, or the HTTP layer gave up on it (its retries or
		 * dms_stream.http_total_timeout) and the records are not to be
		 * sent again: fail now, so that the settings bound the time.
		 */
		for (j = 0; j < s->nentries; j++)
			batcher_requeue(b, batcher_entry(b, s->entries[j]), now, false);
		if (err->slot < 0 && err->message == NULL)
			err->slot = s - b->slots;
	}
	MemoryContextSwitchTo(old);
}

/*
 * batcher_collect
 *		Take the requests that came back from the queue (waiting for one
 *		with wait) and apply them; raise the first fatal problem after every
 *		accepted record has been acknowledged.
 */
static void
batcher_collect(KinesisBatcher *b, bool wait)
{
	void	   *done[DMS_HTTP_MAX_PARALLEL];
	KinesisRoundError err = {-1, NULL, NULL, NULL, 0};
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz now;
	int			n;
	int			i;

	b->adds_since_poll = 0;
	if (b->nbusy == 0)
		return;
	if (wait)
		b->stats.rounds++;
	n = dms_http_queue_poll(b->queue, wait, done, DMS_HTTP_MAX_PARALLEL);
	now = GetCurrentTimestamp();
	b->stats.http_ms += (double) (now - start) / 1000.0;

	for (i = 0; i < n; i++)
		batcher_finish(b, (KinesisSlot *) done[i], now, &err);
	batcher_pop_acked(b);

	if (err.slot >= 0)
	{
		KinesisSlot *s = &b->slots[err.slot];
		DmsHttpResponse resp = s->resp;

		/*
		 * Records sent again after whole requests failed: report every
		 * attempt made for them since the last answered request, not only
		 * the last request's.
		 */
		if (b->opts.requeue_failed_requests &&
			b->failing_attempts > resp.attempts && b->failing_since != 0)
		{
			resp.attempts = (int) Min(b->failing_attempts, (int64) PG_INT32_MAX);
			resp.elapsed_ms = (double) (now - b->failing_since) / 1000.0;
		}
		dms_http_raise_error(ERROR, b->what, &s->req, &resp);
	}
	if (err.message != NULL)
		ereport(ERROR,
				(errcode(err.sqlstate),
				 errmsg_internal("%s", err.message),
				 err.detail ? errdetail_internal("%s", err.detail) : 0,
				 err.hint ? errhint("%s", err.hint) : 0));

	for (i = 0; i < n; i++)
		MemoryContextReset(((KinesisSlot *) done[i])->cxt);
}

/*
 * batcher_send
 *		Form and send requests while a slot is free and records are due.
 *		With full_only, only requests that the queued records fill (the
 *		steady state of kinesis_batcher_add); otherwise any (flush, or room
 *		needed).  Returns how many were sent; *earliest as in
 *		batcher_form_request when nothing could be.
 */
static int
batcher_send(KinesisBatcher *b, bool full_only, TimestampTz *earliest)
{
	int			sent = 0;
	int			i;

	*earliest = 0;
	for (i = 0; i < b->opts.max_in_flight && b->pending > 0; i++)
	{
		KinesisSlot *s = &b->slots[i];
		TimestampTz now;

		if (s->busy)
			continue;
		if (full_only &&
			!(b->pending >= b->opts.max_request_records ||
			  b->pending_size >= b->opts.max_request_bytes ||
			  b->pending_json >= b->opts.max_body_bytes))
			break;
		/* nothing new since the last request formed came out empty */
		if (b->stalled && b->pending - b->stalled_pending < b->opts.max_request_records)
			break;
		now = GetCurrentTimestamp();
		if (b->idle_until != 0 && now < b->idle_until && full_only)
			break;
		if (batcher_form_request(b, s, now, earliest) == 0)
		{
			b->stalled = true;
			b->stalled_pending = b->pending;
			b->idle_until = *earliest;
			break;
		}
		b->idle_until = 0;
		batcher_submit(b, s);
		sent++;
	}
	/* get the new requests going */
	if (sent > 0)
		batcher_collect(b, false);
	return sent;
}

/*
 * batcher_send_full
 *		Send the requests that the queued records fill, while a slot is
 *		free.
 */
static void
batcher_send_full(KinesisBatcher *b)
{
	TimestampTz earliest;

	if (b->nbusy < b->opts.max_in_flight &&
		(b->pending >= b->opts.max_request_records ||
		 b->pending_size >= b->opts.max_request_bytes ||
		 b->pending_json >= b->opts.max_body_bytes))
		batcher_send(b, true, &earliest);
}

/*
 * batcher_progress
 *		Make progress towards acknowledging everything: send what can be
 *		sent, then wait for an answer, or, with nothing on the wire, for the
 *		first held-back record to be due.
 */
static void
batcher_progress(KinesisBatcher *b)
{
	TimestampTz earliest;
	TimestampTz now;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		b->stalled = false;
		if (batcher_send(b, false, &earliest) > 0 && b->nbusy == 0)
			continue;			/* the answers are in already: look again */
		if (b->nbusy > 0)
		{
			batcher_collect(b, true);
			return;
		}
		if (b->pending == 0)
			return;
		if (earliest == 0)
			elog(ERROR, "Kinesis batcher found no record to send and none waiting");
		now = GetCurrentTimestamp();
		batcher_sleep_until(earliest);
		b->stats.backoff_ms += (double) (GetCurrentTimestamp() - now) / 1000.0;
		return;
	}
}

/*
 * batcher_grow_ring
 *		Double the ring, keeping the records in order from index 0.
 */
static void
batcher_grow_ring(KinesisBatcher *b)
{
	int			newsize = b->ring_size * 2;
	KinesisEntry *ring = MemoryContextAllocHuge(b->cxt, sizeof(KinesisEntry) * newsize);
	int			i;

	for (i = 0; i < b->count; i++)
		ring[i] = b->ring[(b->head + i) & (b->ring_size - 1)];
	pfree(b->ring);
	b->ring = ring;
	b->ring_size = newsize;
	b->head = 0;
}

/*
 * kinesis_batcher_add
 *		Validate and queue a record; see kinesis.h.
 */
KinesisRecordStatus
kinesis_batcher_add(KinesisBatcher *b, const char *data, size_t data_len,
					const char *partition_key, const char *explicit_hash_key,
					uint64 tag, char **problem)
{
	KinesisRecordStatus status;
	size_t		key_len;
	size_t		key_esc;
	size_t		hash_len;
	size_t		json_len;
	KinesisEntry *e;
	KinesisKey *k;
	uint32		hash;
	char	   *p;

	if (!b->opts.records_checked)
	{
		status = kinesis_record_check(data, data_len, partition_key, explicit_hash_key,
									  b->opts.max_record_bytes, problem);
		if (status != KINESIS_RECORD_OK)
		{
			b->stats.records_rejected++;
			return status;
		}
	}

	key_len = strlen(partition_key);
	key_esc = json_escaped_len(partition_key, key_len);
	hash_len = explicit_hash_key ? strlen(explicit_hash_key) : 0;
	json_len = strlen(ENTRY_DATA_OPEN) + (data_len + 2) / 3 * 4 +
		strlen(ENTRY_KEY_OPEN) + key_esc +
		(explicit_hash_key ? strlen(ENTRY_HASH_OPEN) + hash_len : 0) +
		strlen(ENTRY_CLOSE);

	/* Wait for room: the memory bounds hold whatever the caller adds. */
	while (b->unacked > 0 &&
		   (b->count >= b->opts.max_buffered_records ||
			b->buffered_bytes + (int64) (json_len + key_len + 2) > b->opts.max_buffered_bytes))
	{
		if (b->pending == 0 && b->nbusy == 0)
			elog(ERROR, "Kinesis batcher holds unacknowledged records but none to send");
		batcher_progress(b);
	}

	if (b->count == b->ring_size)
		batcher_grow_ring(b);

	e = &b->ring[(b->head + b->count) & (b->ring_size - 1)];
	memset(e, 0, sizeof(*e));
	/* the entry, NUL, the partition key, NUL */
	e->json = batcher_reserve(b, json_len + key_len + 2, b->popped + b->count);
	p = e->json;
	memcpy(p, ENTRY_DATA_OPEN, strlen(ENTRY_DATA_OPEN));
	p += strlen(ENTRY_DATA_OPEN);
	p = base64_encode_into(p, (const unsigned char *) data, data_len);
	memcpy(p, ENTRY_KEY_OPEN, strlen(ENTRY_KEY_OPEN));
	p += strlen(ENTRY_KEY_OPEN);
	p = json_escape_into(p, partition_key, key_len);
	if (explicit_hash_key)
	{
		memcpy(p, ENTRY_HASH_OPEN, strlen(ENTRY_HASH_OPEN));
		p += strlen(ENTRY_HASH_OPEN);
		memcpy(p, explicit_hash_key, hash_len);
		p += hash_len;
	}
	memcpy(p, ENTRY_CLOSE, strlen(ENTRY_CLOSE));
	p += strlen(ENTRY_CLOSE);
	*p++ = '\0';
	Assert((size_t) (p - e->json) == json_len + 1);
	memcpy(p, partition_key, key_len + 1);

	hash = hash_bytes((const unsigned char *) partition_key, (int) key_len);
	k = batcher_intern_key(b, partition_key, key_len, hash, p);
	k->refcount++;

	e->json_len = (uint32) json_len;
	e->key_len = (uint16) key_len;
	e->size = (uint32) (data_len + key_len);
	e->key = k;
	e->tag = tag;
	e->state = ENTRY_PENDING;
	if (k->pending++ == 0)
		b->pending_keys++;
	b->count++;
	b->unacked++;
	b->pending++;
	b->pending_size += e->size;
	b->pending_json += json_len;
	b->buffered_bytes += json_len + key_len + 2;

	b->stats.records_added++;
	if (b->stats.first_add == 0)
		b->stats.first_add = GetCurrentTimestamp();
	if (b->buffered_bytes > b->stats.max_buffered_bytes)
		b->stats.max_buffered_bytes = b->buffered_bytes;
	if (b->count > b->stats.max_buffered_records)
		b->stats.max_buffered_records = b->count;

	/*
	 * Enough queued to fill a request: send it if a slot is free.  Answers
	 * are taken in between, often enough for the slots to be free again.
	 */
	if (b->nbusy > 0 && ++b->adds_since_poll >= BATCHER_POLL_EVERY)
		batcher_collect(b, false);
	batcher_send_full(b);
	return KINESIS_RECORD_OK;
}

/*
 * kinesis_batcher_poll
 *		Without waiting: take the answers that came back, and send the
 *		requests that the queued records fill while a slot is free.
 */
void
kinesis_batcher_poll(KinesisBatcher *b)
{
	if (b->nbusy > 0)
		batcher_collect(b, false);
	batcher_send_full(b);
	batcher_pop_acked(b);
}

/*
 * kinesis_batcher_wait
 *		Sleep until an answer comes back (with nothing on the wire: until
 *		the first held-back record is due) or the process latch is set, at
 *		most a second, then poll.
 */
void
kinesis_batcher_wait(KinesisBatcher *b)
{
	TimestampTz start = GetCurrentTimestamp();

	if (b->nbusy > 0)
	{
		dms_http_queue_sleep(b->queue);
		b->stats.http_ms += (double) (GetCurrentTimestamp() - start) / 1000.0;
	}
	else
	{
		/* Until the first held-back record is due, or the latch. */
		long		ms = 1000;
		int			events = WL_LATCH_SET | WL_TIMEOUT;

		if (b->idle_until > start)
			ms = Min(ms, (long) ((b->idle_until - start + 999) / 1000));
		if (IsUnderPostmaster)
			events |= WL_EXIT_ON_PM_DEATH;
		(void) WaitLatch(MyLatch, events, ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	kinesis_batcher_poll(b);
}

/*
 * kinesis_batcher_flush
 *		Send until every record added so far is acknowledged.
 */
void
kinesis_batcher_flush(KinesisBatcher *b)
{
	while (b->unacked > 0)
		batcher_progress(b);
	batcher_pop_acked(b);
	Assert(b->count == 0 && b->nbusy == 0);
}

/*
 * kinesis_batcher_acked_through
 *		Tag of the end of the acknowledged prefix of the records added.
 */
bool
kinesis_batcher_acked_through(KinesisBatcher *b, uint64 *tag)
{
	if (b->have_acked_through)
		*tag = b->acked_through;
	return b->have_acked_through;
}

/*
 * kinesis_batcher_unacked
 *		Records added and not yet acknowledged.
 */
int64
kinesis_batcher_unacked(KinesisBatcher *b)
{
	return b->unacked;
}

/*
 * kinesis_batcher_stats
 *		The batcher's counters.
 */
const KinesisBatcherStats *
kinesis_batcher_stats(KinesisBatcher *b)
{
	return &b->stats;
}

/*
 * kinesis_batcher_stats_json
 *		The counters as a JSON object, with throughput over the time from
 *		the first record added to the last acknowledgement.
 */
json_t *
kinesis_batcher_stats_json(KinesisBatcher *b)
{
	return kinesis_stats_json(&b->stats, b->unacked, b->have_acked_through,
							  b->acked_through, b->opts.strict_key_order);
}

/*
 * kinesis_stats_json
 *		Batcher counters as a JSON object, with throughput over the time
 *		from the first record added to the last acknowledgement.
 */
json_t *
kinesis_stats_json(const KinesisBatcherStats *st, int64 unacked,
				   bool have_acked_through, uint64 acked_through,
				   bool strict_key_order)
{
	json_t	   *o = dms_json_new_object();
	double		elapsed_ms = 0;

	if (st->first_add != 0 && st->last_ack > st->first_add)
		elapsed_ms = (double) (st->last_ack - st->first_add) / 1000.0;

	json_object_set_new(o, "records", json_integer(st->records_acked));
	json_object_set_new(o, "bytes", json_integer(st->bytes_acked));
	json_object_set_new(o, "records_added", json_integer(st->records_added));
	json_object_set_new(o, "records_rejected", json_integer(st->records_rejected));
	json_object_set_new(o, "unacked", json_integer(unacked));
	json_object_set_new(o, "rounds", json_integer(st->rounds));
	json_object_set_new(o, "requests", json_integer(st->requests));
	json_object_set_new(o, "requests_ok", json_integer(st->requests_ok));
	json_object_set_new(o, "request_attempts", json_integer(st->request_attempts));
	json_object_set_new(o, "request_retries", json_integer(st->request_attempts - st->requests));
	json_object_set_new(o, "requests_requeued", json_integer(st->requests_requeued));
	json_object_set_new(o, "requests_throttled", json_integer(st->requests_throttled));
	json_object_set_new(o, "entries_failed", json_integer(st->entries_failed));
	json_object_set_new(o, "entries_throttled", json_integer(st->entries_throttled));
	json_object_set_new(o, "entries_retried", json_integer(st->entries_retried));
	json_object_set_new(o, "entries_reordered", json_integer(st->entries_reordered));
	json_object_set_new(o, "max_in_flight", json_integer(st->max_in_flight));
	json_object_set_new(o, "largest_request_records", json_integer(st->largest_request_records));
	json_object_set_new(o, "largest_request_bytes", json_integer(st->largest_request_bytes));
	json_object_set_new(o, "largest_request_body", json_integer(st->largest_request_body));
	json_object_set_new(o, "max_buffered_bytes", json_integer(st->max_buffered_bytes));
	json_object_set_new(o, "max_buffered_records", json_integer(st->max_buffered_records));
	json_object_set_new(o, "http_ms", json_real(st->http_ms));
	json_object_set_new(o, "backoff_ms", json_real(st->backoff_ms));
	json_object_set_new(o, "elapsed_ms", json_real(elapsed_ms));
	if (elapsed_ms > 0)
	{
		json_object_set_new(o, "records_per_second",
							json_real(st->records_acked * 1000.0 / elapsed_ms));
		json_object_set_new(o, "mb_per_second",
							json_real(st->bytes_acked / 1048576.0 * 1000.0 / elapsed_ms));
	}
	if (have_acked_through)
		json_object_set_new(o, "acked_through", json_integer((json_int_t) acked_through));
	json_object_set_new(o, "strict_key_order", json_boolean(strict_key_order));
	return o;
}

/*
 * kinesis_batcher_destroy
 *		Free the batcher and every record it holds.
 */
void
kinesis_batcher_destroy(KinesisBatcher *b)
{
	MemoryContextDelete(b->cxt);
}
