-- test_endpoint: DMS's "test connection" for an endpoint.
--
-- Runs each check in its own subtransaction and reports what worked, what
-- failed and why, instead of stopping at the first error.  Admin only: it
-- uses the endpoint's credentials.

CREATE FUNCTION dms_stream.test_endpoint(endpoint_name text)
RETURNS TABLE (step text, ok boolean, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e dms_stream.endpoint := dms_stream.require_endpoint(test_endpoint.endpoint_name);
	cred record;
	t record;
	stream jsonb;
	n bigint;
	msg text;
	det text;
	hint text;
	probe text;
	need text;			-- the IAM permission of the call being made
	denied constant text := '(AccessDenied|AccessDeniedException|HTTP 403|status 403)';
BEGIN
	-- 1. credentials (not needed for this database)
	IF e.engine <> 'postgres' THEN
		step := 'credentials';
		BEGIN
			SELECT * INTO cred FROM dms_stream.endpoint_credentials(e.endpoint_name);
			ok := true;
			detail := format('source %s, access key id %s%s', cred.source, cred.access_key_id,
							 CASE WHEN cred.expires_at IS NOT NULL
								  THEN format(', expires %s', cred.expires_at) ELSE '' END);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
			ok := false;
			detail := concat_ws(' ', msg, nullif(det, ''), nullif(hint, ''));
			RETURN NEXT;
			RETURN;				-- nothing else can work without credentials
		END;
		RETURN NEXT;
	END IF;

	IF e.engine = 's3' THEN
		-- 2. the bucket (and folder) can be listed
		step := format('list s3://%s/%s', e.settings ->> 'BucketName', coalesce(e.settings ->> 'BucketFolder', ''));
		BEGIN
			SELECT count(*) INTO n FROM dms_stream.s3_list_objects(e.endpoint_name, '', NULL, 1);
			ok := true;
			detail := CASE WHEN n = 0 THEN 'reachable; no objects' ELSE 'reachable; objects present' END;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
			ok := false;
			detail := concat_ws(' ', CASE WHEN concat(msg, det) ~ denied
										  THEN format('Denied: ListObjectsV2 needs s3:ListBucket on arn:aws:s3:::%s.', e.settings ->> 'BucketName') END,
								msg, nullif(det, ''), nullif(hint, ''));
			RETURN NEXT;
			RETURN;
		END;
		RETURN NEXT;

		IF e.endpoint_type = 'source' THEN
			-- 3. full-load files of every table of the definition
			FOR t IN SELECT x.table_owner, x.table_name, x.table_path
					   FROM dms_stream.external_table x
					  WHERE x.endpoint_name = e.endpoint_name ORDER BY x.table_index LOOP
				step := format('full-load files of %s.%s under %s', t.table_owner, t.table_name, t.table_path);
				BEGIN
					SELECT count(*) INTO n FROM dms_stream.s3_list_objects(e.endpoint_name, t.table_path);
					ok := n > 0;
					detail := CASE WHEN n > 0 THEN format('%s file(s)', n)
								   ELSE 'no files yet: a full load would find nothing for this table' END;
				EXCEPTION WHEN OTHERS THEN
					GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
					ok := false;
					detail := concat_ws(' ', msg, nullif(det, ''));
				END;
				RETURN NEXT;
			END LOOP;
			IF coalesce(e.settings ->> 'CdcPath', '') <> '' THEN
				step := format('CDC files under %s', e.settings ->> 'CdcPath');
				BEGIN
					SELECT count(*) INTO n FROM dms_stream.s3_list_objects(e.endpoint_name, e.settings ->> 'CdcPath');
					ok := true;
					detail := format('%s file(s) so far', n);
				EXCEPTION WHEN OTHERS THEN
					GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
					ok := false;
					detail := concat_ws(' ', msg, nullif(det, ''));
				END;
				RETURN NEXT;
			END IF;
		ELSE
			-- 3. a target must be writable: write and delete a marker object
			probe := format('dms_stream_test_endpoint_%s', md5(clock_timestamp()::text || random()::text));
			step := 'write and delete a test object';
			BEGIN
				need := 'PutObject needs s3:PutObject';
				PERFORM dms_stream.s3_put_object(e.endpoint_name, probe, convert_to('dms_stream test_endpoint', 'UTF8'));
				need := 'DeleteObject needs s3:DeleteObject';
				PERFORM dms_stream.s3_delete_object(e.endpoint_name, probe);
				ok := true;
				detail := format('wrote and deleted %s', probe);
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
				ok := false;
				detail := concat_ws(' ', CASE WHEN concat(msg, det) ~ denied
											  THEN format('Denied: %s on arn:aws:s3:::%s/%s*.', need, e.settings ->> 'BucketName',
														  CASE WHEN trim(BOTH '/' FROM coalesce(e.settings ->> 'BucketFolder', '')) = '' THEN ''
															   ELSE trim(BOTH '/' FROM e.settings ->> 'BucketFolder') || '/' END) END,
									msg, nullif(det, ''), nullif(hint, ''));
			END;
			RETURN NEXT;
		END IF;

	ELSIF e.engine = 'kinesis' THEN
		step := format('describe stream %s', coalesce(e.settings ->> 'StreamName', e.settings ->> 'StreamArn'));
		BEGIN
			stream := dms_stream.kinesis_describe_stream(e.endpoint_name);
			ok := stream #>> '{StreamDescriptionSummary,StreamStatus}' IN ('ACTIVE', 'UPDATING');
			detail := format('status %s, %s open shard(s)',
							 stream #>> '{StreamDescriptionSummary,StreamStatus}',
							 stream #>> '{StreamDescriptionSummary,OpenShardCount}');
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
			ok := false;
			detail := concat_ws(' ', CASE WHEN concat(msg, det) ~ denied
										  THEN format('Denied: %1$s needs kinesis:%1$s on %2$s (tasks need kinesis:PutRecords).',
													  CASE WHEN msg ~ 'ListShards' THEN 'ListShards' ELSE 'DescribeStreamSummary' END,
													  coalesce(e.settings ->> 'StreamArn', format('stream %s', e.settings ->> 'StreamName'))) END,
								msg, nullif(det, ''), nullif(hint, ''));
		END;
		RETURN NEXT;

	ELSE
		-- this database as a logical decoding source
		step := 'wal_level';
		ok := current_setting('wal_level') = 'logical';
		detail := CASE WHEN ok THEN 'logical'
					   ELSE format('%s: set wal_level = logical and restart', current_setting('wal_level')) END;
		RETURN NEXT;
		step := 'replication slots';
		SELECT count(*) INTO n FROM pg_replication_slots;
		ok := n < current_setting('max_replication_slots')::int;
		detail := format('%s of %s in use', n, current_setting('max_replication_slots'));
		RETURN NEXT;
		step := 'WAL senders';
		ok := current_setting('max_wal_senders')::int > 0;
		detail := format('max_wal_senders = %s', current_setting('max_wal_senders'));
		RETURN NEXT;
	END IF;
END
$$;

COMMENT ON FUNCTION dms_stream.test_endpoint(text) IS
'DMS "test connection": check credentials, bucket/files or stream (or logical decoding settings for postgres), one row per step with what worked, what failed and why';

REVOKE ALL ON FUNCTION dms_stream.test_endpoint(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dms_stream.test_endpoint(text) TO dms_stream_admin;
