-- S3 utilities (src/s3_sql.c over the S3 client src/s3.c).
--
-- Every function takes the name of an S3 endpoint (engine s3, source or
-- target).  The bucket is the endpoint's BucketName, requests go to its
-- endpoint_url (AWS when NULL) with its s3_addressing_style, region and
-- credentials, and ExpectedBucketOwner is sent with every request.
-- EncryptionMode / ServerSideEncryptionKmsKeyId and CannedAclForObjects apply
-- to the objects written.
--
-- Keys are relative to the endpoint's BucketFolder, which is prepended as DMS
-- does ("folder/" + key); s3_list_objects returns keys relative to it as well,
-- so a listed key can be passed back unchanged.  Without BucketFolder keys are
-- the full object keys.
--
-- Admin only: they use the endpoint's credentials and reach any object of the
-- bucket.  s3_object_checksum, s3_copy_object_streamed and
-- s3_put_generated_object are test and measuring helpers: superuser only.

CREATE FUNCTION dms_stream.s3_list_objects(
	endpoint_name text,
	prefix text DEFAULT '',
	start_after text DEFAULT NULL,
	max_keys integer DEFAULT NULL,
	page_size integer DEFAULT 1000)
RETURNS TABLE (key text, size bigint, last_modified timestamptz, etag text)
AS 'MODULE_PATHNAME', 'dms_s3_list_objects'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_list_objects(text, text, text, integer, integer) IS
'Objects of the endpoint''s bucket under BucketFolder/prefix, in key order (ListObjectsV2). '
'prefix and start_after are relative to the endpoint''s BucketFolder (it is prepended, as DMS does), '
'and so are the keys returned. max_keys limits the rows (NULL: all); page_size is the MaxKeys of each '
'request (1-1000), continuation tokens are followed. etag is without quotes. Admin only.';

CREATE FUNCTION dms_stream.s3_head_object(
	endpoint_name text,
	key text)
RETURNS TABLE (size bigint, last_modified timestamptz, etag text, content_type text)
AS 'MODULE_PATHNAME', 'dms_s3_head_object'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_head_object(text, text) IS
'Size, last modification, ETag (without quotes) and content type of an object (HeadObject); '
'no row when the key does not exist. key is relative to BucketFolder. Admin only.';

CREATE FUNCTION dms_stream.s3_get_object(
	endpoint_name text,
	key text,
	range_start bigint DEFAULT NULL,
	range_end bigint DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'dms_s3_get_object'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_get_object(text, text, bigint, bigint) IS
'The bytes of an object (GetObject), or of the inclusive byte range range_start..range_end '
'(NULL: from the start / to the end). key is relative to BucketFolder. At most 1 GB; read bigger '
'objects by ranges or with s3_object_checksum / s3_copy_object_streamed. Admin only.';

CREATE FUNCTION dms_stream.s3_put_object(
	endpoint_name text,
	key text,
	data bytea,
	content_type text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'dms_s3_put_object'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_put_object(text, text, bytea, text) IS
'Write an object (PutObject) with the endpoint''s encryption and ACL settings; returns its ETag '
'(without quotes). key is relative to BucketFolder. Admin only.';

CREATE FUNCTION dms_stream.s3_delete_object(
	endpoint_name text,
	key text)
RETURNS void
AS 'MODULE_PATHNAME', 'dms_s3_delete_object'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_delete_object(text, text) IS
'Delete an object (DeleteObject); no error if it does not exist. key is relative to BucketFolder. Admin only.';

CREATE FUNCTION dms_stream.s3_object_checksum(
	endpoint_name text,
	key text,
	chunk_bytes bigint DEFAULT 8388608)
RETURNS TABLE (bytes bigint, sha256 text, requests integer, etag text)
AS 'MODULE_PATHNAME', 'dms_s3_object_checksum'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_object_checksum(text, text, bigint) IS
'Read an object of any size with the streaming reader (ranged GETs of chunk_bytes, two at a time, '
'memory bounded by a few chunks) and return its size, SHA-256 (hex), the GET requests made and its ETag. '
'Fails if the object changes while it is read. Compare with sha256sum of a copy to check an object. '
'Superuser only: a test and measuring helper of the streaming reader, not part of the product API.';

CREATE FUNCTION dms_stream.s3_copy_object_streamed(
	endpoint_name text,
	source_key text,
	target_key text,
	part_size_bytes bigint DEFAULT 5242880,
	chunk_bytes bigint DEFAULT 8388608,
	target_endpoint_name text DEFAULT NULL)
RETURNS TABLE (bytes bigint, parts integer, sha256 text, etag text)
AS 'MODULE_PATHNAME', 'dms_s3_copy_object_streamed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_copy_object_streamed(text, text, text, bigint, bigint, text) IS
'Copy an object through this server with bounded memory: the streaming reader (ranged GETs of chunk_bytes) '
'feeds the multipart writer (parts of part_size_bytes, at least 5 MiB, four uploaded at a time; a single '
'PutObject when it fits in one part). target_endpoint_name copies to another S3 endpoint (default: the same). '
'Returns bytes, parts (1 = single PutObject), SHA-256 of the bytes copied and the new ETag. '
'A failed copy aborts its multipart upload. Keys are relative to each endpoint''s BucketFolder. '
'Superuser only: a test and measuring helper of the reader and the multipart writer, not part of the product API.';

CREATE FUNCTION dms_stream.s3_put_generated_object(
	endpoint_name text,
	key text,
	size_bytes bigint,
	part_size_bytes bigint DEFAULT 5242880,
	seed bigint DEFAULT 0)
RETURNS TABLE (bytes bigint, parts integer, sha256 text, etag text)
AS 'MODULE_PATHNAME', 'dms_s3_put_generated_object'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.s3_put_generated_object(text, text, bigint, bigint, bigint) IS
'Write an object of size_bytes pseudo-random bytes (deterministic for a seed) with the multipart writer, '
'to test an endpoint''s write path, permissions and throughput without a large bytea. Returns bytes, parts '
'(1 = single PutObject), SHA-256 of the bytes written and the ETag. key is relative to BucketFolder. '
'Superuser only: a test and measuring helper of the multipart writer, not part of the product API.';

CREATE FUNCTION dms_stream.s3_object_url(
	endpoint_name text,
	key text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'dms_s3_object_url'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION dms_stream.s3_object_url(text, text) IS
'The URL dms_stream sends requests for an object to (for the bucket when key is NULL): shows the addressing '
'style (virtual hosted or path), endpoint URL, region and BucketFolder in effect. No request is made. Admin only.';

REVOKE ALL ON FUNCTION dms_stream.s3_list_objects(text, text, text, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_head_object(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_get_object(text, text, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_put_object(text, text, bytea, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_delete_object(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_object_checksum(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_copy_object_streamed(text, text, text, bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_put_generated_object(text, text, bigint, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.s3_object_url(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dms_stream.s3_list_objects(text, text, text, integer, integer) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.s3_head_object(text, text) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.s3_get_object(text, text, bigint, bigint) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.s3_put_object(text, text, bytea, text) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.s3_delete_object(text, text) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.s3_object_url(text, text) TO dms_stream_admin;
