-- Privileges: dms_stream_admin changes configuration and reads credentials;
-- other roles read configuration only and never see credentials.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;
CREATE ROLE regress_dms_admin LOGIN IN ROLE dms_stream_admin;
CREATE ROLE regress_dms_reader LOGIN;

SET ROLE regress_dms_admin;
SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s"}');
SELECT dms_stream.create_endpoint('s3', 's3', 'target', '{"BucketName": "lake"}');
SELECT dms_stream.set_endpoint_credentials('kin', 'AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY');
SELECT endpoint_name, access_key_id FROM dms_stream.endpoint_credential;
-- Plain SQL on the configuration tables works for the admin, through the same checks.
UPDATE dms_stream.endpoint SET settings = settings || '{"MessageFormat": "json-unformatted"}' WHERE endpoint_name = 'kin';
UPDATE dms_stream.endpoint SET settings = settings || '{"MessageFormat": "xml"}' WHERE endpoint_name = 'kin';
-- Task state is the worker's: not writable directly.
UPDATE dms_stream.task SET status = 'running';
-- Normalised definitions are maintained by the extension only.
INSERT INTO dms_stream.external_table VALUES ('kin', 'a', 'b', 'c', 1);
RESET ROLE;

SET ROLE regress_dms_reader;
SELECT endpoint_name, engine FROM dms_stream.endpoint ORDER BY 1;
SELECT * FROM dms_stream.endpoint_credential;
SELECT * FROM dms_stream.apply_exceptions;
SELECT dms_stream.create_endpoint('kin2', 'kinesis', 'target', '{"StreamName": "s"}');
SELECT dms_stream.alter_endpoint('kin', '{"StreamName": "other"}');
SELECT dms_stream.set_endpoint_credentials('kin', 'AKIDEVIL', 'x');
SELECT dms_stream.drop_endpoint('kin');
UPDATE dms_stream.endpoint SET settings = '{"StreamName": "other"}';
DELETE FROM dms_stream.endpoint;
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, output_s3_prefix, target_endpoint)
VALUES ('x', 'public', 't', 'id', 'notnull', 'p', 's3');
SELECT dms_stream.aws_sigv4_sign('GET', 'http://127.0.0.1/', '{}', NULL, 's3', 'us-east-1', 'AKID', 'SECRET');
-- Validators are open to everybody.
SELECT dms_stream.check_task_settings('{}');
RESET ROLE;

-- Nothing the reader tried changed anything.
SELECT endpoint_name, settings FROM dms_stream.endpoint ORDER BY 1;
SELECT endpoint_name, access_key_id FROM dms_stream.endpoint_credential;

DROP EXTENSION dms_stream;
DROP ROLE regress_dms_admin;
DROP ROLE regress_dms_reader;
