-- Endpoints and tasks: DMS settings vocabulary, validation and guards.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;

-- The seed's endpoints: an S3 CSV source and a Kinesis target.
SELECT dms_stream.create_endpoint('s3-source', 's3', 'source', $${
  "BucketName": "dms-s3-source", "BucketFolder": "sourcedata", "CdcPath": "changedata",
  "CsvDelimiter": ",", "CsvRowDelimiter": "\n", "IgnoreHeaderRows": "1", "Rfc4180": "y",
  "CsvNullValue": "NULL", "ExpectedBucketOwner": "123456789012",
  "ExternalTableDefinition": "{\"TableCount\":\"1\",\"Tables\":[{\"TableName\":\"table01\",\"TablePath\":\"schema01/table01/\",\"TableOwner\":\"schema01\",\"TableColumns\":[{\"ColumnName\":\"ingest_time\",\"ColumnType\":\"DATETIME\",\"ColumnNullable\":\"false\",\"ColumnIsPk\":\"true\"},{\"ColumnName\":\"doi\",\"ColumnType\":\"STRING\",\"ColumnLength\":\"30\"},{\"ColumnName\":\"id\",\"ColumnType\":\"INT8\"},{\"ColumnName\":\"value\",\"ColumnType\":\"NUMERIC\",\"ColumnPrecision\":\"5\",\"ColumnScale\":\"2\"},{\"ColumnName\":\"data_sig\",\"ColumnType\":\"STRING\",\"ColumnLength\":\"10\"}],\"TableColumnsTotal\":\"5\"}]}"
}$$, 'http://127.0.0.1:14580', 'us-east-1', 'path');
SELECT dms_stream.create_endpoint('kinesis-target', 'kinesis', 'target', $${
  "StreamArn": "arn:aws:kinesis:us-east-1:000000000000:stream/dms-target",
  "MessageFormat": "JSON_UNFORMATTED", "IncludeTransactionDetails": true,
  "IncludePartitionValue": "true", "PartitionIncludeSchemaTable": true,
  "IncludeTableAlterOperations": true, "IncludeControlDetails": true, "IncludeNullAndEmpty": true
}$$);
SELECT dms_stream.create_endpoint('local-pg', 'postgres', 'source', '{"SlotName": "dms_task_1", "HeartbeatEnable": true, "HeartbeatFrequency": 5}');
SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake", "DataFormat": "parquet", "CompressionType": "zstd", "DatePartitionEnabled": true, "DatePartitionSequence": "YYYYMMDD"}');
SELECT endpoint_name, engine, endpoint_type, endpoint_url, region, s3_addressing_style FROM dms_stream.endpoint ORDER BY 1;
SELECT table_owner, table_name, table_path FROM dms_stream.external_table;

-- ServiceAccessRoleArn is honoured (AssumeRole when the endpoint is used): no notice.
SELECT dms_stream.create_endpoint('kin-role', 'kinesis', 'target', '{"StreamName": "x", "ServiceAccessRoleArn": "arn:aws:iam::123456789012:role/dms"}');

-- Malformed endpoints.
-- 1. bad endpoint name
SELECT dms_stream.create_endpoint('1-endpoint', 'kinesis', 'target', '{"StreamName": "x"}');
-- 2. two hyphens
SELECT dms_stream.create_endpoint('a--b', 'kinesis', 'target', '{"StreamName": "x"}');
-- 3. kinesis as a source
SELECT dms_stream.create_endpoint('kin-src', 'kinesis', 'source', '{"StreamName": "x"}');
-- 4. unknown engine
SELECT dms_stream.create_endpoint('ora', 'oracle', 'source', '{}');
-- 5. missing BucketName
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'target', '{"DataFormat": "parquet"}');
-- 6. invalid bucket name
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'target', '{"BucketName": "My_Bucket"}');
-- 7. camelCase ECA spelling instead of the API key
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'source', '{"bucketName": "b"}');
-- 8. source without an external table definition
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'source', '{"BucketName": "bucket"}');
-- 9. IgnoreHeaderRows out of range
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'source', '{"BucketName": "bucket", "IgnoreHeaderRows": "2"}');
-- 10. Rfc4180 not a boolean
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'source', '{"BucketName": "bucket", "Rfc4180": "yes"}');
-- 11. same column and row delimiter
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'source', '{"BucketName": "bucket", "CsvDelimiter": "|", "CsvRowDelimiter": "|"}');
-- 12. ExpectedBucketOwner not an account id
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'target', '{"BucketName": "bucket", "ExpectedBucketOwner": "12345"}');
-- 13. CSV output for an S3 target
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'target', '{"BucketName": "bucket", "DataFormat": "csv"}');
-- 14. unknown compression
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'target', '{"BucketName": "bucket", "CompressionType": "lz4"}');
-- 15. KMS key without sse-kms
SELECT dms_stream.create_endpoint('s3-bad', 's3', 'target', '{"BucketName": "bucket", "ServerSideEncryptionKmsKeyId": "k"}');
-- 16. Kinesis endpoint without a stream
SELECT dms_stream.create_endpoint('kin-bad', 'kinesis', 'target', '{"MessageFormat": "json"}');
-- 17. malformed stream ARN
SELECT dms_stream.create_endpoint('kin-bad', 'kinesis', 'target', '{"StreamArn": "arn:aws:kinesis:us-east-1:123:dms-target"}');
-- 18. unknown MessageFormat
SELECT dms_stream.create_endpoint('kin-bad', 'kinesis', 'target', '{"StreamName": "s", "MessageFormat": "avro"}');
-- 19. boolean written as a number
SELECT dms_stream.create_endpoint('kin-bad', 'kinesis', 'target', '{"StreamName": "s", "IncludeNullAndEmpty": 1}');
-- 20. bad slot name
SELECT dms_stream.create_endpoint('pg-bad', 'postgres', 'source', '{"SlotName": "Bad-Slot"}');
-- 21. endpoint URL with a path
SELECT dms_stream.create_endpoint('kin-bad', 'kinesis', 'target', '{"StreamName": "s"}', 'http://127.0.0.1:4567/kinesis');
-- 22. region misspelt
SELECT dms_stream.create_endpoint('kin-bad', 'kinesis', 'target', '{"StreamName": "s"}', NULL, 'US East 1');
-- 22b. settings not an object
SELECT dms_stream.create_endpoint('kin-bad', 'kinesis', 'target', '["StreamName"]');
-- 23. duplicate endpoint
SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake"}');

-- alter_endpoint merges settings; a null removes a key.
SELECT dms_stream.alter_endpoint('kinesis-target', '{"MessageFormat": "json", "IncludeNullAndEmpty": null}');
SELECT settings->>'MessageFormat' AS format, settings ? 'IncludeNullAndEmpty' AS has_null_setting
  FROM dms_stream.endpoint WHERE endpoint_name = 'kinesis-target';
-- 24. a bad change is rejected and nothing changes
SELECT dms_stream.alter_endpoint('kinesis-target', '{"StreamName": "other"}');
SELECT dms_stream.alter_endpoint('nope', '{}');

-- Credentials.
SELECT dms_stream.set_endpoint_credentials('s3-source', 'S3RVER', 'S3RVER');
SELECT dms_stream.set_endpoint_credentials('s3-source', 'AKIDEXAMPLE', NULL);
SELECT endpoint_name, access_key_id FROM dms_stream.endpoint_credential;

-- Tasks.
SELECT dms_stream.create_task('s3-to-kinesis', 's3-source', 'kinesis-target', 'full-load-and-cdc',
  '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "schema01", "table-name": "%"}, "rule-action": "include"}]}',
  $${"TargetMetadata": {"ParallelLoadThreads": 8, "ParallelLoadBufferSize": 500},
     "FullLoadSettings": {"MaxFullLoadSubTasks": 4, "CommitRate": 10000},
     "ErrorBehavior": {"DataErrorPolicy": "LOG_ERROR", "RecoverableErrorCount": -1},
     "BeforeImageSettings": {"EnableBeforeImage": true, "FieldName": "before-image", "ColumnFilter": "pk-only"},
     "Logging": {"EnableLogging": true, "LogComponents": [{"Id": "SOURCE_UNLOAD", "Severity": "LOGGER_SEVERITY_DEFAULT"}]}}$$);
SELECT task_name, migration_type, desired_state, status FROM dms_stream.task;

-- Malformed tasks.
-- 25. bad migration type
SELECT dms_stream.create_task('t2', 's3-source', 'kinesis-target', 'full-load-plus-cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}');
-- 26. source and target swapped
SELECT dms_stream.create_task('t2', 'kinesis-target', 's3-source', 'full-load', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}');
-- 27. S3 target for a replication task
SELECT dms_stream.create_task('t2', 'local-pg', 'lake', 'full-load', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}');
-- 28. task settings out of range
SELECT dms_stream.create_task('t2', 'local-pg', 'kinesis-target', 'cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}', '{"TargetMetadata": {"ParallelLoadThreads": 64}}');
-- 29. unknown task settings section
SELECT dms_stream.create_task('t2', 'local-pg', 'kinesis-target', 'cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}', '{"FullLoad": {}}');
-- 30. unknown error policy
SELECT dms_stream.create_task('t2', 'local-pg', 'kinesis-target', 'cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}', '{"ErrorBehavior": {"DataErrorPolicy": "IGNORE"}}');
-- 31. before image enabled without a field name
SELECT dms_stream.create_task('t2', 'local-pg', 'kinesis-target', 'cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}', '{"BeforeImageSettings": {"EnableBeforeImage": true}}');
-- 32. batch apply, which Kinesis targets do not support
SELECT dms_stream.create_task('t2', 'local-pg', 'kinesis-target', 'cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}', '{"TargetMetadata": {"BatchApplyEnabled": true}}');
-- 33. log component severity misspelt
SELECT dms_stream.create_task('t2', 'local-pg', 'kinesis-target', 'cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}', '{"Logging": {"LogComponents": [{"Id": "TARGET_LOAD", "Severity": "LOGGER_SEVERITY_LOUD"}]}}');
-- 34. CDC from S3 without CdcPath
SELECT dms_stream.alter_endpoint('s3-source', '{"CdcPath": null}');
SELECT dms_stream.create_task('t3', 's3-source', 'kinesis-target', 'cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}');
SELECT dms_stream.alter_endpoint('s3-source', '{"CdcPath": "changedata"}');
-- 34b. SlotName (a slot created beforehand) with full-load-and-cdc: no snapshot for the load
SELECT dms_stream.create_task('t3', 'local-pg', 'kinesis-target', 'full-load-and-cdc', '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}');
-- 35. bad mappings through modify_task
SELECT dms_stream.modify_task('s3-to-kinesis', table_mappings => '{"rules": [{"rule-type": "selection"}]}');
-- 36. endpoint in use
SELECT dms_stream.drop_endpoint('kinesis-target');
-- 37. changing the engine of a used endpoint
UPDATE dms_stream.endpoint SET engine = 's3', settings = '{"BucketName": "bucket"}' WHERE endpoint_name = 'kinesis-target';

SELECT dms_stream.drop_task('s3-to-kinesis');
SELECT dms_stream.drop_task('s3-to-kinesis');
SELECT dms_stream.drop_endpoint('kinesis-target');
SELECT count(*) AS credentials_left FROM dms_stream.endpoint_credential;
SELECT dms_stream.drop_endpoint('s3-source');
SELECT count(*) AS credentials_left FROM dms_stream.endpoint_credential;
DROP EXTENSION dms_stream;
