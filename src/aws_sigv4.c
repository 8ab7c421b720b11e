/*-------------------------------------------------------------------------
 *
 * aws_sigv4.c
 *	  AWS Signature Version 4, header form.
 *
 * See aws_sigv4.h for the rules this file implements.  The steps follow the
 * AWS documentation ("Create a signed AWS API request"):
 *
 *	 1. canonical request = method, canonical URI, canonical query string,
 *		canonical headers, signed headers and payload hash, joined by "\n";
 *	 2. string to sign = "AWS4-HMAC-SHA256", request time, credential scope
 *		and the hex SHA-256 of the canonical request, joined by "\n";
 *	 3. signing key = HMAC chain over date, region, service, "aws4_request"
 *		starting from "AWS4" + secret;
 *	 4. signature = hex HMAC-SHA256(signing key, string to sign).
 *
 * Everything temporary is allocated in a private memory context that is
 * deleted before aws_sigv4_sign returns, so a long-lived caller (a worker
 * signing thousands of requests) does not accumulate garbage.  Key material
 * is wiped from memory after use.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/stringinfo.h"
#include "utils/datetime.h"
#include "utils/formatting.h"
#include "utils/memutils.h"

#include "aws_sigv4.h"

/* A header being canonicalised: lower-case name and trimmed value(s). */
typedef struct SigHeader
{
	char	   *name;
	StringInfoData value;
} SigHeader;

/* A query parameter, both parts already AWS-encoded. */
typedef struct SigParam
{
	char	   *name;
	char	   *value;
} SigParam;

/* The pieces of a URL the signer needs. */
typedef struct SigUrl
{
	char	   *host;			/* lower-case, [v6] bracketed, with :port
								 * unless it is the scheme default */
	char	   *path;			/* raw path as sent, "/" if empty */
	char	   *query;			/* raw query without "?", NULL if none */
} SigUrl;

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

/*
 * aws_is_unreserved
 *		True for the RFC 3986 unreserved characters A-Z a-z 0-9 - . _ ~
 */
static inline bool
aws_is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * aws_hex_value
 *		Value of a hex digit, or -1 if c is not one.
 */
static inline int
aws_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * aws_hex_encode
 *		Write len bytes as lowercase hex into out (2 * len + 1 bytes, NUL
 *		terminated).
 */
void
aws_hex_encode(const unsigned char *data, size_t len, char *out)
{
	size_t		i;

	for (i = 0; i < len; i++)
	{
		out[2 * i] = hex_lower[data[i] >> 4];
		out[2 * i + 1] = hex_lower[data[i] & 0x0F];
	}
	out[2 * len] = '\0';
}

/*
 * aws_uri_encode_append
 *		Append data[0..len) to buf, percent-encoding every byte outside the
 *		unreserved set (and "/" when encode_slash) as %XX, uppercase hex.
 */
void
aws_uri_encode_append(StringInfo buf, const char *data, size_t len,
					  bool encode_slash)
{
	size_t		i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) data[i];

		if (aws_is_unreserved(c) || (c == '/' && !encode_slash))
			appendStringInfoChar(buf, (char) c);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex_upper[c >> 4]);
			appendStringInfoChar(buf, hex_upper[c & 0x0F]);
		}
	}
}

/*
 * aws_uri_encode
 *		Return a palloc'd AWS-encoded copy of a NUL-terminated string.
 */
char *
aws_uri_encode(const char *str, bool encode_slash)
{
	StringInfoData buf;

	initStringInfo(&buf);
	aws_uri_encode_append(&buf, str, strlen(str), encode_slash);
	return buf.data;
}

/*
 * aws_uri_decode
 *		Decode %XX escapes in str[0..len) into a palloc'd buffer; "+" is kept
 *		as is.  The result may contain NUL bytes, so its length is returned
 *		in *outlen.  A malformed escape is an error; "what" names the URL
 *		part for the message.
 */
static char *
aws_uri_decode(const char *str, size_t len, size_t *outlen,
			   const char *what, const char *url)
{
	char	   *out = palloc(len + 1);
	size_t		i,
				n = 0;

	for (i = 0; i < len; i++)
	{
		if (str[i] == '%')
		{
			int			hi = -1;
			int			lo = -1;

			if (i + 2 < len)
			{
				hi = aws_hex_value((unsigned char) str[i + 1]);
				lo = aws_hex_value((unsigned char) str[i + 2]);
			}

			if (hi < 0 || lo < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid percent-encoding in the %s of URL \"%s\"",
								what, url),
						 errdetail("\"%%\" must be followed by two hexadecimal digits."),
						 errhint("Encode a literal \"%%\" as \"%%25\".")));
			out[n++] = (char) ((hi << 4) | lo);
			i += 2;
		}
		else
			out[n++] = str[i];
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/*
 * aws_sha256
 *		Raw SHA-256 digest of data[0..len).
 */
void
aws_sha256(const void *data, size_t len, unsigned char out[AWS_SHA256_LEN])
{
	unsigned int outlen = 0;

	if (EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) != 1 ||
		outlen != AWS_SHA256_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute SHA-256 digest"),
				 errdetail("OpenSSL EVP_Digest failed.")));
}

/*
 * aws_sha256_hex
 *		Lowercase hex SHA-256 digest of data[0..len), palloc'd.
 */
char *
aws_sha256_hex(const void *data, size_t len)
{
	unsigned char digest[AWS_SHA256_LEN];
	char	   *hex = palloc(AWS_SHA256_HEX_LEN + 1);

	aws_sha256(data, len, digest);
	aws_hex_encode(digest, AWS_SHA256_LEN, hex);
	return hex;
}

/*
 * aws_hmac_sha256
 *		Raw HMAC-SHA256 of msg under key.
 */
void
aws_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
				unsigned char out[AWS_SHA256_LEN])
{
	unsigned int outlen = 0;

	if (keylen > INT_MAX ||
		HMAC(EVP_sha256(), key, (int) keylen, msg, msglen, out, &outlen) == NULL ||
		outlen != AWS_SHA256_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute HMAC-SHA256"),
				 errdetail("OpenSSL HMAC failed.")));
}

/*
 * sigv4_bad_url
 *		Report a URL the signer cannot use.
 */
static void
sigv4_bad_url(const char *url, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid URL for AWS signing: \"%s\"", url),
			 errdetail("%s", detail),
			 errhint("Give the URL as sent on the wire: "
					 "http[s]://host[:port]/path?query, with the path and "
					 "query already percent-encoded.")));
}

/*
 * sigv4_parse_url
 *		Split an absolute http(s) URL into the host value to sign, the raw
 *		path and the raw query.  User info is dropped and the fragment
 *		ignored, as neither is sent.
 */
static void
sigv4_parse_url(const char *url, SigUrl *out)
{
	const char *p = url;
	const char *auth_start;
	const char *auth_end;
	const char *host_start;
	const char *host_end;
	const char *port_start = NULL;
	const char *path_end;
	int			default_port;
	long		port = -1;
	StringInfoData host;
	const char *c;

	for (c = url; *c; c++)
	{
		unsigned char uc = (unsigned char) *c;

		if (uc <= 0x20 || uc >= 0x7F)
			sigv4_bad_url(url, "The URL contains a space, a control character "
						  "or a non-ASCII byte; such bytes must be percent-encoded.");
	}

	if (pg_strncasecmp(p, "https://", 8) == 0)
	{
		default_port = 443;
		p += 8;
	}
	else if (pg_strncasecmp(p, "http://", 7) == 0)
	{
		default_port = 80;
		p += 7;
	}
	else
	{
		sigv4_bad_url(url, "The scheme must be http:// or https://.");
		return;					/* keep compiler quiet */
	}

	/* authority: up to the first "/", "?" or "#" */
	auth_start = p;
	auth_end = p + strcspn(p, "/?#");

	/* drop user info: everything up to the last "@" */
	host_start = auth_start;
	for (c = auth_start; c < auth_end; c++)
		if (*c == '@')
			host_start = c + 1;

	if (*host_start == '[')
	{
		host_end = memchr(host_start, ']', auth_end - host_start);
		if (host_end == NULL)
			sigv4_bad_url(url, "An IPv6 address in the host lacks its closing \"]\".");
		host_end++;				/* keep the bracket */
		if (host_end < auth_end)
		{
			if (*host_end != ':')
				sigv4_bad_url(url, "Unexpected characters after the IPv6 address.");
			port_start = host_end + 1;
		}
	}
	else
	{
		host_end = memchr(host_start, ':', auth_end - host_start);
		if (host_end == NULL)
			host_end = auth_end;
		else
			port_start = host_end + 1;
	}

	if (host_end == host_start)
		sigv4_bad_url(url, "The URL has no host.");

	if (port_start != NULL)
	{
		if (port_start == auth_end)
			sigv4_bad_url(url, "The port after \":\" is empty.");
		port = 0;
		for (c = port_start; c < auth_end; c++)
		{
			if (*c < '0' || *c > '9')
				sigv4_bad_url(url, "The port is not a number.");
			port = port * 10 + (*c - '0');
			if (port > 65535)
				sigv4_bad_url(url, "The port is greater than 65535.");
		}
		if (port == 0)
			sigv4_bad_url(url, "The port is 0.");
	}

	initStringInfo(&host);
	for (c = host_start; c < host_end; c++)
		appendStringInfoChar(&host, pg_ascii_tolower((unsigned char) *c));
	if (port >= 0 && port != default_port)
		appendStringInfo(&host, ":%ld", port);
	out->host = host.data;

	/* path: from auth_end up to "?" or "#" */
	p = auth_end;
	path_end = p + strcspn(p, "?#");
	if (path_end == p)
		out->path = pstrdup("/");
	else
	{
		size_t		declen;

		out->path = pnstrdup(p, path_end - p);
		/* only to reject malformed escapes, which no service accepts */
		pfree(aws_uri_decode(out->path, path_end - p, &declen, "path", url));
	}

	p = path_end;
	if (*p == '?')
	{
		p++;
		out->query = pnstrdup(p, strcspn(p, "#"));
	}
	else
		out->query = NULL;
}

/*
 * sigv4_canonical_uri_s3
 *		S3: each path segment decoded and encoded once, "/" kept, no
 *		normalisation (double slashes, trailing slash and dot segments are
 *		part of the key).  For a path already encoded with aws_uri_encode
 *		this is the path itself.
 */
static void
sigv4_canonical_uri_s3(StringInfo buf, const char *path, const char *url)
{
	const char *seg = path;

	for (;;)
	{
		size_t		seglen = strcspn(seg, "/");
		size_t		declen;
		char	   *dec = aws_uri_decode(seg, seglen, &declen, "path", url);

		aws_uri_encode_append(buf, dec, declen, true);
		pfree(dec);
		if (seg[seglen] == '\0')
			break;
		appendStringInfoChar(buf, '/');
		seg += seglen + 1;
	}
}

/*
 * sigv4_canonical_uri_generic
 *		Other services: remove "." and ".." segments and empty segments
 *		(RFC 3986 5.2.4 plus the AWS rule on consecutive slashes), keep a
 *		leading and a trailing slash, then encode the already-encoded path a
 *		second time.
 */
static void
sigv4_canonical_uri_generic(StringInfo buf, const char *path)
{
	int			nsegs = 0;
	int			maxsegs = 1;
	const char **segs;
	int		   *seglens;
	const char *seg;
	StringInfoData norm;
	int			i;
	size_t		pathlen = strlen(path);

	for (seg = path; *seg; seg++)
		if (*seg == '/')
			maxsegs++;
	segs = palloc(sizeof(char *) * maxsegs);
	seglens = palloc(sizeof(int) * maxsegs);

	seg = path;
	for (;;)
	{
		int			seglen = (int) strcspn(seg, "/");

		if (seglen == 0 || (seglen == 1 && seg[0] == '.'))
			 /* skip */ ;
		else if (seglen == 2 && seg[0] == '.' && seg[1] == '.')
		{
			if (nsegs > 0)
				nsegs--;
		}
		else
		{
			segs[nsegs] = seg;
			seglens[nsegs] = seglen;
			nsegs++;
		}
		if (seg[seglen] == '\0')
			break;
		seg += seglen + 1;
	}

	initStringInfo(&norm);
	if (path[0] == '/')
		appendStringInfoChar(&norm, '/');
	for (i = 0; i < nsegs; i++)
	{
		if (i > 0)
			appendStringInfoChar(&norm, '/');
		appendBinaryStringInfo(&norm, segs[i], seglens[i]);
	}
	if (nsegs > 0 && pathlen > 0 && path[pathlen - 1] == '/')
		appendStringInfoChar(&norm, '/');
	if (norm.len == 0)
		appendStringInfoChar(&norm, '/');

	aws_uri_encode_append(buf, norm.data, norm.len, false);
}

/*
 * sigv4_param_cmp
 *		qsort comparator: by encoded name, then by encoded value.
 */
static int
sigv4_param_cmp(const void *a, const void *b)
{
	const SigParam *pa = (const SigParam *) a;
	const SigParam *pb = (const SigParam *) b;
	int			r = strcmp(pa->name, pb->name);

	if (r != 0)
		return r;
	return strcmp(pa->value, pb->value);
}

/*
 * sigv4_canonical_query
 *		Decode each name and value, re-encode them with the unreserved set,
 *		sort, and join as name=value&...  A parameter without "=" gets an
 *		empty value ("uploads" becomes "uploads=").  Empty pieces between
 *		"&"s are not parameters and are skipped.
 */
static void
sigv4_canonical_query(StringInfo buf, const char *query, const char *url)
{
	int			maxparams = 1;
	int			nparams = 0;
	SigParam   *params;
	const char *p;
	int			i;

	if (query == NULL || *query == '\0')
		return;

	for (p = query; *p; p++)
		if (*p == '&')
			maxparams++;
	params = palloc(sizeof(SigParam) * maxparams);

	p = query;
	for (;;)
	{
		size_t		len = strcspn(p, "&");

		if (len > 0)
		{
			const char *eq = memchr(p, '=', len);
			size_t		namelen = eq ? (size_t) (eq - p) : len;
			size_t		declen;
			char	   *dec;
			StringInfoData enc;

			dec = aws_uri_decode(p, namelen, &declen, "query", url);
			initStringInfo(&enc);
			aws_uri_encode_append(&enc, dec, declen, true);
			params[nparams].name = enc.data;
			pfree(dec);

			initStringInfo(&enc);
			if (eq)
			{
				dec = aws_uri_decode(eq + 1, len - namelen - 1, &declen,
									 "query", url);
				aws_uri_encode_append(&enc, dec, declen, true);
				pfree(dec);
			}
			params[nparams].value = enc.data;
			nparams++;
		}
		if (p[len] == '\0')
			break;
		p += len + 1;
	}

	qsort(params, nparams, sizeof(SigParam), sigv4_param_cmp);
	for (i = 0; i < nparams; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, '&');
		appendStringInfo(buf, "%s=%s", params[i].name, params[i].value);
	}
}

/*
 * sigv4_is_token_char
 *		True for the characters allowed in an HTTP method or header name
 *		(RFC 9110 "tchar").
 */
static inline bool
sigv4_is_token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * sigv4_check_token
 *		Error out unless s is a non-empty HTTP token.
 */
static void
sigv4_check_token(const char *s, const char *what)
{
	const char *c;

	if (*s == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("empty %s in AWS request", what),
				 errhint("Give a non-empty %s.", what)));
	for (c = s; *c; c++)
		if (!sigv4_is_token_char((unsigned char) *c))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid %s \"%s\" in AWS request", what, s),
					 errdetail("Character 0x%02x is not allowed in an HTTP %s.",
							   (unsigned char) *c, what),
					 errhint("Use only letters, digits and !#$%%&'*+-.^_`|~.")));
}

/*
 * sigv4_check_scope_part
 *		Error out unless a credential scope element (access key id, region,
 *		service) is non-empty and free of "/", "," and whitespace, which
 *		would make the Authorization header ambiguous.
 */
static void
sigv4_check_scope_part(const char *s, const char *what)
{
	const char *c;

	if (s == NULL || *s == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s for AWS signing is empty", what),
				 errhint("Give a non-empty %s.", what)));
	for (c = s; *c; c++)
	{
		unsigned char uc = (unsigned char) *c;

		if (uc <= 0x20 || uc >= 0x7F || uc == '/' || uc == ',' || uc == '=')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid %s for AWS signing: \"%s\"", what, s),
					 errdetail("It contains \"/\", \",\", \"=\", whitespace or a non-ASCII byte."),
					 errhint("Check the %s; AWS values are plain ASCII words such as "
							 "\"us-east-1\" or \"kinesis\".", what)));
	}
}

/*
 * sigv4_append_trimmed
 *		Append a header value with leading and trailing whitespace removed
 *		and inner runs of whitespace collapsed to one space.
 */
static void
sigv4_append_trimmed(StringInfo buf, const char *value)
{
	const char *c = value;
	bool		pending_space = false;
	bool		any = false;

	for (; *c; c++)
	{
		if (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r' ||
			*c == '\v' || *c == '\f')
		{
			pending_space = any;
			continue;
		}
		if (pending_space)
			appendStringInfoChar(buf, ' ');
		pending_space = false;
		any = true;
		appendStringInfoChar(buf, *c);
	}
}

/*
 * sigv4_header_cmp
 *		qsort comparator for SigHeader by name.
 */
static int
sigv4_header_cmp(const void *a, const void *b)
{
	return strcmp(((const SigHeader *) a)->name, ((const SigHeader *) b)->name);
}

/*
 * sigv4_add_header
 *		Add a value under a lower-case name; a repeated name gets its values
 *		joined with "," in the order given, as the AWS rules say.
 */
static void
sigv4_add_header(SigHeader *hdrs, int *nhdrs, const char *lname,
				 const char *value)
{
	int			i;

	for (i = 0; i < *nhdrs; i++)
	{
		if (strcmp(hdrs[i].name, lname) == 0)
		{
			appendStringInfoChar(&hdrs[i].value, ',');
			sigv4_append_trimmed(&hdrs[i].value, value);
			return;
		}
	}
	hdrs[*nhdrs].name = pstrdup(lname);
	initStringInfo(&hdrs[*nhdrs].value);
	sigv4_append_trimmed(&hdrs[*nhdrs].value, value);
	(*nhdrs)++;
}

/*
 * sigv4_payload_hash
 *		The HashedPayload value: the caller's (checked, lower-cased) or the
 *		SHA-256 of the payload.
 */
static char *
sigv4_payload_hash(const AwsSigV4Request *req)
{
	if (req->payload_hash != NULL)
	{
		const char *h = req->payload_hash;
		char	   *lower;
		int			i;

		if (strcmp(h, AWS_UNSIGNED_PAYLOAD) == 0)
			return pstrdup(h);
		if (strlen(h) != AWS_SHA256_HEX_LEN)
			goto bad;
		lower = palloc(AWS_SHA256_HEX_LEN + 1);
		for (i = 0; i < AWS_SHA256_HEX_LEN; i++)
		{
			if (aws_hex_value((unsigned char) h[i]) < 0)
				goto bad;
			lower[i] = pg_ascii_tolower((unsigned char) h[i]);
		}
		lower[AWS_SHA256_HEX_LEN] = '\0';
		return lower;

bad:
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid payload hash \"%s\"", h),
				 errdetail("A payload hash is 64 hexadecimal digits (SHA-256) "
						   "or the literal \"%s\".", AWS_UNSIGNED_PAYLOAD),
				 errhint("Pass NULL to let the signer hash the payload.")));
	}

	if (req->payload_len > 0 && req->payload == NULL)
		elog(ERROR, "AWS signing: payload_len is %zu but payload is NULL",
			 req->payload_len);
	return aws_sha256_hex(req->payload ? req->payload : "", req->payload_len);
}

/*
 * sigv4_format_time
 *		Format the signing time as YYYYMMDDTHHMMSSZ (UTC) into out[17].
 */
static void
sigv4_format_time(TimestampTz t, char *out)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(t) ||
		timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("signing time out of range for AWS signing"),
				 errdetail("The time must fall in the years 1 to 9999 (UTC)."),
				 errhint("Sign with the current time, now().")));

	snprintf(out, 17, "%04d%02d%02dT%02d%02d%02dZ",
			 tm.tm_year, tm.tm_mon, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * aws_sigv4_sign
 *		Compute the SigV4 headers for a request; see aws_sigv4.h.
 */
void
aws_sigv4_sign(const AwsSigV4Request *req, AwsSigV4Signature *sig)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	MemoryContext work_cxt;
	const AwsCredentials *cred = req->credentials;
	bool		is_s3;
	SigUrl		url;
	SigHeader  *hdrs;
	int			nhdrs = 0;
	int			i;
	char		amz_date[17];
	char		date[9];
	char	   *payload_hash;
	bool		send_content_sha256;
	StringInfoData method;
	StringInfoData creq;
	StringInfoData signed_headers;
	StringInfoData sts;
	StringInfoData authz;
	char	   *scope;
	char		creq_hash[AWS_SHA256_HEX_LEN + 1];
	unsigned char digest[AWS_SHA256_LEN];
	unsigned char key[AWS_SHA256_LEN];
	char		sig_hex[AWS_SHA256_HEX_LEN + 1];
	char	   *secret_key;
	size_t		secret_len;
	const char *host_value = NULL;

	if (cred == NULL || cred->secret_access_key == NULL)
		elog(ERROR, "AWS signing called without credentials");
	if (req->method == NULL || req->url == NULL)
		elog(ERROR, "AWS signing called without method or URL");

	sigv4_check_scope_part(cred->access_key_id, "access key id");
	sigv4_check_scope_part(req->region, "region");
	sigv4_check_scope_part(req->service, "service");
	sigv4_check_token(req->method, "method");
	if (cred->session_token != NULL && strpbrk(cred->session_token, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid session token for AWS signing"),
				 errdetail("The token contains a line break."),
				 errhint("Check the credentials source.")));

	work_cxt = AllocSetContextCreate(CurrentMemoryContext,
									 "dms_stream SigV4",
									 ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(work_cxt);

	is_s3 = strcmp(req->service, "s3") == 0;
	sigv4_parse_url(req->url, &url);
	sigv4_format_time(req->signing_time, amz_date);
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	payload_hash = sigv4_payload_hash(req);
	send_content_sha256 = is_s3 || strcmp(payload_hash, AWS_UNSIGNED_PAYLOAD) == 0;

	/* headers to sign: the caller's, minus the ones we compute, plus ours */
	hdrs = palloc(sizeof(SigHeader) * (Max(req->nheaders, 0) + AWS_SIGV4_MAX_ADDED_HEADERS + 1));
	for (i = 0; i < req->nheaders; i++)
	{
		const char *name = req->headers[i].name;
		const char *value = req->headers[i].value;
		char	   *lname;

		if (name == NULL || value == NULL)
			elog(ERROR, "AWS signing: header %d has no name or value", i);
		sigv4_check_token(name, "header name");
		if (strpbrk(value, "\r\n") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for header \"%s\" in AWS request", name),
					 errdetail("Header values cannot contain line breaks."),
					 errhint("Remove the CR/LF characters from the value.")));
		lname = asc_tolower(name, strlen(name));

		if (strcmp(lname, "authorization") == 0 ||
			strcmp(lname, "x-amz-date") == 0 ||
			strcmp(lname, "x-amz-security-token") == 0 ||
			strcmp(lname, "x-amz-content-sha256") == 0 ||
		/* never signed: changed by clients and proxies */
			strcmp(lname, "expect") == 0 ||
			strcmp(lname, "user-agent") == 0 ||
			strcmp(lname, "x-amzn-trace-id") == 0)
			continue;
		if (strcmp(lname, "host") == 0)
		{
			host_value = value;
			continue;
		}
		sigv4_add_header(hdrs, &nhdrs, lname, value);
	}
	sigv4_add_header(hdrs, &nhdrs, "host", host_value ? host_value : url.host);
	sigv4_add_header(hdrs, &nhdrs, "x-amz-date", amz_date);
	if (send_content_sha256)
		sigv4_add_header(hdrs, &nhdrs, "x-amz-content-sha256", payload_hash);
	if (cred->session_token != NULL)
		sigv4_add_header(hdrs, &nhdrs, "x-amz-security-token", cred->session_token);
	qsort(hdrs, nhdrs, sizeof(SigHeader), sigv4_header_cmp);

	/* 1. canonical request */
	initStringInfo(&method);
	for (i = 0; req->method[i]; i++)
		appendStringInfoChar(&method, pg_toupper((unsigned char) req->method[i]));

	initStringInfo(&creq);
	appendStringInfo(&creq, "%s\n", method.data);
	if (is_s3)
		sigv4_canonical_uri_s3(&creq, url.path, req->url);
	else
		sigv4_canonical_uri_generic(&creq, url.path);
	appendStringInfoChar(&creq, '\n');
	sigv4_canonical_query(&creq, url.query, req->url);
	appendStringInfoChar(&creq, '\n');

	initStringInfo(&signed_headers);
	for (i = 0; i < nhdrs; i++)
	{
		appendStringInfo(&creq, "%s:%s\n", hdrs[i].name, hdrs[i].value.data);
		if (i > 0)
			appendStringInfoChar(&signed_headers, ';');
		appendStringInfoString(&signed_headers, hdrs[i].name);
	}
	appendStringInfo(&creq, "\n%s\n%s", signed_headers.data, payload_hash);

	/* 2. string to sign */
	aws_sha256(creq.data, creq.len, digest);
	aws_hex_encode(digest, AWS_SHA256_LEN, creq_hash);
	scope = psprintf("%s/%s/%s/aws4_request", date, req->region, req->service);
	initStringInfo(&sts);
	appendStringInfo(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s",
					 amz_date, scope, creq_hash);

	/* 3. signing key; 4. signature */
	secret_len = strlen(cred->secret_access_key) + 4;
	secret_key = palloc(secret_len + 1);
	memcpy(secret_key, "AWS4", 4);
	memcpy(secret_key + 4, cred->secret_access_key, secret_len - 4);
	secret_key[secret_len] = '\0';

	aws_hmac_sha256(secret_key, secret_len, date, strlen(date), key);
	explicit_bzero(secret_key, secret_len);
	aws_hmac_sha256(key, AWS_SHA256_LEN, req->region, strlen(req->region), key);
	aws_hmac_sha256(key, AWS_SHA256_LEN, req->service, strlen(req->service), key);
	aws_hmac_sha256(key, AWS_SHA256_LEN, "aws4_request", 12, key);
	aws_hmac_sha256(key, AWS_SHA256_LEN, sts.data, sts.len, digest);
	explicit_bzero(key, sizeof(key));
	aws_hex_encode(digest, AWS_SHA256_LEN, sig_hex);

	initStringInfo(&authz);
	appendStringInfo(&authz,
					 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
					 cred->access_key_id, scope, signed_headers.data, sig_hex);

	/* copy the results out, then drop the scratch memory */
	MemoryContextSwitchTo(caller_cxt);
	memset(sig, 0, sizeof(*sig));
	sig->authorization = pstrdup(authz.data);
	sig->amz_date = pstrdup(amz_date);
	sig->content_sha256 = send_content_sha256 ? pstrdup(payload_hash) : NULL;
	sig->security_token = cred->session_token ? pstrdup(cred->session_token) : NULL;
	sig->canonical_request = pstrdup(creq.data);
	sig->string_to_sign = pstrdup(sts.data);
	sig->signed_headers = pstrdup(signed_headers.data);
	sig->signature = pstrdup(sig_hex);

	sig->headers[sig->nheaders].name = "Authorization";
	sig->headers[sig->nheaders++].value = sig->authorization;
	sig->headers[sig->nheaders].name = "X-Amz-Date";
	sig->headers[sig->nheaders++].value = sig->amz_date;
	if (sig->content_sha256)
	{
		sig->headers[sig->nheaders].name = "x-amz-content-sha256";
		sig->headers[sig->nheaders++].value = sig->content_sha256;
	}
	if (sig->security_token)
	{
		sig->headers[sig->nheaders].name = "X-Amz-Security-Token";
		sig->headers[sig->nheaders++].value = sig->security_token;
	}

	MemoryContextDelete(work_cxt);
}
