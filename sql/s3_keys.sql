-- S3 keys stay where the configuration says: "." and ".." segments, empty
-- segments and control characters are refused wherever a key part is
-- stored or given (no request is sent: every check fails first).
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE EXTENSION dms_stream;

-- The validator itself.
SELECT dms_stream.check_s3_key_part('k', 'etl/raw/dwh'),
	   dms_stream.check_s3_key_part('k', 'etl/raw/'),
	   dms_stream.check_s3_key_part('k', '...'),
	   dms_stream.check_s3_key_part('k', '.hidden/a..b/c.');
SELECT dms_stream.check_s3_key_part('k', '..');
SELECT dms_stream.check_s3_key_part('k', '.');
SELECT dms_stream.check_s3_key_part('k', 'a/../b');
SELECT dms_stream.check_s3_key_part('k', './x');
SELECT dms_stream.check_s3_key_part('k', 'a/.');
SELECT dms_stream.check_s3_key_part('k', 'a//b');
SELECT dms_stream.check_s3_key_part('k', '/a');
SELECT dms_stream.check_s3_key_part('k', E'a\nb');

-- Endpoint settings: BucketFolder (target and source), CdcPath, TablePath.
SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake", "BucketFolder": "a/../b", "DataFormat": "parquet"}');
SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake", "BucketFolder": "..", "DataFormat": "parquet"}');
SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake", "BucketFolder": "./x", "DataFormat": "parquet"}');
-- leading and trailing slashes of BucketFolder are ignored, as before
SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake", "BucketFolder": "/lake/raw/", "DataFormat": "parquet"}');
SELECT dms_stream.alter_endpoint('lake', '{"BucketFolder": "lake/./raw"}');
SELECT settings ->> 'BucketFolder' FROM dms_stream.endpoint WHERE endpoint_name = 'lake';
SELECT dms_stream.create_endpoint('src', 's3', 'source', $${"BucketName": "src", "CdcPath": "../cdc",
  "ExternalTableDefinition": {"TableCount": 1, "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s",
    "TableColumns": [{"ColumnName": "id", "ColumnType": "INT8"}], "TableColumnsTotal": 1}]}}$$);
SELECT dms_stream.create_endpoint('src', 's3', 'source', $${"BucketName": "src", "CdcPath": "cdc",
  "ExternalTableDefinition": {"TableCount": 1, "Tables": [{"TableName": "t", "TablePath": "s/../../t/", "TableOwner": "s",
    "TableColumns": [{"ColumnName": "id", "ColumnType": "INT8"}], "TableColumnsTotal": 1}]}}$$);
SELECT dms_stream.create_endpoint('src', 's3', 'source', $${"BucketName": "src", "CdcPath": "/cdc/",
  "ExternalTableDefinition": {"TableCount": 1, "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s",
    "TableColumns": [{"ColumnName": "id", "ColumnType": "INT8"}], "TableColumnsTotal": 1}]}}$$);
SELECT dms_stream.register_external_table_definition('src', $${"TableCount": 1, "Tables": [{"TableName": "t", "TablePath": "./t/", "TableOwner": "s",
    "TableColumns": [{"ColumnName": "id", "ColumnType": "INT8"}], "TableColumnsTotal": 1}]}$$);

-- The delta-load controller: target_table_name, output_s3_prefix and
-- source_schema (a schema really named "..", quoted) make the folder.
CREATE SCHEMA "..";
CREATE TABLE "..".t (id int);
CREATE TABLE public.s3k_t (id int);
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('..', 'public', 't', 'id', 'gte', '1', 'p', 'lake');
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('.', 'public', 't', 'id', 'gte', '1', 'p', 'lake');
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('t1', 'public', 't', 'id', 'gte', '1', 'a/../b', 'lake');
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('t1', 'public', 't', 'id', 'gte', '1', './x', 'lake');
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('t1', '..', 't', 'id', 'gte', '1', 'p', 'lake');
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('t1', 'a/../b', 't', 'id', 'gte', '1', 'p', 'lake');
-- a good row, then updates that would move its folder
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('t1', 'public', 's3k_t', 'id', 'gte', '1', 'p/q/', 'lake');
UPDATE dms_stream.delta_load_controller SET output_s3_prefix = 'p/..' WHERE target_table_name = 't1';
UPDATE dms_stream.delta_load_controller SET target_table_name = '..' WHERE target_table_name = 't1';
SELECT target_table_name, source_schema, output_s3_prefix FROM dms_stream.delta_load_controller;

-- Key arguments of the S3 functions (relative to BucketFolder).
SELECT dms_stream.s3_put_object('lake', '../escape.txt', 'x'::bytea);
SELECT dms_stream.s3_put_object('lake', 'a/./b.txt', 'x'::bytea);
SELECT dms_stream.s3_delete_object('lake', 'a/..');
SELECT dms_stream.s3_get_object('lake', '..');
SELECT * FROM dms_stream.s3_head_object('lake', '/abs');
SELECT * FROM dms_stream.s3_list_objects('lake', '../');
SELECT * FROM dms_stream.s3_list_objects('lake', 'a/./');
SELECT * FROM dms_stream.s3_list_objects('lake', 'x', '../');
SELECT * FROM dms_stream.s3_put_generated_object('lake', 'x/../../y', 10);

SELECT dms_stream.drop_endpoint('src');
DROP TABLE "..".t, public.s3k_t;
DROP SCHEMA "..";
DELETE FROM dms_stream.delta_load_controller;
SELECT dms_stream.drop_endpoint('lake');
DROP EXTENSION dms_stream;
