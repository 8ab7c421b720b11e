/*-------------------------------------------------------------------------
 *
 * s3.h
 *	  Amazon S3 client of dms_stream: listing, reading and writing objects
 *	  through the HTTP layer (src/http.h), signed with SigV4.
 *
 * Every function takes the endpoint (dms_endpoint_load) and a bucket.  The
 * endpoint decides where requests go and how they are signed:
 *	- endpoint_url NULL: AWS, https://BUCKET.s3.REGION.amazonaws.com (virtual
 *	  hosted) or https://s3.REGION.amazonaws.com/BUCKET (path style);
 *	- endpoint_url set: that server, path style unless s3_addressing_style
 *	  is 'virtual' (then scheme://BUCKET.host[:port]);
 *	- 'auto' means virtual hosted on AWS (path style for bucket names with
 *	  dots, which do not match AWS's TLS certificates) and path style on a
 *	  custom endpoint_url;
 *	- credentials come from aws_credentials_resolve(ep), the region from
 *	  the endpoint;
 *	- the settings ExpectedBucketOwner (x-amz-expected-bucket-owner on every
 *	  request), EncryptionMode / ServerSideEncryptionKmsKeyId and
 *	  CannedAclForObjects (on PutObject and CreateMultipartUpload) apply.
 *	  Without EncryptionMode no encryption header is sent and the bucket's
 *	  default encryption applies.
 *
 * Keys are full object keys; s3_folder_key() applies the endpoint's
 * BucketFolder for callers that work relative to it.
 *
 * Failures are raised with ereport(ERROR) through dms_http_raise_error: the
 * message names the operation, s3://bucket/key and the endpoint; the detail
 * carries the HTTP status, AWS error code and message, and request id.
 *
 * Memory: results are palloc'd in the caller's memory context.  A reader or
 * writer allocates everything in a memory context of its own, a child of the
 * context current at open; the endpoint passed to open must outlive it.
 *
 *	Reader: ranged GETs of at most chunk_bytes each, two ranges fetched
 *	concurrently, so memory stays at a few chunks (at most about four, as
 *	the HTTP layer's buffers grow by doubling) whatever the object size.
 *	Every range is requested with If-Match on the ETag seen at open, and
 *	the answer's ETag and size are checked: an object replaced while being
 *	read raises an error instead of returning a mix of two versions.
 *
 *	Writer: buffers up to part_bytes; data that never fills a part is
 *	written with a single PutObject at close, otherwise as a multipart
 *	upload whose parts (all part_bytes except the last) are uploaded
 *	max_parts_in_flight at a time, concurrently.  With a size hint the part
 *	size grows so that the object fits in 10,000 parts; without one it
 *	doubles every 1,000 parts.  Any failure aborts the upload
 *	(AbortMultipartUpload): a failed request inside the writer aborts it
 *	before the error is raised, and an ERROR anywhere else queues its abort
 *	when the (sub)transaction that opened the writer aborts (callbacks do
 *	no network I/O); the queue is sent by s3_abort_deferred_uploads, before
 *	the next S3 request of the process and at process exit.  A writer
 *	neither closed nor aborted when its transaction commits is queued the
 *	same way, with a WARNING.  A multipart upload is therefore confined to
 *	the transaction that opened it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_S3_H
#define DMS_S3_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "endpoint.h"

/* S3 limits. */
#define S3_MIN_PART_BYTES		((int64) 5 * 1024 * 1024)	/* all parts but the last */
#define S3_MAX_PART_BYTES		((int64) 5 * 1024 * 1024 * 1024)
#define S3_MAX_PARTS			10000
#define S3_MAX_LIST_PAGE		1000

/* Defaults. */
#define S3_DEFAULT_PART_BYTES	((int64) 8 * 1024 * 1024)
#define S3_DEFAULT_CHUNK_BYTES	((int64) 8 * 1024 * 1024)
#define S3_DEFAULT_PARTS_IN_FLIGHT 4

/* An object: from a listing (content_type NULL) or HeadObject. */
typedef struct S3Object
{
	char	   *key;			/* full key */
	int64		size;
	TimestampTz last_modified;
	char	   *etag;			/* without the surrounding quotes */
	char	   *content_type;	/* HeadObject only; may be NULL */
} S3Object;

/* One page of ListObjectsV2. */
typedef struct S3ListPage
{
	List	   *objects;		/* of S3Object * */
	bool		truncated;
	char	   *next_token;		/* continuation token when truncated */
} S3ListPage;

/* Options of a writer; zero fields take the defaults. */
typedef struct S3WriterOptions
{
	int64		part_bytes;		/* >= 5 MiB; default 8 MiB */
	int64		size_hint;		/* expected object size, 0 if unknown */
	int			max_parts_in_flight;	/* parts buffered and uploaded
										 * together; default 4 */
	const char *content_type;	/* NULL: none sent */
} S3WriterOptions;

typedef struct S3Reader S3Reader;
typedef struct S3Writer S3Writer;

/* The endpoint's BucketName, or an error naming the endpoint. */
extern const char *s3_endpoint_bucket(const DmsEndpoint *ep);

/*
 * The full key for a key relative to the endpoint's BucketFolder
 * ("folder/" + key; key unchanged without BucketFolder).  Leading and
 * trailing slashes of BucketFolder are ignored.
 */
extern char *s3_folder_key(const DmsEndpoint *ep, const char *relative_key);

/* The BucketFolder prefix ("folder/", or "" without one). */
extern char *s3_folder_prefix(const DmsEndpoint *ep);

/*
 * Refuse a key, prefix or key part with a "." or ".." segment, an empty
 * segment or a control character (ERRCODE_INVALID_PARAMETER_VALUE, naming
 * what).  Every key dms_stream writes is checked; configuration that goes
 * into keys is checked when it is stored.
 */
#define S3_SEGMENTS_TRIM	0x01	/* ignore leading and trailing slashes */
#define S3_SEGMENTS_PARTIAL	0x02	/* the last segment may be partial */
extern void s3_check_key_segments(const char *what, const char *value, int flags);

/* The URL of an object (or of the bucket when key is NULL), as requested. */
extern char *s3_object_url(const DmsEndpoint *ep, const char *bucket,
						   const char *key);

/*
 * One ListObjectsV2 request: keys after start_after (first page) or from
 * continuation_token (later pages), at most page_size (1..1000) keys.
 */
extern void s3_list_objects_page(const DmsEndpoint *ep, const char *bucket,
								 const char *prefix, const char *start_after,
								 const char *continuation_token, int page_size,
								 S3ListPage *page);

/*
 * Every key under prefix after start_after (either may be NULL), in key
 * order, following continuation tokens; at most max_keys (0: all), asking
 * for page_size keys per request (0: 1000).  List of S3Object *.
 */
extern List *s3_list_objects(const DmsEndpoint *ep, const char *bucket,
							 const char *prefix, const char *start_after,
							 int64 max_keys, int page_size);

/* HeadObject; false (and *obj untouched) if the key does not exist and missing_ok. */
extern bool s3_head_object(const DmsEndpoint *ep, const char *bucket,
						   const char *key, bool missing_ok, S3Object *obj);

/*
 * GetObject of bytes range_start..range_end (inclusive; -1 for "from the
 * start" / "to the end"; both -1 for the whole object).  Returns the
 * palloc'd bytes and their count in *len.  At most 1 GB.
 */
extern char *s3_get_object(const DmsEndpoint *ep, const char *bucket,
						   const char *key, int64 range_start, int64 range_end,
						   size_t *len);

/*
 * The same in two steps, so that the caller can work while the bytes come:
 * s3_get_object_start checks and sends the request, s3_get_object_finish
 * waits for the answer (raising its errors) and returns what s3_get_object
 * would, in the memory context current at start; s3_get_object_cancel
 * abandons it.  One of the two must be called, in or under that context.
 */
typedef struct S3GetObject S3GetObject;

extern S3GetObject *s3_get_object_start(const DmsEndpoint *ep, const char *bucket,
										const char *key, int64 range_start,
										int64 range_end);
extern char *s3_get_object_finish(S3GetObject *g, size_t *len);
extern void s3_get_object_cancel(S3GetObject *g);

/* PutObject; returns the ETag (without quotes). */
extern char *s3_put_object(const DmsEndpoint *ep, const char *bucket,
						   const char *key, const char *data, size_t len,
						   const char *content_type);

/* An incomplete multipart upload (ListMultipartUploads). */
typedef struct S3MultipartUpload
{
	char	   *key;			/* full key */
	char	   *upload_id;
} S3MultipartUpload;

/*
 * The incomplete multipart uploads under prefix, every page (List of
 * S3MultipartUpload *); NIL and *supported false if the server does not
 * implement ListMultipartUploads.
 */
extern List *s3_list_multipart_uploads(const DmsEndpoint *ep, const char *bucket,
									   const char *prefix, bool *supported);
/* AbortMultipartUpload (no error when the upload is gone). */
extern void s3_abort_multipart_upload(const DmsEndpoint *ep, const char *bucket,
									  const char *key, const char *upload_id);

/* DeleteObject (no error when the key does not exist). */
extern void s3_delete_object(const DmsEndpoint *ep, const char *bucket,
							 const char *key);

/* Streaming reader. */
extern S3Reader *s3_reader_open(const DmsEndpoint *ep, const char *bucket,
								const char *key, int64 chunk_bytes);
/* Copy up to len bytes into buf; returns 0 at the end of the object. */
extern size_t s3_reader_read(S3Reader *reader, void *buf, size_t len);
/*
 * Zero-copy variant: the next piece of the object (at most chunk_bytes) in
 * *data / *len, valid until the next call; false at the end.
 */
extern bool s3_reader_next_chunk(S3Reader *reader, const char **data, size_t *len);
/* The object as seen at open (size, ETag, last modified, content type). */
extern const S3Object *s3_reader_object(const S3Reader *reader);
/* GetObject requests made so far. */
extern int	s3_reader_requests(const S3Reader *reader);
extern void s3_reader_close(S3Reader *reader);

/* Streaming writer (single PutObject or multipart upload). */
extern S3Writer *s3_writer_open(const DmsEndpoint *ep, const char *bucket,
								const char *key, const S3WriterOptions *options);
extern void s3_writer_write(S3Writer *writer, const void *data, size_t len);
/* Finish the object; returns its ETag (without quotes). */
extern char *s3_writer_close(S3Writer *writer);
/* Abandon the object (AbortMultipartUpload if one was started). */
extern void s3_writer_abort(S3Writer *writer);

/*
 * Transaction callbacks do no network I/O: the multipart uploads left open
 * by an aborted (sub)transaction are queued, and aborted here (also before
 * the next S3 request of the process and at process exit).  Returns how
 * many were handled; an error (a cancel) leaves the rest queued.
 */
extern int	s3_abort_deferred_uploads(void);
/* How many aborts are queued. */
extern int	s3_deferred_uploads(void);
/* Bytes written and parts (1 for a single PutObject) so far / in total. */
extern int64 s3_writer_bytes(const S3Writer *writer);
extern int	s3_writer_parts(const S3Writer *writer);
/* The multipart upload id, or NULL before one is started. */
extern const char *s3_writer_upload_id(const S3Writer *writer);

#endif							/* DMS_S3_H */
