/*-------------------------------------------------------------------------
 *
 * s3.c
 *	  Amazon S3 client: addressing, ListObjectsV2, Head/Get/Put/DeleteObject,
 *	  a streaming reader (ranged GETs) and a streaming writer (PutObject or
 *	  multipart upload).  See s3.h for the contract.
 *
 * Requests go through dms_http_perform (src/http.c), which signs them with
 * SigV4 before every attempt and retries throttling, server and network
 * failures with backoff.  What comes back is checked here and failures are
 * reported with dms_http_raise_error, naming the operation, the object and
 * the endpoint.
 *
 * Multipart uploads and errors.  An open multipart upload is recorded in a
 * process-wide list (s3_uploads) whose entries live in their own memory
 * contexts under TopMemoryContext and hold everything needed to abort the
 * upload: the URL, region, ExpectedBucketOwner and a copy of the signing
 * credentials (refreshed at every batch of parts).  Entries leave the list
 * when the upload completes or is aborted.  Transaction callbacks do no
 * network I/O (they run with interrupts held): they move whatever is left
 * when the (sub)transaction that opened it aborts, or at commit (with a
 * WARNING, as a leak), to a list of deferred aborts.  That list is sent
 * (AbortMultipartUpload) by s3_abort_deferred_uploads: before the next S3
 * request of the process, by the delta-load run after its rollback, and at
 * process exit (before the transaction is aborted).  A memory context callback on the
 * writer's context detaches the entry when the writer's memory goes away,
 * so the callbacks never touch freed memory.  Aborting is best effort: a
 * failure to abort is a WARNING, never an error raised during cleanup.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws_credentials.h"
#include "http.h"
#include "s3.h"

#define S3_MAX_HEADERS		12
#define S3_READAHEAD		2	/* ranges fetched together by the reader */
#define S3_MIN_CHUNK_BYTES	((int64) 1024)
#define S3_MAX_CHUNK_BYTES	((int64) 512 * 1024 * 1024)
#define S3_MAX_KEY_BYTES	1024
#define S3_PART_GROWTH_EVERY 1000	/* parts between doublings of the size */

/* Where and how requests for one bucket go. */
typedef struct S3Target
{
	const DmsEndpoint *ep;
	char	   *bucket;
	char	   *base;			/* scheme://host[:port]; bucket host if virtual */
	char	   *bucket_path;	/* "/bucket" (path style) or "" (virtual) */
	bool		virtual_host;
	const char *owner;			/* ExpectedBucketOwner, or NULL */
} S3Target;

/* Extra request headers. */
typedef struct S3Headers
{
	AwsHeader	h[S3_MAX_HEADERS];
	int			n;
} S3Headers;

/* An open multipart upload, for aborting it on errors. */
typedef struct S3Upload
{
	struct S3Upload *next;
	MemoryContext cxt;			/* holds this entry and its strings */
	char	   *what;			/* "s3://bucket/key (endpoint "name")" */
	char	   *upload_id;
	char	   *abort_url;
	char	   *region;
	char	   *owner;
	AwsCredentials creds;
	SubTransactionId subid;		/* opened in this subtransaction */
	struct S3Writer *writer;	/* NULL once the writer's memory is gone */
} S3Upload;

typedef enum S3WriterState
{
	S3W_OPEN,
	S3W_CLOSED,
	S3W_ABORTED,
	S3W_FAILED
} S3WriterState;

/* A part waiting to be uploaded, or a spare buffer. */
typedef struct S3PartBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	int			number;
} S3PartBuf;

struct S3Writer
{
	MemoryContext cxt;
	MemoryContextCallback reset_cb;
	S3Target	target;
	char	   *key;
	char	   *url;
	char	   *where;			/* "s3://bucket/key (endpoint "name")" */
	char	   *content_type;
	int64		base_part_bytes;
	int64		size_hint;
	int			max_in_flight;
	int64		budget;			/* bytes of part buffers allowed at once */

	S3PartBuf	cur;			/* part being filled (data NULL if none) */
	S3PartBuf  *pending;		/* [max_in_flight] sealed parts */
	int			npending;
	S3PartBuf  *spare;			/* [max_in_flight] buffers to reuse */
	int			nspare;

	char	   *upload_id;		/* NULL: no multipart upload (yet) */
	S3Upload   *upload;			/* registry entry while it is open */
	int			nparts;			/* parts numbered so far */
	char	  **etags;			/* etags[n]: ETag of part n, as returned */
	int64		bytes;
	S3WriterState state;
	char	   *etag;			/* of the finished object */
};

struct S3Reader
{
	MemoryContext cxt;
	MemoryContext fetch_cxt;	/* the current batch of ranges */
	S3Target	target;
	char	   *url;
	char	   *where;
	S3Object	object;
	char	   *if_match;		/* the ETag as HeadObject returned it */
	int64		chunk_bytes;
	int64		next_fetch;		/* offset of the next range to request */
	int			requests;

	int			nready;			/* ranges of the current batch */
	int			cur;			/* the one being consumed */
	char	   *data[S3_READAHEAD];
	size_t		len[S3_READAHEAD];
	size_t		pos;			/* consumed bytes of data[cur] */
};

static S3Upload *s3_uploads = NULL;
static S3Upload *s3_deferred = NULL;	/* to abort outside any callback */
static bool s3_callbacks_registered = false;
static bool s3_draining = false;

/*
 * s3_normalize_enum
 *		Lower-case a DMS enum value and turn '_' into '-' ("SSE_KMS" ->
 *		"sse-kms").
 */
static char *
s3_normalize_enum(const char *value)
{
	char	   *s = pstrdup(value);
	char	   *p;

	for (p = s; *p; p++)
	{
		if (*p == '_')
			*p = '-';
		else
			*p = pg_ascii_tolower((unsigned char) *p);
	}
	return s;
}

/*
 * s3_check_key
 *		Refuse keys S3 cannot store.
 */
static void
s3_check_key(const char *key)
{
	if (key == NULL || key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 object key must not be empty")));
	if (strlen(key) > S3_MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 object key is too long"),
				 errdetail("The key has %zu bytes; S3 allows at most %d.",
						   strlen(key), S3_MAX_KEY_BYTES)));
}

/*
 * s3_check_key_segments
 *		Refuse a key, prefix or key part (what names the setting or argument)
 *		that could put objects outside the folder the configuration names:
 *		a "." or ".." segment, an empty segment ("//", or a leading "/"
 *		unless S3_SEGMENTS_TRIM), or a control character.  Segments are the
 *		parts between "/"; one trailing "/" is allowed.  With
 *		S3_SEGMENTS_TRIM leading and trailing slashes are ignored (as for
 *		BucketFolder); with S3_SEGMENTS_PARTIAL the last segment may be the
 *		start of a longer one (a listing prefix such as "a/.") and is not
 *		checked for "." and "..".  NULL and "" pass.
 */
void
s3_check_key_segments(const char *what, const char *value, int flags)
{
	const char *start;
	const char *end;
	const char *p;
	int			n = 0;
	bool		last_partial;

	if (value == NULL)
		return;
	last_partial = (flags & S3_SEGMENTS_PARTIAL) && value[0] != '\0' &&
		value[strlen(value) - 1] != '/';
	for (p = value; *p; p++)
		if ((unsigned char) *p < 0x20 || (unsigned char) *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", what),
					 errdetail("Byte %d of the value is 0x%02x.", (int) (p - value) + 1,
							   (unsigned char) *p),
					 errhint("S3 keys of dms_stream are built from printable characters only.")));
	start = value;
	end = value + strlen(value);
	if (flags & S3_SEGMENTS_TRIM)
	{
		while (*start == '/')
			start++;
		while (end > start && end[-1] == '/')
			end--;
	}
	else if (end > start && end[-1] == '/')
		end--;					/* a folder: one trailing slash */
	if (start == end)
	{
		if (*value != '\0' && !(flags & S3_SEGMENTS_TRIM))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not start with \"/\"", what),
					 errdetail("The value is \"%s\".", value),
					 errhint("Write keys and folders relative to the bucket (and BucketFolder), without a leading \"/\".")));
		return;
	}
	for (p = start; p <= end; p++)
	{
		size_t		len;

		if (p < end && *p != '/')
			continue;
		len = p - start;
		n++;
		if (len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain an empty path segment", what),
					 errdetail("Segment %d of \"%s\" is empty (%s).", n, value,
							   start == value ? "it starts with \"/\"" : "\"//\""),
					 errhint("Write keys and folders relative to the bucket (and BucketFolder), with single slashes between the parts.")));
		if ((len == 1 && start[0] == '.') || (len == 2 && start[0] == '.' && start[1] == '.'))
		{
			if (p == end && last_partial)
				break;
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain a \"%.*s\" path segment", what, (int) len, start),
					 errdetail("Segment %d of \"%s\" is \"%.*s\".", n, value, (int) len, start),
					 errhint("dms_stream keeps every object under the folder the configuration names: "
							 "remove the \".\" and \"..\" parts (S3 stores them literally, but tools and SDKs that "
							 "normalise paths would see another folder).")));
		}
		start = p + 1;
	}
}

/*
 * s3_endpoint_bucket
 *		The endpoint's BucketName setting, or an error naming the endpoint.
 */
const char *
s3_endpoint_bucket(const DmsEndpoint *ep)
{
	const char *bucket = dms_endpoint_setting(ep, "BucketName");

	if (bucket == NULL || bucket[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("endpoint \"%s\" has no BucketName", ep->name),
				 errhint("Set it with dms_stream.alter_endpoint('%s', '{\"BucketName\": \"...\"}').",
						 ep->name)));
	return bucket;
}

/*
 * s3_folder_prefix
 *		"folder/" for the endpoint's BucketFolder, "" without one.
 */
char *
s3_folder_prefix(const DmsEndpoint *ep)
{
	const char *folder = dms_endpoint_setting(ep, "BucketFolder");
	size_t		len;

	if (folder == NULL)
		return pstrdup("");
	s3_check_key_segments("BucketFolder", folder, S3_SEGMENTS_TRIM);
	while (*folder == '/')
		folder++;
	len = strlen(folder);
	while (len > 0 && folder[len - 1] == '/')
		len--;
	if (len == 0)
		return pstrdup("");
	return psprintf("%.*s/", (int) len, folder);
}

/*
 * s3_folder_key
 *		The full key of a key relative to BucketFolder.
 */
char *
s3_folder_key(const DmsEndpoint *ep, const char *relative_key)
{
	char	   *prefix = s3_folder_prefix(ep);

	return psprintf("%s%s", prefix, relative_key ? relative_key : "");
}

/*
 * s3_target_init
 *		Work out the request URLs for a bucket of an endpoint.
 */
static void
s3_target_init(S3Target *t, const DmsEndpoint *ep, const char *bucket)
{
	const char *style = ep->s3_addressing_style ? ep->s3_addressing_style : "auto";

	/* uploads whose abort a transaction callback deferred */
	if (s3_deferred != NULL)
		(void) s3_abort_deferred_uploads();

	if (bucket == NULL || bucket[0] == '\0' || strchr(bucket, '/') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid S3 bucket name \"%s\" for endpoint \"%s\"",
						bucket ? bucket : "", ep->name)));

	memset(t, 0, sizeof(*t));
	t->ep = ep;
	t->bucket = pstrdup(bucket);
	t->owner = dms_endpoint_setting(ep, "ExpectedBucketOwner");

	if (ep->endpoint_url != NULL && ep->endpoint_url[0] != '\0')
	{
		const char *sep = strstr(ep->endpoint_url, "://");
		size_t		len = strlen(ep->endpoint_url);

		if (sep == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid endpoint URL \"%s\" for endpoint \"%s\"",
							ep->endpoint_url, ep->name)));
		while (len > 0 && ep->endpoint_url[len - 1] == '/')
			len--;
		t->virtual_host = (strcmp(style, "virtual") == 0);
		if (t->virtual_host)
			t->base = psprintf("%.*s://%s.%.*s",
							   (int) (sep - ep->endpoint_url), ep->endpoint_url,
							   bucket,
							   (int) (len - (sep + 3 - ep->endpoint_url)), sep + 3);
		else
			t->base = pnstrdup(ep->endpoint_url, len);
	}
	else
	{
		const char *region = ep->region ? ep->region : "us-east-1";
		const char *domain = strncmp(region, "cn-", 3) == 0 ?
			"amazonaws.com.cn" : "amazonaws.com";

		/* dotted names do not match *.s3.amazonaws.com certificates */
		t->virtual_host = strcmp(style, "virtual") == 0 ||
			(strcmp(style, "auto") == 0 && strchr(bucket, '.') == NULL);
		if (t->virtual_host)
			t->base = psprintf("https://%s.s3.%s.%s", bucket, region, domain);
		else
			t->base = psprintf("https://s3.%s.%s", region, domain);
	}
	t->bucket_path = t->virtual_host ? pstrdup("") :
		psprintf("/%s", aws_uri_encode(bucket, true));
}

/*
 * s3_target_url
 *		URL of an object, or of the bucket when key is NULL.
 */
static char *
s3_target_url(const S3Target *t, const char *key)
{
	if (key == NULL)
		return psprintf("%s%s%s", t->base, t->bucket_path, t->virtual_host ? "/" : "");
	return psprintf("%s%s/%s", t->base, t->bucket_path, aws_uri_encode(key, false));
}

/*
 * s3_object_url
 *		The URL requests for an object (or the bucket) go to.
 */
char *
s3_object_url(const DmsEndpoint *ep, const char *bucket, const char *key)
{
	S3Target	t;

	s3_target_init(&t, ep, bucket);
	return s3_target_url(&t, key);
}

/*
 * s3_where
 *		"s3://bucket/key (endpoint "name")" for messages.
 */
static char *
s3_where(const S3Target *t, const char *key)
{
	return psprintf("s3://%s/%s (endpoint \"%s\")", t->bucket, key ? key : "",
					t->ep->name);
}

/*
 * s3_hdr
 *		Add a header to a set.
 */
static void
s3_hdr(S3Headers *hs, const char *name, const char *value)
{
	if (hs->n >= S3_MAX_HEADERS)
		elog(ERROR, "too many S3 request headers");
	hs->h[hs->n].name = name;
	hs->h[hs->n].value = value;
	hs->n++;
}

/*
 * s3_common_headers
 *		Headers of every request: x-amz-expected-bucket-owner.
 */
static void
s3_common_headers(const S3Target *t, S3Headers *hs)
{
	hs->n = 0;
	if (t->owner != NULL && t->owner[0] != '\0')
		s3_hdr(hs, "x-amz-expected-bucket-owner", t->owner);
}

/*
 * s3_write_headers
 *		Headers of requests that create an object: content type, server-side
 *		encryption and canned ACL from the endpoint settings.
 */
static void
s3_write_headers(const S3Target *t, S3Headers *hs, const char *content_type)
{
	const char *mode = dms_endpoint_setting(t->ep, "EncryptionMode");
	const char *kms_key = dms_endpoint_setting(t->ep, "ServerSideEncryptionKmsKeyId");
	const char *acl = dms_endpoint_setting(t->ep, "CannedAclForObjects");

	if (content_type != NULL && content_type[0] != '\0')
		s3_hdr(hs, "Content-Type", content_type);
	if (mode != NULL)
	{
		char	   *m = s3_normalize_enum(mode);

		if (strcmp(m, "sse-s3") == 0)
			s3_hdr(hs, "x-amz-server-side-encryption", "AES256");
		else if (strcmp(m, "sse-kms") == 0)
		{
			s3_hdr(hs, "x-amz-server-side-encryption", "aws:kms");
			if (kms_key != NULL && kms_key[0] != '\0')
				s3_hdr(hs, "x-amz-server-side-encryption-aws-kms-key-id", kms_key);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("endpoint \"%s\" has an unknown EncryptionMode \"%s\"",
							t->ep->name, mode),
					 errhint("Valid values are sse-s3 and sse-kms.")));
	}
	if (acl != NULL)
	{
		char	   *a = s3_normalize_enum(acl);

		if (strcmp(a, "none") != 0)
			s3_hdr(hs, "x-amz-acl", a);
	}
}

/*
 * s3_request_init
 *		Fill an HTTP request for S3.
 */
static void
s3_request_init(DmsHttpRequest *req, const S3Target *t, const char *method,
				const char *url, const S3Headers *hs, const char *body,
				size_t body_len, const AwsCredentials *creds)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->url = url;
	req->headers = hs ? hs->h : NULL;
	req->nheaders = hs ? hs->n : 0;
	req->body = body;
	req->body_len = body_len;
	req->credentials = creds;
	req->service = "s3";
	req->region = t->ep->region ? t->ep->region : "us-east-1";
	req->payload_hash = NULL;
	req->max_retries = -1;
}

/*
 * s3_credentials
 *		Signing credentials of the endpoint (the credential chain).
 */
static const AwsCredentials *
s3_credentials(const S3Target *t)
{
	AwsResolvedCredentials *rc = aws_credentials_resolve(t->ep);

	return &rc->credentials;
}

/*
 * s3_strip_etag
 *		An ETag without its surrounding quotes (and W/ prefix).
 */
static char *
s3_strip_etag(const char *etag)
{
	size_t		len;

	if (etag == NULL)
		return NULL;
	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	len = strlen(etag);
	if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"')
		return pnstrdup(etag + 1, len - 2);
	return pstrdup(etag);
}

/*
 * s3_make_timestamp
 *		TimestampTz of a UTC date and time; -infinity if out of range.
 */
static TimestampTz
s3_make_timestamp(int y, int mo, int d, int h, int mi, int s, int usec)
{
	TimestampTz ts;

	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
		h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60)
	{
		TIMESTAMP_NOBEGIN(ts);
		return ts;
	}
	ts = (TimestampTz) (date2j(y, mo, d) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
	ts += ((TimestampTz) ((h * 60 + mi) * 60 + s)) * USECS_PER_SEC + usec;
	return ts;
}

/*
 * s3_parse_iso8601
 *		"2024-01-02T03:04:05.678Z" (ListObjectsV2 LastModified); -infinity
 *		when it cannot be read.
 */
static TimestampTz
s3_parse_iso8601(const char *s)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				n = 0,
				usec = 0,
				scale = 100000;
	const char *p;
	TimestampTz ts;

	if (s == NULL ||
		sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
	{
		TIMESTAMP_NOBEGIN(ts);
		return ts;
	}
	p = s + n;
	if (*p == '.')
	{
		for (p++; *p >= '0' && *p <= '9'; p++)
		{
			usec += (*p - '0') * scale;
			scale /= 10;
		}
	}
	return s3_make_timestamp(y, mo, d, h, mi, sec, usec);
}

/*
 * s3_parse_http_date
 *		"Wed, 21 Oct 2015 07:28:00 GMT" (Last-Modified); -infinity when it
 *		cannot be read.
 */
static TimestampTz
s3_parse_http_date(const char *s)
{
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	char		mon[4];
	int			y,
				mo,
				d,
				h,
				mi,
				sec;
	TimestampTz ts;

	if (s != NULL &&
		sscanf(s, "%*[A-Za-z], %d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &sec) == 6)
	{
		for (mo = 0; mo < 12; mo++)
			if (pg_strcasecmp(mon, months[mo]) == 0)
				return s3_make_timestamp(y, mo + 1, d, h, mi, sec, 0);
	}
	TIMESTAMP_NOBEGIN(ts);
	return ts;
}

/*
 * s3_parse_int64
 *		A non-negative decimal number, or -1.
 */
static int64
s3_parse_int64(const char *s)
{
	int64		v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9' || v > (PG_INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/*
 * s3_url_decode
 *		Decode a key of a listing made with encoding-type=url ('+' is a
 *		space, %XX a byte).
 */
static char *
s3_url_decode(const char *s)
{
	char	   *out = palloc(strlen(s) + 1);
	char	   *o = out;

	while (*s)
	{
		if (*s == '+')
		{
			*o++ = ' ';
			s++;
		}
		else if (*s == '%' && isxdigit((unsigned char) s[1]) && isxdigit((unsigned char) s[2]))
		{
			char		hex[3] = {s[1], s[2], '\0'};

			*o++ = (char) strtol(hex, NULL, 16);
			s += 3;
		}
		else
			*o++ = *s++;
	}
	*o = '\0';
	return out;
}

/*
 * s3_xml_escape
 *		Append text escaped for XML.
 */
static void
s3_xml_escape(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				appendStringInfoString(buf, "&amp;");
				break;
			case '<':
				appendStringInfoString(buf, "&lt;");
				break;
			case '>':
				appendStringInfoString(buf, "&gt;");
				break;
			case '"':
				appendStringInfoString(buf, "&quot;");
				break;
			default:
				appendStringInfoChar(buf, *s);
		}
	}
}

/*
 * s3_xml_read
 *		Parse an XML answer without network access; NULL if it is not XML.
 */
static xmlDocPtr
s3_xml_read(const char *body, size_t len)
{
	if (body == NULL || len == 0 || len > INT_MAX)
		return NULL;
	return xmlReadMemory(body, (int) len, "s3.xml", NULL,
						 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/*
 * s3_xml_child
 *		First element child of parent with this local name, or NULL.
 */
static xmlNodePtr
s3_xml_child(xmlNodePtr parent, const char *name)
{
	xmlNodePtr	n;

	if (parent == NULL)
		return NULL;
	for (n = parent->children; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE &&
			xmlStrcmp(n->name, (const xmlChar *) name) == 0)
			return n;
	return NULL;
}

/*
 * s3_xml_text
 *		palloc'd text content of a node ("" if empty), NULL for no node.
 */
static char *
s3_xml_text(xmlNodePtr node)
{
	xmlChar    *content;
	char	   *result;

	if (node == NULL)
		return NULL;
	content = xmlNodeGetContent(node);
	if (content == NULL)
		return pstrdup("");
	result = pstrdup((const char *) content);
	xmlFree(content);
	return result;
}

/*
 * s3_xml_fields
 *		Parse an XML answer; returns the root element's name (NULL if the
 *		body is not XML) and sets values[i] to the text of the root's child
 *		names[i] (NULL if absent).
 */
static char *
s3_xml_fields(const char *body, size_t len, const char *const *names,
			  char **values, int n)
{
	xmlDocPtr volatile doc;
	char	   *volatile root_name = NULL;
	int			i;

	for (i = 0; i < n; i++)
		values[i] = NULL;
	doc = s3_xml_read(body, len);
	if (doc == NULL)
		return NULL;
	PG_TRY();
	{
		xmlNodePtr	root = xmlDocGetRootElement(doc);

		if (root != NULL)
		{
			root_name = pstrdup((const char *) root->name);
			for (i = 0; i < n; i++)
				values[i] = s3_xml_text(s3_xml_child(root, names[i]));
		}
	}
	PG_FINALLY();
	{
		xmlFreeDoc(doc);
	}
	PG_END_TRY();
	return root_name;
}

/*
 * s3_unexpected_answer
 *		Raise an error for a successful answer we cannot use.
 */
static void
s3_unexpected_answer(const char *op, const char *where, const DmsHttpRequest *req,
					 const DmsHttpResponse *resp, const char *what_is_wrong)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("S3 %s of %s failed: unexpected answer", op, where),
			 errdetail_internal("%s %s answered HTTP status %ld: %s; request id %s.",
								req->method, req->url, resp->status, what_is_wrong,
								resp->request_id ? resp->request_id : "none"),
			 errhint("Check that the endpoint URL points to an S3-compatible service.")));
}

/*
 * s3_raise
 *		Report a failed S3 request: "S3 <op> of s3://bucket/key (endpoint
 *		"name") failed: <code>".  A HEAD answer has no body, so its status
 *		is translated into the usual code.
 */
static void
s3_raise(const char *op, const char *where, const DmsHttpRequest *req,
		 DmsHttpResponse *resp)
{
	if (resp->error_code == NULL && resp->status == 404)
	{
		resp->error_code = pstrdup("NoSuchKey");
		resp->error_message = pstrdup("The specified key does not exist.");
	}
	else if (resp->error_code == NULL && resp->status == 403)
	{
		resp->error_code = pstrdup("Forbidden");
		resp->error_message = pstrdup("Access denied; a HEAD answer does not say why "
									  "(wrong secret, missing permission or bucket owner mismatch).");
	}
	dms_http_raise_error(ERROR, psprintf("S3 %s of %s", op, where), req, resp);
}

/* ---------------------------------------------------------------- listing */

/*
 * s3_parse_list
 *		Read a ListBucketResult into page.
 */
static void
s3_parse_list(const DmsHttpRequest *req, const DmsHttpResponse *resp,
			  const char *where, S3ListPage *page)
{
	xmlDocPtr volatile doc = s3_xml_read(resp->body, resp->body_len);
	volatile bool url_encoded = false;
	ListCell   *lc;

	if (doc == NULL)
		s3_unexpected_answer("ListObjectsV2", where, req, resp, "the body is not XML");

	PG_TRY();
	{
		xmlNodePtr	root = xmlDocGetRootElement(doc);
		xmlNodePtr	n;

		if (root == NULL || xmlStrcmp(root->name, (const xmlChar *) "ListBucketResult") != 0)
			s3_unexpected_answer("ListObjectsV2", where, req, resp,
								 "the body is not a ListBucketResult");
		for (n = root->children; n != NULL; n = n->next)
		{
			if (n->type != XML_ELEMENT_NODE)
				continue;
			if (xmlStrcmp(n->name, (const xmlChar *) "Contents") == 0)
			{
				S3Object   *obj = palloc0(sizeof(S3Object));

				obj->key = s3_xml_text(s3_xml_child(n, "Key"));
				obj->size = s3_parse_int64(s3_xml_text(s3_xml_child(n, "Size")));
				obj->last_modified =
					s3_parse_iso8601(s3_xml_text(s3_xml_child(n, "LastModified")));
				obj->etag = s3_strip_etag(s3_xml_text(s3_xml_child(n, "ETag")));
				if (obj->key == NULL)
					s3_unexpected_answer("ListObjectsV2", where, req, resp,
										 "an entry has no Key");
				page->objects = lappend(page->objects, obj);
			}
			else if (xmlStrcmp(n->name, (const xmlChar *) "IsTruncated") == 0)
				page->truncated = (pg_strcasecmp(s3_xml_text(n), "true") == 0);
			else if (xmlStrcmp(n->name, (const xmlChar *) "NextContinuationToken") == 0)
				page->next_token = s3_xml_text(n);
			else if (xmlStrcmp(n->name, (const xmlChar *) "EncodingType") == 0)
				url_encoded = (pg_strcasecmp(s3_xml_text(n), "url") == 0);
		}
	}
	PG_FINALLY();
	{
		xmlFreeDoc(doc);
	}
	PG_END_TRY();

	/* servers that ignore encoding-type=url do not echo it: keys are raw */
	if (url_encoded)
		foreach(lc, page->objects)
		{
			S3Object   *obj = (S3Object *) lfirst(lc);

			obj->key = s3_url_decode(obj->key);
		}

	if (page->truncated && (page->next_token == NULL || page->next_token[0] == '\0'))
		s3_unexpected_answer("ListObjectsV2", where, req, resp,
							 "IsTruncated is true but there is no NextContinuationToken");
}

/*
 * s3_list_objects_page
 *		One ListObjectsV2 request.
 */
void
s3_list_objects_page(const DmsEndpoint *ep, const char *bucket,
					 const char *prefix, const char *start_after,
					 const char *continuation_token, int page_size,
					 S3ListPage *page)
{
	S3Target	t;
	S3Headers	hs;
	StringInfoData url;
	DmsHttpRequest req;
	DmsHttpResponse *resp;
	char	   *where;

	memset(page, 0, sizeof(*page));
	if (page_size <= 0 || page_size > S3_MAX_LIST_PAGE)
		page_size = S3_MAX_LIST_PAGE;

	s3_target_init(&t, ep, bucket);
	where = s3_where(&t, prefix);

	/* parameters in canonical (sorted) order, values RFC 3986-encoded */
	initStringInfo(&url);
	appendStringInfoString(&url, s3_target_url(&t, NULL));
	appendStringInfoString(&url, "?");
	if (continuation_token != NULL && continuation_token[0] != '\0')
		appendStringInfo(&url, "continuation-token=%s&",
						 aws_uri_encode(continuation_token, true));
	appendStringInfo(&url, "encoding-type=url&list-type=2&max-keys=%d", page_size);
	if (prefix != NULL && prefix[0] != '\0')
		appendStringInfo(&url, "&prefix=%s", aws_uri_encode(prefix, true));
	if ((continuation_token == NULL || continuation_token[0] == '\0') &&
		start_after != NULL && start_after[0] != '\0')
		appendStringInfo(&url, "&start-after=%s", aws_uri_encode(start_after, true));

	s3_common_headers(&t, &hs);
	s3_request_init(&req, &t, "GET", url.data, &hs, NULL, 0, s3_credentials(&t));
	req.max_response_bytes = 64 * 1024 * 1024;
	resp = dms_http_request(&req);
	if (!resp->ok)
		s3_raise("ListObjectsV2", where, &req, resp);
	s3_parse_list(&req, resp, where, page);
}

/*
 * s3_list_objects
 *		Every key under prefix after start_after, following continuation
 *		tokens, at most max_keys (0: all).
 */
List *
s3_list_objects(const DmsEndpoint *ep, const char *bucket, const char *prefix,
				const char *start_after, int64 max_keys, int page_size)
{
	List	   *result = NIL;
	char	   *token = NULL;

	if (page_size <= 0 || page_size > S3_MAX_LIST_PAGE)
		page_size = S3_MAX_LIST_PAGE;

	for (;;)
	{
		S3ListPage	page;
		int			ask = page_size;

		if (max_keys > 0)
		{
			int64		left = max_keys - list_length(result);

			if (left <= 0)
				break;
			ask = (int) Min((int64) page_size, left);
		}
		CHECK_FOR_INTERRUPTS();
		s3_list_objects_page(ep, bucket, prefix, start_after, token, ask, &page);
		result = list_concat(result, page.objects);
		if (!page.truncated)
			break;
		token = page.next_token;
	}
	if (max_keys > 0 && list_length(result) > max_keys)
		result = list_truncate(result, (int) max_keys);
	return result;
}

/* ---------------------------------------------------------------- objects */

/*
 * s3_object_from_headers
 *		Fill obj from the headers of a HeadObject (or GetObject) answer.
 */
static void
s3_object_from_headers(const DmsHttpResponse *resp, const char *key, S3Object *obj)
{
	memset(obj, 0, sizeof(*obj));
	obj->key = pstrdup(key);
	obj->size = s3_parse_int64(dms_http_response_header(resp, "Content-Length"));
	obj->etag = s3_strip_etag(dms_http_response_header(resp, "ETag"));
	obj->last_modified = s3_parse_http_date(dms_http_response_header(resp, "Last-Modified"));
	if (dms_http_response_header(resp, "Content-Type") != NULL)
		obj->content_type = pstrdup(dms_http_response_header(resp, "Content-Type"));
}

/*
 * s3_head_object
 *		HeadObject; false if the key does not exist and missing_ok.
 */
bool
s3_head_object(const DmsEndpoint *ep, const char *bucket, const char *key,
			   bool missing_ok, S3Object *obj)
{
	S3Target	t;
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse *resp;

	s3_check_key(key);
	s3_target_init(&t, ep, bucket);
	s3_common_headers(&t, &hs);
	s3_request_init(&req, &t, "HEAD", s3_target_url(&t, key), &hs, NULL, 0,
					s3_credentials(&t));
	resp = dms_http_request(&req);
	if (!resp->ok)
	{
		if (missing_ok && resp->status == 404)
			return false;
		s3_raise("HeadObject", s3_where(&t, key), &req, resp);
	}
	s3_object_from_headers(resp, key, obj);
	if (obj->size < 0)
		s3_unexpected_answer("HeadObject", s3_where(&t, key), &req, resp,
							 "no valid Content-Length");
	return true;
}

/*
 * A GetObject started by s3_get_object_start and ended by
 * s3_get_object_finish: the request runs in an HTTP queue of its own (in
 * a memory context of its own) while the caller does other work.
 */
struct S3GetObject
{
	MemoryContext cxt;			/* the request, its queue */
	MemoryContext caller_cxt;	/* where the answer goes */
	S3Target	t;
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse resp;
	DmsHttpQueue *queue;
	char	   *where;
	int64		range_start;
	int64		range_end;
};

/*
 * s3_get_object_start
 *		Check and start a GetObject (see s3_get_object).
 */
S3GetObject *
s3_get_object_start(const DmsEndpoint *ep, const char *bucket, const char *key,
					int64 range_start, int64 range_end)
{
	MemoryContext cxt;
	MemoryContext old;
	S3GetObject *g;

	s3_check_key(key);
	if (range_end >= 0 && range_start > range_end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid byte range " INT64_FORMAT "-" INT64_FORMAT,
						range_start, range_end),
				 errdetail("range_end must not be smaller than range_start.")));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "dms_stream S3 GetObject",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	g = palloc0(sizeof(S3GetObject));
	g->cxt = cxt;
	g->caller_cxt = old;
	g->range_start = range_start;
	g->range_end = range_end;
	s3_target_init(&g->t, ep, bucket);
	g->where = s3_where(&g->t, key);
	s3_common_headers(&g->t, &g->hs);
	if (range_start >= 0 || range_end >= 0)
		s3_hdr(&g->hs, "Range", range_end >= 0 ?
			   psprintf("bytes=" INT64_FORMAT "-" INT64_FORMAT,
						Max(range_start, 0), range_end) :
			   psprintf("bytes=" INT64_FORMAT "-", range_start));
	s3_request_init(&g->req, &g->t, "GET", s3_target_url(&g->t, key), &g->hs, NULL, 0,
					s3_credentials(&g->t));
	g->req.max_response_bytes = MaxAllocSize - VARHDRSZ - 1;
	g->queue = dms_http_queue_create();
	/* the answer is built in the caller's context */
	MemoryContextSwitchTo(old);
	dms_http_queue_submit(g->queue, &g->req, &g->resp, g);
	return g;
}

/*
 * s3_get_object_cancel
 *		Abandon a GetObject that was started (nothing is returned).
 */
void
s3_get_object_cancel(S3GetObject *g)
{
	if (g->resp.body != NULL)
		pfree(g->resp.body);
	MemoryContextDelete(g->cxt);
}

/*
 * s3_get_object_finish
 *		Wait for a GetObject started by s3_get_object_start; the bytes as
 *		s3_get_object returns them.
 */
char *
s3_get_object_finish(S3GetObject *g, size_t *len)
{
	DmsHttpResponse *resp = &g->resp;
	DmsHttpRequest *req = &g->req;
	const char *where = g->where;
	int64		range_start = g->range_start;
	int64		range_end = g->range_end;
	void	   *done;
	char	   *body;

	while (dms_http_queue_in_flight(g->queue) > 0)
		(void) dms_http_queue_poll(g->queue, true, &done, 1);

	if (!resp->ok)
	{
		if (resp->curl_code == CURLE_WRITE_ERROR && resp->status >= 200 && resp->status < 300)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("S3 GetObject of %s failed: the object is larger than 1 GB", where),
					 errhint("Read it in pieces with a byte range, or with the streaming "
							 "functions dms_stream.s3_object_checksum and "
							 "dms_stream.s3_copy_object_streamed.")));
		s3_raise("GetObject", where, req, resp);
	}

	/*
	 * A server may send more than the range asked for (the whole object
	 * with 200, or a wider Content-Range): keep the bytes asked for.
	 */
	if (range_start >= 0 || range_end >= 0)
	{
		int64		want = Max(range_start, 0);
		int64		first = 0;
		int64		last;
		int64		offset;
		const char *crange = dms_http_response_header(resp, "Content-Range");

		if (resp->status == 206 && crange != NULL && strncmp(crange, "bytes ", 6) == 0)
		{
			char	   *end;

			first = strtoi64(crange + 6, &end, 10);
			if (*end != '-')
				first = want;
		}
		else if (resp->status == 206)
			first = want;
		last = first + (int64) resp->body_len - 1;
		if (range_end >= 0)
			last = Min(last, range_end);
		offset = want - first;
		if (offset < 0 || (offset > (int64) resp->body_len) || last < want - 1)
			s3_unexpected_answer("GetObject", where, req, resp,
								 psprintf("the answer does not hold the requested range (Content-Range %s)",
										  crange ? crange : "none"));
		*len = (size_t) (last - want + 1);
		if (offset > 0)
			memmove(resp->body, resp->body + offset, *len);
	}
	else
		*len = resp->body_len;
	body = resp->body;
	MemoryContextDelete(g->cxt);
	return body;
}

/*
 * s3_get_object
 *		GetObject, waiting for the answer; see s3.h.
 */
char *
s3_get_object(const DmsEndpoint *ep, const char *bucket, const char *key,
			  int64 range_start, int64 range_end, size_t *len)
{
	return s3_get_object_finish(s3_get_object_start(ep, bucket, key, range_start, range_end),
								len);
}

/*
 * s3_put_target
 *		PutObject through a target; returns the ETag without quotes.
 */
static char *
s3_put_target(const S3Target *t, const char *key, const char *data, size_t len,
			  const char *content_type)
{
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse *resp;
	const char *etag;

	s3_common_headers(t, &hs);
	s3_write_headers(t, &hs, content_type);
	s3_request_init(&req, t, "PUT", s3_target_url(t, key), &hs, data, len,
					s3_credentials(t));
	req.max_response_bytes = 1024 * 1024;
	resp = dms_http_request(&req);
	if (!resp->ok)
		s3_raise("PutObject", s3_where(t, key), &req, resp);
	etag = dms_http_response_header(resp, "ETag");
	if (etag == NULL)
		s3_unexpected_answer("PutObject", s3_where(t, key), &req, resp, "no ETag header");
	return s3_strip_etag(etag);
}

/*
 * s3_put_object
 *		PutObject.
 */
char *
s3_put_object(const DmsEndpoint *ep, const char *bucket, const char *key,
			  const char *data, size_t len, const char *content_type)
{
	S3Target	t;

	s3_check_key(key);
	s3_check_key_segments("S3 object key", key, 0);
	s3_target_init(&t, ep, bucket);
	return s3_put_target(&t, key, data, len, content_type);
}

/*
 * s3_delete_object
 *		DeleteObject; a missing key is not an error.
 */
void
s3_delete_object(const DmsEndpoint *ep, const char *bucket, const char *key)
{
	S3Target	t;
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse *resp;

	s3_check_key(key);
	s3_check_key_segments("S3 object key", key, 0);
	s3_target_init(&t, ep, bucket);
	s3_common_headers(&t, &hs);
	s3_request_init(&req, &t, "DELETE", s3_target_url(&t, key), &hs, NULL, 0,
					s3_credentials(&t));
	req.max_response_bytes = 1024 * 1024;
	resp = dms_http_request(&req);
	if (!resp->ok &&
		!(resp->status == 404 && (resp->error_code == NULL ||
								  strcmp(resp->error_code, "NoSuchKey") == 0)))
		s3_raise("DeleteObject", s3_where(&t, key), &req, resp);
}

/*
 * s3_parse_uploads
 *		Parse a ListMultipartUploadsResult page: append the uploads to
 *		*result, set the markers of the next page (NULL when it is the
 *		last).
 */
static void
s3_parse_uploads(const DmsHttpRequest *req, const DmsHttpResponse *resp, const char *where,
				 List **result, char **key_marker, char **id_marker)
{
	xmlDocPtr volatile doc = s3_xml_read(resp->body, resp->body_len);
	List	   *volatile page = NIL;
	volatile bool url_encoded = false;
	volatile bool truncated = false;
	ListCell   *lc;

	if (doc == NULL)
		s3_unexpected_answer("ListMultipartUploads", where, req, resp, "the body is not XML");
	*key_marker = NULL;
	*id_marker = NULL;
	PG_TRY();
	{
		xmlNodePtr	root = xmlDocGetRootElement(doc);
		xmlNodePtr	n;

		if (root == NULL || xmlStrcmp(root->name, (const xmlChar *) "ListMultipartUploadsResult") != 0)
			s3_unexpected_answer("ListMultipartUploads", where, req, resp,
								 "the body is not a ListMultipartUploadsResult");
		for (n = root->children; n != NULL; n = n->next)
		{
			if (n->type != XML_ELEMENT_NODE)
				continue;
			if (xmlStrcmp(n->name, (const xmlChar *) "Upload") == 0)
			{
				S3MultipartUpload *u = palloc0(sizeof(S3MultipartUpload));

				u->key = s3_xml_text(s3_xml_child(n, "Key"));
				u->upload_id = s3_xml_text(s3_xml_child(n, "UploadId"));
				if (u->key == NULL || u->upload_id == NULL)
					s3_unexpected_answer("ListMultipartUploads", where, req, resp,
										 "an Upload has no Key or UploadId");
				page = lappend(page, u);
			}
			else if (xmlStrcmp(n->name, (const xmlChar *) "IsTruncated") == 0)
				truncated = (pg_strcasecmp(s3_xml_text(n), "true") == 0);
			else if (xmlStrcmp(n->name, (const xmlChar *) "NextKeyMarker") == 0)
				*key_marker = s3_xml_text(n);
			else if (xmlStrcmp(n->name, (const xmlChar *) "NextUploadIdMarker") == 0)
				*id_marker = s3_xml_text(n);
			else if (xmlStrcmp(n->name, (const xmlChar *) "EncodingType") == 0)
				url_encoded = (pg_strcasecmp(s3_xml_text(n), "url") == 0);
		}
	}
	PG_FINALLY();
	{
		xmlFreeDoc(doc);
	}
	PG_END_TRY();

	foreach(lc, page)
	{
		S3MultipartUpload *u = (S3MultipartUpload *) lfirst(lc);

		if (url_encoded)
			u->key = s3_url_decode(u->key);
		*result = lappend(*result, u);
	}
	if (url_encoded && *key_marker != NULL)
		*key_marker = s3_url_decode(*key_marker);
	if (!truncated)
		*key_marker = *id_marker = NULL;
	else if (*key_marker == NULL || (*key_marker)[0] == '\0')
		s3_unexpected_answer("ListMultipartUploads", where, req, resp,
							 "IsTruncated is true but there is no NextKeyMarker");
}

/*
 * s3_list_multipart_uploads
 *		The incomplete multipart uploads of keys under prefix (every page),
 *		as a List of S3MultipartUpload *.  A server that does not implement
 *		ListMultipartUploads (501 NotImplemented, 405) gives NIL with
 *		*supported false.
 */
List *
s3_list_multipart_uploads(const DmsEndpoint *ep, const char *bucket, const char *prefix,
						  bool *supported)
{
	S3Target	t;
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse *resp;
	List	   *result = NIL;
	char	   *key_marker = NULL;
	char	   *id_marker = NULL;
	char	   *where;

	*supported = true;
	s3_target_init(&t, ep, bucket);
	where = s3_where(&t, prefix);
	do
	{
		StringInfoData url;

		/* parameters in canonical (sorted) order */
		initStringInfo(&url);
		appendStringInfo(&url, "%s?encoding-type=url", s3_target_url(&t, NULL));
		if (key_marker != NULL)
			appendStringInfo(&url, "&key-marker=%s", aws_uri_encode(key_marker, true));
		if (prefix != NULL && prefix[0] != '\0')
			appendStringInfo(&url, "&prefix=%s", aws_uri_encode(prefix, true));
		if (id_marker != NULL && id_marker[0] != '\0')
			appendStringInfo(&url, "&upload-id-marker=%s", aws_uri_encode(id_marker, true));
		appendStringInfoString(&url, "&uploads");
		s3_common_headers(&t, &hs);
		s3_request_init(&req, &t, "GET", url.data, &hs, NULL, 0, s3_credentials(&t));
		req.max_response_bytes = 64 * 1024 * 1024;
		resp = dms_http_request(&req);
		if (!resp->ok && (resp->status == 501 || resp->status == 405 ||
						  (resp->error_code && strcmp(resp->error_code, "NotImplemented") == 0)))
		{
			*supported = false;
			return NIL;
		}
		if (!resp->ok)
			s3_raise("ListMultipartUploads", where, &req, resp);
		s3_parse_uploads(&req, resp, where, &result, &key_marker, &id_marker);
	} while (key_marker != NULL);
	return result;
}

/*
 * s3_abort_multipart_upload
 *		AbortMultipartUpload of key's upload upload_id; an upload that is
 *		gone already (404 NoSuchUpload) is not an error.
 */
void
s3_abort_multipart_upload(const DmsEndpoint *ep, const char *bucket, const char *key,
						  const char *upload_id)
{
	S3Target	t;
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse *resp;

	s3_check_key(key);
	s3_check_key_segments("S3 object key", key, 0);
	s3_target_init(&t, ep, bucket);
	s3_common_headers(&t, &hs);
	s3_request_init(&req, &t, "DELETE",
					psprintf("%s?uploadId=%s", s3_target_url(&t, key), aws_uri_encode(upload_id, true)),
					&hs, NULL, 0, s3_credentials(&t));
	req.max_response_bytes = 1024 * 1024;
	resp = dms_http_request(&req);
	if (!resp->ok && resp->status != 404)
		s3_raise("AbortMultipartUpload", s3_where(&t, key), &req, resp);
}

/* ---------------------------------------------------------------- reader */

/*
 * s3_reader_changed
 *		The object was replaced between two ranges: say so.
 */
static void
s3_reader_changed(S3Reader *r, int64 offset, const char *now)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("S3 object %s changed while it was being read", r->where),
			 errdetail("Reading began with ETag \"%s\" and size " INT64_FORMAT
					   "; at byte " INT64_FORMAT " the object %s.",
					   r->object.etag ? r->object.etag : "",
					   r->object.size, offset, now),
			 errhint("Objects must not be overwritten while dms_stream reads them; "
					 "read it again once the writer has finished.")));
}

/*
 * s3_reader_fetch
 *		Fetch the next ranges (at most S3_READAHEAD, concurrently); false at
 *		the end of the object.
 */
static bool
s3_reader_fetch(S3Reader *r)
{
	MemoryContext old;
	DmsHttpRequest reqs[S3_READAHEAD];
	DmsHttpResponse resps[S3_READAHEAD];
	S3Headers	hs[S3_READAHEAD];
	int64		starts[S3_READAHEAD];
	int64		lens[S3_READAHEAD];
	const AwsCredentials *creds;
	int			n = 0;
	int			i;

	r->nready = 0;
	r->cur = 0;
	r->pos = 0;
	if (r->next_fetch >= r->object.size)
		return false;

	MemoryContextReset(r->fetch_cxt);
	old = MemoryContextSwitchTo(r->fetch_cxt);
	creds = s3_credentials(&r->target);
	while (n < S3_READAHEAD && r->next_fetch < r->object.size)
	{
		int64		start = r->next_fetch;
		int64		len = Min(r->chunk_bytes, r->object.size - start);

		starts[n] = start;
		lens[n] = len;
		s3_common_headers(&r->target, &hs[n]);
		s3_hdr(&hs[n], "Range", psprintf("bytes=" INT64_FORMAT "-" INT64_FORMAT,
										 start, start + len - 1));
		s3_hdr(&hs[n], "If-Match", r->if_match);
		s3_request_init(&reqs[n], &r->target, "GET", r->url, &hs[n], NULL, 0, creds);
		reqs[n].max_response_bytes = (size_t) len;
		r->next_fetch += len;
		n++;
	}
	dms_http_perform(reqs, resps, n);
	r->requests += n;

	for (i = 0; i < n; i++)
	{
		DmsHttpResponse *resp = &resps[i];
		const char *etag;
		const char *crange;
		char	   *stripped;

		if (!resp->ok)
		{
			if (resp->status == 412 || resp->status == 416)
				s3_reader_changed(r, starts[i],
								  resp->status == 412 ? "no longer matched that ETag" :
								  "was shorter");
			if (resp->curl_code == CURLE_WRITE_ERROR && resp->status >= 200 && resp->status < 300)
				s3_unexpected_answer("GetObject", r->where, &reqs[i], resp,
									 "more bytes than the requested range");
			s3_raise("GetObject", r->where, &reqs[i], resp);
		}
		etag = dms_http_response_header(resp, "ETag");
		stripped = s3_strip_etag(etag);
		if (stripped == NULL || r->object.etag == NULL ||
			strcmp(stripped, r->object.etag) != 0)
			s3_reader_changed(r, starts[i],
							  psprintf("had ETag \"%s\"", stripped ? stripped : ""));
		crange = dms_http_response_header(resp, "Content-Range");
		if (resp->status == 206 && crange != NULL)
		{
			const char *slash = strrchr(crange, '/');

			if (slash != NULL && strcmp(slash + 1, "*") != 0 &&
				s3_parse_int64(slash + 1) != r->object.size)
				s3_reader_changed(r, starts[i],
								  psprintf("had size %s", slash + 1));
		}
		else if (!(resp->status == 200 && starts[i] == 0 && lens[i] == r->object.size))
			s3_unexpected_answer("GetObject", r->where, &reqs[i], resp,
								 "the byte range was not honoured");
		if ((int64) resp->body_len != lens[i])
			s3_reader_changed(r, starts[i],
							  psprintf("returned %zu bytes instead of " INT64_FORMAT,
									   resp->body_len, lens[i]));
		r->data[i] = resp->body;
		r->len[i] = resp->body_len;
	}
	MemoryContextSwitchTo(old);
	r->nready = n;
	return true;
}

/*
 * s3_reader_open
 *		HeadObject, then get ready to read the object in chunks.
 */
S3Reader *
s3_reader_open(const DmsEndpoint *ep, const char *bucket, const char *key,
			   int64 chunk_bytes)
{
	MemoryContext cxt;
	MemoryContext old;
	S3Reader   *r;

	s3_check_key(key);
	if (chunk_bytes <= 0)
		chunk_bytes = S3_DEFAULT_CHUNK_BYTES;
	if (chunk_bytes < S3_MIN_CHUNK_BYTES || chunk_bytes > S3_MAX_CHUNK_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk size " INT64_FORMAT " is out of range", chunk_bytes),
				 errdetail("The chunk size must be between " INT64_FORMAT
						   " bytes and " INT64_FORMAT " bytes.",
						   S3_MIN_CHUNK_BYTES, S3_MAX_CHUNK_BYTES)));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "dms_stream S3 reader",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	r = palloc0(sizeof(S3Reader));
	r->cxt = cxt;
	r->fetch_cxt = AllocSetContextCreate(cxt, "dms_stream S3 reader ranges",
										 ALLOCSET_DEFAULT_SIZES);
	s3_target_init(&r->target, ep, bucket);
	r->url = s3_target_url(&r->target, key);
	r->where = s3_where(&r->target, key);
	r->chunk_bytes = chunk_bytes;
	s3_head_object(ep, bucket, key, false, &r->object);
	if (r->object.etag == NULL || r->object.etag[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("S3 HeadObject of %s failed: no ETag in the answer", r->where),
				 errhint("Check that the endpoint URL points to an S3-compatible service.")));
	r->if_match = psprintf("\"%s\"", r->object.etag);
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * s3_reader_next_chunk
 *		The next piece of the object, zero-copy.
 */
bool
s3_reader_next_chunk(S3Reader *r, const char **data, size_t *len)
{
	while (r->cur >= r->nready || r->pos >= r->len[r->cur])
	{
		if (r->cur < r->nready)
		{
			r->cur++;
			r->pos = 0;
			continue;
		}
		CHECK_FOR_INTERRUPTS();
		if (!s3_reader_fetch(r))
			return false;
	}
	*data = r->data[r->cur] + r->pos;
	*len = r->len[r->cur] - r->pos;
	r->pos = r->len[r->cur];
	return true;
}

/*
 * s3_reader_read
 *		Copy up to len bytes; 0 at the end of the object.
 */
size_t
s3_reader_read(S3Reader *r, void *buf, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		size_t		avail;
		size_t		n;

		if (r->cur >= r->nready || r->pos >= r->len[r->cur])
		{
			if (r->cur < r->nready)
			{
				r->cur++;
				r->pos = 0;
				continue;
			}
			CHECK_FOR_INTERRUPTS();
			if (!s3_reader_fetch(r))
				break;
			continue;
		}
		avail = r->len[r->cur] - r->pos;
		n = Min(avail, len - done);
		memcpy((char *) buf + done, r->data[r->cur] + r->pos, n);
		r->pos += n;
		done += n;
	}
	return done;
}

/*
 * s3_reader_object
 *		The object as HeadObject described it at open.
 */
const S3Object *
s3_reader_object(const S3Reader *r)
{
	return &r->object;
}

/*
 * s3_reader_requests
 *		GetObject requests made so far.
 */
int
s3_reader_requests(const S3Reader *r)
{
	return r->requests;
}

/*
 * s3_reader_close
 *		Release the reader's memory.
 */
void
s3_reader_close(S3Reader *r)
{
	MemoryContextDelete(r->cxt);
}

/* ---------------------------------------------------------------- uploads */

/*
 * s3_upload_set_creds
 *		Keep a copy of the credentials the upload is signed with.
 */
static void
s3_upload_set_creds(S3Upload *u, const AwsCredentials *creds)
{
	if (u->creds.access_key_id != NULL &&
		strcmp(u->creds.access_key_id, creds->access_key_id) == 0 &&
		strcmp(u->creds.secret_access_key, creds->secret_access_key) == 0 &&
		((u->creds.session_token == NULL && creds->session_token == NULL) ||
		 (u->creds.session_token != NULL && creds->session_token != NULL &&
		  strcmp(u->creds.session_token, creds->session_token) == 0)))
		return;
	u->creds.access_key_id = MemoryContextStrdup(u->cxt, creds->access_key_id);
	u->creds.secret_access_key = MemoryContextStrdup(u->cxt, creds->secret_access_key);
	u->creds.session_token = creds->session_token ?
		MemoryContextStrdup(u->cxt, creds->session_token) : NULL;
}

/*
 * s3_upload_unlink
 *		Take an entry out of the list of open uploads.
 */
static void
s3_upload_unlink(S3Upload *u)
{
	S3Upload  **p;

	for (p = &s3_uploads; *p != NULL; p = &(*p)->next)
		if (*p == u)
		{
			*p = u->next;
			break;
		}
	u->next = NULL;
}

/*
 * s3_upload_abort_request
 *		Send AbortMultipartUpload; a failure is a WARNING.  Runs in a
 *		temporary memory context.
 */
static void
s3_upload_abort_request(S3Upload *u)
{
	DmsHttpRequest req;
	DmsHttpResponse resp;
	AwsHeader	hdr[1];

	memset(&req, 0, sizeof(req));
	req.method = "DELETE";
	req.url = u->abort_url;
	if (u->owner != NULL)
	{
		hdr[0].name = "x-amz-expected-bucket-owner";
		hdr[0].value = u->owner;
		req.headers = hdr;
		req.nheaders = 1;
	}
	req.credentials = &u->creds;
	req.service = "s3";
	req.region = u->region;
	req.max_retries = 2;
	req.timeout_ms = 15000;
	req.max_response_bytes = 1024 * 1024;

	dms_http_perform(&req, &resp, 1);

	/* NoSuchUpload: it is gone already */
	if (resp.ok || resp.status == 404)
	{
		elog(DEBUG1, "dms_stream: aborted multipart upload %s of %s", u->upload_id, u->what);
		return;
	}
	ereport(WARNING,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not abort the S3 multipart upload of %s", u->what),
			 resp.status == 0 ?
			 errdetail_internal("DELETE %s: %s; upload id %s.", u->abort_url,
								resp.transport_error ? resp.transport_error : "no answer",
								u->upload_id) :
			 errdetail_internal("DELETE %s answered HTTP status %ld%s%s%s%s; request id %s; upload id %s.",
								u->abort_url, resp.status,
								resp.error_code ? ", AWS error " : "",
								resp.error_code ? resp.error_code : "",
								resp.error_message ? ": " : "",
								resp.error_message ? resp.error_message : "",
								resp.request_id ? resp.request_id : "none",
								u->upload_id),
			 errhint("The incomplete upload keeps its parts (and their storage cost) until "
					 "it is aborted; a bucket lifecycle rule with "
					 "AbortIncompleteMultipartUpload removes such uploads.")));
}

/*
 * s3_upload_abort
 *		Abort an open upload, best effort: any error becomes a WARNING.  The
 *		entry is freed; a live writer is told its upload is gone.
 */
static void
s3_upload_abort(S3Upload *u)
{
	MemoryContext old = CurrentMemoryContext;
	MemoryContext work;
	uint32		save_holdoff = InterruptHoldoffCount;
	uint32		save_cancel_holdoff = QueryCancelHoldoffCount;

	s3_upload_unlink(u);
	if (u->writer != NULL)
	{
		u->writer->upload = NULL;
		if (u->writer->state == S3W_OPEN)
			u->writer->state = S3W_ABORTED;
	}

	work = AllocSetContextCreate(TopMemoryContext, "dms_stream S3 abort",
								 ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(work);
	PG_TRY();
	{
		s3_upload_abort_request(u);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * errfinish zeroes the holdoff counts; this may run inside
		 * AbortTransaction, which holds interrupts and resumes them later.
		 */
		InterruptHoldoffCount = save_holdoff;
		QueryCancelHoldoffCount = save_cancel_holdoff;
		MemoryContextSwitchTo(work);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not abort the S3 multipart upload of %s", u->what),
				 errdetail_internal("%s; upload id %s.", edata->message, u->upload_id),
				 errhint("A bucket lifecycle rule with AbortIncompleteMultipartUpload "
						 "removes incomplete uploads.")));
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	MemoryContextDelete(u->cxt);
}

/*
 * s3_upload_defer
 *		Take an open upload off the list and queue its abort for
 *		s3_abort_deferred_uploads; no network I/O, safe in callbacks.  A live
 *		writer is told its upload is gone.
 */
static void
s3_upload_defer(S3Upload *u)
{
	s3_upload_unlink(u);
	if (u->writer != NULL)
	{
		u->writer->upload = NULL;
		if (u->writer->state == S3W_OPEN)
			u->writer->state = S3W_ABORTED;
		u->writer = NULL;
	}
	u->next = s3_deferred;
	s3_deferred = u;
}

/*
 * s3_abort_deferred_uploads
 *		Send AbortMultipartUpload for every deferred upload (best effort: a
 *		failing answer is a WARNING).  An error raised meanwhile (a query
 *		cancel) puts the upload back on the list and is re-raised.  Returns
 *		the number of uploads handled.  Not for callbacks.
 */
int
s3_abort_deferred_uploads(void)
{
	volatile int n = 0;

	if (s3_draining)
		return 0;
	while (s3_deferred != NULL)
	{
		S3Upload   *u = s3_deferred;
		MemoryContext old = CurrentMemoryContext;
		MemoryContext work = AllocSetContextCreate(TopMemoryContext, "dms_stream S3 abort",
												   ALLOCSET_SMALL_SIZES);

		s3_deferred = u->next;
		u->next = NULL;
		s3_draining = true;
		MemoryContextSwitchTo(work);
		PG_TRY();
		{
			s3_upload_abort_request(u);
		}
		PG_CATCH();
		{
			s3_draining = false;
			MemoryContextSwitchTo(old);
			MemoryContextDelete(work);
			u->next = s3_deferred;
			s3_deferred = u;
			PG_RE_THROW();
		}
		PG_END_TRY();
		s3_draining = false;
		MemoryContextSwitchTo(old);
		MemoryContextDelete(work);
		MemoryContextDelete(u->cxt);
		n++;
	}
	return n;
}

/*
 * s3_deferred_uploads
 *		The number of uploads whose abort is deferred (for tests and logs).
 */
int
s3_deferred_uploads(void)
{
	int			n = 0;
	S3Upload   *u;

	for (u = s3_deferred; u != NULL; u = u->next)
		n++;
	return n;
}

/*
 * s3_exit_callback
 *		At process exit (before the open transaction is aborted): abort the
 *		open and deferred uploads, swallowing any error.
 */
static void
s3_exit_callback(int code, Datum arg)
{
	while (s3_uploads != NULL)
		s3_upload_defer(s3_uploads);
	while (s3_deferred != NULL)
	{
		PG_TRY();
		{
			(void) s3_abort_deferred_uploads();
		}
		PG_CATCH();
		{
			S3Upload   *u = s3_deferred;

			FlushErrorState();
			s3_draining = false;
			/* give up on this one */
			if (u != NULL)
			{
				s3_deferred = u->next;
				MemoryContextDelete(u->cxt);
			}
		}
		PG_END_TRY();
	}
}

/*
 * s3_xact_callback
 *		Defer the abort of uploads left open when the transaction ends.
 */
static void
s3_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			while (s3_uploads != NULL)
				s3_upload_defer(s3_uploads);
			break;
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			while (s3_uploads != NULL)
			{
				ereport(WARNING,
						(errcode(ERRCODE_WARNING),
						 errmsg("S3 multipart upload of %s was neither completed nor aborted; aborting it",
								s3_uploads->what),
						 errhint("Call s3_writer_close or s3_writer_abort before the end of the transaction.")));
				s3_upload_defer(s3_uploads);
			}
			break;
		default:
			break;
	}
}

/*
 * s3_subxact_callback
 *		Defer the abort of the uploads of an aborted subtransaction; hand
 *		those of a committed one to its parent.
 */
static void
s3_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	S3Upload   *u;
	S3Upload   *next;

	for (u = s3_uploads; u != NULL; u = next)
	{
		next = u->next;
		if (u->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			s3_upload_defer(u);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			u->subid = parentSubid;
	}
}

/*
 * s3_writer_reset_cb
 *		The writer's memory is going away: detach its upload entry.
 */
static void
s3_writer_reset_cb(void *arg)
{
	S3Writer   *w = (S3Writer *) arg;

	if (w->upload != NULL)
		w->upload->writer = NULL;
	w->upload = NULL;
}

/* ---------------------------------------------------------------- writer */

/*
 * s3_writer_part_size
 *		Size of part number n: the base size, doubled every 1,000 parts,
 *		at most 5 GiB.
 */
static int64
s3_writer_part_size(const S3Writer *w, int n)
{
	int64		size = w->base_part_bytes;
	int			doublings = (n - 1) / S3_PART_GROWTH_EVERY;

	while (doublings-- > 0 && size < S3_MAX_PART_BYTES)
		size *= 2;
	return Min(size, S3_MAX_PART_BYTES);
}

/*
 * s3_writer_in_flight
 *		Parts to buffer before uploading them together: as many as fit in
 *		the budget, at least one.
 */
static int
s3_writer_in_flight(const S3Writer *w)
{
	int64		size = s3_writer_part_size(w, w->nparts + 1);
	int64		n = w->budget / Max(size, 1);

	return (int) Max(1, Min(n, (int64) w->max_in_flight));
}

/*
 * s3_writer_part_op
 *		"UploadPart (part N)" for messages.
 */
static char *
s3_writer_part_op(int number)
{
	return psprintf("UploadPart (part %d)", number);
}

/*
 * s3_writer_fail
 *		A request of the writer failed: abort the upload, then raise.
 */
static void
s3_writer_fail(S3Writer *w, const char *op, const char *where,
			   const DmsHttpRequest *req, DmsHttpResponse *resp)
{
	w->state = S3W_FAILED;
	if (w->upload != NULL)
		s3_upload_abort(w->upload);
	s3_raise(op, where, req, resp);
}

/*
 * s3_writer_start_multipart
 *		CreateMultipartUpload and record the upload for aborting it.
 */
static void
s3_writer_start_multipart(S3Writer *w)
{
	static const char *const names[] = {"UploadId"};
	MemoryContext old = MemoryContextSwitchTo(w->cxt);
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse *resp;
	char	   *values[1];
	char	   *root;
	const AwsCredentials *creds = s3_credentials(&w->target);
	MemoryContext ucxt;
	S3Upload   *u;

	s3_common_headers(&w->target, &hs);
	s3_write_headers(&w->target, &hs, w->content_type);
	s3_request_init(&req, &w->target, "POST", psprintf("%s?uploads", w->url), &hs,
					NULL, 0, creds);
	req.max_response_bytes = 1024 * 1024;
	resp = dms_http_request(&req);
	if (!resp->ok)
		s3_writer_fail(w, "CreateMultipartUpload", w->where, &req, resp);
	root = s3_xml_fields(resp->body, resp->body_len, names, values, 1);
	if (root == NULL || strcmp(root, "InitiateMultipartUploadResult") != 0 ||
		values[0] == NULL || values[0][0] == '\0')
	{
		w->state = S3W_FAILED;
		s3_unexpected_answer("CreateMultipartUpload", w->where, &req, resp,
							 "no InitiateMultipartUploadResult with an UploadId");
	}
	w->upload_id = values[0];

	if (!s3_callbacks_registered)
	{
		RegisterXactCallback(s3_xact_callback, NULL);
		RegisterSubXactCallback(s3_subxact_callback, NULL);
		before_shmem_exit(s3_exit_callback, (Datum) 0);
		s3_callbacks_registered = true;
	}
	ucxt = AllocSetContextCreate(TopMemoryContext, "dms_stream S3 upload",
								 ALLOCSET_SMALL_SIZES);
	u = MemoryContextAllocZero(ucxt, sizeof(S3Upload));
	u->cxt = ucxt;
	u->what = MemoryContextStrdup(ucxt, w->where);
	u->upload_id = MemoryContextStrdup(ucxt, w->upload_id);
	u->abort_url = MemoryContextStrdup(ucxt, psprintf("%s?uploadId=%s", w->url,
													  aws_uri_encode(w->upload_id, true)));
	u->region = MemoryContextStrdup(ucxt, req.region);
	u->owner = w->target.owner ? MemoryContextStrdup(ucxt, w->target.owner) : NULL;
	s3_upload_set_creds(u, creds);
	u->subid = GetCurrentSubTransactionId();
	u->writer = w;
	u->next = s3_uploads;
	s3_uploads = u;
	w->upload = u;

	w->etags = MemoryContextAllocZero(w->cxt, sizeof(char *) * (S3_MAX_PARTS + 1));
	MemoryContextSwitchTo(old);
}

/*
 * s3_writer_flush
 *		Upload the sealed parts, concurrently.
 */
static void
s3_writer_flush(S3Writer *w)
{
	MemoryContext batch;
	MemoryContext old;
	DmsHttpRequest *reqs;
	DmsHttpResponse *resps;
	S3Headers  *hs;
	const AwsCredentials *creds;
	char	   *enc_id;
	int			n = w->npending;
	int			i;

	if (n == 0)
		return;
	batch = AllocSetContextCreate(w->cxt, "dms_stream S3 parts", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(batch);
	reqs = palloc0(sizeof(DmsHttpRequest) * n);
	resps = palloc0(sizeof(DmsHttpResponse) * n);
	hs = palloc0(sizeof(S3Headers) * n);
	creds = s3_credentials(&w->target);
	if (w->upload != NULL)
		s3_upload_set_creds(w->upload, creds);
	enc_id = aws_uri_encode(w->upload_id, true);

	for (i = 0; i < n; i++)
	{
		S3PartBuf  *p = &w->pending[i];

		s3_common_headers(&w->target, &hs[i]);
		s3_request_init(&reqs[i], &w->target, "PUT",
						psprintf("%s?partNumber=%d&uploadId=%s", w->url, p->number, enc_id),
						&hs[i], p->data, p->len, creds);
		reqs[i].max_response_bytes = 1024 * 1024;
	}
	dms_http_perform(reqs, resps, n);

	for (i = 0; i < n; i++)
	{
		S3PartBuf  *p = &w->pending[i];
		const char *etag;

		if (!resps[i].ok)
			s3_writer_fail(w, s3_writer_part_op(p->number), w->where,
						   &reqs[i], &resps[i]);
		etag = dms_http_response_header(&resps[i], "ETag");
		if (etag == NULL || etag[0] == '\0')
		{
			w->state = S3W_FAILED;
			if (w->upload != NULL)
				s3_upload_abort(w->upload);
			s3_unexpected_answer(s3_writer_part_op(p->number), w->where,
								 &reqs[i], &resps[i], "no ETag header");
		}
		w->etags[p->number] = MemoryContextStrdup(w->cxt, etag);
	}

	/* the buffers become spares */
	for (i = 0; i < n; i++)
	{
		S3PartBuf  *p = &w->pending[i];

		if (w->nspare < w->max_in_flight)
		{
			p->len = 0;
			w->spare[w->nspare++] = *p;
		}
		else
			pfree(p->data);
	}
	w->npending = 0;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(batch);
}

/*
 * s3_writer_seal
 *		The current buffer becomes the next part; upload the sealed parts
 *		once there are as many as may be in flight.
 */
static void
s3_writer_seal(S3Writer *w)
{
	if (w->upload_id == NULL)
		s3_writer_start_multipart(w);
	if (w->nparts >= S3_MAX_PARTS)
	{
		w->state = S3W_FAILED;
		if (w->upload != NULL)
			s3_upload_abort(w->upload);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("S3 object %s needs more than %d parts", w->where, S3_MAX_PARTS),
				 errdetail("Parts of " INT64_FORMAT " bytes were used.", w->base_part_bytes),
				 errhint("Use a larger part size, or give the expected size as a size hint.")));
	}
	w->cur.number = ++w->nparts;
	w->pending[w->npending++] = w->cur;
	memset(&w->cur, 0, sizeof(w->cur));
	if (w->npending >= s3_writer_in_flight(w))
		s3_writer_flush(w);
}

/*
 * s3_writer_new_buffer
 *		A buffer for the next part: a spare one of the right size, or new.
 */
static void
s3_writer_new_buffer(S3Writer *w)
{
	size_t		size = (size_t) s3_writer_part_size(w, w->nparts + 1);
	int			i;

	for (i = 0; i < w->nspare; i++)
	{
		if (w->spare[i].cap == size)
		{
			w->cur = w->spare[i];
			w->cur.len = 0;
			w->spare[i] = w->spare[--w->nspare];
			return;
		}
	}
	/* spares of another size will not be used again */
	for (i = 0; i < w->nspare; i++)
		pfree(w->spare[i].data);
	w->nspare = 0;
	w->cur.data = MemoryContextAllocExtended(w->cxt, size, MCXT_ALLOC_HUGE);
	w->cur.cap = size;
	w->cur.len = 0;
}

/*
 * s3_writer_free_buffers
 *		Release every part buffer.
 */
static void
s3_writer_free_buffers(S3Writer *w)
{
	int			i;

	if (w->cur.data != NULL)
		pfree(w->cur.data);
	memset(&w->cur, 0, sizeof(w->cur));
	for (i = 0; i < w->npending; i++)
		pfree(w->pending[i].data);
	w->npending = 0;
	for (i = 0; i < w->nspare; i++)
		pfree(w->spare[i].data);
	w->nspare = 0;
}

/*
 * s3_writer_open
 *		Start writing an object.
 */
S3Writer *
s3_writer_open(const DmsEndpoint *ep, const char *bucket, const char *key,
			   const S3WriterOptions *options)
{
	MemoryContext cxt;
	MemoryContext old;
	S3Writer   *w;
	int64		part_bytes = options && options->part_bytes > 0 ?
		options->part_bytes : S3_DEFAULT_PART_BYTES;
	int64		size_hint = options ? options->size_hint : 0;
	int			in_flight = options && options->max_parts_in_flight > 0 ?
		options->max_parts_in_flight : S3_DEFAULT_PARTS_IN_FLIGHT;

	s3_check_key(key);
	s3_check_key_segments("S3 object key", key, 0);
	if (part_bytes < S3_MIN_PART_BYTES || part_bytes > S3_MAX_PART_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("part size " INT64_FORMAT " is out of range", part_bytes),
				 errdetail("S3 parts must be between " INT64_FORMAT " bytes (5 MiB) and "
						   INT64_FORMAT " bytes (5 GiB).",
						   S3_MIN_PART_BYTES, S3_MAX_PART_BYTES)));
	if (in_flight > DMS_HTTP_MAX_PARALLEL)
		in_flight = DMS_HTTP_MAX_PARALLEL;

	/* with a size hint, make the object fit in 10,000 parts of one size */
	if (size_hint > part_bytes * S3_MAX_PARTS)
	{
		int64		mib = 1024 * 1024;
		int64		need = (size_hint + S3_MAX_PARTS - 1) / S3_MAX_PARTS;

		part_bytes = Min(((need + mib - 1) / mib) * mib, S3_MAX_PART_BYTES);
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "dms_stream S3 writer",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	w = palloc0(sizeof(S3Writer));
	w->cxt = cxt;
	s3_target_init(&w->target, ep, bucket);
	w->key = pstrdup(key);
	w->url = s3_target_url(&w->target, key);
	w->where = s3_where(&w->target, key);
	w->content_type = options && options->content_type ?
		pstrdup(options->content_type) : NULL;
	w->base_part_bytes = part_bytes;
	w->size_hint = size_hint;
	w->max_in_flight = in_flight;
	w->budget = part_bytes * in_flight;
	w->pending = palloc0(sizeof(S3PartBuf) * in_flight);
	w->spare = palloc0(sizeof(S3PartBuf) * in_flight);
	w->state = S3W_OPEN;
	w->reset_cb.func = s3_writer_reset_cb;
	w->reset_cb.arg = w;
	MemoryContextRegisterResetCallback(cxt, &w->reset_cb);
	MemoryContextSwitchTo(old);
	return w;
}

/*
 * s3_writer_check_open
 *		Refuse to use a writer that is finished.
 */
static void
s3_writer_check_open(const S3Writer *w)
{
	if (w->state != S3W_OPEN)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("S3 writer of %s is %s", w->where,
						w->state == S3W_CLOSED ? "closed" :
						w->state == S3W_ABORTED ? "aborted" : "failed")));
}

/*
 * s3_writer_write
 *		Append data to the object.
 */
void
s3_writer_write(S3Writer *w, const void *data, size_t len)
{
	const char *p = (const char *) data;

	s3_writer_check_open(w);
	while (len > 0)
	{
		size_t		n;

		if (w->cur.data != NULL && w->cur.len == w->cur.cap)
			s3_writer_seal(w);
		if (w->cur.data == NULL)
			s3_writer_new_buffer(w);
		n = Min(len, w->cur.cap - w->cur.len);
		memcpy(w->cur.data + w->cur.len, p, n);
		w->cur.len += n;
		w->bytes += n;
		p += n;
		len -= n;
	}
}

/*
 * s3_writer_complete
 *		CompleteMultipartUpload; returns the object's ETag (without quotes).
 *		A 200 answer can still carry an error; retryable ones are retried.
 */
static char *
s3_writer_complete(S3Writer *w)
{
	static const char *const names[] = {"ETag", "Code", "Message"};
	StringInfoData body;
	S3Headers	hs;
	DmsHttpRequest req;
	DmsHttpResponse *resp;
	char	   *url;
	int			i;
	int			attempt;
	TimestampTz deadline;

	initStringInfo(&body);
	appendStringInfoString(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (i = 1; i <= w->nparts; i++)
	{
		appendStringInfo(&body, "<Part><PartNumber>%d</PartNumber><ETag>", i);
		s3_xml_escape(&body, w->etags[i]);
		appendStringInfoString(&body, "</ETag></Part>");
	}
	appendStringInfoString(&body, "</CompleteMultipartUpload>");
	url = psprintf("%s?uploadId=%s", w->url, aws_uri_encode(w->upload_id, true));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), dms_http_total_timeout_ms);

	for (attempt = 0;; attempt++)
	{
		char	   *values[3];
		char	   *root;

		s3_common_headers(&w->target, &hs);
		s3_hdr(&hs, "Content-Type", "application/xml");
		s3_request_init(&req, &w->target, "POST", url, &hs, body.data, body.len,
						s3_credentials(&w->target));
		req.max_response_bytes = 1024 * 1024;
		resp = dms_http_request(&req);
		if (!resp->ok)
			s3_writer_fail(w, "CompleteMultipartUpload", w->where, &req, resp);

		root = s3_xml_fields(resp->body, resp->body_len, names, values, 3);
		if (root != NULL && strcmp(root, "CompleteMultipartUploadResult") == 0)
			return s3_strip_etag(values[0] ? values[0] : "");
		if (root != NULL && strcmp(root, "Error") == 0)
		{
			/* an error inside a 200 answer */
			resp->ok = false;
			resp->error_code = values[1];
			resp->error_message = values[2];
			if (dms_http_is_retryable_code(values[1]) && attempt < dms_http_max_retries &&
				TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 200L * (attempt + 1)) < deadline)
			{
				dms_http_sleep(200L * (attempt + 1));
				continue;
			}
			s3_writer_fail(w, "CompleteMultipartUpload", w->where, &req, resp);
		}
		w->state = S3W_FAILED;
		if (w->upload != NULL)
			s3_upload_abort(w->upload);
		s3_unexpected_answer("CompleteMultipartUpload", w->where, &req, resp,
							 "the body is not a CompleteMultipartUploadResult");
	}
}

/*
 * s3_writer_close
 *		Finish the object: one PutObject if it fits in a part, otherwise the
 *		last parts and CompleteMultipartUpload.
 */
char *
s3_writer_close(S3Writer *w)
{
	MemoryContext old;

	s3_writer_check_open(w);
	old = MemoryContextSwitchTo(w->cxt);
	if (w->upload_id == NULL)
	{
		w->state = S3W_FAILED;	/* until the object is written */
		w->etag = s3_put_target(&w->target, w->key,
								w->cur.data ? w->cur.data : "", w->cur.len,
								w->content_type);
		w->nparts = 1;
	}
	else
	{
		if (w->cur.data != NULL && w->cur.len > 0)
		{
			if (w->nparts >= S3_MAX_PARTS)
			{
				w->state = S3W_FAILED;
				if (w->upload != NULL)
					s3_upload_abort(w->upload);
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("S3 object %s needs more than %d parts", w->where, S3_MAX_PARTS),
						 errhint("Use a larger part size, or give the expected size as a size hint.")));
			}
			w->cur.number = ++w->nparts;
			w->pending[w->npending++] = w->cur;
			memset(&w->cur, 0, sizeof(w->cur));
		}
		s3_writer_flush(w);
		w->etag = s3_writer_complete(w);
		if (w->upload != NULL)
		{
			S3Upload   *u = w->upload;

			s3_upload_unlink(u);
			w->upload = NULL;
			MemoryContextDelete(u->cxt);
		}
	}
	w->state = S3W_CLOSED;
	s3_writer_free_buffers(w);
	MemoryContextSwitchTo(old);
	return pstrdup(w->etag);
}

/*
 * s3_writer_abort
 *		Abandon the object; AbortMultipartUpload if one was started.
 */
void
s3_writer_abort(S3Writer *w)
{
	if (w->upload != NULL)
		s3_upload_abort(w->upload);
	if (w->state == S3W_OPEN)
		w->state = S3W_ABORTED;
	s3_writer_free_buffers(w);
}

/*
 * s3_writer_bytes
 *		Bytes written.
 */
int64
s3_writer_bytes(const S3Writer *w)
{
	return w->bytes;
}

/*
 * s3_writer_parts
 *		Parts numbered so far (1 for an object written with PutObject).
 */
int
s3_writer_parts(const S3Writer *w)
{
	return w->nparts;
}

/*
 * s3_writer_upload_id
 *		The multipart upload id, or NULL.
 */
const char *
s3_writer_upload_id(const S3Writer *w)
{
	return w->upload_id;
}
