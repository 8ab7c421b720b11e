-- DMS documents pasted as AWS DMS returns them (describe-endpoints,
-- describe-replication-tasks, console exports): accepted, with one NOTICE
-- naming the keys that have no effect here; stored as documents.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;
SET client_min_messages = notice;

-- S3Settings of an S3 source as describe-endpoints prints them: every key,
-- with the defaults of the S3 target keys; ExternalTableDefinition is a
-- JSON string, with the seed blog's "ColumnType": "TIMESTAMP".
SELECT dms_stream.create_endpoint('docs-s3-source', 's3', 'source', $doc${
    "ServiceAccessRoleArn": "arn:aws:iam::123456789012:role/dms-s3-source",
    "ExternalTableDefinition": "{\"TableCount\":\"1\",\"Tables\":[{\"TableName\":\"table01\",\"TablePath\":\"schema01/table01/\",\"TableOwner\":\"schema01\",\"TableColumns\":[{\"ColumnName\":\"ingest_time\",\"ColumnType\":\"TIMESTAMP\",\"ColumnNullable\":\"false\",\"ColumnIsPk\":\"true\"},{\"ColumnName\":\"doi\",\"ColumnType\":\"STRING\",\"ColumnLength\":\"30\"}],\"TableColumnsTotal\":\"2\"}]}",
    "CsvRowDelimiter": "\\n",
    "CsvDelimiter": ",",
    "BucketFolder": "",
    "BucketName": "dms-source-bucket",
    "CompressionType": "NONE",
    "EncryptionMode": "SSE_S3",
    "DataFormat": "csv",
    "EncodingType": "rle-dictionary",
    "DictPageSizeLimit": 1048576,
    "RowGroupLength": 10024,
    "DataPageSize": 1048576,
    "ParquetVersion": "parquet-1-0",
    "EnableStatistics": true,
    "IncludeOpForFullLoad": false,
    "CdcInsertsOnly": false,
    "TimestampColumnName": "",
    "ParquetTimestampInMillisecond": false,
    "CdcInsertsAndUpdates": false,
    "DatePartitionEnabled": false,
    "UseCsvNoSupValue": false,
    "CdcPath": "changes",
    "PreserveTransactions": false,
    "UseTaskStartTimeForFullLoadTimestamp": false,
    "CannedAclForObjects": "NONE",
    "AddColumnName": false,
    "CdcMaxBatchInterval": 60,
    "CdcMinFileSize": 32000,
    "CsvNullValue": "",
    "IgnoreHeaderRows": 0,
    "MaxFileSize": 1048576,
    "Rfc4180": true,
    "AddTrailingPaddingCharacter": false,
    "GlueCatalogGeneration": false
}$doc$);
SELECT column_name, column_type FROM dms_stream.external_column
 WHERE endpoint_name = 'docs-s3-source' ORDER BY column_ordinal;

-- S3Settings of an S3 target (Parquet) as describe-endpoints prints them:
-- CSV keys, date partition keys while DatePartitionEnabled is false, an
-- empty KMS key id with SSE_S3.
SELECT dms_stream.create_endpoint('docs-s3-target', 's3', 'target', $doc${
    "ServiceAccessRoleArn": "arn:aws:iam::123456789012:role/dms-s3-target",
    "CsvRowDelimiter": "\\n",
    "CsvDelimiter": ",",
    "BucketFolder": "lake",
    "BucketName": "dms-target-bucket",
    "CompressionType": "GZIP",
    "EncryptionMode": "SSE_S3",
    "ServerSideEncryptionKmsKeyId": "",
    "DataFormat": "parquet",
    "EncodingType": "rle-dictionary",
    "DictPageSizeLimit": 1048576,
    "RowGroupLength": 10024,
    "DataPageSize": 1048576,
    "ParquetVersion": "PARQUET_1_0",
    "EnableStatistics": true,
    "IncludeOpForFullLoad": false,
    "CdcInsertsOnly": false,
    "TimestampColumnName": "",
    "ParquetTimestampInMillisecond": false,
    "CdcInsertsAndUpdates": false,
    "DatePartitionEnabled": false,
    "DatePartitionSequence": "YYYYMMDD",
    "DatePartitionDelimiter": "SLASH",
    "UseCsvNoSupValue": false,
    "PreserveTransactions": false,
    "UseTaskStartTimeForFullLoadTimestamp": false,
    "CannedAclForObjects": "NONE",
    "AddColumnName": false,
    "CdcMaxBatchInterval": 60,
    "CdcMinFileSize": 32000,
    "CsvNullValue": "",
    "MaxFileSize": 1048576,
    "Rfc4180": true,
    "GlueCatalogGeneration": false
}$doc$);

-- KinesisSettings as describe-endpoints prints them.
SELECT dms_stream.create_endpoint('docs-kinesis', 'kinesis', 'target', $doc${
    "StreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/dms-target",
    "MessageFormat": "json",
    "ServiceAccessRoleArn": "arn:aws:iam::123456789012:role/dms-kinesis-role",
    "IncludeTransactionDetails": true,
    "IncludePartitionValue": false,
    "PartitionIncludeSchemaTable": false,
    "IncludeTableAlterOperations": false,
    "IncludeControlDetails": false,
    "IncludeNullAndEmpty": false,
    "NoHexPrefix": false,
    "UseLargeIntegerValue": false
}$doc$);

-- PostgreSQLSettings of a source as describe-endpoints prints them.
SELECT dms_stream.create_endpoint('docs-pg', 'postgres', 'source', $doc${
    "DatabaseName": "appdb",
    "Port": 5432,
    "ServerName": "appdb.cluster-abc.us-east-1.rds.amazonaws.com",
    "Username": "dms_user",
    "AfterConnectScript": "",
    "CaptureDdls": true,
    "MaxFileSize": 32768,
    "DdlArtifactsSchema": "public",
    "ExecuteTimeout": 60,
    "FailTasksOnLobTruncation": false,
    "HeartbeatEnable": false,
    "PluginName": "pglogical",
    "MapBooleanAsBoolean": false,
    "MapJsonbAsClob": false,
    "MapLongVarcharAs": "wstring",
    "DatabaseMode": "default",
    "TrimSpaceInChar": false
}$doc$);

-- Every endpoint's keys without effect, and why.
SELECT endpoint_name, key FROM dms_stream.endpoint_settings_without_effect
 WHERE endpoint_name LIKE 'docs-%' ORDER BY endpoint_name, key;

-- A value that is wrong is still refused, naming the key.
SELECT dms_stream.check_endpoint_settings('s3', 'source', '{"BucketName": "bkt", "ExternalTableDefinition": "{}", "EnableStatistics": "sometimes"}');
SELECT dms_stream.check_endpoint_settings('s3', 'target', '{"BucketName": "bkt", "DataFormat": "parquet", "EncryptionMode": "sse-s3", "ServerSideEncryptionKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k"}');
-- A password has no place in settings every role can read.
SELECT dms_stream.check_endpoint_settings('postgres', 'source', '{"Password": "hunter2"}');

-- describe-replication-tasks returns TableMappings and
-- ReplicationTaskSettings as JSON strings; the settings are DMS's full
-- default document; the console's rules carry "old-value": null.
SELECT dms_stream.create_endpoint('docs-kin2', 'kinesis', 'target', '{"StreamName": "docs"}');
SELECT dms_stream.create_endpoint('docs-src2', 's3', 'source', '{"BucketName": "dms-source-bucket", "ExternalTableDefinition": {"TableCount": "1", "Tables": [{"TableName": "table01", "TablePath": "schema01/table01/", "TableOwner": "schema01", "TableColumns": [{"ColumnName": "doi", "ColumnType": "STRING", "ColumnLength": "30"}], "TableColumnsTotal": "1"}]}}');
SELECT dms_stream.create_task('docs-task', 'docs-src2', 'docs-kin2', 'full-load',
  $doc$"{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": \"484512346\", \"rule-name\": \"484512346\", \"object-locator\": {\"schema-name\": \"schema01\", \"table-name\": \"%\"}, \"rule-action\": \"include\", \"filters\": []}, {\"rule-type\": \"transformation\", \"rule-id\": \"484578210\", \"rule-name\": \"484578210\", \"rule-target\": \"column\", \"object-locator\": {\"schema-name\": \"schema01\", \"table-name\": \"table01\", \"column-name\": \"doi\"}, \"rule-action\": \"rename\", \"value\": \"doi_id\", \"old-value\": null}]}"$doc$,
  $doc$"{\"TargetMetadata\": {\"TargetSchema\": \"\", \"SupportLobs\": true, \"FullLobMode\": false, \"LobChunkSize\": 0, \"LimitedSizeLobMode\": true, \"LobMaxSize\": 32, \"InlineLobMaxSize\": 0, \"LoadMaxFileSize\": 0, \"ParallelLoadThreads\": 0, \"ParallelLoadBufferSize\": 0, \"BatchApplyEnabled\": false, \"TaskRecoveryTableEnabled\": false, \"ParallelLoadQueuesPerThread\": 0, \"ParallelApplyThreads\": 0, \"ParallelApplyBufferSize\": 0, \"ParallelApplyQueuesPerThread\": 0}, \"FullLoadSettings\": {\"TargetTablePrepMode\": \"DO_NOTHING\", \"CreatePkAfterFullLoad\": false, \"StopTaskCachedChangesApplied\": false, \"StopTaskCachedChangesNotApplied\": false, \"MaxFullLoadSubTasks\": 8, \"TransactionConsistencyTimeout\": 600, \"CommitRate\": 10000}, \"Logging\": {\"EnableLogging\": true, \"LogComponents\": [{\"Id\": \"TRANSFORMATION\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"SOURCE_UNLOAD\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"IO\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TARGET_LOAD\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"PERFORMANCE\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"SOURCE_CAPTURE\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"SORTER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"REST_SERVER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"VALIDATOR_EXT\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TARGET_APPLY\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TASK_MANAGER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TABLES_MANAGER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"METADATA_MANAGER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"FILE_FACTORY\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"COMMON\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"ADDONS\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"DATA_STRUCTURE\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"COMMUNICATION\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"FILE_TRANSFER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}], \"CloudWatchLogGroup\": null, \"CloudWatchLogStream\": null}, \"ControlTablesSettings\": {\"historyTimeslotInMinutes\": 5, \"ControlSchema\": \"\", \"HistoryTimeslotInMinutes\": 5, \"HistoryTableEnabled\": false, \"SuspendedTablesTableEnabled\": false, \"StatusTableEnabled\": false, \"FullLoadExceptionTableEnabled\": false}, \"StreamBufferSettings\": {\"StreamBufferCount\": 3, \"StreamBufferSizeInMB\": 8, \"CtrlStreamBufferSizeInMB\": 5}, \"ChangeProcessingDdlHandlingPolicy\": {\"HandleSourceTableDropped\": true, \"HandleSourceTableTruncated\": true, \"HandleSourceTableAltered\": true}, \"ErrorBehavior\": {\"DataErrorPolicy\": \"LOG_ERROR\", \"DataTruncationErrorPolicy\": \"LOG_ERROR\", \"DataErrorEscalationPolicy\": \"SUSPEND_TABLE\", \"DataErrorEscalationCount\": 0, \"TableErrorPolicy\": \"SUSPEND_TABLE\", \"TableErrorEscalationPolicy\": \"STOP_TASK\", \"TableErrorEscalationCount\": 0, \"RecoverableErrorCount\": -1, \"RecoverableErrorInterval\": 5, \"RecoverableErrorThrottling\": true, \"RecoverableErrorThrottlingMax\": 1800, \"RecoverableErrorStopRetryAfterThrottlingMax\": true, \"ApplyErrorDeletePolicy\": \"IGNORE_RECORD\", \"ApplyErrorInsertPolicy\": \"LOG_ERROR\", \"ApplyErrorUpdatePolicy\": \"LOG_ERROR\", \"ApplyErrorEscalationPolicy\": \"LOG_ERROR\", \"ApplyErrorEscalationCount\": 0, \"ApplyErrorFailOnTruncationDdl\": false, \"FullLoadIgnoreConflicts\": true, \"FailOnTransactionConsistencyBreached\": false, \"FailOnNoTablesCaptured\": true}, \"ChangeProcessingTuning\": {\"BatchApplyPreserveTransaction\": true, \"BatchApplyTimeoutMin\": 1, \"BatchApplyTimeoutMax\": 30, \"BatchApplyMemoryLimit\": 500, \"BatchSplitSize\": 0, \"MinTransactionSize\": 1000, \"CommitTimeout\": 1, \"MemoryLimitTotal\": 1024, \"MemoryKeepTime\": 60, \"StatementCacheSize\": 50}, \"ValidationSettings\": {\"EnableValidation\": false, \"ValidationMode\": \"ROW_LEVEL\", \"ThreadCount\": 5, \"PartitionSize\": 10000, \"FailureMaxCount\": 10000, \"RecordFailureDelayInMinutes\": 5, \"RecordSuspendDelayInMinutes\": 30, \"MaxKeyColumnSize\": 8096, \"TableFailureMaxCount\": 1000, \"ValidationOnly\": false, \"HandleCollationDiff\": false, \"RecordFailureDelayLimitInMinutes\": 0, \"SkipLobColumns\": false, \"ValidationPartialLobSize\": 0, \"ValidationQueryCdcDelaySeconds\": 0}, \"PostProcessingRules\": null, \"CharacterSetSettings\": null, \"LoopbackPreventionSettings\": null, \"BeforeImageSettings\": null, \"FailTaskWhenCleanTaskResourceFailed\": false, \"TTSettings\": null}"$doc$);
SELECT jsonb_typeof(table_mappings) AS mappings, jsonb_typeof(task_settings) AS settings,
       table_mappings #> '{rules,1}' ? 'old-value' AS old_value_kept,
       task_settings #>> '{ErrorBehavior,DataErrorPolicy}' AS data_error_policy
  FROM dms_stream.task WHERE task_name = 'docs-task';
-- Task settings keys without effect, per section.
SELECT split_part(key, '.', 1) AS section, count(*) AS keys
  FROM dms_stream.task_settings_without_effect WHERE task_name = 'docs-task'
 GROUP BY 1 ORDER BY 1;
-- Keys that take effect are not listed.
SELECT key FROM dms_stream.settings_without_effect('{"TargetMetadata": {"ParallelLoadThreads": 4, "BatchApplyEnabled": false}, "FullLoadSettings": {"MaxFullLoadSubTasks": 2}, "ErrorBehavior": {"DataErrorPolicy": "STOP_TASK"}, "BeforeImageSettings": {"EnableBeforeImage": true, "FieldName": "bi"}, "ValidationSettings": {"EnableValidation": false}}');
SELECT dms_stream.check_table_mappings($doc$"{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": \"484512346\", \"rule-name\": \"484512346\", \"object-locator\": {\"schema-name\": \"schema01\", \"table-name\": \"%\"}, \"rule-action\": \"include\", \"filters\": []}, {\"rule-type\": \"transformation\", \"rule-id\": \"484578210\", \"rule-name\": \"484578210\", \"rule-target\": \"column\", \"object-locator\": {\"schema-name\": \"schema01\", \"table-name\": \"table01\", \"column-name\": \"doi\"}, \"rule-action\": \"rename\", \"value\": \"doi_id\", \"old-value\": null}]}"$doc$);
SELECT dms_stream.check_task_settings($doc$"{\"TargetMetadata\": {\"TargetSchema\": \"\", \"SupportLobs\": true, \"FullLobMode\": false, \"LobChunkSize\": 0, \"LimitedSizeLobMode\": true, \"LobMaxSize\": 32, \"InlineLobMaxSize\": 0, \"LoadMaxFileSize\": 0, \"ParallelLoadThreads\": 0, \"ParallelLoadBufferSize\": 0, \"BatchApplyEnabled\": false, \"TaskRecoveryTableEnabled\": false, \"ParallelLoadQueuesPerThread\": 0, \"ParallelApplyThreads\": 0, \"ParallelApplyBufferSize\": 0, \"ParallelApplyQueuesPerThread\": 0}, \"FullLoadSettings\": {\"TargetTablePrepMode\": \"DO_NOTHING\", \"CreatePkAfterFullLoad\": false, \"StopTaskCachedChangesApplied\": false, \"StopTaskCachedChangesNotApplied\": false, \"MaxFullLoadSubTasks\": 8, \"TransactionConsistencyTimeout\": 600, \"CommitRate\": 10000}, \"Logging\": {\"EnableLogging\": true, \"LogComponents\": [{\"Id\": \"TRANSFORMATION\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"SOURCE_UNLOAD\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"IO\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TARGET_LOAD\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"PERFORMANCE\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"SOURCE_CAPTURE\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"SORTER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"REST_SERVER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"VALIDATOR_EXT\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TARGET_APPLY\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TASK_MANAGER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"TABLES_MANAGER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"METADATA_MANAGER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"FILE_FACTORY\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"COMMON\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"ADDONS\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"DATA_STRUCTURE\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"COMMUNICATION\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}, {\"Id\": \"FILE_TRANSFER\", \"Severity\": \"LOGGER_SEVERITY_DEFAULT\"}], \"CloudWatchLogGroup\": null, \"CloudWatchLogStream\": null}, \"ControlTablesSettings\": {\"historyTimeslotInMinutes\": 5, \"ControlSchema\": \"\", \"HistoryTimeslotInMinutes\": 5, \"HistoryTableEnabled\": false, \"SuspendedTablesTableEnabled\": false, \"StatusTableEnabled\": false, \"FullLoadExceptionTableEnabled\": false}, \"StreamBufferSettings\": {\"StreamBufferCount\": 3, \"StreamBufferSizeInMB\": 8, \"CtrlStreamBufferSizeInMB\": 5}, \"ChangeProcessingDdlHandlingPolicy\": {\"HandleSourceTableDropped\": true, \"HandleSourceTableTruncated\": true, \"HandleSourceTableAltered\": true}, \"ErrorBehavior\": {\"DataErrorPolicy\": \"LOG_ERROR\", \"DataTruncationErrorPolicy\": \"LOG_ERROR\", \"DataErrorEscalationPolicy\": \"SUSPEND_TABLE\", \"DataErrorEscalationCount\": 0, \"TableErrorPolicy\": \"SUSPEND_TABLE\", \"TableErrorEscalationPolicy\": \"STOP_TASK\", \"TableErrorEscalationCount\": 0, \"RecoverableErrorCount\": -1, \"RecoverableErrorInterval\": 5, \"RecoverableErrorThrottling\": true, \"RecoverableErrorThrottlingMax\": 1800, \"RecoverableErrorStopRetryAfterThrottlingMax\": true, \"ApplyErrorDeletePolicy\": \"IGNORE_RECORD\", \"ApplyErrorInsertPolicy\": \"LOG_ERROR\", \"ApplyErrorUpdatePolicy\": \"LOG_ERROR\", \"ApplyErrorEscalationPolicy\": \"LOG_ERROR\", \"ApplyErrorEscalationCount\": 0, \"ApplyErrorFailOnTruncationDdl\": false, \"FullLoadIgnoreConflicts\": true, \"FailOnTransactionConsistencyBreached\": false, \"FailOnNoTablesCaptured\": true}, \"ChangeProcessingTuning\": {\"BatchApplyPreserveTransaction\": true, \"BatchApplyTimeoutMin\": 1, \"BatchApplyTimeoutMax\": 30, \"BatchApplyMemoryLimit\": 500, \"BatchSplitSize\": 0, \"MinTransactionSize\": 1000, \"CommitTimeout\": 1, \"MemoryLimitTotal\": 1024, \"MemoryKeepTime\": 60, \"StatementCacheSize\": 50}, \"ValidationSettings\": {\"EnableValidation\": false, \"ValidationMode\": \"ROW_LEVEL\", \"ThreadCount\": 5, \"PartitionSize\": 10000, \"FailureMaxCount\": 10000, \"RecordFailureDelayInMinutes\": 5, \"RecordSuspendDelayInMinutes\": 30, \"MaxKeyColumnSize\": 8096, \"TableFailureMaxCount\": 1000, \"ValidationOnly\": false, \"HandleCollationDiff\": false, \"RecordFailureDelayLimitInMinutes\": 0, \"SkipLobColumns\": false, \"ValidationPartialLobSize\": 0, \"ValidationQueryCdcDelaySeconds\": 0}, \"PostProcessingRules\": null, \"CharacterSetSettings\": null, \"LoopbackPreventionSettings\": null, \"BeforeImageSettings\": null, \"FailTaskWhenCleanTaskResourceFailed\": false, \"TTSettings\": null}"$doc$);

-- A string that does not hold valid JSON says so.
SELECT dms_stream.check_table_mappings('"{\"rules\": [{\"rule-type\": \"selection\",}]}"');
-- A document copied with typographic quotes (as from the seed blog page).
SELECT dms_stream.check_endpoint_settings('s3', 'source', $doc${"BucketName": "bkt", "ExternalTableDefinition": "{\u201cTableCount\u201d: \u201c1\u201d}"}$doc$);

-- The seed's DynamoDB controller holds the task settings as a string.
CREATE TABLE docs_orders (id int PRIMARY KEY, updated_at timestamptz);
INSERT INTO dms_stream.delta_load_controller
  (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value,
   output_s3_prefix, target_endpoint, replication_task_settings)
VALUES ('docs_orders', 'public', 'docs_orders', 'updated_at', 'gte', '2024-01-01', 'raw', 'docs-s3-target',
        '"{\"DeltaLoadSettings\": {\"MaxFileRows\": 1000}}"');
SELECT jsonb_typeof(replication_task_settings), replication_task_settings
  FROM dms_stream.delta_load_controller WHERE target_table_name = 'docs_orders';

DELETE FROM dms_stream.delta_load_controller WHERE target_table_name = 'docs_orders';
DROP TABLE docs_orders;
SELECT dms_stream.drop_task('docs-task');
SELECT dms_stream.drop_endpoint(e) FROM unnest(ARRAY['docs-s3-source', 'docs-s3-target', 'docs-kinesis', 'docs-pg', 'docs-kin2', 'docs-src2']) e;
DROP EXTENSION dms_stream;
