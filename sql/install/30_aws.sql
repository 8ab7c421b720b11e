-- AWS utilities: Signature Version 4 diagnostics (src/aws_sql.c).
--
-- These functions take secrets as arguments, so they are for dms_stream_admin
-- only.  They are diagnostics: sign a request the way dms_stream would and
-- compare with another SDK when an endpoint answers SignatureDoesNotMatch.

CREATE FUNCTION dms_stream.aws_sigv4_sign(
	method text,
	url text,
	headers jsonb,
	payload bytea,
	service text,
	region text,
	access_key_id text,
	secret_access_key text,
	session_token text DEFAULT NULL,
	signing_time timestamptz DEFAULT now(),
	payload_hash text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dms_aws_sigv4_sign'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.aws_sigv4_sign(text, text, jsonb, bytea, text, text, text, text, text, timestamptz, text) IS
'Headers dms_stream adds to sign an AWS request (Authorization, X-Amz-Date, x-amz-content-sha256, X-Amz-Security-Token). '
'url is sent as is: scheme://host[:port]/path?query, already percent-encoded. '
'headers is a JSON object of the other headers sent (strings). '
'payload_hash: NULL to hash payload, a hex SHA-256, or UNSIGNED-PAYLOAD. Diagnostic; takes secrets, admin only.';

CREATE FUNCTION dms_stream.aws_sigv4_explain(
	method text,
	url text,
	headers jsonb,
	payload bytea,
	service text,
	region text,
	access_key_id text,
	secret_access_key text,
	session_token text DEFAULT NULL,
	signing_time timestamptz DEFAULT now(),
	payload_hash text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dms_aws_sigv4_explain'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.aws_sigv4_explain(text, text, jsonb, bytea, text, text, text, text, text, timestamptz, text) IS
'Same arguments as aws_sigv4_sign; returns the canonical request, string to sign, signed headers, signature and headers, '
'to compare with the CanonicalRequest/StringToSign of a SignatureDoesNotMatch error. Admin only.';

CREATE FUNCTION dms_stream.aws_uri_encode(str text, encode_slash boolean DEFAULT true)
RETURNS text
AS 'MODULE_PATHNAME', 'dms_aws_uri_encode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.aws_uri_encode(text, boolean) IS
'Percent-encode as AWS SigV4 does (RFC 3986 unreserved characters kept, %XX uppercase); '
'encode_slash => false keeps "/" as in S3 object keys.';

REVOKE ALL ON FUNCTION dms_stream.aws_sigv4_sign(text, text, jsonb, bytea, text, text, text, text, text, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.aws_sigv4_explain(text, text, jsonb, bytea, text, text, text, text, text, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.aws_uri_encode(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dms_stream.aws_sigv4_sign(text, text, jsonb, bytea, text, text, text, text, text, timestamptz, text) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.aws_sigv4_explain(text, text, jsonb, bytea, text, text, text, text, text, timestamptz, text) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.aws_uri_encode(text, boolean) TO dms_stream_admin;

-- HTTP diagnostics (src/http.c): run requests through dms_stream's HTTP layer
-- (libcurl multi, SigV4, retries with backoff, AWS error parsing).  Signed when
-- access_key_id is given.  Superuser only: they reach any URL from the
-- server, the instance metadata service (http://169.254.169.254/) too, and so
-- the keys of the instance's role; dms_stream_admin is not granted them.

CREATE FUNCTION dms_stream.http_request(
	method text,
	url text,
	headers jsonb DEFAULT NULL,
	body bytea DEFAULT NULL,
	service text DEFAULT NULL,
	region text DEFAULT NULL,
	access_key_id text DEFAULT NULL,
	secret_access_key text DEFAULT NULL,
	session_token text DEFAULT NULL,
	timeout_ms integer DEFAULT NULL,
	max_retries integer DEFAULT NULL,
	raise_error boolean DEFAULT false,
	OUT status integer,
	OUT response_headers jsonb,
	OUT response_body bytea,
	OUT attempts integer,
	OUT error_code text,
	OUT error_message text,
	OUT request_id text,
	OUT transport_error text,
	OUT reused_connection boolean,
	OUT elapsed_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'dms_http_request_sql'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.http_request(text, text, jsonb, bytea, text, text, text, text, text, integer, integer, boolean) IS
'Run one HTTP request through dms_stream''s HTTP layer (retries, timeouts, SigV4 when access_key_id is given). '
'status 0 means no answer (see transport_error). raise_error => true raises the error dms_stream would. Superuser only (it reaches instance metadata).';

CREATE FUNCTION dms_stream.http_request_many(
	requests jsonb,
	access_key_id text DEFAULT NULL,
	secret_access_key text DEFAULT NULL,
	session_token text DEFAULT NULL)
RETURNS TABLE (
	idx integer,
	status integer,
	response_headers jsonb,
	response_body bytea,
	attempts integer,
	error_code text,
	error_message text,
	request_id text,
	transport_error text,
	reused_connection boolean,
	elapsed_ms double precision)
AS 'MODULE_PATHNAME', 'dms_http_request_many_sql'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.http_request_many(jsonb, text, text, text) IS
'Run an array of requests [{"method", "url", "headers", "body", "service", "region", "timeout_ms", '
'"connect_timeout_ms", "max_retries"}] concurrently through dms_stream''s HTTP layer; one row per request. Superuser only (it reaches instance metadata).';

REVOKE ALL ON FUNCTION dms_stream.http_request(text, text, jsonb, bytea, text, text, text, text, text, integer, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.http_request_many(jsonb, text, text, text) FROM PUBLIC;
