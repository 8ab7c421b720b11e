-- The delta-load controller table, managed with plain SQL.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;
CREATE SCHEMA dwh;
CREATE TABLE dwh.orders_rds (row_id bigint PRIMARY KEY, placed_at timestamptz, note text,
							 payload json, "Mixed Case" int);
SELECT dms_stream.create_endpoint('lake', 's3', 'target', '{"BucketName": "lake", "DataFormat": "parquet"}');
SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s"}');

-- The seed's example row (lte with start = end value), and other operators.
INSERT INTO dms_stream.delta_load_controller
	(target_table_name, source_schema, source_table, filter_column, filter_operator,
	 start_value, end_value, active_flag, output_s3_prefix, target_endpoint, replication_task_settings)
VALUES ('orders_s3', 'dwh', 'orders_rds', 'row_id', 'lte', '377145', '377145', true, 'new_orders', 'lake',
		'{"Logging": {"EnableLogging": true, "LogComponents": [{"Id": "SOURCE_UNLOAD", "Severity": "LOGGER_SEVERITY_DEFAULT"}, {"Id": "TASK_MANAGER", "Severity": "LOGGER_SEVERITY_DEBUG"}]}}'),
	   ('orders_recent', 'dwh', 'orders_rds', 'placed_at', 'between', '2024-01-01', '2024-12-31 23:59:59', true, 'etl/raw/dwh', 'lake', '{}'),
	   ('orders_mixed', 'dwh', 'orders_rds', 'Mixed Case', 'notnull', NULL, NULL, false, 'etl/raw/dwh', 'lake', '{}');
SELECT target_table_name, filter_operator, start_value, end_value, active_flag, next_file_number
  FROM dms_stream.delta_load_controller ORDER BY 1;

-- Rows that cannot work.
-- 1. unknown operator
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'lt', '1', 'p', 'lake');
-- 2. between without an end value
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'between', '1', 'p', 'lake');
-- 3. gte without a value
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'gte', 'p', 'lake');
-- 4. null with a value
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'null', '1', 'p', 'lake');
-- 5. lte with a different end value
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, end_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'lte', '1', '2', 'p', 'lake');
-- 6. source table does not exist
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders', 'row_id', 'gte', '1', 'p', 'lake');
-- 7. unknown column (names are case-sensitive)
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'ROW_ID', 'gte', '1', 'p', 'lake');
-- 8. filter column without an ordering
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'payload', 'eq', '{}', 'p', 'lake');
-- 9. value not of the column's type
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'placed_at', 'gte', '2024-13-45', 'p', 'lake');
-- 10. target is not an S3 target
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'gte', '1', 'p', 'kin');
-- 11. prefix starting with a slash
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'gte', '1', '/p', 'lake');
-- 12. bad replication task settings
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint, replication_task_settings)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'gte', '1', 'p', 'lake', '{"Logging": {"EnableLogging": "sometimes"}}');
-- 13. SQL injection through names is just a missing table
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds; DROP TABLE dwh.orders_rds; --', 'row_id', 'gte', '1', 'p', 'lake');
-- 14. ... and through values a bad literal
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, output_s3_prefix, target_endpoint)
VALUES ('x', 'dwh', 'orders_rds', 'row_id', 'gte', '1); DROP TABLE dwh.orders_rds; --', 'p', 'lake');
SELECT count(*) AS orders_table_still_there FROM dwh.orders_rds;
-- 15. an update that breaks a row is rejected too
UPDATE dms_stream.delta_load_controller SET filter_operator = 'null' WHERE target_table_name = 'orders_s3';
-- 17. The query each operator gives: identifiers quoted, typed parameters,
-- the type's own btree operators, ORDER BY the filter column then the key.
CREATE TABLE dwh."Odd ""Name""; DROP TABLE dwh.orders_rds; --" (
	"Id" int PRIMARY KEY, "when"";--" date, grade text COLLATE "C");
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, start_value, end_value, output_s3_prefix, target_endpoint)
VALUES ('q_lte', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'when";--', 'lte', '2024-01-31', NULL, 'p', 'lake'),
	   ('q_ste', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'when";--', 'ste', '2024-01-31', '2024-01-31', 'p', 'lake'),
	   ('q_gte', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'grade', 'gte', '''); DROP TABLE dwh.orders_rds; --', NULL, 'p', 'lake'),
	   ('q_eq', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'Id', 'eq', '7', NULL, 'p', 'lake'),
	   ('q_noteq', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'Id', 'noteq', '7', NULL, 'p', 'lake'),
	   ('q_null', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'grade', 'null', NULL, NULL, 'p', 'lake'),
	   ('q_notnull', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'grade', 'notnull', NULL, NULL, 'p', 'lake'),
	   ('q_between', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'Id', 'between', '10', '20', 'p', 'lake'),
	   ('q_notbetween', 'dwh', 'Odd "Name"; DROP TABLE dwh.orders_rds; --', 'Id', 'notbetween', '10', '20', 'p', 'lake');
SELECT target_table_name, (dms_stream.delta_load_query(target_table_name)).*
  FROM dms_stream.delta_load_controller WHERE target_table_name LIKE 'q\_%' ORDER BY 1;
-- after a first load the watermark is one more typed parameter
UPDATE dms_stream.delta_load_controller SET watermark = '2024-01-15' WHERE target_table_name = 'q_lte';
SELECT (dms_stream.delta_load_query('q_lte')).*;
UPDATE dms_stream.delta_load_controller SET watermark = 'not a date' WHERE target_table_name = 'q_lte';
-- 18. DeltaLoadSettings: dms_stream's section of replication_task_settings
UPDATE dms_stream.delta_load_controller
   SET replication_task_settings = '{"DeltaLoadSettings": {"CompressionType": "zstd", "MaxFileRows": 1000000, "MaxFileSize": 65536, "RowGroupLength": 122880, "DatePartitionEnabled": true, "FetchRows": 5000}}'
 WHERE target_table_name = 'q_eq';
UPDATE dms_stream.delta_load_controller
   SET replication_task_settings = '{"DeltaLoadSettings": {"CompressionType": "lz4"}}' WHERE target_table_name = 'q_eq';
UPDATE dms_stream.delta_load_controller
   SET replication_task_settings = '{"DeltaLoadSettings": {"MaxFileRow": 10}}' WHERE target_table_name = 'q_eq';
-- 19. the run procedures commit, so they refuse a transaction block
BEGIN;
CALL dms_stream.run_delta_load('q_eq');
ROLLBACK;
BEGIN;
DO $$ BEGIN CALL dms_stream.run_delta_loads(); END $$;
ROLLBACK;
CREATE FUNCTION dwh.run_in_function() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CALL dms_stream.run_delta_load('q_eq'); END $$;
SELECT dwh.run_in_function();
SELECT dms_stream.delta_load_query('nope');
CALL dms_stream.run_delta_load('nope');
SELECT count(*) AS orders_table_still_there FROM dwh.orders_rds;
-- 16. the target endpoint cannot be dropped while used
SELECT dms_stream.drop_endpoint('lake');
DROP EXTENSION dms_stream;
DROP SCHEMA dwh CASCADE;
