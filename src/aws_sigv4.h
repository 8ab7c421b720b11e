/*-------------------------------------------------------------------------
 *
 * aws_sigv4.h
 *	  AWS Signature Version 4 (header form) and the helpers around it:
 *	  URI encoding the way AWS canonicalises it, SHA-256 and HMAC-SHA256.
 *
 * The signer takes the request exactly as the HTTP layer will put it on the
 * wire (method, URL with the path already percent-encoded, headers, payload
 * or its hash) and returns the headers to add to it: Authorization,
 * X-Amz-Date, x-amz-content-sha256 (always for S3, otherwise only for
 * UNSIGNED-PAYLOAD) and X-Amz-Security-Token when a session token is given.
 *
 * Canonicalisation follows the AWS documentation and botocore:
 *	- host is signed from the URL, with the port exactly as libcurl sends it
 *	  (omitted when it is the scheme's default, 80 or 443), unless the caller
 *	  passes a Host header;
 *	- for service "s3" the path is used single-encoded and not normalised;
 *	  for every other service dot segments and empty segments are removed and
 *	  the path is encoded a second time ("%" becomes "%25");
 *	- query parameters are decoded and re-encoded with the RFC 3986
 *	  unreserved set, then sorted by name and value;
 *	- header names are lower-cased, values trimmed with inner whitespace runs
 *	  collapsed; Expect, User-Agent and X-Amzn-Trace-Id are never signed.
 *
 * All results are palloc'd in the caller's memory context; the scratch
 * memory used while signing is freed before returning.  Invalid input is
 * reported with ereport(ERROR).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AWS_SIGV4_H
#define AWS_SIGV4_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* Lowercase hex SHA-256 of the empty string. */
#define AWS_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Payload hash literal for requests whose body is not signed. */
#define AWS_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

#define AWS_SHA256_LEN 32		/* raw digest length */
#define AWS_SHA256_HEX_LEN 64	/* hex digest length, without the NUL */

/* An HTTP header as a name/value pair. */
typedef struct AwsHeader
{
	const char *name;
	const char *value;
} AwsHeader;

/* Credentials; session_token is NULL for long-term keys. */
typedef struct AwsCredentials
{
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;
} AwsCredentials;

/* The request to sign, described as it will be sent. */
typedef struct AwsSigV4Request
{
	const char *method;			/* e.g. "GET"; upper-cased for signing */
	const char *url;			/* scheme://host[:port]/path?query, encoded */
	const AwsHeader *headers;	/* headers the caller sends, may be NULL */
	int			nheaders;
	const char *payload;		/* body, may be NULL when payload_len is 0 */
	size_t		payload_len;
	const char *payload_hash;	/* NULL: hash payload; else 64 hex digits or
								 * AWS_UNSIGNED_PAYLOAD */
	const char *service;		/* "s3", "kinesis", "sts", ... */
	const char *region;			/* "us-east-1", ... */
	TimestampTz signing_time;	/* usually GetCurrentTimestamp() */
	const AwsCredentials *credentials;
} AwsSigV4Request;

/* Maximum number of headers aws_sigv4_sign adds. */
#define AWS_SIGV4_MAX_ADDED_HEADERS 4

/* What aws_sigv4_sign returns. */
typedef struct AwsSigV4Signature
{
	/* The headers to add to the request, in this order, ready to send. */
	int			nheaders;
	AwsHeader	headers[AWS_SIGV4_MAX_ADDED_HEADERS];

	/* The same values by name; NULL when the header is not added. */
	char	   *authorization;
	char	   *amz_date;		/* YYYYMMDDTHHMMSSZ */
	char	   *content_sha256; /* x-amz-content-sha256 */
	char	   *security_token; /* X-Amz-Security-Token */

	/* Intermediate values, for diagnostics (SignatureDoesNotMatch). */
	char	   *canonical_request;
	char	   *string_to_sign;
	char	   *signed_headers;
	char	   *signature;		/* lowercase hex */
} AwsSigV4Signature;

/* Sign a request; fills *sig with values palloc'd in CurrentMemoryContext. */
extern void aws_sigv4_sign(const AwsSigV4Request *req, AwsSigV4Signature *sig);

/*
 * Percent-encode for AWS: keep A-Z a-z 0-9 - . _ ~ (and "/" unless
 * encode_slash), write everything else as %XX with uppercase hex.  Use
 * encode_slash = false for S3 object keys in a path, true for query
 * parameter names and values.
 */
extern char *aws_uri_encode(const char *str, bool encode_slash);
extern void aws_uri_encode_append(StringInfo buf, const char *data, size_t len,
								  bool encode_slash);

/* SHA-256 and HMAC-SHA256 (OpenSSL EVP); ereport(ERROR) if OpenSSL fails. */
extern void aws_sha256(const void *data, size_t len,
					   unsigned char out[AWS_SHA256_LEN]);
extern char *aws_sha256_hex(const void *data, size_t len);
extern void aws_hmac_sha256(const void *key, size_t keylen,
							const void *msg, size_t msglen,
							unsigned char out[AWS_SHA256_LEN]);
extern void aws_hex_encode(const unsigned char *data, size_t len, char *out);

#endif							/* AWS_SIGV4_H */
