-- Kinesis utilities (src/kinesis_sql.c): look at a Kinesis endpoint's stream,
-- read its records back, and send records through the PutRecords batcher the
-- replication jobs use.  Admin only: they use the endpoint's credentials.

CREATE FUNCTION dms_stream.kinesis_describe_stream(endpoint_name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dms_kinesis_describe_stream'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.kinesis_describe_stream(text) IS
'The stream of a Kinesis endpoint: {"EndpointName", "StreamDescriptionSummary" (DescribeStreamSummary), '
'"Shards" (every page of ListShards)}. Admin only.';

CREATE FUNCTION dms_stream.kinesis_read_records(
	endpoint_name text,
	shard_id text DEFAULT NULL,
	iterator_type text DEFAULT 'TRIM_HORIZON',
	max_records integer DEFAULT 1000,
	starting_sequence_number text DEFAULT NULL)
RETURNS TABLE (
	shard_id text,
	sequence_number text,
	partition_key text,
	approximate_arrival timestamptz,
	data bytea,
	data_text text,
	data_json jsonb)
AS 'MODULE_PATHNAME', 'dms_kinesis_read_records'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.kinesis_read_records(text, text, text, integer, text) IS
'Records of one shard (shard_id) or of every shard (NULL, in shard order), at most max_records per shard, '
'read with GetShardIterator (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER) and GetRecords '
'until the end of the shard or its tip. data_text is NULL unless data is UTF-8; data_json is NULL unless it is JSON. '
'Admin only.';

CREATE FUNCTION dms_stream.kinesis_put_records(
	endpoint_name text,
	partition_keys text[],
	data text[],
	max_in_flight integer DEFAULT 4,
	explicit_hash_keys text[] DEFAULT NULL,
	skip_invalid boolean DEFAULT false,
	options jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dms_kinesis_put_records'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.kinesis_put_records(text, text[], text[], integer, text[], boolean, jsonb) IS
'Send records (data as UTF-8) through the PutRecords batcher with up to max_in_flight requests at once; returns '
'when all are acknowledged, with the batcher''s stats. A refused record (over 1 MiB with its key, key empty or over '
'256 characters, bad explicit hash key) raises an error before anything is sent, unless skip_invalid, which sends '
'the others and lists the refused ones. options: max_request_records, max_request_bytes, max_body_bytes, '
'max_record_bytes, max_buffered_bytes, max_buffered_records, max_record_retries, strict_key_order (default true: '
'one record of a partition key on the wire at a time, so the key''s records are stored in order). Admin only.';

CREATE FUNCTION dms_stream.kinesis_put_binary_records(
	endpoint_name text,
	partition_keys text[],
	data bytea[],
	max_in_flight integer DEFAULT 4,
	explicit_hash_keys text[] DEFAULT NULL,
	skip_invalid boolean DEFAULT false,
	options jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dms_kinesis_put_binary_records'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dms_stream.kinesis_put_binary_records(text, text[], bytea[], integer, text[], boolean, jsonb) IS
'kinesis_put_records with binary data, sent byte for byte. Admin only.';

REVOKE ALL ON FUNCTION dms_stream.kinesis_describe_stream(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.kinesis_read_records(text, text, text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.kinesis_put_records(text, text[], text[], integer, text[], boolean, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION dms_stream.kinesis_put_binary_records(text, text[], bytea[], integer, text[], boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dms_stream.kinesis_describe_stream(text) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.kinesis_read_records(text, text, text, integer, text) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.kinesis_put_records(text, text[], text[], integer, text[], boolean, jsonb) TO dms_stream_admin;
GRANT EXECUTE ON FUNCTION dms_stream.kinesis_put_binary_records(text, text[], bytea[], integer, text[], boolean, jsonb) TO dms_stream_admin;
